//! `RedisSessions`: the core's sessions of one key prefix on Redis, as the JavaScript Redis
//! store sees them.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::Object;
use napi::bindgen_prelude::{AsyncTask, Function, Utf16String};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::{Env, Result};
use napi_derive::napi;
use session_core::redis::layout::Layout;
use session_core::redis::{
    Announcement, Fetched, Pending, RedisPolicy, RedisSessions, RedisSettings,
};
use session_core::writes::{Base, Report, WriteQueue};

use crate::codec::{codec_of, CodecOptions};
use crate::errors::{js_error, WriteFailure};
use crate::held_index::{unheld_id_list, JsHeldIndex};
use crate::reports::{failures, queued, written_now, QueuedBatch, WriteReport};
use crate::session::{loaded, parse_id, session_text, writes_of, JsLoaded};
use crate::tasks::{write_next, Background, RemovalTask};

/// The ids of sessions refreshed whose stored copy is gone; `None` when the data set was lost.
type Gone = Option<Vec<String>>;

/// What a store on Redis is opened with. `tlsCa` (PEM) replaces the public roots for
/// `rediss://`; `tlsInsecure` accepts any certificate; `codec` says how values are written
/// (plain JSON without it).
#[napi(object)]
pub struct RedisOptions {
    pub url: String,
    pub key_prefix: String,
    /// Milliseconds.
    pub command_timeout: f64,
    /// Milliseconds.
    pub connect_timeout: f64,
    pub max_session_bytes: f64,
    pub tls_ca: Option<String>,
    pub tls_insecure: Option<bool>,
    pub codec: Option<CodecOptions>,
}

/// A stored copy newer than the one held (`json` absent: deleted since).
#[napi(object)]
pub struct NewerCopy {
    pub id: String,
    pub version: f64,
    pub json: Option<String>,
}

impl From<Fetched> for NewerCopy {
    fn from(f: Fetched) -> Self {
        Self {
            id: f.id,
            version: f.version as f64,
            json: f.json,
        }
    }
}

/// What another store did: `kind` is `changed`, `deleted`, `subscribed` (the subscription was
/// made again: what was announced meanwhile is lost, and versions are to be checked) or
/// `unsubscribed` (lost with the connection, or refused, for `reason`; a refused one is asked
/// for again every 250 ms).
#[napi(object)]
pub struct RemoteChange {
    pub kind: String,
    pub id: Option<String>,
    pub version: Option<f64>,
    pub reason: Option<String>,
}

impl From<Announcement> for RemoteChange {
    fn from(a: Announcement) -> Self {
        let (kind, id, version, reason) = match a {
            Announcement::Changed { id, version } => {
                ("changed", Some(id), Some(version as f64), None)
            }
            Announcement::Deleted { id, version } => {
                ("deleted", Some(id), Some(version as f64), None)
            }
            Announcement::Subscribed => ("subscribed", None, None, None),
            Announcement::Unsubscribed { why } => ("unsubscribed", None, None, Some(why)),
        };
        Self {
            kind: kind.into(),
            id,
            version,
            reason,
        }
    }
}

/// What a save is based on, as JavaScript passes it: the version the copy was loaded or last
/// stored as, null for a session created here, -1 for whatever Redis holds.
fn base_of(base: Option<f64>) -> Base {
    match base {
        None => Base::New,
        Some(b) if b < 0.0 => Base::Any,
        Some(b) => Base::Version(b as u64),
    }
}

/// The store's own policy, as `check` takes it (limits of null or 0 are disabled).
fn policy_of(
    has_policy: bool,
    stale_timeout: Option<f64>,
    max_to_live: Option<f64>,
) -> Option<RedisPolicy> {
    has_policy.then_some(RedisPolicy {
        stale_timeout,
        max_to_live,
    })
}

