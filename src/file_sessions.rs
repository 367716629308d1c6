//! `FileSessions`: the core's sessions of one directory, as the JavaScript file cache sees them.

use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, Utf16String};
use napi::{Env, Result};
use napi_derive::napi;
use session_core::file::sweep::{sweep, SweepOptions};
use session_core::file::{Directory, FileSessions};
use session_core::session::Loaded;
use session_core::writes::{Base, Report, WriteQueue};
use session_core::{ExpiryPolicy, SessionId};

use crate::codec::{codec_of, CodecOptions};
use crate::errors::{js_error, WriteFailure};
use crate::held_index::{unheld_id_list, JsHeldIndex};
use crate::reports::{failures, queued, written_now, QueuedBatch, SweepSummary, WriteReport};
use crate::session::{loaded, parse_id, session_text, writes_of, JsLoaded};
use crate::tasks::{write_next, Background, RemovalTask};

type Queue = WriteQueue<FileSessions<Directory>>;

#[napi(js_name = "FileSessions")]
pub struct JsFileSessions {
    queue: Arc<Queue>,
}

impl JsFileSessions {
    fn sessions(&self) -> &FileSessions<Directory> {
        self.queue.target()
    }
}

#[napi]
impl JsFileSessions {
    /// Opens an existing, writable directory; throws an error naming the path otherwise.
    /// Sessions longer than `maxSessionBytes` are neither read nor written. `codec` says how
    /// files are written (plain JSON without it); files of every codec are read.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        path: String,
        durable: bool,
        max_session_bytes: f64,
        codec: Option<CodecOptions>,
    ) -> Result<Self> {
        let codec = codec_of(codec).map_err(|e| js_error(&env, e))?;
        let directory = Directory::open(path, durable)
            .map_err(|e| js_error(&env, e))?
            .with_max_session_bytes(max_session_bytes as u64);
        let sessions = Arc::new(FileSessions::new(directory, codec));
        Ok(Self {
            queue: Arc::new(WriteQueue::new(sessions)),
        })
    }

    /// The file's contents (`version` 0), or null when there is no file or the id cannot name
    /// one. A file that is not a session throws with code `ERR_CORRUPT_SESSION`.
    #[napi]
    pub fn load(&self, env: Env, id: Utf16String) -> Result<Option<JsLoaded>> {
        let Ok(id) = SessionId::from_utf16(&id) else {
            return Ok(None);
        };
        loaded(&env, self.sessions().load(&id))
    }

    /// `load`, read on a thread of the pool: the JavaScript thread never waits on the disk.
    #[napi(ts_return_type = "Promise<Loaded | null>")]
    pub fn load_later(
        &self,
        id: Utf16String,
    ) -> AsyncTask<Background<Option<Loaded>, Option<JsLoaded>>> {
        let queue = self.queue.clone();
        let id = SessionId::from_utf16(&id).ok();
        AsyncTask::new(Background::new(
            move || match id {
                Some(id) => queue.target().load(&id),
                None => Ok(None),
            },
            |found| found.map(JsLoaded::from),
        ))
    }

    /// Writes JSON from outside at once, atomically, after checking that a later `load` accepts
    /// it (`ERR_INVALID_SESSION` otherwise); a bad id throws a TypeError. Returns 0: files keep
    /// no versions.
    #[napi]
    pub fn import(&self, env: Env, id: Utf16String, contents: Utf16String) -> Result<f64> {
        parse_id(&id)
            .and_then(|id| {
                let contents = session_text(&contents)?;
                self.sessions().import(&id, contents.as_bytes(), false)
            })
            .map(|()| 0.0)
            .map_err(|e| js_error(&env, e))
    }

    /// Throws what `import` would refuse of these contents (`ERR_INVALID_SESSION`,
    /// `ERR_SESSION_TOO_LARGE`, a TypeError for a bad id), writing nothing.
    #[napi]
    pub fn check_import(&self, env: Env, id: Utf16String, contents: Utf16String) -> Result<()> {
        parse_id(&id)
            .and_then(|id| {
                let contents = session_text(&contents)?;
                self.sessions().check_import(&id, contents.as_bytes())
            })
            .map_err(|e| js_error(&env, e))
    }

    /// True when a file was deleted; an id that cannot name a file is simply absent. A file that
    /// cannot be deleted throws, and the session stays as it was.
    #[napi]
    pub fn remove(&self, env: Env, id: Utf16String) -> Result<bool> {
        let Ok(id) = SessionId::from_utf16(&id) else {
            return Ok(false);
        };
        self.sessions().remove(&id).map_err(|e| js_error(&env, e))
    }

    /// The caller could not revive the session `load` just returned: its file counts as corrupt
    /// as loaded, and the session is not held.
    #[napi]
    pub fn reject_loaded(&self, id: Utf16String) {
        if let Ok(id) = SessionId::from_utf16(&id) {
            self.sessions().reject_loaded(&id);
        }
    }

    /// Deletes a file found corrupt by `load` (or rejected after it), unless another process
    /// replaced it since; true when it was deleted.
    #[napi]
    pub fn remove_corrupt(&self, env: Env, id: Utf16String) -> Result<bool> {
        let Ok(id) = SessionId::from_utf16(&id) else {
            return Ok(false);
        };
        self.sessions()
            .remove_corrupt(&id)
            .map_err(|e| js_error(&env, e))
    }

    /// The caller dropped these sessions for good: queued writes of them are cancelled at once,
    /// and their files deleted in the background unless a write of the id comes first. Resolves
    /// with the deletions that failed; ids that cannot name a file are skipped.
    #[napi(ts_return_type = "Promise<Array<Failure>>")]
    pub fn remove_later(&self, ids: Vec<Utf16String>) -> RemovalTask {
        let ids: Vec<SessionId> = ids.iter().filter_map(|id| parse_id(id).ok()).collect();
        self.sessions().mark_for_removal(&ids);
        let queue = self.queue.clone();
        AsyncTask::new(Background::new(
            move || Ok(queue.target().remove_all_marked(&ids)),
            failures,
        ))
    }

    /// The caller dropped these sessions from memory; stale cleanup may judge their files again.
    #[napi]
    pub fn release(&self, ids: Vec<Utf16String>) {
        let ids: Vec<SessionId> = ids.iter().filter_map(|id| parse_id(id).ok()).collect();
        self.sessions().release(&ids);
    }

    /// The ids of the session files, separated by '/', leaving out those `held` holds.
    #[napi]
    pub fn id_list(&self, env: Env, held: Option<&JsHeldIndex>) -> Result<String> {
        unheld_id_list(&env, self.sessions().ids(), held)
    }

    /// Queues writes, copying the contents out of JavaScript at once. Returns the ticket of each
    /// accepted item, in order, and the items refused for an id that cannot name a file. A later
    /// `import`, `remove` or queued write of the same id supersedes an item here. The caller
    /// holds these sessions, so stale cleanup leaves their files alone, until `release`.
    #[napi]
    pub fn queue_writes(&self, ids: Vec<Utf16String>, contents: Vec<String>) -> QueuedBatch {
        let (writes, refused) = writes_of(ids, contents, |_| Base::Any);
        queued(&self.queue, writes, refused)
    }

    /// Writes the oldest queued items (at most 256) on a low-priority background thread. Call it
    /// again only once its promise has settled: each report then covers the next items in the
    /// order they were queued.
    #[napi(ts_return_type = "Promise<WriteReport>")]
    pub fn write_queued(&self) -> AsyncTask<Background<Report, WriteReport>> {
        write_next(&self.queue)
    }

    /// Writes every item before returning (used at shutdown) and releases them; returns the items
    /// that failed, by position.
    #[napi]
    pub fn write_now(&self, ids: Vec<Utf16String>, contents: Vec<String>) -> Vec<WriteFailure> {
        let (writes, refused) = writes_of(ids, contents, |_| Base::Any);
        written_now(self.sessions(), writes, refused)
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
    ) -> AsyncTask<Background<SweepSummary, SweepSummary>> {
        let options = SweepOptions {
            policy: ExpiryPolicy::new(stale_timeout, max_to_live),
            now,
            remove_corrupt,
            dry_run: false,
        };
        let queue = self.queue.clone();
        AsyncTask::new(Background::new(
            move || {
                let sessions = queue.target();
                sweep(sessions, options).map(|report| SweepSummary::new(report, sessions.files()))
            },
            |summary| summary,
        ))
    }
}
