//! The progress of a running `release` task, stored as it happens so that a later attempt (after
//! a crash, a reclaim, a hand-back or a retry) resumes at the recorded step instead of starting
//! again: `<base>:release:<task id>` (hash, expiring with the failed-record retention), written
//! together with the record's step history by `release_step.lua`.
//!
//! Each fact is written *before* the step it guards has effects that must not repeat: the intent
//! to create a deployment (with the run id its `meta` carries) before the create call, the intent
//! to promote or roll back (with the target) before that call.

use std::collections::HashMap;

use super::{QueueError, QueueStore};
use crate::task::{StepEntry, StepName};

/// One field of the progress hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// The run id put in the deployment's `meta.ops_release_run` (written before the create).
    Run,
    /// The deployment created (also stored on the record).
    DeploymentId,
    /// The deployment's hostname.
    Url,
    /// `1` once the deployment was READY.
    Built,
    /// `1` once the verification passed.
    Verified,
    /// `1` once the promote call is about to be sent.
    Promoting,
    /// `1` once the promotion is done.
    Promoted,
    /// Epoch ms the watch window ends (written when it starts).
    WatchUntilMs,
    /// `1` once the watch window passed.
    Watched,
    /// The step that failed (its snake_case name), once the release is being rolled back.
    FailedStep,
    /// Why it failed.
    FailedReason,
    /// The deployment production goes back to (written before the rollback call).
    RollbackTo,
    /// `1` once production was rolled back (or the rollback was found unnecessary).
    RolledBack,
}

impl Fact {
    /// The hash field.
    pub fn field(self) -> &'static str {
        match self {
            Fact::Run => "run",
            Fact::DeploymentId => "deployment_id",
            Fact::Url => "url",
            Fact::Built => "built",
            Fact::Verified => "verified",
            Fact::Promoting => "promoting",
            Fact::Promoted => "promoted",
            Fact::WatchUntilMs => "watch_until_ms",
            Fact::Watched => "watched",
            Fact::FailedStep => "failed_step",
            Fact::FailedReason => "failed_reason",
            Fact::RollbackTo => "rollback_to",
            Fact::RolledBack => "rolled_back",
        }
    }
}

/// What a release has done so far, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseProgress {
    /// See [`Fact::Run`].
    pub run: Option<String>,
    /// See [`Fact::DeploymentId`].
    pub deployment_id: Option<String>,
    /// See [`Fact::Url`].
    pub url: Option<String>,
    /// See [`Fact::Built`].
    pub built: bool,
    /// See [`Fact::Verified`].
    pub verified: bool,
    /// See [`Fact::Promoting`].
    pub promoting: bool,
    /// See [`Fact::Promoted`].
    pub promoted: bool,
    /// See [`Fact::WatchUntilMs`].
    pub watch_until_ms: Option<i64>,
    /// See [`Fact::Watched`].
    pub watched: bool,
    /// See [`Fact::FailedStep`] and [`Fact::FailedReason`].
    pub failed: Option<(StepName, String)>,
    /// See [`Fact::RollbackTo`].
    pub rollback_to: Option<String>,
    /// See [`Fact::RolledBack`].
    pub rolled_back: bool,
}

impl ReleaseProgress {
    fn from_map(m: &HashMap<String, String>) -> Self {
        let text = |f: Fact| m.get(f.field()).filter(|s| !s.is_empty()).cloned();
        let flag = |f: Fact| m.get(f.field()).is_some_and(|v| v == "1");
        let ms = |f: Fact| text(f).and_then(|s| s.parse().ok());
        let failed_step = text(Fact::FailedStep)
            .and_then(|s| serde_json::from_value::<StepName>(serde_json::Value::String(s)).ok());
        ReleaseProgress {
            run: text(Fact::Run),
            deployment_id: text(Fact::DeploymentId),
            url: text(Fact::Url),
            built: flag(Fact::Built),
            verified: flag(Fact::Verified),
            promoting: flag(Fact::Promoting),
            promoted: flag(Fact::Promoted),
            watch_until_ms: ms(Fact::WatchUntilMs),
            watched: flag(Fact::Watched),
            failed: failed_step.map(|s| (s, text(Fact::FailedReason).unwrap_or_default())),
            rollback_to: text(Fact::RollbackTo),
            rolled_back: flag(Fact::RolledBack),
        }
    }
}

impl QueueStore {
    fn release_key(&self, task_id: &str) -> String {
        self.key(&format!("release:{task_id}"))
    }

    /// The stored progress of release task `task_id` (empty when it has none).
    pub async fn release_progress(&self, task_id: &str) -> Result<ReleaseProgress, QueueError> {
        let flat: Vec<String> = self
            .query(redis::cmd("HGETALL").arg(self.release_key(task_id)))
            .await?;
        Ok(ReleaseProgress::from_map(&super::pairs_to_map(flat)))
    }

    /// Append `steps` to the record's history and store `facts` (an empty value deletes the
    /// fact), in one atomic step. `false` when the record is gone (nothing written).
    pub async fn record_release_step(
        &self,
        task_id: &str,
        steps: &[StepEntry],
        facts: &[(Fact, String)],
    ) -> Result<bool, QueueError> {
        let entries = serde_json::to_string(steps)
            .map_err(|e| QueueError::Protocol(format!("cannot encode a step entry: {e}")))?;
        let mut inv = self.invocation(&self.scripts.release_step);
        inv.arg(task_id).arg(entries);
        for (fact, value) in facts {
            inv.arg(fact.field()).arg(value);
        }
        let n: i64 = self.run(&inv).await?;
        Ok(n == 1)
    }
}
