//! Where the sessions are, as the URL says, and how to reach them: one server (`redis://`,
//! `rediss://`), a Redis Cluster from its seed nodes (`redis+cluster://`, `rediss+cluster://`)
//! or the master a group of Sentinels names (`redis+sentinel://`, `rediss+sentinel://`); and
//! `Link`, one connection to either, on which commands run.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{
    Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, ProtocolVersion,
    RedisError, RedisFuture, RedisResult, TlsCertificates, TlsMode, Value,
};

use crate::error::StoreError;
use crate::redis::connection::tcp_settings;
use crate::redis::settings::RedisSettings;

/// One connection on which commands run: to one server (remade when it drops), or to every
/// node of a cluster (commands go to the master of their keys' slot, and follow the cluster
/// when its slots move).
#[derive(Clone)]
pub enum Link {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Server(link) => link.req_packed_command(cmd),
            Link::Cluster(link) => link.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Server(link) => link.req_packed_commands(pipeline, offset, count),
            Link::Cluster(link) => link.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Server(link) => link.get_db(),
            Link::Cluster(link) => link.get_db(),
        }
    }
}

impl Link {
    pub async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Link::Server(link) => link.subscribe(channel).await,
            Link::Cluster(link) => link.subscribe(channel).await,
        }
    }
}

/// Where a subscribing link sends what it hears.
pub type PushSender = tokio::sync::mpsc::UnboundedSender<redis::PushInfo>;

/// The connection's timeouts, for making links.
#[derive(Clone)]
pub struct LinkConfig {
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// How long a lost server connection waits before it is made again.
    pub retry_delay: Duration,
}

/// The sentinels to ask, and how to reach the master they name.
pub struct Sentinels {
    pub lookup: tokio::sync::Mutex<Sentinel>,
    pub master_name: String,
    node: SentinelNodeConnectionInfo,
}

/// A cluster's client, and a client for each seed node, to say why none can be reached: the
/// cluster client only says that it found no connection.
pub struct Cluster {
    pub client: ClusterClient,
    seeds: Vec<Client>,
}

impl Cluster {
    /// `why` the cluster cannot be reached, with what the first seed that refuses a connection
    /// says (a certificate, a password, nothing listening), if one does.
    pub async fn explain(&self, why: String, timeout: Duration) -> String {
        for seed in &self.seeds {
            let address = seed.get_connection_info().addr().to_string();
            match tokio::time::timeout(timeout, seed.get_multiplexed_async_connection()).await {
                Ok(Err(e)) => return format!("{why}; {address}: {e}"),
                Err(_) => return format!("{why}; {address}: no answer within {timeout:?}"),
                Ok(Ok(_)) => {}
            }
        }
        why
    }
}

/// Where the sessions are.
pub enum Topology {
    Server(Client),
    Cluster(Cluster),
    Sentinel(Sentinels),
}

