//! Where session files live. The store and the sweep only see this trait.

use crate::codec::{Codec, Stored};
use crate::error::StoreError;
use crate::session::id::SessionId;

/// A stored file's identity, compared before a background delete so a file replaced by another
/// process in the meantime is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileVersion {
    pub inode: u64,
    pub modified_ns: i128,
    pub len: u64,
}

pub trait SessionFiles: Send + Sync + 'static {
    /// A written but not yet visible file; dropping it discards the write.
    type Staged: StagedWrite;

    /// Ids of every session file, in no particular order.
    fn ids(&self) -> Result<Vec<SessionId>, StoreError>;
    /// The longest JSON a file may hold; the file itself may be a little longer, encoded (see
    /// `codec::stored_limit`).
    fn max_session_bytes(&self) -> u64;
    /// Where the file of `id` is, for messages.
    fn path_of(&self, id: &SessionId) -> std::path::PathBuf;
    fn version(&self, id: &SessionId) -> Option<FileVersion>;
    /// The file's contents and the version they were read from; `None` when there is no file.
    fn read(&self, id: &SessionId) -> Result<Option<(FileVersion, Vec<u8>)>, StoreError>;
    /// Writes `contents` aside; refused when longer than the files read back.
    fn stage(&self, id: &SessionId, contents: &[u8]) -> Result<Self::Staged, StoreError>;
    /// `false` when there was no such file.
    fn remove(&self, id: &SessionId) -> Result<bool, StoreError>;
    /// Deletes the file only if it is still the `judged` version, even when another process
    /// replaces it meanwhile; `false` when it was not deleted.
    fn remove_if(&self, id: &SessionId, judged: FileVersion) -> Result<bool, StoreError>;
    /// Removes temporary files that writers which died mid-write left behind; returns how many.
    fn remove_abandoned_temporaries(&self) -> usize;
}

pub trait StagedWrite: Send {
    /// Makes the staged contents the session's file in one step.
    fn commit(self) -> Result<(), StoreError>;
}

/// Reads one file and judges it as `codec` does (see `Codec::judge`), or says why it cannot be
/// read; `None` when it vanished in the meantime.
pub fn inspect<F: SessionFiles>(
    files: &F,
    codec: &Codec,
    id: &SessionId,
) -> Option<(FileVersion, Result<Stored, StoreError>)> {
    match files.read(id) {
        Ok(None) => None,
        Ok(Some((version, bytes))) => Some((version, Ok(codec.judge(id, &bytes)))),
        Err(e) => Some((files.version(id)?, Err(e))),
    }
}
