//! `RedisSessions`: the sessions of one key prefix on one Redis server, as the JavaScript
//! store sees them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::{AsyncTask, Function, Utf16String};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::{Env, Result, Task};
use napi_derive::napi;
use session_core::redis_sessions::{wait_for, Reply};
use session_core::{
    session_file, Announcement, Base, RedisPolicy, RedisSessions as Sessions, RedisSettings,
    SessionId, StoreError, WriteOp, WriteResult,
};

use crate::checks::session_text;
use crate::errors::{throw, WriteFailure};
use crate::held_sessions::{unheld_id_list, HeldSessions};
use crate::session_directory::{parse_items, QueuedBatch};
use crate::tasks::WriteReport;

type Results = Vec<std::result::Result<WriteResult, StoreError>>;

/// Bounds one report, so settling it never holds the JavaScript thread for long.
const MAX_WRITES_PER_REPORT: usize = 256;

/// Writes handed to the writer whose report `writeQueued()` has not delivered yet, oldest first.
struct Submitted {
    tickets: Vec<f64>,
    reply: Reply,
}

#[napi]
pub struct RedisSessions {
    sessions: Arc<Sessions>,
    submitted: Arc<Mutex<VecDeque<Submitted>>>,
    next_ticket: AtomicU64,
    command_timeout: Duration,
}

fn id_of(id: &Utf16String) -> Option<SessionId> {
    SessionId::from_utf16(id).ok()
}

/// The store's own policy, as `check` takes it.
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

/// What a save is based on, as JavaScript passes it: the version the copy was loaded or last
/// stored as, null for a session created here, -1 for whatever Redis holds.
fn base_of(base: Option<f64>) -> Base {
    match base {
        None => Base::New,
        Some(b) if b < 0.0 => Base::Any,
        Some(b) => Base::Version(b as u64),
    }
}

fn saves(
    items: Vec<(usize, SessionId, String)>,
    bases: &[Option<f64>],
) -> (Vec<usize>, Vec<WriteOp>) {
    items
        .into_iter()
        .map(|(index, id, json)| {
            let base = base_of(bases.get(index).copied().unwrap_or(Some(-1.0)));
            (index, WriteOp::Save { id, json, base })
        })
        .unzip()
}

/// The failures of some writes, by position, and the version each one stored (0: none).
/// Refusals for a newer version or a delete are failures with their own codes.
fn report_of(results: Results) -> (Vec<WriteFailure>, Vec<f64>) {
    let mut failures = Vec::new();
    let mut versions = Vec::with_capacity(results.len());
    for (index, result) in results.into_iter().enumerate() {
        let mut version = 0.0;
        match result {
            Ok(WriteResult::Saved(v)) => version = v as f64,
            Ok(WriteResult::Conflict { version, json }) => failures.push(WriteFailure {
                index: index as u32,
                code: "ERR_SESSION_CONFLICT".into(),
                message: format!("Redis holds a newer version ({version})"),
                version: Some(version as f64),
                stored: Some(json),
            }),
            Ok(WriteResult::Deleted) => failures.push(WriteFailure {
                index: index as u32,
                code: "ERR_SESSION_DELETED".into(),
                message: "the session was deleted since this copy was loaded".into(),
                version: None,
                stored: None,
            }),
            Ok(_) => {}
            Err(e) => failures.push(WriteFailure::new(index, &e)),
        }
        versions.push(version);
    }
    (failures, versions)
}

fn failures_of(results: Results) -> Vec<WriteFailure> {
    report_of(results).0
}

/// A stored session as `load` returns it.
#[napi(object)]
pub struct LoadedSession {
    pub json: String,
    pub version: f64,
}

/// A stored copy newer than the one held (`json` null: deleted since).
#[napi(object)]
pub struct NewerCopy {
    pub id: String,
    pub version: f64,
    pub json: Option<String>,
}

/// What another store did: `kind` is `changed`, `deleted`, `subscribed` (the subscription was
/// made again: what was announced meanwhile is lost, and versions are to be checked) or
/// `unsubscribed` (it cannot be made now, for `reason`; tried again every 250 ms).
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

