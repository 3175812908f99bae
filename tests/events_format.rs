//! Events format version 2 against a real redis-server: the scripts write one stream entry per
//! run of events of one kind, the readers expand it into one event per task with the body a
//! one-event entry has, resuming inside a batch neither loses nor repeats an event, and the
//! stream stays capped by events, not entries.

mod support;

use ops_worker::queue::{EVENTS_STREAM_MAX, QueueStore};
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
