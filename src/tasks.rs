//! Work started from the libuv thread pool and run on low-priority threads of its own, off the
//! JavaScript thread.

use std::sync::{Arc, Mutex};

use napi::{Env, Result, Task};
use napi_derive::napi;
use session_core::{
    run_in_background, sweep, FileBackend, QueuedWrite, SessionStore, SweepOptions, SweepReport,
    WriteOutcome,
};

use crate::errors::Failure;
use crate::sweep_summary::SweepSummary;

/// Bounds one task's report, so handling it never holds the JavaScript thread for long.
const MAX_WRITES_PER_TASK: usize = 256;

/// Writes waiting for the next [`WriteTask`]; filled on the JavaScript thread.
pub type Outbox = Arc<Mutex<Vec<QueuedWrite>>>;

/// What one [`WriteTask`] did, each list in queue order: ids it is done with (written, or
/// superseded by a newer save, write or delete) and the failures. Only the newest queued write
/// of an id can fail, so an id in both lists was done first.
#[napi(object)]
pub struct WriteReport {
    pub done: Vec<String>,
    pub failures: Vec<Failure>,
}

pub struct WriteTask {
    store: Arc<SessionStore<FileBackend>>,
    outbox: Outbox,
}

impl WriteTask {
    pub fn new(store: Arc<SessionStore<FileBackend>>, outbox: Outbox) -> Self {
        Self { store, outbox }
    }
}

impl Task for WriteTask {
    type Output = WriteReport;
    type JsValue = WriteReport;

    fn compute(&mut self) -> Result<Self::Output> {
        let writes: Vec<_> = {
            let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
            let take = outbox.len().min(MAX_WRITES_PER_TASK);
            outbox.drain(..take).collect()
        };
        let ids: Vec<String> = writes.iter().map(|w| w.id().to_string()).collect();
        let mut report = WriteReport {
            done: Vec::with_capacity(ids.len()),
            failures: Vec::new(),
        };
        let outcomes = run_in_background(|| self.store.write_queued(writes));
        for (id, outcome) in ids.into_iter().zip(outcomes) {
            match outcome {
                WriteOutcome::Failed(e) => report.failures.push(Failure::new(&id, &e)),
                WriteOutcome::Written | WriteOutcome::Superseded => report.done.push(id),
            }
        }
        Ok(report)
    }

    fn resolve(&mut self, _env: Env, report: Self::Output) -> Result<Self::JsValue> {
        Ok(report)
    }
}

pub struct SweepTask {
    store: Arc<SessionStore<FileBackend>>,
    options: SweepOptions,
}

impl SweepTask {
    pub fn new(store: Arc<SessionStore<FileBackend>>, options: SweepOptions) -> Self {
        Self { store, options }
    }
}

impl Task for SweepTask {
    type Output = SweepReport;
    type JsValue = SweepSummary;

    fn compute(&mut self) -> Result<Self::Output> {
        run_in_background(|| sweep(&self.store, self.options))
            .map_err(|e| napi::Error::new(napi::Status::GenericFailure, e.to_string()))
    }

    fn resolve(&mut self, _env: Env, report: Self::Output) -> Result<Self::JsValue> {
        Ok(SweepSummary::new(report, self.store.backend()))
    }
}
