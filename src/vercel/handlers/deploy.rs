//! `deploy` and `redeploy`: create (or resume) a deployment and wait for its outcome.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{info, warn};

use super::git::{linked_git_source, payload_git_source};
use super::{DeployPolling, VercelApi, emit, fetch, lookup, not_mine, outcome};
use crate::handlers::{HandlerFuture, TaskContext, TaskError, TaskHandler};
use crate::queue::QueueStore;
use crate::queue::releases::{Release, ReleaseSource, ReleaseStatus};
use crate::task::{Build, Payload, TaskRecord};
use crate::vercel::client::{CreateDeployment, Deployment, DeploymentList, ReadyState, requests};

/// Runs `deploy` and `redeploy` tasks.
pub(super) struct DeployHandler {
    /// The VercelActor.
    pub(super) api: VercelApi,
    /// How long and how often to poll the deployment.
    pub(super) polling: DeployPolling,
}

impl TaskHandler for DeployHandler {
    fn run(&self, ctx: TaskContext) -> HandlerFuture {
        let api = self.api.clone();
        let polling = self.polling;
        Box::pin(async move { deploy(api, polling, ctx).await })
    }
}

/// A deploy or a redeploy, as the deploy handler needs it.
#[derive(Debug, Clone, Copy)]
pub struct DeployJob<'a> {
    /// The deployment name the payload gives (always set for a deploy).
    pub name: Option<&'a str>,
    /// The deployment a redeploy rebuilds; None for a deploy.
    pub redeploy_of: Option<&'a str>,
    /// Source, target and labels of the new deployment.
    pub build: &'a Build,
}

impl<'a> DeployJob<'a> {
    /// The job a deploy or redeploy payload describes; None for any other payload.
    pub fn of(payload: &'a Payload) -> Option<Self> {
        match payload {
            Payload::Deploy(d) => Some(DeployJob {
                name: Some(&d.name),
                redeploy_of: None,
                build: &d.build,
            }),
            Payload::Redeploy(r) => Some(DeployJob {
                name: r.name.as_deref(),
                redeploy_of: Some(&r.deployment_id),
                build: &r.build,
            }),
            _ => None,
        }
    }
}

/// Build the create-deployment arguments of a job named `name`, tagged with the task's id and
/// trace id (`meta.ops_task_id` is how a later attempt finds it).
pub fn deployment_args(job: &DeployJob<'_>, record: &TaskRecord, name: String) -> CreateDeployment {
    let mut meta = job.build.meta.clone();
    meta.insert("ops_task_id".into(), record.task_id.to_string());
    meta.insert("ops_trace_id".into(), record.trace_id.clone());
    CreateDeployment {
        name,
        project: job.build.project.clone(),
        target: job.build.target.clone(),
        git_source: payload_git_source(job.build),
        deployment_id: job.redeploy_of.map(str::to_string),
        meta,
    }
}

/// What every step of one deploy attempt shares.
pub(super) struct Attempt<'a> {
    /// The VercelActor.
    pub(super) api: &'a VercelApi,
    /// The queue, for the deployment id and events.
    pub(super) store: &'a QueueStore,
    /// The task being run.
    pub(super) record: &'a TaskRecord,
}

async fn deploy(
    api: VercelApi,
    polling: DeployPolling,
    ctx: TaskContext,
) -> Result<Value, TaskError> {
    let job =
        DeployJob::of(&ctx.payload).ok_or_else(|| not_mine("deploy", ctx.record.task_type))?;
    // One change per project at a time: hold the project before anything changes it (a
    // redeploy naming no project first reads the name of the deployment it rebuilds).
    let name = deployment_name(&api, &job).await?;
    ctx.hold_project(&name).await?;
    let at = Attempt {
        api: &api,
        store: &ctx.store,
        record: &ctx.record,
    };
    let deployment_id = match &ctx.record.deployment_id {
        Some(id) => {
            info!(deployment_id = %id, "resuming the deployment an earlier attempt created");
            id.clone()
        }
        None => start(&at, &job, &name).await?,
    };
    wait_for_outcome(&at, polling, &deployment_id, &name).await
}

/// Find or create this task's deployment, named `name`; returns its id.
async fn start(at: &Attempt<'_>, job: &DeployJob<'_>, name: &str) -> Result<String, TaskError> {
    let task_id = at.record.task_id.to_string();
    if at.record.attempts > 1
        && let Some(id) = find_own_deployment(at.api, name, at.record, None).await?
    {
        // An earlier attempt created it but died (or lost Vercel's answer) before the id was
        // stored: resume it instead of creating a second deployment.
        info!(deployment_id = %id, "found the deployment an earlier attempt created");
        remember_deployment(at.store, &task_id, &id, None).await;
        return Ok(id);
    }
    create(at, job, name).await
}

