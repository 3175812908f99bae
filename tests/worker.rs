//! The worker as operators run it: the real `ops-worker run` binary against a real redis-server,
//! through crashes (kill -9), SIGTERM, Redis restarts, panics and poison records.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use ops_worker::queue::{PoolStatus, QueueStore};
use ops_worker::task::{Priority, TaskRecord, TaskStatus};
use serde_json::json;
use support::*;

const LONG: Duration = Duration::from_secs(60);

async fn records(q: &QueueStore, ids: &[String]) -> Vec<TaskRecord> {
    let mut out = Vec::new();
    for id in ids {
        out.push(q.get(id).await.unwrap().expect("record exists"));
    }
    out
}

async fn enqueue_all(q: &QueueStore, tasks: Vec<TaskRecord>) -> Vec<String> {
    let ids: Vec<String> = tasks.iter().map(|t| t.task_id.to_string()).collect();
    q.enqueue(&tasks).await.unwrap();
    ids
}

async fn heartbeat_of(q: &QueueStore, instance: &str) -> Option<ops_worker::queue::Heartbeat> {
    q.instances()
        .await
        .ok()?
        .into_iter()
        .find(|h| h.instance == instance)
}

#[tokio::test]
async fn paused_priority_waits_while_the_others_drain_then_runs_after_resume() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "pause").await;
    q.pause(&[ops_worker::task::Priority::P3]).await.unwrap();
    let mut tasks = Vec::new();
    for p in ["P3", "P0", "P1", "P2", "P3"] {
        tasks.push(task("noop", p, json!({})));
    }
    let ids = enqueue_all(&q, tasks).await;
    let _w = Worker::builder(&redis.url(), "pause")
        .env("WORKER_CONCURRENCY", "1")
        .spawn()
        .await;
    wait_completed(&q, 3, LONG).await;
    let s = q.stats().await.unwrap();
    assert_eq!(s.pending.get(Priority::P3), 2, "paused P3 stays pending");
    assert_eq!(s.completed_total, 3);

    // Resume through the CLI, as an operator would.
    let out = cli(&redis.url(), "pause", &[], &["resume", "P3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_completed(&q, 5, LONG).await;

    // One consumer: completion order is claim order: P0, P1, P2, then the two P3 in FIFO order.
    let done: Vec<String> = q
        .events(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "task.completed")
        .map(|e| e.task_id)
        .collect();
    assert_eq!(
        done,
        [
            ids[1].clone(),
            ids[2].clone(),
            ids[3].clone(),
            ids[0].clone(),
            ids[4].clone()
        ]
    );
}

#[tokio::test]
async fn kill_9_mid_task_loses_nothing_another_instance_reclaims() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "crash").await;
    let ids = enqueue_all(
        &q,
        (0..8).map(|_| noop(json!({"sleep_ms": 1500}))).collect(),
    )
    .await;
    let lease = [("TASK_LEASE_SECS", "2"), ("WORKER_CONCURRENCY", "4")];
    let mut a = Worker::builder(&redis.url(), "crash")
        .envs(lease)
        .spawn()
        .await;
    eventually(LONG, "4 tasks in flight on A", || async {
        (q.stats().await.ok()?.in_flight == 4).then_some(())
    })
    .await;
    a.kill9();

    let _b = Worker::builder(&redis.url(), "crash")
        .envs(lease)
        .spawn()
        .await;
    wait_completed(&q, 8, LONG).await;
    let recs = records(&q, &ids).await;
    assert!(recs.iter().all(|r| r.status == TaskStatus::Completed));
    let reclaimed = recs.iter().filter(|r| r.attempts == 2).count();
    assert_eq!(
        reclaimed, 4,
        "the 4 tasks A held ran again after their lease lapsed"
    );
    let s = q.stats().await.unwrap();
    assert_eq!(s.reclaimed_total, 4);
    assert_eq!((s.in_flight, s.pending_total(), s.failed), (0, 0, 0));
}

