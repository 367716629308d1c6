//! Sessions as files of one directory: atomic files (`directory`), the coordination of the
//! JavaScript thread's reads and writes with background writes and deletes (`sessions`), and the
//! deletion of expired files (`sweep`).

pub mod directory;
pub mod files;
pub mod sessions;
pub mod sweep;

pub use directory::Directory;
pub use files::{FileVersion, SessionFiles, StagedWrite};
pub use sessions::FileSessions;
