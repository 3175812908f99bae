//! Payload rules per task type. A payload is parsed once into a typed [`Payload`]: at submission
//! (400 / CLI error naming the field) and again when a consumer runs the task (a record written by
//! hand is dead-lettered with the reason). Handlers get the typed value and never read raw JSON.
//!
//! Two kinds of field are read. *Checked* fields (the ones a task type needs, plus `target` and
//! `gitSource` of a deploy) must hold a non-empty string (or the right type) at the first alias
//! that is present, else the payload is refused naming that alias. *Passed-through* fields are
//! read tolerantly, as the handlers always have: the first alias holding a string wins and
//! anything else is ignored.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{TaskType, ValidationError};

mod fields;
mod release;

use fields::{first_string, labels, optional_bool, required_str, str_field};

pub use release::{
    RELEASE_MAX_SECS, Release, URL_PLACEHOLDER, VERIFY_DEFAULT_STATUS, VERIFY_DEFAULT_WITHIN_SECS,
    Verify,
};

#[cfg(test)]
mod deploy_tests;
#[cfg(test)]
mod tests;

/// The project a payload names: `project`, `projectId`, `name`, or the guide's `service`.
pub const PROJECT_FIELDS: [&str; 4] = ["project", "projectId", "name", "service"];
/// The deployment a payload names.
pub const DEPLOYMENT_FIELDS: [&str; 2] = ["deployment_id", "deploymentId"];
/// The aliases whose value becomes the `project` field of a create-deployment body (the deployment
/// `name` may come from any of [`PROJECT_FIELDS`]).
const VERCEL_PROJECT_FIELDS: [&str; 2] = ["project", "projectId"];

/// Longest `noop` sleep: the top histogram bucket (10 minutes).
pub const NOOP_MAX_SLEEP_MS: u64 = 600_000;

/// A validated payload: one variant per runnable task type.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `noop`: the diagnostic task.
    Noop(Noop),
    /// `deploy` (alias `deployment`): create a deployment and wait for its outcome.
    Deploy(Deploy),
    /// `redeploy`: rebuild an existing deployment and wait for its outcome.
    Redeploy(Redeploy),
    /// `promote`: point a project's production at a deployment.
    Promote(ProductionChange),
    /// `rollback`: point a project's production back at an earlier deployment (the last known
    /// good release when the payload names none).
    Rollback(Rollback),
    /// `cancel`: stop a queued or building deployment.
    Cancel(Cancel),
    /// `check`: report a deployment's state.
    Check(Check),
    /// `release`: deploy, verify, promote, watch; roll back to the last known good on failure.
    Release(Release),
}

/// `noop` arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Noop {
    /// How long to wait before answering (0 to [`NOOP_MAX_SLEEP_MS`]), to simulate work.
    pub sleep_ms: u64,
    /// Fail with a retryable error, to exercise retries and dead-lettering.
    pub fail: bool,
    /// Panic inside the handler, to exercise the consumer's panic boundary (a failed attempt).
    pub panic: bool,
    /// End the consumer running it (outside the handler boundary), to exercise the supervisor's
    /// restart policy.
    pub exit_consumer: bool,
}

impl Noop {
    /// The first diagnostic knob this payload uses, as `payload.<name>`: they only work when
    /// `WORKER_DIAGNOSTICS=true`.
    pub fn diagnostic_field(&self) -> Option<&'static str> {
        if self.sleep_ms > 0 {
            Some("payload.sleep_ms")
        } else if self.fail {
            Some("payload.fail")
        } else if self.panic {
            Some("payload.panic")
        } else if self.exit_consumer {
            Some("payload.exit_consumer")
        } else {
            None
        }
    }
}

/// `deploy` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    /// The deployment name: the first of [`PROJECT_FIELDS`] present (required).
    pub name: String,
    /// Where to build from, where to, and the labels to attach.
    pub build: Build,
}

/// `redeploy` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeploy {
    /// The deployment to rebuild (`deployment_id` or `deploymentId`, required).
    pub deployment_id: String,
    /// The deployment name, when the payload names one (first string among [`PROJECT_FIELDS`]);
    /// otherwise the handler takes it from the deployment being rebuilt.
    pub name: Option<String>,
    /// Overrides for the rebuilt deployment (source, target, labels).
    pub build: Build,
}

