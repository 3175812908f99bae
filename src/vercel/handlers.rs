//! The Vercel task types: `deploy` (alias `deployment`), `redeploy`, `promote`, `rollback`,
//! `cancel`, `check`. Every call goes through the VercelActor ([`VercelApi`]).
//!
//! `deploy` creates the deployment, stores its id on the task record at once, then polls until
//! READY / ERROR / CANCELED (the consumer renews the lease meanwhile). A retried or reclaimed
//! attempt finds the stored id and resumes polling that deployment: one task never creates two.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::Addr;
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use super::client::{
    ApiRequest, CreateDeployment, Deployment, DeploymentList, VercelError, decode, requests,
};
use super::gateway::{Call, VercelActor};
use crate::handlers::{HandlerFuture, HandlerRegistry, TaskContext, TaskError, TaskHandler};
use crate::queue::QueueStore;
use crate::task::{DEPLOYMENT_FIELDS, PROJECT_FIELDS, TaskRecord, TaskType};

/// A handle on the VercelActor.
#[derive(Clone)]
pub struct VercelApi {
    addr: Addr<VercelActor>,
}

impl VercelApi {
    pub fn new(addr: Addr<VercelActor>) -> Self {
        Self { addr }
    }

    pub async fn call(&self, req: ApiRequest) -> Result<Value, VercelError> {
        self.addr
            .send(Call {
                request: req,
                span: tracing::Span::current(),
            })
            .await
            .map_err(|e| VercelError::Transport(format!("Vercel actor unavailable: {e}")))?
    }
}

/// How deploys wait for their outcome.
#[derive(Debug, Clone, Copy)]
pub struct DeployPolling {
    pub interval: Duration,
    pub timeout: Duration,
}

/// Register every Vercel task type.
pub fn register(registry: &mut HandlerRegistry, api: VercelApi, polling: DeployPolling) {
    registry.register(
        TaskType::Deploy,
        DeployHandler {
            api: api.clone(),
            polling,
        },
    );
    registry.register(
        TaskType::Redeploy,
        DeployHandler {
            api: api.clone(),
            polling,
        },
    );
    for ty in [
        TaskType::Promote,
        TaskType::Rollback,
        TaskType::Cancel,
        TaskType::Check,
    ] {
        registry.register(ty, OperationHandler { api: api.clone() });
    }
}

fn to_task_error(e: VercelError) -> TaskError {
    if e.retryable() {
        TaskError::Retryable(e.to_string())
    } else {
        TaskError::Permanent(e.to_string())
    }
}

fn first_str(payload: &Value, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| payload.get(*n).and_then(Value::as_str))
        .map(str::to_string)
}

/// Stringify a scalar payload value for Vercel's string-only `meta`.
fn meta_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Build the create-deployment arguments from a deploy/redeploy payload.
pub fn deployment_args(record: &TaskRecord, name: String) -> CreateDeployment {
    let p = &record.payload;
    let mut meta = BTreeMap::new();
    if let Some(Value::Object(m)) = p.get("meta") {
        for (k, v) in m {
            if let Some(s) = meta_value(v) {
                meta.insert(k.clone(), s);
            }
        }
    }
    for (key, names) in [
        ("pr", &["pr", "pr_number", "prNumber"][..]),
        ("branch", &["branch", "ref"][..]),
        ("commit", &["commit", "sha"][..]),
    ] {
        if let Some(v) = names.iter().find_map(|n| p.get(*n).and_then(meta_value)) {
            meta.insert(key.into(), v);
        }
    }
    meta.insert("ops_task_id".into(), record.task_id.to_string());
    meta.insert("ops_trace_id".into(), record.trace_id.clone());
    let git_source = p.get("gitSource").cloned().or_else(|| {
        // `repo: "org/name"` plus a branch/ref (and optional commit) → a GitHub source.
        let repo = p.get("repo").and_then(Value::as_str)?;
        let (org, name) = repo.split_once('/')?;
        let git_ref = first_str(p, &["branch", "ref"])?;
        let mut g = json!({"type": "github", "org": org, "repo": name, "ref": git_ref});
        if let Some(sha) = first_str(p, &["commit", "sha"]) {
            g["sha"] = json!(sha);
        }
        Some(g)
    });
    CreateDeployment {
        name: name.clone(),
        project: first_str(p, &["project", "projectId"]),
        target: first_str(p, &["target"]),
        git_source,
        deployment_id: if record.task_type == TaskType::Redeploy {
            first_str(p, &DEPLOYMENT_FIELDS)
        } else {
            None
        },
        meta,
    }
}

