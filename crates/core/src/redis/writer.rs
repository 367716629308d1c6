//! The one task that runs every change to Redis, in the order it was asked for, so that a
//! delete asked after a write is never overtaken by it: as many changes as fit go in one
//! pipeline of Lua scripts (see `scripts`), and each caller gets the replies to its own.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use redis::{RedisError, RedisResult, Value};
use tokio::sync::mpsc;

use crate::codec::{stored_limit, Codec};
use crate::error::StoreError;
use crate::random::random_token;
use crate::redis::connection::Connection;
use crate::redis::layout::{Bucket, Layout};
use crate::redis::migration::FlatLayout;
use crate::redis::scripts::Scripts;
use crate::redis::settings::RedisSettings;
use crate::session::format::{session_times, Corruption};
use crate::session::id::SessionId;
use crate::writes::Base;

/// Bounds one pipeline, so that a large backlog never makes one reply outlast the timeout.
const MAX_OPS_PER_PIPELINE: usize = 256;
const MAX_BYTES_PER_PIPELINE: usize = 1 << 20;

/// Everything the writer and the callers share.
pub(crate) struct Shared {
    pub connection: Arc<Connection>,
    pub layout: Layout,
    pub scripts: Scripts,
    pub settings: RedisSettings,
    /// How sessions' JSON is stored in Redis and read back.
    pub codec: Codec,
    /// The policy last seen in Redis, or written there by this store.
    pub policy: Mutex<Option<RedisPolicy>>,
    /// Names this store in the changes it announces, so that it ignores its own.
    pub origin: String,
    /// The layout of earlier versions, where a single server may still hold sessions (none on
    /// a cluster); see `migration`.
    pub flat: Option<FlatLayout>,
    /// Whether the flat layout may still hold sessions.
    pub flat_left: AtomicBool,
}

impl Shared {
    /// `script` on `bucket`, with the policy last seen.
    pub fn expiry_invocation<'a>(
        &self,
        script: &'a redis::Script,
        bucket: &Bucket,
    ) -> redis::ScriptInvocation<'a> {
        expiry_invocation(script, bucket, self.known_policy())
    }

    /// Runs `pipe` on the connection; its replies as `T`.
    pub async fn query<T: redis::FromRedisValue + Send + 'static>(
        &self,
        pipe: redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.connection
            .run(move |mut link| Box::pin(async move { pipe.query_async(&mut link).await }))
            .await
    }

    /// The JSON of a value stored for session `id` at `place`, decoded and checked to be text.
    pub fn decode(
        &self,
        id: &SessionId,
        place: &str,
        value: Vec<u8>,
    ) -> Result<String, StoreError> {
        let limit = self.settings.max_session_bytes;
        let json = self
            .codec
            .decode(id, value, limit)
            .map_err(|why| StoreError::undecoded(place.to_owned(), why, limit))?;
        String::from_utf8(json).map_err(|_| StoreError::Corrupt {
            place: place.to_owned(),
            reason: Corruption::NotUtf8,
        })
    }

    /// The longest value the scripts hand back: what holds the longest JSON a store reads.
    pub fn stored_limit(&self) -> u64 {
        stored_limit(self.settings.max_session_bytes)
    }

    pub fn known_policy(&self) -> Option<RedisPolicy> {
        *self.policy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why `json` may not be stored as session `id`: longer than a store reads back.
    pub fn refusal(&self, id: &SessionId, json: &str) -> Option<StoreError> {
        let limit = self.settings.max_session_bytes;
        let len = json.len() as u64;
        (len > limit).then(|| StoreError::TooLarge {
            place: self.layout.session(id.as_str()),
            len,
            limit,
        })
    }
}

/// The expiry policy stores keep in Redis, in milliseconds; `None` disables a limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RedisPolicy {
    pub stale_timeout: Option<f64>,
    pub max_to_live: Option<f64>,
}

