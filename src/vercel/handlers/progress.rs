//! Live progress of a running deploy: each poll records the deployment's state when it changes,
//! and the build log is read (`GET /v3/deployments/{id}/events`, from where the last read ended)
//! when the state changes, every [`LOG_EVERY`] polls, and once the deployment is final. Progress
//! is best effort: a failed read or write is logged and never fails the deploy.

use chrono::{TimeZone, Utc};
use serde_json::Value;
use tracing::debug;

use super::VercelApi;
use crate::queue::QueueStore;
use crate::queue::build::BuildLine;
use crate::vercel::client::{Deployment, VercelError, requests};

/// Read the build log on every this many polls (besides state changes and the end): each read
/// is one more call under the shared Vercel rate limit.
pub const LOG_EVERY: u32 = 3;

/// Record what poll number `poll` saw of `d`.
pub async fn observe(
    api: &VercelApi,
    store: &QueueStore,
    task_id: &str,
    d: &Deployment,
    poll: u32,
) {
    let Some(id) = d.deployment_id() else {
        return;
    };
    let state = d.ready_state();
    let changed = match store.record_build_state(task_id, id, state.as_str()).await {
        Ok(changed) => changed,
        Err(e) => {
            debug!(error = %e, "could not record the build state");
            false
        }
    };
    let due = changed || state.is_final() || poll.is_multiple_of(LOG_EVERY);
    if due && let Err(e) = read_log(api, store, task_id, id).await {
        debug!(error = %e, "could not read the build log");
    }
}

/// Fetch the log lines after the stored cursor and append them.
async fn read_log(
    api: &VercelApi,
    store: &QueueStore,
    task_id: &str,
    deployment_id: &str,
) -> Result<(), String> {
    let since = store
        .build_log_cursor(task_id)
        .await
        .map_err(|e| e.to_string())?;
    let reply = match api
        .call(requests::deployment_events(deployment_id, since))
        .await
    {
        Ok(v) => v,
        Err(VercelError::Client { status: 404, .. }) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let lines: Vec<(i64, BuildLine)> = reply
        .as_array()
        .map(|events| events.iter().filter_map(line).collect())
        .unwrap_or_default();
    let Some(cursor) = lines.iter().map(|(at, _)| *at).max() else {
        return Ok(());
    };
    let lines: Vec<BuildLine> = lines.into_iter().map(|(_, l)| l).collect();
    store
        .append_build_log(task_id, &lines, cursor)
        .await
        .map_err(|e| e.to_string())
}

/// One event as a log line with its `created` time; `None` for events without text.
fn line(event: &Value) -> Option<(i64, BuildLine)> {
    let created = event["created"].as_f64()? as i64;
    let text = event["text"]
        .as_str()
        .or_else(|| event["payload"]["text"].as_str())?;
    let at = Utc.timestamp_millis_opt(created).single()?;
    let stream = event["type"].as_str().unwrap_or("stdout").to_string();
    Some((
        created,
        BuildLine {
            at,
            stream,
            text: text.chars().take(2_000).collect(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_event_shapes_become_lines_and_textless_ones_are_skipped() {
        let flat = json!({"created": 1_700_000_000_000i64, "type": "stderr", "text": "boom"});
        let nested = json!({"created": 1_700_000_000_500i64, "type": "stdout",
                            "payload": {"text": "ok", "deploymentId": "d", "id": "e", "date": 1, "serial": "s"}});
        let (at, l) = line(&flat).unwrap();
        assert_eq!(
            (at, l.stream.as_str(), l.text.as_str()),
            (1_700_000_000_000, "stderr", "boom")
        );
        assert_eq!(line(&nested).unwrap().1.text, "ok");
        assert!(line(&json!({"created": 1, "type": "delimiter"})).is_none());
        let long = json!({"created": 1, "text": "x".repeat(5_000)});
        assert_eq!(line(&long).unwrap().1.text.len(), 2_000);
    }
}
