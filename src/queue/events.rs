//! The event stream: every task state change (written by the scripts) and the worker and deploy
//! events written here, in a capped stream (for the dashboard and audits) and on pub/sub
//! `events:<event>` (for live watchers).
//!
//! Three entry formats share the stream ("events format version 3", docs/architecture.md §11):
//! an entry of one event (`event`, `task_id`, `data` = its JSON body; what
//! [`QueueStore::emit_event`] writes), and the scripts' batch entries, one per run of events of
//! one kind: `v` = 3 (the enqueue's, claim's and completion's: `rows` holds six values per task
//! joined by a separator, no JSON) and `v` = 2 (events with a reason: `data` lists the tasks as
//! JSON). Readers here expand a batch into one [`StreamEvent`] per task with the same body as a
//! one-event entry, so nobody above this module sees the difference.

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

    /// The oldest `count` events of the stream, oldest first (batch entries expanded).
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
        let mut events: Vec<StreamEvent> =
            decode(entries).events.into_iter().map(|(_, e)| e).collect();
        events.truncate(count);
        Ok(events)
    }
}

/// One event with its place in the stream, as `GET /api/events` sends it in `id:`: the entry id
/// (`<ms>-<seq>`) for an entry of one event (version 1, written by [`QueueStore::emit_event`]),
/// `<entry id>:<index>` for the index-th event of a batch entry (version 2 or 3: the scripts').
pub type StreamEntry = (String, StreamEvent);

/// Events read from the stream, each batch entry expanded into its events.
#[derive(Debug, Default)]
pub struct StreamPage {
    /// The events, oldest first.
    pub events: Vec<StreamEntry>,
    /// The id of the newest stream entry read (where a following read continues).
    pub last_entry: Option<String>,
    /// How many stream entries were read (a page as long as asked for may have more after it).
    pub entries: usize,
}

/// The raw reply shape of XRANGE / one key of XREAD.
type RawEntry = (String, HashMap<String, String>);

fn decode(raw: Vec<RawEntry>) -> StreamPage {
    let mut page = StreamPage {
        entries: raw.len(),
        ..StreamPage::default()
    };
    for (id, f) in raw {
        let event = f.get("event").cloned().unwrap_or_default();
        if f.get("v").is_some_and(|v| v == "3") {
            expand_flat(&id, &event, &f, &mut page.events);
            page.last_entry = Some(id);
            continue;
        }
        let data = f
            .get("data")
            .and_then(|d| serde_json::from_str::<Value>(d).ok());
        match data {
            Some(Value::Object(body)) if f.get("v").is_some_and(|v| v == "2") => {
                expand_batch(&id, &event, &body, &mut page.events)
            }
            data => page.events.push((
                id.clone(),
                StreamEvent {
                    data: data.unwrap_or(Value::Null),
                    event,
                    task_id: f.get("task_id").cloned().unwrap_or_default(),
                },
            )),
        }
        page.last_entry = Some(id);
    }
    page
}

/// The separator of a version-3 entry's values (ASCII unit separator; the scripts replace it by
/// a space in any value that holds it).
const FLAT_SEP: char = '\u{1f}';

/// The events of one version-3 entry: `ts`, and `rows` holding six values per task (id, type,
/// priority, status, attempts, trace id) joined by [`FLAT_SEP`], each read as the body a
/// version-1 entry had.
fn expand_flat(id: &str, event: &str, f: &HashMap<String, String>, out: &mut Vec<StreamEntry>) {
    let ts = f.get("ts").map_or(Value::Null, |t| Value::from(t.as_str()));
    let values: Vec<&str> = f
        .get("rows")
        .map_or(vec![], |r| r.split(FLAT_SEP).collect());
    for (i, row) in values.chunks_exact(6).enumerate() {
        let mut e = serde_json::Map::new();
        e.insert("event".into(), event.into());
        e.insert("task_id".into(), row[0].into());
        for (n, name) in [(1, "type"), (2, "priority"), (3, "status"), (5, "trace_id")] {
            e.insert(name.into(), row[n].into());
        }
        e.insert("attempts".into(), row[4].parse::<u64>().unwrap_or(0).into());
        e.insert("ts".into(), ts.clone());
        let event = StreamEvent {
            event: event.to_string(),
            task_id: row[0].to_string(),
            data: Value::Object(e),
        };
        out.push((format!("{id}:{i}"), event));
    }
}

/// The events of one version-2 entry (`{"v":2,"event","ts","tasks":[row, ...]}`, a row being
/// `[id, type, priority, status, attempts, trace_id, reason?, extra?]`), each with the body a
/// version-1 entry had, so readers see one event per task state change either way.
fn expand_batch(
    id: &str,
    event: &str,
    body: &serde_json::Map<String, Value>,
    out: &mut Vec<StreamEntry>,
) {
    let ts = body.get("ts").cloned().unwrap_or(Value::Null);
    let rows = body.get("tasks").and_then(Value::as_array);
    for (i, row) in rows.into_iter().flatten().enumerate() {
        let cell = |n: usize| row.get(n).cloned().unwrap_or(Value::Null);
        let task_id = cell(0).as_str().unwrap_or_default().to_string();
        let mut e = serde_json::Map::new();
        e.insert("event".into(), event.into());
        e.insert("task_id".into(), task_id.clone().into());
        for (n, name) in [(1, "type"), (2, "priority"), (3, "status"), (5, "trace_id")] {
            e.insert(name.into(), cell(n));
        }
        e.insert("attempts".into(), attempts(&cell(4)).into());
        e.insert("ts".into(), ts.clone());
        if let Some(reason) = row.get(6).and_then(Value::as_str).filter(|r| !r.is_empty()) {
            e.insert("reason".into(), reason.into());
        }
        if let Some(Value::Object(extra)) = row.get(7) {
            e.extend(extra.clone());
        }
        let event = StreamEvent {
            event: event.to_string(),
            task_id,
            data: Value::Object(e),
        };
        out.push((format!("{id}:{i}"), event));
    }
}