/// One change, run by the writer in order.
#[derive(Debug)]
pub enum WriteOp {
    /// Stores `json`, based on the stored version `base`, or stores it whatever Redis holds.
    Save {
        id: SessionId,
        json: String,
        base: Base,
    },
    Remove {
        id: SessionId,
    },
    /// Deletes the session only if it still holds `value`.
    RemoveIfUnchanged {
        id: SessionId,
        value: Vec<u8>,
    },
    /// Refreshes the expiry of sessions in use, if the data set is still the one of `dataset`.
    Refresh {
        ids: Vec<SessionId>,
        dataset: String,
    },
    /// The stored copies newer than the versions given.
    Fetch {
        known: Vec<(SessionId, u64)>,
    },
    /// Writes the store's own policy, if any (else restores the last one seen if Redis has
    /// none), and reads the data set's token (setting it if there is none).
    Check {
        policy: Option<RedisPolicy>,
    },
}

/// A stored copy newer than the one a caller holds; `json` is `None` when it was deleted. A
/// fetch leaves out newer copies that are not UTF-8 text.
#[derive(Debug, PartialEq)]
pub struct Fetched {
    pub id: String,
    pub version: u64,
    pub json: Option<String>,
}

/// What an op did; a refused save is an error (`Conflict`, `Deleted`, `TooLarge`).
#[derive(Debug, PartialEq)]
pub enum WriteResult {
    /// Stored as this version.
    Saved(u64),
    /// The session had expired already; nothing was stored.
    Expired,
    Removed(bool),
    /// The refreshed ids whose key is gone; `None` when the data set was another.
    Gone(Option<Vec<String>>),
    /// The data set's token.
    Dataset(String),
    Fetched(Vec<Fetched>),
}

/// The writer's replies to changes handed to it, one per job, in order.
pub struct Reply(pub(crate) Vec<(std_mpsc::Receiver<Results>, usize)>);

pub type Results = Vec<Result<WriteResult, StoreError>>;

pub(crate) struct Job {
    pub ops: Vec<WriteOp>,
    pub reply: ReplyTo,
}

/// Where the writer sends a job's results.
pub(crate) enum ReplyTo {
    /// A thread waiting on the receiving end (see [`wait_for`]).
    Waiting(std_mpsc::Sender<Results>),
    /// Called on the writer's thread, so that no thread waits (see [`Called`]).
    Called(Called),
}

impl ReplyTo {
    fn send(self, results: Results) {
        match self {
            ReplyTo::Waiting(sender) => {
                // The waiting thread may have given up.
                let _ = sender.send(results);
            }
            ReplyTo::Called(mut called) => called.call(results),
        }
    }
}

/// A function called once with a job's results; a job dropped unrun (the store shutting down)
/// calls it with `Unavailable` for each op, so that whoever waits on it hears of it.
pub(crate) struct Called {
    call: Option<Box<dyn FnOnce(Results) + Send>>,
    ops: usize,
}

impl Called {
    pub fn new(ops: usize, call: impl FnOnce(Results) + Send + 'static) -> Self {
        Called {
            call: Some(Box::new(call)),
            ops,
        }
    }

    fn call(&mut self, results: Results) {
        if let Some(call) = self.call.take() {
            call(results);
        }
    }
}

impl Drop for Called {
    fn drop(&mut self) {
        let unrun = (0..self.ops)
            .map(|_| Err(StoreError::Unavailable("the store is closed".into())))
            .collect();
        self.call(unrun);
    }
}

/// `base` as the save script takes it.
fn base_arg(base: Base) -> String {
    match base {
        Base::New => "new".into(),
        Base::Version(v) => v.to_string(),
        Base::Any => "any".into(),
    }
}

/// `ops` cut, in order, into runs that fit one pipeline (an op larger than a pipeline alone).
pub(crate) fn pipeline_sized(ops: Vec<WriteOp>) -> Vec<Vec<WriteOp>> {
    let mut runs: Vec<Vec<WriteOp>> = Vec::new();
    let mut size = 0;
    for op in ops {
        let op_bytes = op_size(&op);
        match runs.last_mut() {
            Some(run) if fits_one_pipeline(run.len() + 1, size + op_bytes) => {
                size += op_bytes;
                run.push(op);
            }
            _ => {
                size = op_bytes;
                runs.push(vec![op]);
            }
        }
    }
    runs
}

/// Whether this many ops of this many bytes go in one pipeline.
fn fits_one_pipeline(ops: usize, bytes: usize) -> bool {
    ops <= MAX_OPS_PER_PIPELINE && bytes <= MAX_BYTES_PER_PIPELINE
}