#[napi]
impl RedisSessions {
    /// Connects to `url` (`redis://` or `rediss://`), waiting at most `connectTimeout` ms; a
    /// server that cannot be reached yet is connected to in the background. `tlsCa` (PEM)
    /// replaces the public roots for `rediss://`. A URL that cannot be parsed, or `tlsCa` with
    /// a `redis://` URL, throws a TypeError (`ERR_INVALID_REDIS_URL`).
    #[napi(constructor)]
    pub fn new(
        env: Env,
        url: String,
        key_prefix: String,
        command_timeout: f64,
        connect_timeout: f64,
        max_session_bytes: f64,
        tls_ca: Option<String>,
    ) -> Result<Self> {
        let command_timeout = Duration::from_millis(command_timeout as u64);
        let settings = RedisSettings {
            url,
            key_prefix,
            command_timeout,
            connect_timeout: Duration::from_millis(connect_timeout as u64),
            max_session_bytes: max_session_bytes as u64,
            tls_ca: tls_ca.map(String::into_bytes),
        };
        let sessions = Sessions::connect(settings).map_err(|e| throw(&env, e))?;
        Ok(Self {
            sessions: Arc::new(sessions),
            submitted: Arc::default(),
            next_ticket: AtomicU64::new(0),
            command_timeout,
        })
    }

    /// Whether the server is reachable, as far as the last command and reconnection know.
    #[napi(getter)]
    pub fn available(&self) -> bool {
        self.sessions.is_available()
    }

    /// Why the server cannot be reached, while it cannot (else null).
    #[napi(getter)]
    pub fn unavailable_because(&self) -> Option<String> {
        self.sessions.unavailable_because()
    }

    /// Drops the connection and stops reconnecting; every call fails from then on.
    #[napi]
    pub fn close(&self) {
        self.sessions.close();
    }

    /// Connections made so far: a new number means the store reconnected.
    #[napi(getter)]
    pub fn connects(&self) -> f64 {
        self.sessions.connects() as f64
    }

    /// The stored JSON and its version, or null when there is none or the id cannot name a
    /// session. Throws with `code`: `ERR_CORRUPT_SESSION`, `ERR_SESSION_TOO_LARGE`,
    /// `ERR_REDIS_UNAVAILABLE`, `ERR_REDIS`.
    #[napi]
    pub fn load(&self, env: Env, id: Utf16String) -> Result<Option<LoadedSession>> {
        let Some(id) = id_of(&id) else {
            return Ok(None);
        };
        let loaded = self.sessions.load(&id).map_err(|e| throw(&env, e))?;
        Ok(loaded.map(|(json, version)| LoadedSession {
            json,
            version: version as f64,
        }))
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
        self.sessions.on_announcements(Box::new(move || {
            wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }));
        Ok(())
    }

    /// Other stores' writes and deletes announced since the last call, oldest first.
    #[napi]
    pub fn take_remote_changes(&self) -> Vec<RemoteChange> {
        self.sessions
            .take_announcements()
            .into_iter()
            .map(RemoteChange::from)
            .collect()
    }

    /// The stored copies newer than `versions[i]` of `ids[i]`, after every change asked for
    /// before. Rejects when Redis cannot be reached.
    #[napi(ts_return_type = "Promise<Array<NewerCopy>>")]
    pub fn fetch(
        &self,
        ids: Vec<Utf16String>,
        versions: Vec<f64>,
    ) -> AsyncTask<Awaiting<Vec<NewerCopy>>> {
        let known = ids
            .iter()
            .zip(versions)
            .filter_map(|(id, version)| Some((id_of(id)?, version.max(0.0) as u64)))
            .collect();
        self.awaiting(
            vec![WriteOp::Fetch { known }],
            |mut results| match results.pop() {
                Some(Ok(WriteResult::Fetched(newer))) => Ok(newer
                    .into_iter()
                    .map(|f| NewerCopy {
                        id: f.id,
                        version: f.version as f64,
                        json: f.json,
                    })
                    .collect()),
                Some(Err(e)) => Err(e),
                _ => Ok(Vec::new()),
            },
        )
    }

    /// Stores JSON from outside before returning, whatever Redis holds, after checking that
    /// `load` accepts it (`ERR_INVALID_SESSION` otherwise); returns the version stored (0 if it
    /// had expired already). A bad id throws a TypeError.
    #[napi]
    pub fn import(&self, env: Env, id: Utf16String, contents: Utf16String) -> Result<f64> {
        SessionId::from_utf16(&id)
            .map_err(StoreError::from)
            .and_then(|id| {
                let json = session_text(&contents)?;
                session_file::parse_times(json.as_bytes()).map_err(StoreError::InvalidSession)?;
                let base = Base::Any;
                match self.one(WriteOp::Save { id, json, base })? {
                    WriteResult::Saved(version) => Ok(version as f64),
                    _ => Ok(0.0),
                }
            })
            .map_err(|e| throw(&env, e))
    }

