//! A local stand-in for the Vercel REST API, used by the tests, `ops-worker vercel-sim` and the demo.
//!
//! Vercel endpoints (all require `Authorization: Bearer <token>` and accept `teamId` / `slug`):
//! - `GET /v2/user`: the token's user.
//! - `POST /v13/deployments`: create a deployment (`name` required; `project`, `target`,
//!   `gitSource`, `meta`, `deploymentId` for a redeploy). Creates the project on first use.
//! - `GET /v13/deployments/{idOrUrl}`: one deployment by id or hostname.
//! - `GET /v6/deployments`: newest first; filters `projectId` (id or name), `app`, `target`,
//!   `state` (comma list), `since`, `until`, `limit` (default 20, at most 100).
//! - `PATCH /v12/deployments/{id}/cancel`: QUEUED/BUILDING → CANCELED (idempotent; 400 once final).
//! - `POST /v10/projects/{projectId}/promote/{deploymentId}` and
//!   `POST /v1/projects/{projectId}/rollback/{deploymentId}`: 201 with an empty body, 409 unless
//!   the deployment is READY.
//! - `GET /v9/projects/{idOrName}`.
//!
//! A deployment's state follows from its age: QUEUED, BUILDING after 20% of `build_secs`, READY at
//! `build_secs` (ERROR with `errorCode`/`errorMessage` when the project name starts with `error-`);
//! a canceled deployment stays CANCELED. Successful response bodies conform to
//! `shared/vercel/vercel-openapi-subset.json`; errors are `{"error":{"code","message"}}`.
//!
//! Every API call passes, in this order: forced 429 (`rate_limit_next`), forced 500 (`fail_next`),
//! Bearer auth (401), query-string syntax (400), the block left by an earlier 429, the fixed 60 s
//! window of `rate_limit_per_min` (429 with `Retry-After`, `X-RateLimit-*` and `error.limit`, as
//! Vercel answers), random 500s (`fail_rate`). `latency_ms` delays every API response.
//!
//! Test-only control endpoints (not Vercel's; no auth; not logged):
//! - `GET /_sim/stats`: `{"requests":[{"method","path","status","at_ms"}...],
//!   "deployments_created":{"<project name>":n},"rate_limited":n}`, requests in arrival order.
//! - `POST /_sim/faults` with any of `fail_next` (the next n calls answer 500), `rate_limit_next`
//!   and `retry_after_secs` (default 1: the next n calls answer 429 and calls before the reset are
//!   refused too), `latency_ms`, `build_secs`, `fail_rate`, `rate_limit_per_min` (number or null);
//!   answers the current settings.
//! - `POST /_sim/reset`: clears the request log, the counters, the pending faults and the rate-limit
//!   window (deployments, projects and settings stay).

mod bodies;
mod gate;
mod routes;

use gate::track;
use routes::*;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, Resource, Route, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::client::ReadyState;

const USER_ID: &str = "SimUsr7f3kQ9xLm2Pz4Rt8Wv";
const USERNAME: &str = "sim-user";
const EMAIL: &str = "sim-user@example.com";
const REGION: &str = "iad1";
const WINDOW_MS: i64 = 60_000;
/// Reported as `X-RateLimit-Limit` by forced 429s when no per-minute limit is configured.
const DEFAULT_LIMIT: u32 = 100;
const BUILD_ERROR: &str = "Command \"npm run build\" exited with 1";

/// Request-log entries kept by the simulator (`/_sim/stats`).
const MAX_LOG: usize = 50_000;

/// How the simulator behaves; `POST /_sim/faults` changes it at run time.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The only Bearer token accepted.
    pub token: String,
    /// Seconds from creation to READY/ERROR (BUILDING after 20% of it).
    pub build_secs: f64,
    /// Requests allowed per fixed 60 s window; `None` = unlimited.
    pub rate_limit_per_min: Option<u32>,
    /// Probability (0..1) that an authorized API call answers 500.
    pub fail_rate: f64,
    /// Delay added to every API response.
    pub latency_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            token: "sim-token".into(),
            build_secs: 2.0,
            rate_limit_per_min: None,
            fail_rate: 0.0,
            latency_ms: 0,
        }
    }
}