/// The payload's name, else (a redeploy naming only the deployment) the rebuilt deployment's.
async fn deployment_name(api: &VercelApi, job: &DeployJob<'_>) -> Result<String, TaskError> {
    if let Some(name) = job.name {
        return Ok(name.to_string());
    }
    let id = job.redeploy_of.unwrap_or_default();
    let d: Deployment = fetch(api, requests::get_deployment(id)).await?;
    Ok(d.name.unwrap_or_else(|| id.to_string()))
}

/// Create the deployment (sent once: the create request is not idempotent), store its id on the
/// record and emit `deploy.started`.
pub(super) async fn create(
    at: &Attempt<'_>,
    job: &DeployJob<'_>,
    name: &str,
) -> Result<String, TaskError> {
    let mut args = deployment_args(job, at.record, name.to_string());
    if args.git_source.is_none() && args.deployment_id.is_none() {
        // No source named (e.g. the guide's {"service": "test"}): build from the branch (payload
        // `branch`, else the production branch) of the project's linked repository.
        let git_ref = job.build.git_ref.clone();
        args.git_source = linked_git_source(at.api, &args.name, git_ref).await?;
    }
    let created: Deployment = fetch(at.api, requests::create_deployment(&args)).await?;
    let id = created
        .deployment_id()
        .ok_or_else(|| TaskError::Retryable("Vercel returned a deployment without an id".into()))?
        .to_string();
    // Remember it before anything else can fail, so no later attempt creates another.
    let task_id = at.record.task_id.to_string();
    remember_deployment(at.store, &task_id, &id, created.inspector_url.as_deref()).await;
    info!(deployment_id = %id, url = ?created.url, "deployment created");
    let body = json!({"deployment_id": id, "project": name, "url": created.url});
    emit(at.store, "deploy.started", at.record, body).await;
    Ok(id)
}

/// Poll until the deployment is final (then succeed or fail) or the attempt's time is up.
async fn wait_for_outcome(
    at: &Attempt<'_>,
    polling: DeployPolling,
    deployment_id: &str,
    project: &str,
) -> Result<Value, TaskError> {
    let d = poll_until_final(at, polling, deployment_id).await?;
    finish(at, &d, deployment_id, project, true).await
}

/// Poll the deployment (recording its live build progress) until its state is final; a
/// retryable error once the attempt's time is up.
pub(super) async fn poll_until_final(
    at: &Attempt<'_>,
    polling: DeployPolling,
    deployment_id: &str,
) -> Result<Deployment, TaskError> {
    let started = Instant::now();
    let task_id = at.record.task_id.to_string();
    let mut poll = 0u32;
    loop {
        poll = poll.wrapping_add(1);
        let d: Deployment = fetch(at.api, requests::get_deployment(deployment_id)).await?;
        super::progress::observe(at.api, at.store, &task_id, &d, poll).await;
        let state = d.ready_state();
        if state.is_final() {
            return Ok(d);
        }
        if started.elapsed() >= polling.timeout {
            return Err(TaskError::Retryable(format!(
                "deployment {deployment_id} still {state} after {} s; the next attempt resumes it",
                polling.timeout.as_secs()
            )));
        }
        tokio::time::sleep(polling.interval).await;
    }
}

/// READY succeeds; ERROR, CANCELED and BLOCKED fail for good. Emits the matching event. With
/// `known_good`, a READY production deployment is recorded as the project's newest known-good
/// release (a `release` records it only once verified).
pub(super) async fn finish(
    at: &Attempt<'_>,
    d: &Deployment,
    deployment_id: &str,
    project: &str,
    known_good: bool,
) -> Result<Value, TaskError> {
    let state = d.ready_state();
    let result = outcome(d, project);
    if state == ReadyState::Ready {
        info!(deployment_id, "deployment READY");
        if known_good && d.target.as_deref() == Some("production") {
            let url = d.url.clone();
            record_release(
                at.store,
                at.record,
                project,
                deployment_id,
                url,
                ReleaseSource::Deploy,
            )
            .await;
        }
        emit(at.store, "deploy.succeeded", at.record, result.clone()).await;
        return Ok(result);
    }
    emit(at.store, "deploy.failed", at.record, result).await;
    let why = d.error_message.clone().unwrap_or_default();
    Err(TaskError::Permanent(format!(
        "deployment {deployment_id} ended in {state}{}{why}",
        if why.is_empty() { "" } else { ": " }
    )))
}

/// Record a production deployment as `project`'s newest known-good release. A Redis failure is
/// logged, not fatal: the deployment itself succeeded.
pub(super) async fn record_release(
    store: &QueueStore,
    record: &TaskRecord,
    project: &str,
    deployment_id: &str,
    url: Option<String>,
    source: ReleaseSource,
) {
    let release = Release {
        deployment_id: deployment_id.to_string(),
        url,
        task_id: record.task_id.to_string(),
        source,
        recorded_at: chrono::Utc::now(),
        status: ReleaseStatus::Good,
    };
    if let Err(e) = store.record_release(project, &release).await {
        warn!(error = %e, deployment_id, "could not record the known-good release");
    }
}

