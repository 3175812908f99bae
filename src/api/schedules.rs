//! `/api/schedules`: recurring tasks. Viewers list them; admins add, replace and remove them.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::AppState;
use super::auth::{Admin, Viewer};
use super::error::ApiError;
use super::tasks::{json_object, read_body, text_value, u32_value};
use crate::queue::schedules::ScheduleEntry;
use crate::task::ScheduleSpec;

/// Every schedule, by name, with its next tick.
#[utoipa::path(get, path = "/api/schedules", tag = "schedules",
    responses((status = 200, body = [ScheduleEntry])),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, _auth: Viewer) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.store.schedules().await?))
}

/// Add a schedule, or replace the one of the same name.
#[utoipa::path(post, path = "/api/schedules", tag = "schedules", request_body = ScheduleSpec,
    responses((status = 201, body = ScheduleEntry),
              (status = 400, description = "invalid field, named in error.field"),
              (status = 415, description = "a body that is not application/json")),
    security(("bearer" = [])))]
pub async fn add(
    state: web::Data<AppState>,
    _auth: Admin,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.body_limit).await?;
    let spec = spec_from_json(json_object(&body)?)?;
    let now = Utc::now();
    let schedule = spec
        .validate(state.default_max_retries, &state.submit, now)
        .map_err(ApiError::Invalid)?;
    let first = schedule
        .next_after(now)
        .ok_or_else(|| ApiError::invalid("cron", "never fires"))?;
    state.store.put_schedule(&schedule, first).await?;
    Ok(HttpResponse::Created().json(ScheduleEntry {
        schedule,
        next_tick: Some(first),
    }))
}

/// Remove a schedule.
#[utoipa::path(delete, path = "/api/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "schedule name")),
    responses((status = 200, description = "removed"), (status = 404)),
    security(("bearer" = [])))]
pub async fn remove(
    state: web::Data<AppState>,
    _auth: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if state.store.remove_schedule(&name).await? {
        Ok(HttpResponse::Ok().json(json!({"removed": name.as_str()})))
    } else {
        Err(ApiError::NotFound(format!("no schedule named {name}")))
    }
}

/// Build a [`ScheduleSpec`] from a JSON body, checking each field's JSON type so errors name it.
fn spec_from_json(m: Map<String, Value>) -> Result<ScheduleSpec, ApiError> {
    let mut spec = ScheduleSpec::default();
    for (k, v) in m {
        match k.as_str() {
            "name" => spec.name = text_value(&k, v)?,
            "cron" => spec.cron = text_value(&k, v)?,
            "tz" => spec.tz = text_value(&k, v)?,
            "type" => spec.task_type = text_value(&k, v)?,
            "priority" => spec.priority = text_value(&k, v)?,
            "payload" => spec.payload = Some(v),
            "max_retries" => spec.max_retries = u32_value(&k, v)?,
            _ => {
                return Err(ApiError::invalid(
                    &k,
                    "unknown field (expected name, cron, tz, type, priority, payload, max_retries)",
                ));
            }
        }
    }
    Ok(spec)
}
