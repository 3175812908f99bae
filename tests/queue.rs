//! The Redis store's atomic steps, against a real redis-server, without a worker pool; listings
//! filtered and paged in Redis within their scan budget.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ops_worker::queue::{
    Applied, CancelOutcome, Done, Failure, ListIndex, ListQuery, ProjectClaim, QueueStore,
    ReplayOutcome, TaskFacts, TaskPage, scan_budget,
};
use ops_worker::task::{NewTask, Priority, TaskRecord, TaskStatus, TaskType};
use serde_json::json;
use support::*;

#[tokio::test]
async fn claims_follow_strict_priority_then_fifo_and_skip_paused() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "prio").await;
    let mut expected = Vec::new();
    // Interleave priorities on submission; claims must come out P0 first, FIFO within each.
    let plan = ["P3", "P1", "P2", "P0", "P1", "P3", "P0", "P2"];
    let mut by_prio: Vec<(String, String)> = Vec::new();
    for p in plan {
        let t = task("noop", p, json!({}));
        by_prio.push((p.to_string(), t.task_id.to_string()));
        q.enqueue(&[t]).await.unwrap();
    }
    for p in ["P0", "P1", "P2", "P3"] {
        expected.extend(
            by_prio
                .iter()
                .filter(|(q, _)| q == p)
                .map(|(_, id)| id.clone()),
        );
    }

    q.pause(&[Priority::P3]).await.unwrap();
    let mut got = Vec::new();
    loop {
        let batch = q.claim("t/c0", 1).await.unwrap().tasks;
        if batch.is_empty() {
            break;
        }
        got.push(batch[0].id.clone());
    }
    assert_eq!(
        got,
        expected[..6],
        "P0..P2 in order, P3 held back while paused"
    );
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.pending.get(Priority::P3), 2);
    assert_eq!(stats.paused, vec![Priority::P3]);

    q.resume(&[Priority::P3]).await.unwrap();
    let rest = q.claim("t/c0", 10).await.unwrap().tasks;
    let rest: Vec<String> = rest.into_iter().map(|c| c.id).collect();
    assert_eq!(rest, expected[6..], "P3 drains after resume, FIFO");
}

/// A batch handed back unstarted (a draining pool, a batch that ran past its time) goes back to
/// the head of its lists in claim order: the next claim sees strict priority and FIFO again.
#[tokio::test]
async fn a_batch_handed_back_keeps_priority_and_fifo_order() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "handback").await;
    let plan = ["P2", "P1", "P2", "P1", "P2"];
    let tasks: Vec<_> = plan.iter().map(|p| task("noop", p, json!({}))).collect();
    q.enqueue(&tasks).await.unwrap();
    let first: Vec<String> = q
        .claim("t/c0", 10)
        .await
        .unwrap()
        .tasks
        .into_iter()
        .map(|c| c.id)
        .collect();
    let id = |i: usize| tasks[i].task_id.to_string();
    assert_eq!(first, [id(1), id(3), id(0), id(2), id(4)]);
    let out = q.release("t/c0", &first).await.unwrap();
    let answered: Vec<String> = out.iter().map(|o| o.id.clone()).collect();
    assert_eq!(answered, first, "one answer per task, in the order given");
    assert!(
        out.iter().all(|o| o.applied == Applied::Requeued),
        "{out:?}"
    );
    let again: Vec<String> = q
        .claim("t/c1", 10)
        .await
        .unwrap()
        .tasks
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(again, first, "the same order after the hand-back");
}

#[tokio::test]
async fn claim_takes_a_lease_and_counts_the_attempt() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "lease").await;
    let t = noop(json!({}));
    q.enqueue(std::slice::from_ref(&t)).await.unwrap();
    let claimed = q.claim("t/c0", 5).await.unwrap().tasks;
    assert_eq!(claimed.len(), 1);
    let rec = claimed[0].record.as_ref().unwrap();
    assert_eq!(rec.status, TaskStatus::InProgress);
    assert_eq!(rec.attempts, 1);
    assert_eq!(q.stats().await.unwrap().in_flight, 1);
    // Renewal by the owner keeps it; by anyone else reports it lost.
    let (lost, _) = q.renew("t/c0", &[t.task_id.to_string()]).await.unwrap();
    assert!(lost.is_empty());
    let (lost, _) = q.renew("t/c9", &[t.task_id.to_string()]).await.unwrap();
    assert_eq!(lost, vec![t.task_id.to_string()]);
}

#[tokio::test]
async fn idempotency_key_returns_the_first_task() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "idem").await;
    let mk = || {
        NewTask {
            task_type: Some("noop".into()),
            idempotency_key: Some("deploy-42".into()),
            ..Default::default()
        }
        .validate(3, chrono::Utc::now())
        .unwrap()
    };
    let (a, b) = (mk(), mk());
    assert_ne!(a.task_id, b.task_id);
    let first = q.enqueue(std::slice::from_ref(&a)).await.unwrap();
    let second = q.enqueue(&[b]).await.unwrap();
    assert_eq!(first, vec![(a.task_id.to_string(), true)]);
    assert_eq!(second, vec![(a.task_id.to_string(), false)]);
    assert_eq!(q.stats().await.unwrap().pending_total(), 1);
}