/// The create-deployment inputs shared by `deploy` and `redeploy`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Build {
    /// The Vercel body's `project`: only `project` or `projectId` (unlike the deployment name,
    /// which also accepts `name` and `service`).
    pub project: Option<String>,
    /// `target`. For `deploy` it is `production` or `preview`; a redeploy passes any string on.
    pub target: Option<String>,
    /// `gitSource`, passed to Vercel as given. Always an object for `deploy`.
    pub git_source: Option<Value>,
    /// `repo: "org/name"`: with a git ref it becomes a GitHub source when `gitSource` is absent.
    pub repo: Option<GitHubRepo>,
    /// `branch` or `ref` (first string): the git ref to build, also used for a linked repository.
    pub git_ref: Option<String>,
    /// `commit` or `sha` (first string): the commit a GitHub source pins.
    pub commit: Option<String>,
    /// Labels for Vercel's string-only `meta`: the payload's `meta` object (scalar values
    /// stringified), then `pr` (`pr`/`pr_number`/`prNumber`), `branch` (`branch`/`ref`) and
    /// `commit` (`commit`/`sha`), each the first alias holding a scalar, stringified.
    pub meta: BTreeMap<String, String>,
}

/// A GitHub repository named `org/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubRepo {
    /// The owner (user or organisation): the text before the first `/`.
    pub org: String,
    /// The repository name: the text after the first `/`.
    pub name: String,
}

/// `promote` / `rollback` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductionChange {
    /// The project whose production changes (first of [`PROJECT_FIELDS`], required).
    pub project: String,
    /// The deployment that serves production afterwards (required).
    pub deployment_id: String,
}

/// `rollback` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// The project whose production goes back (first of [`PROJECT_FIELDS`], required).
    pub project: String,
    /// The deployment to go back to; `None`: the project's last known good release.
    pub deployment_id: Option<String>,
}

/// `cancel` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel {
    /// The deployment to cancel (required).
    pub deployment_id: String,
    /// The project, only echoed in the result (first string among [`PROJECT_FIELDS`]).
    pub project: Option<String>,
}

/// `check` arguments: a deployment, or else the latest deployment of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The payload names a deployment: check that one.
    Deployment {
        /// The deployment to check.
        deployment_id: String,
        /// The project, only echoed in the result (first string among [`PROJECT_FIELDS`]).
        project: Option<String>,
    },
    /// No deployment named: check the project's newest deployment.
    Latest {
        /// The project to look at.
        project: String,
        /// Only deployments of this target (first string in `target`), when given.
        target: Option<String>,
    },
}

impl Payload {
    /// Validate `payload` for `task_type` and return it typed. Used at submission and again at
    /// execution; the error names the offending field (`payload.project`, `type`, ...).
    pub fn parse(task_type: TaskType, payload: &Value) -> Result<Payload, ValidationError> {
        if !payload.is_object() {
            return Err(ValidationError::new("payload", "must be a JSON object"));
        }
        Ok(match task_type {
            TaskType::Unknown => return Err(ValidationError::new("type", "unknown task type")),
            TaskType::Noop => Payload::Noop(Noop::parse(payload)?),
            TaskType::Deploy => Payload::Deploy(Deploy::parse(payload)?),
            TaskType::Redeploy => Payload::Redeploy(Redeploy::parse(payload)?),
            TaskType::Promote => Payload::Promote(ProductionChange::parse(payload)?),
            TaskType::Rollback => Payload::Rollback(Rollback::parse(payload)?),
            TaskType::Cancel => Payload::Cancel(Cancel::parse(payload)?),
            TaskType::Check => Payload::Check(Check::parse(payload)?),
            TaskType::Release => Payload::Release(Release::parse(payload)?),
        })
    }

    /// The project this task changes, which it must hold while it runs (one change per project
    /// at a time): the first string among [`PROJECT_FIELDS`], as written, the same for every type.
    /// `None` for reads (`check`), `noop`, a `cancel` naming no project, and a `redeploy` naming
    /// none (its handler takes the project from the deployment it rebuilds).
    pub fn changed_project(&self) -> Option<&str> {
        match self {
            Payload::Deploy(d) => Some(&d.name),
            Payload::Redeploy(r) => r.name.as_deref(),
            Payload::Promote(c) => Some(&c.project),
            Payload::Rollback(r) => Some(&r.project),
            Payload::Cancel(c) => c.project.as_deref(),
            Payload::Release(r) => Some(&r.deploy.name),
            Payload::Noop(_) | Payload::Check(_) => None,
        }
    }

    /// The task type this payload belongs to.
    pub fn task_type(&self) -> TaskType {
        match self {
            Payload::Noop(_) => TaskType::Noop,
            Payload::Deploy(_) => TaskType::Deploy,
            Payload::Redeploy(_) => TaskType::Redeploy,
            Payload::Promote(_) => TaskType::Promote,
            Payload::Rollback(_) => TaskType::Rollback,
            Payload::Cancel(_) => TaskType::Cancel,
            Payload::Check(_) => TaskType::Check,
            Payload::Release(_) => TaskType::Release,
        }
    }
}