impl Topology {
    /// Reads the settings' URL (see the module's comment). A URL that cannot be read, or whose
    /// certificate settings contradict each other, is `ERR_INVALID_REDIS_URL`.
    pub fn of(settings: &RedisSettings) -> Result<Self, StoreError> {
        let url = settings.url.as_str();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("a Redis URL starts with redis://, rediss://, redis+cluster:// or redis+sentinel://"))?;
        let (tls, kind) = match scheme.to_ascii_lowercase().as_str() {
            "redis" => (false, None),
            "rediss" => (true, None),
            "redis+cluster" => (false, Some(Kind::Cluster)),
            "rediss+cluster" => (true, Some(Kind::Cluster)),
            "redis+sentinel" => (false, Some(Kind::Sentinel)),
            "rediss+sentinel" => (true, Some(Kind::Sentinel)),
            // Any other (`unix://`, `redis+unix://`) is the redis crate's to read.
            _ => (false, None),
        };
        let Some(kind) = kind else {
            let info = server_info(url, settings)?;
            return client_for(info, settings).map(Topology::Server);
        };
        let parts = Parts::read(rest)?;
        let node_scheme = if tls { "rediss" } else { "redis" };
        match kind {
            Kind::Cluster => {
                if !parts.path.is_empty() {
                    return Err(invalid("a Redis Cluster has only database 0: give no /db"));
                }
                let nodes = parts
                    .hosts
                    .iter()
                    .map(|host| {
                        server_info(
                            &format!("{node_scheme}://{}{host}{}", parts.credentials, parts.tail),
                            settings,
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let seeds = nodes
                    .iter()
                    .map(|node| client_for(node.clone(), settings))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut builder = ClusterClientBuilder::new(nodes)
                    .use_protocol(ProtocolVersion::RESP3)
                    .tcp_settings(tcp_settings())
                    .connection_timeout(settings.connect_timeout)
                    .response_timeout(settings.command_timeout)
                    // The store gives up on a command after its own timeout; a few quick tries
                    // let the cluster client follow a failover or a moved slot within it.
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(100);
                if tls && settings.tls_insecure {
                    builder = builder.tls(TlsMode::Insecure);
                }
                if let Some(pem) = &settings.tls_ca {
                    builder = builder.certs(certificates(pem));
                }
                let client = builder.build().map_err(|e| invalid(&e.to_string()))?;
                Ok(Topology::Cluster(Cluster { client, seeds }))
            }
            Kind::Sentinel => {
                // The redis crate's sentinel lookup checks certificates against the public
                // roots only, so a private authority cannot be honoured there.
                if settings.tls_ca.is_some() {
                    return Err(invalid(
                        "tlsCa is not supported behind Sentinels: their certificates must be \
                         signed by a public authority (or use tlsInsecure)",
                    ));
                }
                let mut path = parts.path.split('/').filter(|s| !s.is_empty());
                let master_name = path
                    .next()
                    .ok_or_else(|| {
                        invalid(
                            "give the name of the master: redis+sentinel://host:port/<masterName>",
                        )
                    })?
                    .to_owned();
                // The credentials and database are the data servers'; sentinels are asked
                // without, as they usually run.
                let db_path = path.next().map(|db| format!("/{db}")).unwrap_or_default();
                if path.next().is_some() {
                    return Err(invalid("a Sentinel URL ends with /<masterName>[/<db>]"));
                }
                let master = server_info(
                    &format!(
                        "{node_scheme}://{}{}{db_path}{}",
                        parts.credentials, parts.hosts[0], parts.tail
                    ),
                    settings,
                )?;
                let sentinels = parts
                    .hosts
                    .iter()
                    .map(|host| server_info(&format!("{node_scheme}://{host}"), settings))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut node = SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(master.redis_settings().clone())
                    .set_tcp_settings(tcp_settings());
                if tls {
                    let mode = match settings.tls_insecure {
                        true => TlsMode::Insecure,
                        false => TlsMode::Secure,
                    };
                    node = node.set_tls_mode(mode);
                }
                let lookup = Sentinel::build(sentinels).map_err(|e| invalid(&e.to_string()))?;
                Ok(Topology::Sentinel(Sentinels {
                    lookup: tokio::sync::Mutex::new(lookup),
                    master_name,
                    node,
                }))
            }
        }
    }
}

/// A cluster link: every node, connected in the background.
pub fn cluster_link(
    client: &ClusterClient,
    config: &LinkConfig,
    pushes: Option<PushSender>,
) -> Link {
    let mut cluster = ClusterConfig::new()
        .set_connection_timeout(config.connect_timeout)
        .set_response_timeout(config.command_timeout);
    if let Some(pushes) = pushes {
        cluster = cluster.set_push_sender(pushes);
    }
    Link::Cluster(client.get_pending_async_connection_with_config(cluster))
}

/// A server link, made again in the background whenever it drops.
pub fn server_link(
    client: Client,
    config: &LinkConfig,
    pushes: Option<PushSender>,
) -> Result<Link, StoreError> {
    let mut manager = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.command_timeout))
        .set_number_of_retries(1)
        .set_min_delay(config.retry_delay)
        .set_max_delay(config.retry_delay);
    if let Some(pushes) = pushes {
        manager = manager.set_push_sender(pushes);
    }
    ConnectionManager::new_lazy_with_config(client, manager)
        .map(Link::Server)
        .map_err(|e| invalid(&e.to_string()))
}

impl Sentinels {
    /// Asks the sentinels which server is the master now (and that it says so itself); a
    /// client for it, and its address.
    pub async fn master(&self) -> Result<(Client, String), String> {
        let mut lookup = self.lookup.lock().await;
        let found = lookup
            .async_master_for(&self.master_name, Some(&self.node))
            .await
            .map_err(|e| format!("the sentinels name no master {}: {e}", self.master_name))?;
        let info = found.get_connection_info().clone();
        let address = info.addr().to_string();
        let info = for_data(info);
        let client = Client::open(info).map_err(|e| e.to_string())?;
        Ok((client, address))
    }
}

/// What every data connection is given: RESP3 (other stores' announcements arrive as pushes)
/// and the TCP settings of `connection`.
fn for_data(info: ConnectionInfo) -> ConnectionInfo {
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    info.set_redis_settings(resp3)
        .set_tcp_settings(tcp_settings())
}

enum Kind {
    Cluster,
    Sentinel,
}

/// A URL of several hosts, after its scheme: `[credentials@]host:port[,host:port...][/path]
/// [?query]`.
struct Parts {
    /// `user:password@`, or empty.
    credentials: String,
    hosts: Vec<String>,
    path: String,
    /// `?query`, kept for each server's URL.
    tail: String,
}

