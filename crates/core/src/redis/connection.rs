//! The connection to Redis: the `redis` crate's connection manager, which makes the connection
//! again when it drops and subscribes again to what it was subscribed to (RESP3, so that other
//! stores' announcements arrive on the same connection as pushes). Over it, a gate: while the
//! server is known to be unreachable (it failed to answer in time, or the connection is down),
//! every command fails at once with `ERR_REDIS_UNAVAILABLE`, so that no request waits on a dead
//! server again and again, and a probe asks the server every 250 ms until it answers.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, PushInfo, RedisError, RedisResult};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::error::StoreError;

/// How often an unreachable server is asked again.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// A command's future, boxed.
pub type Command<T> = Pin<Box<dyn Future<Output = RedisResult<T>> + Send>>;

/// What the connection hears besides replies: other stores' messages, the confirmations of
/// subscriptions (made again after every new connection), and lost connections.
pub type Pushes = mpsc::UnboundedReceiver<PushInfo>;

pub struct Connection {
    /// None once closed: the manager, and with it the connection, is gone.
    manager: Mutex<Option<ConnectionManager>>,
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
            .set_max_delay(PROBE_INTERVAL)
            .set_push_sender(pushes)
            .set_automatic_resubscription();
        let manager = {
            // The manager finds its runtime from the thread it is made on.
            let _runtime = handle.enter();
            ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
        };
        let connection = Arc::new(Self {
            manager: Mutex::new(Some(manager)),
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

    fn manager(&self) -> Result<ConnectionManager, StoreError> {
        let manager = self.manager.lock().unwrap_or_else(|p| p.into_inner());
        manager
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))
    }

    /// The manager, unless the server is known to be unreachable.
    fn current(&self) -> Result<ConnectionManager, StoreError> {
        let manager = self.manager()?;
        match &*self.unreachable.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(why) => Err(StoreError::Unavailable(why.clone())),
            None => Ok(manager),
        }
    }

    /// Whether the server is reachable, as far as the last command and the probe know.
    pub fn is_available(&self) -> bool {
        self.current().is_ok()
    }

    /// Why the server cannot be reached, while it cannot.
    pub fn unavailable_because(&self) -> Option<String> {
        self.current().err().map(|e| e.to_string())
    }

    /// Connections made so far: a new number means the connection was made again (after one
    /// was lost), as the first command or probe to succeed on it tells.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::SeqCst)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Drops the connection for good; every command fails from now on.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.manager
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// A connection was lost (the manager makes it again when next used).
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
            Ok(Err(e)) => Err(StoreError::Redis(e.to_string())),
            Err(_) => {
                let why = format!("no reply within {:?}", self.command_timeout);
                self.failed(why.clone());
                Err(StoreError::Unavailable(why))
            }
        }
    }

    /// Subscribes to `channel`; the manager subscribes again on every new connection.
    pub async fn subscribe(&self, channel: &str) -> Result<(), String> {
        let mut manager = self.current().map_err(|e| e.to_string())?;
        match tokio::time::timeout(self.connect_timeout, manager.subscribe(channel)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.connect_timeout)),
        }
    }

    /// A server that answers: a stopped server's kernel still accepts connections, and
    /// counting those as up would make every request wait for the timeout again.
    async fn ping(&self) -> Result<(), String> {
        let mut manager = self.manager().map_err(|e| e.to_string())?;
        let ping = redis::cmd("PING");
        match tokio::time::timeout(self.connect_timeout, ping.query_async::<()>(&mut manager)).await
        {
            Ok(Ok(())) => {
                self.answered();
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.connect_timeout)),
        }
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

/// Whether `error` says the server cannot be reached, rather than that it refused a command.
fn is_unreachable(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
}
