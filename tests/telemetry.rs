//! What the process writes out: panics are one log line (JSON from a real worker, with and without
//! `RUST_BACKTRACE`; one text line in the pretty format), and a Vercel error echoing the
//! `Authorization` header never puts the token in the task record, the event stream or the logs.

mod support;

use std::process::Command;
use std::time::Duration;

use ops_worker::config::LogFormat;
use ops_worker::queue::Failure;
use ops_worker::telemetry::Scrubber;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LONG: Duration = Duration::from_secs(60);
/// The noop handler's panic message.
const NOOP_PANIC: &str = "noop task asked to panic (payload.panic = true)";
/// Set in the environment of the child process of [`pretty_panic_child`].
const CHILD_ENV: &str = "OPS_WORKER_TEST_PANIC_CHILD";

/// Run one panicking noop task on a worker with `extra` environment; answer its log lines.
async fn panic_once(redis: &RedisServer, queue: &str, extra: &[(&str, &str)]) -> Vec<Value> {
    let w = Worker::builder(&redis.url(), queue)
        .envs(extra.iter().copied())
        .spawn()
        .await;
    let q = w.store().await;
    let mut t = noop(json!({"panic": true}));
    t.max_retries = 0;
    let id = t.task_id.to_string();
    q.enqueue(&[t]).await.unwrap();
    eventually(LONG, "the panicking task failed", || async {
        q.get(&id).await.ok()??.status.is_terminal().then_some(())
    })
    .await;
    let logs = w.logs();
    logs.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{logs}")))
        .collect()
}

#[tokio::test]
async fn a_panic_is_one_json_line_with_message_and_location() {
    let redis = RedisServer::start();
    for (queue, extra) in [
        ("panic-plain", vec![]),
        ("panic-bt", vec![("RUST_BACKTRACE", "1")]),
        ("panic-full", vec![("RUST_BACKTRACE", "full")]),
    ] {
        let lines = panic_once(&redis, queue, &extra).await;
        let panics: Vec<&Value> = lines
            .iter()
            .filter(|l| l["message"].as_str().unwrap_or("").contains(NOOP_PANIC))
            .collect();
        assert_eq!(panics.len(), 1, "{queue}: one panic line in {lines:#?}");
        let p = panics[0];
        assert_eq!(p["level"], "ERROR", "{p}");
        assert_eq!(p["target"], "ops_worker::panic", "{p}");
        assert_eq!(p["panic"], NOOP_PANIC, "{p}");
        let location = p["location"].as_str().unwrap_or("");
        let line = location.strip_prefix("src/handlers/noop.rs:");
        assert!(
            line.is_some_and(|n| n.parse::<u32>().is_ok()),
            "{queue}: location {location}"
        );
        assert!(!p["span"]["task_id"].is_null(), "logged in the task's span");
    }
}

/// The child half of [`a_pretty_panic_is_one_text_line`]: a no-op unless started by it.
#[test]
fn pretty_panic_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    ops_worker::telemetry::init("info", LogFormat::Pretty);
    let caught = std::panic::catch_unwind(|| boom(42));
    assert!(caught.is_err());
}

fn boom(n: u32) {
    panic!("child panic {n}");
}

#[test]
fn a_pretty_panic_is_one_text_line() {
    for backtrace in ["0", "1"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "pretty_panic_child", "--nocapture"])
            .env(CHILD_ENV, "1")
            .env("RUST_BACKTRACE", backtrace)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "RUST_BACKTRACE={backtrace}: {stderr}");
        let line = lines[0];
        for part in [
            "ERROR",
            "panicked: child panic 42",
            "location=tests/telemetry.rs:",
        ] {
            assert!(line.contains(part), "{part} missing in {line}");
        }
    }
}

/// A local endpoint posing as Vercel: every request is refused with a 400 whose message echoes
/// the request's `Authorization` header, as a misbehaving upstream or proxy might.
async fn echoing_vercel() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                while !String::from_utf8_lossy(&buf).contains("\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let auth = head
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                    .unwrap_or("Authorization: none")
                    .trim();
                let body = json!({"error": {"code": "bad_request",
                    "message": format!("invalid request header {auth} (also Bearer xyz)")}})
                .to_string();
                let reply = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

/// No trace of the token or of `Bearer xyz` in `text`, which says where it comes from.
fn assert_clean(what: &str, text: &str) {
    for leak in [TEST_VERCEL_TOKEN, "Bearer xyz", "Bearer tok_"] {
        assert!(!text.contains(leak), "{leak} in the {what}: {text}");
    }
}

#[tokio::test]
async fn an_upstream_error_echoing_the_token_is_stored_and_logged_redacted() {
    let vercel = echoing_vercel().await;
    let redis = RedisServer::start();
    let w = Worker::builder(&redis.url(), "echo")
        .env("VERCEL_API_URL", vercel)
        .spawn()
        .await;
    let q = w.store().await;
    let mut t = task("deploy", "P1", json!({"project": "web"}));
    t.max_retries = 0;
    let id = t.task_id.to_string();
    q.enqueue(&[t]).await.unwrap();
    let rec = eventually(LONG, "the deploy failed", || async {
        let rec = q.get(&id).await.ok()??;
        rec.status.is_terminal().then_some(rec)
    })
    .await;
    let error = rec.error.unwrap_or_default();
    assert!(
        error.contains("[redacted]"),
        "the echo reached the record: {error}"
    );
    assert_clean("record", &error);
    let events = serde_json::to_string(&q.events(1000).await.unwrap()).unwrap();
    assert!(events.contains("[redacted]"), "{events}");
    assert_clean("event stream", &events);
    assert_clean("log", &w.logs());
    // Dropping the worker checks its log for every test secret as well.
}

#[tokio::test]
async fn fail_and_emit_event_scrub_before_writing() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "scrub").await;
    let config = ops_worker::config::Config::from_vars(
        &base_env(&redis.url(), "scrub"),
        ops_worker::config::Mode::Tool,
    )
    .unwrap();
    ops_worker::telemetry::scrub::install(Scrubber::from_config(&config));

    let mut t = noop(json!({}));
    t.max_retries = 0;
    let id = t.task_id.to_string();
    q.enqueue(&[t]).await.unwrap();
    q.claim("t/c0", 1).await.unwrap();
    let reason = format!(
        "Vercel refused the request (400 bad_request): echoed token={TEST_VERCEL_TOKEN} \
         and header Authorization: Bearer xyz"
    );
    q.fail(
        "t/c0",
        &[Failure {
            id: id.clone(),
            reason,
            retryable: false,
            backoff: Duration::ZERO,
        }],
    )
    .await
    .unwrap();
    let mut body = serde_json::Map::new();
    body.insert(
        "error".into(),
        format!("Bearer xyz {TEST_VERCEL_TOKEN}").into(),
    );
    q.emit_event("deploy.failed", Some(&id), body)
        .await
        .unwrap();

    let error = q.get(&id).await.unwrap().unwrap().error.unwrap_or_default();
    assert!(error.contains("token=[redacted]"), "{error}");
    assert!(
        error.contains("Authorization: Bearer [redacted]"),
        "{error}"
    );
    assert_clean("record", &error);
    let events = q.events(100).await.unwrap();
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        events.iter().any(
            |e| e.event == "deploy.failed" && e.data["error"] == "Bearer [redacted] [redacted]"
        ),
        "{text}"
    );
    assert_clean("event stream", &text);
}
