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
        let entries: Vec<RawEntry> = self
            .query(
                redis::cmd("XRANGE")
                    .arg(self.key("events"))
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        Ok(decode(entries).into_iter().map(|(_, e)| e).collect())
    }
}

/// One entry of the event stream with its id (`<ms>-<seq>`), for readers that resume.
pub type StreamEntry = (String, StreamEvent);

/// The raw reply shape of XRANGE / one key of XREAD.
type RawEntry = (String, HashMap<String, String>);

fn decode(raw: Vec<RawEntry>) -> Vec<StreamEntry> {
    raw.into_iter()
        .map(|(id, f)| {
            let event = StreamEvent {
                data: f
                    .get("data")
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or(Value::Null),
                event: f.get("event").cloned().unwrap_or_default(),
                task_id: f.get("task_id").cloned().unwrap_or_default(),
            };
            (id, event)
        })
        .collect()
}

impl QueueStore {
    /// The id of the newest entry of the event stream (`0-0` when it is empty).
    pub async fn last_event_id(&self) -> Result<String, QueueError> {
        let newest: Vec<RawEntry> = self
            .query(
                redis::cmd("XREVRANGE")
                    .arg(self.key("events"))
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await?;
        Ok(newest
            .into_iter()
            .next()
            .map(|(id, _)| id)
            .unwrap_or_else(|| "0-0".into()))
    }

    /// Up to `count` entries strictly after the entry id `after`, oldest first.
    pub async fn events_after(
        &self,
        after: &str,
        count: usize,
    ) -> Result<Vec<StreamEntry>, QueueError> {
        let raw: Vec<RawEntry> = self
            .query(
                redis::cmd("XRANGE")
                    .arg(self.key("events"))
                    .arg(format!("({after}"))
                    .arg("+")
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        Ok(decode(raw))
    }

    /// Wait up to `block` on `conn` (a [`QueueStore::blocking_connection`]) for entries after
    /// `after`; empty when none arrived in time.
    pub async fn read_events_blocking(
        &self,
        conn: &mut super::Conn,
        after: &str,
        block: std::time::Duration,
        count: usize,
    ) -> Result<Vec<StreamEntry>, QueueError> {
        type Reply = Option<Vec<(String, Vec<RawEntry>)>>;
        let r: Result<Reply, redis::RedisError> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(self.key("events"))
            .arg(after)
            .query_async(conn)
            .await;
        let reply = self.track(r)?.unwrap_or_default();
        Ok(reply.into_iter().flat_map(|(_, e)| decode(e)).collect())
    }
}