impl Parts {
    fn read(rest: &str) -> Result<Self, StoreError> {
        if rest.contains('#') {
            return Err(invalid(
                "certificate checks are turned off by the store's tlsInsecure option, not in the URL",
            ));
        }
        let (rest, tail) = match rest.find('?') {
            Some(at) => (&rest[..at], rest[at..].to_owned()),
            None => (rest, String::new()),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], rest[at..].to_owned()),
            None => (rest, String::new()),
        };
        let (credentials, hosts) = match authority.rfind('@') {
            Some(at) => (authority[..=at].to_owned(), &authority[at + 1..]),
            None => (String::new(), authority),
        };
        let hosts: Vec<String> = hosts.split(',').map(str::to_owned).collect();
        if hosts.iter().any(String::is_empty) {
            return Err(invalid("give each host as host:port, separated by commas"));
        }
        Ok(Self {
            credentials,
            hosts,
            path,
            tail,
        })
    }
}

fn invalid(why: &str) -> StoreError {
    StoreError::InvalidUrl(why.into())
}

fn certificates(pem: &[u8]) -> TlsCertificates {
    TlsCertificates {
        client_tls: None,
        root_cert: Some(pem.to_vec()),
    }
}

/// One server's URL, read, with the certificate checks the settings ask for and what every
/// data connection is given.
fn server_info(url: &str, settings: &RedisSettings) -> Result<ConnectionInfo, StoreError> {
    let info = url
        .into_connection_info()
        .map_err(|e: RedisError| invalid(&e.to_string()))?;
    Ok(for_data(with_certificate_checks(info, settings)?))
}

fn client_for(info: ConnectionInfo, settings: &RedisSettings) -> Result<Client, StoreError> {
    match &settings.tls_ca {
        None => Client::open(info),
        Some(pem) => Client::build_with_tls(info, certificates(pem)),
    }
    .map_err(|e| invalid(&e.to_string()))
}

/// The connection as the settings ask for its certificate checks: off only when `tls_insecure`
/// says so (never from a URL's `#insecure`, so that turning them off is always an explicit
/// setting), for a `rediss://` server whose authorities are not given.
fn with_certificate_checks(
    info: ConnectionInfo,
    settings: &RedisSettings,
) -> Result<ConnectionInfo, StoreError> {
    let refuse = |why: &str| Err(invalid(why));
    match info.addr().clone() {
        ConnectionAddr::TcpTls { insecure: true, .. } => refuse(
            "certificate checks are turned off by the store's tlsInsecure option, not in the URL",
        ),
        ConnectionAddr::TcpTls {
            host,
            port,
            tls_params,
            ..
        } if settings.tls_insecure => {
            if settings.tls_ca.is_some() {
                return refuse("tlsInsecure accepts any certificate: give it or tlsCa, not both");
            }
            let insecure = true;
            Ok(info.set_addr(ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                tls_params,
            }))
        }
        _ if settings.tls_insecure => refuse("tlsInsecure needs a rediss:// URL"),
        _ => Ok(info),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> RedisSettings {
        RedisSettings {
            url: url.into(),
            key_prefix: "p:".into(),
            command_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(500),
            max_session_bytes: 1 << 20,
            tls_ca: None,
            tls_insecure: false,
        }
    }

    fn refusal(url: &str) -> String {
        match Topology::of(&settings(url)) {
            Err(e) => e.to_string(),
            Ok(_) => "accepted".into(),
        }
    }

    #[test]
    fn urls_name_a_server_a_cluster_or_a_sentinel_group() {
        assert!(matches!(
            Topology::of(&settings("redis://127.0.0.1:1/2")),
            Ok(Topology::Server(_))
        ));
        assert!(matches!(
            Topology::of(&settings("redis+cluster://:pw@127.0.0.1:1,127.0.0.1:2")),
            Ok(Topology::Cluster(_))
        ));
        match Topology::of(&settings("redis+sentinel://u:p@127.0.0.1:1,[::1]:2/main/3")) {
            Ok(Topology::Sentinel(sentinels)) => assert_eq!(sentinels.master_name, "main"),
            _ => panic!("a sentinel URL"),
        }
        assert!(refusal("redis+sentinel://127.0.0.1:1").contains("name of the master"));
        assert!(refusal("redis+sentinel://127.0.0.1:1/m/0/x").contains("/<masterName>"));
        assert!(refusal("redis+cluster://127.0.0.1:1/2").contains("database 0"));
        assert!(refusal("redis+cluster://127.0.0.1:1,,127.0.0.1:2").contains("host:port"));
        assert!(refusal("redis+cluster://127.0.0.1:1#insecure").contains("tlsInsecure"));
        assert!(!refusal("memcached://127.0.0.1:1").contains("accepted"));
        assert!(matches!(
            Topology::of(&settings("unix:///tmp/redis.sock")),
            Ok(Topology::Server(_))
        ));
        assert!(refusal("127.0.0.1:6379").contains("starts with"));
        let with_ca = RedisSettings {
            tls_ca: Some(b"pem".to_vec()),
            ..settings("rediss+sentinel://127.0.0.1:1/m")
        };
        let refused = Topology::of(&with_ca).err().map(|e| e.to_string());
        assert!(refused
            .unwrap_or_default()
            .contains("not supported behind Sentinels"));
    }
}
