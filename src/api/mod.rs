//! The HTTP API and the dashboard, served by actix-web in the same System as the actors.
//!
//! Layout: `auth` (JWT and roles), `origin` (when a tokenless loopback request counts as local),
//! `guard` (timeouts, body rules and security headers around every route), `error` (the one
//! error enum and its status mapping), `tasks`
//! (submit/read/cancel/retry/listings), `bulk` (delete a dead letter, actions on many tasks),
//! `history` (the charts' series), `worker` (instances, pool commands, queue stats, pause),
//! `events` (the event stream as Server-Sent Events),
//! `dashboard` (the page, compiled into the binary) and `openapi` (the generated description).
//! Every route is declared once in [`routes!`]: the same table registers it with actix and is
//! compared with `/openapi.json` by the tests, so the description can't drift.

pub mod auth;
pub mod build;
pub mod bulk;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod guard;
pub mod health;
pub mod history;
pub mod openapi;
pub mod origin;
pub mod releases;
pub mod schedules;
pub mod tasks;
pub mod worker;

use actix::Addr;
use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use utoipa::ToSchema;

use crate::pool::supervisor::SupervisorActor;
use crate::queue::PoolStatus;
use crate::queue::QueueStore;
use crate::task::TaskRecord;
use error::ApiError;

/// Shared by every request handler.
#[derive(Clone)]
pub struct AppState {
    pub store: QueueStore,
    /// This instance's pool (health, local snapshot, immediate control nudges).
    pub supervisor: Addr<SupervisorActor>,
    /// Renders `/metrics` (None when the recorder could not be installed).
    pub metrics: Option<PrometheusHandle>,
    /// `/metrics` lives on its own listener (`METRICS_PORT`), so this one answers 404 for it and
    /// a public port never shows the metrics.
    pub metrics_elsewhere: bool,
    /// Largest accepted request body (`API_BODY_LIMIT_BYTES`).
    pub body_limit: usize,
    /// `TASK_MAX_RETRIES`, for submissions that don't set `max_retries`.
    pub default_max_retries: u32,
    /// Submission limits (sizes, `run_at` delay, diagnostic knobs).
    pub submit: crate::task::SubmitRules,
    /// The SSE clients of `/api/events` (their cap, the shared reader, the shutdown switch).
    pub events: events::EventStreams,
}

/// A page of task records.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    pub count: usize,
    /// The limit applied (after capping).
    pub limit: usize,
    pub tasks: Vec<TaskRecord>,
    /// Pass as `cursor` to get the next page; null when the index holds nothing further.
    pub next_cursor: Option<String>,
}

/// One live instance: its heartbeat plus how long it has been up.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceStatus {
    #[serde(flatten)]
    pub heartbeat: crate::queue::Heartbeat,
    pub uptime_secs: f64,
}

/// `GET /api/worker/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerStatus {
    /// running when any instance runs; else error when any is in error; else stopped.
    pub status: PoolStatus,
    pub count: usize,
    pub instances: Vec<InstanceStatus>,
}

/// Declares every route once: registration, and the table the OpenAPI test compares with.
macro_rules! routes {
    ($( $method:ident $path:literal => $handler:path ),* $(,)?) => {
        /// `(METHOD, path)` of every route the server serves.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn register(cfg: &mut web::ServiceConfig) {
            $( cfg.route($path, web::$method().to($handler)); )*
        }
    };
}

routes! {
    get "/health" => health::health,
    get "/ready" => health::ready,
    get "/metrics" => metrics,
    get "/openapi.json" => openapi::serve,
    get "/" => dashboard::index,
    get "/dashboard/app.js" => dashboard::script,
    get "/dashboard/style.css" => dashboard::style,
    get "/dashboard/charts.js" => dashboard::charts,
    get "/dashboard/lists.js" => dashboard::lists,
    get "/dashboard/panels.js" => dashboard::panels,
    post "/tasks" => tasks::submit,
    get "/tasks/{id}" => tasks::get,
    get "/tasks/{id}/build" => build::progress,
    post "/tasks/{id}/cancel" => tasks::cancel,
    post "/tasks/{id}/retry" => tasks::retry,
    delete "/tasks/{id}" => bulk::delete,
    post "/api/tasks/bulk" => bulk::bulk,
    get "/stats" => worker::stats,
    get "/api/worker/status" => worker::status,
    post "/api/worker/start" => worker::start,
    post "/api/worker/stop" => worker::stop,
    post "/api/worker/restart" => worker::restart,
    get "/api/queue/stats" => worker::queue_stats,
    post "/api/queue/pause" => worker::pause,
    post "/api/queue/resume" => worker::resume,
    get "/api/stats/history" => history::history,
    get "/api/tasks/recent" => tasks::recent,
    get "/api/tasks/failed" => tasks::failed,
    get "/api/events" => events::stream,
    get "/api/projects/{project}/releases" => releases::list,
    get "/api/schedules" => schedules::list,
    post "/api/schedules" => schedules::add,
    delete "/api/schedules/{name}" => schedules::remove,
}

/// Register the routes, JSON errors for bad query strings and paths, and a JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| ApiError::invalid("query", e.to_string()).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::invalid("path", e.to_string()).into()),
    );
    register(cfg);
    cfg.default_service(web::to(not_found));
}

async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {} (see /openapi.json)",
        req.method(),
        req.path()
    )))
}

/// Prometheus text format; gauges are refreshed by the MetricsActor, not by this request.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.metrics_elsewhere {
        return Err(ApiError::NotFound(
            "metrics are served on the metrics port (METRICS_PORT), not on this one".into(),
        ));
    }
    render_metrics(state.metrics.as_ref())
}

/// The body of `/metrics`, here or on the metrics listener.
fn render_metrics(handle: Option<&PrometheusHandle>) -> Result<HttpResponse, ApiError> {
    match handle {
        Some(h) => Ok(HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(crate::telemetry::metrics::render(h))),
        None => Err(ApiError::Unavailable(
            "the metrics recorder is not installed".into(),
        )),
    }
}

/// The routes of the metrics listener (`METRICS_PORT`): `/metrics` and nothing else.
pub fn configure_metrics_only(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/metrics",
        web::get().to(|h: web::Data<Option<PrometheusHandle>>| async move {
            render_metrics(h.as_ref().as_ref())
        }),
    );
    cfg.default_service(web::to(not_found));
}