#[tokio::test]
async fn sigterm_finishes_or_hands_back_and_a_restart_completes_everything() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "term").await;
    // Four long P0 tasks occupy every consumer; short P2 tasks wait behind them.
    let mut tasks: Vec<TaskRecord> = (0..4)
        .map(|_| task("noop", "P0", json!({"sleep_ms": 4000})))
        .collect();
    tasks.extend((0..10).map(|_| noop(json!({"sleep_ms": 10}))));
    let ids = enqueue_all(&q, tasks).await;
    let env = [
        ("WORKER_CONCURRENCY", "4"),
        ("WORKER_SHUTDOWN_TIMEOUT", "1"),
    ];
    let mut w = Worker::builder(&redis.url(), "term")
        .envs(env)
        .spawn()
        .await;
    eventually(LONG, "long tasks running", || async {
        (q.stats().await.ok()?.in_flight == 4).then_some(())
    })
    .await;
    w.signal("TERM");
    let status = w.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit 0 after SIGTERM, got {status:?}");
    let logs = w.logs();
    assert!(logs.contains("handing the task back"), "{logs}");

    // Handed back: pending again, and the attempt was not burnt.
    let s = q.stats().await.unwrap();
    assert_eq!(s.in_flight, 0);
    assert_eq!(s.pending_total(), 14);
    for r in records(&q, &ids[..4]).await {
        assert_eq!((r.status, r.attempts), (TaskStatus::Pending, 0));
    }
    assert!(
        heartbeat_of(&q, &w.instance).await.is_none(),
        "heartbeat removed on exit"
    );

    let _w2 = Worker::builder(&redis.url(), "term")
        .env("WORKER_CONCURRENCY", "4")
        .spawn()
        .await;
    wait_completed(&q, 14, LONG).await;
    for r in records(&q, &ids).await {
        assert_eq!((r.status, r.attempts), (TaskStatus::Completed, 1));
    }
}

#[tokio::test]
async fn sigterm_lets_short_tasks_finish_within_the_timeout() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "term2").await;
    let ids = enqueue_all(&q, (0..2).map(|_| noop(json!({"sleep_ms": 800}))).collect()).await;
    let mut w = Worker::builder(&redis.url(), "term2")
        .env("WORKER_CONCURRENCY", "2")
        .env("WORKER_SHUTDOWN_TIMEOUT", "20")
        .spawn()
        .await;
    eventually(LONG, "tasks running", || async {
        (q.stats().await.ok()?.in_flight == 2).then_some(())
    })
    .await;
    w.signal("TERM");
    assert!(w.wait_exit(Duration::from_secs(20)).success());
    for r in records(&q, &ids).await {
        assert_eq!(r.status, TaskStatus::Completed, "finished during the drain");
    }
}

#[tokio::test]
async fn redis_restart_mid_run_the_pool_resumes_and_nothing_is_lost() {
    let mut redis = RedisServer::start_persistent();
    let q = store(&redis.url(), "redis-restart").await;
    let ids = enqueue_all(
        &q,
        (0..30).map(|_| noop(json!({"sleep_ms": 200}))).collect(),
    )
    .await;
    let mut w = Worker::builder(&redis.url(), "redis-restart")
        .env("WORKER_CONCURRENCY", "3")
        .env("TASK_LEASE_SECS", "3")
        .spawn()
        .await;
    wait_completed(&q, 5, LONG).await;
    redis.kill();
    redis.restart();
    wait_completed(&q, 30, LONG).await;
    assert!(w.alive(), "the worker survived the Redis outage");
    for r in records(&q, &ids).await {
        assert_eq!(r.status, TaskStatus::Completed);
    }
    // And it is healthy again.
    w.wait_healthy().await;
    // The outage is one ERROR when it starts and one INFO with its length when it ends.
    let logs = w.logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("Redis is unreachable") || l.contains("Redis is reachable again"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("\"level\":\"ERROR\"") && lines[0].contains("unreachable"));
    assert!(lines[1].contains("\"level\":\"INFO\"") && lines[1].contains("outage_secs"));
}

