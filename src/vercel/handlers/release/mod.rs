//! `release`: deploy -> build (wait READY, with live build progress) -> verify (GET the
//! deployment's URL) -> promote (a preview, or when asked) -> watch (re-verify for `watchSecs`)
//! -> record the release as known good. The whole release holds its project's lock. A step that
//! fails after the deployment exists rolls production back to the last known good release
//! (`rollback.rs`) and fails the task naming the step.
//!
//! Every step is recorded (`run.rs`: the record's step history and `<base>:release:<id>`) before
//! the next one starts, so a later attempt resumes at the recorded step: the deployment is
//! created once (the intent and a run id are stored before the create call; a resumed attempt
//! finds the deployment by that run id), promoted at most once and rolled back at most once (a
//! resumed attempt asks Vercel whether production already serves the target).

mod check;
mod rollback;
mod run;

use std::time::Duration;

use serde_json::{Value, json};

use super::deploy::{self, DeployJob, RUN_LABEL};
use super::{DeployPolling, VercelApi, not_mine, to_task_error};
use crate::handlers::{HandlerFuture, TaskContext, TaskError, TaskHandler};
use crate::queue::release_run::Fact;
use crate::queue::releases::ReleaseSource;
use crate::task::{Payload, StepName, StepState, URL_PLACEHOLDER};
use crate::vercel::client::{Deployment, requests};
use run::{Run, StepFailure};

use StepName::{Build, Deploy, Promote, Verify, Watch};
use StepState::{Resumed, Skipped, Started, Succeeded};

/// Runs `release` tasks.
pub(super) struct ReleaseHandler {
    /// The VercelActor.
    pub(super) api: VercelApi,
    /// How long and how often to poll the deployment.
    pub(super) polling: DeployPolling,
    /// The client of the verification GETs (never sends the Vercel token).
    pub(super) http: reqwest::Client,
}

impl TaskHandler for ReleaseHandler {
    fn run(&self, ctx: TaskContext) -> HandlerFuture {
        let (api, polling, http) = (self.api.clone(), self.polling, self.http.clone());
        Box::pin(async move { release(api, polling, http, ctx).await })
    }
}

async fn release(
    api: VercelApi,
    polling: DeployPolling,
    http: reqwest::Client,
    ctx: TaskContext,
) -> Result<Value, TaskError> {
    let Payload::Release(spec) = &ctx.payload else {
        return Err(not_mine("release", ctx.record.task_type));
    };
    // One change per project at a time, for the whole release (rollback included).
    ctx.hold_project(&spec.deploy.name).await?;
    let mut run = Run::load(&api, &ctx, spec, polling, &http).await?;
    if run.progress.failed.is_none() {
        match forward(&mut run).await {
            Ok(result) => return Ok(result),
            Err(f) if f.retryable && !run.last_attempt() => {
                return Err(TaskError::Retryable(format!("{}: {}", f.step, f.reason)));
            }
            Err(f) if run.progress.deployment_id.is_none() => {
                let outcome = "nothing to roll back (no deployment was created)";
                return Err(rollback::fail(&run, &f.step, &f.reason, outcome).await);
            }
            Err(f) => rollback::note_failure(&mut run, &f).await?,
        }
    }
    rollback::roll_back(&mut run).await
}

/// The steps up to success; each one skipped when the progress says it is done.
async fn forward(run: &mut Run<'_>) -> Result<Value, StepFailure> {
    let id = deploy_step(run).await?;
    build_step(run, &id).await?;
    let url = verify_step(run).await?;
    promote_step(run, &id).await?;
    watch_step(run, &url).await?;
    succeed(run, &id, &url).await
}

