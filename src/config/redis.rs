//! Where Redis is and how to reach it: `REDIS_URL` plus the TLS settings of a `rediss://` URL, and
//! the topology: one endpoint, a Sentinel-managed master (`REDIS_SENTINELS`) or a Redis Cluster
//! (`REDIS_CLUSTER_NODES`). The last two are exclusive.
//!
//! TLS material is read when the configuration is, so a missing or unreadable file is a
//! configuration error naming its variable (exit 2), not a connection failure later. The client
//! key is held as a [`Secret`]; nothing here prints certificate or key contents.

use std::fmt;
use std::path::{Path, PathBuf};

use super::reader::Reader;
use super::{LOCAL_REDIS_URL, Mode, RedisUrl, Secret};

/// The Redis the queue lives on and how to connect to it.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `REDIS_URL` (credentials and db included; printed redacted).
    pub url: RedisUrl,
    /// Certificates for a `rediss://` URL; `None` for plain `redis://`.
    pub tls: Option<RedisTls>,
    /// How the master is found: the URL's host, the Sentinels, or the cluster's slot map.
    pub topology: Topology,
    /// `REDIS_MIN_REPLICAS_ACK`: replicas that must acknowledge each submission and outcome
    /// (`WAIT`) before it counts as written; 0 = don't wait.
    pub min_replicas_ack: u32,
}

impl RedisSettings {
    /// Settings for a plain URL with no TLS options (tools that build a URL themselves).
    pub fn plain(url: &str) -> Self {
        Self {
            url: RedisUrl::new(url),
            tls: RedisUrl::new(url).is_tls().then(RedisTls::default),
            topology: Topology::Single,
            min_replicas_ack: 0,
        }
    }

    /// The Sentinels to ask for the master, when the topology is Sentinel.
    pub fn sentinel(&self) -> Option<&Sentinel> {
        match &self.topology {
            Topology::Sentinel(s) => Some(s),
            _ => None,
        }
    }
}

/// How the queue's master is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One endpoint: the host of `REDIS_URL`.
    Single,
    /// A master the Sentinels name (`REDIS_SENTINELS`, `REDIS_SENTINEL_MASTER`).
    Sentinel(Sentinel),
    /// A Redis Cluster reached through these seed nodes (`REDIS_CLUSTER_NODES`); the queue lives
    /// on the master owning its hash tag's slot.
    Cluster(Vec<(String, u16)>),
}

impl Topology {
    /// `single`, `sentinel` or `cluster` (for doctor, `/health`, logs and metrics).
    pub fn name(&self) -> &'static str {
        match self {
            Topology::Single => "single",
            Topology::Sentinel(_) => "sentinel",
            Topology::Cluster(_) => "cluster",
        }
    }
}

/// Where the Sentinels are and which master they watch. The master's address comes from them;
/// credentials, db and TLS still come from `REDIS_URL` and the TLS options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentinel {
    /// `REDIS_SENTINELS`: `host:port` of each Sentinel, asked in this order.
    pub nodes: Vec<(String, u16)>,
    /// `REDIS_SENTINEL_MASTER`: the monitored master's name.
    pub master: String,
}

/// TLS options of a `rediss://` connection. The default verifies the server against the system's
/// root certificates.
#[derive(Clone, Default)]
pub struct RedisTls {
    /// PEM of `REDIS_CA_FILE`: the CA(s) that signed the server's certificate, used instead of the
    /// system roots (a private CA, as managed Redis offerings and self-hosted TLS use).
    pub ca: Option<Pem>,
    /// PEM of `REDIS_CLIENT_CERT` + `REDIS_CLIENT_KEY`, for servers that require mutual TLS.
    pub client: Option<(Pem, Secret)>,
    /// `REDIS_TLS_INSECURE=true`: no certificate or host name check at all. Logged at WARN on
    /// every start, because anyone on the path can then read the queue.
    pub insecure: bool,
}

