//! Faults that must cost little and touch nothing else: a claim whose reply is lost, and records
//! that are corrupt in every way an operator's hand or a bug could make them.

mod support;

use std::time::Duration;

use ops_worker::api::auth::Role;
use ops_worker::queue::PoolStatus;
use ops_worker::task::TaskStatus;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::proxy::FaultProxy;
use support::*;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_lost_claim_reply_costs_a_round_trip_not_a_lease() {
    let redis = RedisServer::start();
    let proxy = FaultProxy::start(redis.port);
    // Long lease and poll interval: only the recovery can bring the task back quickly, and the
    // consumer claims only when woken (so the claim that loses its reply is the one with the task).
    let w = Worker::builder(&proxy.url(), "lost")
        .env("WORKER_CONCURRENCY", "1")
        .env("WORKER_POLL_INTERVAL", "300")
        .env("TASK_LEASE_SECS", "120")
        .spawn()
        .await;
    let q = store(&redis.url(), "lost").await;
    proxy.arm(&format!("{}/c0", w.instance));
    let t = noop(json!({}));
    let id = t.task_id.to_string();
    q.enqueue(&[t]).await.unwrap();

    // Well within the lease: the consumer asked Redis what it holds and handed it back at once.
    let rec = eventually(Duration::from_secs(30), "the task completed", || async {
        q.get(&id)
            .await
            .ok()?
            .filter(|r| r.status == TaskStatus::Completed)
    })
    .await;
    assert_eq!(proxy.kills(), 1, "the fault fired once");
    assert_eq!(rec.attempts, 1, "the lost claim did not burn an attempt");
    let requeued: Vec<Value> = q
        .events(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.task_id == id && e.event == "task.requeued")
        .map(|e| e.data)
        .collect();
    assert_eq!(requeued.len(), 1, "{requeued:?}");
    assert!(
        requeued[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("claim reply was lost")),
        "{requeued:?}"
    );
    assert!(
        w.logs()
            .contains("handed back tasks whose claim reply was lost")
    );
}

/// Push an id onto a pending list by hand (as a bug or an operator could).
fn push_raw(redis: &RedisServer, queue: &str, id: &str) {
    let _: i64 = redis::cmd("LPUSH")
        .arg(format!("ops:{{{queue}}}:pending:P2"))
        .arg(id)
        .query(&mut redis.conn())
        .unwrap();
}

#[tokio::test]
async fn a_wrong_type_key_in_a_batch_touches_no_other_task() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "corrupt").await;
    let before = noop(json!({}));
    q.enqueue(std::slice::from_ref(&before)).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("ops:{corrupt}:task:bogus")
        .arg("not a hash")
        .query(&mut redis.conn())
        .unwrap();
    push_raw(&redis, "corrupt", "bogus");
    // A record whose task_id field names another task than its key: the key is what counts (the
    // claim does not read the field), so it runs as the key's task.
    let mut liar = noop(json!({}));
    q.enqueue(std::slice::from_ref(&liar)).await.unwrap();
    let liar_id = liar.task_id.to_string();
    liar.task_id = uuid::Uuid::new_v4();
    let _: i64 = redis::cmd("HSET")
        .arg(format!("ops:{{corrupt}}:task:{liar_id}"))
        .arg("task_id")
        .arg(liar.task_id.to_string())
        .query(&mut redis.conn())
        .unwrap();
    let after = noop(json!({}));
    q.enqueue(std::slice::from_ref(&after)).await.unwrap();

    let _w = Worker::builder(&redis.url(), "corrupt")
        .env("WORKER_CONCURRENCY", "1")
        .env("WORKER_PREFETCH", "5")
        .spawn()
        .await;
    wait_completed(&q, 3, LONG).await;
    for t in [&before, &after] {
        let r = q.get(&t.task_id.to_string()).await.unwrap().unwrap();
        assert_eq!(r.status, TaskStatus::Completed);
    }
    let bogus = q.get("bogus").await.unwrap().expect("a visible stub");
    assert_eq!(bogus.status, TaskStatus::Failed);
    assert!(bogus.error.unwrap().contains("held a string"));
    let kept: String = redis::cmd("GET")
        .arg("ops:{corrupt}:corrupt:bogus")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(kept, "not a hash", "the bad value is kept for inspection");
    let liar = q
        .get(&liar_id)
        .await
        .unwrap()
        .expect("the mismatched record");
    assert_eq!(liar.status, TaskStatus::Completed);
    assert_eq!(liar.attempts, 1, "run once");
    let s = q.stats().await.unwrap();
    assert_eq!((s.in_flight, s.pending_total, s.failed), (0, 0, 1));
}

