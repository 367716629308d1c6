//! The id and contents rules of session files, exported for the memory store and used by the
//! directory's imports, so that every store accepts exactly the same ids and sessions.

use napi::bindgen_prelude::Utf16String;
use napi::{Env, Result};
use napi_derive::napi;
use session_core::{session_file, Corruption, SessionId, StoreError};

use crate::errors::throw;

/// Text from JavaScript, refused if it holds a lone surrogate: converted lossily, what is stored
/// would differ from what the caller checked.
pub fn session_text(json: &Utf16String) -> std::result::Result<String, StoreError> {
    String::from_utf16(json).map_err(|_| StoreError::InvalidSession(Corruption::LoneSurrogate))
}

/// Throws a TypeError (`ERR_INVALID_SESSION_ID`) stating the rule if `id` cannot name a session.
#[napi]
pub fn check_session_id(env: Env, id: Utf16String) -> Result<()> {
    SessionId::from_utf16(&id)
        .map(drop)
        .map_err(|e| throw(&env, e.into()))
}

/// Throws `ERR_INVALID_SESSION` if `json` is not what a session file may hold.
#[napi]
pub fn check_session(env: Env, json: Utf16String) -> Result<()> {
    session_text(&json)
        .and_then(|json| {
            session_file::parse_times(json.as_bytes()).map_err(StoreError::InvalidSession)
        })
        .map(drop)
        .map_err(|e| throw(&env, e))
}
