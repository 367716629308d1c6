//! A sweep's report as JavaScript sees it.

use napi_derive::napi;
use session_core::{FileBackend, SessionBackend, SessionId, StoreError, SweepReport};

use crate::errors::Failure;

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
    pub fn new(report: SweepReport, backend: &FileBackend) -> Self {
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