/// How long a job's results are waited for: it waits behind at most a few pipelines, each
/// bounded by the command timeout.
pub fn reply_deadline(command_timeout: Duration) -> Duration {
    command_timeout * 4
}

/// The results of the changes, in order, or `Unavailable` for each op of a job whose results
/// do not come by the reply deadline and of every job after it.
pub fn wait_for(reply: &Reply, command_timeout: Duration) -> Results {
    let deadline = reply_deadline(command_timeout);
    let mut results = Vec::new();
    let mut late = None;
    for (receiver, ops) in &reply.0 {
        if late.is_none() {
            match receiver.recv_timeout(deadline) {
                Ok(mine) => {
                    results.extend(mine);
                    continue;
                }
                Err(_) => late = Some(format!("no reply within {deadline:?}")),
            }
        }
        let why = late.clone().unwrap_or_default();
        results.extend((0..*ops).map(|_| Err(StoreError::Unavailable(why.clone()))));
    }
    results
}

/// The writer: takes the jobs in order, runs as many as fit in one pipeline, replies to each.
pub(crate) async fn write_in_order(shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    // A job taken that did not fit in the last pipeline: the first of the next.
    let mut left_over = None;
    loop {
        let first = match left_over.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let job_size = |job: &Job| job.ops.iter().map(op_size).sum::<usize>();
        let (mut count, mut size) = (first.ops.len(), job_size(&first));
        let mut batch = vec![first];
        while let Ok(job) = jobs.try_recv() {
            let bytes = job_size(&job);
            if !fits_one_pipeline(count + job.ops.len(), size + bytes) {
                left_over = Some(job);
                break;
            }
            count += job.ops.len();
            size += bytes;
            batch.push(job);
        }
        let ops: Vec<&WriteOp> = batch.iter().flat_map(|job| job.ops.iter()).collect();
        let mut results = run_checked_ops(&shared, &ops).await.into_iter();
        for job in batch {
            let mine = results.by_ref().take(job.ops.len()).collect();
            job.reply.send(mine);
        }
    }
}

fn op_size(op: &WriteOp) -> usize {
    match op {
        WriteOp::Save { json, .. } => json.len(),
        WriteOp::Fetch { known } => known.len() * 64,
        WriteOp::RemoveIfUnchanged { value, .. } => value.len(),
        WriteOp::Refresh { ids, .. } => ids.len() * 64,
        WriteOp::Remove { .. } | WriteOp::Check { .. } => 64,
    }
}

/// Epoch milliseconds by this host's clock; used only for a session's age at its first save.
fn host_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}

/// Runs the ops, refusing without sending them the sessions larger than a store may read back.
/// Saves are encoded here, on the writer's thread.
async fn run_checked_ops(
    shared: &Arc<Shared>,
    ops: &[&WriteOp],
) -> Vec<Result<WriteResult, StoreError>> {
    let prepared: Vec<Result<Ready, StoreError>> = ops
        .iter()
        .map(|&op| match op {
            WriteOp::Save { id, json, .. } => {
                if let Some(refusal) = shared.refusal(id, json) {
                    return Err(refusal);
                }
                let times = session_times(json.as_bytes());
                let value = shared
                    .codec
                    .encode(id, json.as_bytes(), times)
                    .map_err(StoreError::Encoding)?;
                let created = times.and_then(|t| t.created_at);
                Ok(Ready {
                    op,
                    value: Some((value, created)),
                })
            }
            _ => Ok(Ready { op, value: None }),
        })
        .collect();
    let sendable: Vec<&Ready> = prepared.iter().filter_map(|r| r.as_ref().ok()).collect();
    let mut sent = run_ops(shared, &sendable).await.into_iter();
    prepared
        .into_iter()
        .map(|prepared| match prepared {
            Err(e) => Err(e),
            Ok(_) => sent
                .next()
                .unwrap_or_else(|| Err(StoreError::Redis("no reply".into()))),
        })
        .collect()
}

/// An op ready to send: a save with its stored value and its session's creation time.
struct Ready<'a> {
    op: &'a WriteOp,
    value: Option<(Cow<'a, [u8]>, Option<f64>)>,
}

/// One script an op runs in one bucket: an op on one session runs one; a fetch or a refresh
/// one per bucket its sessions lie in, and the check one per bucket.
struct Part<'a> {
    bucket: usize,
    invocation: redis::ScriptInvocation<'a>,
}