/// Waits off the JavaScript thread for changes handed to the writer, then converts.
fn waiting<T: Send + 'static, J>(
    pending: Pending<T>,
    convert: fn(T) -> J,
) -> AsyncTask<Background<T, J>>
where
    Background<T, J>: napi::Task,
{
    AsyncTask::new(Background::new(move || pending.wait(), convert))
}

#[napi(js_name = "RedisSessions")]
pub struct JsRedisSessions {
    queue: Arc<WriteQueue<RedisSessions>>,
}

impl JsRedisSessions {
    fn sessions(&self) -> &RedisSessions {
        self.queue.target()
    }
}

#[napi]
impl JsRedisSessions {
    /// Connects to `url` (`redis://` or `rediss://`), waiting at most `connectTimeout` ms; a
    /// server that cannot be reached yet is connected to in the background. A URL that cannot be
    /// parsed, `tlsCa` with a `redis://` URL, `tlsCa` and `tlsInsecure` together, a URL's
    /// `#insecure` or unusable codec options throw a TypeError (`ERR_INVALID_REDIS_URL`,
    /// `ERR_INVALID_CODEC`).
    #[napi(constructor)]
    pub fn new(env: Env, options: RedisOptions) -> Result<Self> {
        let codec = codec_of(options.codec).map_err(|e| js_error(&env, e))?;
        let settings = RedisSettings {
            url: options.url,
            key_prefix: options.key_prefix,
            command_timeout: Duration::from_millis(options.command_timeout as u64),
            connect_timeout: Duration::from_millis(options.connect_timeout as u64),
            max_session_bytes: options.max_session_bytes as u64,
            tls_ca: options.tls_ca.map(String::into_bytes),
            tls_insecure: options.tls_insecure.unwrap_or(false),
        };
        let sessions = RedisSessions::connect(settings, codec).map_err(|e| js_error(&env, e))?;
        Ok(Self {
            queue: Arc::new(WriteQueue::new(Arc::new(sessions))),
        })
    }

    /// Whether the server is reachable, as far as the last command and reconnection know.
    #[napi(getter)]
    pub fn available(&self) -> bool {
        self.sessions().is_available()
    }

    /// Why the server cannot be reached, while it cannot (else null).
    #[napi(getter)]
    pub fn unavailable_because(&self) -> Option<String> {
        self.sessions().unavailable_because()
    }

    /// Drops the connection and stops reconnecting; every call fails from then on.
    /// The key that holds session `id` under `keyPrefix`: it depends on the session's bucket
    /// (see the core's `layout`).
    #[napi]
    pub fn key_of(key_prefix: String, id: String) -> String {
        Layout::new(&key_prefix).session(&id)
    }

    #[napi]
    pub fn close(&self) {
        self.sessions().close();
    }

    /// Connections made so far: a new number means the store reconnected.
    #[napi(getter)]
    pub fn connects(&self) -> f64 {
        self.sessions().connects() as f64
    }

    /// The stored JSON and its version, or null when there is none or the id cannot name a
    /// session. Throws with `code`: `ERR_CORRUPT_SESSION`, `ERR_SESSION_TOO_LARGE`,
    /// `ERR_REDIS_UNAVAILABLE`, `ERR_REDIS`.
    #[napi]
    pub fn load(&self, env: Env, id: Utf16String) -> Result<Option<JsLoaded>> {
        let Ok(id) = parse_id(&id) else {
            return Ok(None);
        };
        loaded(&env, self.sessions().load(&id))
    }