#[tokio::test]
async fn unreadable_values_are_shown_lossily_and_out_of_range_commands_ignored() {
    let app = spawn_app("lossy", &[("WORKER_CONCURRENCY", "2")]).await;
    let q = app.store().await;
    let t = noop(json!({}));
    let id = t.task_id.to_string();
    q.enqueue(&[t]).await.unwrap();
    wait_completed(&q, 1, LONG).await;
    plant_unreadable_values(&mut app.redis.conn(), &id);

    let viewer = token(Role::Viewer);
    let (status, body) = app
        .call(Method::GET, &format!("/tasks/{id}"), Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["error"].as_str().unwrap().contains('\u{fffd}'));
    let (status, body) = app
        .call(Method::GET, "/api/tasks/recent", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .call(Method::GET, "/api/worker/status", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ghost = body["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instance"] == "ghost")
        .expect("the ghost heartbeat is listed");
    assert_eq!(
        (
            ghost["cpu_percent"].as_f64(),
            ghost["memory_percent"].as_f64()
        ),
        (Some(0.0), Some(0.0))
    );

    pool_keeps_its_size(&app, 2).await;
}

/// Bytes that are not UTF-8 in a record's error, a heartbeat with non-finite numbers, and a pool
/// size beyond the API's limit (1100) in the control hash.
fn plant_unreadable_values(conn: &mut redis::Connection, id: &str) {
    let _: i64 = redis::cmd("HSET")
        .arg(format!("ops:{{lossy}}:task:{id}"))
        .arg("error")
        .arg(&b"bad \xff\xfe bytes"[..])
        .query(conn)
        .unwrap();
    // A heartbeat with non-finite numbers, and a pool size beyond the API's limit.
    let _: i64 = redis::cmd("HSET")
        .arg("ops:{lossy}:instance:ghost")
        .arg(&[
            "instance",
            "ghost",
            "status",
            "running",
            "cpu_percent",
            "NaN",
        ])
        .arg(&["memory_percent", "inf"])
        .query(conn)
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let _: i64 = redis::cmd("ZADD")
        .arg("ops:{lossy}:instances")
        .arg(now)
        .arg("ghost")
        .query(conn)
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg("ops:{lossy}:control")
        .arg("concurrency")
        .arg("1100")
        .query(conn)
        .unwrap();
}

/// Over a few control reads the pool keeps its own size: 1100 is not a size the API allows.
async fn pool_keeps_its_size(app: &TestApp, consumers: u64) {
    for _ in 0..3 {
        let seen = app.store().await.instances().await.unwrap();
        let hb = seen
            .iter()
            .find(|h| h.instance == app.instance)
            .unwrap()
            .clone();
        let next = eventually(LONG, "the next heartbeat", || async {
            let now = app.store().await.instances().await.ok()?;
            now.into_iter()
                .find(|h| h.instance == app.instance && h.last_heartbeat != hb.last_heartbeat)
        })
        .await;
        assert_eq!(
            (next.status, next.consumers),
            (Some(PoolStatus::Running), consumers)
        );
    }
}

#[tokio::test]
async fn health_fails_only_when_a_restart_helps_and_ready_when_no_work_gets_done() {
    let mut app = spawn_app("probes", &[]).await;
    let (http, base) = (app.http.clone(), app.base_url());
    let get = |path: &'static str| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move { get_json(&http, &url).await.expect("the probe answers") }
    };
    let ready = eventually(LONG, "ready", || async {
        let (s, b) = get("/ready").await;
        (s == 200).then_some(b)
    })
    .await;
    assert_eq!(ready["status"], "ready");

    // A full Redis (noeviction) refuses writes: not ready, still alive.
    let mut conn = app.redis.conn();
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxmemory", "1"])
        .query(&mut conn)
        .unwrap();
    let (s, b) = get("/ready").await;
    assert_eq!(
        (s, b["down"].clone()),
        (503, json!(["redis_writes"])),
        "{b}"
    );
    assert_eq!(get("/health").await.0, 200);
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxmemory", "0"])
        .query(&mut conn)
        .unwrap();

    // A stopped pool: not ready, alive.
    app.store()
        .await
        .set_control(None, ops_worker::queue::PoolCommand::Stop, None)
        .await
        .unwrap();
    let b = eventually(LONG, "not ready while stopped", || async {
        let (s, b) = get("/ready").await;
        (s == 503 && b["worker"] == "stopped").then_some(b)
    })
    .await;
    assert_eq!(b["down"], json!(["worker"]));
    assert_eq!(get("/health").await.0, 200);

    // Redis down: restarting the instance would not help, so liveness holds.
    app.redis.kill();
    let (s, b) = get("/health").await;
    assert_eq!((s, b["redis"].as_str()), (200, Some("down")), "{b}");
    let (s, b) = get("/ready").await;
    assert_eq!(s, 503, "{b}");
    assert!(
        b["down"].as_array().unwrap().contains(&json!("redis")),
        "{b}"
    );
}
