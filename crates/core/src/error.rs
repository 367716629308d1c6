//! The errors of the core, with the Node.js-style code each one is reported under.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::id::IdError;
use crate::session_file::Corruption;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    InvalidId(#[from] IdError),
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} is not a session file: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: Corruption },
    /// Session files are read only as regular files, never through a link.
    #[error("{} is {kind}, not a regular session file", path.display())]
    NotARegularFile { path: PathBuf, kind: &'static str },
    #[error("{} is {len} bytes, more than the limit of {limit} bytes for a session", path.display())]
    TooLarge { path: PathBuf, len: u64, limit: u64 },
    /// Contents offered to be stored that a later read would judge corrupt.
    #[error("not a session: {0}")]
    InvalidSession(Corruption),
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// The Redis server cannot be reached now (or did not answer in time).
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
    /// The Redis server refused a command.
    #[error("Redis error: {0}")]
    Redis(String),
    #[error("{key} is not a session: {reason}")]
    CorruptValue { key: String, reason: Corruption },
    #[error("{key} is {len} bytes, more than the limit of {limit} bytes for a session")]
    ValueTooLarge { key: String, len: u64, limit: u64 },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The same failure again, for each item of a batch that one failure stopped.
    pub fn for_each_item(&self) -> Self {
        match self {
            StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
            other => StoreError::Redis(other.to_string()),
        }
    }

    /// `ERR_*` for the store's own errors, the errno name (as Node.js reports it) for IO.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::InvalidId(_) => "ERR_INVALID_SESSION_ID",
            StoreError::NotADirectory { .. } => "ENOTDIR",
            StoreError::Corrupt { .. } | StoreError::CorruptValue { .. } => "ERR_CORRUPT_SESSION",
            StoreError::NotARegularFile { .. } => "ERR_NOT_REGULAR_FILE",
            StoreError::TooLarge { .. } | StoreError::ValueTooLarge { .. } => {
                "ERR_SESSION_TOO_LARGE"
            }
            StoreError::InvalidSession(_) => "ERR_INVALID_SESSION",
            StoreError::InvalidUrl(_) => "ERR_INVALID_REDIS_URL",
            StoreError::Unavailable(_) => "ERR_REDIS_UNAVAILABLE",
            StoreError::Redis(_) => "ERR_REDIS",
            StoreError::Io { source, .. } => errno_name(source),
        }
    }
}

/// The OS error number, looking through wrappers (tempfile adds the path to its errors).
fn raw_errno(error: &io::Error) -> Option<i32> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(errno) = e
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return Some(errno);
        }
        current = match e.downcast_ref::<io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => e.source(),
        };
    }
    None
}

fn errno_name(error: &io::Error) -> &'static str {
    let Some(errno) = raw_errno(error) else {
        return match error.kind() {
            io::ErrorKind::NotFound => "ENOENT",
            io::ErrorKind::PermissionDenied => "EACCES",
            io::ErrorKind::FileTooLarge => "EFBIG",
            io::ErrorKind::StorageFull | io::ErrorKind::WriteZero => "ENOSPC",
            _ => "EIO",
        };
    };
    const NAMES: &[(i32, &str)] = &[
        (libc::ENOENT, "ENOENT"),
        (libc::EACCES, "EACCES"),
        (libc::EPERM, "EPERM"),
        (libc::ENOSPC, "ENOSPC"),
        (libc::EDQUOT, "EDQUOT"),
        (libc::EFBIG, "EFBIG"),
        (libc::EROFS, "EROFS"),
        (libc::EIO, "EIO"),
        (libc::EISDIR, "EISDIR"),
        (libc::ENOTDIR, "ENOTDIR"),
        (libc::EEXIST, "EEXIST"),
        (libc::EMFILE, "EMFILE"),
        (libc::ENFILE, "ENFILE"),
        (libc::ENAMETOOLONG, "ENAMETOOLONG"),
        (libc::ELOOP, "ELOOP"),
        (libc::EBUSY, "EBUSY"),
        (libc::EXDEV, "EXDEV"),
        (libc::EINVAL, "EINVAL"),
        (libc::ENOTEMPTY, "ENOTEMPTY"),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == errno)
        .map_or("EIO", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_carry_their_errno_name() {
        let err = StoreError::io("write", "/x", io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(err.code(), "ENOSPC");
        assert!(err.to_string().contains("cannot write /x"));
    }

    #[test]
    fn wrapped_io_errors_keep_their_errno_name() {
        let inner = io::Error::from_raw_os_error(libc::EFBIG);
        let wrapped = io::Error::other(inner);
        assert_eq!(StoreError::io("write", "/x", wrapped).code(), "EFBIG");
    }
}
