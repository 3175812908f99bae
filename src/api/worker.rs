//! Pool and queue endpoints: status of every instance, cluster-wide start/stop/restart, queue
//! statistics, pause/resume of priorities.
//!
//! Pool commands are recorded in Redis (`QueueStore::set_control`); every instance reads them
//! every second and converges, so one API call reaches the whole cluster (or one instance with
//! `{"instance": id}`). The local instance is nudged at once.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tracing::info;

use super::auth::{Admin, Viewer};
use super::error::ApiError;
use super::tasks::{json_object, read_body};
use super::{AppState, InstanceStatus, WorkerStatus};
use crate::pool::supervisor::{CheckControl, GetSnapshot};
use crate::queue::{MAX_CONCURRENCY, PoolCommand, PoolStatus};
use crate::task::Priority;

fn uptime_secs(started_at: &str) -> f64 {
    DateTime::parse_from_rfc3339(started_at)
        .map(|t| {
            (Utc::now() - t.with_timezone(&Utc))
                .num_milliseconds()
                .max(0) as f64
                / 1000.0
        })
        .unwrap_or(0.0)
}

async fn instances(state: &AppState) -> Result<Vec<InstanceStatus>, ApiError> {
    Ok(state
        .store
        .instances()
        .await?
        .into_iter()
        .map(|h| InstanceStatus {
            uptime_secs: uptime_secs(&h.started_at),
            heartbeat: h,
        })
        .collect())
}

/// Every live instance (dead ones age out when their heartbeat expires).
#[utoipa::path(get, path = "/api/worker/status", tag = "worker",
    responses((status = 200, body = WorkerStatus)), security(("bearer" = [])))]
pub async fn status(state: web::Data<AppState>, _auth: Viewer) -> Result<HttpResponse, ApiError> {
    let list = instances(&state).await?;
    let any = |s: PoolStatus| list.iter().any(|i| i.heartbeat.status == Some(s));
    let overall = if any(PoolStatus::Running) {
        PoolStatus::Running
    } else if any(PoolStatus::Error) {
        PoolStatus::Error
    } else {
        PoolStatus::Stopped
    };
    Ok(HttpResponse::Ok().json(WorkerStatus {
        status: overall,
        count: list.len(),
        instances: list,
    }))
}

/// Queue and worker summary (the guide's "check the queue depth").
#[utoipa::path(get, path = "/stats", tag = "queue",
    responses((status = 200, description = "queue statistics plus the live instances")),
    security(("bearer" = [])))]
pub async fn stats(state: web::Data<AppState>, _auth: Viewer) -> Result<HttpResponse, ApiError> {
    let queue = state.store.stats().await?;
    let list = instances(&state).await?;
    let local = state.supervisor.send(GetSnapshot).await.ok();
    Ok(HttpResponse::Ok().json(json!({
        "queue": queue,
        "workers": {
            "instances": list.len(),
            "running": list
                .iter()
                .filter(|i| i.heartbeat.status == Some(PoolStatus::Running))
                .count(),
            "consumers": list.iter().map(|i| i.heartbeat.consumers).sum::<u64>(),
            "in_flight": list.iter().map(|i| i.heartbeat.in_flight).sum::<u64>(),
        },
        "this_instance": local,
    })))
}

/// Queue statistics: pending per priority, in flight, retrying, failed, paused, rates, oldest age.
#[utoipa::path(get, path = "/api/queue/stats", tag = "queue",
    responses((status = 200, body = crate::queue::QueueStats)), security(("bearer" = [])))]
pub async fn queue_stats(
    state: web::Data<AppState>,
    _auth: Viewer,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.store.stats().await?))
}

/// `{"instance": id?, "config": {"concurrency": N}?}`
fn control_args(
    body: serde_json::Map<String, Value>,
    allow_config: bool,
) -> Result<(Option<String>, Option<usize>), ApiError> {
    let mut instance = None;
    let mut concurrency = None;
    for (k, v) in body {
        match (k.as_str(), v) {
            ("instance", Value::Null) => {}
            ("instance", Value::String(s)) if !s.is_empty() => instance = Some(s),
            ("instance", _) => {
                return Err(ApiError::invalid(
                    "instance",
                    "must be an instance id (string)",
                ));
            }
            ("config", Value::Null) if allow_config => {}
            ("config", Value::Object(c)) if allow_config => {
                for (ck, cv) in c {
                    match ck.as_str() {
                        "concurrency" => {
                            concurrency = Some(
                                cv.as_u64()
                                    .and_then(|n| usize::try_from(n).ok())
                                    .filter(|n| (1..=MAX_CONCURRENCY).contains(n))
                                    .ok_or_else(|| {
                                        ApiError::invalid(
                                            "config.concurrency",
                                            format!(
                                                "must be an integer from 1 to {MAX_CONCURRENCY}"
                                            ),
                                        )
                                    })?,
                            )
                        }
                        other => {
                            return Err(ApiError::invalid(
                                &format!("config.{other}"),
                                "unknown setting (supported: concurrency)",
                            ));
                        }
                    }
                }
            }
            ("config", _) if allow_config => {
                return Err(ApiError::invalid("config", "must be a JSON object"));
            }
            (other, _) => return Err(ApiError::invalid(other, "unknown field")),
        }
    }
    Ok((instance, concurrency))
}

