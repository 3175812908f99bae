//! Shared test harness, used by every test file (`mod support; use support::*;`):
//!
//! - [`RedisServer`]: a private `redis-server` per test (killable, restartable), so tests never see
//!   each other's keys;
//! - [`Worker::builder`]: the real `ops-worker run` binary as a child process on port 0, returned
//!   once it has reported its port and `/health` answers ([`spawn_app`] adds a private Redis);
//! - request helpers on [`Worker`] (`call`, `submit`, fixtures) and [`token`];
//! - [`SimProcess`]: the Vercel simulator, also on a port it picks itself;
//! - [`eventually`] and friends: poll a condition until a deadline. Nothing here sleeps to
//!   synchronise.
// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code, unused_imports)]

mod api_client;
mod app;
pub mod cluster;
pub mod proxy;
mod redis_server;
pub mod sentinel;
mod sim;
pub mod tls;
pub mod vercel_tasks;
mod worker;

pub use api_client::{token, week_ahead};
pub use app::{TestApp, spawn_app};
pub use redis_server::{RedisServer, TlsListener};
pub use sim::SimProcess;
pub use worker::{START_TIMEOUT, Worker, WorkerBuilder, get_json, listening_port};

use std::collections::HashMap;
use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ops_worker::config::{Config, Mode};
use ops_worker::queue::QueueStore;
use ops_worker::task::{NewTask, TaskRecord};
use serde_json::Value;

/// Makes scratch directories and instance ids unique within this test process.
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The Vercel token every test process gets; tests assert it never shows up in logs or records.
pub const TEST_VERCEL_TOKEN: &str = "tok_test_5ecret_never_logged";
/// The API signing key every test process gets.
pub const TEST_JWT_SECRET: &str = "jwt_test_secret_0123456789_abcdefghij";
/// The token [`SimProcess`] accepts; like the others it must never reach a worker's log.
pub const SIM_TOKEN: &str = "sim_token_for_tests_only";

/// A port nothing listened on a moment ago. Only for a port that must stay closed (an unreachable
/// Redis) or for a server that cannot bind port 0 and report it, started again on a fresh port on
/// collision ([`RedisServer`]; the private prometheus of tests/prometheus_live.rs). Never for an
/// `ops-worker run`: workers bind port 0 ([`Worker::builder`]).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// A fresh scratch directory, removed by its owner's Drop.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir =
        std::env::temp_dir().join(format!("ops-worker-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Environment for a worker or CLI process on this Redis and queue.
pub fn base_env(redis_url: &str, queue: &str) -> HashMap<String, String> {
    [
        ("REDIS_URL", redis_url.to_string()),
        ("QUEUE_NAME", queue.to_string()),
        ("LOG_FORMAT", "json".to_string()),
        ("LOG_LEVEL", "info".to_string()),
        // `run` requires a token; tests that talk to Vercel point VERCEL_API_URL at the simulator.
        ("VERCEL_TOKEN", TEST_VERCEL_TOKEN.to_string()),
        ("VERCEL_API_URL", "http://127.0.0.1:9".to_string()),
        ("JWT_SECRET", TEST_JWT_SECRET.to_string()),
        // Tests drive noop's diagnostic knobs (sleep, fail, panic); production leaves them off.
        ("WORKER_DIAGNOSTICS", "true".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The library's view of a queue, for enqueuing and inspecting from tests.
pub async fn store(redis_url: &str, queue: &str) -> QueueStore {
    let config = Config::from_vars(&base_env(redis_url, queue), Mode::Tool).expect("test config");
    QueueStore::new(&config.redis, &config.queue)
        .await
        .expect("store")
}

/// A valid noop task.
pub fn noop(payload: Value) -> TaskRecord {
    task("noop", "P2", payload)
}

/// A valid task of type `ty` at `priority`.
pub fn task(ty: &str, priority: &str, payload: Value) -> TaskRecord {
    NewTask {
        task_type: Some(ty.into()),
        priority: Some(priority.into()),
        payload: Some(payload),
        source: Some("test".into()),
        ..Default::default()
    }
    .validate(3, chrono::Utc::now())
    .expect("valid test task")
}

/// The `ops-worker` binary built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ops-worker")
}

/// Poll `check` every 25 ms until it returns `Some`, or fail after `timeout` saying `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The HTTP status of a GET (`None` while nothing answers).
/// The value of one series `name{labels}` (labels as the exporter writes them) in a `/metrics`
/// text, `None` when absent.
pub fn metric_sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub async fn http_status(url: &str) -> Option<u16> {
    reqwest::get(url).await.ok().map(|r| r.status().as_u16())
}

/// Wait until the queue has completed at least `n` tasks in total.
pub async fn wait_completed(store: &QueueStore, n: u64, timeout: Duration) {
    eventually(timeout, &format!("{n} tasks completed"), || async {
        let s = store.stats().await.ok()?;
        (s.completed_total >= n).then_some(())
    })
    .await
}

/// Run the CLI to completion with the base environment plus `extra`.
pub fn cli(
    redis_url: &str,
    queue: &str,
    extra: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut env = base_env(redis_url, queue);
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Command::new(bin())
        .args(args)
        .env_clear()
        .envs(&env)
        .output()
        .expect("run ops-worker")
}

/// The check named `name` of a `doctor --json` report.
pub fn doctor_check(report: &Value, name: &str) -> Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no check {name:?} in {report}"))
}
