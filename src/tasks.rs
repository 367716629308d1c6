//! Work run off the JavaScript thread: the libuv thread pool runs it, and its result is
//! converted on the JavaScript thread, its error mapped by `js_error` like any other.

use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, ToNapiValue, TypeName};
use napi::{Env, Result, Task};
use session_core::writes::{Report, WriteQueue, WriteTarget};
use session_core::{SessionId, StoreError};

use crate::errors::{js_error, Failure};
use crate::reports::WriteReport;

/// Deletions in the background, resolving with those that failed.
pub type RemovalTask = AsyncTask<Background<Vec<(SessionId, StoreError)>, Vec<Failure>>>;

/// `work`, run in the thread pool; its output converted by `convert`.
pub struct Background<T, J> {
    work: Option<Box<dyn FnOnce() -> std::result::Result<T, StoreError> + Send>>,
    convert: fn(T) -> J,
}

impl<T, J> Background<T, J> {
    pub fn new(
        work: impl FnOnce() -> std::result::Result<T, StoreError> + Send + 'static,
        convert: fn(T) -> J,
    ) -> Self {
        Self {
            work: Some(Box::new(work)),
            convert,
        }
    }
}

impl<T: Send + 'static, J: ToNapiValue + TypeName> Task for Background<T, J> {
    type Output = std::result::Result<T, StoreError>;
    type JsValue = J;

    fn compute(&mut self) -> Result<Self::Output> {
        let work = self.work.take().expect("a task is computed once");
        Ok(work())
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<J> {
        output.map(self.convert).map_err(|e| js_error(&env, e))
    }
}

/// The next report of `queue`: its oldest writes carried out, off the JavaScript thread.
pub fn write_next<T: WriteTarget>(
    queue: &Arc<WriteQueue<T>>,
) -> AsyncTask<Background<Report, WriteReport>> {
    let queue = queue.clone();
    AsyncTask::new(Background::new(
        move || Ok(queue.write_next()),
        WriteReport::from,
    ))
}
