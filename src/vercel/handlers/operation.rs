//! `promote`, `rollback`, `cancel` and `check`: one Vercel call each.

use serde_json::{Value, json};

use super::{VercelApi, emit, fetch, not_mine, outcome, to_task_error};
use crate::handlers::{HandlerFuture, TaskContext, TaskError, TaskHandler};
use crate::task::{Cancel, Check, Payload, ProductionChange};
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
    let TaskContext {
        record,
        payload,
        store,
    } = ctx;
    match &payload {
        Payload::Promote(change) => {
            api.call(requests::promote(&change.project, &change.deployment_id))
                .await
                .map_err(to_task_error)?;
            Ok(production_result(change, "promote"))
        }
        Payload::Rollback(change) => {
            api.call(requests::rollback(&change.project, &change.deployment_id))
                .await
                .map_err(to_task_error)?;
            let result = production_result(change, "rollback");
            emit(&store, "deploy.rolled_back", &record, result.clone()).await;
            Ok(result)
        }
        Payload::Cancel(cancel) => cancel_deployment(&api, cancel).await,
        Payload::Check(check) => check_deployment(&api, check).await,
        _ => Err(not_mine("operation", record.task_type)),
    }
}

/// The result of a promote or rollback (also the `deploy.rolled_back` event body).
fn production_result(change: &ProductionChange, action: &str) -> Value {
    json!({"project": change.project, "deployment_id": change.deployment_id, "action": action})
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
