//! Work that runs on the libuv thread pool, off the JavaScript thread.

use std::sync::Arc;

use napi::{Env, Result, Task};
use napi_derive::napi;
use session_core::{
    sweep, FileBackend, QueuedWrite, SessionBackend, SessionId, SessionStore, StoreError,
    SweepOptions, SweepReport, WriteOutcome,
};

use crate::errors::Failure;

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

#[napi(object)]
pub struct SweepSummary {
    pub scanned: u32,
    pub expired: u32,
    pub removed: u32,
    /// Expired on disk but in use or rewritten while the sweep ran, so kept.
    pub kept_busy: u32,
    pub corrupt: Vec<Failure>,
    pub removed_corrupt: u32,
    pub unreadable: Vec<Failure>,
    pub failed: Vec<Failure>,
    pub temporaries_removed: u32,
}

fn failures<E>(
    items: Vec<(SessionId, E)>,
    to_error: impl Fn(&SessionId, E) -> StoreError,
) -> Vec<Failure> {
    items
        .into_iter()
        .map(|(id, e)| Failure::new(id.as_str(), &to_error(&id, e)))
        .collect()
}

impl SweepSummary {
    fn new(report: SweepReport, backend: &FileBackend) -> Self {
        let corrupt = failures(report.corrupt, |id, reason| StoreError::Corrupt {
            path: backend.path_of(id),
            reason,
        });
        Self {
            scanned: report.scanned as u32,
            expired: report.expired as u32,
            removed: report.removed as u32,
            kept_busy: report.kept_busy as u32,
            corrupt,
            removed_corrupt: report.removed_corrupt as u32,
            unreadable: failures(report.unreadable, |_, e| e),
            failed: failures(report.failed, |_, e| e),
            temporaries_removed: report.temporaries_removed as u32,
        }
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