/// A row's attempt count: the scripts write it as a decimal string (a number formatted by cjson
/// costs them more than the rest of the row); earlier entries hold a number.
fn attempts(cell: &Value) -> u64 {
    match cell {
        Value::String(s) => s.parse().unwrap_or(0),
        v => v.as_u64().unwrap_or(0),
    }
}

/// Where a read continues after `after` (an SSE id): exclusively after a whole entry, or from
/// the entry itself when only some of its events were handled (`<entry id>:<index>`).
fn range_start(after: &str) -> String {
    match after.split_once(':') {
        Some((entry, _)) => entry.to_string(),
        None => format!("({after}"),
    }
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

    /// The events of up to `count` entries from where `after` (an SSE id, see [`StreamEntry`])
    /// leaves off, oldest first; events of the first entry up to `after` itself are included,
    /// for the caller to skip.
    pub async fn events_after(&self, after: &str, count: usize) -> Result<StreamPage, QueueError> {
        let raw: Vec<RawEntry> = self
            .query(
                redis::cmd("XRANGE")
                    .arg(self.key("events"))
                    .arg(range_start(after))
                    .arg("+")
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        Ok(decode(raw))
    }

    /// Wait up to `block` on `conn` (a [`QueueStore::blocking_connection`]) for entries after
    /// the entry id `after`; empty when none arrived in time.
    pub async fn read_events_blocking(
        &self,
        conn: &mut super::Conn,
        after: &str,
        block: std::time::Duration,
        count: usize,
    ) -> Result<StreamPage, QueueError> {
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
        Ok(decode(reply.into_iter().flat_map(|(_, e)| e).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(fields: &[(&str, &str)]) -> RawEntry {
        let map = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ("7-1".to_string(), map)
    }

    #[test]
    fn a_batch_entry_reads_as_the_bodies_of_one_event_entries() {
        let data = json!({"v": 2, "event": "task.waiting_for_project", "ts": "T", "tasks": [
            ["a", "deploy", "P1", "pending", 1, "tr", "busy", {"project": "p", "holder": "b"}],
            ["c", "noop", "P2", "pending", "3", ""],
        ]});
        let raw = entry(&[
            ("event", "task.waiting_for_project"),
            ("v", "2"),
            ("n", "2"),
            ("data", &data.to_string()),
        ]);
        let page = decode(vec![raw]);
        assert_eq!((page.entries, page.last_entry.as_deref()), (1, Some("7-1")));
        let ids: Vec<&str> = page.events.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["7-1:0", "7-1:1"]);
        let first = &page.events[0].1;
        assert_eq!(first.task_id, "a");
        assert_eq!(
            first.data,
            json!({"event": "task.waiting_for_project", "task_id": "a", "type": "deploy",
                   "priority": "P1", "status": "pending", "attempts": 1, "trace_id": "tr",
                   "ts": "T", "reason": "busy", "project": "p", "holder": "b"})
        );
        assert!(page.events[1].1.data.get("reason").is_none());
        assert_eq!(
            page.events[1].1.data["attempts"],
            json!(3),
            "a count the scripts wrote as a string reads as a number"
        );
    }

    #[test]
    fn a_flat_entry_reads_as_the_bodies_of_one_event_entries() {
        let rows = [
            "a",
            "noop",
            "P2",
            "in_progress",
            "2",
            "tr",
            "b",
            "deploy",
            "P0",
            "in_progress",
            "1",
            "",
        ]
        .join("\u{1f}");
        let raw = entry(&[
            ("event", "task.started"),
            ("v", "3"),
            ("n", "2"),
            ("ts", "T"),
            ("rows", &rows),
        ]);
        let page = decode(vec![raw]);
        assert_eq!((page.entries, page.last_entry.as_deref()), (1, Some("7-1")));
        let ids: Vec<&str> = page.events.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["7-1:0", "7-1:1"]);
        assert_eq!(
            page.events[0].1.data,
            json!({"event": "task.started", "task_id": "a", "type": "noop", "priority": "P2",
                   "status": "in_progress", "attempts": 2, "trace_id": "tr", "ts": "T"})
        );
        assert_eq!(page.events[1].1.task_id, "b");
        assert_eq!(page.events[1].1.data["trace_id"], "");
    }

    #[test]
    fn a_one_event_entry_reads_as_before() {
        let raw = entry(&[
            ("event", "worker.started"),
            ("task_id", ""),
            ("data", "{\"event\":\"worker.started\"}"),
        ]);
        let page = decode(vec![raw]);
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.events[0].0, "7-1");
        assert_eq!(page.events[0].1.data["event"], "worker.started");
        assert_eq!(range_start("7-1"), "(7-1");
        assert_eq!(range_start("7-1:3"), "7-1");
    }
}