/// Create the deployment once: the intent (with a run id the deployment's `meta` carries) is
/// stored first; a later attempt finds the deployment by it instead of creating another.
async fn deploy_step(run: &mut Run<'_>) -> Result<String, StepFailure> {
    if let Some(id) = &run.progress.deployment_id {
        return Ok(id.clone());
    }
    let fail = |e| StepFailure::of(Deploy, e);
    let run_id = match run.progress.run.clone() {
        Some(run_id) => {
            if let Some(id) = earlier_deployment(run, &run_id).await.map_err(fail)? {
                let found = format!("found deployment {id}, created by an earlier attempt");
                run.note(
                    &[(Deploy, Resumed, Some(found))],
                    vec![(Fact::DeploymentId, id.clone())],
                )
                .await?;
                return Ok(id);
            }
            let detail = Some("no deployment was created yet; creating it".to_string());
            run.note(&[(Deploy, Resumed, detail)], vec![]).await?;
            run_id
        }
        None => {
            let run_id = Run::new_run_id();
            // Always this run's first entry, with its run id (see `run::history_from`).
            let facts = vec![(Fact::Run, run_id.clone())];
            run.note(&[(Deploy, Started, None)], facts).await?;
            let target = run.spec.deploy.build.target.clone();
            run.event("release.started", json!({"target": target}))
                .await;
            run_id
        }
    };
    let mut build = run.spec.deploy.build.clone();
    build.meta.insert(RUN_LABEL.into(), run_id);
    let job = DeployJob {
        name: Some(run.project()),
        redeploy_of: None,
        build: &build,
    };
    let id = deploy::create(&run.attempt(), &job, run.project())
        .await
        .map_err(fail)?;
    let detail = Some(format!("created deployment {id}"));
    run.note(
        &[(Deploy, Succeeded, detail)],
        vec![(Fact::DeploymentId, id.clone())],
    )
    .await?;
    Ok(id)
}

/// The deployment an earlier attempt of this run created: the one stored on the record (the
/// create stores it there at once), else the project's deployment labelled with the run id.
async fn earlier_deployment(run: &Run<'_>, run_id: &str) -> Result<Option<String>, TaskError> {
    if let Some(id) = &run.record.deployment_id {
        return Ok(Some(id.clone()));
    }
    deploy::find_own_deployment(run.api, run.project(), run.record, Some(run_id)).await
}

/// Wait until the deployment is READY (ERROR, CANCELED or BLOCKED fail the step).
async fn build_step(run: &mut Run<'_>, id: &str) -> Result<(), StepFailure> {
    if run.progress.built {
        return Ok(());
    }
    let state = run.beginning(Build);
    run.note(&[(Build, state, Some(id.to_string()))], vec![])
        .await?;
    let at = run.attempt();
    let fail = |e| StepFailure::of(Build, e);
    let d = deploy::poll_until_final(&at, run.polling, id)
        .await
        .map_err(fail)?;
    deploy::finish(&at, &d, id, run.project(), false)
        .await
        .map_err(fail)?;
    let url = d.url.clone().unwrap_or_default();
    let detail = Some(format!("READY at {url}"));
    let facts = vec![(Fact::Built, "1".into()), (Fact::Url, url)];
    run.note(&[(Build, Succeeded, detail)], facts).await
}

/// GET the URL until it answers as expected; the URL checked.
async fn verify_step(run: &mut Run<'_>) -> Result<String, StepFailure> {
    let host = run.progress.url.clone().unwrap_or_default();
    let url = run.spec.verify.url_for(&host);
    if run.progress.verified {
        return Ok(url);
    }
    if host.is_empty()
        && run
            .spec
            .verify
            .url
            .as_deref()
            .is_none_or(|u| u.contains(URL_PLACEHOLDER))
    {
        return Err(StepFailure::permanent(
            Verify,
            "Vercel gave the deployment no URL to verify; name one in verify.url",
        ));
    }
    let state = run.beginning(Verify);
    run.note(&[(Verify, state, Some(url.clone()))], vec![])
        .await?;
    let limit = Duration::from_secs(run.spec.verify.within_secs);
    let passed = check::verify(run.http, &url, &run.spec.verify, limit)
        .await
        .map_err(|reason| StepFailure::permanent(Verify, reason))?;
    let mut steps = vec![(Verify, Succeeded, Some(passed))];
    if !run.spec.promote {
        let why = match run.spec.deploy.build.target.as_deref() {
            Some("production") => "a production deployment serves production once READY",
            _ => "promote: false",
        };
        steps.push((Promote, Skipped, Some(why.to_string())));
    }
    run.note(&steps, vec![(Fact::Verified, "1".into())]).await?;
    run.event("release.verified", json!({"url": url})).await;
    Ok(url)
}

