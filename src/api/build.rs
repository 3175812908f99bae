//! `GET /tasks/{id}/build`: a deploy task's live progress (the Vercel states seen, with when, and
//! the build log so far).

use actix_web::{HttpResponse, web};

use super::AppState;
use super::auth::Viewer;
use super::error::ApiError;
use super::tasks::check_id;
use crate::queue::build::BuildProgress;

/// A task's build progress (empty lists for a task that has none).
#[utoipa::path(get, path = "/tasks/{id}/build", tag = "tasks",
    params(("id" = String, Path, description = "task id")),
    responses((status = 200, body = BuildProgress), (status = 404)),
    security(("bearer" = [])))]
pub async fn progress(
    state: web::Data<AppState>,
    _auth: Viewer,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_id(&id)?;
    if state.store.get(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("task {id} not found")));
    }
    Ok(HttpResponse::Ok().json(state.store.build_progress(&id).await?))
}
