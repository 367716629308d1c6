//! Session files in one directory, replaced atomically and readable by their owner only.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::backend::{FileVersion, SessionBackend, StagedWrite};
use crate::error::StoreError;
use crate::id::{self, SessionId};
use crate::spare_files::{Spare, SparePool};

/// Temporary files start with this and end with [`TEMP_SUFFIX`]; the writer's pid sits between,
/// so a cleanup can tell an abandoned file from one another live process is writing.
const TEMP_PREFIX: &str = ".rhfs-";
const TEMP_SUFFIX: &str = ".tmp";
/// A dead writer's file is left this long in case its pid was read mid-reuse.
const DEAD_WRITER_GRACE: Duration = Duration::from_secs(60);
/// Past this age a temporary file of another pid is abandoned even if that pid is alive: the pid
/// was reused, or belongs to another container sharing the directory.
const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug)]
pub struct FileBackend {
    dir: PathBuf,
    durable: bool,
    spares: Arc<SparePool>,
}

impl FileBackend {
    /// Opens an existing, writable directory. With `durable`, every write is fsynced, file and
    /// directory, before it counts as done.
    pub fn open(dir: impl Into<PathBuf>, durable: bool) -> Result<Self, StoreError> {
        let backend = Self::open_for_reading(dir)?;
        // Permission bits do not tell (root, ACLs, read-only mounts); a real file does. It is
        // kept as the first spare.
        let probe = backend.spares.take();
        let probe = probe.map_err(|e| StoreError::io("write to", &backend.dir, e))?;
        backend.spares.put_back(probe.into_path());
        Ok(Self { durable, ..backend })
    }

    /// Opens an existing directory without checking that it is writable, for inspection.
    pub fn open_for_reading(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        let meta = fs::metadata(&dir).map_err(|e| StoreError::io("open", &dir, e))?;
        if !meta.is_dir() {
            return Err(StoreError::NotADirectory { path: dir });
        }
        let spares = SparePool::new(dir.clone(), temp_prefix(), TEMP_SUFFIX);
        Ok(Self {
            dir,
            durable: false,
            spares: Arc::new(spares),
        })
    }

    /// Deletes the spare files kept for later writes and keeps none from now on, for shutdown.
    pub fn drop_spares(&self) {
        self.spares.retire();
    }
}

fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{}-", std::process::id())
}

fn version_of(meta: &fs::Metadata) -> FileVersion {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    FileVersion {
        inode,
        modified_ns,
        len: meta.len(),
    }
}

impl SessionBackend for FileBackend {
    type Staged = StagedFile;

    fn ids(&self) -> Result<Vec<SessionId>, StoreError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| StoreError::io("list", &self.dir, e))?;
        let mut ids = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(id::from_file_name) else {
                continue;
            };
            let is_file = match entry.file_type() {
                Ok(t) if t.is_symlink() => entry.path().is_file(),
                Ok(t) => t.is_file(),
                Err(_) => false,
            };
            if is_file {
                ids.push(SessionId::parse(id).expect("from_file_name validates"));
            }
        }
        Ok(ids)
    }

    fn path_of(&self, id: &SessionId) -> PathBuf {
        self.dir.join(id.file_name())
    }

    fn version(&self, id: &SessionId) -> Option<FileVersion> {
        fs::metadata(self.path_of(id)).ok().map(|m| version_of(&m))
    }

    fn read(&self, id: &SessionId) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(id);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", path, e)),
        }
    }

    fn stage(&self, id: &SessionId, contents: &[u8]) -> Result<StagedFile, StoreError> {
        let mut spare = self
            .spares
            .take()
            .map_err(|e| StoreError::io("create a temporary file in", &self.dir, e))?;
        let target = self.path_of(id);
        if let Err(e) = spare.write(contents, self.durable) {
            self.spares.put_back(spare.into_path());
            return Err(StoreError::io("write", &target, e));
        }
        Ok(StagedFile {
            spares: self.spares.clone(),
            spare: Some(spare),
            target,
            durable: self.durable,
        })
    }

    fn remove(&self, id: &SessionId) -> Result<bool, StoreError> {
        let path = self.path_of(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io("delete", path, e)),
        }
    }

    fn remove_abandoned_temporaries(&self) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let now = SystemTime::now();
        let own_pid = std::process::id();
        entries
            .flatten()
            .filter(|entry| {
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(writer_pid) else {
                    return false;
                };
                let Ok(age) = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| now.duration_since(t).unwrap_or_default())
                else {
                    return false;
                };
                pid != own_pid
                    && ((age > DEAD_WRITER_GRACE && !process_is_alive(pid))
                        || age > ABANDONED_AFTER)
            })
            .filter(|entry| fs::remove_file(entry.path()).is_ok())
            .count()
    }
}

