//! The Vercel task types: `deploy` (alias `deployment`), `redeploy`, `promote`, `rollback`,
//! `cancel`, `check`. Every call goes through the VercelActor ([`VercelApi`]); every handler works
//! from the typed [`Payload`](crate::task::Payload) in its context, never from raw JSON.
//!
//! `release` runs a deploy, verifies it, promotes and watches it, and rolls back to the last known
//! good release when a step fails (`release/`).
//!
//! `deploy` creates the deployment, stores its id on the task record at once, then polls until
//! READY / ERROR / CANCELED / BLOCKED (the consumer renews the lease meanwhile). A retried or
//! reclaimed attempt finds the stored id and resumes polling that deployment: one task never
//! creates two. While it polls, `progress` keeps the states seen and the build log beside the
//! record.

mod deploy;
mod git;
mod operation;
mod progress;
mod release;

pub use deploy::{DeployJob, deployment_args};
pub use git::git_source_from_link;

use std::time::Duration;

use actix::Addr;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tracing::warn;

use super::client::{ApiRequest, Deployment, VercelError, decode};
use super::gateway::{Call, VercelActor};
use crate::handlers::{HandlerRegistry, TaskError};
use crate::queue::QueueStore;
use crate::task::{TaskRecord, TaskType};

/// A handle on the VercelActor.
#[derive(Clone)]
pub struct VercelApi {
    /// The actor that rate-limits and retries every call of this process.
    addr: Addr<VercelActor>,
}

impl VercelApi {
    /// Wrap the actor's address.
    pub fn new(addr: Addr<VercelActor>) -> Self {
        Self { addr }
    }

    /// Send one request through the actor (rate limit and retries included).
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
    /// Pause between two reads of the deployment.
    pub interval: Duration,
    /// How long one attempt waits before handing the deployment to the next attempt.
    pub timeout: Duration,
}

/// Register every Vercel task type.
pub fn register(registry: &mut HandlerRegistry, api: VercelApi, polling: DeployPolling) {
    for ty in [TaskType::Deploy, TaskType::Redeploy] {
        let api = api.clone();
        registry.register(ty, deploy::DeployHandler { api, polling });
    }
    for ty in [
        TaskType::Promote,
        TaskType::Rollback,
        TaskType::Cancel,
        TaskType::Check,
    ] {
        let api = api.clone();
        registry.register(ty, operation::OperationHandler { api });
    }
    match verification_client() {
        Ok(http) => registry.register(
            TaskType::Release,
            release::ReleaseHandler { api, polling, http },
        ),
        Err(e) => {
            warn!(error = %e, "no HTTP client for release verifications; `release` tasks cannot run")
        }
    }
}

/// The plain HTTP client of release verifications: no credentials, bounded connect time.
fn verification_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!(
            "ops-worker/",
            env!("CARGO_PKG_VERSION"),
            " release-verify"
        ))
        .build()
}

fn to_task_error(e: VercelError) -> TaskError {
    if e.retryable() {
        TaskError::Retryable(e.to_string())
    } else {
        TaskError::Permanent(e.to_string())
    }
}

/// Send a lookup whose 404 means "none yet": `None` then, else the decoded answer.
async fn lookup<T: DeserializeOwned>(
    api: &VercelApi,
    req: ApiRequest,
) -> Result<Option<T>, TaskError> {
    match api.call(req).await {
        Ok(v) => decode(v).map(Some).map_err(to_task_error),
        Err(VercelError::Client { status: 404, .. }) => Ok(None),
        Err(e) => Err(to_task_error(e)),
    }
}

/// Send one request and decode its answer; Vercel errors become task errors.
async fn fetch<T: DeserializeOwned>(api: &VercelApi, req: ApiRequest) -> Result<T, TaskError> {
    decode(api.call(req).await.map_err(to_task_error)?).map_err(to_task_error)
}

/// A handler was given a task type it is not registered for (a wiring mistake).
fn not_mine(handler: &str, ty: TaskType) -> TaskError {
    TaskError::Permanent(format!(
        "the Vercel {handler} handler does not run `{ty}` tasks"
    ))
}

/// Emit a task event whose body is `type`, `trace_id` and the fields of `extra`.
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

/// The task result describing a deployment.
fn outcome(d: &Deployment, project: &str) -> Value {
    json!({
        "deployment_id": d.deployment_id(),
        "url": d.url,
        "state": d.ready_state(),
        "project": project,
        "target": d.target,
    })
}
