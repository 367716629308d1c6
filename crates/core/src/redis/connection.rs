//! The connection to Redis: two links (see `topology`), made again when they drop. One runs
//! commands; the other only hears other stores' announcements (RESP3 pushes): a subscribed
//! connection falls under Redis's `pubsub` output buffer limits, which a large reply on it
//! would exceed, dropping it. Over them, a gate: while the sessions are known to be unreachable
//! (the server failed to answer in time, the connection is down, a cluster is down), every
//! command fails at once with `ERR_REDIS_UNAVAILABLE`, so that no request waits on a dead
//! server again and again, and a probe asks every 250 ms until it gets an answer. Behind
//! Sentinels, the probe first asks them which server is the master, and moves both links to it
//! when it changed: the master was lost, or answered `READONLY` (demoted by a failover).
//! TCP keepalive and a TCP user timeout end a connection whose peer vanished without a word
//! (a network path gone, a host that lost power), which would otherwise stay open for minutes.
//! A server the store cannot use behind its URL (a cluster node behind `redis://`, a Sentinel,
//! a replica) closes the gate too, with why, whether found when the connection is made or from
//! a reply such as `READONLY`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use redis::cluster::ClusterClient;
use redis::io::tcp::{socket2::TcpKeepalive, TcpSettings};
use redis::{Client, ErrorKind, PushInfo, PushKind, RedisError, RedisResult, ServerErrorKind};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::error::StoreError;
use crate::redis::topology::{cluster_link, server_link, Link, LinkConfig, PushSender, Topology};

/// How often an unreachable server is asked again.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// After this many probes in a row that failed, a cluster's links are made anew.
const CLUSTER_REMADE_AFTER: u32 = 4;
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

/// The two links (see the module's comment).
#[derive(Clone)]
struct Links {
    commands: Link,
    subscriber: Link,
    /// Behind Sentinels, the address of the master they lead to.
    master: Option<String>,
}

impl Links {
    /// Both links to one server (behind Sentinels, the master at `master`). Made on a thread
    /// that has entered the store's runtime.
    fn to_server(
        client: &Client,
        config: &LinkConfig,
        pushes: &PushSender,
        master: Option<String>,
    ) -> Result<Self, StoreError> {
        Ok(Links {
            commands: server_link(client.clone(), config, None)?,
            subscriber: server_link(client.clone(), config, Some(pushes.clone()))?,
            master,
        })
    }

    /// Both links to a cluster, started again from its seeds.
    fn to_cluster(client: &ClusterClient, config: &LinkConfig, pushes: &PushSender) -> Self {
        Links {
            commands: cluster_link(client, config, None),
            subscriber: cluster_link(client, config, Some(pushes.clone())),
            master: None,
        }
    }
}

pub struct Connection {
    topology: Topology,
    /// On a cluster, one key in each bucket: the probe asks for each (see `reach`).
    probe_keys: Vec<String>,
    /// None before a master is known (behind Sentinels), and once closed.
    links: Mutex<Option<Links>>,
    /// Where the subscribing link sends what it hears.
    pushes: PushSender,
    config: LinkConfig,
    handle: Handle,
    /// Why the server cannot be reached, while it cannot.
    unreachable: Mutex<Option<String>>,
    probing: AtomicBool,
    closed: AtomicBool,
    /// Connections made so far (see `connects`).
    connects: AtomicU64,
    /// A connection was lost since the last command that succeeded.
    lost: AtomicBool,
    /// Raised each time the links are replaced (see `subscribe`).
    generation: AtomicU64,
}

