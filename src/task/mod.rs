//! The task: what a submitter asks for, what the queue stores, and how a payload is parsed.
//!
//! A task record lives in one Redis hash (see `queue`). This module owns the conversion between that
//! hash (a flat map of strings) and [`TaskRecord`], and the per-type payload rules ([`Payload`])
//! that are checked twice: when a task is submitted (so the submitter gets a 400 / CLI error naming
//! the field) and again when it runs (so a record pushed into Redis by hand is dead-lettered with a
//! reason, never retried forever and never a crash). The record keeps the payload as submitted;
//! handlers get the typed [`Payload`] parsed from it.

mod new;
mod payload;
mod record;
mod rules;
mod schedule;
mod steps;

pub use new::{MAX_RETRIES_CAP, NewTask, ValidationError};
pub use payload::{
    Build, Cancel, Check, DEPLOYMENT_FIELDS, Deploy, GitHubRepo, NOOP_MAX_SLEEP_MS, Noop,
    PROJECT_FIELDS, Payload, ProductionChange, RELEASE_MAX_SECS, Redeploy, Release, Rollback,
    URL_PLACEHOLDER, VERIFY_DEFAULT_STATUS, VERIFY_DEFAULT_WITHIN_SECS, Verify,
};
pub use record::{DecodeError, TaskRecord, with_key_id};
pub use rules::SubmitRules;
pub use schedule::{Schedule, ScheduleSpec};
pub use steps::{StepEntry, StepName, StepState, WaitingFor};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A [`Priority`], [`TaskType`] or [`TaskStatus`] spelled in a way this build does not know.
/// Its message quotes the value as given, so a 400 body or CLI error shows what was typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// What was being parsed (`priority`, `task type`, `task status`), for the message.
    pub what: &'static str,
    /// The text as given, untrimmed.
    pub value: String,
    /// The accepted spellings, when the message lists them (`expected P0, P1, P2 or P3`).
    pub expected: Option<&'static str>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a {}", self.value, self.what)?;
        match self.expected {
            Some(expected) => write!(f, " ({expected})"),
            None => Ok(()),
        }
    }
}

/// Priority classes, strictly ordered: every P0 task is claimed before any P1 task, and so on.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Priority {
    /// Urgent: production fixes, rollbacks.
    P0,
    /// Important, ahead of routine work.
    P1,
    #[default]
    /// Routine work; the default.
    P2,
    /// Background work that may wait.
    P3,
}

impl Priority {
    /// Every priority, highest first (claim order).
    pub const ALL: [Priority; 4] = [Priority::P0, Priority::P1, Priority::P2, Priority::P3];

    /// The spelling stored in Redis and shown in the API (`P0`..`P3`).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "P0" => Ok(Priority::P0),
            "P1" => Ok(Priority::P1),
            "P2" => Ok(Priority::P2),
            "P3" => Ok(Priority::P3),
            _ => Err(ParseError {
                what: "priority",
                value: s.to_string(),
                expected: Some("expected P0, P1, P2 or P3"),
            }),
        }
    }
}

/// What a task does. `deployment` is accepted as an alias of `deploy` because the deployment guide's
/// own curl example submits it that way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    #[serde(alias = "deployment")]
    /// Create a deployment from a git ref (or the project's default).
    Deploy,
    /// Build an existing deployment again.
    Redeploy,
    /// Make a READY deployment the production one.
    Promote,
    /// Point production back at an earlier deployment.
    Rollback,
    /// Cancel a deployment that is still building.
    Cancel,
    /// Report a deployment's state.
    Check,
    /// Deploy, verify the deployment's URL, promote it, watch it; roll back to the last known good
    /// release when a step fails.
    Release,
    /// Do nothing (optionally sleep); for tests, the demo and benchmarks.
    Noop,
    /// A stored record whose type this build does not know (hand-written, or a stub for an id
    /// with no record). Never accepted at submission; dead-lettered when claimed.
    Unknown,
}

impl TaskType {
    /// Every type accepted at submission (not [`TaskType::Unknown`]).
    pub const ALL: [TaskType; 8] = [
        TaskType::Deploy,
        TaskType::Redeploy,
        TaskType::Promote,
        TaskType::Rollback,
        TaskType::Cancel,
        TaskType::Check,
        TaskType::Release,
        TaskType::Noop,
    ];

    /// Whether this type's handler reads the record's run state: its `max_retries`,
    /// `created_at`, `deployment_id` and `steps` (a deploy resumes its deployment and looks for
    /// it by creation time, a release replays its steps and counts its attempts). A claim reads
    /// those four fields only for such types (and for any spelling it does not know): each
    /// field a script reads costs Redis about as much as the rest of a small task's claim.
    pub fn reads_run_state(self) -> bool {
        matches!(
            self,
            TaskType::Deploy | TaskType::Release | TaskType::Unknown
        )
    }

    /// Whether a task of this type can hold a project's lock: every type whose handler changes
    /// a Vercel project takes one ([`crate::handlers::TaskContext::hold_project`]), and a
    /// hand-over gives one only to a task that asked. Completing a task of any other type reads
    /// no project fields.
    pub fn holds_projects(self) -> bool {
        !matches!(self, TaskType::Noop)
    }

    /// The snake_case spelling stored in Redis and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Deploy => "deploy",
            TaskType::Redeploy => "redeploy",
            TaskType::Promote => "promote",
            TaskType::Rollback => "rollback",
            TaskType::Cancel => "cancel",
            TaskType::Check => "check",
            TaskType::Release => "release",
            TaskType::Noop => "noop",
            TaskType::Unknown => "unknown",
        }
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskType {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        if t == "deployment" {
            return Ok(TaskType::Deploy);
        }
        TaskType::ALL
            .into_iter()
            .find(|ty| ty.as_str() == t)
            .ok_or_else(|| ParseError {
                what: "task type",
                value: s.to_string(),
                expected: Some(
                    "expected one of deploy, deployment, redeploy, promote, rollback, cancel, \
                     check, release, noop",
                ),
            })
    }
}

/// Where a task is in its life. See `docs/architecture.md` for the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Queued, waiting for its priority and `run_at`.
    Pending,
    /// Claimed by a consumer and running.
    InProgress,
    /// Failed an attempt; queued again after a backoff.
    Retrying,
    /// Finished successfully.
    Completed,
    /// Out of retries (or not retryable); in the dead-letter list.
    Failed,
    /// Cancelled by an operator before it finished.
    Cancelled,
}

impl TaskStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Pending,
        TaskStatus::InProgress,
        TaskStatus::Retrying,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    /// The snake_case spelling stored in Redis and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Retrying => "retrying",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// No further transition: completed, failed or cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ParseError {
                what: "task status",
                value: s.to_string(),
                expected: None,
            })
    }
}

#[cfg(test)]
mod tests;
