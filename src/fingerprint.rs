//! `changeFingerprint`: whether a session changed since it was stored.

use napi_derive::napi;

/// A digest of the serialized session that leaves out `data.lastUsed` and each cookie's
/// `lastAccessed`, as a number (53 bits); null for text that is not a JSON object.
#[napi]
pub fn change_fingerprint(json: String) -> Option<f64> {
    session_core::change_fingerprint(&json).map(as_number)
}

/// A digest as JavaScript holds it: the 53 bits a number keeps exactly.
pub fn as_number(digest: u64) -> f64 {
    (digest >> 11) as f64
}
