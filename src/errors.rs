//! The one place core errors become JavaScript errors, thrown or rejected alike: a `TypeError`
//! for an unusable argument, else an `Error` whose `code` is the errno name (`ENOSPC`) or the
//! store's own `ERR_*` code. Batches report their failures as data instead, so that one item's
//! failure never hides the others.

use std::ptr;

use napi::bindgen_prelude::{JsValue, Unknown};
use napi::{sys, Env, Error, Status};
use napi_derive::napi;
use session_core::{SessionId, StoreError};

/// `err` as a JavaScript error object with its `code`, for a function to throw or a promise to
/// reject with.
pub fn js_error(env: &Env, err: StoreError) -> Error {
    let create = if err.is_bad_argument() {
        sys::napi_create_type_error
    } else {
        sys::napi_create_error
    };
    let made = env
        .create_string(err.code())
        .and_then(|code| Ok((code, env.create_string(err.to_string())?)))
        .and_then(|(code, message)| {
            let mut value = ptr::null_mut();
            let status = unsafe { create(env.raw(), code.raw(), message.raw(), &mut value) };
            if status == sys::Status::napi_ok {
                Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
            } else {
                Err(Error::from_status(Status::from(status)))
            }
        });
    match made {
        Ok(error) => Error::from(error),
        Err(e) => e,
    }
}

/// A failure of one item of a batch, told by id.
#[napi(object)]
pub struct Failure {
    pub id: String,
    pub code: String,
    pub message: String,
}

impl Failure {
    pub fn new(id: &SessionId, err: &StoreError) -> Self {
        Self {
            id: id.as_str().to_owned(),
            code: err.code().to_owned(),
            message: err.to_string(),
        }
    }
}

/// A failure of one item of a batch of writes, told by its position in the batch rather than by
/// id, so that it always reaches the item it belongs to. A write refused for a newer stored
/// version (`ERR_SESSION_CONFLICT`) carries that version and its JSON, for the writer to merge
/// with.
#[napi(object)]
pub struct WriteFailure {
    pub index: u32,
    pub code: String,
    pub message: String,
    pub version: Option<f64>,
    pub json: Option<String>,
}

impl WriteFailure {
    pub fn new(index: usize, err: StoreError) -> Self {
        let code = err.code().to_owned();
        let message = err.to_string();
        let (version, json) = match err {
            StoreError::Conflict { version, json } => (Some(version as f64), Some(json)),
            _ => (None, None),
        };
        Self {
            index: index as u32,
            code,
            message,
            version,
            json,
        }
    }
}
