//! `MergeBase` and `mergeSessions`: merging two copies of a session changed on two hosts.

use napi::{Error, Result, Status};
use napi_derive::napi;

use crate::fingerprint::as_number;

/// What a merge needs of the stored copy a held session was loaded (or last stored) as: a hash
/// per cookie and per data field, much smaller than the copy.
#[napi]
pub struct MergeBase {
    inner: session_core::MergeBase,
    fingerprint: Option<f64>,
}

#[napi]
impl MergeBase {
    /// Throws (`ERR_CORRUPT_SESSION`) for text that is not a serialized session.
    #[napi(constructor)]
    pub fn new(json: String) -> Result<Self> {
        session_core::MergeBase::of(&json)
            .map(|inner| Self {
                inner,
                fingerprint: None,
            })
            .map_err(refused)
    }

    /// The base of `json` with its `changeFingerprint`, from one parse (about half the cost of
    /// the two apart). Throws as the constructor does.
    #[napi(factory)]
    pub fn with_fingerprint(json: String) -> Result<Self> {
        session_core::MergeBase::with_fingerprint(&json)
            .map(|(inner, digest)| Self {
                inner,
                fingerprint: Some(as_number(digest)),
            })
            .map_err(refused)
    }

    /// `changeFingerprint` of the JSON a base made by `withFingerprint` came from; null for one
    /// made by the constructor.
    #[napi(getter)]
    pub fn fingerprint(&self) -> Option<f64> {
        self.fingerprint
    }
}

/// `remote` with what `local` changed since `base` applied (cookies by domain, path and key,
/// data fields by key, deletions too; `createdAt` the earliest, `lastUsed` the latest; cookies
/// expired at `now` dropped). With a null base everything `local` holds counts as changed.
#[napi]
pub fn merge_sessions(
    base: Option<&MergeBase>,
    local: String,
    remote: String,
    now: f64,
) -> Result<String> {
    session_core::merge(base.map(|b| &b.inner), &local, &remote, now).map_err(refused)
}

fn refused(e: session_core::MergeError) -> Error {
    Error::new(Status::InvalidArg, format!("ERR_CORRUPT_SESSION: {e}"))
}
