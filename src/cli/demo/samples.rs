//! The sample tasks of the interactive demo: one of every type and priority (a release verified on
//! the simulator's site of its deployment), a failure, a cancellation, and operations on a
//! deployment; then how each ended.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};

use super::DemoError;
use crate::queue::QueueStore;
use crate::task::{NewTask, TaskRecord, TaskStatus};

/// One sample submission and what it should end as.
pub(super) struct Sample {
    /// The task id.
    id: String,
    /// What it demonstrates, printed next to the id.
    label: &'static str,
    /// The status it should end in; the summary marks a mismatch with `!!`.
    expect: TaskStatus,
}

/// The samples submitted so far; each is printed as it is added.
#[derive(Default)]
struct Samples(Vec<Sample>);

impl Samples {
    /// Print the submission and remember it.
    fn add(&mut self, id: String, label: &'static str, expect: TaskStatus) {
        println!("  submitted {id}  {label:<48} (expect {expect})");
        self.0.push(Sample { id, label, expect });
    }
}

/// Submit one task with source `demo`; its id.
pub(super) async fn submit(
    store: &QueueStore,
    ty: &str,
    priority: &str,
    payload: Value,
    max_retries: u32,
) -> Result<String, DemoError> {
    let record = NewTask {
        task_type: Some(ty.into()),
        priority: Some(priority.into()),
        payload: Some(payload),
        source: Some("demo".into()),
        max_retries: Some(max_retries),
        ..Default::default()
    }
    .validate(max_retries, Utc::now())?;
    let id = record.task_id.to_string();
    store.enqueue(&[record]).await?;
    Ok(id)
}

