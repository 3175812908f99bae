//! The store's way to Redis: one shared, self-reconnecting connection plus the client that opens
//! the dedicated blocking ones. With a single Redis that is all. With Sentinel the master's
//! address comes from the Sentinels, and the link follows a failover: when a call fails the way a
//! lost or demoted master fails (connection refused or dropped, timeout, `READONLY`,
//! `MASTERDOWN`), it asks the Sentinels again (at most every [`RESOLVE_EVERY`]) and, when the
//! master moved, swaps in a connection to the new one. Calls in flight on the old one fail and
//! are retried by their callers as for any Redis error.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisError};
use tracing::{info, warn};

use super::{QueueError, RESPONSE_TIMEOUT, connect};
use crate::config::{RedisSettings, Sentinel};

/// Least time between two questions to the Sentinels.
pub const RESOLVE_EVERY: Duration = Duration::from_millis(500);
/// How long one Sentinel may take to answer.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(1);

/// The connection in use and where it points.
struct Current {
    /// Multiplexed connection shared by every non-blocking call; reconnects by itself.
    conn: ConnectionManager,
    /// Opens the dedicated connections that blocking waits need.
    client: redis::Client,
    /// `host:port` of the master (`None` before any Sentinel answered).
    master: Option<(String, u16)>,
}

/// Shared by every clone of the store.
#[derive(Clone)]
pub struct Link {
    /// What calls use now; replaced after a failover.
    current: Arc<RwLock<Current>>,
    /// How to connect (URL, TLS) and, with Sentinel, whom to ask for the master.
    settings: Arc<RedisSettings>,
    /// When the Sentinels were last asked (so a burst of errors asks once).
    last_resolve: Arc<Mutex<Option<Instant>>>,
}

impl Link {
    /// Connect lazily. With Sentinel, the master is asked for now (briefly blocking); when no
    /// Sentinel answers, the link starts unresolved and asks again on the first failed call.
    pub fn open(settings: &RedisSettings) -> Result<Self, QueueError> {
        let master = settings.sentinel.as_ref().and_then(ask_blocking);
        let current = connect_to(settings, master)?;
        Ok(Link {
            current: Arc::new(RwLock::new(current)),
            settings: Arc::new(settings.clone()),
            last_resolve: Arc::new(Mutex::new(None)),
        })
    }

    /// The shared connection.
    pub fn conn(&self) -> ConnectionManager {
        self.read(|c| c.conn.clone())
    }

    /// A client for dedicated connections (blocking waits).
    pub fn client(&self) -> redis::Client {
        self.read(|c| c.client.clone())
    }

    /// `single` or `sentinel`.
    pub fn topology(&self) -> &'static str {
        self.settings.topology()
    }

    /// `host:port` of the master in use, when Sentinel found one.
    pub fn master(&self) -> Option<String> {
        self.read(|c| c.master.as_ref().map(|(h, p)| format!("{h}:{p}")))
    }

    fn read<T>(&self, f: impl FnOnce(&Current) -> T) -> T {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    }

    /// A call failed with `e`: with Sentinel, and an error a failover explains, ask again.
    pub fn note_error(&self, e: &RedisError) {
        if self.settings.sentinel.is_none() || !failover_symptom(e) {
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
        let Some(sentinel) = self.settings.sentinel.as_ref() else {
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
    let client = match (&settings.sentinel, &master) {
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
        conn,
        client,
        master,
    })
}

/// `REDIS_URL`'s connection info (credentials, db, TLS) pointed at `host:port`.
fn at(
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
            insecure: *insecure,
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

/// The same question with blocking connections, for startup outside (or before) a runtime.
fn ask_blocking(sentinel: &Sentinel) -> Option<(String, u16)> {
    sentinel.nodes.iter().find_map(|(host, port)| {
        let client = redis::Client::open(format!("redis://{host}:{port}")).ok()?;
        let mut conn = client.get_connection_with_timeout(SENTINEL_TIMEOUT).ok()?;
        conn.set_read_timeout(Some(SENTINEL_TIMEOUT)).ok()?;
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&sentinel.master)
            .query::<Option<(String, u16)>>(&mut conn)
            .ok()
            .flatten()
    })
}