/// Point production at the deployment, at most once.
async fn promote_step(run: &mut Run<'_>, id: &str) -> Result<(), StepFailure> {
    if !run.spec.promote || run.progress.promoted {
        return Ok(());
    }
    let fail = |e| StepFailure::of(Promote, e);
    if run.progress.promoting {
        // An earlier attempt may have sent the call: ask Vercel before sending it again.
        run.note(&[(Promote, Resumed, Some(id.to_string()))], vec![])
            .await?;
        if serves_production(run.api, id).await.map_err(fail)? {
            let detail = Some(format!("production already serves {id}"));
            run.note(
                &[(Promote, Succeeded, detail)],
                vec![(Fact::Promoted, "1".into())],
            )
            .await?;
            run.event("release.promoted", json!({})).await;
            return Ok(());
        }
    } else {
        let facts = vec![(Fact::Promoting, "1".into())];
        run.note(&[(Promote, Started, Some(id.to_string()))], facts)
            .await?;
    }
    run.api
        .call(requests::promote(run.project(), id))
        .await
        .map_err(|e| fail(to_task_error(e)))?;
    let detail = Some(format!("production serves {id}"));
    run.note(
        &[(Promote, Succeeded, detail)],
        vec![(Fact::Promoted, "1".into())],
    )
    .await?;
    run.event("release.promoted", json!({})).await;
    Ok(())
}

/// Vercel says production serves deployment `id` now.
pub(super) async fn serves_production(api: &VercelApi, id: &str) -> Result<bool, TaskError> {
    let d: Deployment = super::fetch(api, requests::get_deployment(id)).await?;
    Ok(d.is_promoted())
}

/// Re-verify the live release until the watch window (stored when it starts) ends.
async fn watch_step(run: &mut Run<'_>, url: &str) -> Result<(), StepFailure> {
    if run.spec.watch_secs == 0 || run.progress.watched {
        return Ok(());
    }
    let until = match run.progress.watch_until_ms {
        Some(until) => {
            let detail = Some(format!("until {}", iso(until)));
            run.note(&[(Watch, Resumed, detail)], vec![]).await?;
            until
        }
        None => {
            let until = chrono::Utc::now().timestamp_millis() + run.spec.watch_secs as i64 * 1000;
            let detail = Some(format!("for {} s", run.spec.watch_secs));
            let facts = vec![(Fact::WatchUntilMs, until.to_string())];
            run.note(&[(Watch, Started, detail)], facts).await?;
            until
        }
    };
    let checks = check::watch(run.http, url, &run.spec.verify, until)
        .await
        .map_err(|reason| StepFailure::permanent(Watch, reason))?;
    let detail = Some(format!("{checks} checks passed"));
    run.note(
        &[(Watch, Succeeded, detail)],
        vec![(Fact::Watched, "1".into())],
    )
    .await
}

/// Record the release as known good (when production serves it) and answer the result.
async fn succeed(run: &mut Run<'_>, id: &str, url: &str) -> Result<Value, StepFailure> {
    let production = run.spec.deploy.build.target.as_deref() == Some("production");
    let host = run.progress.url.clone();
    if run.progress.promoted || production {
        let source = if run.progress.promoted {
            ReleaseSource::Promote
        } else {
            ReleaseSource::Deploy
        };
        deploy::record_release(
            run.store,
            run.record,
            run.project(),
            id,
            host.clone(),
            source,
        )
        .await;
    }
    let result = json!({
        "action": "release", "project": run.project(), "deployment_id": id, "url": host,
        "target": run.spec.deploy.build.target, "verified_url": url,
        "promoted": run.progress.promoted,
    });
    run.event("release.succeeded", result.clone()).await;
    Ok(result)
}

/// RFC 3339 of epoch ms, for the history.
fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
