//! Operator actions on one or many tasks: `DELETE /tasks/{id}` (a dead letter, for good) and
//! `POST /api/tasks/bulk` (`retry`, `delete` or `cancel` for up to [`BULK_MAX`] ids, answered
//! per id). The single-task routes of `tasks.rs` share the per-task steps here, so one task and a
//! list of them get the same answers.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Admin, Role, Viewer, require};
use super::error::ApiError;
use super::tasks::{check_id, json_object, read_body};
use crate::queue::{CancelOutcome, DeleteOutcome, QueueStore, ReplayOutcome, status_text};

/// Most ids one bulk request may name.
pub const BULK_MAX: usize = 100;

/// What a bulk request does to each id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Replay a dead letter (admin).
    Retry,
    /// Delete a dead letter (admin).
    Delete,
    /// Cancel a waiting or running task (agent).
    Cancel,
}

impl Action {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "retry" => Some(Action::Retry),
            "delete" => Some(Action::Delete),
            "cancel" => Some(Action::Cancel),
            _ => None,
        }
    }

    /// The role the single-task route of the action needs.
    fn role(self) -> Role {
        match self {
            Action::Retry | Action::Delete => Role::Admin,
            Action::Cancel => Role::Agent,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::Delete => "delete",
            Action::Cancel => "cancel",
        }
    }
}

/// What happened to one id of a bulk request.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResult {
    /// The id, as given.
    pub task_id: String,
    /// Whether the action was applied.
    pub ok: bool,
    /// The task's status after the action (`pending` after a retry, `cancelled` or `cancelling`
    /// after a cancel, `deleted` after a delete); null when it failed.
    pub status: Option<String>,
    /// Why it failed: `{code, message}` as the single-task route would answer (`not_found`,
    /// `conflict`, `unavailable`, ...); null when it succeeded.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// `POST /api/tasks/bulk`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkReport {
    /// The action applied.
    pub action: String,
    /// Ids the action was applied to.
    pub succeeded: usize,
    /// Ids it could not be applied to (see their `error`).
    pub failed: usize,
    /// One entry per id, in the order given.
    pub results: Vec<BulkResult>,
}

/// Cancel one task: `cancelled` or `cancelling`.
pub(super) async fn cancel_one(store: &QueueStore, id: &str) -> Result<&'static str, ApiError> {
    match store.cancel(id).await? {
        CancelOutcome::Cancelled => Ok("cancelled"),
        CancelOutcome::Cancelling => Ok("cancelling"),
        CancelOutcome::NotFound => Err(ApiError::NotFound(format!("task {id} not found"))),
        CancelOutcome::NotCancellable(s) => Err(ApiError::Conflict(format!(
            "task {id} is already {}; nothing to cancel",
            status_text(s)
        ))),
    }
}

