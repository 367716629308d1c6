//! The sessions of one key prefix on Redis (layout and scripts: `scripts`). Every change goes
//! through the writer (`writer`), in the order it was asked for; reads go straight to the
//! connection (`connection`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use crate::codec::{Codec, Encoding};
use crate::error::StoreError;
use crate::random::random_token;
use crate::redis::announcements::{Announcement, Listener};
use crate::redis::connection::Connection;
use crate::redis::layout::{Layout, BUCKETS};
use crate::redis::migration::{move_all, move_one, FlatLayout};
use crate::redis::scripts::Scripts;
use crate::redis::settings::RedisSettings;
use crate::redis::topology::Topology;
use crate::redis::writer::{
    pipeline_sized, reply_deadline, wait_for, write_in_order, Called, Fetched, Job, RedisPolicy,
    Reply, ReplyTo, Results, Shared, WriteOp, WriteResult,
};
use crate::session::format::{parse_times, session_json};
use crate::session::id::SessionId;
use crate::session::Loaded;
use crate::writes::{Base, Outcome, Write, WriteTarget};

/// Changes handed to the writer, whose outcome is waited for later, off the JavaScript thread.
pub struct Pending<T> {
    reply: Reply,
    command_timeout: Duration,
    finish: Box<dyn FnOnce(Results) -> Result<T, StoreError> + Send>,
}

impl<T> Pending<T> {
    /// Waits for the writer, as long as it may need: see [`wait_for`].
    pub fn wait(self) -> Result<T, StoreError> {
        (self.finish)(wait_for(&self.reply, self.command_timeout))
    }
}

/// The one result of a pending change of one op.
fn only(mut results: Results) -> Result<WriteResult, StoreError> {
    results
        .pop()
        .unwrap_or_else(|| Err(StoreError::Redis("no reply".into())))
}

/// A result of another kind than the op's: named by its kind only, since a fetched copy holds
/// a session's cookies.
fn unexpected(result: WriteResult) -> StoreError {
    let kind = match result {
        WriteResult::Saved(_) => "saved",
        WriteResult::Expired => "expired",
        WriteResult::Removed(_) => "removed",
        WriteResult::Gone(_) => "gone ids",
        WriteResult::Dataset(_) => "a data set token",
        WriteResult::Fetched(_) => "fetched copies",
    };
    StoreError::Redis(format!("unexpected reply ({kind})"))
}

/// A pipeline that drops the expired ids of `bucket`'s index, the script loaded first (a
/// server restarted, or a replica promoted, has not got it).
fn pruning(shared: &Shared, bucket: usize) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    let prune = &shared.scripts.prune;
    pipe.load_script(prune).ignore();
    pipe.invoke_script(&shared.expiry_invocation(prune, &shared.layout.buckets[bucket]));
    pipe
}

/// One bucket's part of a call that reads every bucket.
type BucketRun<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// The last value a load found corrupt, and its id.
type CorruptSlot = Arc<Mutex<Option<(SessionId, Vec<u8>)>>>;

/// The sessions of one key prefix on one Redis server.
pub struct RedisSessions {
    shared: Arc<Shared>,
    /// What the connection hears, for the store.
    listener: Listener,
    /// Whether the subscription to other stores' announcements was started.
    listening: AtomicBool,
    /// Whether sessions of the flat layout are being moved (see `migration`).
    moving: Arc<AtomicBool>,
    /// The last value `load` found corrupt, by id, for `remove_corrupt`.
    corrupt: CorruptSlot,
    writer: mpsc::UnboundedSender<Job>,
    /// Kept last: dropping it stops the writer and the reconnection.
    runtime: Runtime,
}

