//! Sessions in Redis (layout and scripts: `redis_scripts`), through one multiplexed connection
//! that is re-established in the background whenever it fails.
//!
//! Every change goes through one writer task, in the order it was asked for, so a delete asked
//! after a write is never overtaken by it. Reads go straight to the connection. While the server
//! is known to be unreachable every call fails at once with `ERR_REDIS_UNAVAILABLE`, so that no
//! request waits on a dead server again and again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult, TlsCertificates, Value};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use crate::error::StoreError;
use crate::file_backend::random_token;
use crate::id::SessionId;
use crate::redis_scripts::{Keys, Scripts};
use crate::redis_subscriber::{Announcement, Announcements, Listener};
use crate::session_file::parse_times;

/// How often an unreachable server is tried again.
const RECONNECT_INTERVAL: Duration = Duration::from_millis(250);
/// Bounds one pipeline, so that a large backlog never makes one reply outlast the timeout.
const MAX_OPS_PER_PIPELINE: usize = 256;
const MAX_BYTES_PER_PIPELINE: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    pub key_prefix: String,
    /// The longest a command may take before the server counts as unreachable.
    pub command_timeout: Duration,
    pub connect_timeout: Duration,
    /// Longer values are not read.
    pub max_session_bytes: u64,
    /// PEM certificates of the authorities a `rediss://` server's certificate may be signed by,
    /// in place of the public roots.
    pub tls_ca: Option<Vec<u8>>,
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

/// What a save is based on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Base {
    /// A session created here: stored unless another host stored one under the same id.
    New,
    /// The stored version the copy was loaded as (or last stored as).
    Version(u64),
    /// Whatever Redis holds: an import, or the last resort after conflicts kept recurring.
    Any,
}

impl Base {
    fn arg(self) -> String {
        match self {
            Base::New => "new".into(),
            Base::Version(v) => v.to_string(),
            Base::Any => "any".into(),
        }
    }
}

/// A stored copy newer than the one a caller holds; `json` is `None` when it was deleted. A
/// fetch leaves out newer copies that are not UTF-8 text.
#[derive(Debug, PartialEq)]
pub struct Fetched {
    pub id: String,
    pub version: u64,
    pub json: Option<String>,
}

#[derive(Debug, PartialEq)]
pub enum WriteResult {
    /// Stored as this version.
    Saved(u64),
    /// The session had expired already; nothing was stored.
    Expired,
    /// Redis holds a newer version, `json`; nothing was stored.
    Conflict {
        version: u64,
        json: String,
    },
    /// The session was deleted after the copy was loaded; nothing was stored.
    Deleted,
    Removed(bool),
    /// The refreshed ids whose key is gone; `None` when the data set was another.
    Gone(Option<Vec<String>>),
    /// The data set's token.
    Dataset(String),
    Fetched(Vec<Fetched>),
}

/// The writer's replies to changes handed to it, one per job, in order.
pub struct Reply(Vec<(std_mpsc::Receiver<Results>, usize)>);

type Results = Vec<Result<WriteResult, StoreError>>;

struct Job {
    ops: Vec<WriteOp>,
    reply: std_mpsc::Sender<Results>,
}

/// The connection, or why there is none.
struct Link {
    client: Client,
    config: AsyncConnectionConfig,
    connect_timeout: Duration,
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    last_error: Mutex<String>,
    reconnecting: AtomicBool,
    /// Set by `close`: no connection is made any more.
    closed: AtomicBool,
    /// Connections made so far; each one numbers the connection it made.
    connects: AtomicU64,
}

