//! doctor's Redis rows: TLS, topology (and the master in use), reachable, writable, eviction
//! policy. They run on the store's own kind of connection, so a Sentinel's master or a cluster's
//! node owning the queue's slot is what gets checked.

use std::time::Duration;

use super::{Check, Status, check, evicting};
use crate::config::{RedisSettings, Topology};
use crate::queue::{Conn, QueueError, connect};

/// Reachable, writable, and not evicting (each a row).
pub(super) async fn redis_checks(
    redis: &RedisSettings,
    queue: &crate::config::QueueSettings,
    out: &mut Vec<Check>,
) {
    out.push(redis_tls(redis));
    // One store: with Sentinel, building it asks the Sentinels for the master once.
    let store = crate::queue::QueueStore::new(redis, queue).await;
    let master = match &store {
        Ok(s) => tokio::time::timeout(Duration::from_secs(3), s.redis_master())
            .await
            .ok()
            .flatten(),
        Err(_) => None,
    };
    out.push(redis_topology(redis, master));
    let Some(mut conn) = redis_connection(&store, out).await else {
        return;
    };
    let key = format!(
        "{}:doctor:{}",
        queue.key_base(),
        uuid::Uuid::new_v4().simple()
    );
    out.push(redis_writable(&mut conn, &key).await);
    out.push(redis_eviction(&mut conn).await);
}

/// The `redis topology` row: how the master is found, and which node it is now.
fn redis_topology(redis: &RedisSettings, master: Option<String>) -> Check {
    const NAME: &str = "redis topology";
    match (&redis.topology, master) {
        (Topology::Single, _) => check(NAME, Status::Ok, "single endpoint (REDIS_URL)"),
        (Topology::Sentinel(s), Some(m)) => check(
            NAME,
            Status::Ok,
            format!("sentinel: master `{}` is {m}", s.master),
        ),
        (Topology::Sentinel(s), None) => check(
            NAME,
            Status::Fail,
            format!(
                "sentinel: no Sentinel of {} knows master `{}`",
                s.nodes.len(),
                s.master
            ),
        ),
        (Topology::Cluster(nodes), Some(m)) => check(
            NAME,
            Status::Ok,
            format!(
                "cluster ({} seed nodes): the queue's slot is on master {m}",
                nodes.len()
            ),
        ),
        (Topology::Cluster(nodes), None) => check(
            NAME,
            Status::Fail,
            format!(
                "cluster: none of the {} seed nodes answered CLUSTER NODES for the queue's slot",
                nodes.len()
            ),
        ),
    }
}

/// How the connection is secured: plain, TLS with the system roots or a CA file, mutual TLS;
/// a warning when certificate checks are off.
fn redis_tls(redis: &RedisSettings) -> Check {
    const NAME: &str = "redis tls";
    let Some(tls) = &redis.tls else {
        return check(NAME, Status::Skip, "plain redis:// (no TLS)");
    };
    if tls.insecure {
        return check(
            NAME,
            Status::Warn,
            "REDIS_TLS_INSECURE=true: certificates are NOT checked; anyone on the path can read and change the queue",
        );
    }
    let roots = match &tls.ca {
        Some(ca) => format!("server checked against REDIS_CA_FILE {}", ca.path.display()),
        None => "server checked against the system's root certificates".to_string(),
    };
    let client = match &tls.client {
        Some((cert, _)) => format!("; client certificate {}", cert.path.display()),
        None => String::new(),
    };
    check(NAME, Status::Ok, format!("rediss://: {roots}{client}"))
}

/// A connection that answered PING within 3 s, or `None` after pushing the failing row.
async fn redis_connection(
    store: &Result<crate::queue::QueueStore, QueueError>,
    out: &mut Vec<Check>,
) -> Option<Conn> {
    const NAME: &str = "redis reachable";
    let conn = async {
        // The store's own kind of connection: the URL's host, the master the Sentinels name, or
        // the cluster (routed to the queue's slot).
        match store {
            Ok(s) => s.dedicated_connection(Duration::ZERO).await,
            Err(e) => Err(QueueError::Protocol(e.to_string())),
        }
    };
    let mut conn = match tokio::time::timeout(Duration::from_secs(3), conn).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let explained = match &e {
                QueueError::Redis(r) => connect::explain_tls_error(r),
                _ => None,
            };
            let why = match explained {
                Some(meaning) => format!("cannot connect: {meaning} ({e})"),
                None => format!("cannot connect: {e}"),
            };
            out.push(check(NAME, Status::Fail, why));
            return None;
        }
        Err(_) => {
            out.push(check(NAME, Status::Fail, "no answer within 3 s"));
            return None;
        }
    };
    match redis::cmd("PING").query_async::<String>(&mut conn).await {
        Ok(_) => {
            out.push(check(NAME, Status::Ok, "PING answered"));
            Some(conn)
        }
        Err(e) => {
            out.push(check(NAME, Status::Fail, format!("PING failed: {e}")));
            None
        }
    }
}

/// SET then DEL a random key of the queue's slot (so on a cluster, on the queue's master) that
/// expires in 30 s anyway.
async fn redis_writable(conn: &mut Conn, key: &str) -> Check {
    let write = async {
        redis::cmd("SET")
            .arg(key)
            .arg("1")
            .arg("EX")
            .arg(30)
            .query_async::<()>(conn)
            .await?;
        redis::cmd("DEL").arg(key).query_async::<i64>(conn).await
    };
    match write.await {
        Ok(_) => check("redis writable", Status::Ok, "SET/DEL succeeded"),
        Err(e) => check(
            "redis writable",
            Status::Fail,
            format!("write refused: {e}"),
        ),
    }
}

/// `maxmemory-policy` must be `noeviction`; a managed Redis that hides CONFIG is only a warning.
async fn redis_eviction(conn: &mut Conn) -> Check {
    const NAME: &str = "redis eviction policy";
    let policy = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async::<Vec<String>>(conn)
        .await;
    match policy {
        Ok(v) => match v.get(1) {
            Some(p) if evicting(p) => check(
                NAME,
                Status::Fail,
                format!(
                    "maxmemory-policy is {p}: Redis may delete queued tasks under memory pressure \
                     (the deployment guide's allkeys-lru suggestion would too); set noeviction"
                ),
            ),
            Some(p) => check(NAME, Status::Ok, p.clone()),
            None => check(NAME, Status::Warn, "CONFIG GET returned nothing"),
        },
        Err(e) => check(
            NAME,
            Status::Warn,
            format!("cannot read it ({e}); make sure the service uses noeviction"),
        ),
    }
}
