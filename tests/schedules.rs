//! Recurring tasks through real instances: a per-second schedule fired by five instances makes
//! exactly one task per tick with no tick missed while two of them are killed with -9; schedules
//! managed with the CLI and the API, every bad field named.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use ops_worker::api::auth::Role;
use ops_worker::queue::QueueStore;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const LONG: Duration = Duration::from_secs(60);

/// Tasks made by schedule `name`, counted per tick (epoch ms), from the recent index.
async fn ticks(q: &QueueStore, name: &str) -> BTreeMap<i64, usize> {
    let mut out = BTreeMap::new();
    for t in q.recent(1_000).await.unwrap() {
        if t.source != format!("schedule:{name}") {
            continue;
        }
        let tick = t.metadata["tick"].as_str().unwrap();
        let ms = chrono::DateTime::parse_from_rfc3339(tick)
            .unwrap()
            .timestamp_millis();
        *out.entry(ms).or_default() += 1;
    }
    out
}

fn add_every_second(redis_url: &str, queue: &str, name: &str) {
    let out = cli(
        redis_url,
        queue,
        &[],
        &[
            "schedule",
            "add",
            "--name",
            name,
            "--cron",
            "* * * * * *",
            "--type",
            "noop",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn each_tick_fires_once_across_five_instances_and_none_is_missed_when_two_die() {
    let redis = RedisServer::start();
    let queue = "sched";
    let mut workers = Vec::new();
    for _ in 0..5 {
        workers.push(Worker::builder(&redis.url(), queue).spawn().await);
    }
    let q = store(&redis.url(), queue).await;
    add_every_second(&redis.url(), queue, "tick");
    eventually(LONG, "4 ticks", || async {
        (ticks(&q, "tick").await.len() >= 4).then_some(())
    })
    .await;
    workers[0].kill9();
    workers[1].kill9();
    let before = ticks(&q, "tick").await.len();
    eventually(LONG, "6 more ticks after two instances died", || async {
        (ticks(&q, "tick").await.len() >= before + 6).then_some(())
    })
    .await;
    let out = cli(&redis.url(), queue, &[], &["schedule", "rm", "tick"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let seen = ticks(&q, "tick").await;
    assert!(
        seen.values().all(|&n| n == 1),
        "a tick fired twice: {seen:?}"
    );
    let times: Vec<i64> = seen.keys().copied().collect();
    assert!(
        times.windows(2).all(|w| w[1] - w[0] == 1_000),
        "a tick was missed: {times:?}"
    );
    wait_completed(&q, times.len() as u64, LONG).await;
    let after_rm = seen.len();
    let listed = cli(&redis.url(), queue, &[], &["schedule", "list", "--json"]);
    let list: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(list, json!([]), "removed");
    // Nothing fires once removed (a tick in flight at removal may still land).
    assert!(ticks(&q, "tick").await.len() <= after_rm + 1);
}

/// `schedule add` refuses each bad flag naming it (exit 2), then adds the nightly check.
fn add_nightly_with_the_cli(redis_url: &str, queue: &str) {
    let bad: [(&[&str], &str); 4] = [
        (&["--cron", "every day"], "cron"),
        (&["--cron", "0 9 * * *", "--tz", "Mars/Olympus"], "tz"),
        (
            &["--cron", "0 9 * * *", "--payload", "{\"sleep_ms\": \"x\"}"],
            "payload.sleep_ms",
        ),
        (&["--cron", "0 9 * * *", "--priority", "P9"], "priority"),
    ];
    for (extra, field) in bad {
        let mut args = vec!["schedule", "add", "--name", "nightly", "--type", "noop"];
        args.extend_from_slice(extra);
        let out = cli(redis_url, queue, &[], &args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(field), "{extra:?}: {stderr}");
    }
    let out = cli(
        redis_url,
        queue,
        &[],
        &[
            "schedule",
            "add",
            "--name",
            "nightly",
            "--cron",
            "0 9 * * *",
            "--tz",
            "Europe/Paris",
            "--type",
            "check",
            "--payload",
            "{\"project\": \"web\"}",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn schedules_are_managed_with_the_cli_and_the_api_and_bad_fields_are_named() {
    let redis = RedisServer::start();
    let queue = "schedapi";
    add_nightly_with_the_cli(&redis.url(), queue);
    let worker = Worker::builder(&redis.url(), queue).spawn().await;
    let viewer = token(Role::Viewer);
    let admin = token(Role::Admin);
    let (s, list) = worker
        .call(Method::GET, "/api/schedules", Some(&viewer), None)
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list[0]["name"], "nightly");
    assert_eq!(list[0]["tz"], "Europe/Paris");
    let next = list[0]["next_tick"].as_str().unwrap();
    let next = chrono::DateTime::parse_from_rfc3339(next).unwrap();
    assert_eq!(
        next.with_timezone(&chrono_tz::Europe::Paris)
            .format("%H:%M")
            .to_string(),
        "09:00"
    );

    let spec = json!({"name": "hourly", "cron": "0 * * * *", "type": "check",
                      "payload": {"project": "web"}, "priority": "P1"});
    let (s, _) = worker
        .call(
            Method::POST,
            "/api/schedules",
            Some(&viewer),
            Some(spec.clone()),
        )
        .await;
    assert_eq!(s, 403);
    let (s, v) = worker
        .call(
            Method::POST,
            "/api/schedules",
            Some(&admin),
            Some(json!({"name": "x", "cron": 5})),
        )
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["field"].clone()),
        (400, json!("cron")),
        "{v}"
    );
    let (s, v) = worker
        .call(Method::POST, "/api/schedules", Some(&admin), Some(spec))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["priority"], "P1");
    let (s, _) = worker
        .call(Method::DELETE, "/api/schedules/hourly", Some(&viewer), None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = worker
        .call(Method::DELETE, "/api/schedules/hourly", Some(&admin), None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = worker
        .call(Method::DELETE, "/api/schedules/hourly", Some(&admin), None)
        .await;
    assert_eq!(s, 404);
    let out = cli(&redis.url(), queue, &[], &["schedule", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("nightly") && !table.contains("hourly"),
        "{table}"
    );
}