/// A running simulator; `stop` shuts it down.
pub struct SimServer {
    /// Base URL to give a client, e.g. `http://127.0.0.1:43121`.
    pub url: String,
    /// The bound port (useful when started with port 0).
    pub port: u16,
    /// Stops the actix server.
    handle: ServerHandle,
    /// The simulator state, for the shutdown log line.
    state: Arc<Mutex<Inner>>,
}

impl SimServer {
    /// Stop accepting connections and finish in-flight requests.
    pub async fn stop(self) {
        let requests = lock(&self.state).log.len();
        self.handle.stop(true).await;
        tracing::debug!(requests, "vercel simulator stopped");
    }
}

/// A simulated deployment; its state is derived from `created_ms`, `build_ms` and `canceled_ms`.
#[derive(Debug, Clone)]
struct Deployment {
    /// `dpl_` + 24 alphanumerics.
    id: String,
    /// Hostname `<name>-<random>.vercel.app` (no scheme, as Vercel returns it).
    url: String,
    /// The project's name (Vercel names deployments after their project).
    name: String,
    /// Owning project id.
    project_id: String,
    /// `teamId` of the creating request, else the user id.
    owner_id: String,
    /// `production` / `staging`; `None` is preview (Vercel reports `target: null`).
    target: Option<String>,
    /// The checked `gitSource` of the request, echoed back.
    git_source: Option<Value>,
    /// String metadata from the request (plus the git keys Vercel adds).
    meta: Map<String, Value>,
    /// `source` as Vercel reports it (`cli`, `git`, `redeploy`).
    source: &'static str,
    /// Creation time, epoch ms.
    created_ms: i64,
    /// Build duration captured at creation, so a new `build_secs` only affects new deployments.
    build_ms: i64,
    /// Ends in ERROR instead of READY (project name starts with `error-`).
    fails: bool,
    /// Set by cancel; freezes the state at CANCELED.
    canceled_ms: Option<i64>,
}

impl Deployment {
    fn building_ms(&self) -> i64 {
        self.created_ms.saturating_add(self.build_ms / 5)
    }
    fn done_ms(&self) -> i64 {
        self.created_ms.saturating_add(self.build_ms)
    }
    fn state(&self, now: i64) -> ReadyState {
        match self.canceled_ms {
            Some(_) => ReadyState::Canceled,
            None if now < self.building_ms() => ReadyState::Queued,
            None if now < self.done_ms() => ReadyState::Building,
            None if self.fails => ReadyState::Error,
            None => ReadyState::Ready,
        }
    }
    fn inspector_url(&self) -> String {
        let short = self.id.trim_start_matches("dpl_");
        format!("https://vercel.com/{USERNAME}/{}/{short}", self.name)
    }
}

/// A simulated project, created by the first deployment that names it.
#[derive(Debug, Clone)]
struct Project {
    /// `prj_` + 28 alphanumerics.
    id: String,
    /// Project name (lookups accept id or name).
    name: String,
    /// Creation time, epoch ms.
    created_ms: i64,
    /// The deployment serving production (set by promote / rollback).
    production: Option<String>,
}

/// One line of the `/_sim/stats` request log.
#[derive(Debug, Clone)]
struct LogEntry {
    /// Finds the entry when the status is known (indexes shift after a reset).
    seq: u64,
    /// HTTP method.
    method: String,
    /// Request path without the query string.
    path: String,
    /// Response status; 0 while the request is in flight.
    status: u16,
    /// Arrival time, epoch ms.
    at_ms: i64,
}