#[tokio::test]
async fn retry_backoff_then_dead_letter_then_replay() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "retry").await;
    let mut t = noop(json!({}));
    t.max_retries = 1;
    let id = t.task_id.to_string();
    q.enqueue(&[t]).await.unwrap();

    // Attempt 1 fails (retryable): scheduled for retry, not claimable before its back-off.
    q.claim("t/c0", 1).await.unwrap();
    let fail = |backoff| Failure {
        id: id.clone(),
        reason: "boom".into(),
        retryable: true,
        backoff,
    };
    let before = chrono::Utc::now().timestamp_millis();
    let out = q
        .fail("t/c0", &[fail(Duration::from_millis(1500))])
        .await
        .unwrap();
    let Applied::Retrying { at_ms } = out[0].applied else {
        panic!("expected a retry, got {out:?}");
    };
    assert!(at_ms >= before + 1_400, "the retry waits out its back-off");
    assert_eq!(out[0].task_type, Some(TaskType::Noop));
    let rec = q.get(&id).await.unwrap().unwrap();
    assert_eq!(rec.status, TaskStatus::Retrying);
    assert_eq!(rec.error.as_deref(), Some("boom"));
    assert!(q.claim("t/c0", 1).await.unwrap().tasks.is_empty());
    assert_eq!(q.promote_due(100).await.unwrap(), 0, "not due yet");
    eventually(Duration::from_secs(5), "retry due", || async {
        (q.promote_due(100).await.unwrap() == 1).then_some(())
    })
    .await;

    // Attempt 2 fails too: max_retries = 1 is exhausted, so it is dead-lettered with the reason.
    let c = q.claim("t/c0", 1).await.unwrap().tasks;
    assert_eq!(c[0].record.as_ref().unwrap().attempts, 2);
    let out = q.fail("t/c0", &[fail(Duration::ZERO)]).await.unwrap();
    assert_eq!(
        out[0].applied,
        Applied::DeadLettered {
            reason: "boom (gave up after 2 attempts)".into()
        }
    );
    let rec = q.get(&id).await.unwrap().unwrap();
    assert_eq!(rec.status, TaskStatus::Failed);
    assert!(
        rec.error
            .as_deref()
            .unwrap()
            .contains("gave up after 2 attempts")
    );
    let s = q.stats().await.unwrap();
    assert_eq!((s.failed, s.failed_total), (1, 1));
    assert_eq!(q.failed(10).await.unwrap()[0].task_id.to_string(), id);

    // Replay: pending again with a fresh attempt budget.
    assert_eq!(q.replay(&id).await.unwrap(), ReplayOutcome::Replayed);
    let rec = q.get(&id).await.unwrap().unwrap();
    assert_eq!((rec.status, rec.attempts), (TaskStatus::Pending, 0));
    assert_eq!(q.stats().await.unwrap().failed, 0);
    assert_eq!(
        q.replay(&id).await.unwrap(),
        ReplayOutcome::NotFailed(Some(TaskStatus::Pending))
    );
}

#[tokio::test]
async fn cancel_removes_waiting_tasks_and_flags_running_ones() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "cancel").await;
    let (a, b) = (noop(json!({})), noop(json!({})));
    q.enqueue(&[a.clone(), b.clone()]).await.unwrap();
    let running = q.claim("t/c0", 1).await.unwrap().tasks.remove(0).id;
    let waiting = if running == a.task_id.to_string() {
        b
    } else {
        a
    };

    assert_eq!(
        q.cancel(&waiting.task_id.to_string()).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(q.stats().await.unwrap().pending_total(), 0);
    assert_eq!(q.cancel(&running).await.unwrap(), CancelOutcome::Cancelling);
    let (_, cancel) = q
        .renew("t/c0", std::slice::from_ref(&running))
        .await
        .unwrap();
    assert_eq!(cancel, vec![running.clone()]);
    let out = q.finish_cancel("t/c0", &running).await.unwrap();
    assert!(
        matches!(out[0].applied, Applied::Cancelled { .. }),
        "{out:?}"
    );
    assert_eq!(
        q.get(&running).await.unwrap().unwrap().status,
        TaskStatus::Cancelled
    );
    assert_eq!(q.cancel("nope").await.unwrap(), CancelOutcome::NotFound);
}

#[tokio::test]
async fn lapsed_leases_are_reclaimed_and_repeat_killers_dead_lettered() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "reclaim").await;
    let mut t = noop(json!({}));
    t.max_retries = 1;
    let id = t.task_id.to_string();
    q.enqueue(&[t]).await.unwrap();
    // Expire leases by hand: move the deadline into the past.
    let mut conn = redis.conn();
    let expire = |conn: &mut redis::Connection| {
        let _: i64 = redis::cmd("ZADD")
            .arg("ops:{reclaim}:inflight")
            .arg(0)
            .arg(&id)
            .query(conn)
            .unwrap();
    };
    q.claim("t/c0", 1).await.unwrap();
    expire(&mut conn);
    let out = q.reclaim(100).await.unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].applied, Applied::Requeued);
    assert_eq!(
        q.get(&id).await.unwrap().unwrap().status,
        TaskStatus::Pending
    );
    // Its old owner can no longer record an outcome for the lost attempt.
    assert_eq!(
        q.fail(
            "t/c0",
            &[Failure {
                id: id.clone(),
                reason: "late".into(),
                retryable: false,
                backoff: Duration::ZERO
            }]
        )
        .await
        .unwrap()[0]
            .applied,
        Applied::Stale {
            status: "pending".into()
        }
    );

    q.claim("t/c1", 1).await.unwrap();
    expire(&mut conn);
    let out = q.reclaim(100).await.unwrap();
    assert!(
        matches!(&out[0].applied, Applied::DeadLettered { reason } if reason.contains("lease expired")),
        "second crash uses the last attempt: {out:?}"
    );
    assert_eq!(out[0].type_label(), "noop");
    let rec = q.get(&id).await.unwrap().unwrap();
    assert_eq!(rec.status, TaskStatus::Failed);
    assert!(rec.error.unwrap().contains("lease expired"));
    assert_eq!(q.stats().await.unwrap().reclaimed_total, 1);
}

