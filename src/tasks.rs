//! Work that runs on the libuv thread pool, off the JavaScript thread.

use std::sync::Arc;

use napi::{Env, Result, Task};
use session_core::{
    sweep, FileBackend, QueuedWrite, SessionStore, SweepOptions, SweepReport, WriteOutcome,
};

use crate::errors::Failure;
use crate::sweep_summary::SweepSummary;

pub struct WriteTask {
    store: Arc<SessionStore<FileBackend>>,
    writes: Vec<QueuedWrite>,
    failures: Vec<Failure>,
}

impl WriteTask {
    pub fn new(
        store: Arc<SessionStore<FileBackend>>,
        writes: Vec<QueuedWrite>,
        failures: Vec<Failure>,
    ) -> Self {
        Self {
            store,
            writes,
            failures,
        }
    }
}

impl Task for WriteTask {
    type Output = Vec<Failure>;
    type JsValue = Vec<Failure>;

    fn compute(&mut self) -> Result<Self::Output> {
        let writes = std::mem::take(&mut self.writes);
        let ids: Vec<String> = writes.iter().map(|w| w.id().to_string()).collect();
        let mut failures = std::mem::take(&mut self.failures);
        for (id, outcome) in ids.iter().zip(self.store.write_queued(writes)) {
            if let WriteOutcome::Failed(e) = outcome {
                failures.push(Failure::new(id, &e));
            }
        }
        Ok(failures)
    }

    fn resolve(&mut self, _env: Env, failures: Self::Output) -> Result<Self::JsValue> {
        Ok(failures)
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
        sweep(&self.store, self.options, |_, _| {})
            .map_err(|e| napi::Error::new(napi::Status::GenericFailure, e.to_string()))
    }

    fn resolve(&mut self, _env: Env, report: Self::Output) -> Result<Self::JsValue> {
        Ok(SweepSummary::new(report, self.store.backend()))
    }
}