/// Everything the simulator knows; behind a std Mutex that is never held across an await.
#[derive(Debug, Default)]
struct Inner {
    /// Current settings (faults change latency, build time, fail rate and limit).
    config: SimConfig,
    /// Deployments in creation order.
    deployments: Vec<Deployment>,
    /// Projects in creation order.
    projects: Vec<Project>,
    /// API requests in arrival order (the newest [`MAX_LOG`]).
    log: Vec<LogEntry>,
    /// Next `LogEntry::seq`.
    next_seq: u64,
    /// Deployments created per project name.
    created: BTreeMap<String, u64>,
    /// 429 responses served.
    rate_limited: u64,
    /// Start of the current fixed rate-limit window, epoch ms.
    window_start_ms: i64,
    /// Calls counted in the current window.
    window_count: u32,
    /// After a 429, every call before this time (epoch ms) is refused too, as Vercel does.
    blocked_until_ms: i64,
    /// The next n API calls answer 500.
    fail_next: u64,
    /// The next n API calls answer 429.
    rate_limit_next: u64,
    /// `Retry-After` of forced 429s.
    retry_after_secs: u64,
}

type State = web::Data<Mutex<Inner>>;
fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn random_chars(n: usize, lowercase_only: bool) -> String {
    const CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let max = if lowercase_only { 36 } else { CHARS.len() };
    (0..n)
        .map(|_| CHARS[rand::random_range(0..max)] as char)
        .collect()
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": {"code": code, "message": message.into()}}))
}

fn bad_request(message: impl Into<String>) -> HttpResponse {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn not_found(what: &str) -> HttpResponse {
    let status = StatusCode::NOT_FOUND;
    error(status, "not_found", format!("{what} not found"))
}

fn internal_error() -> HttpResponse {
    let (status, msg) = (
        StatusCode::INTERNAL_SERVER_ERROR,
        "An unexpected internal error occurred",
    );
    error(status, "internal_server_error", msg)
}

/// Bind 127.0.0.1:port (0 = any free port) and spawn the server on the current actix System.
pub async fn start(config: SimConfig, port: u16) -> std::io::Result<SimServer> {
    let inner = Inner {
        config,
        retry_after_secs: 1,
        ..Inner::default()
    };
    let state = Arc::new(Mutex::new(inner));
    let data: State = web::Data::from(state.clone());
    let server = HttpServer::new(move || {
        let st = data.clone();
        App::new()
            .app_data(data.clone())
            .wrap_fn(move |req, srv| track(&st, req, srv))
            .configure(endpoints)
            .default_service(web::to(no_route))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", port))?;
    let port = server.addrs().first().map_or(port, |a| a.port());
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    let url = format!("http://127.0.0.1:{port}");
    Ok(SimServer {
        url,
        port,
        handle,
        state,
    })
}

/// The Vercel endpoints and the `/_sim/*` control endpoints.
fn endpoints(cfg: &mut web::ServiceConfig) {
    cfg.service(api("/v2/user", web::get().to(get_user)))
        .service(api("/v13/deployments", web::post().to(create_deployment)))
        .service(api(
            "/v13/deployments/{idOrUrl}",
            web::get().to(get_deployment),
        ))
        .service(api("/v6/deployments", web::get().to(list_deployments)))
        .service(api("/v12/deployments/{id}/cancel", web::patch().to(cancel)))
        .service(api(
            "/v10/projects/{p}/promote/{d}",
            web::post().to(set_production),
        ))
        .service(api(
            "/v1/projects/{p}/rollback/{d}",
            web::post().to(set_production),
        ))
        .service(api("/v9/projects/{idOrName}", web::get().to(get_project)))
        .route("/_sim/stats", web::get().to(sim_stats))
        .route("/_sim/faults", web::post().to(sim_faults))
        .route("/_sim/reset", web::post().to(sim_reset));
}

/// Vercel's JSON 404 for a path it does not serve.
async fn no_route(req: HttpRequest) -> HttpResponse {
    let msg = format!("The route {} does not exist", req.path());
    error(StatusCode::NOT_FOUND, "not_found", msg)
}

/// A Vercel resource: one method, a JSON 405 for the others.
fn api(path: &str, route: Route) -> Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            )
        }))
}