#[tokio::test]
async fn events_are_streamed_and_published_for_each_state_change() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "events").await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub
        .subscribe("ops:{events}:events:task.completed")
        .await
        .unwrap();

    let t = noop(json!({}));
    let id = t.task_id.to_string();
    q.enqueue(&[t]).await.unwrap();
    q.claim("t/c0", 1).await.unwrap();
    q.complete(&[(id.clone(), json!({"ok": true}))])
        .await
        .unwrap();

    use futures::StreamExt;
    let msg = tokio::time::timeout(Duration::from_secs(5), pubsub.on_message().next())
        .await
        .expect("published event")
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(body["task_id"], id.as_str());
    assert_eq!(body["event"], "task.completed");

    let kinds: Vec<String> = q
        .events(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.task_id == id)
        .map(|e| e.event)
        .collect();
    assert_eq!(kinds, ["task.created", "task.started", "task.completed"]);
    let rec = q.get(&id).await.unwrap().unwrap();
    assert_eq!(rec.result, Some(json!({"ok": true})));
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("ops:{{events}}:task:{id}"))
        .query(&mut redis.conn())
        .unwrap();
    assert!(
        (86_000..=86_400).contains(&ttl),
        "completed records expire after TASK_RETENTION_COMPLETED (24 h): {ttl}"
    );
}

#[tokio::test]
async fn scripts_report_the_outcome_they_applied_not_the_one_asked_for() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "outcomes").await;
    let (a, b) = (noop(json!({})), noop(json!({})));
    let (ida, idb) = (a.task_id.to_string(), b.task_id.to_string());
    q.enqueue(&[a, b]).await.unwrap();
    assert_eq!(q.claim("t/c0", 2).await.unwrap().tasks.len(), 2);

    // A retryable failure of a task an operator cancelled meanwhile is a cancel, not a retry.
    assert_eq!(q.cancel(&ida).await.unwrap(), CancelOutcome::Cancelling);
    let failure = Failure {
        id: ida.clone(),
        reason: "boom".into(),
        retryable: true,
        backoff: Duration::ZERO,
    };
    let out = q
        .fail("t/c0", std::slice::from_ref(&failure))
        .await
        .unwrap();
    assert!(
        matches!(&out[0].applied, Applied::Cancelled { reason } if reason.contains("boom")),
        "{out:?}"
    );
    assert_eq!(q.stats().await.unwrap().retrying, 0);

    // Completing twice: the second report is stale; so is a report about a finished task.
    let done = [(idb.clone(), json!({}))];
    assert_eq!(
        q.complete(&done).await.unwrap()[0].applied,
        Applied::Completed
    );
    assert_eq!(
        q.complete(&done).await.unwrap()[0].applied,
        Applied::Stale {
            status: "completed".into()
        }
    );
    let out = q
        .release("t/c0", &[idb.clone(), "no-such-id".into()])
        .await
        .unwrap();
    assert_eq!(
        out.iter().map(|o| o.applied.clone()).collect::<Vec<_>>(),
        [
            Applied::Stale {
                status: "completed".into()
            },
            Applied::Stale {
                status: "missing".into()
            }
        ]
    );
    assert_eq!(out[1].task_type, None);
}

#[tokio::test]
async fn finished_records_are_bounded_by_age_and_by_count() {
    use ops_worker::config::{Config, Mode};
    let redis = RedisServer::start();
    let mut vars = base_env(&redis.url(), "caps");
    for (k, v) in [
        ("TASK_KEEP_COMPLETED", "3"),
        ("TASK_KEEP_FAILED", "2"),
        ("TASK_RETENTION_COMPLETED", "1h"),
    ] {
        vars.insert(k.into(), v.into());
    }
    let config = Config::from_vars(&vars, Mode::Tool).unwrap();
    let q = ops_worker::queue::QueueStore::new(&config.redis, &config.queue)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..9).map(|_| noop(json!({}))).collect();
    let ids: Vec<String> = tasks.iter().map(|t| t.task_id.to_string()).collect();
    q.enqueue(&tasks).await.unwrap();
    for id in &ids[..5] {
        assert_eq!(q.claim("t/c0", 1).await.unwrap().tasks[0].id, *id);
        q.complete(&[(id.clone(), json!({}))]).await.unwrap();
    }
    for id in &ids[5..9] {
        assert_eq!(q.claim("t/c0", 1).await.unwrap().tasks[0].id, *id);
        let f = Failure {
            id: id.clone(),
            reason: "boom".into(),
            retryable: false,
            backoff: Duration::ZERO,
        };
        q.fail("t/c0", &[f]).await.unwrap();
    }
    // Ages: completed records live an hour, dead letters the failed retention (7 days).
    let ttl = |id: &str| -> i64 {
        redis::cmd("TTL")
            .arg(format!("ops:{{caps}}:task:{id}"))
            .query(&mut redis.conn())
            .unwrap()
    };
    assert!((3_500..=3_600).contains(&ttl(&ids[0])), "{}", ttl(&ids[0]));
    assert!(ttl(&ids[5]) > 6 * 86_400, "{}", ttl(&ids[5]));
    // Counts: the oldest beyond the caps go.
    assert_eq!(q.trim(1000).await.unwrap(), (2, 2));
    // (Tasks finished within the same millisecond tie on age, so count rather than name them.)
    let mut kept = (0, 0);
    for (i, id) in ids.iter().enumerate() {
        if q.get(id).await.unwrap().is_some() {
            if i < 5 { kept.0 += 1 } else { kept.1 += 1 }
        }
    }
    assert_eq!(kept, (3, 2));
    assert_eq!(q.stats().await.unwrap().failed, 2);
    assert_eq!(q.trim(1000).await.unwrap(), (0, 0));
}