impl RedisSessions {
    /// Parses the URL (`redis://`, `rediss://` for TLS, credentials in it) and connects,
    /// waiting at most the connect timeout. A server that cannot be reached now is not an
    /// error: the store starts unavailable and connects as soon as it can.
    pub fn connect(settings: RedisSettings, codec: Codec) -> Result<Self, StoreError> {
        let topology = Topology::of(&settings)?;
        let flat = match topology {
            Topology::Cluster(_) => None,
            _ => Some(FlatLayout::new(&settings.key_prefix)),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rhfs-redis")
            .enable_all()
            .build()
            .map_err(|e| StoreError::io("start a thread for", "Redis", e))?;
        let layout = Layout::new(&settings.key_prefix);
        let probe_keys = layout.buckets.iter().map(|b| b.dataset.clone()).collect();
        let (connection, pushes) = Connection::open(
            topology,
            probe_keys,
            settings.connect_timeout,
            settings.command_timeout,
            runtime.handle().clone(),
        )?;
        let origin = format!("{:016x}", random_token());
        let listener = Listener {
            connection: connection.clone(),
            channel: layout.changes.clone(),
            origin: origin.clone(),
            sink: Arc::default(),
            subscribing: Arc::default(),
        };
        runtime.spawn(listener.clone().hear(pushes));
        let shared = Arc::new(Shared {
            connection,
            layout,
            scripts: Scripts::new(),
            settings,
            codec,
            policy: Mutex::new(None),
            origin,
            flat_left: AtomicBool::new(flat.is_some()),
            flat,
        });
        let (writer, jobs) = mpsc::unbounded_channel();
        runtime.spawn(write_in_order(shared.clone(), jobs));
        Ok(Self {
            listener,
            listening: AtomicBool::new(false),
            moving: Arc::default(),
            shared,
            corrupt: Arc::default(),
            writer,
            runtime,
        })
    }

    /// Whether the server is reachable, as far as the last command and reconnection know.
    pub fn is_available(&self) -> bool {
        self.shared.connection.is_available()
    }

    /// Why the server cannot be reached, while it cannot.
    pub fn unavailable_because(&self) -> Option<String> {
        self.shared.connection.unavailable_because()
    }

    /// Drops the connection and stops reconnecting; every call fails from now on.
    pub fn close(&self) {
        self.shared.connection.close();
    }

    /// Connections made so far: a new number means the store reconnected.
    pub fn connects(&self) -> u64 {
        self.shared.connection.connects()
    }

    /// The session's JSON and version, or `None` when there is none. A value that is not a
    /// session fails with `ERR_CORRUPT_SESSION`, one above the size limit with
    /// `ERR_SESSION_TOO_LARGE`. Waits on the calling thread (see `load_later`).
    pub fn load(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        self.runtime
            .block_on(read(self.shared.clone(), self.corrupt.clone(), id.clone()))
    }

    /// `load`, without waiting on the calling thread: `done` is called with the result from
    /// the store's own thread.
    pub fn load_later(
        &self,
        id: SessionId,
        done: impl FnOnce(Result<Option<Loaded>, StoreError>) + Send + 'static,
    ) {
        let read = read(self.shared.clone(), self.corrupt.clone(), id);
        self.runtime.spawn(async move { done(read.await) });
    }

    /// Subscribes to other stores' announcements (once; a store that never asks, such as the
    /// command-line tool, never subscribes). `wake` is called, from another thread, when some
    /// arrive and none were waiting to be taken.
    pub fn on_announcements(&self, wake: Box<dyn Fn() + Send + Sync>) {
        self.listener.sink.on_arrival(wake);
        if self.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        self.runtime.spawn(self.listener.clone().subscribe());
    }

    /// Other stores' writes and deletes announced since the last call, oldest first.
    pub fn take_announcements(&self) -> Vec<Announcement> {
        self.listener.sink.take()
    }

    /// Every id in the buckets' indexes whose key has not expired, after dropping those that
    /// have.
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        if self.shared.flat_left.load(Ordering::SeqCst) {
            self.runtime.block_on(move_all(&self.shared))?;
        }
        let lists = self.runtime.block_on(self.each_bucket(|shared, bucket| {
            Box::pin(async move {
                let mut pipe = pruning(&shared, bucket);
                pipe.cmd("ZRANGE")
                    .arg(&shared.layout.buckets[bucket].index)
                    .arg(0)
                    .arg(-1);
                let (_, ids): (i64, Vec<String>) = shared.query(pipe).await?;
                Ok(ids)
            })
        }))?;
        Ok(lists.concat())
    }

    /// Drops expired ids from the buckets' indexes, until none is left; returns how many.
    pub fn prune(&self) -> Result<u64, StoreError> {
        let counts = self.runtime.block_on(self.each_bucket(|shared, bucket| {
            Box::pin(async move {
                let mut total = 0;
                loop {
                    let (pruned,): (u64,) = shared.query(pruning(&shared, bucket)).await?;
                    total += pruned;
                    if pruned < 10_000 {
                        return Ok(total);
                    }
                }
            })
        }))?;
        Ok(counts.iter().sum())
    }

