//! The id and contents rules of session files, for stores that keep sessions in memory only,
//! so that every store accepts exactly the same ids and sessions.

use napi::bindgen_prelude::Utf16String;
use napi::{Env, Result};
use napi_derive::napi;
use session_core::{session_file, SessionId, StoreError};

use crate::errors::throw;

/// Throws a TypeError (`ERR_INVALID_SESSION_ID`) stating the rule if `id` cannot name a session.
#[napi]
pub fn check_session_id(env: Env, id: Utf16String) -> Result<()> {
    SessionId::from_utf16(&id)
        .map(drop)
        .map_err(|e| throw(&env, e.into()))
}

/// Throws `ERR_INVALID_SESSION` if `json` is not what a session file may hold.
#[napi]
pub fn check_session(env: Env, json: String) -> Result<()> {
    session_file::parse_times(json.as_bytes())
        .map(drop)
        .map_err(|reason| throw(&env, StoreError::InvalidSession(reason)))
}
