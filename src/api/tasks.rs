//! Task endpoints: submit, read, cancel, retry, and the recent / failed listings.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use chrono::Utc;
use futures::StreamExt;
use serde_json::{Value, json};

use super::auth::{Admin, Agent, Viewer};
use super::error::ApiError;
use super::{AppState, TaskList};
use crate::queue::{CancelOutcome, RECENT_MAX, ReplayOutcome, status_text};
use crate::task::{NewTask, ParseError, TaskRecord, TaskStatus, TaskType};

/// Most rows one listing returns (`limit` is capped to this).
pub const LIMIT_MAX: usize = 100;

/// Read the body up to the configured limit (413 beyond it).
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => ApiError::TooLarge(limit),
            other => ApiError::invalid("body", format!("could not read the body: {other}")),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parse a JSON object body, naming what is wrong (an empty body is `{}`).
pub fn json_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid("body", "must be a JSON object")),
        Err(e) => Err(ApiError::invalid("body", format!("invalid JSON: {e}"))),
    }
}

/// Build a [`NewTask`] from a JSON body, checking each field's JSON type so errors name it.
pub fn new_task_from_json(m: serde_json::Map<String, Value>) -> Result<NewTask, ApiError> {
    let mut t = NewTask::default();
    for (k, v) in m {
        let text = |v: Value| -> Result<Option<String>, ApiError> {
            match v {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s)),
                _ => Err(ApiError::invalid(&k, "must be a string")),
            }
        };
        match k.as_str() {
            "type" => t.task_type = text(v)?,
            "priority" => t.priority = text(v)?,
            "source" => t.source = text(v)?,
            "idempotency_key" => t.idempotency_key = text(v)?,
            "run_at" => t.run_at = text(v)?,
            "trace_id" => t.trace_id = text(v)?,
            "payload" => t.payload = Some(v),
            "metadata" => t.metadata = Some(v),
            "max_retries" => {
                t.max_retries =
                    match v {
                        Value::Null => None,
                        Value::Number(n) => {
                            Some(n.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(
                                || ApiError::invalid(&k, "must be a non-negative integer"),
                            )?)
                        }
                        _ => return Err(ApiError::invalid(&k, "must be a non-negative integer")),
                    }
            }
            _ => {
                return Err(ApiError::invalid(
                    &k,
                    "unknown field (expected type, priority, payload, source, max_retries, \
                     idempotency_key, run_at, trace_id, metadata)",
                ));
            }
        }
    }
    Ok(t)
}

/// Submit a task.
#[utoipa::path(post, path = "/tasks", tag = "tasks", request_body = Object,
    responses((status = 201, description = "created (or the existing task of an idempotency key, 200)", body = TaskRecord),
              (status = 400, description = "invalid field, named in error.field"),
              (status = 413, description = "body too large")),
    security(("bearer" = [])))]
pub async fn submit(
    state: web::Data<AppState>,
    _auth: Agent,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.body_limit).await?;
    let mut new = new_task_from_json(json_object(&body)?)?;
    if new.source.is_none() {
        new.source = Some("api".into());
    }
    let now = Utc::now();
    let record = new
        .validate(state.default_max_retries, now)
        .map_err(ApiError::Invalid)?;
    state
        .submit
        .check(&record, now)
        .map_err(ApiError::Invalid)?;
    let (id, created) = state
        .store
        .enqueue(std::slice::from_ref(&record))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Unavailable("the queue did not answer the submission".into()))?;
    if created {
        Ok(HttpResponse::Created().json(record))
    } else {
        match state.store.get(&id).await? {
            Some(existing) => Ok(HttpResponse::Ok().json(existing)),
            None => Err(ApiError::NotFound(format!("task {id} not found"))),
        }
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::invalid("id", "not a task id"));
    }
    Ok(())
}

/// One task's record.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "task id")),
    responses((status = 200, body = TaskRecord), (status = 404)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    _auth: Viewer,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_id(&id)?;
    match state.store.get(&id).await? {
        Some(r) => Ok(HttpResponse::Ok().json(r)),
        None => Err(ApiError::NotFound(format!("task {id} not found"))),
    }
}