    /// Runs `each` on every bucket at once (on a cluster, each on the master of its slot);
    /// fails if one of them does.
    async fn each_bucket<T>(
        &self,
        each: impl Fn(Arc<Shared>, usize) -> BucketRun<T>,
    ) -> Result<Vec<T>, StoreError> {
        let runs = (0..BUCKETS).map(|bucket| each(self.shared.clone(), bucket));
        join_all(runs).await.into_iter().collect()
    }

    /// Hands changes to the writer; they run after every change handed to it before. They go
    /// as jobs of at most one pipeline each, so that each reply comes within a bounded time
    /// however many changes there are (a shutdown may store every held session at once).
    fn submit(&self, ops: Vec<WriteOp>) -> Reply {
        let mut replies = Vec::new();
        for ops in pipeline_sized(ops) {
            let (reply, receiver) = std_mpsc::channel();
            replies.push((receiver, ops.len()));
            // A writer that is gone (the runtime is shutting down) drops the job, and the
            // receiver then reports it as unavailable.
            let reply = ReplyTo::Waiting(reply);
            let _ = self.writer.send(Job { ops, reply });
        }
        Reply(replies)
    }

    /// Hands changes to the writer now; their outcome is waited for with [`Pending::wait`].
    fn pending<T>(
        &self,
        ops: Vec<WriteOp>,
        finish: impl FnOnce(Results) -> Result<T, StoreError> + Send + 'static,
    ) -> Pending<T> {
        Pending {
            reply: self.submit(ops),
            command_timeout: self.shared.settings.command_timeout,
            finish: Box::new(finish),
        }
    }

    /// Runs one change now, in order after those handed over before.
    fn run_now(&self, op: WriteOp) -> Result<WriteResult, StoreError> {
        self.pending(vec![op], only).wait()
    }

    /// Stores JSON from outside before returning, whatever Redis holds, after checking that
    /// [`load`](Self::load) accepts it (`ERR_INVALID_SESSION` otherwise); returns the version
    /// stored (0 if it had expired already).
    pub fn import(&self, id: SessionId, json: String) -> Result<u64, StoreError> {
        self.check_import(&id, &json)?;
        let base = Base::Any;
        match self.run_now(WriteOp::Save { id, json, base })? {
            WriteResult::Saved(version) => Ok(version),
            _ => Ok(0),
        }
    }

    /// What [`import`](Self::import) refuses, checked without storing anything: contents that
    /// `load` would refuse (`ERR_INVALID_SESSION`), or longer than it reads
    /// (`ERR_SESSION_TOO_LARGE`).
    pub fn check_import(&self, id: &SessionId, json: &str) -> Result<(), StoreError> {
        parse_times(json.as_bytes()).map_err(StoreError::InvalidSession)?;
        self.shared.refusal(id, json).map_or(Ok(()), Err)
    }