/// Reset `INFO commandstats` (commands a script runs are counted there too).
fn reset_command_stats(conn: &mut redis::Connection) {
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(conn).unwrap();
}

/// Calls of `command` since the last [`reset_command_stats`], as Redis counted them.
fn command_calls(conn: &mut redis::Connection, command: &str) -> usize {
    let info: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Every page of `query`, following the cursors to the end.
async fn walk(q: &QueueStore, mut query: ListQuery) -> Vec<TaskPage> {
    let mut pages = Vec::new();
    loop {
        let page = q.list(&query).await.unwrap();
        let next = page.next.clone();
        pages.push(page);
        assert!(pages.len() < 2_000, "the walk does not end");
        match next {
            Some(c) => query.cursor = Some(c),
            None => return pages,
        }
    }
}

fn ids(pages: &[TaskPage]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p.tasks.iter().map(|t| t.task_id.to_string()))
        .collect()
}

#[tokio::test]
async fn a_filtered_listing_reads_only_its_scan_budget_of_large_records() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "bigmeta").await;
    // 1,000 records with 60 KB of metadata each, in batches of 50; three deploys among them.
    let blob = "x".repeat(60 * 1024);
    let mut deploys = Vec::new();
    for batch in 0..20 {
        let tasks: Vec<TaskRecord> = (0..50)
            .map(|i| {
                let mut t = if [7, 480, 993].contains(&(batch * 50 + i)) {
                    let t = task("deploy", "P1", json!({"project": "web"}));
                    deploys.push(t.task_id.to_string());
                    t
                } else {
                    noop(json!({}))
                };
                t.metadata = json!({ "blob": blob });
                t
            })
            .collect();
        q.enqueue(&tasks).await.unwrap();
    }
    let mut conn = redis.conn();
    let order: Vec<String> = redis::cmd("ZREVRANGE")
        .arg(q.key("recent"))
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(order.len(), 1_000);
    let expected: Vec<&String> = order.iter().filter(|id| deploys.contains(id)).collect();

    // limit=1&type=deploy, page after page: Redis itself counts what each page read.
    let mut query = ListQuery::new(ListIndex::Recent, 1);
    query.task_type = Some(TaskType::Deploy);
    let (mut got, mut filter_reads, mut empty_with_next) = (Vec::new(), 0, 0);
    loop {
        reset_command_stats(&mut conn);
        let page = q.list(&query).await.unwrap();
        let (hmget, hgetall) = (
            command_calls(&mut conn, "hmget"),
            command_calls(&mut conn, "hgetall"),
        );
        assert!(hmget <= scan_budget(1), "{hmget} filter reads for limit=1");
        assert_eq!(hmget, page.examined, "one small read per entry examined");
        assert_eq!(hgetall, page.tasks.len(), "whole records only for matches");
        assert!(page.tasks.iter().all(|t| t.task_type == TaskType::Deploy));
        filter_reads += hmget;
        assert!(filter_reads <= 1_000, "the walk reads an entry twice");
        got.extend(page.tasks.iter().map(|t| t.task_id.to_string()));
        match page.next {
            Some(c) => {
                empty_with_next += usize::from(page.tasks.is_empty());
                query.cursor = Some(c);
            }
            None => break,
        }
    }
    assert_eq!(got.iter().collect::<Vec<_>>(), expected);
    assert_eq!(
        filter_reads, 1_000,
        "the walk examines each entry exactly once"
    );
    assert!(
        empty_with_next > 0,
        "budget-bound pages can be empty yet go on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_lists_every_match_once_while_tasks_arrive_at_the_head() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "paging").await;
    // 300 tasks in batches of 30 (one score per batch, so cursors land inside runs of equal
    // scores); every third is P1.
    let mut wanted = HashSet::new();
    for _ in 0..10 {
        let tasks: Vec<TaskRecord> = (0..30)
            .map(|i| task("noop", if i % 3 == 0 { "P1" } else { "P2" }, json!({})))
            .collect();
        wanted.extend(
            tasks
                .iter()
                .filter(|t| t.priority == Priority::P1)
                .map(|t| t.task_id.to_string()),
        );
        q.enqueue(&tasks).await.unwrap();
    }
    // Meanwhile another writer adds P1 tasks (at most 300, so the capped index keeps the rest),
    // and the walk itself adds two more between any two pages.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (q, stop) = (q.clone(), stop.clone());
        tokio::spawn(async move {
            let mut ids = HashSet::new();
            while !stop.load(Ordering::Relaxed) && ids.len() < 300 {
                let t = task("noop", "P1", json!({}));
                ids.insert(t.task_id.to_string());
                q.enqueue(&[t]).await.unwrap();
            }
            ids
        })
    };
    let mut query = ListQuery::new(ListIndex::Recent, 7);
    query.priority = Some(Priority::P1);
    let (mut pages, mut new_ids) = (Vec::new(), HashSet::new());
    loop {
        let page = q.list(&query).await.unwrap();
        query.cursor = page.next.clone();
        pages.push(page);
        if query.cursor.is_none() {
            break;
        }
        assert!(pages.len() < 200, "the walk does not end");
        let more: Vec<TaskRecord> = (0..2).map(|_| task("noop", "P1", json!({}))).collect();
        new_ids.extend(more.iter().map(|t| t.task_id.to_string()));
        q.enqueue(&more).await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    new_ids.extend(writer.await.unwrap());

    assert!(pages.len() >= 15, "{} pages", pages.len());
    assert!(pages.iter().all(|p| p.tasks.len() <= 7));
    assert!(
        pages
            .iter()
            .all(|p| p.tasks.iter().all(|t| t.priority == Priority::P1))
    );
    let seen = ids(&pages);
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no task is listed twice");
    assert!(
        wanted.is_subset(&unique),
        "every task there all along is listed"
    );
    assert!(unique.difference(&wanted).all(|id| new_ids.contains(id)));
}

