//! Deleting expired session files, judged by their timestamps alone.

use crate::codec::{Sealed, Stored};
use crate::error::StoreError;
use crate::file::files::inspect;
use crate::file::files::SessionFiles;
use crate::file::sessions::FileSessions;
use crate::session::expiry::ExpiryPolicy;
use crate::session::format::Corruption;
use crate::session::id::SessionId;
use crate::writes::background::run_in_background;

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
    /// Files this store cannot decode nor judge (see `codec::Sealed`), kept.
    pub sealed: Vec<(SessionId, Sealed)>,
    pub unreadable: Vec<(SessionId, StoreError)>,
    pub failed: Vec<(SessionId, StoreError)>,
    pub temporaries_removed: usize,
}

/// Files are read on up to this many threads: deleting is mostly waiting for the disk.
const MAX_WORKERS: usize = 4;

/// Walks the directory once, on low-priority threads. Sessions the caller holds are skipped:
/// their live values, not their files, decide.
pub fn sweep<B: SessionFiles>(
    store: &FileSessions<B>,
    options: SweepOptions,
) -> Result<SweepReport, StoreError> {
    run_in_background(|| {
        let mut report = sweep_ids(store, store.ids()?, options);
        if !options.dry_run {
            report.temporaries_removed = store.files().remove_abandoned_temporaries();
        }
        Ok(report)
    })
}

/// [`sweep`] over the given ids only, for callers that walk a large directory in batches;
/// temporary files are left to [`SessionFiles::remove_abandoned_temporaries`].
pub fn sweep_ids<B: SessionFiles>(
    store: &FileSessions<B>,
    ids: Vec<SessionId>,
    options: SweepOptions,
) -> SweepReport {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
    let part_len = ids.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = ids
            .chunks(part_len)
            .map(|part| scope.spawn(move || sweep_part(store, part, options)))
            .collect();
        parts
            .into_iter()
            .map(|part| part.join().expect("a sweep worker does not panic"))
            .fold(SweepReport::default(), SweepReport::merge)
    })
}

impl SweepReport {
    fn merge(mut self, other: SweepReport) -> SweepReport {
        self.scanned += other.scanned;
        self.expired += other.expired;
        self.removed += other.removed;
        self.kept_busy += other.kept_busy;
        self.corrupt.extend(other.corrupt);
        self.removed_corrupt += other.removed_corrupt;
        self.sealed.extend(other.sealed);
        self.unreadable.extend(other.unreadable);
        self.failed.extend(other.failed);
        self.temporaries_removed += other.temporaries_removed;
        self
    }
}

fn sweep_part<B: SessionFiles>(
    store: &FileSessions<B>,
    ids: &[SessionId],
    options: SweepOptions,
) -> SweepReport {
    let mut report = SweepReport::default();
    for id in ids {
        if store.is_held(id) {
            continue;
        }
        let Some((version, state)) = inspect(store.files(), store.codec(), id) else {
            continue;
        };
        report.scanned += 1;
        let was_corrupt = matches!(state, Ok(Stored::Corrupt(_)));
        let remove = match state {
            Ok(Stored::Times(times)) => {
                let expired =
                    options
                        .policy
                        .is_expired(times.created_at, times.last_used, options.now);
                report.expired += usize::from(expired);
                expired
            }
            Ok(Stored::Corrupt(reason)) => {
                store.note_corrupt(id, version);
                report.corrupt.push((id.clone(), reason));
                options.remove_corrupt
            }
            Ok(Stored::Sealed(why)) => {
                report.sealed.push((id.clone(), why));
                false
            }
            Err(e) => {
                report.unreadable.push((id.clone(), e));
                false
            }
        };
        if !remove || options.dry_run {
            continue;
        }
        match store.remove_if_untouched(id, version) {
            Ok(true) if was_corrupt => report.removed_corrupt += 1,
            Ok(true) => report.removed += 1,
            Ok(false) => report.kept_busy += 1,
            Err(e) => report.failed.push((id.clone(), e)),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use crate::file::directory::Directory;
    use std::fs;

    const DAY: f64 = 86_400_000.0;

    fn session(created_at: f64, last_used: f64) -> String {
        format!(
            r#"{{"data":{{"createdAt":{created_at},"lastUsed":{last_used}}},"serializedCookieJar":"{{}}"}}"#
        )
    }

    fn setup() -> (tempfile::TempDir, FileSessions<Directory>) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessions::new(Directory::open(dir.path(), false).unwrap(), Codec::plain());
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
        let report = sweep(&store, options(false, false)).unwrap();
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
        let report = sweep(&store, options(true, false)).unwrap();
        assert_eq!(report.removed_corrupt, 1);
        assert!(!names(&dir).contains(&"broken.rhfsession".to_string()));
        assert!(names(&dir).contains(&"dir.rhfsession".to_string()));
    }

    #[test]
    fn a_dry_run_deletes_nothing() {
        let (dir, store) = setup();
        let before = names(&dir);
        let report = sweep(&store, options(true, true)).unwrap();
        assert_eq!(report.expired, 3);
        assert_eq!(names(&dir), before);
    }

    #[test]
    fn many_files_are_judged_exactly_once_across_workers() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSessions::new(Directory::open(dir.path(), false).unwrap(), Codec::plain());
        for i in 0..101 {
            let at = if i % 2 == 0 { 9.8 } else { 1.0 };
            let name = format!("s{i}.rhfsession");
            fs::write(dir.path().join(name), session(at * DAY, at * DAY)).unwrap();
        }
        let report = sweep(&store, options(false, false)).unwrap();
        assert_eq!((report.scanned, report.removed), (101, 50));
    }
}