impl Connection {
    /// Connects, waiting at most `connect_timeout`; sessions that cannot be reached now are
    /// connected to in the background. Returns the connection and what it hears.
    pub fn open(
        topology: Topology,
        probe_keys: Vec<String>,
        connect_timeout: Duration,
        command_timeout: Duration,
        handle: Handle,
    ) -> Result<(Arc<Self>, Pushes), StoreError> {
        let (pushes, heard) = mpsc::unbounded_channel();
        let config = LinkConfig {
            connect_timeout,
            command_timeout,
            retry_delay: PROBE_INTERVAL,
        };
        let links = {
            // A link finds its runtime from the thread it is made on.
            let _runtime = handle.enter();
            match &topology {
                Topology::Server(client) => Some(Links::to_server(client, &config, &pushes, None)?),
                Topology::Cluster(cluster) => {
                    Some(Links::to_cluster(&cluster.client, &config, &pushes))
                }
                // The master is asked for before the first command.
                Topology::Sentinel(_) => None,
            }
        };
        let connection = Arc::new(Self {
            topology,
            probe_keys,
            links: Mutex::new(links),
            pushes,
            config,
            handle: handle.clone(),
            unreachable: Mutex::new(None),
            probing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            lost: AtomicBool::new(true),
            generation: AtomicU64::new(0),
        });
        // Called from the JavaScript thread, off the runtime's threads.
        if let Err(why) = handle.block_on(connection.reach()) {
            connection.failed(why);
        }
        Ok((connection, heard))
    }

