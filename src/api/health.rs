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
//! Both answer JSON naming what is down; neither needs a token.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;
use crate::pool::supervisor::{GetSnapshot, PoolSnapshot};
use crate::queue::PoolStatus;

/// How long the pool may stay in `error` before liveness fails and the platform restarts it.
pub const ERROR_FOR_RESTART: Duration = Duration::from_secs(600);
/// How long a probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

async fn snapshot(state: &AppState) -> Option<PoolSnapshot> {
    let ask = state.supervisor.send(GetSnapshot);
    tokio::time::timeout(PROBE_TIMEOUT, ask).await.ok()?.ok()
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
    let redis_ok = matches!(
        tokio::time::timeout(PROBE_TIMEOUT, state.store.ping()).await,
        Ok(Ok(()))
    );
    let master = match redis_ok {
        true => tokio::time::timeout(PROBE_TIMEOUT, state.store.redis_master())
            .await
            .ok()
            .flatten(),
        false => None,
    };
    let pool = snapshot(&state).await;
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
