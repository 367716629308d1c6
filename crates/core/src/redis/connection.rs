//! One multiplexed connection to Redis, re-established in the background whenever it fails.
//! While the server is known to be unreachable every command fails at once with
//! `ERR_REDIS_UNAVAILABLE`, so that no request waits on a dead server again and again.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, RedisResult};
use tokio::runtime::Handle;

use crate::error::StoreError;

/// How often an unreachable server is tried again.
const RECONNECT_INTERVAL: Duration = Duration::from_millis(250);

/// A command's future, boxed.
pub type Command<T> = Pin<Box<dyn Future<Output = RedisResult<T>> + Send>>;

/// The connection, or why there is none.
pub struct Connection {
    pub(crate) client: Client,
    config: AsyncConnectionConfig,
    connect_timeout: Duration,
    command_timeout: Duration,
    handle: Handle,
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    last_error: Mutex<String>,
    reconnecting: AtomicBool,
    /// Set by `close`: no connection is made any more.
    closed: AtomicBool,
    /// Connections made so far; each one numbers the connection it made.
    connects: AtomicU64,
}

impl Connection {
    /// Connects, waiting at most `connect_timeout`; a server that cannot be reached now is
    /// connected to in the background.
    pub fn open(
        client: Client,
        connect_timeout: Duration,
        command_timeout: Duration,
        handle: Handle,
    ) -> Arc<Self> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(command_timeout));
        let connection = Arc::new(Self {
            client,
            config,
            connect_timeout,
            command_timeout,
            handle: handle.clone(),
            current: Mutex::new(None),
            last_error: Mutex::new("not connected yet".into()),
            reconnecting: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            connects: AtomicU64::new(0),
        });
        // Off the runtime's threads: this is called from the JavaScript thread.
        match handle.block_on(connection.connect()) {
            Ok(made) => connection.connected(made),
            Err(why) => {
                *connection
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = why;
                connection.reconnect_in_background();
            }
        }
        connection
    }

    fn current(&self) -> Result<(u64, MultiplexedConnection), StoreError> {
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

    /// Whether the server is reachable, as far as the last command and reconnection know.
    pub fn is_available(&self) -> bool {
        self.current().is_ok()
    }

    /// Why the server cannot be reached, while it cannot.
    pub fn unavailable_because(&self) -> Option<String> {
        self.current().err().map(|e| e.to_string())
    }

    /// Connections made so far: a new number means the connection was made again.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::SeqCst)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Drops the connection and stops reconnecting; every command fails from now on.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = "the store is closed".into();
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Runs `command` on the connection within the command timeout; a failure to reach the
    /// server marks the connection failed.
    pub async fn run<T>(
        self: &Arc<Self>,
        command: impl FnOnce(MultiplexedConnection) -> Command<T>,
    ) -> Result<T, StoreError> {
        let (number, connection) = self.current()?;
        match tokio::time::timeout(self.command_timeout, command(connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if is_unreachable(&e) => {
                self.failed(number, e.to_string());
                Err(StoreError::Unavailable(e.to_string()))
            }
            Ok(Err(e)) => Err(StoreError::Redis(e.to_string())),
            Err(_) => {
                let why = format!("no reply within {:?}", self.command_timeout);
                self.failed(number, why.clone());
                Err(StoreError::Unavailable(why))
            }
        }
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
        if self.is_closed() {
            return;
        }
        let number = self.connects.fetch_add(1, Ordering::SeqCst) + 1;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((number, connection));
    }

    /// Connection `number` failed: it is dropped (unless already replaced) and a new one sought.
    fn failed(self: &Arc<Self>, number: u64, why: String) {
        {
            let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
            if !matches!(&*current, Some((n, _)) if *n == number) {
                return;
            }
            *current = None;
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = why;
        }
        self.reconnect_in_background();
    }

    fn reconnect_in_background(self: &Arc<Self>) {
        if self.reconnecting.swap(true, Ordering::SeqCst) {
            return;
        }
        let connection = self.clone();
        self.handle.spawn(async move {
            loop {
                tokio::time::sleep(RECONNECT_INTERVAL).await;
                if connection.is_closed() {
                    return;
                }
                match connection.connect().await {
                    Ok(made) => {
                        connection.connected(made);
                        connection.reconnecting.store(false, Ordering::SeqCst);
                        return;
                    }
                    Err(why) => {
                        *connection
                            .last_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner()) = why;
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