#[tokio::test]
async fn a_cursor_keeps_its_place_when_its_own_entry_moves_or_goes() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "cursor").await;
    // One script call: all 20 share one score, so the order is by id alone.
    let tasks: Vec<TaskRecord> = (0..20).map(|_| noop(json!({}))).collect();
    q.enqueue(&tasks).await.unwrap();
    let mut conn = redis.conn();
    let order: Vec<String> = redis::cmd("ZREVRANGE")
        .arg(q.key("recent"))
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    let first = q.list(&ListQuery::new(ListIndex::Recent, 5)).await.unwrap();
    assert_eq!(ids(std::slice::from_ref(&first)), order[..5]);
    // The cursor's own task changes (it moves to the head); then an entry before it goes.
    assert_eq!(q.cancel(&order[4]).await.unwrap(), CancelOutcome::Cancelled);
    let _: i64 = redis::cmd("ZREM")
        .arg(q.key("recent"))
        .arg(&order[2])
        .query(&mut conn)
        .unwrap();
    let mut query = ListQuery::new(ListIndex::Recent, 5);
    query.cursor = first.next;
    let second = q.list(&query).await.unwrap();
    assert_eq!(ids(std::slice::from_ref(&second)), order[5..10]);
    // The last page has no next cursor; the one before it still has one.
    query.cursor = second.next;
    query.limit = 10;
    let last = q.list(&query).await.unwrap();
    assert_eq!(ids(std::slice::from_ref(&last)), order[10..]);
    assert_eq!(last.next, None);
}

/// Completed, dead-lettered, pending deploy, cancelled and pending tasks, in that order.
async fn one_task_in_each_state(q: &QueueStore) -> [TaskRecord; 5] {
    let done = task("noop", "P0", json!({}));
    let dead = task("noop", "P0", json!({}));
    let deploy = task("deploy", "P1", json!({"project": "web"}));
    let gone = task("noop", "P3", json!({}));
    let waiting = task("noop", "P2", json!({}));
    let id = |t: &TaskRecord| t.task_id.to_string();
    q.enqueue(&[done.clone(), dead.clone()]).await.unwrap();
    assert_eq!(q.claim("t/c0", 2).await.unwrap().tasks.len(), 2);
    q.complete(&[(id(&done), json!({}))]).await.unwrap();
    let failure = Failure {
        id: id(&dead),
        reason: "boom".into(),
        retryable: false,
        backoff: Duration::ZERO,
    };
    q.fail("t/c0", &[failure]).await.unwrap();
    q.enqueue(&[deploy.clone(), gone.clone(), waiting.clone()])
        .await
        .unwrap();
    assert_eq!(
        q.cancel(&id(&gone)).await.unwrap(),
        CancelOutcome::Cancelled
    );
    [done, dead, deploy, gone, waiting]
}

/// Bad entries in the listing indexes: an id with no record, a key that is not a hash, an id and a
/// record that are not UTF-8.
fn plant_bad_entries(redis: &RedisServer, q: &QueueStore, bad_id: &[u8]) {
    let mut conn = redis.conn();
    let mut task_key = q.key("task:").into_bytes();
    task_key.extend_from_slice(bad_id);
    let _: () = redis::cmd("SET")
        .arg(q.key("task:wrongtype"))
        .arg("x")
        .query(&mut conn)
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(&task_key[..])
        .arg(&[
            &b"task_id"[..],
            bad_id,
            b"type",
            b"noop",
            b"status",
            b"failed",
        ])
        .arg(&[&b"priority"[..], b"P2", b"error", b"bad \xff bytes"])
        .query(&mut conn)
        .unwrap();
    let far = chrono::Utc::now().timestamp_millis() + 60_000;
    for (index, member) in [
        ("recent", &b"ghost"[..]),
        ("recent", b"wrongtype"),
        ("recent", bad_id),
        ("failed", bad_id),
    ] {
        let _: i64 = redis::cmd("ZADD")
            .arg(q.key(index))
            .arg(far)
            .arg(member)
            .query(&mut conn)
            .unwrap();
    }
}

