//! What a session is, independent of where it is stored: its id, the shape of its JSON, the
//! expiry rule, and the digests that tell and merge changes.

use crate::codec::Encoding;

pub mod expiry;
pub mod fingerprint;
pub mod format;
pub mod held_index;
pub mod id;
pub mod merge;

/// A stored copy of a session as loaded: its JSON, the version it was stored as where the
/// store keeps versions (Redis; else 0), and how it was stored, in how many bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub json: String,
    pub version: u64,
    pub encoding: Encoding,
    pub stored_len: u64,
}