#[tokio::test]
async fn two_instances_complete_every_task_exactly_once() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "pair").await;
    let ids = enqueue_all(&q, (0..300).map(|_| noop(json!({"sleep_ms": 2}))).collect()).await;
    let a = Worker::builder(&redis.url(), "pair")
        .env("WORKER_CONCURRENCY", "4")
        .spawn()
        .await;
    let b = Worker::builder(&redis.url(), "pair")
        .env("WORKER_CONCURRENCY", "4")
        .spawn()
        .await;
    wait_completed(&q, 300, LONG).await;
    for r in records(&q, &ids).await {
        assert_eq!((r.status, r.attempts), (TaskStatus::Completed, 1));
    }
    let events = q.events(5000).await.unwrap();
    let mut started = HashSet::new();
    for e in &events {
        if e.event == "task.started" {
            let id = &e.task_id;
            assert!(started.insert(id.clone()), "task {id} started twice");
        }
    }
    assert_eq!(started.len(), 300);
    assert_eq!(q.stats().await.unwrap().completed_total, 300);
    // Both instances are visible in the heartbeats.
    let live: HashSet<String> = q
        .instances()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.instance)
        .collect();
    assert!(live.contains(&a.instance) && live.contains(&b.instance));
}

#[tokio::test]
async fn delayed_task_runs_no_earlier_than_run_at() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "delay").await;
    let _w = Worker::builder(&redis.url(), "delay").spawn().await;
    let run_at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let t = ops_worker::task::NewTask {
        task_type: Some("noop".into()),
        run_at: Some(run_at.to_rfc3339()),
        ..Default::default()
    }
    .validate(3, chrono::Utc::now())
    .unwrap();
    let id = t.task_id.to_string();
    q.enqueue(&[t]).await.unwrap();
    assert_eq!(q.stats().await.unwrap().delayed, 1);
    wait_completed(&q, 1, LONG).await;
    let r = q.get(&id).await.unwrap().unwrap();
    let started = r.started_at.unwrap();
    assert!(
        started >= run_at,
        "started {started} before run_at {run_at}"
    );
}

#[tokio::test]
async fn poison_records_are_dead_lettered_with_a_reason_and_the_pool_keeps_working() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "poison").await;
    let mut conn = redis.conn();
    // Write a pending P1 record straight into Redis, as a hand-written script might.
    let mut push_raw = |id: &str, ty: &str, payload: &str| {
        let _: () = redis::cmd("HSET")
            .arg(format!("ops:{{poison}}:task:{id}"))
            .arg(&[
                ("task_id", id),
                ("type", ty),
                ("priority", "P1"),
                ("payload", payload),
                ("status", "pending"),
                ("attempts", "0"),
                ("max_retries", "3"),
                ("created_at", "2026-01-01T00:00:00Z"),
            ])
            .query(&mut conn)
            .unwrap();
        let _: () = redis::cmd("LPUSH")
            .arg("ops:{poison}:pending:P1")
            .arg(id)
            .query(&mut conn)
            .unwrap();
    };
    // 1. A payload that is not JSON; 2. a noop payload with a wrong field type; 3. an unknown type.
    let bad_json = uuid::Uuid::new_v4().to_string();
    let bad_field = uuid::Uuid::new_v4().to_string();
    let unknown = uuid::Uuid::new_v4().to_string();
    push_raw(&bad_json, "noop", "{not json");
    push_raw(&bad_field, "noop", r#"{"sleep_ms":"soon"}"#);
    push_raw(&unknown, "launch_missiles", "{}");
    // 4. An id with no record at all.
    let _: () = redis::cmd("LPUSH")
        .arg("ops:{poison}:pending:P1")
        .arg("garbage-id")
        .query(&mut redis.conn())
        .unwrap();
    let good = enqueue_all(&q, (0..3).map(|_| noop(json!({}))).collect()).await;

    let w = Worker::builder(&redis.url(), "poison")
        .env("WORKER_CONCURRENCY", "1")
        .spawn()
        .await;
    wait_completed(&q, 3, LONG).await;
    eventually(LONG, "4 dead-lettered", || async {
        (q.stats().await.ok()?.failed == 4).then_some(())
    })
    .await;
    let reason = |id: &str| {
        let id = id.to_string();
        let mut conn = redis.conn();
        move || -> String {
            redis::cmd("HGET")
                .arg(format!("ops:{{poison}}:task:{id}"))
                .arg("error")
                .query(&mut conn)
                .unwrap()
        }
    };
    assert!(
        reason(&bad_json)().contains("field `payload`"),
        "{}",
        reason(&bad_json)()
    );
    assert!(reason(&bad_field)().contains("payload.sleep_ms"));
    assert!(reason("garbage-id")().contains("no task record"));
    assert!(reason(&unknown)().contains("field `type`"));
    for r in records(&q, &good).await {
        assert_eq!(r.status, TaskStatus::Completed);
    }
    // Poison never crashed or restarted a consumer.
    let hb = eventually(LONG, "heartbeat", || heartbeat_of(&q, &w.instance)).await;
    assert_eq!(hb.restarts, 0);
}

