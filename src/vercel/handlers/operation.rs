//! `promote`, `rollback`, `cancel` and `check`: one Vercel call each (a rollback without a
//! deployment id first finds the project's last known good release). All but `check` (and a
//! `cancel` naming no project) first hold their project's lock.

use serde_json::{Value, json};
use tracing::warn;

use super::{VercelApi, emit, fetch, lookup, not_mine, outcome, to_task_error};
use crate::handlers::{HandlerFuture, TaskContext, TaskError, TaskHandler};
use crate::queue::QueueStore;
use crate::queue::releases::{ReleaseSource, ReleaseStatus};
use crate::task::{Cancel, Check, Payload, Rollback, TaskRecord};
use crate::vercel::client::{Deployment, DeploymentList, requests};

/// Runs `promote`, `rollback`, `cancel` and `check` tasks.
pub(super) struct OperationHandler {
    /// The VercelActor.
    pub(super) api: VercelApi,
}

impl TaskHandler for OperationHandler {
    fn run(&self, ctx: TaskContext) -> HandlerFuture {
        let api = self.api.clone();
        Box::pin(async move { operation(api, ctx).await })
    }
}

async fn operation(api: VercelApi, ctx: TaskContext) -> Result<Value, TaskError> {
    // One change per project at a time; reads (`check`) never wait.
    if let Some(project) = ctx.payload.changed_project() {
        ctx.hold_project(project).await?;
    }
    let TaskContext {
        record,
        payload,
        store,
        ..
    } = ctx;
    match &payload {
        Payload::Promote(change) => {
            api.call(requests::promote(&change.project, &change.deployment_id))
                .await
                .map_err(to_task_error)?;
            let (project, id) = (&change.project, &change.deployment_id);
            super::deploy::record_release(
                &store,
                &record,
                project,
                id,
                None,
                ReleaseSource::Promote,
            )
            .await;
            Ok(production_result(project, id, "promote"))
        }
        Payload::Rollback(rollback) => roll_back(&api, &store, &record, rollback).await,
        Payload::Cancel(cancel) => cancel_deployment(&api, cancel).await,
        Payload::Check(check) => check_deployment(&api, check).await,
        _ => Err(not_mine("operation", record.task_type)),
    }
}

/// The result of a promote or rollback (also the `deploy.rolled_back` event body).
fn production_result(project: &str, deployment_id: &str, action: &str) -> Value {
    json!({"project": project, "deployment_id": deployment_id, "action": action})
}

/// Point production back at the named deployment, or at the last known good release other than
/// the one production serves now; the release rolled away from is never chosen again.
async fn roll_back(
    api: &VercelApi,
    store: &QueueStore,
    record: &TaskRecord,
    rollback: &Rollback,
) -> Result<Value, TaskError> {
    let project = &rollback.project;
    let current = current_production(api, project).await?;
    let target = match &rollback.deployment_id {
        Some(id) => id.clone(),
        None => last_known_good(store, project, current.as_deref()).await?,
    };
    api.call(requests::rollback(project, &target))
        .await
        .map_err(to_task_error)?;
    if let Some(bad) = current.filter(|c| *c != target)
        && let Err(e) = store
            .mark_release(project, &bad, ReleaseStatus::RolledBack)
            .await
    {
        warn!(error = %e, deployment_id = %bad, "could not mark the release as rolled back");
    }
    let mut result = production_result(project, &target, "rollback");
    result["chosen"] = json!(if rollback.deployment_id.is_some() {
        "given"
    } else {
        "last_known_good"
    });
    emit(store, "deploy.rolled_back", record, result.clone()).await;
    Ok(result)
}

/// The project's newest production deployment (what production serves unless rolled back);
/// `None` when the project has none (Vercel answers 404 for a project without deployments).
async fn current_production(api: &VercelApi, project: &str) -> Result<Option<String>, TaskError> {
    let req = requests::latest_deployment(project, Some("production"));
    let list: Option<DeploymentList> = lookup(api, req).await?;
    Ok(list
        .and_then(|l| l.deployments.into_iter().next())
        .and_then(|d| d.deployment_id().map(str::to_string)))
}

/// Where a rollback without a deployment id goes.
async fn last_known_good(
    store: &QueueStore,
    project: &str,
    current: Option<&str>,
) -> Result<String, TaskError> {
    let release = store
        .last_known_good(project, current)
        .await
        .map_err(|e| TaskError::Retryable(format!("cannot read the known-good releases: {e}")))?;
    release.map(|r| r.deployment_id).ok_or_else(|| {
        TaskError::Permanent(format!(
            "project {project} has no known-good release to roll back to (other than the one in \
             production); name a deploymentId"
        ))
    })
}

async fn cancel_deployment(api: &VercelApi, cancel: &Cancel) -> Result<Value, TaskError> {
    let d: Deployment = fetch(api, requests::cancel_deployment(&cancel.deployment_id)).await?;
    Ok(outcome(&d, cancel.project.as_deref().unwrap_or_default()))
}

async fn check_deployment(api: &VercelApi, check: &Check) -> Result<Value, TaskError> {
    match check {
        Check::Deployment {
            deployment_id,
            project,
        } => {
            let d: Deployment = fetch(api, requests::get_deployment(deployment_id)).await?;
            Ok(outcome(&d, project.as_deref().unwrap_or_default()))
        }
        Check::Latest { project, target } => {
            let req = requests::latest_deployment(project, target.as_deref());
            let list: DeploymentList = fetch(api, req).await?;
            let d = list.deployments.into_iter().next().ok_or_else(|| {
                TaskError::Permanent(format!("project {project} has no deployments"))
            })?;
            Ok(outcome(&d, project))
        }
    }
}