#[tokio::test]
async fn listings_filter_by_each_field_and_skip_or_show_bad_entries() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "filters").await;
    let [done, dead, deploy, gone, waiting] = one_task_in_each_state(&q).await;
    let id = |t: &TaskRecord| t.task_id.to_string();
    let bad_id: &[u8] = b"bad-\xff\xfe";
    plant_bad_entries(&redis, &q, bad_id);

    let list = |f: &dyn Fn(&mut ListQuery)| {
        let mut query = ListQuery::new(ListIndex::Recent, 100);
        f(&mut query);
        let q = q.clone();
        async move { ids(std::slice::from_ref(&q.list(&query).await.unwrap())) }
    };
    let nil = uuid::Uuid::nil().to_string();
    assert_eq!(
        list(&|q| q.status = Some(TaskStatus::Completed)).await,
        [id(&done)]
    );
    assert_eq!(
        list(&|q| q.status = Some(TaskStatus::Failed)).await,
        [nil.clone(), id(&dead)]
    );
    assert_eq!(
        list(&|q| q.task_type = Some(TaskType::Deploy)).await,
        [id(&deploy)]
    );
    assert_eq!(
        list(&|q| q.priority = Some(Priority::P3)).await,
        [id(&gone)]
    );
    let prefix = id(&waiting)[..8].to_string();
    assert_eq!(
        list(&|q| q.id_prefix = Some(prefix.clone())).await,
        [id(&waiting)]
    );
    let both = list(&|q| {
        q.task_type = Some(TaskType::Noop);
        q.priority = Some(Priority::P0);
    })
    .await;
    assert_eq!(
        both.iter().collect::<HashSet<_>>(),
        [id(&done), id(&dead)].iter().collect::<HashSet<_>>()
    );

    // Unfiltered, one at a time: the missing and wrong-type entries are skipped, the bad bytes
    // shown lossily, and the cursor carries the raw id across pages.
    let pages = walk(&q, ListQuery::new(ListIndex::Recent, 1)).await;
    assert_eq!(pages.iter().map(|p| p.examined).sum::<usize>(), 8);
    assert_eq!(ids(&pages).len(), 6);
    let bad = &pages.iter().flat_map(|p| &p.tasks).next().cloned();
    let bad = bad.as_ref().unwrap();
    assert!(
        bad.error
            .as_deref()
            .unwrap()
            .contains("bad-\u{fffd}\u{fffd}")
    );
    assert!(bad.error.as_deref().unwrap().contains("bad \u{fffd} bytes"));
    let failed = walk(&q, ListQuery::new(ListIndex::Failed, 1)).await;
    assert_eq!(ids(&failed), [nil, id(&dead)]);
}

/// Claim the next task for `consumer` and ask for `project`'s lock on its behalf.
async fn claim_and_hold(q: &QueueStore, consumer: &str, project: &str) -> (String, ProjectClaim) {
    let claimed = q.claim(consumer, 1).await.unwrap().tasks;
    let id = claimed[0].id.clone();
    let got = q.acquire_project(&id, consumer, project).await.unwrap();
    (id, got)
}

fn lock_holder(redis: &RedisServer, queue: &str, project: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(format!("ops:{{{queue}}}:project:{project}"))
        .query(&mut redis.conn())
        .unwrap()
}

/// `web` held by a first P2 deploy; waiting: a second P2 deploy, then a P1 one (a P0 waiter was
/// cancelled); project `api` taken meanwhile. Checks each step and the `task.waiting_for_project`
/// events, and returns the ids of the holder, the P2 waiter and the P1 waiter.
async fn line_up_for_web(q: &QueueStore) -> (String, String, String) {
    let deploy = |p: &str| task("deploy", p, json!({"project": "web"}));
    let (a1, a2) = (deploy("P2"), deploy("P2"));
    q.enqueue(&[a1.clone(), a2.clone()]).await.unwrap();
    let (id1, got) = claim_and_hold(q, "t/c0", "web").await;
    assert_eq!(
        (id1.as_str(), got),
        (a1.task_id.to_string().as_str(), ProjectClaim::Acquired)
    );
    let (id2, got) = claim_and_hold(q, "t/c1", "web").await;
    assert_eq!(
        got,
        ProjectClaim::Waiting {
            holder: id1.clone()
        }
    );
    let rec = q.get(&id2).await.unwrap().unwrap();
    assert_eq!((rec.status, rec.attempts), (TaskStatus::Pending, 0));
    // A later, more urgent task of the same project goes ahead of the earlier waiter.
    let a3 = deploy("P1");
    let id3 = a3.task_id.to_string();
    q.enqueue(&[a3]).await.unwrap();
    assert!(matches!(
        claim_and_hold(q, "t/c2", "web").await.1,
        ProjectClaim::Waiting { .. }
    ));
    // A waiter that is cancelled leaves the line.
    let a4 = deploy("P0");
    let id4 = a4.task_id.to_string();
    q.enqueue(&[a4]).await.unwrap();
    assert!(matches!(
        claim_and_hold(q, "t/c3", "web").await.1,
        ProjectClaim::Waiting { .. }
    ));
    assert_eq!(q.cancel(&id4).await.unwrap(), CancelOutcome::Cancelled);
    // Another project is not held up.
    let other = task(
        "promote",
        "P2",
        json!({"project": "api", "deploymentId": "d"}),
    );
    q.enqueue(&[other]).await.unwrap();
    assert_eq!(
        claim_and_hold(q, "t/c4", "api").await.1,
        ProjectClaim::Acquired
    );
    let waits: Vec<_> = q
        .events(200)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "task.waiting_for_project")
        .collect();
    assert_eq!(waits.len(), 3);
    assert_eq!(
        (waits[0].task_id.as_str(), &waits[0].data["project"]),
        (id2.as_str(), &json!("web"))
    );
    assert_eq!(waits[0].data["holder"], id1.as_str());
    assert_eq!(waits[0].data["status"], "pending");
    (id1, id2, id3)
}