#[tokio::test]
async fn poison_tasks_are_only_failed_attempts_and_the_pool_never_leaves_running() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "poison").await;
    let w = Worker::builder(&redis.url(), "poison")
        .env("WORKER_CONCURRENCY", "4")
        .env("WORKER_MAX_RESTARTS", "1")
        .spawn()
        .await;
    eventually(LONG, "the pool running", || async {
        heartbeat_of(&q, &w.instance)
            .await
            .filter(|h| h.status == Some(PoolStatus::Running))
    })
    .await;
    // 50 panicking tasks mixed into 5,000 normal ones, each allowed one retry.
    let mut tasks: Vec<TaskRecord> = (0..5_000).map(|_| noop(json!({}))).collect();
    let mut poison = Vec::new();
    for k in 0..50 {
        let mut t = noop(json!({"panic": true}));
        t.max_retries = 1;
        poison.push(t.task_id.to_string());
        tasks.insert(k * 100, t);
    }
    enqueue_all(&q, tasks).await;
    // Watch every heartbeat until the normal tasks are done: the pool is always running.
    eventually(LONG, "the 5,000 normal tasks completed", || async {
        let hb = heartbeat_of(&q, &w.instance).await?;
        assert_eq!(
            hb.status,
            Some(PoolStatus::Running),
            "a poison task changed the pool"
        );
        assert_eq!(hb.restarts, 0, "a poison task ended a consumer");
        let s = q.stats().await.ok()?;
        (s.completed_total == 5_000).then_some(())
    })
    .await;
    let dead = eventually(LONG, "every poison task dead-lettered", || async {
        let recs = records(&q, &poison).await;
        recs.iter()
            .all(|r| r.status == TaskStatus::Failed)
            .then_some(recs)
    })
    .await;
    for r in dead {
        assert_eq!(r.attempts, 2, "dead-lettered after max_retries");
        assert!(r.error.unwrap().contains("handler panicked"));
    }
    assert!(!w.logs().contains("restarting consumer"));
}