async fn emit(store: &QueueStore, event: &str, record: &TaskRecord, extra: Value) {
    let mut body = Map::new();
    body.insert("type".into(), json!(record.task_type.as_str()));
    body.insert("trace_id".into(), json!(record.trace_id));
    if let Value::Object(m) = extra {
        body.extend(m);
    }
    let id = record.task_id.to_string();
    if let Err(e) = store.emit_event(event, Some(&id), body).await {
        warn!(error = %e, event, "could not emit event");
    }
}

fn outcome(d: &Deployment, project: &str) -> Value {
    json!({
        "deployment_id": d.deployment_id(),
        "url": d.url,
        "state": d.ready_state(),
        "project": project,
        "target": d.target,
    })
}

/// A deployment of `project` whose `meta.ops_task_id` is this task (created by an earlier attempt).
async fn find_own_deployment(
    api: &VercelApi,
    project: &str,
    task_id: &str,
) -> Result<Option<String>, TaskError> {
    let list: DeploymentList = decode(
        api.call(requests::project_deployments(project, 20))
            .await
            .map_err(to_task_error)?,
    )
    .map_err(to_task_error)?;
    Ok(list
        .deployments
        .into_iter()
        .find(|d| {
            d.meta
                .as_ref()
                .and_then(|m| m.get("ops_task_id"))
                .and_then(Value::as_str)
                == Some(task_id)
        })
        .and_then(|d| d.deployment_id().map(str::to_string)))
}

/// The `gitSource` for the repository linked to `project` (None when it has no link or is new).
async fn linked_git_source(
    api: &VercelApi,
    project: &str,
    git_ref: Option<String>,
) -> Result<Option<Value>, TaskError> {
    let project = match api.call(requests::get_project(project)).await {
        Ok(p) => p,
        Err(VercelError::Client { status: 404, .. }) => return Ok(None),
        Err(e) => return Err(to_task_error(e)),
    };
    Ok(git_source_from_link(&project["link"], git_ref))
}

/// Map a project's `link` to the matching `gitSource` shape of POST /v13/deployments.
pub fn git_source_from_link(link: &Value, git_ref: Option<String>) -> Option<Value> {
    let kind = link.get("type")?.as_str()?;
    let git_ref = git_ref
        .or_else(|| link.get("productionBranch")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "main".into());
    match kind {
        "github" | "github-limited" | "github-custom-host" => {
            let kind = if kind == "github-custom-host" {
                "github"
            } else {
                kind
            };
            match link.get("repoId").filter(|v| !v.is_null()) {
                Some(id) => Some(json!({"type": kind, "ref": git_ref, "repoId": id})),
                None => Some(json!({"type": kind, "ref": git_ref,
                                    "org": link.get("org")?, "repo": link.get("repo")?})),
            }
        }
        "gitlab" => {
            Some(json!({"type": "gitlab", "ref": git_ref, "projectId": link.get("projectId")?}))
        }
        "bitbucket" => Some(json!({"type": "bitbucket", "ref": git_ref,
                                   "workspaceUuid": link.get("workspaceUuid")?,
                                   "repoUuid": link.get("uuid")?})),
        _ => None,
    }
}