/// The ops' sessions grouped by bucket, each group in the order given.
fn by_bucket<T>(items: &[T], id_of: impl Fn(&T) -> &SessionId) -> BTreeMap<usize, Vec<&T>> {
    let mut groups: BTreeMap<usize, Vec<&T>> = BTreeMap::new();
    for item in items {
        let bucket = Layout::bucket_number(id_of(item).as_str());
        groups.entry(bucket).or_default().push(item);
    }
    groups
}

/// A data set's token: the buckets' own tokens, in order, joined by commas.
fn bucket_token(dataset: &str, bucket: usize) -> &str {
    dataset.split(',').nth(bucket).unwrap_or_default()
}

/// The scripts `op` runs. `new_token` is what a check sets as a bucket's token when it has
/// none.
fn parts_of<'a>(shared: &'a Shared, ready: &Ready, new_token: &str) -> Vec<Part<'a>> {
    let layout = &shared.layout;
    let scripts = &shared.scripts;
    let known = shared.known_policy();
    let channel = layout.changes.as_str();
    let origin = shared.origin.as_str();
    let limit = shared.stored_limit();
    let on = |bucket: usize, script| Part {
        bucket,
        invocation: expiry_invocation(script, &layout.buckets[bucket], known),
    };
    // A session's bucket, and its key there.
    let place = |id: &SessionId| {
        let bucket = Layout::bucket_number(id.as_str());
        (bucket, layout.buckets[bucket].session(id.as_str()))
    };
    match ready.op {
        WriteOp::Save { id, base, .. } => {
            let (value, created) = ready.value.as_ref().expect("a save is encoded first");
            let age = created.map_or(0.0, |created| (host_now() - created).max(0.0));
            let (bucket, key) = place(id);
            let mut part = on(bucket, &scripts.save);
            part.invocation
                .key(key)
                .arg(id.as_str())
                .arg(value.as_ref())
                .arg(age as i64)
                .arg(base_arg(*base))
                .arg(origin)
                .arg(limit)
                .arg(channel);
            vec![part]
        }
        WriteOp::Remove { id } => {
            let (bucket, key) = place(id);
            let mut part = on(bucket, &scripts.remove);
            part.invocation
                .key(key)
                .arg(id.as_str())
                .arg(origin)
                .arg(channel);
            vec![part]
        }
        WriteOp::RemoveIfUnchanged { id, value } => {
            let (bucket, key) = place(id);
            let mut part = on(bucket, &scripts.remove_if_unchanged);
            part.invocation
                .key(key)
                .arg(id.as_str())
                .arg(value.as_slice());
            vec![part]
        }
        WriteOp::Fetch { known } => by_bucket(known, |(id, _)| id)
            .into_iter()
            .map(|(bucket, known)| {
                let mut part = on(bucket, &scripts.fetch);
                part.invocation.arg(limit);
                for (id, _) in &known {
                    part.invocation
                        .key(layout.buckets[bucket].session(id.as_str()));
                }
                for (id, version) in known {
                    part.invocation.arg(id.as_str()).arg(*version);
                }
                part
            })
            .collect(),
        WriteOp::Refresh { ids, dataset } => by_bucket(ids, |id| id)
            .into_iter()
            .map(|(bucket, ids)| {
                let mut part = on(bucket, &scripts.refresh);
                part.invocation
                    .key(&layout.buckets[bucket].dataset)
                    .arg(bucket_token(dataset, bucket));
                for id in &ids {
                    part.invocation
                        .key(layout.buckets[bucket].session(id.as_str()));
                }
                for id in ids {
                    part.invocation.arg(id.as_str());
                }
                part
            })
            .collect(),
        WriteOp::Check { policy } => {
            let (mode, policy) = match (policy, known) {
                (Some(own), _) => ("own", Some(*own)),
                (None, Some(seen)) => ("restore", Some(seen)),
                (None, None) => ("", None),
            };
            let (stale, max_to_live) = limit_args(policy);
            layout
                .buckets
                .iter()
                .enumerate()
                .map(|(bucket, keys)| {
                    let mut invocation = scripts.check.prepare_invoke();
                    invocation
                        .key(&keys.dataset)
                        .key(&keys.policy)
                        .arg(new_token)
                        .arg(mode)
                        .arg(&stale)
                        .arg(&max_to_live);
                    Part { bucket, invocation }
                })
                .collect()
        }
    }
}

