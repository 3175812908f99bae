//! The end of a failed release: production goes back to the project's last known good release
//! (the newest `good` one other than the failed deployment), once. The target is stored before the
//! rollback call; a resumed attempt asks Vercel whether production already serves it before
//! calling again. No rollback when production never served the failed deployment (a preview that
//! was not promoted) or when there is nothing to go back to: the history says why.

use serde_json::{Value, json};
use tracing::warn;

use super::run::{Run, StepFailure};
use super::serves_production;
use crate::handlers::TaskError;
use crate::queue::release_run::Fact;
use crate::queue::releases::ReleaseStatus;
use crate::task::StepName::{self, Rollback};
use crate::task::StepState::{Failed, Resumed, Skipped, Started, Succeeded};
use crate::vercel::client::requests;

/// Store that the release failed at `f.step`, so a later attempt goes straight to the rollback.
pub(super) async fn note_failure(run: &mut Run<'_>, f: &StepFailure) -> Result<(), TaskError> {
    let facts = vec![
        (Fact::FailedStep, f.step.as_str().to_string()),
        (Fact::FailedReason, f.reason.clone()),
    ];
    run.note(&[(f.step, Failed, Some(f.reason.clone()))], facts)
        .await
        .map_err(|e| TaskError::Retryable(e.reason))
}

/// Roll production back (unless done or not needed), then fail the task.
pub(super) async fn roll_back(run: &mut Run<'_>) -> Result<Value, TaskError> {
    let (step, reason) = run
        .progress
        .failed
        .clone()
        .unwrap_or((StepName::Deploy, String::new()));
    let outcome = match back_to_known_good(run).await {
        Ok(outcome) => outcome,
        Err(f) if f.retryable && !run.last_attempt() => {
            return Err(TaskError::Retryable(format!("rollback: {}", f.reason)));
        }
        Err(f) => {
            let _ = run
                .note(&[(Rollback, Failed, Some(f.reason.clone()))], vec![])
                .await;
            format!("the rollback failed too: {}", f.reason)
        }
    };
    Err(fail(run, &step, &reason, &outcome).await)
}

/// Do the rollback; what happened, for the task's error.
async fn back_to_known_good(run: &mut Run<'_>) -> Result<String, StepFailure> {
    let bad = run.progress.deployment_id.clone().unwrap_or_default();
    if run.progress.rolled_back {
        return Ok(match &run.progress.rollback_to {
            Some(to) => format!("rolled back to {to}"),
            None => "not rolled back".into(),
        });
    }
    let production = run.spec.deploy.build.target.as_deref() == Some("production");
    let never_served = format!("production never served {bad}: nothing to roll back");
    if !production && !run.progress.promoting {
        return skip(run, never_served).await;
    }
    // A production deployment goes live when its build reaches READY: one whose build failed
    // (or never finished) was never served, and a rollback would only re-point production at
    // what it serves already.
    if production && !run.progress.built {
        return skip(run, never_served).await;
    }
    let target = match run.progress.rollback_to.clone() {
        Some(target) => target,
        None => match run.store.last_known_good(run.project(), Some(&bad)).await {
            Ok(Some(good)) => good.deployment_id,
            Ok(None) => {
                let why = format!(
                    "project {} has no known-good release to go back to",
                    run.project()
                );
                return skip(run, why).await;
            }
            Err(e) => return Err(retry(format!("cannot read the known-good releases: {e}"))),
        },
    };
    if run.progress.rollback_to.is_some() {
        // An earlier attempt may have sent the call: ask Vercel before sending it again.
        run.note(&[(Rollback, Resumed, Some(target.clone()))], vec![])
            .await?;
        let fail = |e| StepFailure::of(Rollback, e);
        if serves_production(run.api, &target).await.map_err(fail)? {
            return done(run, &bad, &target).await;
        }
    } else {
        let detail = Some(format!("back to {target}"));
        run.note(
            &[(Rollback, Started, detail)],
            vec![(Fact::RollbackTo, target.clone())],
        )
        .await?;
    }
    run.api
        .call(requests::rollback(run.project(), &target))
        .await
        .map_err(|e| StepFailure::of(Rollback, super::to_task_error(e)))?;
    done(run, &bad, &target).await
}

/// Production serves `target` again: mark the failed deployment, record, emit.
async fn done(run: &mut Run<'_>, bad: &str, target: &str) -> Result<String, StepFailure> {
    if let Err(e) = run
        .store
        .mark_release(run.project(), bad, ReleaseStatus::RolledBack)
        .await
    {
        warn!(error = %e, deployment_id = bad, "could not mark the release as rolled back");
    }
    let detail = Some(format!("production serves {target} again"));
    run.note(
        &[(Rollback, Succeeded, detail)],
        vec![(Fact::RolledBack, "1".into())],
    )
    .await?;
    run.event(
        "release.rolled_back",
        json!({"rolled_back_to": target, "from": bad}),
    )
    .await;
    Ok(format!("rolled back to {target}"))
}

/// No rollback: say why in the history.
async fn skip(run: &mut Run<'_>, why: String) -> Result<String, StepFailure> {
    run.note(
        &[(Rollback, Skipped, Some(why.clone()))],
        vec![(Fact::RolledBack, "1".into())],
    )
    .await?;
    Ok(format!("not rolled back: {why}"))
}

fn retry(reason: String) -> StepFailure {
    StepFailure {
        step: Rollback,
        reason,
        retryable: true,
    }
}

/// Emit `release.failed` and build the task's error.
pub(super) async fn fail(run: &Run<'_>, step: &StepName, reason: &str, outcome: &str) -> TaskError {
    let body = json!({"step": step, "reason": reason, "outcome": outcome,
                      "rolled_back_to": run.progress.rolled_back.then_some(&run.progress.rollback_to)});
    run.event("release.failed", body).await;
    TaskError::Permanent(format!("release failed at {step}: {reason}; {outcome}"))
}