/// Replay one dead letter (it is `pending` again).
pub(super) async fn retry_one(store: &QueueStore, id: &str) -> Result<(), ApiError> {
    match store.replay(id).await? {
        ReplayOutcome::Replayed => Ok(()),
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

/// Delete one dead letter for good.
async fn delete_one(store: &QueueStore, id: &str) -> Result<(), ApiError> {
    match store.delete_failed(id).await? {
        DeleteOutcome::Deleted => Ok(()),
        DeleteOutcome::NotFound => Err(ApiError::NotFound(format!("task {id} not found"))),
        DeleteOutcome::NotFailed(s) => Err(ApiError::Conflict(format!(
            "task {id} is {}; only failed tasks can be deleted",
            status_text(s)
        ))),
    }
}

/// Delete a dead-lettered task for good.
#[utoipa::path(delete, path = "/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "task id")),
    responses((status = 200, description = "deleted: {task_id, status: \"deleted\"}"),
              (status = 404), (status = 409, description = "the task is not failed")),
    security(("bearer" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    _auth: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_id(&id)?;
    delete_one(&state.store, &id).await?;
    Ok(HttpResponse::Ok().json(json!({"task_id": *id, "status": "deleted"})))
}

/// The body's action and ids, each problem a 400 naming its field.
fn parse_bulk(body: &[u8]) -> Result<(Action, Vec<String>), ApiError> {
    let mut m = json_object(body)?;
    if let Some(k) = m.keys().find(|k| *k != "action" && *k != "ids") {
        return Err(ApiError::invalid(k, "unknown field (expected action, ids)"));
    }
    let action = match m.remove("action") {
        Some(Value::String(s)) => Action::parse(&s)
            .ok_or_else(|| ApiError::invalid("action", "must be retry, delete or cancel"))?,
        Some(_) => return Err(ApiError::invalid("action", "must be a string")),
        None => {
            return Err(ApiError::invalid(
                "action",
                "is required (retry, delete or cancel)",
            ));
        }
    };
    let ids = match m.remove("ids") {
        Some(Value::Array(ids)) => ids,
        Some(_) => return Err(ApiError::invalid("ids", "must be a list of task ids")),
        None => return Err(ApiError::invalid("ids", "is required (a list of task ids)")),
    };
    if ids.is_empty() || ids.len() > BULK_MAX {
        return Err(ApiError::invalid(
            "ids",
            format!("must hold 1 to {BULK_MAX} task ids"),
        ));
    }
    let mut out = Vec::with_capacity(ids.len());
    for (i, v) in ids.into_iter().enumerate() {
        let field = format!("ids[{i}]");
        let Value::String(id) = v else {
            return Err(ApiError::invalid(&field, "must be a string"));
        };
        check_id(&id).map_err(|_| ApiError::invalid(&field, "not a task id"))?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok((action, out))
}

/// Apply `action` to one id.
async fn apply(store: &QueueStore, action: Action, id: String) -> BulkResult {
    let done = match action {
        Action::Retry => retry_one(store, &id).await.map(|()| "pending"),
        Action::Delete => delete_one(store, &id).await.map(|_| "deleted"),
        Action::Cancel => cancel_one(store, &id).await,
    };
    match done {
        Ok(status) => BulkResult {
            task_id: id,
            ok: true,
            status: Some(status.to_string()),
            error: None,
        },
        Err(e) => BulkResult {
            task_id: id,
            ok: false,
            status: None,
            error: Some(json!({"code": e.code(), "message": e.to_string()})),
        },
    }
}

/// Retry, delete or cancel many tasks at once; answered per id.
#[utoipa::path(post, path = "/api/tasks/bulk", tag = "tasks", request_body = Object,
    responses((status = 200, description = "applied to each id in turn; each result says whether it worked", body = BulkReport),
              (status = 400, description = "invalid field (action, ids, ids[i]), named in error.field"),
              (status = 403, description = "retry and delete need admin, cancel agent")),
    security(("bearer" = [])))]
pub async fn bulk(
    state: web::Data<AppState>,
    auth: Viewer,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, state.body_limit).await?;
    let (action, ids) = parse_bulk(&body)?;
    require(&auth.0, action.role())?;
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        results.push(apply(&state.store, action, id).await);
    }
    let succeeded = results.iter().filter(|r| r.ok).count();
    Ok(HttpResponse::Ok().json(BulkReport {
        action: action.as_str().into(),
        succeeded,
        failed: results.len() - succeeded,
        results,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(body: &str) -> String {
        match parse_bulk(body.as_bytes()) {
            Err(ApiError::Invalid(v)) => v.field.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bulk_bodies_are_checked_field_by_field() {
        assert_eq!(field(r#"{"ids": ["a"]}"#), "action");
        assert_eq!(field(r#"{"action": "zap", "ids": ["a"]}"#), "action");
        assert_eq!(field(r#"{"action": "retry"}"#), "ids");
        assert_eq!(field(r#"{"action": "retry", "ids": []}"#), "ids");
        assert_eq!(field(r#"{"action": "retry", "ids": ["a", 3]}"#), "ids[1]");
        assert_eq!(
            field(r#"{"action": "retry", "ids": ["a", "b/c"]}"#),
            "ids[1]"
        );
        assert_eq!(field(r#"{"action": "retry", "ids": ["a"], "x": 1}"#), "x");
        let (a, ids) = parse_bulk(br#"{"action": "cancel", "ids": ["a", "b", "a"]}"#).unwrap();
        assert_eq!(a, Action::Cancel);
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(Action::Cancel.role(), Role::Agent);
        assert_eq!(Action::Delete.role(), Role::Admin);
    }
}