/// Runs the ops: each bucket's scripts in one pipeline, in the order asked for (so that two
/// changes of one session keep their order), and the buckets' pipelines at once (a cluster
/// runs each on the master of its slot). One result per op, in order.
async fn run_ops(shared: &Arc<Shared>, ops: &[&Ready<'_>]) -> Vec<Result<WriteResult, StoreError>> {
    if ops.is_empty() {
        return Vec::new();
    }
    // A bucket's token is set once; each bucket keeps the first one it is given.
    let new_token = format!("{:08x}", random_token() as u32);
    let parts: Vec<Vec<Part>> = ops
        .iter()
        .map(|ready| parts_of(shared, ready, &new_token))
        .collect();
    let mut places: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
    for (o, op_parts) in parts.iter().enumerate() {
        for (p, part) in op_parts.iter().enumerate() {
            places.entry(part.bucket).or_default().push((o, p));
        }
    }
    let pipelines = places.values().map(|places| {
        let invocations = places.iter().map(|&(o, p)| &parts[o][p].invocation);
        run_pipeline(shared, invocations.collect())
    });
    let replies = join_all(pipelines).await;
    let mut values: Vec<Vec<Option<Result<Value, StoreError>>>> = parts
        .iter()
        .map(|op_parts| op_parts.iter().map(|_| None).collect())
        .collect();
    for (places, replies) in places.values().zip(replies) {
        for (&(o, p), reply) in places.iter().zip(replies) {
            values[o][p] = Some(reply);
        }
    }
    ops.iter()
        .zip(values)
        .map(|(op, values)| {
            let no_reply = || Err(StoreError::Redis("no reply".into()));
            let values = values.into_iter().map(|v| v.unwrap_or_else(no_reply));
            read_result(shared, op.op, values.collect())
        })
        .collect()
}

/// Runs one bucket's scripts in one pipeline; one reply each, in order.
async fn run_pipeline(
    shared: &Arc<Shared>,
    invocations: Vec<&redis::ScriptInvocation<'_>>,
) -> Vec<Result<Value, StoreError>> {
    let mut replies = match send(shared, &invocations, false).await {
        Ok(replies) => replies,
        Err(e) => return invocations.iter().map(|_| Err(e.for_each_item())).collect(),
    };
    // A server restarted since the scripts were last loaded, or a replica promoted since, has
    // not got them, and fails every script from then on. Running again all of them from the
    // first failure, in order, after loading the scripts is harmless even for those that did
    // run (another client loaded the scripts meanwhile): a save then conflicts with its own
    // write and is merged, a delete raises the version once more.
    if let Some(first) = replies.iter().position(is_no_script) {
        match send(shared, &invocations[first..], true).await {
            Ok(again) => {
                replies.truncate(first);
                replies.extend(again);
            }
            Err(e) => {
                for reply in &mut replies[first..] {
                    *reply = Err(RedisError::from(std::io::Error::other(e.to_string())));
                }
            }
        }
    }
    replies
        .into_iter()
        .map(|reply| reply.map_err(|e| shared.connection.refused(&e)))
        .collect()
}

/// Runs the invocations in one pipeline (loading the scripts first if `load`), one reply each.
async fn send(
    shared: &Arc<Shared>,
    invocations: &[&redis::ScriptInvocation<'_>],
    load: bool,
) -> Result<Vec<RedisResult<Value>>, StoreError> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    if load {
        for script in shared.scripts.for_writes() {
            pipe.load_script(script).ignore();
        }
    }
    for invocation in invocations {
        pipe.invoke_script(invocation);
    }
    let sent = invocations.len();
    let mut replies = shared
        .connection
        .run(move |mut connection| {
            Box::pin(async move {
                pipe.query_async::<Vec<RedisResult<Value>>>(&mut connection)
                    .await
            })
        })
        .await?;
    replies.resize_with(sent, || {
        Err(RedisError::from(std::io::Error::other("no reply")))
    });
    Ok(replies)
}

fn is_no_script(reply: &RedisResult<Value>) -> bool {
    matches!(reply, Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript))
}