impl fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca.as_ref().map(|p| &p.path))
            .field("client_cert", &self.client.as_ref().map(|(c, _)| &c.path))
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// A PEM file's contents and where they came from (for messages).
#[derive(Debug, Clone)]
pub struct Pem {
    /// The file named by the variable.
    pub path: PathBuf,
    /// Its bytes, read at configuration time.
    pub bytes: Vec<u8>,
}

impl RedisUrl {
    /// Whether the URL asks for TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.expose().starts_with("rediss://")
    }
}

/// `REDIS_URL`, `REDIS_CA_FILE`, `REDIS_CLIENT_CERT`, `REDIS_CLIENT_KEY`, `REDIS_TLS_INSECURE`,
/// the topology variables and `REDIS_MIN_REPLICAS_ACK`.
pub(super) fn redis(r: &mut Reader, mode: Mode) -> RedisSettings {
    let url = redis_url(r, mode);
    let ca = pem(r, "REDIS_CA_FILE", "a PEM file of CA certificates");
    let cert = pem(r, "REDIS_CLIENT_CERT", "a PEM client certificate");
    let key = pem(r, "REDIS_CLIENT_KEY", "a PEM private key");
    let insecure = r.flag("REDIS_TLS_INSECURE", false);
    let client = match (cert, key) {
        (Some(c), Some(k)) => Some((c, Secret::new(String::from_utf8_lossy(&k.bytes)))),
        (Some(_), None) => missing_pair(r, "REDIS_CLIENT_KEY", "REDIS_CLIENT_CERT"),
        (None, Some(_)) => missing_pair(r, "REDIS_CLIENT_CERT", "REDIS_CLIENT_KEY"),
        (None, None) => None,
    };
    let tls = RedisTls {
        ca,
        client,
        insecure,
    };
    let topology = topology(r);
    let min_replicas_ack = r.number("REDIS_MIN_REPLICAS_ACK", 0u32, 0, 16);
    if !url.is_tls() {
        refuse_tls_options(r, &tls);
        return RedisSettings {
            url,
            tls: None,
            topology,
            min_replicas_ack,
        };
    }
    RedisSettings {
        url,
        tls: Some(tls),
        topology,
        min_replicas_ack,
    }
}

/// Sentinel, Cluster or neither; both at once is refused (naming both variables).
fn topology(r: &mut Reader) -> Topology {
    let sentinel = sentinel(r);
    let cluster = cluster(r);
    match (sentinel, cluster) {
        (Some(_), Some(_)) => {
            for (name, other) in [
                ("REDIS_SENTINELS", "REDIS_CLUSTER_NODES"),
                ("REDIS_CLUSTER_NODES", "REDIS_SENTINELS"),
            ] {
                r.problem(
                    name,
                    format!("cannot be set together with {other} (choose Sentinel or Cluster)"),
                );
            }
            Topology::Single
        }
        (Some(s), None) => Topology::Sentinel(s),
        (None, Some(nodes)) => {
            refuse_cluster_db(r);
            Topology::Cluster(nodes)
        }
        (None, None) => Topology::Single,
    }
}

/// A Redis Cluster has only db 0: a `REDIS_URL` naming another would fail every connection.
fn refuse_cluster_db(r: &mut Reader) {
    use redis::IntoConnectionInfo;
    let db = r
        .raw("REDIS_URL")
        .and_then(|u| u.into_connection_info().ok())
        .map(|info| info.redis_settings().db());
    if let Some(db) = db.filter(|db| *db != 0) {
        r.problem(
            "REDIS_URL",
            format!(
                "names db {db}, but a Redis Cluster has only db 0 (REDIS_CLUSTER_NODES is set)"
            ),
        );
    }
}

/// `REDIS_CLUSTER_NODES`: comma-separated `host:port` seed nodes of a Redis Cluster.
fn cluster(r: &mut Reader) -> Option<Vec<(String, u16)>> {
    let raw = r.raw("REDIS_CLUSTER_NODES")?;
    let nodes = host_ports(raw);
    if nodes.is_none() {
        r.problem(
            "REDIS_CLUSTER_NODES",
            format!("`{raw}` is not a list of host:port"),
        );
    }
    nodes
}

