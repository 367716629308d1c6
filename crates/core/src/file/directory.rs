//! Session files in one directory, replaced atomically and readable by their owner only.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::codec::stored_limit;
use crate::error::StoreError;
use crate::file::files::{FileVersion, SessionFiles, StagedWrite};
use crate::random::random_token;
use crate::session::id::{self, SessionId};

/// Temporary files start with this and end with [`TEMP_SUFFIX`]; the writer's pid sits between,
/// so a cleanup can tell an abandoned file from one another live process is writing.
const TEMP_PREFIX: &str = ".rhfs-";
const TEMP_SUFFIX: &str = ".tmp";
/// A dead writer's file is left this long in case its pid was read mid-reuse.
const DEAD_WRITER_GRACE: Duration = Duration::from_secs(60);
/// Past this age a temporary file is abandoned even if its pid is alive, even if it is this
/// process's: the pid was reused, or belongs to another container sharing the directory.
const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// Real sessions (cookies and the localStorage rammerhead syncs) stay far below this; a larger
/// file is refused unread rather than allowed to exhaust memory.
pub const DEFAULT_MAX_SESSION_BYTES: u64 = 64 * 1024 * 1024;

/// Session files in one directory. Every write goes to a new file that is renamed over the
/// session file, so a file that has once been visible under a session's name is never written
/// again: a reader that opened it, of any program, reads one complete version of that session.
#[derive(Debug)]
pub struct Directory {
    dir: PathBuf,
    durable: bool,
    max_session_bytes: u64,
    /// Cleared once the file system refuses `RENAME_EXCHANGE`.
    can_exchange: Arc<AtomicBool>,
    /// Random, so that stores of processes with the same pid (containers sharing a directory)
    /// or of one process never pick the same temporary name.
    token: u64,
    /// Numbers the temporary files of this directory.
    next_temporary: AtomicU64,
}

impl Directory {
    /// Opens an existing, writable directory. With `durable`, every write is fsynced, file and
    /// directory, before it counts as done.
    pub fn open(dir: impl Into<PathBuf>, durable: bool) -> Result<Self, StoreError> {
        let directory = Self::open_for_reading(dir)?;
        // Permission bits do not tell (root, ACLs, read-only mounts); a real file does.
        directory.temporary_file()?;
        Ok(Self {
            durable,
            ..directory
        })
    }

    /// Opens an existing directory without checking that it is writable, for inspection.
    pub fn open_for_reading(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        let meta = fs::metadata(&dir).map_err(|e| StoreError::io("open", &dir, e))?;
        if !meta.is_dir() {
            return Err(StoreError::NotADirectory { path: dir });
        }
        Ok(Self {
            dir,
            durable: false,
            max_session_bytes: DEFAULT_MAX_SESSION_BYTES,
            can_exchange: Arc::new(AtomicBool::new(cfg!(target_os = "linux"))),
            token: random_token(),
            next_temporary: AtomicU64::new(0),
        })
    }

    /// Files larger than this are not read (`ERR_SESSION_TOO_LARGE`).
    pub fn with_max_session_bytes(self, max_session_bytes: u64) -> Self {
        Self {
            max_session_bytes,
            ..self
        }
    }

    /// A new file with mode 0600, created exclusively: an existing name (a leftover, a planted
    /// FIFO or link) is never opened, the next name is tried instead.
    fn temporary_file(&self) -> Result<TemporaryFile, StoreError> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut attempts = 0;
        loop {
            let path = self.temporary_name();
            match options.open(&path) {
                Ok(file) => {
                    let renamed = false;
                    return Ok(TemporaryFile {
                        file,
                        path,
                        renamed,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                    attempts += 1;
                }
                Err(e) => return Err(StoreError::io("create a temporary file in", &self.dir, e)),
            }
        }
    }

    /// The next temporary name of this directory.
    fn temporary_name(&self) -> PathBuf {
        let n = self.next_temporary.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!("{}{n}{TEMP_SUFFIX}", self.temp_prefix()))
    }

    /// `.rhfs-<pid>-<token>-`: the pid first, for the cleanup of abandoned files.
    fn temp_prefix(&self) -> String {
        format!("{TEMP_PREFIX}{}-{:016x}-", std::process::id(), self.token)
    }
}

