//! The core of rammerhead-session-store: what a session is and when it expires (`session`), its
//! files (`file`), its copies in Redis (`redis`), and the one queue that writes both in the
//! background (`writes`). Nothing here knows about Node.js.

pub mod codec;
pub mod error;
pub mod file;
pub mod random;
pub mod redis;
pub mod session;
pub mod writes;

pub use error::StoreError;
pub use session::expiry::ExpiryPolicy;
pub use session::held_index::HeldIndex;
pub use session::id::{IdError, SessionId};
