//! The connection to Redis: two of the `redis` crate's connection managers, which make their
//! connection again when it drops. One runs commands; the other only hears other stores'
//! announcements (RESP3 pushes): a subscribed connection falls under Redis's `pubsub` output
//! buffer limits, which a large reply on it would exceed, dropping it. Over them, a gate: while
//! the server is known to be unreachable (it failed to answer in time, or the connection is
//! down), every command fails at once with `ERR_REDIS_UNAVAILABLE`, so that no request waits on
//! a dead server again and again, and a probe asks the server every 250 ms until it answers.
//! TCP keepalive and a TCP user timeout end a connection whose peer vanished without a word
//! (a network path gone, a host that lost power), which would otherwise stay open for minutes.
//! A server the store cannot use (a cluster node, a Sentinel, a replica) closes the gate too,
//! with why, whether found when the connection is made or from a reply such as `READONLY`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::{socket2::TcpKeepalive, TcpSettings};
use redis::{Client, ErrorKind, PushInfo, RedisError, RedisResult, ServerErrorKind};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::error::StoreError;

/// How often an unreachable server is asked again.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// An idle connection is probed after this long, then every KEEPALIVE_INTERVAL, and dropped
/// after KEEPALIVE_PROBES unanswered probes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
const KEEPALIVE_PROBES: u32 = 3;
/// A connection whose sent data the peer has not acknowledged for this long is dropped. A
/// stopped server's kernel still acknowledges, so this never ends a connection to a slow
/// server, only to one that is gone.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// The TCP settings of both connections: see the module's comment.
pub fn tcp_settings() -> TcpSettings {
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    let settings = TcpSettings::default().set_keepalive(keepalive);
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    let settings = settings.set_user_timeout(TCP_USER_TIMEOUT);
    settings
}

/// A command's future, boxed.
pub type Command<T> = Pin<Box<dyn Future<Output = RedisResult<T>> + Send>>;

/// What the subscribing connection hears: other stores' messages, the confirmations of
/// subscriptions, and lost connections (after which the listener subscribes again).
pub type Pushes = mpsc::UnboundedReceiver<PushInfo>;

/// The two managers (see the module's comment).
struct Managers {
    commands: ConnectionManager,
    subscriber: ConnectionManager,
}

pub struct Connection {
    /// None once closed: the managers, and with them the connections, are gone.
    managers: Mutex<Option<Managers>>,
    connect_timeout: Duration,
    command_timeout: Duration,
    handle: Handle,
    /// Why the server cannot be reached, while it cannot.
    unreachable: Mutex<Option<String>>,
    probing: AtomicBool,
    closed: AtomicBool,
    /// Connections made so far (see `connects`).
    connects: AtomicU64,
    /// A connection was lost since the last command that succeeded.
    lost: AtomicBool,
}