/// Store the deployment id on the record, retrying through a short Redis outage: if it is lost, a
/// later attempt would create a second deployment.
async fn remember_deployment(store: &QueueStore, task_id: &str, deployment: &str) {
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=6 {
        match store.set_deployment_id(task_id, deployment).await {
            Ok(_) => return,
            Err(e) if attempt < 6 => {
                warn!(error = %e, attempt, "could not store the deployment id yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(e) => warn!(
                error = %e,
                deployment_id = deployment,
                "could not store the deployment id; a retry of this task may create another deployment"
            ),
        }
    }
}

struct DeployHandler {
    api: VercelApi,
    polling: DeployPolling,
}

impl TaskHandler for DeployHandler {
    fn run(&self, ctx: TaskContext) -> HandlerFuture {
        let api = self.api.clone();
        let polling = self.polling;
        Box::pin(async move { deploy(api, polling, ctx).await })
    }
}

async fn deploy(
    api: VercelApi,
    polling: DeployPolling,
    ctx: TaskContext,
) -> Result<Value, TaskError> {
    let TaskContext { record, store } = ctx;
    let task_id = record.task_id.to_string();
    let mut project = first_str(&record.payload, &PROJECT_FIELDS);

    let deployment_id = match &record.deployment_id {
        Some(id) => {
            info!(deployment_id = %id, "resuming the deployment an earlier attempt created");
            id.clone()
        }
        None => {
            let name = match project.clone() {
                Some(p) => p,
                None => {
                    // A redeploy naming only the deployment: take the name from it.
                    let id = first_str(&record.payload, &DEPLOYMENT_FIELDS).unwrap_or_default();
                    let d: Deployment = decode(
                        api.call(requests::get_deployment(&id))
                            .await
                            .map_err(to_task_error)?,
                    )
                    .map_err(to_task_error)?;
                    d.name.clone().unwrap_or(id)
                }
            };
            project.get_or_insert_with(|| name.clone());
            if record.attempts > 1
                && let Some(id) = find_own_deployment(&api, &name, &task_id).await?
            {
                // An earlier attempt created it but died (or lost Vercel's answer) before the
                // id was stored: resume it instead of creating a second deployment.
                info!(deployment_id = %id, "found the deployment an earlier attempt created");
                remember_deployment(&store, &task_id, &id).await;
                id
            } else {
                let mut args = deployment_args(&record, name);
                if args.git_source.is_none() && args.deployment_id.is_none() {
                    // No source named (e.g. the guide's {"service": "test"}): build from the branch
                    // (payload `branch`, else the production branch) of the project's linked repo.
                    let git_ref = first_str(&record.payload, &["branch", "ref"]);
                    args.git_source = linked_git_source(&api, &args.name, git_ref).await?;
                }
                let created: Deployment = decode(
                    api.call(requests::create_deployment(&args))
                        .await
                        .map_err(to_task_error)?,
                )
                .map_err(to_task_error)?;
                let id = created
                    .deployment_id()
                    .ok_or_else(|| {
                        TaskError::Retryable("Vercel returned a deployment without an id".into())
                    })?
                    .to_string();
                // Remember it before anything else can fail, so no later attempt creates another.
                remember_deployment(&store, &task_id, &id).await;
                info!(deployment_id = %id, url = ?created.url, "deployment created");
                emit(
                    &store,
                    "deploy.started",
                    &record,
                    json!({"deployment_id": id, "project": project, "url": created.url}),
                )
                .await;
                id
            }
        }
    };
    let project = project.unwrap_or_default();

    let started = Instant::now();
    loop {
        let d: Deployment = decode(
            api.call(requests::get_deployment(&deployment_id))
                .await
                .map_err(to_task_error)?,
        )
        .map_err(to_task_error)?;
        match d.ready_state() {
            "READY" => {
                info!(deployment_id = %deployment_id, "deployment READY");
                let result = outcome(&d, &project);
                emit(&store, "deploy.succeeded", &record, result.clone()).await;
                return Ok(result);
            }
            state @ ("ERROR" | "CANCELED" | "BLOCKED") => {
                let why = d.error_message.clone().unwrap_or_default();
                emit(&store, "deploy.failed", &record, outcome(&d, &project)).await;
                return Err(TaskError::Permanent(format!(
                    "deployment {deployment_id} ended in {state}{}{why}",
                    if why.is_empty() { "" } else { ": " }
                )));
            }
            _ if started.elapsed() >= polling.timeout => {
                return Err(TaskError::Retryable(format!(
                    "deployment {deployment_id} still {} after {} s; the next attempt resumes it",
                    d.ready_state(),
                    polling.timeout.as_secs()
                )));
            }
            _ => tokio::time::sleep(polling.interval).await,
        }
    }
}

struct OperationHandler {
    api: VercelApi,
}

impl TaskHandler for OperationHandler {
    fn run(&self, ctx: TaskContext) -> HandlerFuture {
        let api = self.api.clone();
        Box::pin(async move { operation(api, ctx).await })
    }
}

async fn operation(api: VercelApi, ctx: TaskContext) -> Result<Value, TaskError> {
    let TaskContext { record, store } = ctx;
    let p = &record.payload;
    let project = first_str(p, &PROJECT_FIELDS);
    let deployment = first_str(p, &DEPLOYMENT_FIELDS);
    let need = |v: Option<String>, field: &str| {
        v.ok_or_else(|| {
            TaskError::Permanent(format!("invalid payload: payload.{field}: is required"))
        })
    };
    match record.task_type {
        TaskType::Promote | TaskType::Rollback => {
            let (project, deployment) = (
                need(project, "project")?,
                need(deployment, "deployment_id")?,
            );
            let req = if record.task_type == TaskType::Promote {
                requests::promote(&project, &deployment)
            } else {
                requests::rollback(&project, &deployment)
            };
            api.call(req).await.map_err(to_task_error)?;
            let result = json!({"project": project, "deployment_id": deployment,
                                "action": record.task_type.as_str()});
            if record.task_type == TaskType::Rollback {
                emit(&store, "deploy.rolled_back", &record, result.clone()).await;
            }
            Ok(result)
        }
        TaskType::Cancel => {
            let id = need(deployment, "deployment_id")?;
            let d: Deployment = decode(
                api.call(requests::cancel_deployment(&id))
                    .await
                    .map_err(to_task_error)?,
            )
            .map_err(to_task_error)?;
            Ok(outcome(&d, project.as_deref().unwrap_or_default()))
        }
        TaskType::Check => {
            let d =
                match (deployment, &project) {
                    (Some(id), _) => decode::<Deployment>(
                        api.call(requests::get_deployment(&id))
                            .await
                            .map_err(to_task_error)?,
                    )
                    .map_err(to_task_error)?,
                    (None, Some(project)) => {
                        let target = first_str(p, &["target"]);
                        let list: DeploymentList = decode(
                            api.call(requests::latest_deployment(project, target.as_deref()))
                                .await
                                .map_err(to_task_error)?,
                        )
                        .map_err(to_task_error)?;
                        list.deployments.into_iter().next().ok_or_else(|| {
                            TaskError::Permanent(format!("project {project} has no deployments"))
                        })?
                    }
                    (None, None) => return Err(TaskError::Permanent(
                        "invalid payload: payload.deployment_id: is required (or payload.project)"
                            .into(),
                    )),
                };
            Ok(outcome(&d, project.as_deref().unwrap_or_default()))
        }
        other => Err(TaskError::Permanent(format!(
            "the Vercel operation handler does not run `{other}` tasks"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::NewTask;

    #[test]
    fn linked_repositories_become_git_sources() {
        let gh = json!({"type": "github", "repoId": 123, "productionBranch": "main", "org": "o", "repo": "r"});
        assert_eq!(
            git_source_from_link(&gh, None),
            Some(json!({"type": "github", "ref": "main", "repoId": 123}))
        );
        let gl = json!({"type": "gitlab", "projectId": "9", "productionBranch": "prod"});
        assert_eq!(
            git_source_from_link(&gl, Some("fix".into())),
            Some(json!({"type": "gitlab", "ref": "fix", "projectId": "9"}))
        );
        assert_eq!(git_source_from_link(&Value::Null, None), None);
    }

    #[test]
    fn bug_fix_payload_becomes_git_source_and_meta() {
        let rec = NewTask {
            task_type: Some("deploy".into()),
            payload: Some(
                json!({"project": "web", "repo": "acme/web", "branch": "fix/login",
                                  "commit": "abc123", "pr": 42, "target": "production"}),
            ),
            ..Default::default()
        }
        .validate(3, chrono::Utc::now())
        .unwrap();
        let args = deployment_args(&rec, "web".into());
        assert_eq!(
            args.git_source,
            Some(
                json!({"type":"github","org":"acme","repo":"web","ref":"fix/login","sha":"abc123"})
            )
        );
        assert_eq!(args.meta["pr"], "42");
        assert_eq!(args.meta["branch"], "fix/login");
        assert_eq!(args.target.as_deref(), Some("production"));
        assert_eq!(args.deployment_id, None);
    }
}