/// The pid in a temporary file name of ours, `.rhfs-<pid>-<random>.tmp`.
fn writer_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    let (pid, _) = rest.strip_suffix(TEMP_SUFFIX)?.split_once('-')?;
    pid.parse().ok()
}

#[cfg(unix)]
fn process_is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence only; EPERM means it exists under another user.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_is_alive(_pid: u32) -> bool {
    true
}

/// A spare holding the new contents. Dropping it uncommitted returns the spare to the pool.
#[derive(Debug)]
pub struct StagedFile {
    spares: Arc<SparePool>,
    spare: Option<Spare>,
    target: PathBuf,
    durable: bool,
}

impl StagedWrite for StagedFile {
    fn commit(mut self) -> Result<(), StoreError> {
        let spare = self.spare.take().expect("a staged file is committed once");
        self.spares
            .install(spare, &self.target)
            .map_err(|e| StoreError::io("replace", &self.target, e))?;
        if self.durable {
            if let Some(dir) = self.target.parent() {
                fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| StoreError::io("sync", dir, e))?;
            }
        }
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(spare) = self.spare.take() {
            self.spares.put_back(spare.into_path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn id(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }

    #[test]
    fn writes_replace_files_atomically_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::open(dir.path(), false).unwrap();
        backend.stage(&id("a"), b"one").unwrap().commit().unwrap();
        let staged = backend.stage(&id("a"), b"two").unwrap();
        assert_eq!(backend.read(&id("a")).unwrap().unwrap(), b"one");
        staged.commit().unwrap();
        assert_eq!(backend.read(&id("a")).unwrap().unwrap(), b"two");
        let mode = fs::metadata(dir.path().join("a.rhfsession"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        backend.drop_spares();
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn a_dropped_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::open(dir.path(), true).unwrap();
        drop(backend.stage(&id("a"), b"x").unwrap());
        assert!(!dir.path().join("a.rhfsession").exists());
        backend.drop_spares();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn lists_only_session_files() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::open(dir.path(), false).unwrap();
        backend.drop_spares();
        fs::write(dir.path().join("a.rhfsession"), "{}").unwrap();
        fs::write(dir.path().join("notes.rhfsession.tmp"), "").unwrap();
        fs::write(dir.path().join("README.txt"), "").unwrap();
        fs::create_dir(dir.path().join("d.rhfsession")).unwrap();
        let ids: Vec<_> = backend
            .ids()
            .unwrap()
            .into_iter()
            .map(SessionId::into_string)
            .collect();
        assert_eq!(ids, ["a"]);
        assert_eq!(backend.read(&id("d")).unwrap_err().code(), "EISDIR");
        assert_eq!(backend.read(&id("missing")).unwrap(), None);
        assert!(!backend.remove(&id("missing")).unwrap());
    }

    #[test]
    fn refuses_missing_and_non_directories() {
        let dir = tempfile::tempdir().unwrap();
        let missing = FileBackend::open(dir.path().join("nope"), false).unwrap_err();
        assert_eq!(missing.code(), "ENOENT");
        assert!(missing.to_string().contains("nope"));
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert_eq!(
            FileBackend::open(&file, false).unwrap_err().code(),
            "ENOTDIR"
        );
    }

    #[test]
    fn removes_only_abandoned_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::open(dir.path(), false).unwrap();
        backend.drop_spares();
        let old = SystemTime::now() - Duration::from_secs(120);
        let dead = dir.path().join(".rhfs-2147483646-abc.tmp");
        let mine = dir
            .path()
            .join(format!(".rhfs-{}-abc.tmp", std::process::id()));
        let fresh_dead = dir.path().join(".rhfs-2147483645-abc.tmp");
        for path in [&dead, &mine, &fresh_dead] {
            fs::write(path, "").unwrap();
        }
        for path in [&dead, &mine] {
            fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        assert_eq!(backend.remove_abandoned_temporaries(), 1);
        assert!(!dead.exists() && mine.exists() && fresh_dead.exists());
    }

    #[test]
    fn temporaries_never_look_like_sessions() {
        assert_eq!(
            id::from_file_name(&format!("{}x{TEMP_SUFFIX}", temp_prefix())),
            None
        );
        assert_eq!(writer_pid(".rhfs-12-xyz.tmp"), Some(12));
        assert_eq!(writer_pid("a.rhfsession"), None);
    }
}