impl Noop {
    fn parse(payload: &Value) -> Result<Self, ValidationError> {
        let sleep_ms = match payload.get("sleep_ms") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .filter(|ms| *ms <= NOOP_MAX_SLEEP_MS)
                .ok_or_else(|| {
                    ValidationError::new(
                        "payload.sleep_ms",
                        format!("must be an integer from 0 to {NOOP_MAX_SLEEP_MS}"),
                    )
                })?,
        };
        Ok(Noop {
            sleep_ms,
            fail: optional_bool(payload, "fail")?,
            panic: optional_bool(payload, "panic")?,
            exit_consumer: optional_bool(payload, "exit_consumer")?,
        })
    }
}

impl Deploy {
    fn parse(payload: &Value) -> Result<Self, ValidationError> {
        let name = required_str(payload, &PROJECT_FIELDS)?.to_string();
        if let Some(t) = str_field(payload, &["target"])?
            && t != "production"
            && t != "preview"
        {
            return Err(ValidationError::new(
                "payload.target",
                "must be `production` or `preview`",
            ));
        }
        match payload.get("gitSource") {
            None | Some(Value::Null) | Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(ValidationError::new(
                    "payload.gitSource",
                    "must be a JSON object",
                ));
            }
        }
        // Checked for type only: a deploy does not use it.
        str_field(payload, &DEPLOYMENT_FIELDS)?;
        Ok(Deploy {
            name,
            build: Build::read(payload),
        })
    }
}

impl Redeploy {
    fn parse(payload: &Value) -> Result<Self, ValidationError> {
        Ok(Redeploy {
            deployment_id: required_str(payload, &DEPLOYMENT_FIELDS)?.to_string(),
            name: first_string(payload, &PROJECT_FIELDS),
            build: Build::read(payload),
        })
    }
}

impl Build {
    /// The passed-through fields (the checks, if any, are the caller's).
    fn read(payload: &Value) -> Self {
        Build {
            project: first_string(payload, &VERCEL_PROJECT_FIELDS),
            target: first_string(payload, &["target"]),
            git_source: payload.get("gitSource").filter(|v| !v.is_null()).cloned(),
            repo: first_string(payload, &["repo"]).and_then(|r| GitHubRepo::parse(&r)),
            git_ref: first_string(payload, &["branch", "ref"]),
            commit: first_string(payload, &["commit", "sha"]),
            meta: labels(payload),
        }
    }
}

impl GitHubRepo {
    /// `org/name`; None without a `/`.
    fn parse(repo: &str) -> Option<Self> {
        let (org, name) = repo.split_once('/')?;
        Some(GitHubRepo {
            org: org.to_string(),
            name: name.to_string(),
        })
    }
}

impl ProductionChange {
    fn parse(payload: &Value) -> Result<Self, ValidationError> {
        Ok(ProductionChange {
            project: required_str(payload, &PROJECT_FIELDS)?.to_string(),
            deployment_id: required_str(payload, &DEPLOYMENT_FIELDS)?.to_string(),
        })
    }
}

impl Rollback {
    fn parse(payload: &Value) -> Result<Self, ValidationError> {
        Ok(Rollback {
            project: required_str(payload, &PROJECT_FIELDS)?.to_string(),
            deployment_id: str_field(payload, &DEPLOYMENT_FIELDS)?.map(str::to_string),
        })
    }
}

impl Cancel {
    fn parse(payload: &Value) -> Result<Self, ValidationError> {
        Ok(Cancel {
            deployment_id: required_str(payload, &DEPLOYMENT_FIELDS)?.to_string(),
            project: first_string(payload, &PROJECT_FIELDS),
        })
    }
}

impl Check {
    fn parse(payload: &Value) -> Result<Self, ValidationError> {
        if let Some(id) = str_field(payload, &DEPLOYMENT_FIELDS)? {
            return Ok(Check::Deployment {
                deployment_id: id.to_string(),
                project: first_string(payload, &PROJECT_FIELDS),
            });
        }
        match str_field(payload, &PROJECT_FIELDS)? {
            Some(project) => Ok(Check::Latest {
                project: project.to_string(),
                target: first_string(payload, &["target"]),
            }),
            None => Err(ValidationError::new(
                "payload.deployment_id",
                "is required (or payload.project, to check its latest deployment)",
            )),
        }
    }
}
