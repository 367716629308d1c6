//! What a store of sessions on Redis is told at construction: where the server is, how long
//! its commands may take, and the store's own limits.

use std::time::Duration;

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
    /// Accept whatever certificate a `rediss://` server shows: for a service whose certificate
    /// is self-signed and whose authority is not given (Heroku's). The connection is still
    /// encrypted, but anyone who can intercept it can read and change what it carries.
    pub tls_insecure: bool,
}