impl Link {
    fn connection(&self) -> Result<(u64, MultiplexedConnection), StoreError> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.clone().ok_or_else(|| {
            StoreError::Unavailable(
                self.last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            )
        })
    }

    /// A connection whose server answers: a stopped server's kernel still accepts connections,
    /// and counting those as up would make every request wait for the timeout again.
    async fn connect(&self) -> Result<MultiplexedConnection, String> {
        let attempt = async {
            let mut connection = self
                .client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await?;
            redis::cmd("PING")
                .query_async::<()>(&mut connection)
                .await?;
            Ok::<_, RedisError>(connection)
        };
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.connect_timeout)),
        }
    }

    fn connected(&self, connection: MultiplexedConnection) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let number = self.connects.fetch_add(1, Ordering::SeqCst) + 1;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((number, connection));
    }

    /// Connection `number` failed: it is dropped (unless already replaced) and a new one sought.
    fn failed(self: &Arc<Self>, runtime: &tokio::runtime::Handle, number: u64, why: String) {
        {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if !matches!(&*current, Some((n, _)) if *n == number) {
                return;
            }
            *current = None;
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = why;
        }
        self.reconnect_in_background(runtime);
    }

    fn reconnect_in_background(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        if self.reconnecting.swap(true, Ordering::SeqCst) {
            return;
        }
        let link = self.clone();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(RECONNECT_INTERVAL).await;
                if link.closed.load(Ordering::SeqCst) {
                    return;
                }
                match link.connect().await {
                    Ok(connection) => {
                        link.connected(connection);
                        link.reconnecting.store(false, Ordering::SeqCst);
                        return;
                    }
                    Err(why) => {
                        *link.last_error.lock().unwrap_or_else(|p| p.into_inner()) = why;
                    }
                }
            }
        });
    }
}

/// Whether `error` says the server cannot be reached, rather than that it refused a command.
fn is_unreachable(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
}

/// Everything the writer and the callers share.
struct Shared {
    link: Arc<Link>,
    keys: Keys,
    scripts: Scripts,
    settings: RedisSettings,
    handle: tokio::runtime::Handle,
    /// The policy last seen in Redis, or written there by this store.
    policy: Mutex<Option<RedisPolicy>>,
    /// Names this store in the changes it announces, so that it ignores its own.
    origin: String,
}

impl Shared {
    fn expiry_invocation<'a>(&self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
        let known = *self.policy.lock().unwrap_or_else(|p| p.into_inner());
        expiry_invocation(script, &self.keys, known)
    }

    /// Runs `command` on the connection within the command timeout; a failure to reach the
    /// server marks the connection failed.
    async fn run<T>(
        &self,
        command: impl FnOnce(MultiplexedConnection) -> futures_like::BoxFuture<RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let (number, connection) = self.link.connection()?;
        match tokio::time::timeout(self.settings.command_timeout, command(connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if is_unreachable(&e) => {
                self.link.failed(&self.handle, number, e.to_string());
                Err(StoreError::Unavailable(e.to_string()))
            }
            Ok(Err(e)) => Err(StoreError::Redis(e.to_string())),
            Err(_) => {
                let why = format!("no reply within {:?}", self.settings.command_timeout);
                self.link.failed(&self.handle, number, why.clone());
                Err(StoreError::Unavailable(why))
            }
        }
    }
}

/// Boxed futures, without a dependency for them.
mod futures_like {
    use std::future::Future;
    use std::pin::Pin;
    pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
}

/// The sessions of one key prefix on one Redis server.
pub struct RedisSessions {
    shared: Arc<Shared>,
    announcements: Arc<Announcements>,
    /// Whether the subscription to other stores' announcements was started.
    listening: AtomicBool,
    /// The last value `load` found corrupt, by id, for `corrupt_copy`.
    corrupt: Mutex<Option<(SessionId, Vec<u8>)>>,
    writer: mpsc::UnboundedSender<Job>,
    /// Kept last: dropping it stops the writer and the reconnection.
    runtime: Runtime,
}

