//! The store's way to Redis: one shared connection plus what opens the dedicated blocking ones.
//! With a single Redis that is all. On a Redis Cluster the `redis` cluster client routes, follows
//! `MOVED`/`ASK` and refreshes its slot map itself ([`super::conn`]). With Sentinel the master's
//! address comes from the Sentinels, and the link follows a failover: when a call fails the way a
//! lost or demoted master fails (connection refused or dropped, timeout, `READONLY`,
//! `MASTERDOWN`), it asks the Sentinels again (at most every [`RESOLVE_EVERY`]) and, when the
//! master moved, swaps in a connection to the new one. Calls in flight on the old one fail and
//! are retried by their callers as for any Redis error.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisError};
use tracing::{info, warn};

use super::conn::{self, Conn};
use super::{QueueError, RESPONSE_TIMEOUT, connect};
use crate::config::{RedisSettings, Sentinel, Topology};

/// Least time between two questions to the Sentinels.
pub const RESOLVE_EVERY: Duration = Duration::from_millis(500);
/// How long one Sentinel may take to answer.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(1);

/// What opens dedicated connections.
#[derive(Clone)]
enum Opener {
    /// A client for one node: the URL's host or the Sentinel's master.
    Node(Box<redis::Client>),
    /// The cluster's client: a dedicated connection follows redirects like the shared one.
    Cluster(Box<ClusterClient>),
}

/// The connection in use and where it points.
struct Current {
    /// Shared by every non-blocking call; reconnects by itself.
    conn: Conn,
    /// Opens the dedicated connections that blocking waits need.
    opener: Opener,
    /// `host:port` of the master a Sentinel named (`None` before any answered, and without one).
    master: Option<(String, u16)>,
}

/// Shared by every clone of the store.
#[derive(Clone)]
pub struct Link {
    /// What calls use now; replaced after a failover.
    current: Arc<RwLock<Current>>,
    /// How to connect (URL, TLS) and, with Sentinel, whom to ask for the master.
    settings: Arc<RedisSettings>,
    /// `<prefix>:{<queue>}`: on a cluster, the slot whose master keyless commands go to.
    queue_key: Arc<str>,
    /// When the Sentinels were last asked (so a burst of errors asks once).
    last_resolve: Arc<Mutex<Option<Instant>>>,
}

impl Link {
    /// Connect lazily. With Sentinel, the master is asked for now; when no Sentinel answers, the
    /// link starts unresolved and asks again on the first failed call.
    pub async fn open(settings: &RedisSettings, queue_key: &str) -> Result<Self, QueueError> {
        let current = match &settings.topology {
            Topology::Cluster(nodes) => {
                let client = conn::cluster_client(settings, nodes)?;
                Current {
                    conn: conn::shared_cluster(&client, queue_key),
                    opener: Opener::Cluster(Box::new(client)),
                    master: None,
                }
            }
            Topology::Sentinel(sentinel) => connect_to(settings, ask(sentinel).await)?,
            Topology::Single => connect_to(settings, None)?,
        };
        Ok(Link {
            current: Arc::new(RwLock::new(current)),
            settings: Arc::new(settings.clone()),
            queue_key: queue_key.into(),
            last_resolve: Arc::new(Mutex::new(None)),
        })
    }

    /// The shared connection.
    pub fn conn(&self) -> Conn {
        self.read(|c| c.conn.clone())
    }

