//! `SessionDirectory`: one sessions directory as the JavaScript stores see it.

use std::sync::Arc;

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Result};
use napi_derive::napi;
use session_core::{ExpiryPolicy, FileBackend, SessionId, SessionStore, StoreError, SweepOptions};

use crate::errors::{throw, Failure};
use crate::tasks::{Outbox, SweepTask, WriteTask};

#[napi]
pub struct SessionDirectory {
    store: Arc<SessionStore<FileBackend>>,
    outbox: Outbox,
}

/// Pairs ids with contents; the ids come from sessions already held, so a bad one is a bug in
/// the caller and refuses the whole batch.
fn parse_items(
    ids: Vec<String>,
    contents: Vec<String>,
) -> std::result::Result<Vec<(SessionId, String)>, StoreError> {
    ids.into_iter()
        .zip(contents)
        .map(|(id, text)| Ok((SessionId::parse(&id)?, text)))
        .collect()
}

#[napi]
impl SessionDirectory {
    /// Opens an existing, writable directory; throws an error naming the path otherwise.
    #[napi(constructor)]
    pub fn new(env: Env, path: String, durable: bool) -> Result<Self> {
        let backend = FileBackend::open(path, durable).map_err(|e| throw(&env, e))?;
        Ok(Self {
            store: Arc::new(SessionStore::new(backend)),
            outbox: Outbox::default(),
        })
    }

    /// The file's contents, or null when there is no file or the id cannot name one. A file that
    /// is not a session throws with code `ERR_CORRUPT_SESSION`.
    #[napi]
    pub fn load(&self, env: Env, id: String) -> Result<Option<String>> {
        let Ok(id) = SessionId::parse(&id) else {
            return Ok(None);
        };
        self.store.load(&id).map_err(|e| throw(&env, e))
    }

    /// Whether the id has a file that reads as a session (a corrupt file does not count).
    #[napi]
    pub fn holds_session(&self, id: String) -> bool {
        SessionId::parse(&id).is_ok_and(|id| self.store.holds_session(&id))
    }

    /// Writes at once, atomically; a bad id throws a TypeError. `held`: the caller keeps this
    /// session in memory, so stale cleanup leaves its file alone until `release`.
    #[napi]
    pub fn save(&self, env: Env, id: String, contents: String, held: bool) -> Result<()> {
        SessionId::parse(&id)
            .map_err(StoreError::from)
            .and_then(|id| self.store.save(&id, contents.as_bytes(), held))
            .map_err(|e| throw(&env, e))
    }

    /// True when a file was deleted; an id that cannot name a file is simply absent.
    #[napi]
    pub fn remove(&self, env: Env, id: String) -> Result<bool> {
        let Ok(id) = SessionId::parse(&id) else {
            return Ok(false);
        };
        self.store.remove(&id).map_err(|e| throw(&env, e))
    }

    /// The caller dropped these sessions from memory; stale cleanup may judge their files again.
    #[napi]
    pub fn release(&self, ids: Vec<String>) {
        let ids: Vec<_> = ids
            .iter()
            .filter_map(|id| SessionId::parse(id).ok())
            .collect();
        self.store.release(&ids);
    }

    #[napi]
    pub fn ids(&self, env: Env) -> Result<Vec<String>> {
        self.store
            .ids()
            .map(|ids| ids.into_iter().map(SessionId::into_string).collect())
            .map_err(|e| throw(&env, e))
    }

    /// Queues writes for the next `writeQueued()`, copying the contents out of JavaScript at
    /// once; a bad id throws a TypeError and queues nothing. A later `save`, `remove` or queued
    /// write of the same id supersedes an item here. The caller holds these sessions, so stale
    /// cleanup leaves their files alone, until `release`.
    #[napi]
    pub fn queue_writes(&self, env: Env, ids: Vec<String>, contents: Vec<String>) -> Result<()> {
        let items = parse_items(ids, contents).map_err(|e| throw(&env, e))?;
        let writes = self.store.queue_writes(items);
        self.outbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(writes);
        Ok(())
    }

    /// Writes the oldest queued items (at most 256) in the background, on a low-priority thread
    /// started from the libuv thread pool. Call it again only once its promise has settled:
    /// reports then come in the order the items were queued.
    #[napi(ts_return_type = "Promise<WriteReport>")]
    pub fn write_queued(&self) -> AsyncTask<WriteTask> {
        AsyncTask::new(WriteTask::new(self.store.clone(), self.outbox.clone()))
    }

    /// Writes every item before returning (used at shutdown) and releases them; returns the items
    /// that failed. A bad id throws a TypeError and writes nothing.
    #[napi]
    pub fn write_now(
        &self,
        env: Env,
        ids: Vec<String>,
        contents: Vec<String>,
    ) -> Result<Vec<Failure>> {
        let items = parse_items(ids, contents).map_err(|e| throw(&env, e))?;
        Ok(items
            .iter()
            .filter_map(|(id, text)| {
                let saved = self.store.save(id, text.as_bytes(), false);
                saved.err().map(|e| Failure::new(id.as_str(), &e))
            })
            .collect())
    }

    /// Deletes the spare files kept to make writes cheap and keeps none from now on, not even
    /// those of writes still under way: for shutdown. Later writes still work.
    #[napi]
    pub fn drop_spare_files(&self) {
        self.store.backend().drop_spares();
    }

    /// Deletes expired session files in the background, skipping sessions held in memory.
    /// Limits of null or 0 are disabled.
    #[napi(ts_return_type = "Promise<SweepSummary>")]
    pub fn sweep(
        &self,
        now: f64,
        stale_timeout: Option<f64>,
        max_to_live: Option<f64>,
        remove_corrupt: bool,
    ) -> AsyncTask<SweepTask> {
        let options = SweepOptions {
            policy: ExpiryPolicy::new(stale_timeout, max_to_live),
            now,
            remove_corrupt,
            dry_run: false,
        };
        AsyncTask::new(SweepTask::new(self.store.clone(), options))
    }
}
