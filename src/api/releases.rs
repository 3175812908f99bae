//! `GET /api/projects/{project}/releases`: a project's known-good releases, newest first (what a
//! `rollback` without a deployment id goes back to).

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Viewer;
use super::error::ApiError;
use crate::queue::releases::Release;

/// Longest project name or id accepted in the path (Vercel's are far shorter).
const PROJECT_MAX: usize = 100;

/// The releases of one project.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseList {
    /// The project, as given.
    pub project: String,
    /// Newest first; the first `good` one other than production's current deployment is the
    /// rollback target.
    pub releases: Vec<Release>,
}

/// A project's known-good releases.
#[utoipa::path(get, path = "/api/projects/{project}/releases", tag = "deployments",
    params(("project" = String, Path, description = "project name or id, as given in task payloads")),
    responses((status = 200, body = ReleaseList), (status = 400)),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    _auth: Viewer,
    project: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let project = project.into_inner();
    if project.is_empty()
        || project.len() > PROJECT_MAX
        || !project
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::invalid(
            "project",
            format!("a project name or id: up to {PROJECT_MAX} of A-Z a-z 0-9 - _ ."),
        ));
    }
    let releases = state.store.releases(&project).await?;
    Ok(HttpResponse::Ok().json(ReleaseList { project, releases }))
}
