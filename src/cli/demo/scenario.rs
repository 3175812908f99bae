//! `demo --scenario bugfix`: the deployment guide's bug-fix scenario (a P1 hot fix) with the
//! `release` task: a first release becomes the last known good; the hot fix's verification fails
//! (its simulated site answers 500), so production is rolled back to the known good release
//! automatically and the task fails naming the step; the fixed hot fix then goes out.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use super::DemoError;
use super::samples::{bugfix_payload, submit, wait_for};
use crate::config::Config;
use crate::queue::QueueStore;
use crate::task::{TaskRecord, TaskStatus};
use crate::vercel::sim::SimServer;

/// How long the scenario waits for an event.
pub(super) const EVENT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one release of the scenario may take.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(120);

/// A release of the bug-fix payload to production, verified on the simulated site within
/// `within` seconds, labelled with `commit`.
fn release_payload(sim: &SimServer, commit: &str, within: u64) -> Value {
    let mut p = bugfix_payload();
    p["commit"] = json!(commit);
    p["promote"] = json!(true);
    p["verify"] = json!({"url": sim.site_url(), "expectStatus": 200, "withinSecs": within});
    p
}

/// `--scenario bugfix`: known good, broken hot fix rolled back, fixed hot fix released.
pub(super) async fn bugfix_scenario(
    config: &Config,
    store: &QueueStore,
    sim: &SimServer,
) -> Result<(), DemoError> {
    println!(
        "E2E bug-fix scenario (release with verify, automatic rollback to the last known good)"
    );
    let base = release(store, release_payload(sim, "9a1b2c3d4e5f", 60)).await?;
    let good = expect(&base, TaskStatus::Completed)?;
    println!(
        "  1. release {} completed: {good} is the last known good",
        base.task_id
    );

    // The hot fix is broken: its site answers 500, so its verification fails.
    sim.set_site_status(500);
    let mut pubsub = subscribe(config, &store.key("events:release.rolled_back")).await?;
    let broken = release(store, release_payload(sim, "3f2c1ab9e0d4", 5)).await?;
    expect(&broken, TaskStatus::Failed)?;
    let event = event_for(&mut pubsub, &broken.task_id.to_string()).await?;
    println!(
        "  2. P1 hot fix {} failed: {}",
        broken.task_id,
        broken.error.clone().unwrap_or_default()
    );
    println!(
        "     event release.rolled_back: production back on {}",
        event["rolled_back_to"]
    );
    print_steps(&broken);
    if event["rolled_back_to"] != good.as_str() {
        return Err(DemoError::WrongRollback(
            event["rolled_back_to"].to_string(),
        ));
    }

    sim.set_site_status(200);
    let fixed = release(store, release_payload(sim, "7e8f9a0b1c2d", 60)).await?;
    let id = expect(&fixed, TaskStatus::Completed)?;
    println!(
        "  3. fixed hot fix {} completed: {id} serves production",
        fixed.task_id
    );
    println!("E2E bug-fix scenario passed");
    Ok(())
}

/// Submit a P1 release and wait for its end.
async fn release(store: &QueueStore, payload: Value) -> Result<TaskRecord, DemoError> {
    let id = submit(store, "release", "P1", payload, 3).await?;
    wait_for(store, &id, RELEASE_TIMEOUT, |r| r.status.is_terminal())
        .await
        .ok_or(DemoError::TaskUnfinished)
}

/// The deployment of a release that ended `want`; else the scenario fails.
fn expect(record: &TaskRecord, want: TaskStatus) -> Result<String, DemoError> {
    if record.status != want {
        return Err(DemoError::TaskEnded {
            status: record.status,
            error: record.error.clone().unwrap_or_default(),
        });
    }
    Ok(record.deployment_id.clone().unwrap_or_default())
}

/// The step history of a release, one line per entry.
fn print_steps(record: &TaskRecord) {
    for e in &record.steps {
        let state = serde_json::to_value(e.state).unwrap_or(Value::Null);
        let detail = e.detail.as_deref().unwrap_or("");
        println!(
            "       {:<8} {:<9} {detail}",
            e.step.as_str(),
            state.as_str().unwrap_or("")
        );
    }
}

/// A pub/sub connection subscribed to `channel`.
async fn subscribe(config: &Config, channel: &str) -> Result<redis::aio::PubSub, DemoError> {
    let client = crate::queue::connect::client(&config.redis)?;
    let mut pubsub = client
        .get_async_pubsub()
        .await
        .map_err(DemoError::Subscribe)?;
    pubsub
        .subscribe(channel)
        .await
        .map_err(DemoError::Subscribe)?;
    Ok(pubsub)
}

/// The first event on `pubsub` about task `id`, within [`EVENT_TIMEOUT`].
async fn event_for(pubsub: &mut redis::aio::PubSub, id: &str) -> Result<Value, DemoError> {
    let mut messages = pubsub.on_message();
    let wait = async {
        while let Some(msg) = messages.next().await {
            let body: Value = msg
                .get_payload::<String>()
                .ok()
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or(Value::Null);
            if body["task_id"] == id {
                return Some(body);
            }
        }
        None
    };
    tokio::time::timeout(EVENT_TIMEOUT, wait)
        .await
        .ok()
        .flatten()
        .ok_or(DemoError::NoEvent)
}