/// An invocation with what every expiry-aware script takes first: five keys of its bucket,
/// and the policy to apply while Redis has none.
fn expiry_invocation<'a>(
    script: &'a redis::Script,
    bucket: &Bucket,
    known: Option<RedisPolicy>,
) -> redis::ScriptInvocation<'a> {
    let (stale, max_to_live) = limit_args(known);
    let mut invocation = script.prepare_invoke();
    invocation
        .key(&bucket.index)
        .key(&bucket.created)
        .key(&bucket.policy)
        .key(&bucket.versions)
        .key(&bucket.tombstones)
        .arg(stale)
        .arg(max_to_live);
    invocation
}

/// A policy's limits as script arguments: milliseconds, '' for none (as `ExpiryPolicy` reads
/// them, a limit of 0 is none).
pub fn limit_args(policy: Option<RedisPolicy>) -> (String, String) {
    let arg = |limit: Option<f64>| match limit.filter(|ms| *ms > 0.0) {
        Some(ms) => ms.to_string(),
        None => String::new(),
    };
    policy.map_or_else(Default::default, |p| {
        (arg(p.stale_timeout), arg(p.max_to_live))
    })
}

/// What kind of value a reply is, for messages.
pub(crate) fn shape(value: &Value) -> String {
    match value {
        Value::Array(items) => format!("an array of {}", items.len()),
        Value::BulkString(bytes) => format!("a string of {} bytes", bytes.len()),
        Value::Int(_) => "an integer".into(),
        Value::Nil => "nil".into(),
        other => format!("{:?}", std::mem::discriminant(other)),
    }
}