/// One change per project: a second task of a busy project waits (pending, no attempt burnt,
/// visible in an event naming the project and the holder); waiters get the project in order of
/// priority then submission as each holder completes, fails or loses its lease; other projects
/// and cancelled waiters are not held up.
#[tokio::test]
async fn a_busy_project_defers_its_tasks_and_hands_the_lock_over_in_priority_order() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "plock").await;
    let (id1, id2, id3) = line_up_for_web(&q).await;

    // The holder completes: the P1 waiter gets the project and runs next, its first attempt.
    q.complete(&[(id1.clone(), json!({}))]).await.unwrap();
    assert_eq!(
        lock_holder(&redis, "plock", "web").as_deref(),
        Some(id3.as_str())
    );
    let (next, got) = claim_and_hold(&q, "t/c0", "web").await;
    assert_eq!((next.as_str(), got), (id3.as_str(), ProjectClaim::Acquired));
    assert_eq!(q.get(&id3).await.unwrap().unwrap().attempts, 1);
    // Renewing the lease renews the lock.
    let _: () = redis::cmd("PEXPIRE")
        .arg("ops:{plock}:project:web")
        .arg(500)
        .query(&mut redis.conn())
        .unwrap();
    q.renew("t/c0", std::slice::from_ref(&id3)).await.unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg("ops:{plock}:project:web")
        .query(&mut redis.conn())
        .unwrap();
    assert!(pttl > 1_000, "renewed with the lease: {pttl}");
    // It fails (a retry is scheduled): the project goes to the earlier P2 waiter.
    let failure = Failure {
        id: id3.clone(),
        reason: "x".into(),
        retryable: true,
        backoff: Duration::from_secs(60),
    };
    q.fail("t/c0", &[failure]).await.unwrap();
    let (next, got) = claim_and_hold(&q, "t/c1", "web").await;
    assert_eq!((next.as_str(), got), (id2.as_str(), ProjectClaim::Acquired));
    assert_eq!(
        q.get(&id2).await.unwrap().unwrap().attempts,
        1,
        "waiting burnt no attempt"
    );
    // Its consumer dies: once the lease lapses, reclaim frees the project.
    let _: i64 = redis::cmd("ZADD")
        .arg("ops:{plock}:inflight")
        .arg(0)
        .arg(&id2)
        .query(&mut redis.conn())
        .unwrap();
    q.reclaim(100).await.unwrap();
    assert_eq!(
        lock_holder(&redis, "plock", "web"),
        None,
        "no waiter left: the lock is gone"
    );
    assert_eq!(
        claim_and_hold(&q, "t/c2", "web").await,
        (id2, ProjectClaim::Acquired)
    );
}

/// A lock that lapsed on its own (no reclaim frees it) with tasks still waiting: maintenance
/// hands it to the best waiter.
#[tokio::test]
async fn maintenance_hands_a_lapsed_project_lock_to_its_waiter() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "plapse").await;
    let deploy = || task("deploy", "P2", json!({"project": "web"}));
    q.enqueue(&[deploy(), deploy()]).await.unwrap();
    let (id1, _) = claim_and_hold(&q, "t/c0", "web").await;
    let (id2, got) = claim_and_hold(&q, "t/c1", "web").await;
    assert_eq!(got, ProjectClaim::Waiting { holder: id1 });
    let _: i64 = redis::cmd("DEL")
        .arg("ops:{plapse}:project:web")
        .query(&mut redis.conn())
        .unwrap();
    q.promote_due(100).await.unwrap();
    assert_eq!(lock_holder(&redis, "plapse", "web"), Some(id2.clone()));
    assert_eq!(
        claim_and_hold(&q, "t/c1", "web").await,
        (id2, ProjectClaim::Acquired)
    );
}

/// A deploy whose deployment is still building keeps its project through its retry back-off (the
/// retry resumes that deployment); its waiter still waits, and the retry takes the project back.
#[tokio::test]
async fn a_retrying_deploy_with_a_live_deployment_keeps_its_project() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "pkeep").await;
    let deploy = || task("deploy", "P2", json!({"project": "web"}));
    q.enqueue(&[deploy(), deploy()]).await.unwrap();
    let (id1, _) = claim_and_hold(&q, "t/c0", "web").await;
    q.set_deployment_id(&id1, "dpl_1", None).await.unwrap();
    let failure = Failure {
        id: id1.clone(),
        reason: "still BUILDING".into(),
        retryable: true,
        backoff: Duration::ZERO,
    };
    q.fail("t/c0", &[failure]).await.unwrap();
    assert_eq!(
        lock_holder(&redis, "pkeep", "web").as_deref(),
        Some(id1.as_str())
    );
    let (_, got) = claim_and_hold(&q, "t/c1", "web").await;
    assert_eq!(
        got,
        ProjectClaim::Waiting {
            holder: id1.clone()
        }
    );
    q.promote_due(100).await.unwrap();
    assert_eq!(
        claim_and_hold(&q, "t/c2", "web").await,
        (id1, ProjectClaim::Acquired)
    );
}

/// A holder handed back by its consumer (a draining pool, an overrun batch) keeps its project:
/// its waiter still waits, and the holder takes the project back when claimed again.
#[tokio::test]
async fn a_handed_back_holder_keeps_its_project() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "phand").await;
    let deploy = || task("deploy", "P2", json!({"project": "web"}));
    q.enqueue(&[deploy(), deploy()]).await.unwrap();
    let (id1, _) = claim_and_hold(&q, "t/c0", "web").await;
    let (_, got) = claim_and_hold(&q, "t/c1", "web").await;
    assert_eq!(
        got,
        ProjectClaim::Waiting {
            holder: id1.clone()
        }
    );
    let out = q.release("t/c0", std::slice::from_ref(&id1)).await.unwrap();
    assert_eq!(out[0].applied, Applied::Requeued);
    assert_eq!(
        lock_holder(&redis, "phand", "web").as_deref(),
        Some(id1.as_str())
    );
    assert_eq!(
        claim_and_hold(&q, "t/c2", "web").await,
        (id1, ProjectClaim::Acquired)
    );
}

