//! Task endpoints: submit, read, cancel, retry, and the recent / failed listings (delete and
//! the bulk actions are in `bulk.rs`).

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde_json::{Value, json};

use super::auth::{Admin, Agent, Viewer};
use super::error::ApiError;
use super::{AppState, TaskList};
use crate::queue::{Cursor, ListIndex, ListQuery};
use crate::task::{NewTask, ParseError, Priority, TaskRecord, TaskStatus, TaskType};

/// Most rows one listing returns (`limit` is capped to this).
pub const LIMIT_MAX: usize = 100;

/// Read the body up to the configured limit (413 beyond it); the same reader as the body rules.
pub async fn read_body(payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    super::guard::read_all(payload.into_inner(), limit).await
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

/// A JSON string field (null = absent), else 400 naming `field`.
pub(super) fn text_value(field: &str, v: Value) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(ApiError::invalid(field, "must be a string")),
    }
}

/// A JSON non-negative integer field that fits a u32 (null = absent), else 400 naming `field`.
pub(super) fn u32_value(field: &str, v: Value) -> Result<Option<u32>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| ApiError::invalid(field, "must be a non-negative integer")),
        _ => Err(ApiError::invalid(field, "must be a non-negative integer")),
    }
}

/// Build a [`NewTask`] from a JSON body, checking each field's JSON type so errors name it.
pub fn new_task_from_json(m: serde_json::Map<String, Value>) -> Result<NewTask, ApiError> {
    let mut t = NewTask::default();
    for (k, v) in m {
        match k.as_str() {
            "type" => t.task_type = text_value(&k, v)?,
            "priority" => t.priority = text_value(&k, v)?,
            "source" => t.source = text_value(&k, v)?,
            "idempotency_key" => t.idempotency_key = text_value(&k, v)?,
            "run_at" => t.run_at = text_value(&k, v)?,
            "trace_id" => t.trace_id = text_value(&k, v)?,
            "payload" => t.payload = Some(v),
            "metadata" => t.metadata = Some(v),
            "max_retries" => t.max_retries = u32_value(&k, v)?,
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
              (status = 408, description = "the body did not arrive within 10 s"),
              (status = 413, description = "body too large"),
              (status = 415, description = "a body that is not application/json")),
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

/// A character a task id may hold in a path or a prefix.
fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

pub(super) fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 128 || !id.chars().all(is_id_char) {
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
    let status = super::bulk::cancel_one(&state.store, &id).await?;
    Ok(HttpResponse::Ok().json(json!({"task_id": *id, "status": status})))
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
    super::bulk::retry_one(&state.store, &id).await?;
    let record = state.store.get(&id).await?;
    let record = record.ok_or_else(|| ApiError::NotFound(format!("task {id} not found")))?;
    Ok(HttpResponse::Ok().json(record))
}

/// Longest accepted `id_prefix` (a whole task id is at most 128 characters).
pub const ID_PREFIX_MAX: usize = 128;

/// One optional query parameter parsed with `FromStr`; an empty value counts as absent, and a bad
/// one is a 400 naming the parameter.
fn param<T: std::str::FromStr<Err = ParseError>>(
    q: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    match q.get(name).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e: ParseError| ApiError::invalid(name, e.to_string())),
    }
}

/// `id_prefix`: up to [`ID_PREFIX_MAX`] characters from the task id alphabet.
fn id_prefix(q: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    match q.get("id_prefix").map(String::as_str) {
        None | Some("") => Ok(None),
        Some(p) if p.len() > ID_PREFIX_MAX => Err(ApiError::invalid(
            "id_prefix",
            format!("must be at most {ID_PREFIX_MAX} characters"),
        )),
        Some(p) if !p.chars().all(is_id_char) => Err(ApiError::invalid(
            "id_prefix",
            "may only contain A-Z a-z 0-9 - _ .",
        )),
        Some(p) => Ok(Some(p.to_string())),
    }
}

/// The listing query of `index` from the query string: `limit` (default 10, capped at
/// [`LIMIT_MAX`]), `status`, `type`, `priority`, `id_prefix` and `cursor`.
fn listing_query(q: &HashMap<String, String>, index: ListIndex) -> Result<ListQuery, ApiError> {
    let limit = match q.get("limit").map(String::as_str) {
        None | Some("") => 10,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiError::invalid("limit", "must be a positive integer"))?
            .min(LIMIT_MAX),
    };
    let cursor = match q.get("cursor").map(String::as_str) {
        None | Some("") => None,
        Some(c) => Some(Cursor::parse(c).ok_or_else(|| {
            ApiError::invalid(
                "cursor",
                "not a cursor of this listing (pass next_cursor of the previous page unchanged)",
            )
        })?),
    };
    Ok(ListQuery {
        index,
        limit,
        cursor,
        status: param::<TaskStatus>(q, "status")?,
        task_type: param::<TaskType>(q, "type")?,
        priority: param::<Priority>(q, "priority")?,
        id_prefix: id_prefix(q)?,
    })
}

/// Run a listing and answer its page.
async fn list_page(
    state: &AppState,
    q: &HashMap<String, String>,
    index: ListIndex,
) -> Result<HttpResponse, ApiError> {
    let query = listing_query(q, index)?;
    let page = state.store.list(&query).await?;
    Ok(HttpResponse::Ok().json(TaskList {
        count: page.tasks.len(),
        limit: query.limit,
        tasks: page.tasks,
        next_cursor: page.next.map(|c| c.to_string()),
    }))
}

/// The most recently changed tasks, newest first, filtered and paged in Redis.
#[utoipa::path(get, path = "/api/tasks/recent", tag = "tasks",
    params(
        ("limit" = Option<usize>, Query, description = "rows, default 10, at most 100"),
        ("status" = Option<TaskStatus>, Query, description = "only this status"),
        ("type" = Option<TaskType>, Query, description = "only this task type"),
        ("priority" = Option<Priority>, Query, description = "only this priority, P0..P3"),
        ("id_prefix" = Option<String>, Query, description = "only ids starting with this (at most 128 of A-Z a-z 0-9 - _ .)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page; absent for the first page")),
    responses((status = 200, description = "one page; it examines at most max(10 * limit, 100) index entries, so it may be short or empty while next_cursor is not null", body = TaskList),
              (status = 400, description = "invalid parameter, named in error.field")),
    security(("bearer" = [])))]
pub async fn recent(
    state: web::Data<AppState>,
    _auth: Viewer,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    list_page(&state, &q, ListIndex::Recent).await
}

/// Dead-lettered tasks, newest first, filtered and paged in Redis.
#[utoipa::path(get, path = "/api/tasks/failed", tag = "tasks",
    params(
        ("limit" = Option<usize>, Query, description = "rows, default 10, at most 100"),
        ("status" = Option<TaskStatus>, Query, description = "only this status (a replayed task has left the set)"),
        ("type" = Option<TaskType>, Query, description = "only this task type"),
        ("priority" = Option<Priority>, Query, description = "only this priority, P0..P3"),
        ("id_prefix" = Option<String>, Query, description = "only ids starting with this (at most 128 of A-Z a-z 0-9 - _ .)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page; absent for the first page")),
    responses((status = 200, description = "one page; it examines at most max(10 * limit, 100) index entries, so it may be short or empty while next_cursor is not null", body = TaskList),
              (status = 400, description = "invalid parameter, named in error.field")),
    security(("bearer" = [])))]
pub async fn failed(
    state: web::Data<AppState>,
    _auth: Viewer,
    q: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    list_page(&state, &q, ListIndex::Failed).await
}