impl Connection {
    /// Connects, waiting at most `connect_timeout`; a server that cannot be reached now is
    /// connected to in the background. Returns the connection and what it hears.
    pub fn open(
        client: Client,
        connect_timeout: Duration,
        command_timeout: Duration,
        handle: Handle,
    ) -> Result<(Arc<Self>, Pushes), StoreError> {
        let (pushes, heard) = mpsc::unbounded_channel();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(command_timeout))
            .set_number_of_retries(1)
            .set_min_delay(PROBE_INTERVAL)
            .set_max_delay(PROBE_INTERVAL);
        let managers = {
            // A manager finds its runtime from the thread it is made on.
            let _runtime = handle.enter();
            let invalid = |e: RedisError| StoreError::InvalidUrl(e.to_string());
            Managers {
                commands: ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                    .map_err(invalid)?,
                subscriber: ConnectionManager::new_lazy_with_config(
                    client,
                    config.set_push_sender(pushes),
                )
                .map_err(invalid)?,
            }
        };
        let connection = Arc::new(Self {
            managers: Mutex::new(Some(managers)),
            connect_timeout,
            command_timeout,
            handle: handle.clone(),
            unreachable: Mutex::new(None),
            probing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            lost: AtomicBool::new(true),
        });
        // Called from the JavaScript thread, off the runtime's threads.
        if let Err(why) = handle.block_on(connection.ping()) {
            connection.failed(why);
        }
        Ok((connection, heard))
    }

    /// The manager `pick` names, unless the store is closed.
    fn manager(
        &self,
        pick: fn(&Managers) -> &ConnectionManager,
    ) -> Result<ConnectionManager, StoreError> {
        let managers = self.managers.lock().unwrap_or_else(|p| p.into_inner());
        managers
            .as_ref()
            .map(|managers| pick(managers).clone())
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))
    }

    /// Closed when the store is, or while the server is known to be unreachable.
    fn gate(&self) -> Result<(), StoreError> {
        if self.is_closed() {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        match &*self.unreachable.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(why) => Err(StoreError::Unavailable(why.clone())),
            None => Ok(()),
        }
    }

    /// The commands' manager, unless the gate is closed.
    fn current(&self) -> Result<ConnectionManager, StoreError> {
        self.gate()?;
        self.manager(|m| &m.commands)
    }

    /// Whether the server is reachable, as far as the last command and the probe know.
    pub fn is_available(&self) -> bool {
        self.gate().is_ok()
    }

    /// Why the server cannot be reached, while it cannot.
    pub fn unavailable_because(&self) -> Option<String> {
        self.gate().err().map(|e| e.to_string())
    }

    /// Connections made so far: a new number means the connection was made again (after one
    /// was lost), as the first command or probe to succeed on it tells.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::SeqCst)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Drops the connections for good; every command fails from now on.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.managers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// A connection was lost (its manager is making it again).
    pub fn lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Runs `command` on the connection within the command timeout; a failure to reach the
    /// server closes the gate until the probe gets an answer.
    pub async fn run<T>(
        self: &Arc<Self>,
        command: impl FnOnce(ConnectionManager) -> Command<T>,
    ) -> Result<T, StoreError> {
        let manager = self.current()?;
        match tokio::time::timeout(self.command_timeout, command(manager)).await {
            Ok(Ok(value)) => {
                self.answered();
                Ok(value)
            }
            Ok(Err(e)) if is_unreachable(&e) => {
                self.failed(e.to_string());
                Err(StoreError::Unavailable(e.to_string()))
            }
            Ok(Err(e)) if misdirected(&e).is_some() => Err(self.unusable(&e)),
            Ok(Err(e)) => Err(StoreError::Redis(e.to_string())),
            Err(_) => {
                let why = format!("no reply within {:?}", self.command_timeout);
                self.failed(why.clone());
                Err(StoreError::Unavailable(why))
            }
        }
    }

    /// Subscribes to `channel` on the subscribing connection, for as long as it lasts.
    pub async fn subscribe(&self, channel: &str) -> Result<(), String> {
        let mut subscriber = self.manager(|m| &m.subscriber).map_err(|e| e.to_string())?;
        match tokio::time::timeout(self.connect_timeout, subscriber.subscribe(channel)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.connect_timeout)),
        }
    }

    /// A server that answers and that the store can use: a stopped server's kernel still
    /// accepts connections, and counting those as up would make every request wait for the
    /// timeout again.
    async fn ping(&self) -> Result<(), String> {
        let manager = self.manager(|m| &m.commands).map_err(|e| e.to_string())?;
        let ask = |name| {
            let command = redis::cmd(name);
            let mut manager = manager.clone();
            async move {
                match tokio::time::timeout(self.connect_timeout, async {
                    command.query_async::<String>(&mut manager).await
                })
                .await
                {
                    Ok(answer) => answer.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("no answer within {:?}", self.connect_timeout)),
                }
            }
        };
        ask("PING").await?;
        // A user whose ACL forbids INFO: the store cannot tell, and goes on.
        if let Ok(info) = ask("INFO").await {
            if let Some(why) = unusable_server(&info) {
                return Err(why);
            }
        }
        self.answered();
        Ok(())
    }

    /// A reply says this server is not one the store can use: the gate closes, as for a server
    /// that cannot be reached, until the probe finds one it can use at the URL.
    pub fn unusable(self: &Arc<Self>, error: &RedisError) -> StoreError {
        let why = misdirected(error).unwrap_or_else(|| error.to_string());
        self.failed(why.clone());
        StoreError::Unavailable(why)
    }

    fn answered(&self) {
        if self.lost.swap(false, Ordering::SeqCst) && !self.is_closed() {
            self.connects.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The server could not be reached: the gate closes, and the probe starts unless it runs.
    fn failed(self: &Arc<Self>, why: String) {
        {
            let mut unreachable = self.unreachable.lock().unwrap_or_else(|p| p.into_inner());
            *unreachable = Some(why);
            if self.probing.swap(true, Ordering::SeqCst) {
                return;
            }
        }
        let connection = self.clone();
        self.handle.spawn(async move { connection.probe().await });
    }

    /// Asks the server every PROBE_INTERVAL until it answers, then opens the gate.
    async fn probe(&self) {
        loop {
            tokio::time::sleep(PROBE_INTERVAL).await;
            if self.is_closed() {
                return;
            }
            let answer = self.ping().await;
            // Under the lock, so that a failure meanwhile either sees the probe still running
            // or starts the next one.
            let mut unreachable = self.unreachable.lock().unwrap_or_else(|p| p.into_inner());
            match answer {
                Ok(()) => {
                    *unreachable = None;
                    self.probing.store(false, Ordering::SeqCst);
                    return;
                }
                Err(why) => *unreachable = Some(why),
            }
        }
    }
}

/// Why the server whose `INFO` this is cannot hold the store's sessions, if it cannot: every
/// key of a script must be on one server that takes writes.
fn unusable_server(info: &str) -> Option<String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    match field("redis_mode") {
        Some("cluster") => {
            return Some(
                "the server is a Redis Cluster node (redis_mode:cluster); the store needs a \
                 standalone server"
                    .into(),
            )
        }
        Some("sentinel") => {
            return Some(
                "the server is a Sentinel (redis_mode:sentinel), which holds no data; give the \
                 URL of the master it watches"
                    .into(),
            )
        }
        _ => {}
    }
    (field("role") == Some("slave")).then(|| {
        "the server is a replica (role:slave), which refuses writes; give the URL of its master"
            .into()
    })
}

/// Why a reply says the server is not one the store can use (a replica, a cluster node), if
/// it says so.
pub fn misdirected(error: &RedisError) -> Option<String> {
    let ErrorKind::Server(kind) = error.kind() else {
        return None;
    };
    let why = match kind {
        ServerErrorKind::ReadOnly => "the server refuses writes (READONLY): it is a replica now",
        ServerErrorKind::CrossSlot
        | ServerErrorKind::Moved
        | ServerErrorKind::Ask
        | ServerErrorKind::ClusterDown
        | ServerErrorKind::MasterDown => {
            "the server answers as a Redis Cluster node; the store needs a standalone server"
        }
        _ => return None,
    };
    Some(format!("{why} ({error})"))
}

/// Whether `error` says the server cannot be reached, rather than that it refused a command.
fn is_unreachable(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
}