/// Cancel a task: waiting ones at once, a running one at its next lease renewal.
#[utoipa::path(post, path = "/tasks/{id}/cancel", tag = "tasks",
    params(("id" = String, Path, description = "task id")),
    responses((status = 200, description = "cancelled or cancelling"), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn cancel(
    state: web::Data<AppState>,
    _auth: Agent,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_id(&id)?;
    match state.store.cancel(&id).await? {
        CancelOutcome::Cancelled => {
            Ok(HttpResponse::Ok().json(json!({"task_id": *id, "status": "cancelled"})))
        }
        CancelOutcome::Cancelling => {
            Ok(HttpResponse::Ok().json(json!({"task_id": *id, "status": "cancelling"})))
        }
        CancelOutcome::NotFound => Err(ApiError::NotFound(format!("task {id} not found"))),
        CancelOutcome::NotCancellable(s) => Err(ApiError::Conflict(format!(
            "task {id} is already {}; nothing to cancel",
            status_text(s)
        ))),
    }
}

/// Replay a failed (dead-lettered) task.
#[utoipa::path(post, path = "/tasks/{id}/retry", tag = "tasks",
    params(("id" = String, Path, description = "task id")),
    responses((status = 200, body = TaskRecord), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn retry(
    state: web::Data<AppState>,
    _auth: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_id(&id)?;
    match state.store.replay(&id).await? {
        ReplayOutcome::Replayed => match state.store.get(&id).await? {
            Some(r) => Ok(HttpResponse::Ok().json(r)),
            None => Err(ApiError::NotFound(format!("task {id} not found"))),
        },
        ReplayOutcome::NotFound => Err(ApiError::NotFound(format!("task {id} not found"))),
        ReplayOutcome::Stub => Err(ApiError::Conflict(format!(
            "task {id} is a dead-lettered stub with no task behind it; nothing to retry"
        ))),
        ReplayOutcome::NotFailed(s) => Err(ApiError::Conflict(format!(
            "task {id} is {}; only failed tasks can be retried",
            status_text(s)
        ))),
    }
}

/// `limit` (default 10, capped at [`LIMIT_MAX`]), `status`, `type`.
fn listing_params(
    q: &HashMap<String, String>,
) -> Result<(usize, Option<TaskStatus>, Option<TaskType>), ApiError> {
    let limit = match q.get("limit").map(String::as_str) {
        None | Some("") => 10,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiError::invalid("limit", "must be a positive integer"))?
            .min(LIMIT_MAX),
    };
    let status = match q.get("status").map(String::as_str) {
        None | Some("") => None,
        Some(s) => Some(
            s.parse()
                .map_err(|e: ParseError| ApiError::invalid("status", e.to_string()))?,
        ),
    };
    let ty = match q.get("type").map(String::as_str) {
        None | Some("") => None,
        Some(s) => Some(
            s.parse()
                .map_err(|e: ParseError| ApiError::invalid("type", e.to_string()))?,
        ),
    };
    Ok((limit, status, ty))
}

fn filtered(
    records: Vec<TaskRecord>,
    limit: usize,
    status: Option<TaskStatus>,
    ty: Option<TaskType>,
) -> Vec<TaskRecord> {
    records
        .into_iter()
        .filter(|r| status.is_none_or(|s| r.status == s) && ty.is_none_or(|t| r.task_type == t))
        .take(limit)
        .collect()
}

/// The most recently changed tasks, newest first.
#[utoipa::path(get, path = "/api/tasks/recent", tag = "tasks",
    params(("limit" = Option<usize>, Query, description = "rows, default 10, at most 100"),
           ("status" = Option<String>, Query, description = "only this status"),
           ("type" = Option<String>, Query, description = "only this task type")),
    responses((status = 200, body = TaskList), (status = 400)),
    security(("bearer" = [])))]
pub async fn recent(
    state: web::Data<AppState>,
    _auth: Viewer,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let (limit, status, ty) = listing_params(&q)?;
    let fetch = if status.is_some() || ty.is_some() {
        RECENT_MAX as usize
    } else {
        limit
    };
    let tasks = filtered(state.store.recent(fetch).await?, limit, status, ty);
    Ok(HttpResponse::Ok().json(TaskList {
        count: tasks.len(),
        limit,
        tasks,
    }))
}

/// Dead-lettered tasks, newest first.
#[utoipa::path(get, path = "/api/tasks/failed", tag = "tasks",
    params(("limit" = Option<usize>, Query, description = "rows, default 10, at most 100"),
           ("type" = Option<String>, Query, description = "only this task type")),
    responses((status = 200, body = TaskList), (status = 400)),
    security(("bearer" = [])))]
pub async fn failed(
    state: web::Data<AppState>,
    _auth: Viewer,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let (limit, _, ty) = listing_params(&q)?;
    let fetch = if ty.is_some() {
        RECENT_MAX as usize
    } else {
        limit
    };
    let tasks = filtered(state.store.failed(fetch).await?, limit, None, ty);
    Ok(HttpResponse::Ok().json(TaskList {
        count: tasks.len(),
        limit,
        tasks,
    }))
}
