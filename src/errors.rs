//! The one place core errors become JavaScript errors.

use napi::{Env, Error, Status};
use session_core::StoreError;

/// Throws `err` as JavaScript sees it: a `TypeError` for a bad argument, else an `Error` whose
/// `code` is the errno name (`ENOSPC`) or the store's own `ERR_*` code.
pub fn throw(env: &Env, err: StoreError) -> Error {
    let message = err.to_string();
    let thrown = match err {
        StoreError::InvalidId(_) | StoreError::InvalidUrl(_) => {
            env.throw_type_error(&message, Some(err.code()))
        }
        _ => env.throw_error(&message, Some(err.code())),
    };
    match thrown {
        Ok(()) => Error::from_status(Status::PendingException),
        Err(e) => e,
    }
}

/// A failure reported as data rather than thrown: for batches, where one item's failure must not
/// hide the others.
#[napi_derive::napi(object)]
pub struct Failure {
    pub id: String,
    pub code: String,
    pub message: String,
}

impl Failure {
    pub fn new(id: &str, err: &StoreError) -> Self {
        Self {
            id: id.to_owned(),
            code: err.code().to_owned(),
            message: err.to_string(),
        }
    }
}

/// A failure of one item of a batch of writes, told by its position in the batch rather than by
/// id, so that it always reaches the item it belongs to.
/// A write to Redis refused for a newer stored version (`ERR_SESSION_CONFLICT`) carries that
/// version and its JSON, for the writer to merge with.
#[napi_derive::napi(object)]
pub struct WriteFailure {
    pub index: u32,
    pub code: String,
    pub message: String,
    pub version: Option<f64>,
    pub stored: Option<String>,
}

impl WriteFailure {
    pub fn new(index: usize, err: &StoreError) -> Self {
        Self {
            index: index as u32,
            code: err.code().to_owned(),
            message: err.to_string(),
            version: None,
            stored: None,
        }
    }
}
