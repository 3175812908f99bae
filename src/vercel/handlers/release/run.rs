//! [`Run`]: one attempt of a release, with the progress stored so far. Every step records what it
//! did through [`Run::note`] (step history and progress facts in one atomic write) before the next
//! step starts; a write that cannot be made stops the attempt, so no step ever runs ahead of its
//! record.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tracing::warn;
use uuid::Uuid;

use super::super::deploy::Attempt;
use super::super::{DeployPolling, VercelApi, emit};
use crate::handlers::{TaskContext, TaskError};
use crate::queue::QueueStore;
use crate::queue::release_run::{Fact, ReleaseProgress};
use crate::task::{Release, StepEntry, StepName, StepState, TaskRecord};

/// Why a step did not succeed.
#[derive(Debug, Clone)]
pub(super) struct StepFailure {
    /// The step.
    pub(super) step: StepName,
    /// What went wrong, for the task's `error` and the history.
    pub(super) reason: String,
    /// Another attempt could get past it (a Vercel 5xx, a timeout, Redis away).
    pub(super) retryable: bool,
}

impl StepFailure {
    /// The failure of `step` a task error describes.
    pub(super) fn of(step: StepName, e: TaskError) -> Self {
        let retryable = matches!(e, TaskError::Retryable(_));
        StepFailure {
            step,
            reason: e.to_string(),
            retryable,
        }
    }

    /// A failure of `step` no retry can help.
    pub(super) fn permanent(step: StepName, reason: impl Into<String>) -> Self {
        StepFailure {
            step,
            reason: reason.into(),
            retryable: false,
        }
    }
}

/// One attempt of a release task.
pub(super) struct Run<'a> {
    /// The VercelActor.
    pub(super) api: &'a VercelApi,
    /// The queue: progress, history, events, known-good releases.
    pub(super) store: &'a QueueStore,
    /// The task as claimed (its `steps` are the history before this attempt).
    pub(super) record: &'a TaskRecord,
    /// The release's arguments.
    pub(super) spec: &'a Release,
    /// How the build is polled.
    pub(super) polling: DeployPolling,
    /// The client of the verification GETs.
    pub(super) http: &'a reqwest::Client,
    /// What the release has done so far (as stored, updated by every [`Run::note`]).
    pub(super) progress: ReleaseProgress,
    /// Where this run's entries start in the record's history (after those of a replayed run).
    history_from: usize,
}