/// An op's result, from the replies to its parts.
fn read_result(
    shared: &Shared,
    op: &WriteOp,
    values: Vec<Result<Value, StoreError>>,
) -> Result<WriteResult, StoreError> {
    // The reply's shape only: a reply may hold a session's cookies, which no message shows.
    let unexpected =
        |value: &Value| StoreError::Redis(format!("unexpected reply ({})", shape(value)));
    let values = values
        .into_iter()
        .collect::<Result<Vec<Value>, StoreError>>()?;
    let read = |value: &Value| -> Result<WriteResult, StoreError> {
        match (op, value) {
            (WriteOp::Save { id, .. }, _) => {
                let (outcome, version, stored): (i64, u64, Vec<u8>) =
                    redis::from_redis_value_ref(value).map_err(|_| unexpected(value))?;
                let place = || shared.layout.session(id.as_str());
                match outcome {
                    1 => Ok(WriteResult::Saved(version)),
                    2 => Ok(WriteResult::Expired),
                    // A stored copy this store cannot decode is never merged nor overwritten:
                    // the write fails, and the session stays in memory.
                    0 => Err(StoreError::Conflict {
                        version,
                        json: shared.decode(id, &place(), stored)?,
                    }),
                    -1 => Err(StoreError::Deleted),
                    3 => Err(StoreError::TooLarge {
                        place: place(),
                        len: String::from_utf8_lossy(&stored).parse().unwrap_or(u64::MAX),
                        limit: shared.stored_limit(),
                    }),
                    _ => Err(unexpected(value)),
                }
            }
            (WriteOp::Fetch { .. }, _) => {
                let newer: Vec<(String, u64, i64, Vec<u8>)> =
                    redis::from_redis_value_ref(value).map_err(|_| unexpected(value))?;
                Ok(WriteResult::Fetched(
                    newer
                        .into_iter()
                        // A copy that does not decode to text is no session for this store:
                        // left out, so that the others in the batch are still taken in.
                        .filter_map(|(id, version, deleted, value)| {
                            let json = match deleted {
                                1 => None,
                                _ => {
                                    let session = SessionId::parse(&id).ok()?;
                                    let place = shared.layout.session(&id);
                                    Some(shared.decode(&session, &place, value).ok()?)
                                }
                            };
                            Some(Fetched { id, version, json })
                        })
                        .collect(),
                ))
            }
            (WriteOp::Remove { .. } | WriteOp::RemoveIfUnchanged { .. }, Value::Int(n)) => {
                Ok(WriteResult::Removed(*n > 0))
            }
            (WriteOp::Refresh { .. }, _) => {
                redis::from_redis_value_ref::<Option<Vec<String>>>(value)
                    .map(WriteResult::Gone)
                    .map_err(|_| unexpected(value))
            }
            (WriteOp::Check { .. }, _) => {
                let (token, stale, max_to_live, set) =
                    redis::from_redis_value_ref::<(String, String, String, String)>(value)
                        .map_err(|_| unexpected(value))?;
                if !set.is_empty() {
                    let limit = |text: String| text.parse::<f64>().ok();
                    *shared.policy.lock().unwrap_or_else(|p| p.into_inner()) = Some(RedisPolicy {
                        stale_timeout: limit(stale),
                        max_to_live: limit(max_to_live),
                    });
                }
                Ok(WriteResult::Dataset(token))
            }
            _ => Err(unexpected(value)),
        }
    };
    let mut results = values.iter().map(read);
    match op {
        // One part per bucket touched: their results together.
        WriteOp::Fetch { .. } => {
            let mut all = Vec::new();
            for result in results {
                if let WriteResult::Fetched(newer) = result? {
                    all.extend(newer);
                }
            }
            Ok(WriteResult::Fetched(all))
        }
        WriteOp::Refresh { .. } => {
            let mut all = Vec::new();
            for result in results {
                match result? {
                    WriteResult::Gone(Some(gone)) => all.extend(gone),
                    // One bucket lost its data: the whole data set is to be written back.
                    _ => return Ok(WriteResult::Gone(None)),
                }
            }
            Ok(WriteResult::Gone(Some(all)))
        }
        WriteOp::Check { .. } => {
            let mut tokens = Vec::with_capacity(values.len());
            for result in results {
                if let WriteResult::Dataset(token) = result? {
                    tokens.push(token);
                }
            }
            Ok(WriteResult::Dataset(tokens.join(",")))
        }
        _ => results
            .next()
            .unwrap_or_else(|| Err(StoreError::Redis("no reply".into()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(name: &str, bytes: usize) -> WriteOp {
        WriteOp::Save {
            id: SessionId::parse(name).unwrap(),
            json: "x".repeat(bytes),
            base: Base::Any,
        }
    }

    fn names(runs: &[Vec<WriteOp>]) -> Vec<Vec<String>> {
        let name = |op: &WriteOp| match op {
            WriteOp::Save { id, .. } => id.to_string(),
            _ => unreachable!(),
        };
        runs.iter()
            .map(|run| run.iter().map(name).collect())
            .collect()
    }

    #[test]
    fn changes_are_cut_into_pipelines_in_order() {
        assert!(pipeline_sized(Vec::new()).is_empty());
        let many: Vec<WriteOp> = (0..600).map(|i| save(&format!("s{i}"), 10)).collect();
        let runs = pipeline_sized(many);
        assert_eq!(
            runs.iter().map(Vec::len).collect::<Vec<_>>(),
            [
                MAX_OPS_PER_PIPELINE,
                MAX_OPS_PER_PIPELINE,
                600 - 2 * MAX_OPS_PER_PIPELINE
            ]
        );
        let flat: Vec<String> = names(&runs).concat();
        assert_eq!(flat, (0..600).map(|i| format!("s{i}")).collect::<Vec<_>>());

        let half = MAX_BYTES_PER_PIPELINE / 2;
        let big = vec![
            save("a", half),
            save("b", half),
            save("c", 1),
            save("huge", 3 * MAX_BYTES_PER_PIPELINE),
            save("d", 1),
        ];
        assert_eq!(
            names(&pipeline_sized(big)),
            [vec!["a", "b"], vec!["c"], vec!["huge"], vec!["d"]]
        );
    }

    #[test]
    fn a_reply_called_once_and_a_job_dropped_unrun_reports_every_op_unavailable() {
        let (sender, receiver) = std_mpsc::channel();
        let answered = sender.clone();
        ReplyTo::Called(Called::new(1, move |results| {
            answered.send(results).unwrap()
        }))
        .send(vec![Ok(WriteResult::Removed(true))]);
        assert!(matches!(
            receiver.recv().unwrap().as_slice(),
            [Ok(WriteResult::Removed(true))]
        ));
        drop(Called::new(2, move |results| sender.send(results).unwrap()));
        let unrun = receiver.recv().unwrap();
        assert_eq!(unrun.len(), 2);
        assert!(unrun
            .iter()
            .all(|r| matches!(r, Err(StoreError::Unavailable(_)))));
        assert!(receiver.try_recv().is_err());
    }
}