impl RedisSessions {
    /// Parses the URL (`redis://`, `rediss://` for TLS, credentials in it) and connects,
    /// waiting at most the connect timeout. A server that cannot be reached now is not an
    /// error: the store starts unavailable and connects as soon as it can.
    pub fn connect(settings: RedisSettings) -> Result<Self, StoreError> {
        let client = match &settings.tls_ca {
            None => Client::open(settings.url.as_str()),
            Some(pem) => Client::build_with_tls(
                settings.url.as_str(),
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
        }
        .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rhfs-redis")
            .enable_all()
            .build()
            .map_err(|e| StoreError::io("start a thread for", "Redis", e))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.command_timeout));
        let link = Arc::new(Link {
            client,
            config,
            connect_timeout: settings.connect_timeout,
            current: Mutex::new(None),
            last_error: Mutex::new("not connected yet".into()),
            reconnecting: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            connects: AtomicU64::new(0),
        });
        match runtime.block_on(link.connect()) {
            Ok(connection) => link.connected(connection),
            Err(why) => {
                *link.last_error.lock().unwrap_or_else(|p| p.into_inner()) = why;
                link.reconnect_in_background(runtime.handle());
            }
        }
        let shared = Arc::new(Shared {
            link,
            keys: Keys::new(&settings.key_prefix),
            scripts: Scripts::new(),
            settings,
            handle: runtime.handle().clone(),
            policy: Mutex::new(None),
            origin: format!("{:016x}", random_token()),
        });
        let (writer, jobs) = mpsc::unbounded_channel();
        runtime.spawn(write_in_order(shared.clone(), jobs));
        Ok(Self {
            announcements: Arc::default(),
            listening: AtomicBool::new(false),
            shared,
            corrupt: Mutex::new(None),
            writer,
            runtime,
        })
    }

    /// Whether the server is reachable, as far as the last command and reconnection know.
    pub fn is_available(&self) -> bool {
        self.shared.link.connection().is_ok()
    }

    /// Why the server cannot be reached, while it cannot.
    pub fn unavailable_because(&self) -> Option<String> {
        self.shared.link.connection().err().map(|e| e.to_string())
    }

    /// Drops the connection and stops reconnecting; every call fails from now on.
    pub fn close(&self) {
        let link = &self.shared.link;
        link.closed.store(true, Ordering::SeqCst);
        *link.last_error.lock().unwrap_or_else(|p| p.into_inner()) = "the store is closed".into();
        *link.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Connections made so far: a new number means the store reconnected.
    pub fn connects(&self) -> u64 {
        self.shared.link.connects.load(Ordering::SeqCst)
    }

    /// The session's JSON and version, or `None` when there is none. A value that is not a
    /// session fails with `ERR_CORRUPT_SESSION`, one above the size limit with
    /// `ERR_SESSION_TOO_LARGE`.
    pub fn load(&self, id: &SessionId) -> Result<Option<(String, u64)>, StoreError> {
        let key = self.shared.keys.session(id.as_str());
        let limit = self.shared.settings.max_session_bytes;
        let command_key = key.clone();
        let versions = self.shared.keys.versions.clone();
        let field = id.as_str().to_owned();
        // At most one byte more than the limit is read: enough to tell a value too large.
        let (exists, mut bytes, version): (bool, Vec<u8>, Option<u64>) =
            self.runtime
                .block_on(self.shared.run(move |mut connection| {
                    Box::pin(async move {
                        // Atomic, so that the version is the one of the JSON read.
                        redis::pipe()
                            .atomic()
                            .exists(&command_key)
                            .getrange(&command_key, 0, limit as isize)
                            .hget(&versions, &field)
                            .query_async(&mut connection)
                            .await
                    })
                }))?;
        if !exists {
            return Ok(None);
        }
        if bytes.len() as u64 > limit {
            let len = self.strlen(&key).unwrap_or(bytes.len() as u64);
            return Err(StoreError::ValueTooLarge { key, len, limit });
        }
        if let Err(reason) = parse_times(&bytes) {
            *self.corrupt.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((id.clone(), std::mem::take(&mut bytes)));
            return Err(StoreError::CorruptValue { key, reason });
        }
        String::from_utf8(bytes)
            .map(|json| Some((json, version.unwrap_or(0))))
            .map_err(|_| StoreError::Redis(format!("{key} is not UTF-8")))
    }

    /// Subscribes to other stores' announcements (once; a store that never asks, such as the
    /// command-line tool, never subscribes). `wake` is called, from another thread, when some
    /// arrive and none were waiting to be taken.
    pub fn on_announcements(&self, wake: Box<dyn Fn() + Send + Sync>) {
        self.announcements.on_arrival(wake);
        if self.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        let link = &self.shared.link;
        let (closed, connects) = (link.clone(), link.clone());
        self.runtime.spawn(
            Listener {
                client: link.client.clone(),
                channel: self.shared.keys.changes.clone(),
                origin: self.shared.origin.clone(),
                connect_timeout: self.shared.settings.connect_timeout,
                closed: Box::new(move || closed.closed.load(Ordering::SeqCst)),
                connects: Box::new(move || connects.connects.load(Ordering::SeqCst)),
                sink: self.announcements.clone(),
            }
            .listen(),
        );
    }

    /// Other stores' writes and deletes announced since the last call, oldest first.
    pub fn take_announcements(&self) -> Vec<Announcement> {
        self.announcements.take()
    }

    fn strlen(&self, key: &str) -> Result<u64, StoreError> {
        let key = key.to_owned();
        self.runtime
            .block_on(self.shared.run(move |mut connection| {
                Box::pin(async move {
                    redis::cmd("STRLEN")
                        .arg(&key)
                        .query_async(&mut connection)
                        .await
                })
            }))
    }

    /// The value the last `load` of `id` found corrupt, if that was the last corrupt load.
    pub fn corrupt_copy(&self, id: &SessionId) -> Option<Vec<u8>> {
        let corrupt = self.corrupt.lock().unwrap_or_else(|p| p.into_inner());
        corrupt
            .as_ref()
            .filter(|(of, _)| of == id)
            .map(|(_, value)| value.clone())
    }

    /// Every id in the index whose key has not expired, after dropping those that have.
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        let shared = self.shared.clone();
        let (_, ids): (i64, Vec<String>) =
            self.runtime
                .block_on(self.shared.run(move |mut connection| {
                    Box::pin(async move {
                        let mut pipe = redis::pipe();
                        pipe.load_script(&shared.scripts.prune).ignore();
                        pipe.invoke_script(&shared.expiry_invocation(&shared.scripts.prune));
                        pipe.cmd("ZRANGE").arg(&shared.keys.index).arg(0).arg(-1);
                        pipe.query_async(&mut connection).await
                    })
                }))?;
        Ok(ids)
    }

    /// Drops expired ids from the index, until none is left; returns how many.
    pub fn prune(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let shared = self.shared.clone();
            let pruned: u64 = self
                .runtime
                .block_on(self.shared.run(move |mut connection| {
                    Box::pin(async move {
                        shared
                            .expiry_invocation(&shared.scripts.prune)
                            .invoke_async(&mut connection)
                            .await
                    })
                }))?;
            total += pruned;
            if pruned < 10_000 {
                return Ok(total);
            }
        }
    }

    /// Hands changes to the writer; they run after every change handed to it before. They go
    /// as jobs of at most one pipeline each, so that each reply comes within a bounded time
    /// however many changes there are (a shutdown may store every held session at once).
    pub fn submit(&self, ops: Vec<WriteOp>) -> Reply {
        let mut replies = Vec::new();
        for ops in pipeline_sized(ops) {
            let (reply, receiver) = std_mpsc::channel();
            replies.push((receiver, ops.len()));
            // A writer that is gone (the runtime is shutting down) drops the job, and the
            // receiver then reports it as unavailable.
            let _ = self.writer.send(Job { ops, reply });
        }
        Reply(replies)
    }

    /// Waits for a reply of [`submit`](Self::submit), as long as the writer may need for it.
    pub fn wait(&self, reply: &Reply) -> Results {
        wait_for(reply, self.shared.settings.command_timeout)
    }

    /// Runs changes now, in order after those submitted before.
    pub fn write_now(&self, ops: Vec<WriteOp>) -> Results {
        if ops.is_empty() {
            return Vec::new();
        }
        let reply = self.submit(ops);
        self.wait(&reply)
    }
}