    /// True when a stored session was deleted (one the flat layout still holds is moved
    /// first, so that its delete is told and announced as any other).
    pub fn remove(&self, id: SessionId) -> Result<bool, StoreError> {
        self.runtime.block_on(move_one(&self.shared, &id))?;
        match self.run_now(WriteOp::Remove { id })? {
            WriteResult::Removed(removed) => Ok(removed),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes a session found corrupt, only if it still holds what was found: `json` (loaded,
    /// then refused by the session class), or else the value the last `load` of it refused.
    pub fn remove_corrupt(&self, id: SessionId, json: Option<String>) -> Result<bool, StoreError> {
        let found = match json {
            // The stored value is the JSON encoded: the one to compare is the value still
            // stored, if it still decodes to that JSON.
            Some(json) => self
                .runtime
                .block_on(stored_value(&self.shared, &id))?
                .map(|(value, _)| value)
                .filter(|value| {
                    let place = self.shared.layout.session(id.as_str());
                    let decoded = self.shared.decode(&id, &place, value.clone());
                    decoded.ok().as_deref() == Some(json.as_str())
                }),
            None => {
                let corrupt = self.corrupt.lock().unwrap_or_else(|p| p.into_inner());
                corrupt
                    .as_ref()
                    .filter(|(of, _)| *of == id)
                    .map(|(_, value)| value.clone())
            }
        };
        let Some(value) = found else {
            return Ok(false);
        };
        let result = self.run_now(WriteOp::RemoveIfUnchanged { id, value })?;
        Ok(result == WriteResult::Removed(true))
    }

    /// Deletes sessions after every change asked for before; the deletions that failed.
    pub fn remove_all(&self, ids: Vec<SessionId>) -> Pending<Vec<(SessionId, StoreError)>> {
        let ops = ids
            .iter()
            .map(|id| WriteOp::Remove { id: id.clone() })
            .collect();
        self.pending(ops, move |results| {
            Ok(ids
                .into_iter()
                .zip(results)
                .filter_map(|(id, result)| Some((id, result.err()?)))
                .collect())
        })
    }

    /// The stored copies newer than the versions given, after every change asked for before:
    /// `done` is called with them on the store's own thread, so that no thread waits for the
    /// reply (a request waits for this before it goes on); with `Unavailable` if they do not
    /// come by the reply deadline, as [`wait_for`] gives up.
    pub fn fetch(
        &self,
        known: Vec<(SessionId, u64)>,
        done: impl FnOnce(Result<Vec<Fetched>, StoreError>) + Send + 'static,
    ) {
        type Done = Box<dyn FnOnce(Result<Vec<Fetched>, StoreError>) + Send>;
        let once: Arc<Mutex<Option<Done>>> = Arc::new(Mutex::new(Some(Box::new(done))));
        let take =
            |once: &Mutex<Option<Done>>| once.lock().unwrap_or_else(|p| p.into_inner()).take();
        let deadline = reply_deadline(self.shared.settings.command_timeout);
        let late = once.clone();
        let timer = self.runtime.spawn(async move {
            tokio::time::sleep(deadline).await;
            if let Some(done) = take(&late) {
                done(Err(StoreError::Unavailable(format!(
                    "no reply within {deadline:?}"
                ))));
            }
        });
        let reply = Called::new(1, move |results| {
            timer.abort();
            if let Some(done) = take(&once) {
                done(match only(results) {
                    Ok(WriteResult::Fetched(newer)) => Ok(newer),
                    Ok(other) => Err(unexpected(other)),
                    Err(e) => Err(e),
                });
            }
        });
        let ops = vec![WriteOp::Fetch { known }];
        // A writer that is gone drops the job, which calls `done` as unavailable.
        let _ = self.writer.send(Job {
            ops,
            reply: ReplyTo::Called(reply),
        });
    }

    /// Refreshes the expiry of sessions in use: the ids whose stored copy is gone (deleted or
    /// expired), or `None`, changing nothing, when the data set is no longer the one of token
    /// `dataset` (lost).
    pub fn refresh(&self, ids: Vec<SessionId>, dataset: String) -> Pending<Option<Vec<String>>> {
        self.pending(
            vec![WriteOp::Refresh { ids, dataset }],
            |results| match only(results)? {
                WriteResult::Gone(ids) => Ok(ids),
                other => Err(unexpected(other)),
            },
        )
    }

    /// Writes the store's expiry policy, if it has one, and reads the data set's token, which
    /// changes when the data set is lost.
    /// The first check that reaches the server starts moving the sessions of the flat layout
    /// in the background (see `migration`); a failed move is tried again at the next check.
    pub fn check(&self, policy: Option<RedisPolicy>) -> Pending<String> {
        if self.shared.flat_left.load(Ordering::SeqCst) && !self.moving.swap(true, Ordering::SeqCst)
        {
            let (shared, moving) = (self.shared.clone(), self.moving.clone());
            self.runtime.spawn(async move {
                let _ = move_all(&shared).await;
                moving.store(false, Ordering::SeqCst);
            });
        }
        self.pending(vec![WriteOp::Check { policy }], |results| {
            match only(results)? {
                WriteResult::Dataset(token) => Ok(token),
                other => Err(unexpected(other)),
            }
        })
    }
}

fn save_of(write: Write) -> WriteOp {
    let Write { id, json, base } = write;
    WriteOp::Save { id, json, base }
}

/// Background writes go to the writer as soon as they are queued, so that they keep their place
/// among every other change; the report waits for their replies.
impl WriteTarget for RedisSessions {
    type Started = Pending<Results>;

    fn start(&self, writes: Vec<(u64, Write)>) -> Pending<Results> {
        let ops = writes
            .into_iter()
            .map(|(_, write)| save_of(write))
            .collect();
        self.pending(ops, Ok)
    }

    fn finish(&self, started: Pending<Results>) -> Vec<Outcome> {
        started
            .wait()
            .unwrap_or_default()
            .into_iter()
            .map(|result| match result {
                Ok(WriteResult::Saved(version)) => Outcome::Written(version),
                Ok(_) => Outcome::Written(0),
                Err(e) => Outcome::Failed(e),
            })
            .collect()
    }

    /// Stores every write before returning (used at shutdown), in order after every change
    /// handed over before; 0 for a write of a session that had expired already.
    fn write_now(&self, writes: Vec<Write>) -> Vec<Result<u64, StoreError>> {
        if writes.is_empty() {
            return Vec::new();
        }
        let ops = writes.into_iter().map(save_of).collect();
        self.pending(ops, Ok)
            .wait()
            .unwrap_or_default()
            .into_iter()
            .map(|result| match result? {
                WriteResult::Saved(version) => Ok(version),
                _ => Ok(0),
            })
            .collect()
    }
}

/// What `load` reads; a session the flat layout still holds is moved first.
async fn read(
    shared: Arc<Shared>,
    corrupt: CorruptSlot,
    id: SessionId,
) -> Result<Option<Loaded>, StoreError> {
    let found = read_bucket(shared.clone(), corrupt.clone(), id.clone()).await?;
    // Read again whether this move or another one (another load, another host) moved it.
    if found.is_none() && move_one(&shared, &id).await? {
        return read_bucket(shared, corrupt, id).await;
    }
    Ok(found)
}

/// The value stored for `id` in its bucket as it is, at most one byte past the longest a store
/// reads (enough to tell one too large, never fetched whole), atomically with its version;
/// `None` when there is none.
async fn stored_value(
    shared: &Shared,
    id: &SessionId,
) -> Result<Option<(Vec<u8>, Option<u64>)>, StoreError> {
    let bucket = shared.layout.bucket_of(id.as_str());
    let key = bucket.session(id.as_str());
    let limit = shared.stored_limit();
    let versions = bucket.versions.clone();
    let field = id.as_str().to_owned();
    let (exists, bytes, version): (bool, Vec<u8>, Option<u64>) = shared
        .connection
        .run(move |mut connection| {
            Box::pin(async move {
                redis::pipe()
                    .atomic()
                    .exists(&key)
                    .getrange(&key, 0, limit as isize)
                    .hget(&versions, &field)
                    .query_async(&mut connection)
                    .await
            })
        })
        .await?;
    Ok(exists.then_some((bytes, version)))
}

/// What `load` reads from the session's bucket (see `stored_value`), decoded. A value found
/// corrupt is kept in `corrupt`, for `remove_corrupt`; one this store cannot decode is not.
async fn read_bucket(
    shared: Arc<Shared>,
    corrupt: CorruptSlot,
    id: SessionId,
) -> Result<Option<Loaded>, StoreError> {
    let key = shared.layout.session(id.as_str());
    let limit = shared.stored_limit();
    let Some((bytes, version)) = stored_value(&shared, &id).await? else {
        return Ok(None);
    };
    if bytes.len() as u64 > limit {
        let strlen_key = key.clone();
        let len = shared
            .connection
            .run(move |mut connection| {
                Box::pin(async move {
                    redis::cmd("STRLEN")
                        .arg(&strlen_key)
                        .query_async(&mut connection)
                        .await
                })
            })
            .await
            .unwrap_or(bytes.len() as u64);
        return Err(StoreError::TooLarge {
            place: key,
            len,
            limit,
        });
    }
    let note_corrupt = |value: Vec<u8>| {
        *corrupt.lock().unwrap_or_else(|p| p.into_inner()) = Some((id.clone(), value));
    };
    // A plain value is its JSON; an encoded one is kept as stored, in case it is corrupt.
    let (encoding, stored_len) = (Encoding::of(&bytes), bytes.len() as u64);
    let encoded = (encoding != Encoding::Plain).then(|| bytes.clone());
    let json_limit = shared.settings.max_session_bytes;
    let decoded = match shared.codec.decode(&id, bytes, json_limit) {
        Ok(decoded) => decoded,
        Err(why) => {
            let e = StoreError::undecoded(key, why, json_limit);
            if let (StoreError::Corrupt { .. }, Some(value)) = (&e, encoded) {
                note_corrupt(value);
            }
            return Err(e);
        }
    };
    let json = session_json(decoded).map_err(|(reason, decoded)| {
        note_corrupt(encoded.unwrap_or(decoded));
        StoreError::Corrupt { place: key, reason }
    })?;
    Ok(Some(Loaded {
        json,
        version: version.unwrap_or(0),
        encoding,
        stored_len,
    }))
}