async fn command(
    state: web::Data<AppState>,
    who: &str,
    payload: web::Payload,
    command: PoolCommand,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.body_limit).await?;
    let allow_config = command != PoolCommand::Stop;
    let (instance, concurrency) = control_args(json_object(&body)?, allow_config)?;
    if let Some(id) = &instance
        && !state
            .store
            .instances()
            .await?
            .iter()
            .any(|h| &h.instance == id)
    {
        return Err(ApiError::NotFound(format!("no live instance named {id}")));
    }
    let control = state
        .store
        .set_control(instance.as_deref(), command, concurrency)
        .await?;
    info!(command = command.as_str(), by = who, instance = ?instance, concurrency = ?concurrency,
        "pool command recorded");
    state.supervisor.do_send(CheckControl);
    Ok(HttpResponse::Accepted().json(json!({
        "command": command,
        "scope": if instance.is_some() { "instance" } else { "cluster" },
        "instance": instance,
        "concurrency": concurrency,
        "control": control,
    })))
}

/// One pool-command endpoint: the handler only names its command.
macro_rules! pool_command {
    ($name:ident, $path:literal, $command:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "worker", request_body = Option<Object>,
            responses((status = 202, description = "recorded; instances converge within a second"),
                      (status = 400), (status = 404),
                      (status = 415, description = "a body that is not application/json")),
            security(("bearer" = [])))]
        pub async fn $name(
            state: web::Data<AppState>,
            auth: Admin,
            payload: web::Payload,
        ) -> Result<HttpResponse, ApiError> {
            command(state, &auth.0.sub, payload, $command).await
        }
    };
}

pool_command!(
    start,
    "/api/worker/start",
    PoolCommand::Start,
    "Start the pool on every instance (or one). Accepts `{\"config\": {\"concurrency\": N}}`."
);
pool_command!(
    stop,
    "/api/worker/stop",
    PoolCommand::Stop,
    "Stop the pool on every instance (or one): running tasks finish, waiting ones stay pending."
);
pool_command!(
    restart,
    "/api/worker/restart",
    PoolCommand::Restart,
    "Restart the pool on every instance (or one). Accepts `{\"config\": {\"concurrency\": N}}`."
);

fn priorities(body: serde_json::Map<String, Value>) -> Result<Vec<Priority>, ApiError> {
    let list = match body.get("priorities") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(_) => {
            return Err(ApiError::invalid(
                "priorities",
                "must be a non-empty list such as [\"P3\"]",
            ));
        }
        None => {
            return Err(ApiError::invalid(
                "priorities",
                "is required, e.g. {\"priorities\": [\"P3\"]}",
            ));
        }
    };
    if let Some(k) = body.keys().find(|k| *k != "priorities") {
        return Err(ApiError::invalid(k, "unknown field"));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            let field = format!("priorities[{i}]");
            let s = v
                .as_str()
                .ok_or_else(|| ApiError::invalid(&field, "must be a string"))?;
            s.parse::<Priority>()
                .map_err(|e| ApiError::invalid(&field, e.to_string()))
        })
        .collect()
}

/// Pause (or resume) the priorities named in the body; answers the paused set.
async fn change_pause(
    state: web::Data<AppState>,
    payload: web::Payload,
    pause: bool,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.body_limit).await?;
    let ps = priorities(json_object(&body)?)?;
    if pause {
        state.store.pause(&ps).await?;
    } else {
        state.store.resume(&ps).await?;
    }
    Ok(HttpResponse::Ok().json(json!({"paused": state.store.paused().await?})))
}

/// Pause priorities cluster-wide; their tasks stay pending.
#[utoipa::path(post, path = "/api/queue/pause", tag = "queue", request_body = Object,
    responses((status = 200, description = "the paused priorities now"), (status = 400),
              (status = 415, description = "a body that is not application/json")),
    security(("bearer" = [])))]
pub async fn pause(
    state: web::Data<AppState>,
    _auth: Admin,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    change_pause(state, payload, true).await
}

/// Resume paused priorities.
#[utoipa::path(post, path = "/api/queue/resume", tag = "queue", request_body = Object,
    responses((status = 200, description = "the paused priorities now"), (status = 400),
              (status = 415, description = "a body that is not application/json")),
    security(("bearer" = [])))]
pub async fn resume(
    state: web::Data<AppState>,
    _auth: Admin,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    change_pause(state, payload, false).await
}
