//! The core of rammerhead-session-store: session ids and their files, the expiry rule, crash-safe
//! file IO and the coordination of background work. Nothing here knows about Node.js.

pub mod backend;
pub mod background;
pub mod error;
pub mod expiry;
pub mod file_backend;
pub mod id;
pub mod session_file;
pub mod stale_sweep;
pub mod store;

pub use backend::{FileVersion, SessionBackend, StagedWrite};
pub use background::run_in_background;
pub use error::StoreError;
pub use expiry::ExpiryPolicy;
pub use file_backend::FileBackend;
pub use id::{IdError, SessionId};
pub use session_file::{Corruption, SessionTimes};
pub use stale_sweep::{inspect, sweep, sweep_ids, FileState, SweepOptions, SweepReport};
pub use store::{QueuedWrite, SessionStore, WriteOutcome};