/// The record of `id` once `done` holds for it, polling every 200 ms; `None` after `timeout`.
pub(super) async fn wait_for(
    store: &QueueStore,
    id: &str,
    timeout: Duration,
    done: impl Fn(&TaskRecord) -> bool,
) -> Option<TaskRecord> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(r)) = store.get(id).await
            && done(&r)
        {
            return Some(r);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// The bug-fix deploy of the guide's staging run.
pub(super) fn bugfix_payload() -> Value {
    json!({
        "project": "morningai-web",
        "repo": "RC918/morningai",
        "branch": "fix/ops-worker-timeout",
        "commit": "3f2c1ab9e0d4",
        "pr": 128,
        "target": "production"
    })
}

/// Samples of every type and priority: independent tasks first, then a deploy cancelled while it
/// builds, then operations on the bug-fix deployment once it is READY.
pub(super) async fn submit_samples(
    store: QueueStore,
    site_url: String,
) -> Result<Vec<Sample>, DemoError> {
    let mut samples = Samples::default();
    let fix = submit_independent(&store, &mut samples).await?;
    let release = json!({"project": "morningai-docs", "watchSecs": 5,
                         "verify": {"url": site_url, "expectBody": "ok", "withinSecs": 60}});
    samples.add(
        submit(&store, "release", "P1", release, 3).await?,
        "P1 release: deploy, verify, promote, watch",
        TaskStatus::Completed,
    );
    submit_cancelled_preview(&store, &mut samples).await?;
    submit_operations(&store, &fix, &mut samples).await?;
    Ok(samples.0)
}

/// Deploys, noops and failures that need nothing else; returns the bug-fix deploy's id.
async fn submit_independent(store: &QueueStore, out: &mut Samples) -> Result<String, DemoError> {
    let fix = submit(store, "deploy", "P1", bugfix_payload(), 3).await?;
    out.add(
        fix.clone(),
        "P1 deploy: bug fix PR #128 to production",
        TaskStatus::Completed,
    );
    let guide = submit(store, "deployment", "P2", json!({"service": "test"}), 3).await?;
    out.add(
        guide,
        "P2 deployment {\"service\":\"test\"} (the guide)",
        TaskStatus::Completed,
    );
    out.add(
        submit(store, "noop", "P0", json!({"sleep_ms": 200}), 3).await?,
        "P0 noop",
        TaskStatus::Completed,
    );
    for _ in 0..3 {
        out.add(
            submit(store, "noop", "P3", json!({"sleep_ms": 500}), 3).await?,
            "P3 noop (low priority)",
            TaskStatus::Completed,
        );
    }
    out.add(
        submit(store, "noop", "P2", json!({"fail": true}), 1).await?,
        "P2 noop that fails: retried, then dead-lettered",
        TaskStatus::Failed,
    );
    out.add(
        submit(store, "deploy", "P2", json!({"project": "error-demo"}), 3).await?,
        "P2 deploy whose build fails (ERROR)",
        TaskStatus::Failed,
    );
    Ok(fix)
}

/// A preview deploy cancelled while it builds: the cancel completes, the deploy ends CANCELED.
async fn submit_cancelled_preview(store: &QueueStore, out: &mut Samples) -> Result<(), DemoError> {
    let payload = json!({"project": "morningai-preview"});
    let preview = submit(store, "deploy", "P2", payload, 3).await?;
    out.add(
        preview.clone(),
        "P2 deploy, cancelled while it builds",
        TaskStatus::Failed,
    );
    let building = wait_for(store, &preview, Duration::from_secs(60), |r| {
        r.deployment_id.is_some() || r.status.is_terminal()
    })
    .await;
    if let Some(dpl) = building.and_then(|r| r.deployment_id) {
        out.add(
            submit(store, "cancel", "P0", json!({"deployment_id": dpl}), 3).await?,
            "P0 cancel that deployment",
            TaskStatus::Completed,
        );
    }
    Ok(())
}

/// Check, promote, redeploy and roll back the bug-fix deployment once its deploy `fix` ended.
async fn submit_operations(
    store: &QueueStore,
    fix: &str,
    out: &mut Samples,
) -> Result<(), DemoError> {
    let ready = wait_for(store, fix, Duration::from_secs(120), |r| {
        r.status.is_terminal()
    })
    .await;
    let Some(dpl) = ready
        .and_then(|r| r.result)
        .and_then(|v| v["deployment_id"].as_str().map(str::to_string))
    else {
        return Err(DemoError::BugfixUnfinished);
    };
    let on = |p: &str| json!({"project": "morningai-web", "deployment_id": dpl, "target": p});
    out.add(
        submit(store, "check", "P2", on("production"), 3).await?,
        "P2 check the deployment",
        TaskStatus::Completed,
    );
    out.add(
        submit(store, "promote", "P1", on("production"), 3).await?,
        "P1 promote it",
        TaskStatus::Completed,
    );
    out.add(
        submit(store, "redeploy", "P3", json!({"deployment_id": dpl}), 3).await?,
        "P3 redeploy it",
        TaskStatus::Completed,
    );
    out.add(
        submit(store, "rollback", "P0", on("production"), 3).await?,
        "P0 roll back to it",
        TaskStatus::Completed,
    );
    Ok(())
}

/// Poll every 500 ms until every sample is terminal or `timeout` passed.
pub(super) async fn wait_until_ended(store: &QueueStore, samples: &[Sample], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut open = 0;
        for s in samples {
            if !store
                .get(&s.id)
                .await
                .ok()
                .flatten()
                .is_some_and(|r| r.status.is_terminal())
            {
                open += 1;
            }
        }
        if open == 0 || Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One line per sample: `ok ` when it ended as expected, `!! ` otherwise.
pub(super) async fn print_outcomes(store: &QueueStore, samples: &[Sample]) {
    println!();
    println!("sample tasks:");
    for s in samples {
        let status = store
            .get(&s.id)
            .await
            .ok()
            .flatten()
            .map(|r| r.status.to_string())
            .unwrap_or_else(|| "missing".into());
        let mark = if status == s.expect.as_str() {
            "ok "
        } else {
            "!! "
        };
        println!("  {mark}{}  {:<48} {status}", s.id, s.label);
    }
}