#[tokio::test]
async fn consumers_that_die_outside_a_handler_restart_until_the_limit_then_back_off() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "exits").await;
    let w = Worker::builder(&redis.url(), "exits")
        .env("WORKER_CONCURRENCY", "1")
        .env("WORKER_MAX_RESTARTS", "3")
        .env("WORKER_RESTART_WINDOW_SECS", "60")
        .spawn()
        .await;
    let exit_task = || {
        let mut t = noop(json!({"exit_consumer": true}));
        t.max_retries = 0;
        t
    };
    // One exit: the consumer is restarted in its slot and the next task still runs.
    let first = exit_task();
    let first_id = first.task_id.to_string();
    q.enqueue(&[first]).await.unwrap();
    let after = enqueue_all(&q, vec![noop(json!({}))]).await;
    wait_completed(&q, 1, LONG).await;
    assert_eq!(
        q.get(&after[0]).await.unwrap().unwrap().status,
        TaskStatus::Completed
    );
    let rec = q.get(&first_id).await.unwrap().unwrap();
    assert_eq!(
        rec.status,
        TaskStatus::Failed,
        "its attempt is recorded before the exit"
    );
    let hb = eventually(LONG, "restart counted", || async {
        heartbeat_of(&q, &w.instance)
            .await
            .filter(|h| h.restarts == 1)
    })
    .await;
    assert_eq!(hb.status, Some(PoolStatus::Running));

    // A burst of exits: past the limit the instance reports error and stops restarting.
    enqueue_all(&q, (0..10).map(|_| exit_task()).collect()).await;
    let hb = eventually(LONG, "instance in error", || async {
        heartbeat_of(&q, &w.instance)
            .await
            .filter(|h| h.status == Some(PoolStatus::Error))
    })
    .await;
    // No hot loop: over the next two heartbeats nothing more is claimed or restarted.
    let failed_at_error = q.stats().await.unwrap().failed;
    let mut seen = hb.last_heartbeat.clone();
    for _ in 0..2 {
        let next = eventually(LONG, "next heartbeat", || async {
            heartbeat_of(&q, &w.instance)
                .await
                .filter(|h| h.last_heartbeat != seen)
        })
        .await;
        assert_eq!(next.status, Some(PoolStatus::Error));
        assert_eq!(next.restarts, hb.restarts, "no restarts while backing off");
        seen = next.last_heartbeat;
    }
    assert_eq!(q.stats().await.unwrap().failed, failed_at_error);
    assert!(
        q.stats().await.unwrap().pending_total() > 0,
        "the rest wait"
    );
    // Not ready (no work gets done), but alive: the back-off recovers by itself, so a platform
    // restart would not help yet.
    let (status, body) = get_json(&w.http, &w.url("/ready"))
        .await
        .expect("/ready answers");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["worker"], "error");
    assert_eq!(body["down"], json!(["worker"]));
    let (status, body) = get_json(&w.http, &w.url("/health"))
        .await
        .expect("/health answers");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["worker"], "error");
}

#[tokio::test]
async fn a_taken_port_fails_startup_before_any_consumer_claims_a_task() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "taken").await;
    let ids = enqueue_all(&q, vec![noop(json!({}))]).await;
    let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let out = cli(&redis.url(), "taken", &[("PORT", &port)], &["run"]);
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "run on a taken port must fail");
    assert!(
        logs.contains(&format!("cannot listen on port {port}")),
        "{logs}"
    );
    let r = q.get(&ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.attempts),
        (TaskStatus::Pending, 0),
        "no consumer ran before the bind failed"
    );
    assert!(
        q.instances().await.unwrap().is_empty(),
        "no heartbeat from an instance that never started"
    );
}

/// Seconds between two record times.
fn secs_between(from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// Fair by default (adaptive claims, no `WORKER_PREFETCH` set): 200 tasks of 2 s on 2 instances
/// of 4 consumers finish within 10 % of the ideal makespan (200 × 2 s / 8 = 50 s), even right
/// after the consumers drained a burst of tiny tasks (which grows their claims to full batches).
#[tokio::test]
async fn long_tasks_on_two_instances_finish_within_ten_percent_of_the_ideal_makespan() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "fair").await;
    let _a = Worker::builder(&redis.url(), "fair")
        .env("WORKER_CONCURRENCY", "4")
        .spawn()
        .await;
    let _b = Worker::builder(&redis.url(), "fair")
        .env("WORKER_CONCURRENCY", "4")
        .spawn()
        .await;
    enqueue_all(&q, (0..2000).map(|_| noop(json!({}))).collect()).await;
    wait_completed(&q, 2000, LONG).await;
    let ids = enqueue_all(
        &q,
        (0..200).map(|_| noop(json!({"sleep_ms": 2000}))).collect(),
    )
    .await;
    wait_completed(&q, 2200, Duration::from_secs(120)).await;
    let recs = records(&q, &ids).await;
    let first = recs.iter().filter_map(|r| r.started_at).min().unwrap();
    let last = recs.iter().filter_map(|r| r.completed_at).max().unwrap();
    let makespan = secs_between(first, last);
    assert!(
        (50.0..=55.0).contains(&makespan),
        "makespan {makespan:.2} s, ideal 50 s"
    );
    for r in &recs {
        assert_eq!((r.status, r.attempts), (TaskStatus::Completed, 1));
    }
}