/// `ops` cut, in order, into runs that fit one pipeline (an op larger than a pipeline alone).
fn pipeline_sized(ops: Vec<WriteOp>) -> Vec<Vec<WriteOp>> {
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

/// The results of the changes, in order, or `Unavailable` for each op of a job whose results
/// do not come in time and of every job after it: a job waits behind at most a few pipelines,
/// each bounded by the command timeout.
pub fn wait_for(reply: &Reply, command_timeout: Duration) -> Results {
    let mut results = Vec::new();
    let mut late = None;
    for (receiver, ops) in &reply.0 {
        if late.is_none() {
            match receiver.recv_timeout(command_timeout * 4) {
                Ok(mine) => {
                    results.extend(mine);
                    continue;
                }
                Err(_) => late = Some(format!("no reply within {:?}", command_timeout * 4)),
            }
        }
        let why = late.clone().unwrap_or_default();
        results.extend((0..*ops).map(|_| Err(StoreError::Unavailable(why.clone()))));
    }
    results
}

/// The writer: takes the jobs in order, runs as many as fit in one pipeline, replies to each.
async fn write_in_order(shared: Arc<Shared>, mut jobs: mpsc::UnboundedReceiver<Job>) {
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
            let _ = job.reply.send(mine);
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
async fn run_checked_ops(
    shared: &Arc<Shared>,
    ops: &[&WriteOp],
) -> Vec<Result<WriteResult, StoreError>> {
    let limit = shared.settings.max_session_bytes;
    let refused: Vec<Option<StoreError>> = ops
        .iter()
        .map(|op| match op {
            WriteOp::Save { id, json, .. } if json.len() as u64 > limit => {
                Some(StoreError::ValueTooLarge {
                    key: shared.keys.session(id.as_str()),
                    len: json.len() as u64,
                    limit,
                })
            }
            _ => None,
        })
        .collect();
    let sendable: Vec<&WriteOp> = ops
        .iter()
        .zip(&refused)
        .filter(|(_, refusal)| refusal.is_none())
        .map(|(op, _)| *op)
        .collect();
    let mut sent = run_ops(shared, &sendable).await.into_iter();
    refused
        .into_iter()
        .map(|refusal| match refusal {
            Some(e) => Err(e),
            None => sent
                .next()
                .unwrap_or_else(|| Err(StoreError::Redis("no reply".into()))),
        })
        .collect()
}

/// Runs the ops in one pipeline; one result per op, in order.
async fn run_ops(shared: &Arc<Shared>, ops: &[&WriteOp]) -> Vec<Result<WriteResult, StoreError>> {
    if ops.is_empty() {
        return Vec::new();
    }
    let keys = &shared.keys;
    let scripts = &shared.scripts;
    let known = *shared.policy.lock().unwrap_or_else(|p| p.into_inner());
    let expiry_keys = |script| expiry_invocation(script, keys, known);
    let origin = shared.origin.as_str();
    let limit = shared.settings.max_session_bytes;
    let mut invocations = Vec::with_capacity(ops.len());
    for op in ops {
        let invocation = match op {
            WriteOp::Save { id, json, base } => {
                let age = parse_times(json.as_bytes())
                    .ok()
                    .and_then(|t| t.created_at)
                    .map_or(0.0, |created| (host_now() - created).max(0.0));
                let mut i = expiry_keys(&scripts.save);
                i.key(keys.session(id.as_str()))
                    .key(&keys.changes)
                    .arg(id.as_str())
                    .arg(json.as_str())
                    .arg(age as i64)
                    .arg(base.arg())
                    .arg(origin)
                    .arg(limit);
                i
            }
            WriteOp::Remove { id } => {
                let mut i = expiry_keys(&scripts.remove);
                i.key(keys.session(id.as_str()))
                    .key(&keys.changes)
                    .arg(id.as_str())
                    .arg(origin);
                i
            }
            WriteOp::Fetch { known } => {
                let mut i = expiry_keys(&scripts.fetch);
                i.arg(limit);
                for (id, _) in known {
                    i.key(keys.session(id.as_str()));
                }
                for (id, version) in known {
                    i.arg(id.as_str()).arg(*version);
                }
                i
            }
            WriteOp::RemoveIfUnchanged { id, value } => {
                let mut i = expiry_keys(&scripts.remove_if_unchanged);
                i.key(keys.session(id.as_str()))
                    .arg(id.as_str())
                    .arg(value.as_slice());
                i
            }
            WriteOp::Refresh { ids, dataset } => {
                let mut i = expiry_keys(&scripts.refresh);
                i.key(&keys.dataset).arg(dataset.as_str());
                for id in ids {
                    i.key(keys.session(id.as_str()));
                }
                for id in ids {
                    i.arg(id.as_str());
                }
                i
            }
            WriteOp::Check { policy } => {
                let (mode, policy) = match (policy, known) {
                    (Some(own), _) => ("own", Some(*own)),
                    (None, Some(seen)) => ("restore", Some(seen)),
                    (None, None) => ("", None),
                };
                let (stale, max_to_live) = limit_args(policy);
                let mut i = scripts.check.prepare_invoke();
                i.key(&keys.dataset)
                    .key(&keys.policy)
                    .arg(format!("{:016x}", random_token()))
                    .arg(mode)
                    .arg(stale)
                    .arg(max_to_live);
                i
            }
        };
        invocations.push(invocation);
    }
    let mut replies = match send(shared, &invocations, false).await {
        Ok(replies) => replies,
        Err(e) => return ops.iter().map(|_| Err(e.for_each_item())).collect(),
    };
    // A server restarted since the scripts were last loaded has forgotten them, and fails every
    // script from then on. Running again all of them from the first failure, in order, after
    // loading the scripts is harmless even for those that did run (another client loaded the
    // scripts meanwhile): a save then conflicts with its own write and is merged, a delete
    // raises the version once more.
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
    ops.iter()
        .zip(replies)
        .map(|(op, reply)| {
            let value = reply.map_err(|e| StoreError::Redis(e.to_string()))?;
            read_result(shared, op, value)
        })
        .collect()
}

/// Runs the invocations in one pipeline (loading the scripts first if `load`), one reply each.
async fn send(
    shared: &Arc<Shared>,
    invocations: &[redis::ScriptInvocation<'_>],
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
    shared
        .run(move |mut connection| {
            Box::pin(async move {
                pipe.query_async::<Vec<RedisResult<Value>>>(&mut connection)
                    .await
            })
        })
        .await
}

fn is_no_script(reply: &RedisResult<Value>) -> bool {
    matches!(reply, Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript))
}

/// An invocation with what every expiry-aware script takes first: three keys, and the policy
/// to apply while Redis has none.
fn expiry_invocation<'a>(
    script: &'a redis::Script,
    keys: &Keys,
    known: Option<RedisPolicy>,
) -> redis::ScriptInvocation<'a> {
    let (stale, max_to_live) = limit_args(known);
    let mut invocation = script.prepare_invoke();
    invocation
        .key(&keys.index)
        .key(&keys.deadlines)
        .key(&keys.policy)
        .key(&keys.versions)
        .key(&keys.tombstones)
        .arg(stale)
        .arg(max_to_live);
    invocation
}