fn parse_query(qs: &str) -> Result<HashMap<String, String>, String> {
    web::Query::<HashMap<String, String>>::from_query(qs)
        .map(web::Query::into_inner)
        .map_err(|e| format!("Invalid query string: {e}"))
}

/// The query of a call the gate already checked.
fn query(req: &HttpRequest) -> HashMap<String, String> {
    parse_query(req.query_string()).unwrap_or_default()
}

async fn sim_stats(state: State) -> HttpResponse {
    let g = lock(&state);
    let entry = |e: &LogEntry| json!({"method": e.method, "path": e.path, "status": e.status, "at_ms": e.at_ms});
    let requests: Vec<Value> = g.log.iter().map(entry).collect();
    let body = json!({"requests": requests, "deployments_created": g.created, "rate_limited": g.rate_limited});
    HttpResponse::Ok().json(body)
}

/// The body of `POST /_sim/faults`; every field is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    /// The next n API calls answer 500.
    fail_next: Option<u64>,
    /// The next n API calls answer 429.
    rate_limit_next: Option<u64>,
    /// `Retry-After` (seconds) of those 429s.
    retry_after_secs: Option<u64>,
    /// Delay added to every API response.
    latency_ms: Option<u64>,
    /// Build duration of deployments created from now on.
    build_secs: Option<f64>,
    /// Probability of a random 500.
    fail_rate: Option<f64>,
    /// New per-minute limit; `null` removes it (hence the raw `Value`).
    rate_limit_per_min: Option<Value>,
}

async fn sim_faults(state: State, body: web::Bytes) -> HttpResponse {
    let f: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return bad_request(format!("Invalid faults: {e}")),
    };
    if f.build_secs.is_some_and(|x| !(0.0..=86_400.0).contains(&x)) {
        return bad_request("`build_secs` should be between 0 and 86400.");
    }
    if f.fail_rate.is_some_and(|x| !(0.0..=1.0).contains(&x)) {
        return bad_request("`fail_rate` should be between 0 and 1.");
    }
    let limit = match &f.rate_limit_per_min {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(Some(n)),
            None => {
                return bad_request(
                    "`rate_limit_per_min` should be a non-negative integer or null.",
                );
            }
        },
    };
    let mut g = lock(&state);
    g.fail_next = f.fail_next.unwrap_or(g.fail_next);
    g.rate_limit_next = f.rate_limit_next.unwrap_or(g.rate_limit_next);
    g.retry_after_secs = f
        .retry_after_secs
        .map_or(g.retry_after_secs, |s| s.min(86_400));
    g.config.latency_ms = f
        .latency_ms
        .map_or(g.config.latency_ms, |ms| ms.min(600_000));
    g.config.build_secs = f.build_secs.unwrap_or(g.config.build_secs);
    g.config.fail_rate = f.fail_rate.unwrap_or(g.config.fail_rate);
    g.config.rate_limit_per_min = limit.unwrap_or(g.config.rate_limit_per_min);
    HttpResponse::Ok().json(json!({
        "fail_next": g.fail_next, "rate_limit_next": g.rate_limit_next,
        "retry_after_secs": g.retry_after_secs, "latency_ms": g.config.latency_ms,
        "build_secs": g.config.build_secs, "fail_rate": g.config.fail_rate,
        "rate_limit_per_min": g.config.rate_limit_per_min,
    }))
}

async fn sim_reset(state: State) -> HttpResponse {
    let mut g = lock(&state);
    g.log.clear();
    g.created.clear();
    g.rate_limited = 0;
    (g.window_start_ms, g.window_count, g.blocked_until_ms) = (0, 0, 0);
    (g.fail_next, g.rate_limit_next) = (0, 0);
    HttpResponse::Ok().json(json!({"reset": true}))
}
