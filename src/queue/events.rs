//! The event stream: every task state change (written by the scripts) and the worker and deploy
//! events written here, in a capped stream (for the dashboard and audits) and on pub/sub
//! `events:<event>` (for live watchers).

use std::collections::HashMap;

use serde_json::Value;

use super::{EVENTS_STREAM_MAX, QueueError, QueueStore, now_iso};

/// One entry of the event stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StreamEvent {
    /// `task.created`, `worker.started`, `deploy.succeeded`, ...
    pub event: String,
    /// Empty for events about no task.
    pub task_id: String,
    /// The JSON body (`null` when it does not parse).
    pub data: Value,
}

impl QueueStore {
    /// Emit an event that is not a task state change (worker.*, deploy.*).
    pub async fn emit_event(
        &self,
        event: &str,
        task_id: Option<&str>,
        mut body: serde_json::Map<String, Value>,
    ) -> Result<(), QueueError> {
        body.insert("event".into(), event.into());
        body.insert("ts".into(), now_iso().into());
        if let Some(id) = task_id {
            body.insert("task_id".into(), id.into());
        }
        let json = Value::Object(body).to_string();
        let json = crate::telemetry::scrub::text(&json);
        let mut pipe = redis::pipe();
        pipe.cmd("XADD")
            .arg(self.key("events"))
            .arg("MAXLEN")
            .arg("~")
            .arg(EVENTS_STREAM_MAX)
            .arg("*")
            .arg("event")
            .arg(event)
            .arg("task_id")
            .arg(task_id.unwrap_or(""))
            .arg("data")
            .arg(json.as_ref())
            .ignore();
        pipe.cmd("PUBLISH")
            .arg(self.key(&format!("events:{event}")))
            .arg(json.as_ref())
            .ignore();
        self.pipeline(&pipe).await
    }

    /// The oldest `count` events of the stream, oldest first.
    pub async fn events(&self, count: usize) -> Result<Vec<StreamEvent>, QueueError> {
        type Entry = (String, HashMap<String, String>);
        let entries: Vec<Entry> = self
            .query(
                redis::cmd("XRANGE")
                    .arg(self.key("events"))
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        Ok(entries
            .into_iter()
            .map(|(_, f)| StreamEvent {
                data: f
                    .get("data")
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or(Value::Null),
                event: f.get("event").cloned().unwrap_or_default(),
                task_id: f.get("task_id").cloned().unwrap_or_default(),
            })
            .collect())
    }
}
