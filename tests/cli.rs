//! The CLI contract: exit codes, error messages naming the variable or field, `stats --json`.

mod support;

use serde_json::Value;
use support::*;

#[test]
fn run_without_redis_url_exits_2_naming_it() {
    let out = std::process::Command::new(bin())
        .arg("run")
        .env_clear()
        .env("WORKER_CONCURRENCY", "lots")
        .env("SENTRY_DSN", "not-a-dsn")
        .env("VERCEL_TOKEN", "tok_must_not_leak")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("REDIS_URL"), "{err}");
    assert!(err.contains("WORKER_CONCURRENCY"), "{err}");
    assert!(err.contains("SENTRY_DSN: does not parse"), "{err}");
    assert!(!err.contains("tok_must_not_leak"));
}

#[test]
fn enqueue_validates_before_submitting_and_names_the_field() {
    let redis = RedisServer::start();
    let out = cli(
        &redis.url(),
        "c",
        &[],
        &[
            "enqueue",
            "--type",
            "noop",
            "--payload",
            "{\"sleep_ms\":\"x\"}",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("payload.sleep_ms"));
    let out = cli(
        &redis.url(),
        "c",
        &[],
        &["enqueue", "--type", "noop", "--payload", "{oops"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("payload: invalid JSON"));
    let out = cli(&redis.url(), "c", &[], &["enqueue", "--type", "teleport"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("type:"));
    // Nothing was stored by the rejected submissions.
    let out = cli(&redis.url(), "c", &[], &["stats", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pending_total"], 0);
}

#[test]
fn enqueue_count_and_stats_json_contract() {
    let redis = RedisServer::start();
    let out = cli(
        &redis.url(),
        "c",
        &[],
        &[
            "enqueue",
            "--type",
            "noop",
            "--priority",
            "P1",
            "--count",
            "7",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids.as_array().unwrap().len(), 7);
    let out = cli(
        &redis.url(),
        "c",
        &[],
        &[
            "enqueue",
            "--type",
            "deployment",
            "--payload",
            r#"{"service":"test"}"#,
            "--priority",
            "P0",
        ],
    );
    assert!(out.status.success());
    let out = cli(&redis.url(), "c", &[], &["pause", "P3"]);
    assert!(out.status.success());

    let out = cli(&redis.url(), "c", &[], &["stats", "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pending"]["P0"], 1);
    assert_eq!(v["pending"]["P1"], 7);
    assert_eq!(v["pending"]["P2"], 0);
    assert_eq!(v["pending"]["P3"], 0);
    for k in ["in_flight", "retrying", "failed", "completed_total"] {
        assert_eq!(v[k], 0, "{k}");
    }
    assert_eq!(v["paused"], serde_json::json!(["P3"]));
}

#[test]
fn redis_down_is_a_clear_runtime_error_not_a_crash() {
    let port = free_port();
    let out = cli(
        &format!("redis://127.0.0.1:{port}"),
        "c",
        &[],
        &["stats", "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: redis"), "{err}");
}
