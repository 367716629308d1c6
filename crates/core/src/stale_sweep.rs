//! Deleting expired session files, judged by their timestamps alone.

use crate::backend::{FileVersion, SessionBackend};
use crate::error::StoreError;
use crate::expiry::ExpiryPolicy;
use crate::id::SessionId;
use crate::session_file::{self, Corruption, SessionTimes};
use crate::store::SessionStore;

/// What a session file holds, as far as upkeep is concerned.
#[derive(Debug)]
pub enum FileState {
    Session(SessionTimes),
    Corrupt(Corruption),
    Unreadable(StoreError),
}

/// Reads one file; `None` when it vanished in the meantime.
pub fn inspect<B: SessionBackend>(backend: &B, id: &SessionId) -> Option<(FileVersion, FileState)> {
    // The version is taken first: if the file is replaced after it, the delete re-check fails.
    let version = backend.version(id)?;
    let state = match backend.read(id) {
        Ok(None) => return None,
        Ok(Some(bytes)) => match session_file::parse_times(&bytes) {
            Ok(times) => FileState::Session(times),
            Err(reason) => FileState::Corrupt(reason),
        },
        Err(e) => FileState::Unreadable(e),
    };
    Some((version, state))
}

#[derive(Debug, Clone, Copy)]
pub struct SweepOptions {
    pub policy: ExpiryPolicy,
    /// Epoch milliseconds the limits are measured from.
    pub now: f64,
    pub remove_corrupt: bool,
    /// Count what would go, delete nothing.
    pub dry_run: bool,
}

#[derive(Debug, Default)]
pub struct SweepReport {
    pub scanned: usize,
    pub expired: usize,
    pub removed: usize,
    /// Expired on disk but in use or rewritten meanwhile, so kept.
    pub kept_busy: usize,
    pub corrupt: Vec<(SessionId, Corruption)>,
    pub removed_corrupt: usize,
    pub unreadable: Vec<(SessionId, StoreError)>,
    pub failed: Vec<(SessionId, StoreError)>,
    pub temporaries_removed: usize,
}

/// Walks the directory once. Sessions the caller holds are skipped: their live values, not
/// their files, decide. `progress` gets (files done, files in all).
pub fn sweep<B: SessionBackend>(
    store: &SessionStore<B>,
    options: SweepOptions,
    progress: impl FnMut(usize, usize),
) -> Result<SweepReport, StoreError> {
    Ok(sweep_ids(store, store.ids()?, options, progress))
}

/// [`sweep`] over the given ids only, for callers that walk a large directory in batches.
pub fn sweep_ids<B: SessionBackend>(
    store: &SessionStore<B>,
    ids: Vec<SessionId>,
    options: SweepOptions,
    mut progress: impl FnMut(usize, usize),
) -> SweepReport {
    let total = ids.len();
    let mut report = SweepReport::default();
    for (done, id) in ids.into_iter().enumerate() {
        progress(done, total);
        if store.is_busy(&id) {
            continue;
        }
        let Some((version, state)) = inspect(store.backend(), &id) else {
            continue;
        };
        report.scanned += 1;
        let was_corrupt = matches!(state, FileState::Corrupt(_));
        let remove = match state {
            FileState::Session(times) => {
                let expired =
                    options
                        .policy
                        .is_expired(times.created_at, times.last_used, options.now);
                report.expired += usize::from(expired);
                expired
            }
            FileState::Corrupt(reason) => {
                store.note_corrupt(&id, version);
                report.corrupt.push((id.clone(), reason));
                options.remove_corrupt
            }
            FileState::Unreadable(e) => {
                report.unreadable.push((id.clone(), e));
                false
            }
        };
        if !remove || options.dry_run {
            continue;
        }
        match store.remove_if_untouched(&id, version) {
            Ok(true) if was_corrupt => report.removed_corrupt += 1,
            Ok(true) => report.removed += 1,
            Ok(false) => report.kept_busy += 1,
            Err(e) => report.failed.push((id, e)),
        }
    }
    progress(total, total);
    if !options.dry_run {
        report.temporaries_removed = store.backend().remove_abandoned_temporaries();
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_backend::FileBackend;
    use std::fs;

    const DAY: f64 = 86_400_000.0;

    fn session(created_at: f64, last_used: f64) -> String {
        format!(
            r#"{{"data":{{"createdAt":{created_at},"lastUsed":{last_used}}},"serializedCookieJar":"{{}}"}}"#
        )
    }

    fn setup() -> (tempfile::TempDir, SessionStore<FileBackend>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::new(FileBackend::open(dir.path(), false).unwrap());
        store.backend().drop_spares();
        let write = |name: &str, body: &str| fs::write(dir.path().join(name), body).unwrap();
        write("fresh.rhfsession", &session(9.0 * DAY, 9.5 * DAY));
        write("stale.rhfsession", &session(9.0 * DAY, 9.0 * DAY));
        write("old.rhfsession", &session(1.0 * DAY, 9.9 * DAY));
        write("held.rhfsession", &session(1.0 * DAY, 1.0 * DAY));
        write("broken.rhfsession", r#"{"data":{"#);
        fs::create_dir(dir.path().join("dir.rhfsession")).unwrap();
        write("notes.txt", "not a session");
        (dir, store)
    }

    fn options(remove_corrupt: bool, dry_run: bool) -> SweepOptions {
        SweepOptions {
            policy: ExpiryPolicy::new(Some(0.5 * DAY), Some(4.0 * DAY)),
            now: 10.0 * DAY,
            remove_corrupt,
            dry_run,
        }
    }

    fn names(dir: &tempfile::TempDir) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn removes_expired_files_and_keeps_held_sessions() {
        let (dir, store) = setup();
        store.load(&SessionId::parse("held").unwrap()).unwrap();
        let report = sweep(&store, options(false, false), |_, _| {}).unwrap();
        assert_eq!((report.scanned, report.expired, report.removed), (4, 2, 2));
        assert_eq!(report.corrupt.len(), 1);
        assert_eq!(
            names(&dir),
            [
                "broken.rhfsession",
                "dir.rhfsession",
                "fresh.rhfsession",
                "held.rhfsession",
                "notes.txt"
            ]
        );
    }

    #[test]
    fn removes_corrupt_files_only_when_asked() {
        let (dir, store) = setup();
        let report = sweep(&store, options(true, false), |_, _| {}).unwrap();
        assert_eq!(report.removed_corrupt, 1);
        assert!(!names(&dir).contains(&"broken.rhfsession".to_string()));
        assert!(names(&dir).contains(&"dir.rhfsession".to_string()));
    }

    #[test]
    fn a_dry_run_deletes_nothing_and_reports_progress() {
        let (dir, store) = setup();
        let before = names(&dir);
        let mut last = (0, 0);
        let report = sweep(&store, options(true, true), |done, total| {
            last = (done, total)
        })
        .unwrap();
        assert_eq!(report.expired, 3);
        assert_eq!(names(&dir), before);
        assert_eq!(last, (5, 5));
    }
}
