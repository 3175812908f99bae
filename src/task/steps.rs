//! What a task record shows besides its status: the step history of a multi-step task (a
//! `release`: deploy, build, verify, promote, watch, rollback) and, for a task deferred behind a
//! busy project, what it waits for.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One step of a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    /// Create the deployment (or find the one an earlier attempt created).
    Deploy,
    /// Wait until the deployment is READY.
    Build,
    /// GET the deployment's URL until it answers as expected.
    Verify,
    /// Point production at the verified deployment.
    Promote,
    /// Re-verify the live release for `watchSecs`.
    Watch,
    /// Point production back at the last known good release (after a failed step).
    Rollback,
}

impl StepName {
    /// The snake_case spelling stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Deploy => "deploy",
            StepName::Build => "build",
            StepName::Verify => "verify",
            StepName::Promote => "promote",
            StepName::Watch => "watch",
            StepName::Rollback => "rollback",
        }
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// The step began.
    Started,
    /// A later attempt (after a crash, a hand-back or a retry) picked the step up again.
    Resumed,
    /// The step did what it should.
    Succeeded,
    /// The step failed (`detail` says why).
    Failed,
    /// The step was not needed (`detail` says why).
    Skipped,
}

/// One entry of a task's step history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepEntry {
    /// Which step.
    pub step: StepName,
    /// What happened to it.
    pub state: StepState,
    /// When (the instance clock of the worker that ran it).
    pub at: DateTime<Utc>,
    /// The deployment, the URL checked, the reason of a failure or a skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What a task deferred behind a busy project waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WaitingFor {
    /// The project it will change once it may.
    pub project: String,
    /// The ID of the task holding the project now.
    pub holder: String,
}
