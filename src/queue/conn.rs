//! The connections the store sends commands on, one type for every topology: [`Conn`] is a
//! self-reconnecting connection to one node (single Redis, or the master a Sentinel named), a
//! dedicated connection to one node (blocking waits), or a Redis Cluster connection. Each
//! implements `redis::aio::ConnectionLike` by delegation, so scripts, commands and pipelines are
//! sent the same way whatever the topology.
//!
//! On a cluster, `redis`'s cluster client routes every keyed command by its key's slot and follows
//! `MOVED` and `ASK` itself, refreshing its slot map. Commands **without** a key (`INFO`, `WAIT`,
//! `PING`, `SCAN`, `CONFIG`, ...) would go to a random node, or to every master; [`ClusterConn`]
//! sends them to the master owning the queue's slot instead (its `home`), so `INFO memory`, `WAIT`
//! and `SCAN` in `destroy` see the node the queue lives on.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use super::QueueError;
use crate::config::RedisSettings;

/// Commands without a key that must reach the queue's master on a cluster.
const KEYLESS: [&[u8]; 11] = [
    b"INFO",
    b"WAIT",
    b"PING",
    b"TIME",
    b"SCAN",
    b"CONFIG",
    b"DBSIZE",
    b"ROLE",
    b"LASTSAVE",
    b"MEMORY",
    b"CLUSTER",
];

/// A connection of any topology; clones share the underlying connection.
#[derive(Clone)]
pub enum Conn {
    /// Shared, auto-reconnecting connection to one node (single Redis, Sentinel's master).
    Managed(ConnectionManager),
    /// A dedicated connection to one node (blocking waits block only it).
    Node(MultiplexedConnection),
    /// A Redis Cluster connection (shared, or dedicated when opened for a blocking wait).
    Cluster(ClusterConn),
}

/// A cluster connection whose keyless commands go to the master owning the queue's slot.
#[derive(Clone)]
pub struct ClusterConn {
    /// The cluster client's connection: routing, redirects and slot-map refresh.
    conn: ClusterConnection,
    /// The queue's slot (from its hash tag), on its master: where keyless commands go.
    home: Route,
}

impl ClusterConn {
    /// The routing of keyless commands: the master owning the queue's slot.
    fn home(&self) -> SingleNodeRoutingInfo {
        SingleNodeRoutingInfo::SpecificNode(self.home)
    }
}

/// Whether `cmd` names no key and so needs an explicit route on a cluster.
fn keyless(cmd: &Cmd) -> bool {
    let Some(redis::Arg::Simple(name)) = cmd.args_iter().next() else {
        return false;
    };
    let is_memory_usage = name.eq_ignore_ascii_case(b"MEMORY")
        && matches!(cmd.args_iter().nth(1), Some(redis::Arg::Simple(s)) if s.eq_ignore_ascii_case(b"USAGE"));
    KEYLESS.iter().any(|k| name.eq_ignore_ascii_case(k)) && !is_memory_usage
}

impl ConnectionLike for ClusterConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        if !keyless(cmd) {
            return self.conn.req_packed_command(cmd);
        }
        let routing = RoutingInfo::SingleNode(self.home());
        Box::pin(async move { self.conn.route_command(cmd.clone(), routing).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        if !pipeline.cmd_iter().all(keyless) {
            return self.conn.req_packed_commands(pipeline, offset, count);
        }
        let home = self.home();
        Box::pin(async move {
            self.conn
                .route_pipeline(pipeline.clone(), offset, count, home)
                .await
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Managed(c) => c.req_packed_command(cmd),
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Managed(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Managed(c) => c.get_db(),
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The cluster's client, built from the seed nodes with `REDIS_URL`'s credentials and the TLS
/// options. The client's own retries (redirects, `TRYAGAIN`) are few and short: the store retries
/// slot-migration errors itself (`QueueStore::run`).
pub fn cluster_client(
    settings: &RedisSettings,
    nodes: &[(String, u16)],
) -> Result<ClusterClient, QueueError> {
    let infos = nodes
        .iter()
        .map(|(host, port)| super::link::at(settings, host, *port))
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder = ClusterClientBuilder::new(infos)
        .retries(4)
        .min_retry_wait(5)
        .max_retry_wait(100)
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(super::RESPONSE_TIMEOUT)
        // Each attempt is bounded by the connection's own response timeout (longer on a
        // dedicated connection, for blocking waits); the few, short retries add little on top.
        .overall_response_timeout(None);
    if let Some(tls) = &settings.tls
        && (tls.ca.is_some() || tls.client.is_some())
    {
        builder = builder.certs(super::connect::certificates(tls));
    }
    Ok(builder.build()?)
}

/// The shared cluster connection: connects lazily in the background (a cluster that is down now
/// is retried on every call), keyless commands routed to the master of `queue_key`'s slot.
pub fn shared_cluster(client: &ClusterClient, queue_key: &str) -> Conn {
    let config = ClusterConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(super::RESPONSE_TIMEOUT);
    Conn::Cluster(ClusterConn {
        conn: client.get_pending_async_connection_with_config(config),
        home: Route::with_key(queue_key, SlotAddr::Master),
    })
}

/// A cluster connection of its own, for a blocking wait of up to `max_block`.
pub async fn dedicated_cluster(
    client: &ClusterClient,
    queue_key: &str,
    max_block: Duration,
) -> RedisResult<Conn> {
    let config = ClusterConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(max_block + super::RESPONSE_TIMEOUT);
    let conn = client.get_async_connection_with_config(config).await?;
    Ok(Conn::Cluster(ClusterConn {
        conn,
        home: Route::with_key(queue_key, SlotAddr::Master),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keyless_commands_are_sent_home() {
        assert!(keyless(redis::cmd("INFO").arg("memory")));
        assert!(keyless(redis::cmd("wait").arg(1).arg(1000)));
        assert!(keyless(redis::cmd("SCAN").arg(0)));
        assert!(keyless(redis::cmd("MEMORY").arg("STATS")));
        assert!(!keyless(redis::cmd("MEMORY").arg("USAGE").arg("k")));
        assert!(!keyless(
            redis::cmd("HGET").arg("ops:{q}:counters").arg("f")
        ));
        assert!(!keyless(redis::cmd("EVALSHA").arg("abc").arg(1).arg("k")));
    }
}