/// `host:port,host:port,...` (IPv6 hosts in brackets); `None` when any entry is not one.
fn host_ports(raw: &str) -> Option<Vec<(String, u16)>> {
    let nodes: Option<Vec<(String, u16)>> = raw
        .split(',')
        .map(|n| {
            let (host, port) = n.trim().rsplit_once(':')?;
            let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
            (!host.is_empty()).then(|| (host.trim_matches(['[', ']']).to_string(), port))
        })
        .collect();
    nodes.filter(|n| !n.is_empty())
}

/// `REDIS_SENTINELS` (comma-separated `host:port`) and `REDIS_SENTINEL_MASTER`, both or neither.
fn sentinel(r: &mut Reader) -> Option<Sentinel> {
    let nodes = r.raw("REDIS_SENTINELS");
    let master = r.raw("REDIS_SENTINEL_MASTER");
    let (nodes, master) = match (nodes, master) {
        (None, None) => return None,
        (Some(_), None) => {
            r.problem(
                "REDIS_SENTINEL_MASTER",
                "is required with REDIS_SENTINELS (the master's name)",
            );
            return None;
        }
        (None, Some(_)) => {
            r.problem(
                "REDIS_SENTINELS",
                "is required with REDIS_SENTINEL_MASTER (host:port,...)",
            );
            return None;
        }
        (Some(n), Some(m)) => (n, m),
    };
    match host_ports(nodes) {
        Some(nodes) => Some(Sentinel {
            nodes,
            master: master.to_string(),
        }),
        None => {
            r.problem(
                "REDIS_SENTINELS",
                format!("`{nodes}` is not a list of host:port"),
            );
            None
        }
    }
}

/// `REDIS_URL`: required by `run`; the operator tools fall back to [`LOCAL_REDIS_URL`].
fn redis_url(r: &mut Reader, mode: Mode) -> RedisUrl {
    match (r.raw("REDIS_URL"), mode) {
        (Some(u), _) if u.starts_with("redis://") || u.starts_with("rediss://") => RedisUrl::new(u),
        (Some(_), _) => {
            r.problem("REDIS_URL", "must start with redis:// or rediss://");
            RedisUrl::new(LOCAL_REDIS_URL)
        }
        (None, Mode::Run) => {
            r.problem("REDIS_URL", "is required (e.g. redis://localhost:6379)");
            RedisUrl::new(LOCAL_REDIS_URL)
        }
        (None, Mode::Tool) => RedisUrl::new(LOCAL_REDIS_URL),
    }
}

/// A readable file holding at least one PEM block, or `None` (recording why when it is set).
fn pem(r: &mut Reader, name: &str, what: &str) -> Option<Pem> {
    let path = Path::new(r.raw(name)?).to_path_buf();
    match std::fs::read(&path) {
        Ok(bytes) if String::from_utf8_lossy(&bytes).contains("-----BEGIN ") => {
            Some(Pem { path, bytes })
        }
        Ok(_) => {
            r.problem(name, format!("`{}` is not {what}", path.display()));
            None
        }
        Err(e) => {
            r.problem(name, format!("cannot read `{}`: {e}", path.display()));
            None
        }
    }
}

fn missing_pair<T>(r: &mut Reader, missing: &str, given: &str) -> Option<T> {
    r.problem(
        missing,
        format!("is required when {given} is set (mutual TLS)"),
    );
    None
}

/// TLS options with a `redis://` URL would silently be ignored: refuse them instead.
fn refuse_tls_options(r: &mut Reader, tls: &RedisTls) {
    let set = [
        ("REDIS_CA_FILE", tls.ca.is_some()),
        ("REDIS_CLIENT_CERT", tls.client.is_some()),
        ("REDIS_TLS_INSECURE", tls.insecure),
    ];
    for (name, _) in set.iter().filter(|(_, on)| *on) {
        r.problem(
            name,
            "is a TLS option, but REDIS_URL is redis:// (use rediss:// for TLS)",
        );
    }
}