    /// A connection of its own, for blocking waits of up to `max_block` (on a cluster, it
    /// follows redirects like the shared one).
    pub async fn dedicated(&self, max_block: Duration) -> Result<Conn, RedisError> {
        match self.read(|c| c.opener.clone()) {
            Opener::Node(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(max_block + RESPONSE_TIMEOUT));
                let conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(Conn::Node(conn))
            }
            Opener::Cluster(client) => {
                conn::dedicated_cluster(&client, &self.queue_key, max_block).await
            }
        }
    }

    /// `single`, `sentinel` or `cluster`.
    pub fn topology(&self) -> &'static str {
        self.settings.topology.name()
    }

    /// `host:port` of the master in use: the URL's host, the one a Sentinel named, or on a
    /// cluster the node that owns the queue's slot now (asked: `CLUSTER NODES` of the node the
    /// client routes to). `None` when no Sentinel or cluster node answered.
    pub async fn master(&self) -> Option<String> {
        match self.settings.topology {
            Topology::Cluster(_) => cluster_master(&mut self.conn()).await,
            Topology::Sentinel(_) => {
                self.read(|c| c.master.as_ref().map(|(h, p)| format!("{h}:{p}")))
            }
            Topology::Single => match self
                .settings
                .url
                .expose()
                .into_connection_info()
                .ok()?
                .addr()
            {
                ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                    Some(format!("{host}:{port}"))
                }
                _ => None,
            },
        }
    }

    fn read<T>(&self, f: impl FnOnce(&Current) -> T) -> T {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    /// A call failed with `e`: with Sentinel, and an error a failover explains, ask again.
    pub fn note_error(&self, e: &RedisError) {
        if self.settings.sentinel().is_none() || !failover_symptom(e) {
            return;
        }
        {
            let mut last = self.last_resolve.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < RESOLVE_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let link = self.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { link.resolve().await });
        }
    }

    /// Ask the Sentinels; switch when the master moved.
    async fn resolve(&self) {
        let Some(sentinel) = self.settings.sentinel() else {
            return;
        };
        let Some(master) = ask(sentinel).await else {
            warn!(master = %sentinel.master, "no Sentinel knows the master now; asking again on the next error");
            return;
        };
        if self.read(|c| c.master.as_ref() == Some(&master)) {
            return;
        }
        match connect_to(&self.settings, Some(master.clone())) {
            Ok(next) => {
                let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
                *guard = next;
                info!(master = %format!("{}:{}", master.0, master.1), "following the new Redis master");
            }
            Err(e) => warn!(error = %e, "cannot connect to the new Redis master yet"),
        }
    }
}

/// The `myself` line of `CLUSTER NODES` on the node owning the queue's slot: its `host:port`.
async fn cluster_master(conn: &mut Conn) -> Option<String> {
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(conn)
        .await
        .ok()?;
    let line = nodes.lines().find(|l| {
        l.split(' ')
            .nth(2)
            .is_some_and(|flags| flags.split(',').any(|f| f == "myself"))
    })?;
    let addr = line.split(' ').nth(1)?;
    Some(addr.split('@').next()?.to_string())
}

/// Errors a lost or demoted master causes.
fn failover_symptom(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || matches!(e.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

/// The connection for `master` (the URL's own host when `None` and no Sentinel is configured).
fn connect_to(
    settings: &RedisSettings,
    master: Option<(String, u16)>,
) -> Result<Current, QueueError> {
    let client = match (settings.sentinel(), &master) {
        (None, _) => connect::client(settings)?,
        (Some(_), Some((host, port))) => connect::client_at(settings, at(settings, host, *port)?)?,
        // No Sentinel answered yet: a closed port, so calls fail fast until one does.
        (Some(_), None) => connect::client_at(settings, at(settings, "127.0.0.1", 1)?)?,
    };
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
    Ok(Current {
        conn: Conn::Managed(conn),
        opener: Opener::Node(Box::new(client)),
        master,
    })
}

/// `REDIS_URL`'s connection info (credentials, db, TLS, `REDIS_TLS_INSECURE`) pointed at
/// `host:port`.
pub(super) fn at(
    settings: &RedisSettings,
    host: &str,
    port: u16,
) -> Result<redis::ConnectionInfo, QueueError> {
    let info = settings.url.expose().into_connection_info()?;
    let addr = match info.addr() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host: host.to_string(),
            port,
            insecure: *insecure || settings.tls.as_ref().is_some_and(|t| t.insecure),
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host.to_string(), port),
    };
    Ok(info.set_addr(addr))
}

/// `SENTINEL get-master-addr-by-name` of the first Sentinel that knows the master.
async fn ask(sentinel: &Sentinel) -> Option<(String, u16)> {
    for (host, port) in &sentinel.nodes {
        let answer = async {
            let client = redis::Client::open(format!("redis://{host}:{port}")).ok()?;
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(&sentinel.master)
                .query_async(&mut conn)
                .await
                .ok()?;
            reply
        };
        if let Ok(Some(master)) = tokio::time::timeout(SENTINEL_TIMEOUT, answer).await {
            return Some(master);
        }
    }
    None
}
