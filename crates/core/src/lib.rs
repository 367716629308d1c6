//! The core of rammerhead-session-store: session ids and their files, the expiry rule, crash-safe
//! file IO and the coordination of background work. Nothing here knows about Node.js.

pub mod backend;
pub mod background;
pub mod error;
pub mod expiry;
pub mod file_backend;
pub mod fingerprint;
pub mod held_index;
pub mod id;
pub mod merge;
pub mod ordered_writes;
pub mod redis_scripts;
pub mod redis_sessions;
pub mod redis_subscriber;
pub mod session_file;
pub mod stale_sweep;

pub use backend::{FileVersion, SessionBackend, StagedWrite};
pub use background::run_in_background;
pub use error::StoreError;
pub use expiry::ExpiryPolicy;
pub use file_backend::FileBackend;
pub use fingerprint::change_fingerprint;
pub use held_index::HeldIndex;
pub use id::{IdError, SessionId};
pub use merge::{merge, MergeBase, MergeError};
pub use ordered_writes::{OrderedWrites, QueuedWrite, WriteOutcome};
pub use redis_sessions::{
    Base, Fetched, RedisPolicy, RedisSessions, RedisSettings, WriteOp, WriteResult,
};
pub use redis_subscriber::Announcement;
pub use session_file::{inspect, Corruption, FileState, SessionTimes};
pub use stale_sweep::{sweep, sweep_ids, SweepOptions, SweepReport};