    /// True when a stored session was deleted; throws when Redis cannot be reached.
    #[napi]
    pub fn remove(&self, env: Env, id: Utf16String) -> Result<bool> {
        let Some(id) = id_of(&id) else {
            return Ok(false);
        };
        match self.one(WriteOp::Remove { id }) {
            Ok(WriteResult::Removed(removed)) => Ok(removed),
            Ok(_) => Ok(false),
            Err(e) => Err(throw(&env, e)),
        }
    }

    /// Deletes a session found corrupt, only if it still holds what was found: `json` (loaded,
    /// then refused by the session class), or else the value the last `load` of it refused.
    #[napi]
    pub fn remove_corrupt(&self, env: Env, id: Utf16String, json: Option<String>) -> Result<bool> {
        let Some(id) = id_of(&id) else {
            return Ok(false);
        };
        let Some(value) = json
            .map(String::into_bytes)
            .or_else(|| self.sessions.corrupt_copy(&id))
        else {
            return Ok(false);
        };
        match self.one(WriteOp::RemoveIfUnchanged { id, value }) {
            Ok(result) => Ok(result == WriteResult::Removed(true)),
            Err(e) => Err(throw(&env, e)),
        }
    }

    /// Deletes sessions after every change asked for before; resolves with the failures, by
    /// position. Ids that cannot name a session are skipped.
    #[napi(ts_return_type = "Promise<Array<WriteFailure>>")]
    pub fn remove_later(&self, ids: Vec<Utf16String>) -> AsyncTask<Awaiting<Vec<WriteFailure>>> {
        let ops = ids
            .iter()
            .filter_map(id_of)
            .map(|id| WriteOp::Remove { id })
            .collect();
        self.awaiting(ops, |results| Ok(failures_of(results)))
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
        let (items, refused) = parse_items(ids, contents);
        let tickets: Vec<f64> = items
            .iter()
            .map(|_| (self.next_ticket.fetch_add(1, Ordering::Relaxed) + 1) as f64)
            .collect();
        let (_, ops) = saves(items, &bases);
        if !ops.is_empty() {
            let reply = self.sessions.submit(ops);
            self.submitted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_back(Submitted {
                    tickets: tickets.clone(),
                    reply,
                });
        }
        QueuedBatch { tickets, refused }
    }

    /// Waits for the oldest writes handed over by `queueWrites` (at most 256, or one batch
    /// if larger) and reports on them by ticket.
    #[napi(ts_return_type = "Promise<WriteReport>")]
    pub fn write_queued(&self) -> AsyncTask<ReportTask> {
        let mut submitted = self.submitted.lock().unwrap_or_else(|p| p.into_inner());
        let mut batches = Vec::new();
        let mut tickets = 0;
        while let Some(next) = submitted.front() {
            if !batches.is_empty() && tickets + next.tickets.len() > MAX_WRITES_PER_REPORT {
                break;
            }
            tickets += next.tickets.len();
            batches.extend(submitted.pop_front());
        }
        AsyncTask::new(ReportTask {
            batches,
            command_timeout: self.command_timeout,
        })
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
        let (items, mut failures) = parse_items(ids, contents);
        let (positions, ops) = saves(items, &bases);
        for failure in failures_of(self.sessions.write_now(ops)) {
            let index = positions[failure.index as usize] as u32;
            failures.push(WriteFailure { index, ..failure });
        }
        failures.sort_by_key(|f| f.index);
        failures
    }

    /// Refreshes the expiry of sessions in use; resolves with the ids whose stored copy is gone
    /// (deleted or expired), or null, changing nothing, when the data set is no longer the one
    /// of token `dataset` (lost). Rejects when Redis cannot be reached.
    #[napi(ts_return_type = "Promise<Array<string> | null>")]
    pub fn refresh(
        &self,
        ids: Vec<Utf16String>,
        dataset: String,
    ) -> AsyncTask<Awaiting<Option<Vec<String>>>> {
        let ids = ids.iter().filter_map(id_of).collect();
        self.awaiting(
            vec![WriteOp::Refresh { ids, dataset }],
            |mut results| match results.pop() {
                Some(Ok(WriteResult::Gone(ids))) => Ok(ids),
                Some(Err(e)) => Err(e),
                _ => Ok(Some(Vec::new())),
            },
        )
    }

