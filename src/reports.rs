//! What the core reports, as JavaScript sees it.

use napi_derive::napi;
use session_core::file::sweep::SweepReport;
use session_core::file::SessionFiles;
use session_core::writes::{Outcome, Report, Write, WriteQueue, WriteTarget};
use session_core::{SessionId, StoreError};

use crate::errors::{Failure, WriteFailure};

/// What `queueWrites` accepted and refused.
#[napi(object)]
pub struct QueuedBatch {
    /// Tickets of the accepted items, in order; reports name the writes they settle by these.
    pub tickets: Vec<f64>,
    /// Items refused at once, by position, for an id that cannot name a session.
    pub refused: Vec<WriteFailure>,
}

/// What one report of the write queue did with the oldest queued writes, by their tickets in
/// queue order: each is done (written, or superseded by a newer save, write or delete) unless
/// listed among the failures, whose `index` is a position in `tickets`. Writes are told by
/// ticket, never by id, so every queued write is settled exactly once.
#[napi(object)]
pub struct WriteReport {
    pub tickets: Vec<f64>,
    pub failures: Vec<WriteFailure>,
    /// For stores that version what they store (Redis): the version each write stored, by
    /// position in `tickets` (0 where it stored none).
    pub versions: Vec<f64>,
}

impl From<Report> for WriteReport {
    fn from(report: Report) -> Self {
        let mut failures = Vec::new();
        let mut versions = Vec::with_capacity(report.outcomes.len());
        for (index, outcome) in report.outcomes.into_iter().enumerate() {
            versions.push(match outcome {
                Outcome::Written(version) => version as f64,
                Outcome::Superseded => 0.0,
                Outcome::Failed(e) => {
                    failures.push(WriteFailure::new(index, e));
                    0.0
                }
            });
        }
        Self {
            tickets: report.tickets.into_iter().map(|t| t as f64).collect(),
            failures,
            versions,
        }
    }
}

/// Queues `writes` (each with its position in the caller's batch); `refused`: the items the
/// conversion refused already.
pub fn queued<T: WriteTarget>(
    queue: &WriteQueue<T>,
    writes: Vec<(u32, Write)>,
    refused: Vec<WriteFailure>,
) -> QueuedBatch {
    let writes = writes.into_iter().map(|(_, write)| write).collect();
    let tickets = queue.queue(writes);
    QueuedBatch {
        tickets: tickets.into_iter().map(|t| t as f64).collect(),
        refused,
    }
}

/// Stores `writes` (each with its position in the caller's batch) before returning; the
/// failures, with those the conversion refused already, by position.
pub fn written_now(
    target: &impl WriteTarget,
    writes: Vec<(u32, Write)>,
    mut failures: Vec<WriteFailure>,
) -> Vec<WriteFailure> {
    let (positions, writes): (Vec<u32>, Vec<Write>) = writes.into_iter().unzip();
    for (position, result) in positions.into_iter().zip(target.write_now(writes)) {
        if let Err(e) = result {
            failures.push(WriteFailure::new(position as usize, e));
        }
    }
    failures.sort_by_key(|f| f.index);
    failures
}

/// Failures told by id.
pub fn failures(items: Vec<(SessionId, StoreError)>) -> Vec<Failure> {
    items.iter().map(|(id, e)| Failure::new(id, e)).collect()
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

impl SweepSummary {
    /// `report` of a sweep of `files`, whose paths name the corrupt files.
    pub fn new(report: SweepReport, files: &impl SessionFiles) -> Self {
        let corrupt = report
            .corrupt
            .into_iter()
            .map(|(id, reason)| {
                let place = files.path_of(&id).display().to_string();
                (id, StoreError::Corrupt { place, reason })
            })
            .collect();
        // Kept, as files that cannot be read are.
        let sealed = report.sealed.into_iter().map(|(id, reason)| {
            let place = files.path_of(&id).display().to_string();
            (id, StoreError::Sealed { place, reason })
        });
        let unreadable = report.unreadable.into_iter().chain(sealed).collect();
        Self {
            scanned: report.scanned as u32,
            expired: report.expired as u32,
            removed: report.removed as u32,
            kept_busy: report.kept_busy as u32,
            corrupt: failures(corrupt),
            removed_corrupt: report.removed_corrupt as u32,
            unreadable: failures(unreadable),
            failed: failures(report.failed),
            temporaries_removed: report.temporaries_removed as u32,
        }
    }
}
