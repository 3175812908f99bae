//! The dashboard's API against a running `ops-worker run`: deleting dead letters, bulk retry /
//! delete / cancel answered per id (roles, validation), and the charts' series from the history
//! kept in Redis (`GET /api/stats/history`).

mod support;

use std::time::Duration;

use ops_worker::api::auth::Role;
use ops_worker::task::TaskStatus;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

const LONG: Duration = Duration::from_secs(60);

async fn bulk(app: &Worker, role: Role, body: Value) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        "/api/tasks/bulk",
        Some(&token(role)),
        Some(body),
    )
    .await
}

/// The per-id entry of `id` in a bulk answer.
fn result_of<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["results"]
        .as_array()
        .and_then(|r| r.iter().find(|e| e["task_id"] == id))
        .unwrap_or_else(|| panic!("no result for {id} in {report}"))
}

#[tokio::test]
async fn dead_letters_are_deleted_one_or_many_and_only_dead_letters() {
    let app = spawn_app("bulk-delete", &[("WORKER_CONCURRENCY", "2")]).await;
    let store = app.store().await;
    let (one, two, three) = (
        app.failed_task().await,
        app.failed_task().await,
        app.failed_task().await,
    );
    let waiting = app.waiting_task().await;
    let admin = token(Role::Admin);

    // One: DELETE /tasks/{id}; the record and its place in the failed listing are gone.
    let (s, v) = app
        .call(Method::DELETE, &format!("/tasks/{one}"), Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"task_id": one, "status": "deleted"}));
    assert!(store.get(&one).await.unwrap().is_none());
    let (s, _) = app
        .call(Method::GET, &format!("/tasks/{one}"), Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = app
        .call(Method::DELETE, &format!("/tasks/{one}"), Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = app
        .call(
            Method::DELETE,
            &format!("/tasks/{waiting}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a pending task is no dead letter: {v}"
    );
    assert!(store.get(&waiting).await.unwrap().is_some());

    // Many: per id, in order; the pending one and the unknown one are refused, the rest go.
    let ids = json!([two, waiting, three, "no-such-task"]);
    let (s, v) = bulk(&app, Role::Agent, json!({"action": "delete", "ids": ids})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "delete needs admin: {v}");
    let (s, v) = bulk(&app, Role::Admin, json!({"action": "delete", "ids": ids})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["succeeded"].as_u64(), v["failed"].as_u64()),
        (Some(2), Some(2)),
        "{v}"
    );
    assert_eq!(result_of(&v, &two)["status"], "deleted");
    assert_eq!(result_of(&v, &waiting)["error"]["code"], "conflict");
    assert_eq!(result_of(&v, "no-such-task")["error"]["code"], "not_found");
    let (_, listed) = app
        .call(
            Method::GET,
            "/api/tasks/failed?limit=100",
            Some(&admin),
            None,
        )
        .await;
    let left: Vec<&Value> = listed["tasks"].as_array().unwrap().iter().collect();
    assert!(left.is_empty(), "every dead letter was deleted: {listed}");
    let events = store.events(10_000).await.unwrap();
    let deleted = events.iter().filter(|e| e.event == "task.deleted").count();
    assert_eq!(deleted, 3, "one task.deleted event per deleted task");
}

#[tokio::test]
async fn bulk_retry_and_cancel_answer_per_id_with_the_single_routes_roles() {
    let app = spawn_app("bulk-retry", &[("WORKER_CONCURRENCY", "1")]).await;
    let store = app.store().await;
    let failed = [app.failed_task().await, app.failed_task().await];
    let admin = token(Role::Admin);
    // Stop the pool so replayed tasks stay pending where the test can see them.
    let (s, v) = app
        .call(Method::POST, "/api/worker/stop", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    eventually(LONG, "the pool stopped", || async {
        let all = app.instance_statuses().await;
        all.iter().all(|(_, s)| s == "stopped").then_some(())
    })
    .await;

    let body = json!({"action": "retry", "ids": [failed[0], failed[1]]});
    let (s, v) = bulk(&app, Role::Agent, body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "retry needs admin: {v}");
    let (s, v) = bulk(&app, Role::Admin, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["succeeded"], 2, "{v}");
    for id in &failed {
        assert_eq!(result_of(&v, id)["status"], "pending", "{v}");
        let r = store.get(id).await.unwrap().expect("record");
        assert_eq!(
            r.status,
            TaskStatus::Pending,
            "bulk retry makes {id} pending again"
        );
    }
    // Retrying again: each is pending now, so each is refused as the single route would.
    let (_, v) = bulk(
        &app,
        Role::Admin,
        json!({"action": "retry", "ids": [failed[0]]}),
    )
    .await;
    assert_eq!(
        result_of(&v, &failed[0])["error"]["code"],
        "conflict",
        "{v}"
    );

    // An agent cancels them (and a waiting one) in one go.
    let waiting = app.waiting_task().await;
    let ids = json!([failed[0], failed[1], waiting]);
    let (s, v) = bulk(&app, Role::Viewer, json!({"action": "cancel", "ids": ids})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "cancel needs agent: {v}");
    let (s, v) = bulk(&app, Role::Agent, json!({"action": "cancel", "ids": ids})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["succeeded"], 3, "{v}");
    for id in failed.iter().chain([&waiting]) {
        let r = store.get(id).await.unwrap().expect("record");
        assert_eq!(r.status, TaskStatus::Cancelled, "{id}");
    }
}

#[tokio::test]
async fn bulk_bodies_get_a_400_naming_the_field() {
    let app = spawn_app("bulk-400", &[]).await;
    let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    let cases = [
        (json!({"ids": ["a"]}), "action"),
        (json!({"action": "explode", "ids": ["a"]}), "action"),
        (json!({"action": "retry"}), "ids"),
        (json!({"action": "retry", "ids": "a"}), "ids"),
        (json!({"action": "retry", "ids": []}), "ids"),
        (json!({"action": "retry", "ids": many}), "ids"),
        (
            json!({"action": "retry", "ids": ["ok", "not/an/id"]}),
            "ids[1]",
        ),
        (
            json!({"action": "retry", "ids": ["ok"], "force": true}),
            "force",
        ),
    ];
    for (body, field) in cases {
        let (s, v) = bulk(&app, Role::Admin, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
}

async fn history(app: &Worker, q: &str) -> (StatusCode, Value) {
    let viewer = token(Role::Viewer);
    let path = format!("/api/stats/history{q}");
    app.call(Method::GET, &path, Some(&viewer), None).await
}

/// The sum of `field` over a series' points.
fn sum(series: &Value, field: &str) -> u64 {
    series["points"]
        .as_array()
        .map(|p| p.iter().filter_map(|x| x[field].as_u64()).sum())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_charts_series_come_from_the_history_kept_in_redis() {
    // Two instances: each adds its own counts to the same minute hashes.
    let app = spawn_app("history", &[("WORKER_CONCURRENCY", "2")]).await;
    let _other = app
        .another_worker()
        .env("WORKER_CONCURRENCY", "2")
        .spawn()
        .await;
    let store = app.store().await;
    let tasks: Vec<_> = (0..12).map(|_| noop(json!({"sleep_ms": 20}))).collect();
    store.enqueue(&tasks).await.expect("enqueue");
    wait_completed(&store, 12, LONG).await;
    // The completions are counted by the scripts at once; each instance's waits arrive with its
    // flush (every 5 s) and the minute's sample once a minute, without anything else happening.
    let hour = eventually(
        LONG,
        "12 completed, a sample and 12 waits in the hour",
        || async {
            let (s, v) = history(&app, "?range=1h").await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let points = v["points"].as_array()?;
            let sampled = points.iter().any(|p| p["capacity"].is_u64());
            let waits = points.iter().any(|p| p["wait_ms"]["p99"].is_number());
            let all_waits = sum(&v, "waits") >= 12;
            (sum(&v, "completed") == 12 && sampled && waits && all_waits).then_some(v)
        },
    )
    .await;
    assert_eq!(hour["step_secs"], 60);
    let n = hour["points"].as_array().map(Vec::len).unwrap_or(0);
    assert!((60..=61).contains(&n), "an hour of minutes: {n}");
    assert_eq!(sum(&hour, "waits"), 12, "one wait per claimed task");
    assert_eq!(sum(&hour, "failed") + sum(&hour, "retried"), 0);
    sampler_turn_taken(&store).await;
    other_ranges_and_bad_parameters(&app, &hour).await;
    the_minute_expires_after_25_hours(&store, &hour).await;
}

/// Whichever instance sampled the minute took its `SET NX` turn.
async fn sampler_turn_taken(store: &ops_worker::queue::QueueStore) {
    let sampler = format!("{}:stats:sampler:*", store.key_base());
    let mut conn = store
        .dedicated_connection(Duration::from_secs(5))
        .await
        .expect("connect");
    let turns: Vec<String> = redis::cmd("KEYS")
        .arg(&sampler)
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert!(!turns.is_empty(), "a sampler turn was taken");
}

/// The day (per hour) sums to the hour's count, the live range has 600 seconds, bad range and
/// step values are named.
async fn other_ranges_and_bad_parameters(app: &TestApp, hour: &Value) {
    let (s, day) = history(app, "?range=24h&step=1h").await;
    assert_eq!(s, StatusCode::OK, "{day}");
    assert_eq!(day["step_secs"], 3600);
    assert_eq!(sum(&day, "completed"), sum(hour, "completed"));

    // The live part: per second from the tp: counters.
    let (s, live) = history(app, "?range=10m").await;
    assert_eq!(s, StatusCode::OK, "{live}");
    assert_eq!(live["points"].as_array().map(Vec::len), Some(600));
    assert!(sum(&live, "completed") >= 12, "{}", sum(&live, "completed"));

    for (q, field) in [
        ("?range=2d", "range"),
        ("?range=1h&step=7m", "step"),
        ("?range=1h&step=1h", ""),
        ("?range=10m&step=1m", "step"),
    ] {
        let (s, v) = history(app, q).await;
        if field.is_empty() {
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
        } else {
            assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
            assert_eq!(v["error"]["field"], field, "{q}: {v}");
        }
    }
}

/// The hash of a busy minute expires after 25 hours.
async fn the_minute_expires_after_25_hours(store: &ops_worker::queue::QueueStore, hour: &Value) {
    let mut conn = store
        .dedicated_connection(Duration::from_secs(5))
        .await
        .expect("connect");
    let busy = hour["points"]
        .as_array()
        .and_then(|p| p.iter().find(|x| x["completed"].as_u64() > Some(0)))
        .and_then(|x| x["at"].as_str())
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .expect("a minute with completed tasks");
    let key = format!("{}:stats:{}", store.key_base(), busy.timestamp() / 60);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("TTL");
    assert!(
        ttl > 24 * 3600 && ttl <= 25 * 3600,
        "the minute's hash expires after 25 h: {ttl}"
    );
}

/// The outcomes summed over the last hour of the history, read from Redis:
/// (completed, failed, retried, cancelled).
async fn hour_outcomes(store: &ops_worker::queue::QueueStore) -> (u64, u64, u64, u64) {
    let points = store.history(60, 60).await.expect("history");
    points.iter().fold((0, 0, 0, 0), |(c, f, r, x), p| {
        (
            c + p.completed,
            f + p.failed,
            r + p.retried,
            x + p.cancelled,
        )
    })
}

#[tokio::test]
async fn every_outcome_counts_once_in_the_script_that_records_it() {
    use ops_worker::queue::{CancelOutcome, Failure};
    // No instance runs: nothing is flushed, whatever the history holds the scripts wrote.
    let redis = RedisServer::start();
    let q = store(&redis.url(), "history-exact").await;
    let tasks: Vec<_> = (0..10).map(|_| noop(json!({}))).collect();
    q.enqueue(&tasks).await.expect("enqueue");
    let claimed = q.claim("t/c0", 10).await.expect("claim").tasks;
    let ids: Vec<String> = claimed.iter().map(|t| t.id.clone()).collect();
    assert_eq!(ids.len(), 10);
    let done: Vec<_> = ids[..4].iter().map(|id| (id.clone(), json!({}))).collect();
    q.complete(&done).await.expect("complete");
    let failure = |id: &String, retryable| Failure {
        id: id.clone(),
        reason: "boom".into(),
        retryable,
        backoff: Duration::from_secs(60),
    };
    // Two retried and one dead-lettered in one call.
    let fails = [
        failure(&ids[4], true),
        failure(&ids[5], true),
        failure(&ids[6], false),
    ];
    q.fail("t/c0", &fails).await.expect("fail");
    // Two running tasks cancelled: one stopped by its consumer, one that failed meanwhile.
    for id in &ids[7..9] {
        assert_eq!(
            q.cancel(id).await.expect("cancel"),
            CancelOutcome::Cancelling
        );
    }
    q.finish_cancel("t/c0", &ids[7])
        .await
        .expect("finish_cancel");
    q.fail("t/c0", &[failure(&ids[8], true)])
        .await
        .expect("fail");
    // A waiting task cancelled at once; a completion reported twice counts once.
    let waiting = noop(json!({}));
    q.enqueue(std::slice::from_ref(&waiting))
        .await
        .expect("enqueue");
    let waiting_id = waiting.task_id.to_string();
    assert_eq!(
        q.cancel(&waiting_id).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    q.complete(&done).await.expect("complete again");

    assert_eq!(hour_outcomes(&q).await, (4, 1, 2, 3));
    let s = q.stats().await.expect("stats");
    assert_eq!(
        (s.completed_total, s.failed_total, s.cancelled_total),
        (4, 1, 3)
    );
    assert_eq!((s.completed_last_1m, s.failed_last_1m), (4, 1));
    let mut conn = q
        .dedicated_connection(Duration::from_secs(5))
        .await
        .expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:stats:*", q.key_base()))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert!(
        !keys.is_empty() && keys.len() <= 2,
        "one minute (or two): {keys:?}"
    );
    for key in keys {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("TTL");
        assert!(ttl > 24 * 3600 && ttl <= 25 * 3600, "{key}: {ttl}");
    }
}

#[tokio::test]
async fn an_instance_killed_right_after_completing_loses_no_counts() {
    let mut app = spawn_app("history-kill", &[("WORKER_CONCURRENCY", "4")]).await;
    let store = app.store().await;
    let tasks: Vec<_> = (0..20).map(|_| noop(json!({}))).collect();
    store.enqueue(&tasks).await.expect("enqueue");
    wait_completed(&store, 20, LONG).await;
    // Killed before its next flush: the counts are already in the minute hashes.
    app.worker.kill9();
    let (completed, failed, retried, cancelled) = hour_outcomes(&store).await;
    assert_eq!((completed, failed, retried, cancelled), (20, 0, 0, 0));
}