/// The `meta` label naming the run of a `release` that created a deployment.
pub(super) const RUN_LABEL: &str = "ops_release_run";

/// How far before the task's submission its deployments are looked for (clock skew between the
/// submitter and Vercel).
const LOOKUP_SLACK_MS: i64 = 10 * 60 * 1000;

/// A deployment of `project` whose `meta.ops_task_id` is this task (created by an earlier
/// attempt), and, when `run` is given, whose `meta.ops_release_run` is that run. Vercel answers
/// 404 while the project does not exist yet: then there is none.
pub(super) async fn find_own_deployment(
    api: &VercelApi,
    project: &str,
    record: &TaskRecord,
    run: Option<&str>,
) -> Result<Option<String>, TaskError> {
    let task_id = record.task_id.to_string();
    let since = record.created_at.timestamp_millis() - LOOKUP_SLACK_MS;
    let req = requests::project_deployments_since(project, since);
    let Some(list) = lookup::<DeploymentList>(api, req).await? else {
        return Ok(None);
    };
    Ok(list
        .deployments
        .into_iter()
        .find(|d| {
            let label = |k: &str| {
                d.meta
                    .as_ref()
                    .and_then(|m| m.get(k))
                    .and_then(Value::as_str)
            };
            label("ops_task_id") == Some(task_id.as_str())
                && run.is_none_or(|r| label(RUN_LABEL) == Some(r))
        })
        .and_then(|d| d.deployment_id().map(str::to_string)))
}

/// Store the deployment id on the record, retrying through a short Redis outage: if it is lost, a
/// later attempt would create a second deployment.
async fn remember_deployment(
    store: &QueueStore,
    task_id: &str,
    deployment: &str,
    inspector_url: Option<&str>,
) {
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=6 {
        match store
            .set_deployment_id(task_id, deployment, inspector_url)
            .await
        {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::NewTask;

    fn record(ty: &str, payload: Value) -> (TaskRecord, Payload) {
        let rec = NewTask {
            task_type: Some(ty.into()),
            payload: Some(payload),
            ..Default::default()
        }
        .validate(3, chrono::Utc::now())
        .unwrap();
        let payload = Payload::parse(rec.task_type, &rec.payload).unwrap();
        (rec, payload)
    }

    #[test]
    fn bug_fix_payload_becomes_git_source_and_meta() {
        let (rec, payload) = record(
            "deploy",
            json!({"project": "web", "repo": "acme/web", "branch": "fix/login",
                   "commit": "abc123", "pr": 42, "target": "production"}),
        );
        let job = DeployJob::of(&payload).unwrap();
        let args = deployment_args(&job, &rec, "web".into());
        assert_eq!(
            args.git_source,
            Some(
                json!({"type":"github","org":"acme","repo":"web","ref":"fix/login","sha":"abc123"})
            )
        );
        assert_eq!(args.meta["pr"], "42");
        assert_eq!(args.meta["branch"], "fix/login");
        assert_eq!(args.meta["ops_task_id"], rec.task_id.to_string());
        assert_eq!(args.meta["ops_trace_id"], rec.trace_id);
        assert_eq!(args.target.as_deref(), Some("production"));
        assert_eq!(args.project.as_deref(), Some("web"));
        assert_eq!(args.deployment_id, None);
    }

    #[test]
    fn the_task_ids_in_meta_cannot_be_overridden_by_the_payload() {
        let (rec, payload) = record(
            "deploy",
            json!({"service": "svc", "meta": {"ops_task_id": "forged", "team": "core"}}),
        );
        let args = deployment_args(&DeployJob::of(&payload).unwrap(), &rec, "svc".into());
        assert_eq!(args.meta["ops_task_id"], rec.task_id.to_string());
        assert_eq!(args.meta["team"], "core");
        assert_eq!((args.project, args.git_source), (None, None));
    }

    #[test]
    fn a_redeploy_names_the_deployment_it_rebuilds() {
        let (rec, payload) = record(
            "redeploy",
            json!({"deploymentId": "dpl_1", "target": "staging"}),
        );
        let job = DeployJob::of(&payload).unwrap();
        assert_eq!((job.name, job.redeploy_of), (None, Some("dpl_1")));
        let args = deployment_args(&job, &rec, "web".into());
        assert_eq!(args.deployment_id.as_deref(), Some("dpl_1"));
        assert_eq!(args.target.as_deref(), Some("staging"));
        let (_, noop) = record("noop", json!({}));
        assert!(DeployJob::of(&noop).is_none());
    }
}