/// A P0 task submitted behind a backlog starts within one task's time: behind 500 ms tasks it
/// waits at most for a running task to end; behind tiny tasks (claimed in batches) at most for a
/// batch, a few milliseconds.
#[tokio::test]
async fn a_p0_task_behind_a_backlog_starts_within_one_tasks_time() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "jump").await;
    let _w = Worker::builder(&redis.url(), "jump")
        .env("WORKER_CONCURRENCY", "4")
        .spawn()
        .await;
    // (backlog, task payload, bound on the P0's wait in seconds)
    let cases = [
        (40, json!({"sleep_ms": 500}), 0.5 + 0.15),
        (20_000, json!({}), 0.25),
    ];
    let mut done = 0;
    for (backlog, payload, bound) in cases {
        enqueue_all(&q, (0..backlog).map(|_| noop(payload.clone())).collect()).await;
        wait_completed(&q, done + (backlog as u64) / 10, LONG).await;
        let p0 = task("noop", "P0", json!({}));
        let created = p0.created_at;
        let id = enqueue_all(&q, vec![p0]).await;
        done += backlog as u64 + 1;
        let rec = eventually(LONG, "the P0 task completed", || async {
            let r = q.get(&id[0]).await.ok()??;
            (r.status == TaskStatus::Completed).then_some(r)
        })
        .await;
        // It overtook the backlog: part of it was still pending when the P0 finished.
        let pending = q.stats().await.unwrap().pending.get(Priority::P2);
        assert!(
            pending > 0,
            "the backlog of {backlog} drained before the P0 ran"
        );
        let waited = secs_between(created, rec.started_at.unwrap());
        assert!(
            waited <= bound,
            "P0 waited {waited:.3} s behind {backlog} tasks (bound {bound} s)"
        );
        wait_completed(&q, done, LONG).await;
    }
}

/// A long task that lands in a batch sized for tiny ones does not hold the tasks claimed after it:
/// they are handed back while it runs and another consumer runs them.
#[tokio::test]
async fn tasks_claimed_behind_a_long_one_are_handed_back_and_run_elsewhere() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "behind").await;
    let _w = Worker::builder(&redis.url(), "behind")
        .env("WORKER_CONCURRENCY", "2")
        .spawn()
        .await;
    let mut tasks: Vec<TaskRecord> = (0..2000).map(|_| noop(json!({}))).collect();
    let long = noop(json!({"sleep_ms": 3000}));
    let long_id = long.task_id.to_string();
    tasks.push(long);
    let after: Vec<TaskRecord> = (0..10).map(|_| noop(json!({}))).collect();
    let after_ids: Vec<String> = after.iter().map(|t| t.task_id.to_string()).collect();
    tasks.extend(after);
    enqueue_all(&q, tasks).await;
    wait_completed(&q, 2011, LONG).await;
    let long = records(&q, std::slice::from_ref(&long_id)).await.remove(0);
    let long_started = long.started_at.unwrap();
    for r in records(&q, &after_ids).await {
        assert_eq!(r.status, TaskStatus::Completed);
        let waited = secs_between(long_started, r.completed_at.unwrap());
        assert!(
            waited < 1.0,
            "a task queued right behind the long one finished {waited:.2} s after it started"
        );
    }
}