/// A policy's limits as script arguments: whole milliseconds, '' for none.
fn limit_args(policy: Option<RedisPolicy>) -> (String, String) {
    let arg = |limit: Option<f64>| match limit.filter(|ms| *ms > 0.0) {
        Some(ms) => (ms as i64).to_string(),
        None => String::new(),
    };
    policy.map_or_else(Default::default, |p| {
        (arg(p.stale_timeout), arg(p.max_to_live))
    })
}

fn read_result(shared: &Shared, op: &WriteOp, value: Value) -> Result<WriteResult, StoreError> {
    let unexpected = |value: &Value| StoreError::Redis(format!("unexpected reply {value:?}"));
    match (op, &value) {
        (WriteOp::Save { id, .. }, _) => {
            let (outcome, version, json): (i64, u64, Option<String>) =
                redis::from_redis_value_ref(&value).map_err(|_| unexpected(&value))?;
            match (outcome, json) {
                (1, _) => Ok(WriteResult::Saved(version)),
                (2, _) => Ok(WriteResult::Expired),
                (0, Some(json)) => Ok(WriteResult::Conflict { version, json }),
                (-1, _) => Ok(WriteResult::Deleted),
                (3, Some(len)) => Err(StoreError::ValueTooLarge {
                    key: shared.keys.session(id.as_str()),
                    len: len.parse().unwrap_or(u64::MAX),
                    limit: shared.settings.max_session_bytes,
                }),
                _ => Err(unexpected(&value)),
            }
        }
        (WriteOp::Fetch { .. }, _) => {
            let newer: Vec<(String, u64, Option<Vec<u8>>)> =
                redis::from_redis_value_ref(&value).map_err(|_| unexpected(&value))?;
            Ok(WriteResult::Fetched(
                newer
                    .into_iter()
                    // A copy that is not text is no session: left out, so that the others in
                    // the batch are still taken in.
                    .filter_map(|(id, version, json)| {
                        let json = json.map(String::from_utf8).transpose().ok()?;
                        Some(Fetched { id, version, json })
                    })
                    .collect(),
            ))
        }
        (WriteOp::Remove { .. } | WriteOp::RemoveIfUnchanged { .. }, Value::Int(n)) => {
            Ok(WriteResult::Removed(*n > 0))
        }
        (WriteOp::Refresh { .. }, _) => redis::from_redis_value_ref::<Option<Vec<String>>>(&value)
            .map(WriteResult::Gone)
            .map_err(|_| unexpected(&value)),
        (WriteOp::Check { .. }, _) => {
            let (token, stale, max_to_live, set) =
                redis::from_redis_value_ref::<(String, String, String, String)>(&value)
                    .map_err(|_| unexpected(&value))?;
            if !set.is_empty() {
                let limit = |text: String| text.parse::<f64>().ok();
                *shared.policy.lock().unwrap_or_else(|p| p.into_inner()) = Some(RedisPolicy {
                    stale_timeout: limit(stale),
                    max_to_live: limit(max_to_live),
                });
            }
            Ok(WriteResult::Dataset(token))
        }
        _ => Err(unexpected(&value)),
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
}
