//! Work started from the libuv thread pool and run on low-priority threads of its own, off the
//! JavaScript thread.

use std::sync::{Arc, Mutex};

use napi::{Env, Result, Task};
use napi_derive::napi;
use session_core::{
    run_in_background, sweep, FileBackend, OrderedWrites, QueuedWrite, SessionId, SweepOptions,
    SweepReport, WriteOutcome,
};

use crate::errors::WriteFailure;
use crate::sweep_summary::SweepSummary;

/// Bounds one task's report, so handling it never holds the JavaScript thread for long.
const MAX_WRITES_PER_TASK: usize = 256;

/// Writes waiting for the next [`WriteTask`]; filled on the JavaScript thread.
pub type Outbox = Arc<Mutex<Vec<QueuedWrite>>>;

/// What one [`WriteTask`] did with the oldest queued items, by their tickets in queue order: each
/// is done (written, or superseded by a newer save, write or delete) unless listed among the
/// failures, whose `index` is a position in `tickets`. Items are told by ticket, never by id,
/// so every queued write is settled exactly once.
#[napi(object)]
pub struct WriteReport {
    pub tickets: Vec<f64>,
    pub failures: Vec<WriteFailure>,
    /// For stores that version what they store (Redis): the version each write stored, by
    /// position in `tickets` (0 where it stored none).
    pub versions: Vec<f64>,
}

pub struct WriteTask {
    store: Arc<OrderedWrites<FileBackend>>,
    outbox: Outbox,
}

impl WriteTask {
    pub fn new(store: Arc<OrderedWrites<FileBackend>>, outbox: Outbox) -> Self {
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
        let tickets = writes.iter().map(|w| w.ticket() as f64).collect();
        let outcomes = run_in_background(|| self.store.write_queued(writes));
        let failures = outcomes
            .into_iter()
            .enumerate()
            .filter_map(|(index, outcome)| match outcome {
                WriteOutcome::Failed(e) => Some(WriteFailure::new(index, &e)),
                WriteOutcome::Written | WriteOutcome::Superseded => None,
            })
            .collect();
        Ok(WriteReport {
            tickets,
            failures,
            versions: Vec::new(),
        })
    }

    fn resolve(&mut self, _env: Env, report: Self::Output) -> Result<Self::JsValue> {
        Ok(report)
    }
}

/// Deletes the files of sessions marked for removal; reports the failures by position.
pub struct RemoveTask {
    store: Arc<OrderedWrites<FileBackend>>,
    /// `None` for an id that cannot name a file: it has none to delete.
    ids: Vec<Option<SessionId>>,
}

impl RemoveTask {
    pub fn new(store: Arc<OrderedWrites<FileBackend>>, ids: Vec<Option<SessionId>>) -> Self {
        Self { store, ids }
    }
}

impl Task for RemoveTask {
    type Output = Vec<WriteFailure>;
    type JsValue = Vec<WriteFailure>;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(run_in_background(|| {
            self.ids
                .iter()
                .enumerate()
                .filter_map(|(index, id)| {
                    let removed = self.store.remove_marked(id.as_ref()?);
                    removed.err().map(|e| WriteFailure::new(index, &e))
                })
                .collect()
        }))
    }

    fn resolve(&mut self, _env: Env, failures: Self::Output) -> Result<Self::JsValue> {
        Ok(failures)
    }
}

pub struct SweepTask {
    store: Arc<OrderedWrites<FileBackend>>,
    options: SweepOptions,
}

impl SweepTask {
    pub fn new(store: Arc<OrderedWrites<FileBackend>>, options: SweepOptions) -> Self {
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
