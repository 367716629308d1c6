//! The errors of the core, one enum for files and Redis alike, with the Node.js-style code each
//! one is reported under.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::codec::{DecodeError, Sealed};
use crate::session::format::Corruption;
use crate::session::id::IdError;

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
    /// A stored copy (`place`: a file's path or a Redis key) that cannot be a session.
    #[error("{place} is not a session: {reason}")]
    Corrupt { place: String, reason: Corruption },
    /// A stored value this store cannot decode: encrypted with a key it lacks, changed, or of a
    /// newer format. Kept as it is and never served (see `codec`).
    #[error("{place} cannot be read: {reason}")]
    Sealed { place: String, reason: Sealed },
    /// A value could not be compressed or encrypted; it is not written rather than written in
    /// clear.
    #[error("cannot encode the session: {0}")]
    Encoding(String),
    /// Session files are read only as regular files, never through a link.
    #[error("{} is {kind}, not a regular session file", path.display())]
    NotARegularFile { path: PathBuf, kind: &'static str },
    #[error("{place} is {len} bytes, more than the limit of {limit} bytes for a session")]
    TooLarge { place: String, len: u64, limit: u64 },
    /// Contents offered to be stored that a later read would judge corrupt.
    #[error("not a session: {0}")]
    InvalidSession(Corruption),
    /// Codec options that cannot be used (an unknown compression, a key of the wrong length);
    /// never names a key's bytes.
    #[error("invalid codec options: {0}")]
    InvalidCodec(String),
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// The Redis server cannot be reached now (or did not answer in time).
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
    /// The Redis server refused a command.
    #[error("Redis error: {0}")]
    Redis(String),
    /// A write based on an older version than the stored one; the stored copy is `json`.
    #[error("Redis holds a newer version ({version})")]
    Conflict { version: u64, json: String },
    /// A write of a copy loaded before the session was deleted.
    #[error("the session was deleted since this copy was loaded")]
    Deleted,
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

    /// Why the stored value at `place` did not decode.
    pub fn undecoded(place: String, why: DecodeError, limit: u64) -> Self {
        match why {
            DecodeError::Sealed(reason) => StoreError::Sealed { place, reason },
            DecodeError::Corrupt(reason) => StoreError::Corrupt { place, reason },
            DecodeError::TooLarge(len) => StoreError::TooLarge { place, len, limit },
        }
    }

    /// Whether the caller passed something unusable (JavaScript sees a `TypeError`).
    pub fn is_bad_argument(&self) -> bool {
        matches!(
            self,
            StoreError::InvalidId(_) | StoreError::InvalidUrl(_) | StoreError::InvalidCodec(_)
        )
    }

    /// `ERR_*` for the store's own errors, the errno name (as Node.js reports it) for IO.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::InvalidId(_) => "ERR_INVALID_SESSION_ID",
            StoreError::NotADirectory { .. } => "ENOTDIR",
            StoreError::Corrupt { .. } => "ERR_CORRUPT_SESSION",
            StoreError::Sealed { .. } => "ERR_SESSION_UNDECRYPTABLE",
            StoreError::Encoding(_) => "ERR_SESSION_ENCODING",
            StoreError::NotARegularFile { .. } => "ERR_NOT_REGULAR_FILE",
            StoreError::TooLarge { .. } => "ERR_SESSION_TOO_LARGE",
            StoreError::InvalidSession(_) => "ERR_INVALID_SESSION",
            StoreError::InvalidUrl(_) => "ERR_INVALID_REDIS_URL",
            StoreError::InvalidCodec(_) => "ERR_INVALID_CODEC",
            StoreError::Unavailable(_) => "ERR_REDIS_UNAVAILABLE",
            StoreError::Redis(_) => "ERR_REDIS",
            StoreError::Conflict { .. } => "ERR_SESSION_CONFLICT",
            StoreError::Deleted => "ERR_SESSION_DELETED",
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

    #[test]
    fn only_unusable_arguments_are_bad_arguments() {
        assert!(StoreError::InvalidId(IdError::Empty).is_bad_argument());
        assert!(StoreError::InvalidUrl("x".into()).is_bad_argument());
        assert!(!StoreError::Deleted.is_bad_argument());
        assert!(!StoreError::Unavailable("down".into()).is_bad_argument());
    }
}
