//! What a session is, as JavaScript sees it: the id and contents rules every store applies, the
//! expiry rule, and the digests that tell and merge changes. Also the conversions of ids and
//! JSON that every other binding shares.

use napi::bindgen_prelude::{Float64ArraySlice, Utf16String};
use napi::{Env, Result};
use napi_derive::napi;
use session_core::session::format::{parse_times, Corruption};
use session_core::session::{fingerprint, merge, Loaded};
use session_core::writes::{Base, Write};
use session_core::{ExpiryPolicy, SessionId, StoreError};

use crate::errors::{js_error, WriteFailure};

/// An id from JavaScript, exactly as JavaScript holds it.
pub fn parse_id(id: &Utf16String) -> std::result::Result<SessionId, StoreError> {
    SessionId::from_utf16(id).map_err(StoreError::from)
}

/// Text from JavaScript, refused if it holds a lone surrogate: converted lossily, what is stored
/// would differ from what the caller checked.
pub fn session_text(json: &Utf16String) -> std::result::Result<String, StoreError> {
    String::from_utf16(json).map_err(|_| StoreError::InvalidSession(Corruption::LoneSurrogate))
}

/// Pairs ids with contents, based as `base_of(position)` says. An id that cannot name a
/// session fails its own item only: one bad session must never hold up the others.
pub fn writes_of(
    ids: Vec<Utf16String>,
    contents: Vec<String>,
    base_of: impl Fn(usize) -> Base,
) -> (Vec<(u32, Write)>, Vec<WriteFailure>) {
    let mut writes = Vec::with_capacity(ids.len());
    let mut refused = Vec::new();
    for (index, (id, json)) in ids.iter().zip(contents).enumerate() {
        match parse_id(id) {
            Ok(id) => writes.push((
                index as u32,
                Write {
                    id,
                    json,
                    base: base_of(index),
                },
            )),
            Err(e) => refused.push(WriteFailure::new(index, e)),
        }
    }
    (writes, refused)
}

/// A stored copy as `load` returns it.
#[napi(object, js_name = "Loaded")]
pub struct JsLoaded {
    pub json: String,
    /// The version it was stored as, where the store keeps versions (Redis); else 0.
    pub version: f64,
    /// How it was stored: `plain`, `zstd`, `aes-256-gcm` or `zstd+aes-256-gcm`.
    pub encoding: String,
    /// Bytes stored: the file's or the Redis value's length.
    pub stored_bytes: f64,
}

impl From<Loaded> for JsLoaded {
    fn from(copy: Loaded) -> Self {
        Self {
            json: copy.json,
            version: copy.version as f64,
            encoding: copy.encoding.name().to_owned(),
            stored_bytes: copy.stored_len as f64,
        }
    }
}

/// What a `load` found, or its error thrown.
pub fn loaded(
    env: &Env,
    result: std::result::Result<Option<Loaded>, StoreError>,
) -> Result<Option<JsLoaded>> {
    result
        .map(|found| found.map(JsLoaded::from))
        .map_err(|e| js_error(env, e))
}

/// Throws a TypeError (`ERR_INVALID_SESSION_ID`) stating the rule if `id` cannot name a session.
#[napi]
pub fn check_session_id(env: Env, id: Utf16String) -> Result<()> {
    parse_id(&id).map(drop).map_err(|e| js_error(&env, e))
}

/// Throws `ERR_INVALID_SESSION` if `json` is not what a session file may hold.
#[napi]
pub fn check_session(env: Env, json: Utf16String) -> Result<()> {
    session_text(&json)
        .and_then(|json| parse_times(json.as_bytes()).map_err(StoreError::InvalidSession))
        .map(drop)
        .map_err(|e| js_error(&env, e))
}

/// Positions of the sessions that have expired, by the core's one expiry rule. Timestamps that
/// are not numbers arrive as NaN and never expire a session. One call judges a whole batch, so
/// the per-call cost is paid once.
#[napi]
pub fn expired_indices(
    created_at: Float64ArraySlice,
    last_used: Float64ArraySlice,
    now: f64,
    stale_timeout: Option<f64>,
    max_to_live: Option<f64>,
) -> Vec<u32> {
    let policy = ExpiryPolicy::new(stale_timeout, max_to_live);
    let known = |t: f64| (!t.is_nan()).then_some(t);
    created_at
        .iter()
        .zip(last_used.iter())
        .enumerate()
        .filter(|(_, (c, l))| policy.is_expired(known(**c), known(**l), now))
        .map(|(i, _)| i as u32)
        .collect()
}

/// Whether a session with these times has expired at `now`, by the same rule as
/// `expiredIndices`: for judging one session right before it is removed.
#[napi]
pub fn is_expired(
    created_at: f64,
    last_used: f64,
    now: f64,
    stale_timeout: Option<f64>,
    max_to_live: Option<f64>,
) -> bool {
    let known = |t: f64| (!t.is_nan()).then_some(t);
    ExpiryPolicy::new(stale_timeout, max_to_live).is_expired(
        known(created_at),
        known(last_used),
        now,
    )
}

/// A digest of the serialized session that leaves out `data.lastUsed` and each cookie's
/// `lastAccessed`, as a number (53 bits); null for text that is not a JSON object.
#[napi]
pub fn change_fingerprint(json: String) -> Option<f64> {
    fingerprint::change_fingerprint(&json).map(as_number)
}

/// A digest as JavaScript holds it: the 53 bits a number keeps exactly.
fn as_number(digest: u64) -> f64 {
    (digest >> 11) as f64
}

/// What a merge needs of the stored copy a held session was loaded (or last stored) as: a hash
/// per cookie and per data field, much smaller than the copy.
#[napi]
pub struct MergeBase {
    inner: merge::MergeBase,
    fingerprint: Option<f64>,
}

#[napi]
impl MergeBase {
    /// Throws (`ERR_CORRUPT_SESSION`) for text that is not a serialized session.
    #[napi(constructor)]
    pub fn new(env: Env, json: String) -> Result<Self> {
        merge::MergeBase::of(&json)
            .map(|inner| Self {
                inner,
                fingerprint: None,
            })
            .map_err(|e| js_error(&env, e.into()))
    }

    /// The base of `json` with its `changeFingerprint`, from one parse (about half the cost of
    /// the two apart). Throws as the constructor does.
    #[napi(factory)]
    pub fn with_fingerprint(env: Env, json: String) -> Result<Self> {
        merge::MergeBase::with_fingerprint(&json)
            .map(|(inner, digest)| Self {
                inner,
                fingerprint: Some(as_number(digest)),
            })
            .map_err(|e| js_error(&env, e.into()))
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
/// Throws (`ERR_CORRUPT_SESSION`) when either copy is not a serialized session.
#[napi]
pub fn merge_sessions(
    env: Env,
    base: Option<&MergeBase>,
    local: String,
    remote: String,
    now: f64,
) -> Result<String> {
    merge::merge(base.map(|b| &b.inner), &local, &remote, now).map_err(|e| js_error(&env, e.into()))
}