    /// The link `pick` names, unless the store is closed or no master is known yet.
    fn link(&self, pick: fn(&Links) -> &Link) -> Result<Link, StoreError> {
        if self.is_closed() {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links
            .as_ref()
            .map(|links| pick(links).clone())
            .ok_or_else(|| StoreError::Unavailable("no master is known yet".into()))
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

    /// The commands' link, unless the gate is closed.
    fn current(&self) -> Result<Link, StoreError> {
        self.gate()?;
        self.link(|l| &l.commands)
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
        self.links.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// A connection was lost (its link is making it again).
    pub fn lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Runs `command` on the connection within the command timeout; a failure to reach the
    /// server closes the gate until the probe gets an answer.
    pub async fn run<T>(
        self: &Arc<Self>,
        command: impl FnOnce(Link) -> Command<T>,
    ) -> Result<T, StoreError> {
        let link = self.current()?;
        match tokio::time::timeout(self.config.command_timeout, command(link)).await {
            Ok(Ok(value)) => {
                self.answered();
                Ok(value)
            }
            Ok(Err(e)) if is_unreachable(&e) => {
                self.failed(e.to_string());
                Err(StoreError::Unavailable(e.to_string()))
            }
            Ok(Err(e)) => Err(self.refused(&e)),
            Err(_) => {
                let why = format!("no reply within {:?}", self.config.command_timeout);
                self.failed(why.clone());
                Err(StoreError::Unavailable(why))
            }
        }
    }

    /// Subscribes to `channel` on the subscribing link, for as long as it lasts. A link
    /// replaced meanwhile (its replacement's loss was heard before this subscription) counts as
    /// a failure, so that the caller subscribes again on the present one.
    pub async fn subscribe(&self, channel: &str) -> Result<(), String> {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut subscriber = self.link(|l| &l.subscriber).map_err(|e| e.to_string())?;
        let timeout = self.config.connect_timeout;
        match tokio::time::timeout(timeout, subscriber.subscribe(channel)).await {
            Ok(Ok(())) if self.generation.load(Ordering::SeqCst) != generation => {
                Err("the connection was replaced meanwhile".into())
            }
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }

    /// Sessions the store can reach and use: behind Sentinels, on the master they name now; a
    /// cluster that serves every bucket; a server that answers and can take writes (a
    /// stopped server's kernel still accepts connections, and counting those as up would make
    /// every request wait for the timeout again).
    async fn reach(&self) -> Result<(), String> {
        if let Topology::Sentinel(_) = &self.topology {
            self.follow_master().await?;
        }
        let link = self.link(|l| &l.commands).map_err(|e| e.to_string())?;
        let ask = |name: &'static str, arg: Option<&'static str>| {
            let mut command = redis::cmd(name);
            if let Some(arg) = arg {
                command.arg(arg);
            }
            let mut link = link.clone();
            let timeout = self.config.connect_timeout;
            async move {
                match tokio::time::timeout(timeout, command.query_async::<String>(&mut link)).await
                {
                    Ok(answer) => answer.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("no answer within {timeout:?}")),
                }
            }
        };
        if let Topology::Cluster(cluster) = &self.topology {
            // What the store needs of a cluster: every bucket's slot served by a master that
            // answers (the cluster client follows moved slots and a promoted replica).
            let timeout = self.config.connect_timeout;
            let asks =
                self.probe_keys.iter().map(|key| {
                    let mut command = redis::cmd("EXISTS");
                    command.arg(key);
                    let mut link = link.clone();
                    async move {
                        tokio::time::timeout(timeout, command.query_async::<i64>(&mut link)).await
                    }
                });
            for answer in join_all(asks).await {
                match answer {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(cluster.explain(e.to_string(), timeout).await),
                    Err(_) => return Err(format!("no answer within {timeout:?}")),
                }
            }
            self.answered();
            return Ok(());
        }
        ask("PING", None).await?;
        // A user whose ACL forbids INFO: the store cannot tell, and goes on.
        if let Ok(info) = ask("INFO", None).await {
            if let Some(why) = unusable_server(&info) {
                return Err(why);
            }
        }
        self.answered();
        Ok(())
    }

    /// Asks the sentinels for the master, and moves both links to it if it is another server
    /// than theirs. Whoever listens hears of it as of a lost connection, and subscribes again.
    async fn follow_master(&self) -> Result<(), String> {
        let Topology::Sentinel(sentinels) = &self.topology else {
            return Ok(());
        };
        let timeout = self.config.connect_timeout;
        let (client, address) = tokio::time::timeout(timeout, sentinels.master())
            .await
            .map_err(|_| format!("no sentinel answered within {timeout:?}"))??;
        let known = self.links.lock().unwrap_or_else(|p| p.into_inner());
        if known.as_ref().and_then(|l| l.master.as_deref()) == Some(address.as_str()) {
            return Ok(());
        }
        drop(known);
        let _runtime = self.handle.enter();
        let links = Links::to_server(&client, &self.config, &self.pushes, Some(address));
        self.replace_links(links.map_err(|e| e.to_string())?);
        Ok(())
    }

    /// Puts `links` in place of the present ones (unless the store is closed). Whoever listens
    /// hears of it as of a lost connection, and subscribes again on the new link.
    fn replace_links(&self, links: Links) {
        let mut present = self.links.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_closed() {
            return;
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        if present.replace(links).is_some() {
            let _ = self.pushes.send(PushInfo {
                kind: PushKind::Disconnection,
                data: Vec::new(),
            });
        }
    }

    /// What a command's error reply means: a server that is not one the store can use closes
    /// the gate (see `unusable`); any other is the command's own failure.
    pub fn refused(self: &Arc<Self>, error: &RedisError) -> StoreError {
        match misdirected(error) {
            Some(_) => self.unusable(error),
            None => StoreError::Redis(error.to_string()),
        }
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

    /// Asks every PROBE_INTERVAL until the sessions can be reached, then opens the gate.
    async fn probe(&self) {
        for round in 1.. {
            tokio::time::sleep(PROBE_INTERVAL).await;
            if self.is_closed() {
                return;
            }
            // A cluster client can stay stuck on a topology that no longer is (a failover under
            // load): after a while, a new one starts again from the seeds.
            if round % CLUSTER_REMADE_AFTER == 0 {
                if let Topology::Cluster(cluster) = &self.topology {
                    let _runtime = self.handle.enter();
                    let links = Links::to_cluster(&cluster.client, &self.config, &self.pushes);
                    self.replace_links(links);
                }
            }
            let answer = self.reach().await;
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
                "the server is a Redis Cluster node (redis_mode:cluster); give the cluster's \
                 nodes as redis+cluster://host:port,host:port"
                    .into(),
            )
        }
        Some("sentinel") => {
            return Some(
                "the server is a Sentinel (redis_mode:sentinel), which holds no data; give \
                 redis+sentinel://host:port/<masterName>"
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
            "the server answers as a Redis Cluster node, or its cluster is down"
        }
        _ => return None,
    };
    Some(format!("{why} ({error})"))
}

/// Whether `error` says the server cannot be reached, rather than that it refused a command.
fn is_unreachable(error: &RedisError) -> bool {
    // A cluster client that has no connection to the node of a slot.
    error.kind() == ErrorKind::ClusterConnectionNotFound
        || error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
}