    /// Writes the expiry policy (when `hasPolicy`; limits of null or 0 are disabled) and resolves
    /// with the data set's token, which changes when the data set is lost.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn check(
        &self,
        has_policy: bool,
        stale_timeout: Option<f64>,
        max_to_live: Option<f64>,
    ) -> AsyncTask<Awaiting<String>> {
        let policy = policy_of(has_policy, stale_timeout, max_to_live);
        self.awaiting(
            vec![WriteOp::Check { policy }],
            |mut results| match results.pop() {
                Some(Ok(WriteResult::Dataset(token))) => Ok(token),
                Some(Err(e)) => Err(e),
                _ => Err(StoreError::Redis("no reply to the check".into())),
            },
        )
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
        match self.one(WriteOp::Check { policy }) {
            Ok(WriteResult::Dataset(token)) => Ok(token),
            Ok(_) => Err(throw(
                &env,
                StoreError::Redis("no reply to the check".into()),
            )),
            Err(e) => Err(throw(&env, e)),
        }
    }

    /// Every stored id, from the index, separated by '/', leaving out those `held` holds.
    #[napi]
    pub fn id_list(&self, env: Env, held: Option<&HeldSessions>) -> Result<String> {
        self.sessions
            .ids()
            .map(|ids| unheld_id_list(ids.iter().map(String::as_str), held))
            .map_err(|e| throw(&env, e))
    }

    /// Drops expired ids from the index; resolves with how many.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn prune(&self) -> AsyncTask<PruneTask> {
        AsyncTask::new(PruneTask {
            sessions: self.sessions.clone(),
        })
    }
}

impl RedisSessions {
    fn one(&self, op: WriteOp) -> std::result::Result<WriteResult, StoreError> {
        let mut results = self.sessions.write_now(vec![op]);
        results
            .pop()
            .unwrap_or_else(|| Err(StoreError::Redis("no reply".into())))
    }

    fn awaiting<T>(
        &self,
        ops: Vec<WriteOp>,
        finish: fn(Results) -> std::result::Result<T, StoreError>,
    ) -> AsyncTask<Awaiting<T>>
    where
        Awaiting<T>: Task,
    {
        AsyncTask::new(Awaiting {
            reply: self.sessions.submit(ops),
            command_timeout: self.command_timeout,
            finish,
        })
    }
}

/// Waits, off the JavaScript thread, for the writer's reply to some changes.
pub struct Awaiting<T> {
    reply: Reply,
    command_timeout: Duration,
    finish: fn(Results) -> std::result::Result<T, StoreError>,
}

impl<T: napi::bindgen_prelude::ToNapiValue + napi::bindgen_prelude::TypeName + Send + 'static> Task
    for Awaiting<T>
{
    type Output = T;
    type JsValue = T;

    fn compute(&mut self) -> Result<T> {
        let results = wait_for(&self.reply, self.command_timeout);
        (self.finish)(results).map_err(|e| {
            napi::Error::new(napi::Status::GenericFailure, format!("{}: {e}", e.code()))
        })
    }

    fn resolve(&mut self, _env: Env, output: T) -> Result<T> {
        Ok(output)
    }
}

/// The report of the oldest writes handed over, by ticket, as the directory's write queue gives.
pub struct ReportTask {
    batches: Vec<Submitted>,
    command_timeout: Duration,
}

impl Task for ReportTask {
    type Output = WriteReport;
    type JsValue = WriteReport;

    fn compute(&mut self) -> Result<WriteReport> {
        let mut report = WriteReport {
            tickets: Vec::new(),
            failures: Vec::new(),
            versions: Vec::new(),
        };
        for Submitted { tickets, reply } in self.batches.drain(..) {
            let results = wait_for(&reply, self.command_timeout);
            let offset = report.tickets.len() as u32;
            let (failures, versions) = report_of(results);
            report
                .failures
                .extend(failures.into_iter().map(|f| WriteFailure {
                    index: f.index + offset,
                    ..f
                }));
            report.tickets.extend(tickets);
            report.versions.extend(versions);
        }
        Ok(report)
    }

    fn resolve(&mut self, _env: Env, report: WriteReport) -> Result<WriteReport> {
        Ok(report)
    }
}

pub struct PruneTask {
    sessions: Arc<Sessions>,
}

impl Task for PruneTask {
    type Output = f64;
    type JsValue = f64;

    fn compute(&mut self) -> Result<f64> {
        self.sessions.prune().map(|n| n as f64).map_err(|e| {
            napi::Error::new(napi::Status::GenericFailure, format!("{}: {e}", e.code()))
        })
    }

    fn resolve(&mut self, _env: Env, pruned: f64) -> Result<f64> {
        Ok(pruned)
    }
}