    /// `load`, without waiting on the JavaScript thread: a round trip that holds up nothing
    /// else. Rejects with the codes `load` throws.
    #[napi(ts_return_type = "Promise<Loaded | null>")]
    pub fn load_later<'env>(&self, env: &'env Env, id: Utf16String) -> Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred()?;
        let finish = move |result| deferred.resolve(move |env: Env| loaded(&env, result));
        match parse_id(&id) {
            Ok(id) => self.sessions().load_later(id, finish),
            Err(_) => finish(Ok(None)),
        }
        Ok(promise)
    }

    /// Calls `wake` (with no arguments, on the JavaScript thread) when other stores' changes
    /// arrive and none were waiting for `takeRemoteChanges()`. It does not keep Node.js running.
    #[napi(ts_args_type = "wake: () => void")]
    pub fn on_remote_changes(&self, wake: Function<(), ()>) -> Result<()> {
        let wake = wake
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        self.sessions().on_announcements(Box::new(move || {
            wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }));
        Ok(())
    }

    /// Other stores' writes and deletes announced since the last call, oldest first.
    #[napi]
    pub fn take_remote_changes(&self) -> Vec<RemoteChange> {
        self.sessions()
            .take_announcements()
            .into_iter()
            .map(RemoteChange::from)
            .collect()
    }

    /// The stored copies newer than `versions[i]` of `ids[i]`, after every change asked for
    /// before. Rejects when Redis cannot be reached. Resolved from the store's own thread: no
    /// thread of the pool waits for Redis.
    #[napi(ts_return_type = "Promise<Array<NewerCopy>>")]
    pub fn fetch<'env>(
        &self,
        env: &'env Env,
        ids: Vec<Utf16String>,
        versions: Vec<f64>,
    ) -> Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred()?;
        let known = ids
            .iter()
            .zip(versions)
            .filter_map(|(id, version)| Some((parse_id(id).ok()?, version.max(0.0) as u64)))
            .collect();
        self.sessions().fetch(known, move |result| {
            deferred.resolve(move |env: Env| {
                result
                    .map(|newer| newer.into_iter().map(NewerCopy::from).collect::<Vec<_>>())
                    .map_err(|e| js_error(&env, e))
            })
        });
        Ok(promise)
    }

    /// Stores JSON from outside before returning, whatever Redis holds, after checking that
    /// `load` accepts it (`ERR_INVALID_SESSION` otherwise); returns the version stored (0 if it
    /// had expired already). A bad id throws a TypeError.
    #[napi]
    pub fn import(&self, env: Env, id: Utf16String, contents: Utf16String) -> Result<f64> {
        parse_id(&id)
            .and_then(|id| self.sessions().import(id, session_text(&contents)?))
            .map(|version| version as f64)
            .map_err(|e| js_error(&env, e))
    }

    /// Throws what `import` would refuse of these contents (`ERR_INVALID_SESSION`,
    /// `ERR_SESSION_TOO_LARGE`, a TypeError for a bad id), storing nothing.
    #[napi]
    pub fn check_import(&self, env: Env, id: Utf16String, contents: Utf16String) -> Result<()> {
        parse_id(&id)
            .and_then(|id| self.sessions().check_import(&id, &session_text(&contents)?))
            .map_err(|e| js_error(&env, e))
    }

    /// True when a stored session was deleted; throws when Redis cannot be reached.
    #[napi]
    pub fn remove(&self, env: Env, id: Utf16String) -> Result<bool> {
        let Ok(id) = parse_id(&id) else {
            return Ok(false);
        };
        self.sessions().remove(id).map_err(|e| js_error(&env, e))
    }

    /// Deletes a session found corrupt, only if it still holds what was found: `json` (loaded,
    /// then refused by the session class), or else the value the last `load` of it refused.
    #[napi]
    pub fn remove_corrupt(&self, env: Env, id: Utf16String, json: Option<String>) -> Result<bool> {
        let Ok(id) = parse_id(&id) else {
            return Ok(false);
        };
        self.sessions()
            .remove_corrupt(id, json)
            .map_err(|e| js_error(&env, e))
    }

    /// Deletes sessions after every change asked for before; resolves with the deletions that
    /// failed. Ids that cannot name a session are skipped.
    #[napi(ts_return_type = "Promise<Array<Failure>>")]
    pub fn remove_later(&self, ids: Vec<Utf16String>) -> RemovalTask {
        let ids = ids.iter().filter_map(|id| parse_id(id).ok()).collect();
        waiting(self.sessions().remove_all(ids), failures)
    }

    /// Hands writes to the writer at once, after every change asked for before; `bases[i]` is
    /// the version `contents[i]` is based on (null: new here, -1: whatever Redis holds). Returns
    /// the ticket of each accepted item and the items refused for an id that cannot name a
    /// session; each `writeQueued()` reports on the oldest writes handed over.
    #[napi]
    pub fn queue_writes(
        &self,
        ids: Vec<Utf16String>,
        contents: Vec<String>,
        bases: Vec<Option<f64>>,
    ) -> QueuedBatch {
        let (writes, refused) =
            writes_of(ids, contents, |i| base_of(bases.get(i).copied().flatten()));
        queued(&self.queue, writes, refused)
    }

    /// Waits for the oldest writes handed over by `queueWrites` (at most 256) and reports on
    /// them by ticket.
    #[napi(ts_return_type = "Promise<WriteReport>")]
    pub fn write_queued(&self) -> AsyncTask<Background<Report, WriteReport>> {
        write_next(&self.queue)
    }

    /// Stores every item before returning (used at shutdown), based on `bases` as `queueWrites`
    /// takes them; returns the failures, by position.
    #[napi]
    pub fn write_now(
        &self,
        ids: Vec<Utf16String>,
        contents: Vec<String>,
        bases: Vec<Option<f64>>,
    ) -> Vec<WriteFailure> {
        let (writes, refused) =
            writes_of(ids, contents, |i| base_of(bases.get(i).copied().flatten()));
        written_now(self.sessions(), writes, refused)
    }

    /// Refreshes the expiry of sessions in use; resolves with the ids whose stored copy is gone
    /// (deleted or expired), or null, changing nothing, when the data set is no longer the one
    /// of token `dataset` (lost). Rejects when Redis cannot be reached.
    #[napi(ts_return_type = "Promise<Array<string> | null>")]
    pub fn refresh(
        &self,
        ids: Vec<Utf16String>,
        dataset: String,
    ) -> AsyncTask<Background<Gone, Gone>> {
        let ids = ids.iter().filter_map(|id| parse_id(id).ok()).collect();
        waiting(self.sessions().refresh(ids, dataset), |gone| gone)
    }

    /// Writes the expiry policy (when `hasPolicy`; limits of null or 0 are disabled) and resolves
    /// with the data set's token, which changes when the data set is lost.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn check(
        &self,
        has_policy: bool,
        stale_timeout: Option<f64>,
        max_to_live: Option<f64>,
    ) -> AsyncTask<Background<String, String>> {
        let policy = policy_of(has_policy, stale_timeout, max_to_live);
        waiting(self.sessions().check(policy), |token| token)
    }

    /// What `check` does, before returning: the token, or a throw with `code`.
    #[napi]
    pub fn check_now(
        &self,
        env: Env,
        has_policy: bool,
        stale_timeout: Option<f64>,
        max_to_live: Option<f64>,
    ) -> Result<String> {
        let policy = policy_of(has_policy, stale_timeout, max_to_live);
        self.sessions()
            .check(policy)
            .wait()
            .map_err(|e| js_error(&env, e))
    }

    /// Every stored id, from the index, separated by '/', leaving out those `held` holds.
    #[napi]
    pub fn id_list(&self, env: Env, held: Option<&JsHeldIndex>) -> Result<String> {
        unheld_id_list(&env, self.sessions().ids(), held)
    }

    /// Drops expired ids from the index; resolves with how many.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn prune(&self) -> AsyncTask<Background<u64, f64>> {
        let queue = self.queue.clone();
        AsyncTask::new(Background::new(
            move || queue.target().prune(),
            |pruned| pruned as f64,
        ))
    }
}
