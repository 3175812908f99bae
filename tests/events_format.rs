//! Events format version 3 against a real redis-server: the scripts write one stream entry per
//! run of events of one kind (flat for the enqueue, claim and completion, JSON for events with a
//! reason), the readers expand it into one event per task with the body a one-event entry has,
//! no value can shift a flat entry's rows, resuming inside a batch neither loses nor repeats an
//! event, and the stream stays capped by events, not entries.

mod support;

use ops_worker::queue::{EVENTS_STREAM_MAX, Failure, QueueStore};
use serde_json::json;
use support::*;

fn stream_len(redis: &RedisServer, queue: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(format!("ops:{{{queue}}}:events"))
        .query(&mut redis.conn())
        .unwrap()
}

async fn enqueue_noops(q: &QueueStore, n: usize) -> Vec<String> {
    let tasks: Vec<_> = (0..n).map(|_| noop(json!({}))).collect();
    let ids = tasks.iter().map(|t| t.task_id.to_string()).collect();
    q.enqueue(&tasks).await.unwrap();
    ids
}

#[tokio::test]
async fn a_batch_is_one_entry_and_reads_as_one_event_per_task() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "fmt").await;
    let ids = enqueue_noops(&q, 5).await;
    assert_eq!(stream_len(&redis, "fmt"), 1, "five task.created, one entry");
    let claimed = q.claim("t/c0", 5).await.unwrap().tasks;
    assert_eq!(claimed.len(), 5);
    assert_eq!(stream_len(&redis, "fmt"), 2, "five task.started, one entry");

    let events = q.events(100).await.unwrap();
    assert_eq!(events.len(), 10, "{events:?}");
    let created: Vec<&str> = events[..5].iter().map(|e| e.task_id.as_str()).collect();
    assert_eq!(created, ids.iter().map(String::as_str).collect::<Vec<_>>());
    let started = &events[5];
    assert_eq!(started.event, "task.started");
    assert_eq!(started.data["event"], "task.started");
    assert_eq!(started.data["task_id"], ids[0].as_str());
    assert_eq!(started.data["type"], "noop");
    assert_eq!(started.data["priority"], "P2");
    assert_eq!(started.data["status"], "in_progress");
    assert_eq!(started.data["attempts"], 1);
    assert!(
        started.data["ts"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(started.data.get("reason").is_none(), "{:?}", started.data);
    assert_eq!(
        q.events(3).await.unwrap().len(),
        3,
        "a count of events, not entries"
    );
}

#[tokio::test]
async fn reading_on_from_inside_a_batch_skips_exactly_what_was_seen() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "resume").await;
    enqueue_noops(&q, 4).await;
    let all = q.events_after("0", 100).await.unwrap();
    assert_eq!(all.entries, 1);
    let sse_ids: Vec<&str> = all.events.iter().map(|(id, _)| id.as_str()).collect();
    let entry = all.last_entry.clone().unwrap();
    assert_eq!(
        sse_ids,
        (0..4).map(|i| format!("{entry}:{i}")).collect::<Vec<_>>()
    );
    // From `<entry>:1` the entry itself is read again (for the caller to skip up to index 1);
    // from the bare entry id it is not.
    let again = q.events_after(&format!("{entry}:1"), 100).await.unwrap();
    assert_eq!(again.events.len(), 4);
    let after = q.events_after(&entry, 100).await.unwrap();
    assert!(after.events.is_empty(), "{:?}", after.events);
}

#[tokio::test]
async fn the_stream_keeps_about_its_cap_in_events() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "cap").await;
    let cap = EVENTS_STREAM_MAX as usize;
    for _ in 0..6 {
        enqueue_noops(&q, cap / 4).await;
    }
    let kept = q.events(10 * cap).await.unwrap().len();
    assert!(
        (cap - 64..=cap).contains(&kept),
        "{kept} events kept for a cap of {cap}"
    );
    let entries = stream_len(&redis, "cap") as usize;
    assert!(entries < kept / 10, "{entries} entries for {kept} events");
}

/// The `v` field of every entry of the stream, oldest first.
fn entry_versions(redis: &RedisServer, queue: &str) -> Vec<(String, String)> {
    let raw: Vec<(String, std::collections::HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(format!("ops:{{{queue}}}:events"))
        .arg("-")
        .arg("+")
        .query(&mut redis.conn())
        .unwrap();
    raw.into_iter()
        .map(|(_, f)| {
            let v = f.get("v").cloned().unwrap_or_default();
            (f.get("event").cloned().unwrap_or_default(), v)
        })
        .collect()
}

#[tokio::test]
async fn the_batch_scripts_write_flat_entries_and_reasons_go_as_json() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "v3").await;
    let ids = enqueue_noops(&q, 2).await;
    let claimed = q.claim("t/c0", 2).await.unwrap().tasks;
    assert_eq!(claimed.len(), 2);
    q.complete(&[(ids[0].clone(), json!({}))]).await.unwrap();
    let failure = Failure {
        id: ids[1].clone(),
        reason: "boom".into(),
        retryable: false,
        backoff: std::time::Duration::ZERO,
    };
    q.fail("t/c0", &[failure]).await.unwrap();
    let versions = entry_versions(&redis, "v3");
    let want: Vec<(String, String)> = [
        ("task.created", "3"),
        ("task.started", "3"),
        ("task.completed", "3"),
        ("task.failed", "2"),
    ]
    .iter()
    .map(|(e, v)| (e.to_string(), v.to_string()))
    .collect();
    assert_eq!(versions, want);
    let events = q.events(100).await.unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.event.as_str(), e.task_id.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("task.created", ids[0].as_str()),
            ("task.created", ids[1].as_str()),
            ("task.started", ids[0].as_str()),
            ("task.started", ids[1].as_str()),
            ("task.completed", ids[0].as_str()),
            ("task.failed", ids[1].as_str()),
        ]
    );
    assert_eq!(events[4].data["status"], "completed");
    assert_eq!(events[4].data["attempts"], 1);
    assert_eq!(events[5].data["reason"], "boom");
}

#[tokio::test]
async fn a_separator_in_a_value_cannot_shift_the_rows_of_a_flat_entry() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "sep").await;
    let mut tasks: Vec<_> = (0..3).map(|_| noop(json!({}))).collect();
    tasks[1].trace_id = "trace\u{1f}with\u{1f}separators".into();
    q.enqueue(&tasks).await.unwrap();
    let ids: Vec<String> = tasks.iter().map(|t| t.task_id.to_string()).collect();
    // A hand-written record value holding it reaches the claim's event too.
    let _: i64 = redis::cmd("HSET")
        .arg(format!("ops:{{sep}}:task:{}", ids[2]))
        .arg("trace_id")
        .arg("hand\u{1f}written")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(q.claim("t/c0", 3).await.unwrap().tasks.len(), 3);
    let events = q.events(100).await.unwrap();
    assert_eq!(events.len(), 6, "{events:?}");
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            let trace = e.data["trace_id"].as_str().unwrap_or("?");
            (e.event.as_str(), e.task_id.as_str(), trace)
        })
        .collect();
    assert_eq!(
        seen[1],
        ("task.created", ids[1].as_str(), "trace with separators")
    );
    assert_eq!(seen[5], ("task.started", ids[2].as_str(), "hand written"));
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.task_id, ids[i % 3], "event {i}: {:?}", e.data);
        assert_eq!(e.data["type"], "noop", "event {i}");
    }
    // The record keeps the value it was given.
    let stored = q.get(&ids[1]).await.unwrap().unwrap();
    assert_eq!(stored.trace_id, "trace\u{1f}with\u{1f}separators");
}