/// A file of ours under a temporary name, deleted when dropped unless renamed away.
#[derive(Debug)]
struct TemporaryFile {
    file: File,
    path: PathBuf,
    renamed: bool,
}

impl TemporaryFile {
    /// Gives the file the name `target`, replacing whatever had it, in one step.
    ///
    /// Where it can, it exchanges the two names (`renameat2(RENAME_EXCHANGE)`) and then deletes
    /// the old file under the temporary name: on ext4 a rename over an existing file forces the
    /// new file's blocks to be allocated and written out at once (`auto_da_alloc`), which costs
    /// several times the whole write; an exchange does not. The old file is only ever deleted,
    /// never written: a reader that opened it keeps reading that complete version.
    fn install(mut self, target: &Path, can_exchange: &AtomicBool) -> io::Result<()> {
        // A directory under the session's name is refused, as a rename over it would be.
        if fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        if can_exchange.load(Ordering::Relaxed) {
            match rename_with(&self.path, target, RENAME_EXCHANGE) {
                Ok(()) => {
                    self.renamed = true;
                    // What the session's name held is only ever deleted; if that fails (a
                    // directory that appeared meanwhile, say) it is left for the sweep of
                    // abandoned temporary files.
                    let _ = fs::remove_file(&self.path);
                    return Ok(());
                }
                // No file under the session's name yet: a plain rename.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                    ) =>
                {
                    can_exchange.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        fs::rename(&self.path, target)?;
        self.renamed = true;
        Ok(())
    }
}

#[cfg(target_os = "linux")]
const RENAME_EXCHANGE: libc::c_uint = libc::RENAME_EXCHANGE;
#[cfg(target_os = "linux")]
const RENAME_NOREPLACE: libc::c_uint = libc::RENAME_NOREPLACE;
#[cfg(not(target_os = "linux"))]
const RENAME_EXCHANGE: u32 = 2;
#[cfg(not(target_os = "linux"))]
const RENAME_NOREPLACE: u32 = 1;

/// `renameat2` with `flags`.
#[cfg(target_os = "linux")]
fn rename_with(a: &Path, b: &Path, flags: libc::c_uint) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes())?;
    let b = CString::new(b.as_os_str().as_bytes())?;
    // Through syscall(), so an older C library without the renameat2 wrapper still works.
    let result = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_with(_a: &Path, _b: &Path, _flags: u32) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Renames `a` to `b` only if nothing has the name `b`. Where the kernel cannot refuse to
/// replace, a plain rename: `b` is then a fresh temporary name no one else picks.
fn rename_without_replacing(a: &Path, b: &Path) -> io::Result<()> {
    match rename_with(a, b, RENAME_NOREPLACE) {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
            ) =>
        {
            fs::rename(a, b)
        }
        result => result,
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
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

/// Opens for reading without following a symbolic link and without waiting on a FIFO.
fn open_unfollowed(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
    );
    options.open(path)
}

/// What a name that is not a regular file is, for messages.
fn kind_of(meta: &fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

impl SessionFiles for Directory {
    type Staged = StagedFile;

    fn ids(&self) -> Result<Vec<SessionId>, StoreError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| StoreError::io("list", &self.dir, e))?;
        let mut ids = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(id::from_file_name) else {
                continue;
            };
            // Links are never followed, so a link is not a session.
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                ids.push(SessionId::parse(id).expect("from_file_name validates"));
            }
        }
        Ok(ids)
    }

    fn max_session_bytes(&self) -> u64 {
        self.max_session_bytes
    }

    fn path_of(&self, id: &SessionId) -> PathBuf {
        self.dir.join(id.file_name())
    }

    fn version(&self, id: &SessionId) -> Option<FileVersion> {
        fs::symlink_metadata(self.path_of(id))
            .ok()
            .map(|m| version_of(&m))
    }

    fn read(&self, id: &SessionId) -> Result<Option<(FileVersion, Vec<u8>)>, StoreError> {
        let path = self.path_of(id);
        let file = match open_unfollowed(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                let kind = "a symbolic link";
                return Err(StoreError::NotARegularFile { path, kind });
            }
            Err(e) => return Err(StoreError::io("read", path, e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| StoreError::io("read", &path, e))?;
        if meta.is_dir() {
            let is_dir = io::Error::from_raw_os_error(libc::EISDIR);
            return Err(StoreError::io("read", path, is_dir));
        }
        if !meta.is_file() {
            let kind = kind_of(&meta);
            return Err(StoreError::NotARegularFile { path, kind });
        }
        let limit = stored_limit(self.max_session_bytes);
        let too_large = |len| StoreError::TooLarge {
            place: path.display().to_string(),
            len,
            limit,
        };
        if meta.len() > limit {
            return Err(too_large(meta.len()));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        // Bounded again: the file may grow after the check above.
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io("read", &path, e))?;
        if bytes.len() as u64 > limit {
            return Err(too_large(bytes.len() as u64));
        }
        Ok(Some((version_of(&meta), bytes)))
    }

    fn stage(&self, id: &SessionId, contents: &[u8]) -> Result<StagedFile, StoreError> {
        // A file this store would refuse to read back is not written: the session stays with
        // its caller instead of becoming unreadable.
        let limit = stored_limit(self.max_session_bytes);
        let len = contents.len() as u64;
        if len > limit {
            let place = self.path_of(id).display().to_string();
            return Err(StoreError::TooLarge { place, len, limit });
        }
        let target = self.path_of(id);
        let mut temporary = self.temporary_file()?;
        temporary
            .file
            .write_all(contents)
            .and_then(|()| {
                if self.durable {
                    temporary.file.sync_all()
                } else {
                    Ok(())
                }
            })
            .map_err(|e| StoreError::io("write", &target, e))?;
        Ok(StagedFile {
            temporary,
            target,
            durable: self.durable,
            can_exchange: self.can_exchange.clone(),
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

    /// Checking a file and then deleting it by name would delete a file another process put
    /// there in between. So the file is first taken away from the session's name in one step
    /// (renamed to a temporary name), then checked; one that is not the judged version is put
    /// back, unless an even newer one has taken the name meanwhile.
    fn remove_if(&self, id: &SessionId, judged: FileVersion) -> Result<bool, StoreError> {
        let path = self.path_of(id);
        let mut attempts = 0;
        let taken = loop {
            let taken = self.temporary_name();
            match rename_without_replacing(&path, &taken) {
                Ok(()) => break taken,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                // Another writer's file, or a planted one: never replaced, the next name is tried.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                    attempts += 1;
                }
                Err(e) => return Err(StoreError::io("delete", path, e)),
            }
        };
        let delete =
            |file: &Path| fs::remove_file(file).map_err(|e| StoreError::io("delete", file, e));
        if fs::symlink_metadata(&taken).is_ok_and(|m| version_of(&m) == judged) {
            delete(&taken)?;
            return Ok(true);
        }
        // Put back only where the name is still free: a newer file there is the session now.
        match fs::hard_link(&taken, &path) {
            Ok(()) => delete(&taken)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => delete(&taken)?,
            Err(_) => match rename_without_replacing(&taken, &path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => delete(&taken)?,
                Err(e) => return Err(StoreError::io("restore", &path, e)),
            },
        }
        Ok(false)
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
                // No write of this process lasts a day: an old file under its own pid was left by
                // an earlier process with the same pid (containers often run as pid 1).
                (pid != own_pid && age > DEAD_WRITER_GRACE && !process_is_alive(pid))
                    || age > ABANDONED_AFTER
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

/// A complete new file under a temporary name. Dropping it uncommitted deletes it.
#[derive(Debug)]
pub struct StagedFile {
    temporary: TemporaryFile,
    target: PathBuf,
    durable: bool,
    can_exchange: Arc<AtomicBool>,
}

impl StagedWrite for StagedFile {
    fn commit(self) -> Result<(), StoreError> {
        self.temporary
            .install(&self.target, &self.can_exchange)
            .map_err(|e| StoreError::io("replace", &self.target, e))?;
        if self.durable {
            if let Some(dir) = self.target.parent() {
                File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| StoreError::io("sync", dir, e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn id(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }

    fn contents(directory: &Directory, s: &str) -> Option<Vec<u8>> {
        directory.read(&id(s)).unwrap().map(|(_, bytes)| bytes)
    }

    #[test]
    fn writes_replace_files_atomically_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false).unwrap();
        directory.stage(&id("a"), b"one").unwrap().commit().unwrap();
        let staged = directory.stage(&id("a"), b"two").unwrap();
        assert_eq!(contents(&directory, "a").unwrap(), b"one");
        staged.commit().unwrap();
        assert_eq!(contents(&directory, "a").unwrap(), b"two");
        let mode = fs::metadata(dir.path().join("a.rhfsession"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn a_file_once_visible_is_never_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false).unwrap();
        directory
            .stage(&id("a"), b"first of a")
            .unwrap()
            .commit()
            .unwrap();
        directory
            .stage(&id("b"), b"first of b")
            .unwrap()
            .commit()
            .unwrap();
        // A reader of any program that opened the file of "a" before the next writes...
        let mut opened = File::open(dir.path().join("a.rhfsession")).unwrap();
        for round in 0..20 {
            for name in ["a", "b", "c"] {
                let text = format!("{name} round {round}");
                directory
                    .stage(&id(name), text.as_bytes())
                    .unwrap()
                    .commit()
                    .unwrap();
            }
        }
        // ...still reads that version of "a" in full, and nothing of another session.
        let mut seen = String::new();
        opened.read_to_string(&mut seen).unwrap();
        assert_eq!(seen, "first of a");
    }

    #[test]
    fn a_write_over_a_directory_fails_and_leaves_it_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false).unwrap();
        fs::create_dir(dir.path().join("d.rhfsession")).unwrap();
        let error = directory
            .stage(&id("d"), b"x")
            .unwrap()
            .commit()
            .unwrap_err();
        assert_eq!(error.code(), "EISDIR");
        assert!(dir.path().join("d.rhfsession").is_dir());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "nothing else left"
        );
    }

    #[test]
    fn a_conditional_delete_keeps_a_file_that_is_not_the_judged_one() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false).unwrap();
        directory
            .stage(&id("a"), b"judged")
            .unwrap()
            .commit()
            .unwrap();
        let judged = directory.version(&id("a")).unwrap();
        directory
            .stage(&id("a"), b"newer")
            .unwrap()
            .commit()
            .unwrap();
        assert!(!directory.remove_if(&id("a"), judged).unwrap());
        assert_eq!(contents(&directory, "a").unwrap(), b"newer");
        let newer = directory.version(&id("a")).unwrap();
        assert!(directory.remove_if(&id("a"), newer).unwrap());
        assert_eq!(directory.read(&id("a")).unwrap(), None);
        assert!(!directory.remove_if(&id("a"), newer).unwrap());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing left behind"
        );
    }

    #[test]
    fn a_dropped_write_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), true).unwrap();
        drop(directory.stage(&id("a"), b"x").unwrap());
        assert!(!dir.path().join("a.rhfsession").exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn lists_only_session_files() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false).unwrap();
        fs::write(dir.path().join("a.rhfsession"), "{}").unwrap();
        fs::write(dir.path().join("notes.rhfsession.tmp"), "").unwrap();
        fs::write(dir.path().join("README.txt"), "").unwrap();
        fs::create_dir(dir.path().join("d.rhfsession")).unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("a.rhfsession"),
            dir.path().join("link.rhfsession"),
        )
        .unwrap();
        let ids: Vec<_> = directory
            .ids()
            .unwrap()
            .into_iter()
            .map(SessionId::into_string)
            .collect();
        assert_eq!(ids, ["a"]);
        assert_eq!(directory.read(&id("d")).unwrap_err().code(), "EISDIR");
        assert_eq!(directory.read(&id("missing")).unwrap(), None);
        assert!(!directory.remove(&id("missing")).unwrap());
    }

    #[test]
    fn links_fifos_and_devices_are_refused_without_blocking_or_following() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false).unwrap();
        let secret = outside.path().join("secret.rhfsession");
        fs::write(&secret, "outside").unwrap();
        let path = |name: &str| dir.path().join(format!("{name}.rhfsession"));
        std::os::unix::fs::symlink(&secret, path("link")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", path("zero")).unwrap();
        let fifo = std::ffi::CString::new(path("fifo").into_os_string().into_encoded_bytes());
        assert_eq!(unsafe { libc::mkfifo(fifo.unwrap().as_ptr(), 0o600) }, 0);
        for (name, kind) in [
            ("link", "symbolic link"),
            ("zero", "symbolic link"),
            ("fifo", "FIFO"),
        ] {
            let error = directory.read(&id(name)).unwrap_err();
            assert_eq!(error.code(), "ERR_NOT_REGULAR_FILE", "{name}");
            assert!(error.to_string().contains(kind), "{error}");
        }
        assert!(directory.ids().unwrap().is_empty());
        assert!(directory.remove(&id("link")).unwrap());
        assert_eq!(fs::read(&secret).unwrap(), b"outside", "the target is kept");
    }

    #[test]
    fn contents_over_the_limit_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false)
            .unwrap()
            .with_max_session_bytes(4);
        // The limit is on the JSON; a file holds it encoded, a little longer at worst.
        let longest = vec![b'1'; stored_limit(4) as usize];
        directory
            .stage(&id("a"), &longest)
            .unwrap()
            .commit()
            .unwrap();
        let error = directory
            .stage(&id("a"), &[longest.as_slice(), b"1"].concat())
            .unwrap_err();
        assert_eq!(error.code(), "ERR_SESSION_TOO_LARGE");
        assert_eq!(contents(&directory, "a").unwrap(), longest);
    }

    #[test]
    fn the_default_limit_is_64_mib() {
        assert_eq!(DEFAULT_MAX_SESSION_BYTES, 64 << 20);
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false).unwrap();
        let large = vec![b'x'; 2 << 20];
        directory.stage(&id("a"), &large).unwrap().commit().unwrap();
        assert_eq!(contents(&directory, "a").unwrap().len(), large.len());
    }

    #[test]
    fn files_over_the_limit_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false)
            .unwrap()
            .with_max_session_bytes(4);
        let longest = vec![b'1'; stored_limit(4) as usize];
        fs::write(dir.path().join("ok.rhfsession"), &longest).unwrap();
        fs::write(
            dir.path().join("big.rhfsession"),
            [longest.as_slice(), b"1"].concat(),
        )
        .unwrap();
        assert_eq!(contents(&directory, "ok").unwrap(), longest);
        let error = directory.read(&id("big")).unwrap_err();
        assert_eq!(error.code(), "ERR_SESSION_TOO_LARGE");
        assert!(error.to_string().contains("1029 bytes"), "{error}");
    }

    #[test]
    fn refuses_missing_and_non_directories() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Directory::open(dir.path().join("nope"), false).unwrap_err();
        assert_eq!(missing.code(), "ENOENT");
        assert!(missing.to_string().contains("nope"));
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert_eq!(Directory::open(&file, false).unwrap_err().code(), "ENOTDIR");
    }

    #[test]
    fn removes_only_abandoned_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false).unwrap();
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
        assert_eq!(directory.remove_abandoned_temporaries(), 1);
        assert!(!dead.exists() && mine.exists() && fresh_dead.exists());
    }

    #[test]
    fn a_live_writer_and_this_process_keep_their_temporaries_for_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false).unwrap();
        let live = std::os::unix::process::parent_id();
        let aged = |name: &str, age: Duration| {
            let path = dir.path().join(name);
            fs::write(&path, "").unwrap();
            let file = fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(SystemTime::now() - age).unwrap();
            path
        };
        let hour = Duration::from_secs(60 * 60);
        let minutes = aged(&format!(".rhfs-{live}-1.tmp"), Duration::from_secs(120));
        let almost_a_day = aged(&format!(".rhfs-{live}-2.tmp"), 23 * hour);
        let over_a_day = aged(&format!(".rhfs-{live}-3.tmp"), 25 * hour);
        let own = std::process::id();
        let own_minutes = aged(&format!(".rhfs-{own}-4.tmp"), Duration::from_secs(120));
        let own_over_a_day = aged(&format!(".rhfs-{own}-5.tmp"), 25 * hour);
        assert_eq!(directory.remove_abandoned_temporaries(), 2);
        assert!(minutes.exists() && almost_a_day.exists() && !over_a_day.exists());
        assert!(own_minutes.exists() && !own_over_a_day.exists());
    }

    #[test]
    fn a_staged_write_waits_under_a_temporary_name_of_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false).unwrap();
        let _staged = directory.stage(&id("a"), b"x").unwrap();
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1);
        assert_eq!(writer_pid(&names[0]), Some(std::process::id()));
        assert!(names[0].starts_with(&directory.temp_prefix()) && names[0].ends_with(TEMP_SUFFIX));
    }

    #[test]
    fn names_taken_by_others_are_skipped_not_opened_up_to_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, "keep me").unwrap();
        let directory = Directory::open(dir.path(), false).unwrap();
        // Opening made and deleted one temporary file; the names after it are planted.
        for n in 1..100 {
            let name = dir
                .path()
                .join(format!("{}{n}{TEMP_SUFFIX}", directory.temp_prefix()));
            std::os::unix::fs::symlink(&victim, name).unwrap();
        }
        directory
            .stage(&id("a"), b"mine")
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(contents(&directory, "a").unwrap(), b"mine");
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        // A directory full of planted names makes the write fail rather than loop forever.
        let crowded = tempfile::tempdir().unwrap();
        let dir = crowded.path();
        let directory = Directory::open_for_reading(dir).unwrap();
        for n in 0..101 {
            let name = dir.join(format!("{}{n}{TEMP_SUFFIX}", directory.temp_prefix()));
            std::os::unix::fs::symlink(&victim, name).unwrap();
        }
        assert_eq!(
            directory.stage(&id("a"), b"x").unwrap_err().code(),
            "EEXIST"
        );
    }

    #[test]
    fn backends_of_one_process_pick_different_temporary_names() {
        let dir = tempfile::tempdir().unwrap();
        let a = Directory::open(dir.path(), false).unwrap();
        let b = Directory::open(dir.path(), false).unwrap();
        assert_ne!(a.temp_prefix(), b.temp_prefix());
    }

    #[test]
    fn taking_a_file_away_never_replaces_another_writers_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = Directory::open(dir.path(), false).unwrap();
        a.stage(&id("x"), b"x's cookies").unwrap().commit().unwrap();
        // A second store that picks exactly the names the first picks next, as two containers
        // whose processes both have pid 1 would if names were not random.
        let mut b = Directory::open_for_reading(dir.path()).unwrap();
        b.token = a.token;
        b.next_temporary = AtomicU64::new(a.next_temporary.load(Ordering::Relaxed));
        let y = a.stage(&id("y"), b"y's cookies").unwrap();
        let judged = a.version(&id("x")).unwrap();
        assert!(b.remove_if(&id("x"), judged).unwrap());
        y.commit().unwrap();
        assert_eq!(contents(&a, "y").unwrap(), b"y's cookies");
        assert!(contents(&a, "x").is_none());
    }

    #[test]
    fn taking_a_file_away_tries_other_names_up_to_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let directory = Directory::open(dir.path(), false).unwrap();
        directory.stage(&id("x"), b"x").unwrap().commit().unwrap();
        let judged = directory.version(&id("x")).unwrap();
        let next = directory.next_temporary.load(Ordering::Relaxed);
        let plant = |count: u64| {
            for n in next..next + count {
                let name = format!("{}{n}{TEMP_SUFFIX}", directory.temp_prefix());
                fs::write(dir.path().join(name), "someone else's").unwrap();
            }
        };
        // Every name it would pick is taken: it gives up rather than loop or replace one.
        plant(101);
        assert_eq!(
            directory.remove_if(&id("x"), judged).unwrap_err().code(),
            "EEXIST"
        );
        assert!(contents(&directory, "x").is_some());
        // A few taken names are skipped.
        directory.next_temporary.store(next, Ordering::Relaxed);
        for n in next..next + 101 {
            let name = format!("{}{n}{TEMP_SUFFIX}", directory.temp_prefix());
            if n >= next + 5 {
                fs::remove_file(dir.path().join(name)).unwrap();
            }
        }
        assert!(directory.remove_if(&id("x"), judged).unwrap());
        let planted = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(planted, 5);
    }

    #[test]
    fn temporaries_never_look_like_sessions() {
        assert_eq!(
            id::from_file_name(&format!(
                "{}x{TEMP_SUFFIX}",
                Directory::open_for_reading(".").unwrap().temp_prefix()
            )),
            None
        );
        assert_eq!(writer_pid(".rhfs-12-xyz.tmp"), Some(12));
        assert_eq!(writer_pid("a.rhfsession"), None);
    }
}