impl<'a> Run<'a> {
    /// Read the stored progress. A replay drops it (`replay.lua`), so a run that finds none
    /// starts afresh, and history entries already on the record belong to an earlier run.
    /// A run that finds its run id resumes: its entries start at its `deploy: started`.
    pub(super) async fn load(
        api: &'a VercelApi,
        ctx: &'a TaskContext,
        spec: &'a Release,
        polling: DeployPolling,
        http: &'a reqwest::Client,
    ) -> Result<Run<'a>, TaskError> {
        let id = ctx.record.task_id.to_string();
        let progress = ctx.store.release_progress(&id).await.map_err(|e| {
            TaskError::Retryable(format!("cannot read the release's progress: {e}"))
        })?;
        let history_from = history_from(&ctx.record.steps, progress.run.is_some());
        Ok(Run {
            api,
            store: &ctx.store,
            record: &ctx.record,
            spec,
            polling,
            http,
            progress,
            history_from,
        })
    }

    /// The project released (and held).
    pub(super) fn project(&self) -> &'a str {
        &self.spec.deploy.name
    }

    /// What the deploy code needs.
    pub(super) fn attempt(&self) -> Attempt<'a> {
        Attempt {
            api: self.api,
            store: self.store,
            record: self.record,
        }
    }

    /// This is the task's last attempt: a retryable failure now ends the release.
    pub(super) fn last_attempt(&self) -> bool {
        self.record.attempts > self.record.max_retries
    }

    /// `Resumed` when an earlier attempt began `step` (it is in the history), else `Started`.
    pub(super) fn beginning(&self, step: StepName) -> StepState {
        let this_run = self
            .record
            .steps
            .get(self.history_from..)
            .unwrap_or_default();
        if this_run.iter().any(|e| e.step == step) {
            StepState::Resumed
        } else {
            StepState::Started
        }
    }

    /// A fresh run id for the deployment's `meta.ops_release_run`.
    pub(super) fn new_run_id() -> String {
        Uuid::new_v4().simple().to_string()
    }

    /// Append `steps` to the history and store `facts`, retrying through a short Redis outage;
    /// a retryable failure of `steps[0]`'s step when it cannot be written.
    pub(super) async fn note(
        &mut self,
        steps: &[(StepName, StepState, Option<String>)],
        facts: Vec<(Fact, String)>,
    ) -> Result<(), StepFailure> {
        let at = chrono::Utc::now();
        let entries: Vec<StepEntry> = steps
            .iter()
            .map(|(step, state, detail)| StepEntry {
                step: *step,
                state: *state,
                at,
                detail: detail.clone(),
            })
            .collect();
        let step = steps.first().map_or(StepName::Deploy, |s| s.0);
        let id = self.record.task_id.to_string();
        let mut backoff = Duration::from_millis(100);
        for attempt in 1..=6 {
            match self.store.record_release_step(&id, &entries, &facts).await {
                Ok(true) => break,
                Ok(false) => return Err(StepFailure::permanent(step, "the task record is gone")),
                Err(e) if attempt == 6 => {
                    let reason = format!("cannot record the release's progress: {e}");
                    return Err(StepFailure {
                        step,
                        reason,
                        retryable: true,
                    });
                }
                Err(e) => {
                    warn!(error = %e, attempt, "could not record the release's progress yet; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        for (fact, value) in facts {
            apply(&mut self.progress, fact, value);
        }
        Ok(())
    }

    /// Emit `release.<name>` with `project`, the deployment (when there is one) and `extra`.
    pub(super) async fn event(&self, name: &str, extra: Value) {
        let mut body = Map::new();
        body.insert("project".into(), json!(self.project()));
        body.insert("deployment_id".into(), json!(self.progress.deployment_id));
        if let Value::Object(m) = extra {
            body.extend(m);
        }
        emit(self.store, name, self.record, Value::Object(body)).await;
    }
}

/// Where this run's entries start in the record's history. Every run's first note is
/// `deploy: started` together with its run id (`Fact::Run`), and a replay deletes the run id; so
/// without a run id nothing on the record is this run's, and with one this run began at the last
/// `deploy: started` (entries before it belong to a run replayed since). When that entry was
/// trimmed away (more than 100 since), so were all older ones: everything left is this run's.
fn history_from(steps: &[StepEntry], has_run_id: bool) -> usize {
    if !has_run_id {
        return steps.len();
    }
    steps
        .iter()
        .rposition(|e| e.step == StepName::Deploy && e.state == StepState::Started)
        .unwrap_or(0)
}

/// What storing `value` for `fact` means for the progress in memory.
fn apply(p: &mut ReleaseProgress, fact: Fact, value: String) {
    let flag = value == "1";
    let text = (!value.is_empty()).then_some(value);
    match fact {
        Fact::Run => p.run = text,
        Fact::DeploymentId => p.deployment_id = text,
        Fact::Url => p.url = text,
        Fact::Built => p.built = flag,
        Fact::Verified => p.verified = flag,
        Fact::Promoting => p.promoting = flag,
        Fact::Promoted => p.promoted = flag,
        Fact::WatchUntilMs => p.watch_until_ms = text.and_then(|v| v.parse().ok()),
        Fact::Watched => p.watched = flag,
        Fact::FailedStep => {
            let step = text.and_then(|s| serde_json::from_value(Value::String(s)).ok());
            let reason = p.failed.take().map(|f| f.1).unwrap_or_default();
            p.failed = step.map(|s| (s, reason));
        }
        Fact::FailedReason => {
            if let Some(f) = p.failed.as_mut() {
                f.1 = text.unwrap_or_default();
            }
        }
        Fact::RollbackTo => p.rollback_to = text,
        Fact::RolledBack => p.rolled_back = flag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StepName::{Build, Deploy, Verify};
    use StepState::{Failed, Started, Succeeded};

    fn entries(steps: &[(StepName, StepState)]) -> Vec<StepEntry> {
        steps
            .iter()
            .map(|(step, state)| StepEntry {
                step: *step,
                state: *state,
                at: chrono::Utc::now(),
                detail: None,
            })
            .collect()
    }

    #[test]
    fn a_resumed_run_after_a_replay_owns_only_its_own_entries() {
        // Run 1 got to verify and failed; it was replayed; run 2 began and crashed in build.
        let steps = entries(&[
            (Deploy, Started),
            (Deploy, Succeeded),
            (Build, Started),
            (Build, Succeeded),
            (Verify, Started),
            (Verify, Failed),
            (Deploy, Started),
            (Deploy, Succeeded),
            (Build, Started),
        ]);
        assert_eq!(
            history_from(&steps, false),
            9,
            "a fresh run owns nothing yet"
        );
        let from = history_from(&steps, true);
        assert_eq!(from, 6, "the resumed run began at its deploy: started");
        assert!(steps[from..].iter().all(|e| e.step != Verify));
        assert_eq!(history_from(&steps[7..], true), 0, "its start trimmed away");
    }
}
