//! Liveness and readiness, for the platform and for monitors.
//!
//! - `GET /health` (liveness; Render's `healthCheckPath`): fails only when restarting this
//!   instance would help: the supervisor does not answer, or the pool has been in `error` for
//!   longer than [`ERROR_FOR_RESTART`] (back-offs that never recover). A Redis outage or a stopped
//!   pool never fails it: restarting every instance during a Redis blip helps nobody.
//! - `GET /ready` (readiness; UptimeRobot and the deployment guide's checks): fails when this
//!   instance cannot do work now: Redis does not answer or refuses writes (out of memory), or the
//!   pool is not running (stopped, stopping, error).
//!
//! Both answer JSON naming what is down; neither needs a token. Each is bounded by one
//! [`PROBE_TIMEOUT`]: its Redis and supervisor checks run side by side, and `/health`'s master
//! lookup (on a cluster `CLUSTER NODES`) only gets what the ping left of that time.

use std::future::Future;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;
use crate::pool::supervisor::{GetSnapshot, PoolSnapshot};
use crate::queue::{PoolStatus, QueueError};

/// How long the pool may stay in `error` before liveness fails and the platform restarts it.
pub const ERROR_FOR_RESTART: Duration = Duration::from_secs(600);
/// How long a probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

async fn snapshot(state: &AppState) -> Option<PoolSnapshot> {
    let ask = state.supervisor.send(GetSnapshot);
    tokio::time::timeout(PROBE_TIMEOUT, ask).await.ok()?.ok()
}

/// Ping Redis, then ask for the master the queue is on, both within one `timeout`: whether Redis
/// answered the ping, and the master when the lookup finished in time.
async fn redis_probe(
    ping: impl Future<Output = Result<(), QueueError>>,
    master: impl Future<Output = Option<String>>,
    timeout: Duration,
) -> (bool, Option<String>) {
    let deadline = tokio::time::Instant::now() + timeout;
    if !matches!(tokio::time::timeout_at(deadline, ping).await, Ok(Ok(()))) {
        return (false, None);
    }
    let master = tokio::time::timeout_at(deadline, master)
        .await
        .ok()
        .flatten();
    (true, master)
}

fn answer(ok: bool, body: serde_json::Value) -> HttpResponse {
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Liveness: 503 only when a restart of this instance would help.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "alive (Redis may be down: see `redis`)"),
              (status = 503, description = "restart me: `down` says why")))]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let redis = redis_probe(
        state.store.ping(),
        state.store.redis_master(),
        PROBE_TIMEOUT,
    );
    let ((redis_ok, master), pool) = tokio::join!(redis, snapshot(&state));
    let stuck = pool.as_ref().is_some_and(|p| {
        p.status == PoolStatus::Error && p.status_secs > ERROR_FOR_RESTART.as_secs_f64()
    });
    let mut down = Vec::new();
    if pool.is_none() {
        down.push("supervisor");
    }
    if stuck {
        down.push("worker");
    }
    let body = json!({
        "status": if down.is_empty() { "ok" } else { "unavailable" },
        "redis": if redis_ok { "ok" } else { "down" },
        "redis_topology": state.store.redis_topology(),
        "redis_master": master,
        "worker": pool.as_ref().map(|p| p.status.as_str()).unwrap_or("unknown"),
        "instance": pool.as_ref().map(|p| p.instance.clone()),
        "in_flight": pool.as_ref().map(|p| p.in_flight),
        "version": env!("CARGO_PKG_VERSION"),
        "down": down,
    });
    answer(down.is_empty(), body)
}

/// Readiness: 200 only when this instance can take and run tasks now.
#[utoipa::path(get, path = "/ready", tag = "health",
    responses((status = 200, description = "ready"),
              (status = 503, description = "not ready: `down` names redis, redis_writes or worker")))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let pool = snapshot(&state).await;
    let instance = pool
        .as_ref()
        .map(|p| p.instance.clone())
        .unwrap_or_default();
    let ping = tokio::time::timeout(PROBE_TIMEOUT, state.store.ping()).await;
    let write = tokio::time::timeout(PROBE_TIMEOUT, state.store.write_probe(&instance)).await;
    let mut down = Vec::new();
    if !matches!(ping, Ok(Ok(()))) {
        down.push("redis");
    } else if !matches!(write, Ok(Ok(()))) {
        down.push("redis_writes");
    }
    if pool
        .as_ref()
        .is_none_or(|p| p.status != PoolStatus::Running)
    {
        down.push("worker");
    }
    let body = json!({
        "status": if down.is_empty() { "ready" } else { "not_ready" },
        "worker": pool.as_ref().map(|p| p.status.as_str()).unwrap_or("unknown"),
        "instance": pool.as_ref().map(|p| p.instance.clone()),
        "down": down,
    });
    answer(down.is_empty(), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn after<T>(ms: u64, v: T) -> T {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        v
    }

    #[tokio::test]
    async fn the_ping_and_the_master_lookup_share_one_timeout() {
        let limit = Duration::from_millis(300);
        let master = || Some("10.0.0.1:6379".to_string());
        assert_eq!(
            redis_probe(after(0, Ok(())), after(0, master()), limit).await,
            (true, master())
        );
        // A slow lookup after a slow ping: the probe ends at the one timeout (300 ms; a timeout
        // per step would take 200 + 300), and says Redis answered.
        let started = std::time::Instant::now();
        let probe = redis_probe(after(200, Ok(())), after(1_000, master()), limit).await;
        assert_eq!(probe, (true, None));
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(450),
            "bounded by one timeout: {took:?}"
        );
        let down = redis_probe(after(400, Ok(())), after(0, master()), limit).await;
        assert_eq!(down, (false, None));
        let refused = Err(QueueError::Protocol("refused".into()));
        assert_eq!(
            redis_probe(after(0, refused), after(0, master()), limit).await,
            (false, None)
        );
    }
}