/// Records are written without a `{}` metadata, and every reader (the claim, `get`, listings)
/// also takes an absent id, payload or attempts count as the default (a later version may stop
/// writing them); a task with a payload and metadata keeps both.
#[tokio::test]
async fn default_fields_are_not_stored_and_read_back_as_defaults() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "small").await;
    let plain = noop(json!({}));
    let mut rich = noop(json!({"sleep_ms": 1}));
    rich.metadata = json!({"team": "web"});
    q.enqueue(&[plain.clone(), rich.clone()]).await.unwrap();
    let id = plain.task_id.to_string();
    let key = format!("ops:{{small}}:task:{id}");
    let stored: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&key)
        .query(&mut redis.conn())
        .unwrap();
    assert!(!stored.contains_key("metadata"), "{stored:?}");
    // A record holding only what this version needs (as a later version may write it).
    let _: i64 = redis::cmd("HDEL")
        .arg(&key)
        .arg(&["task_id", "payload", "attempts"])
        .query(&mut redis.conn())
        .unwrap();
    let shown = q.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (
            shown.task_id,
            &shown.payload,
            &shown.metadata,
            shown.attempts
        ),
        (plain.task_id, &json!({}), &json!({}), 0)
    );
    let page = q.recent(10).await.unwrap();
    assert!(
        page.iter()
            .any(|t| t.task_id == plain.task_id && t.payload == json!({}))
    );
    let claimed = q.claim("t/c0", 5).await.unwrap().tasks;
    assert_eq!(claimed.len(), 2);
    let recs: Vec<&TaskRecord> = claimed.iter().map(|c| c.record.as_ref().unwrap()).collect();
    assert_eq!((recs[0].task_id, recs[0].attempts), (plain.task_id, 1));
    assert_eq!(recs[0].payload, json!({}));
    assert_eq!(
        (recs[1].task_id, &recs[1].payload),
        (rich.task_id, &rich.payload)
    );
    assert_eq!(recs[1].trace_id, rich.trace_id);
    assert_eq!(recs[1].status, TaskStatus::InProgress);
    // The full record (metadata included) is still what `get` shows.
    let full = q.get(&rich.task_id.to_string()).await.unwrap().unwrap();
    assert_eq!(full.metadata, json!({"team": "web"}));
}

#[tokio::test]
async fn a_claim_reads_the_run_state_only_for_the_types_that_use_it() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "runstate").await;
    let light = noop(json!({}));
    let heavy = task("deploy", "P2", json!({"project": "web"}));
    q.enqueue(&[light.clone(), heavy.clone()]).await.unwrap();
    // Both records hold a deployment id (a noop's written by hand: no handler of it reads one).
    for t in [&light, &heavy] {
        let _: i64 = redis::cmd("HSET")
            .arg(format!("ops:{{runstate}}:task:{}", t.task_id))
            .arg(&["deployment_id", "dpl_resume", "max_retries", "7"])
            .query(&mut redis.conn())
            .unwrap();
    }
    let claimed = q.claim("t/c0", 5).await.unwrap().tasks;
    let recs: Vec<&TaskRecord> = claimed.iter().map(|c| c.record.as_ref().unwrap()).collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(
        (
            recs[0].task_id,
            recs[0].deployment_id.as_deref(),
            recs[0].max_retries
        ),
        (light.task_id, None, 0),
        "a noop's claim leaves the run state out"
    );
    assert_eq!(
        (
            recs[1].task_id,
            recs[1].deployment_id.as_deref(),
            recs[1].max_retries
        ),
        (heavy.task_id, Some("dpl_resume"), 7),
        "a deploy's claim reads it"
    );
    assert_eq!(recs[1].created_at, heavy.created_at);
    // Only what the consumer holds differs: the stored record keeps its values.
    let stored = q.get(&light.task_id.to_string()).await.unwrap().unwrap();
    assert_eq!(
        (stored.max_retries, stored.created_at),
        (7, light.created_at)
    );
}

#[tokio::test]
async fn completing_a_noop_reads_only_its_status_and_a_deploy_frees_its_project() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "lockfree").await;
    let light = noop(json!({}));
    let heavy = task("deploy", "P2", json!({"project": "web"}));
    q.enqueue(&[light.clone(), heavy.clone()]).await.unwrap();
    let claimed = q.claim("t/c0", 5).await.unwrap().tasks;
    assert_eq!(claimed.len(), 2);
    let heavy_id = heavy.task_id.to_string();
    assert_eq!(
        q.acquire_project(&heavy_id, "t/c0", "web").await.unwrap(),
        ProjectClaim::Acquired
    );
    let light_id = light.task_id.to_string();
    assert_eq!(
        q.cancel(&light_id).await.unwrap(),
        CancelOutcome::Cancelling
    );
    // As the consumer completes them: with the event's facts from its claim.
    let done: Vec<Done> = claimed
        .iter()
        .map(|c| {
            let r = c.record.as_ref().unwrap();
            Done {
                id: c.id.clone(),
                result: json!({}),
                facts: Some(TaskFacts {
                    task_type: r.task_type.as_str(),
                    priority: r.priority.as_str(),
                    attempts: r.attempts,
                    trace_id: r.trace_id.clone(),
                }),
            }
        })
        .collect();
    let applied = q.complete_claimed(&done).await.unwrap();
    assert_eq!(applied.len(), 2, "{applied:?}");
    for id in [&light_id, &heavy_id] {
        let rec = q.get(id).await.unwrap().unwrap();
        assert_eq!(rec.status, TaskStatus::Completed, "{id}");
    }
    let lock: Option<String> = redis::cmd("GET")
        .arg("ops:{lockfree}:project:web")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(lock, None, "the deploy's completion freed its project");
    let holds: Option<String> = redis::cmd("HGET")
        .arg(format!("ops:{{lockfree}}:task:{heavy_id}"))
        .arg("project_lock")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(holds, None);
    // The noop's completion read only its status: the operator's late cancel request stays on
    // the finished record (it completed first).
    let flag: Option<String> = redis::cmd("HGET")
        .arg(format!("ops:{{lockfree}}:task:{light_id}"))
        .arg("cancel_requested")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(flag.as_deref(), Some("1"));
}
