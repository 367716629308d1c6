//! `SessionDirectory`: one sessions directory as the JavaScript stores see it.

use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, Utf16String};
use napi::{Env, Result};
use napi_derive::napi;
use session_core::{ExpiryPolicy, FileBackend, OrderedWrites, SessionId, StoreError, SweepOptions};

use crate::checks::session_text;
use crate::errors::{throw, WriteFailure};
use crate::held_sessions::{unheld_id_list, HeldSessions};
use crate::tasks::{Outbox, RemoveTask, SweepTask, WriteTask};

/// What `queueWrites` accepted and refused.
#[napi(object)]
pub struct QueuedBatch {
    /// Tickets of the accepted items, in order; reports name the writes they settle by these.
    pub tickets: Vec<f64>,
    pub refused: Vec<WriteFailure>,
}

#[napi]
pub struct SessionDirectory {
    store: Arc<OrderedWrites<FileBackend>>,
    outbox: Outbox,
}

/// Pairs ids with contents. An id that cannot name a session fails its own item only: one bad
/// session must never hold up the others.
pub fn parse_items(
    ids: Vec<Utf16String>,
    contents: Vec<String>,
) -> (Vec<(usize, SessionId, String)>, Vec<WriteFailure>) {
    let mut items = Vec::with_capacity(ids.len());
    let mut failures = Vec::new();
    for (index, (id, text)) in ids.into_iter().zip(contents).enumerate() {
        match SessionId::from_utf16(&id) {
            Ok(id) => items.push((index, id, text)),
            Err(e) => failures.push(WriteFailure::new(index, &e.into())),
        }
    }
    (items, failures)
}

#[napi]
impl SessionDirectory {
    /// Opens an existing, writable directory; throws an error naming the path otherwise. Files
    /// larger than `maxSessionBytes` are not read.
    #[napi(constructor)]
    pub fn new(env: Env, path: String, durable: bool, max_session_bytes: f64) -> Result<Self> {
        let backend = FileBackend::open(path, durable)
            .map_err(|e| throw(&env, e))?
            .with_max_session_bytes(max_session_bytes as u64);
        Ok(Self {
            store: Arc::new(OrderedWrites::new(backend)),
            outbox: Outbox::default(),
        })
    }

    /// The file's contents, or null when there is no file or the id cannot name one. A file that
    /// is not a session throws with code `ERR_CORRUPT_SESSION`.
    #[napi]
    pub fn load(&self, env: Env, id: Utf16String) -> Result<Option<String>> {
        let Ok(id) = SessionId::from_utf16(&id) else {
            return Ok(None);
        };
        self.store.load(&id).map_err(|e| throw(&env, e))
    }

    /// Writes JSON from outside at once, atomically, after checking that a later `load` accepts
    /// it (`ERR_INVALID_SESSION` otherwise); a bad id throws a TypeError. `held`: the caller
    /// keeps this session in memory, so stale cleanup leaves its file alone until `release`.
    #[napi]
    pub fn import(
        &self,
        env: Env,
        id: Utf16String,
        contents: Utf16String,
        held: bool,
    ) -> Result<()> {
        SessionId::from_utf16(&id)
            .map_err(StoreError::from)
            .and_then(|id| {
                let contents = session_text(&contents)?;
                self.store.import(&id, contents.as_bytes(), held)
            })
            .map_err(|e| throw(&env, e))
    }

    /// True when a file was deleted; an id that cannot name a file is simply absent. A file that
    /// cannot be deleted throws, and the session stays as it was.
    #[napi]
    pub fn remove(&self, env: Env, id: Utf16String) -> Result<bool> {
        let Ok(id) = SessionId::from_utf16(&id) else {
            return Ok(false);
        };
        self.store.remove(&id).map_err(|e| throw(&env, e))
    }

    /// The caller could not revive the session `load` just returned: its file counts as corrupt
    /// as loaded, and the session is not held.
    #[napi]
    pub fn reject_loaded(&self, id: Utf16String) {
        if let Ok(id) = SessionId::from_utf16(&id) {
            self.store.reject_loaded(&id);
        }
    }

    /// Deletes a file found corrupt by `load` (or rejected after it), unless another process
    /// replaced it since; true when it was deleted.
    #[napi]
    pub fn remove_corrupt(&self, env: Env, id: Utf16String) -> Result<bool> {
        let Ok(id) = SessionId::from_utf16(&id) else {
            return Ok(false);
        };
        self.store.remove_corrupt(&id).map_err(|e| throw(&env, e))
    }

    /// The caller dropped these sessions for good: queued writes of them are cancelled at once,
    /// and their files deleted in the background unless a write of the id comes first. Resolves
    /// with the deletions that failed, by position; ids that cannot name a file are skipped.
    #[napi(ts_return_type = "Promise<Array<WriteFailure>>")]
    pub fn remove_later(&self, ids: Vec<Utf16String>) -> AsyncTask<RemoveTask> {
        let ids: Vec<_> = ids
            .iter()
            .map(|id| SessionId::from_utf16(id).ok())
            .collect();
        self.store.mark_for_removal(ids.iter().flatten());
        AsyncTask::new(RemoveTask::new(self.store.clone(), ids))
    }

    /// The caller dropped these sessions from memory; stale cleanup may judge their files again.
    #[napi]
    pub fn release(&self, ids: Vec<Utf16String>) {
        let ids: Vec<_> = ids
            .iter()
            .filter_map(|id| SessionId::from_utf16(id).ok())
            .collect();
        self.store.release(&ids);
    }

    /// The ids of the session files, separated by '/', leaving out those `held` holds.
    #[napi]
    pub fn id_list(&self, env: Env, held: Option<&HeldSessions>) -> Result<String> {
        self.store
            .ids()
            .map(|ids| unheld_id_list(ids.iter().map(SessionId::as_str), held))
            .map_err(|e| throw(&env, e))
    }

    /// Queues writes for the next `writeQueued()`, copying the contents out of JavaScript at
    /// once. Returns the ticket of each accepted item, in order, and the items refused for an id
    /// that cannot name a file. A later `import`, `remove` or queued write of the same id
    /// supersedes an item here. The caller holds these sessions, so stale cleanup leaves their
    /// files alone, until `release`.
    #[napi]
    pub fn queue_writes(&self, ids: Vec<Utf16String>, contents: Vec<String>) -> QueuedBatch {
        let (items, refused) = parse_items(ids, contents);
        let items = items.into_iter().map(|(_, id, text)| (id, text)).collect();
        let writes = self.store.queue_writes(items);
        let tickets = writes.iter().map(|w| w.ticket() as f64).collect();
        self.outbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(writes);
        QueuedBatch { tickets, refused }
    }

    /// Writes the oldest queued items (at most 256) in the background, on a low-priority thread
    /// started from the libuv thread pool. Call it again only once its promise has settled:
    /// each report then covers the next items in the order they were queued.
    #[napi(ts_return_type = "Promise<WriteReport>")]
    pub fn write_queued(&self) -> AsyncTask<WriteTask> {
        AsyncTask::new(WriteTask::new(self.store.clone(), self.outbox.clone()))
    }

    /// Writes every item before returning (used at shutdown) and releases them; returns the items
    /// that failed, by position.
    #[napi]
    pub fn write_now(&self, ids: Vec<Utf16String>, contents: Vec<String>) -> Vec<WriteFailure> {
        let (items, mut failures) = parse_items(ids, contents);
        for (index, id, text) in items {
            if let Err(e) = self.store.save(&id, text.as_bytes(), false) {
                failures.push(WriteFailure::new(index, &e));
            }
        }
        failures.sort_by_key(|f| f.index);
        failures
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
