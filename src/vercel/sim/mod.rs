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
//! - `GET /v3/deployments/{idOrUrl}/events`: the build log so far (`since` in ms, exclusive,
//!   `limit`, `direction`), lines appearing as the simulated build reaches them.
//!
//! A deployment's state follows from its age: QUEUED, BUILDING after 20% of `build_secs`, READY at
//! `build_secs` (ERROR with `errorCode`/`errorMessage` when the project name starts with `error-`);
//! a canceled deployment stays CANCELED. Successful response bodies conform to Vercel's OpenAPI
//! schema (tests/vercel_contract.rs validates them); errors are `{"error":{"code","message"}}`.
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
//!   answers the current settings; `hold_builds: true` freezes every running build (new ones stay
//!   QUEUED) until `hold_builds: false`.
//! - `GET /_sim/sites/{host}/{path}` and `POST /_sim/sites`: the deployments' simulated sites,
//!   what release verifications GET (see `site.rs`).
//! - `POST /_sim/reset`: clears the request log, the counters, the pending faults and the rate-limit
//!   window (deployments, projects and settings stay).

mod bodies;
mod build_log;
mod control;
mod gate;
mod routes;
mod site;
mod state;

use build_log::deployment_events;
use control::{sim_faults, sim_reset, sim_stats};
use gate::track;
use routes::*;
use state::{Deployment, Inner, LogEntry, Project, State, lock, now_ms, random_chars};

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
    /// What the sites of deployments created from now on answer (as `POST /_sim/sites` with a
    /// status), for an in-process caller such as the demo.
    pub fn set_site_status(&self, status: u16) {
        lock(&self.state).site = state::Site { status, body: None };
    }

    /// A release `verify.url` that checks a deployment's simulated site (`{url}` is its host).
    pub fn site_url(&self) -> String {
        format!("{}/_sim/sites/{{url}}/", self.url)
    }

    /// Stop accepting connections and finish in-flight requests.
    pub async fn stop(self) {
        let requests = lock(&self.state).log.len();
        self.handle.stop(true).await;
        tracing::debug!(requests, "vercel simulator stopped");
    }
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
        .service(api(
            "/v3/deployments/{idOrUrl}/events",
            web::get().to(deployment_events),
        ))
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
        .route("/_sim/reset", web::post().to(sim_reset))
        .route("/_sim/sites", web::post().to(site::set_site))
        .route("/_sim/sites/{host}/{tail:.*}", web::get().to(site::site));
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
