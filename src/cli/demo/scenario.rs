//! `demo --scenario bugfix`: the deployment guide's E2E staging check.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use super::DemoError;
use super::samples::{bugfix_payload, submit, wait_for};
use crate::config::Config;
use crate::queue::QueueStore;
use crate::task::TaskStatus;

/// How long the scenario waits for the `deploy.succeeded` event.
pub(super) const EVENT_TIMEOUT: Duration = Duration::from_secs(120);

/// `--scenario bugfix`: one P1 bug-fix deploy must publish `deploy.succeeded` and end `completed`.
pub(super) async fn bugfix_scenario(config: &Config, store: &QueueStore) -> Result<(), DemoError> {
    // Watch for the event first, so it cannot be missed.
    let mut pubsub = subscribe(config, &store.key("events:deploy.succeeded")).await?;
    let id = submit(store, "deploy", "P1", bugfix_payload(), 3).await?;
    println!(
        "E2E bug-fix scenario: submitted P1 deploy {id} (PR #128, fix/ops-worker-timeout @ 3f2c1ab9e0d4)"
    );
    let event = event_for(&mut pubsub, &id).await?;
    println!(
        "  event deploy.succeeded: deployment {} at {}",
        event["deployment_id"], event["url"]
    );
    let record = wait_for(store, &id, Duration::from_secs(30), |r| {
        r.status.is_terminal()
    })
    .await
    .ok_or(DemoError::TaskUnfinished)?;
    if record.status != TaskStatus::Completed {
        return Err(DemoError::TaskEnded {
            status: record.status,
            error: record.error.unwrap_or_default(),
        });
    }
    let result = record.result.unwrap_or(Value::Null);
    println!(
        "  task completed: state {} url {}",
        result["state"], result["url"]
    );
    println!("E2E bug-fix scenario passed");
    Ok(())
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
