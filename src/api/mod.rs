//! The HTTP surface. For now: `GET /health` (the full API of SPEC §6 grows here).
//!
//! Handlers are thin: they read [`AppState`] and call the queue or the supervisor.

use std::time::Duration;

use actix::Addr;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::actors::supervisor::{GetSnapshot, PoolStatus, SupervisorActor};
use crate::queue::QueueStore;
use metrics_exporter_prometheus::PrometheusHandle;

/// Shared by every request handler.
#[derive(Clone)]
pub struct AppState {
    pub store: QueueStore,
    pub supervisor: Addr<SupervisorActor>,
    /// Renders `/metrics` (None when the recorder could not be installed).
    pub metrics: Option<PrometheusHandle>,
}

/// Register the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/metrics", web::get().to(metrics));
}

/// 200 when Redis answers and the pool is not in `error`; 503 naming what is down otherwise.
async fn health(state: web::Data<AppState>) -> HttpResponse {
    let redis_ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await,
        Ok(Ok(()))
    );
    let pool = state.supervisor.send(GetSnapshot).await.ok();
    let worker = pool
        .as_ref()
        .map(|p| p.status.as_str())
        .unwrap_or("unknown");
    let mut down = Vec::new();
    if !redis_ok {
        down.push("redis");
    }
    if pool.as_ref().is_none_or(|p| p.status == PoolStatus::Error) {
        down.push("worker");
    }
    let body = json!({
        "status": if down.is_empty() { "ok" } else { "unavailable" },
        "redis": if redis_ok { "ok" } else { "down" },
        "worker": worker,
        "instance": pool.as_ref().map(|p| p.instance.clone()),
        "in_flight": pool.as_ref().map(|p| p.in_flight),
        "down": down,
    });
    if down.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text format; gauges are refreshed by the MetricsActor, not by this request.
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match &state.metrics {
        Some(h) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(h.render()),
        None => HttpResponse::ServiceUnavailable()
            .json(json!({"error": {"code": "metrics_unavailable", "message": "the metrics recorder is not installed"}})),
    }
}
