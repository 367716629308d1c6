//! What a session is, independent of where it is stored: its id, the shape of its JSON, the
//! expiry rule, and the digests that tell and merge changes.

pub mod expiry;
pub mod fingerprint;
pub mod format;
pub mod held_index;
pub mod id;
pub mod merge;

/// A stored copy of a session as loaded: its JSON, and the version it was stored as where the
/// store keeps versions (Redis; else 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub json: String,
    pub version: u64,
}
