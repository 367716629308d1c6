//! Reusable temporary files for atomic replacement.
//!
//! Renaming a fresh temporary file over a session file allocates an inode and frees the old one
//! on every write; on disks mounted with `discard`, or journaled ones, that costs ten times the
//! write itself. Instead, a spare file is written and then *exchanged* with the session file
//! (`renameat2(RENAME_EXCHANGE)`): the session file switches to the new contents in one step, and
//! the spare, now holding the old contents, is kept for the next write. Where exchange is not
//! supported the spare is renamed over the session file instead.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Spares kept beyond this are deleted; it bounds the files a busy process leaves around.
const MAX_SPARES: usize = 32;
const OWNER_ONLY: u32 = 0o600;

#[derive(Debug)]
pub struct SparePool {
    dir: PathBuf,
    prefix: String,
    suffix: &'static str,
    spares: Mutex<Vec<PathBuf>>,
    exchange_supported: AtomicBool,
    /// Set at shutdown: spares coming back from writes still under way are deleted, not kept.
    retired: AtomicBool,
}

/// A spare holding new contents, ready to be installed.
#[derive(Debug)]
pub struct Spare {
    file: File,
    path: PathBuf,
}

impl Spare {
    pub fn into_path(self) -> PathBuf {
        self.path
    }

    /// Replaces the whole contents. Written in place and cut to length, so the blocks the spare
    /// already has are reused rather than freed and allocated again.
    pub fn write(&mut self, contents: &[u8], durable: bool) -> io::Result<()> {
        self.file.write_all_at(contents, 0)?;
        self.file.set_len(contents.len() as u64)?;
        if durable {
            self.file.sync_all()?;
        }
        Ok(())
    }
}

impl SparePool {
    pub fn new(dir: PathBuf, prefix: String, suffix: &'static str) -> Self {
        Self {
            dir,
            prefix,
            suffix,
            spares: Mutex::new(Vec::new()),
            exchange_supported: AtomicBool::new(cfg!(target_os = "linux")),
            retired: AtomicBool::new(false),
        }
    }

    fn spares(&self) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
        self.spares
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A spare opened for writing: one kept from earlier writes if it is still a plain file of
    /// ours, else a new one.
    pub fn take(&self) -> io::Result<Spare> {
        while let Some(path) = self.spares().pop() {
            if let Some(file) = reopen(&path) {
                return Ok(Spare { file, path });
            }
            // Replaced or removed by someone else meanwhile: forget the name.
            let _ = fs::remove_file(&path);
        }
        let (file, path) = tempfile::Builder::new()
            .prefix(&self.prefix)
            .suffix(self.suffix)
            .tempfile_in(&self.dir)?
            .keep()
            .map_err(|e| e.error)?;
        Ok(Spare { file, path })
    }

    /// Keeps a spare for later, or deletes it when enough are kept or the pool is retired.
    pub fn put_back(&self, path: PathBuf) {
        let mut spares = self.spares();
        if spares.len() < MAX_SPARES && !self.retired.load(Ordering::Relaxed) {
            spares.push(path);
        } else {
            drop(spares);
            let _ = fs::remove_file(path);
        }
    }

    /// Makes the spare's contents the file at `target` in one step.
    pub fn install(&self, spare: Spare, target: &Path) -> io::Result<()> {
        let Spare { file, path } = spare;
        drop(file);
        if self.exchange_supported.load(Ordering::Relaxed) {
            match exchange(&path, target) {
                Ok(()) => {
                    self.put_back(path);
                    return Ok(());
                }
                // No session file yet (or the spare vanished): a plain rename tells which.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                    ) =>
                {
                    self.exchange_supported.store(false, Ordering::Relaxed);
                }
                Err(e) => {
                    self.put_back(path);
                    return Err(e);
                }
            }
        }
        fs::rename(&path, target)
    }

    /// Deletes every kept spare and keeps none from now on, also of writes still under way.
    /// Later writes still work, each with a temporary file of its own.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
        self.drain();
    }

    /// Deletes every kept spare.
    fn drain(&self) {
        for path in std::mem::take(&mut *self.spares()) {
            let _ = fs::remove_file(path);
        }
    }
}

impl Drop for SparePool {
    fn drop(&mut self) {
        self.drain();
    }
}

/// Opens a kept spare if it is still a plain, singly linked file owned by this user, and makes it
/// owner-only again: after an exchange it holds what was the session file, which may have been
/// written by another program with other permissions.
fn reopen(path: &Path) -> Option<File> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    let ours = meta.uid() == unsafe { libc::geteuid() };
    if !meta.is_file() || meta.nlink() != 1 || !ours {
        return None;
    }
    if meta.mode() & 0o777 != OWNER_ONLY {
        file.set_permissions(fs::Permissions::from_mode(OWNER_ONLY))
            .ok()?;
    }
    Some(file)
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
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
            libc::RENAME_EXCHANGE,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(dir: &Path) -> SparePool {
        SparePool::new(dir.to_path_buf(), ".rhfs-test-".into(), ".tmp")
    }

    fn install(pool: &SparePool, target: &Path, contents: &[u8]) {
        let mut spare = pool.take().unwrap();
        spare.write(contents, false).unwrap();
        pool.install(spare, target).unwrap();
    }

    #[test]
    fn a_spare_is_reused_and_never_leaks_old_length() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path());
        let target = dir.path().join("a.rhfsession");
        install(&pool, &target, b"a long first version");
        install(&pool, &target, b"second");
        install(&pool, &target, b"third!");
        assert_eq!(fs::read(&target).unwrap(), b"third!");
        let names = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(names, 2, "the session file and one kept spare");
        pool.drain();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_retired_pool_keeps_no_spare_even_of_a_write_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path());
        let target = dir.path().join("a.rhfsession");
        install(&pool, &target, b"one");
        let mut under_way = pool.take().unwrap();
        under_way.write(b"two", false).unwrap();
        pool.retire();
        pool.install(under_way, &target).unwrap();
        install(&pool, &target, b"three");
        assert_eq!(fs::read(&target).unwrap(), b"three");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "only the session file"
        );
    }

    #[test]
    fn files_another_program_wrote_become_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path());
        let target = dir.path().join("a.rhfsession");
        fs::write(&target, "written by the original").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        for version in [b"one", b"two", b"six"] {
            install(&pool, &target, version);
            let mode = fs::metadata(&target).unwrap().mode() & 0o777;
            assert_eq!(mode, OWNER_ONLY);
        }
    }

    #[test]
    fn a_kept_spare_replaced_by_a_symlink_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path());
        let target = dir.path().join("a.rhfsession");
        install(&pool, &target, b"one");
        install(&pool, &target, b"two");
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep me").unwrap();
        let spare = pool.spares().last().unwrap().clone();
        fs::remove_file(&spare).unwrap();
        std::os::unix::fs::symlink(&victim, &spare).unwrap();
        install(&pool, &target, b"three");
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert_eq!(fs::read(&target).unwrap(), b"three");
    }
}
