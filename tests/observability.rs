//! Observability of a running worker: `/metrics` after a known workload, JSON task logs, and
//! Sentry envelopes (to a local endpoint posing as the DSN) without secrets.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ops_worker::queue::QueueStore;
use ops_worker::task::Priority;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LONG: Duration = Duration::from_secs(60);

async fn scrape(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// 100 noops that complete, 5 that fail at once (no retries), and 3 P3 noops held by pausing
/// P3; returns once the 100 completed.
async fn run_workload(q: &QueueStore) {
    let mut tasks: Vec<_> = (0..100).map(|_| noop(json!({}))).collect();
    for _ in 0..5 {
        let mut t = noop(json!({"fail": true}));
        t.max_retries = 0;
        tasks.push(t);
    }
    q.enqueue(&tasks).await.unwrap();
    q.pause(&[Priority::P3]).await.unwrap();
    q.enqueue(
        &(0..3)
            .map(|_| task("noop", "P3", json!({})))
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    wait_completed(q, 100, LONG).await;
}

#[tokio::test]
async fn metrics_show_exactly_the_workload_and_gauges_match_stats() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "metrics").await;
    let w = Worker::builder(&redis.url(), "metrics")
        .env("WORKER_CONCURRENCY", "4")
        .spawn()
        .await;
    run_workload(&q).await;

    let base = w.base_url();
    // The topology gauge names the single Redis the queue is on.
    let topology = format!(
        r#"ops_worker_redis_topology_info{{topology="single",master="127.0.0.1:{}"}}"#,
        redis.port
    );
    let settled = [
        (
            r#"ops_worker_tasks_total{type="noop",outcome="completed"}"#,
            100.0,
        ),
        (
            r#"ops_worker_tasks_total{type="noop",outcome="failed"}"#,
            5.0,
        ),
        ("ops_worker_queue_dead_letter", 5.0),
        (r#"ops_worker_queue_pending{priority="P3"}"#, 3.0),
        (topology.as_str(), 1.0),
    ];
    let metrics = eventually(LONG, "counters and sampled gauges settle", || async {
        let m = scrape(&base).await;
        let ok = settled
            .iter()
            .all(|(s, v)| metric_sample(&m, s) == Some(*v));
        ok.then_some(m)
    })
    .await;
    for (series, want) in [
        (
            r#"ops_worker_tasks_total{type="noop",outcome="retried"}"#,
            0.0,
        ),
        (
            r#"ops_worker_tasks_total{type="deploy",outcome="completed"}"#,
            0.0,
        ),
        (
            r#"ops_worker_task_duration_seconds_count{type="noop"}"#,
            105.0,
        ),
        (
            r#"ops_worker_task_wait_seconds_count{priority="P2"}"#,
            105.0,
        ),
    ] {
        assert_eq!(metric_sample(&metrics, series), Some(want), "{series}");
    }
    assert!(metrics.contains(r#"ops_worker_task_duration_seconds_bucket{type="noop",le="600"}"#));
    assert!(metrics.contains("# HELP ops_worker_tasks_total"));
    assert!(metrics.contains("process_resident_memory_bytes"));
    assert!(
        !metrics.contains("task_id") && !metrics.contains("dpl_"),
        "no unbounded labels"
    );

    assert_gauges_match_stats(&metrics, &redis.url());
    assert_eq!(
        metric_sample(&metrics, r#"ops_worker_queue_paused{priority="P3"}"#),
        Some(1.0)
    );
    assert_eq!(
        metric_sample(&metrics, r#"ops_worker_worker_status{status="running"}"#),
        Some(1.0)
    );
}

/// The queue gauges equal `ops-worker stats --json`.
fn assert_gauges_match_stats(metrics: &str, redis_url: &str) {
    let out = cli(redis_url, "metrics", &[], &["stats", "--json"]);
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    for p in ["P0", "P1", "P2", "P3"] {
        let series = format!(r#"ops_worker_queue_pending{{priority="{p}"}}"#);
        assert_eq!(
            metric_sample(metrics, &series),
            stats["pending"][p].as_f64(),
            "{p}"
        );
    }
    for (series, field) in [
        ("ops_worker_queue_in_flight", "in_flight"),
        ("ops_worker_queue_retrying", "retrying"),
        ("ops_worker_queue_dead_letter", "failed"),
    ] {
        assert_eq!(
            metric_sample(metrics, series),
            stats[field].as_f64(),
            "{series}"
        );
    }
}

/// `METRICS_PORT` moves `/metrics` to its own listener: the public port answers 404 (JSON, saying
/// where the metrics went) while the API keeps working there, and the metrics listener serves the
/// series and nothing else.
#[tokio::test]
async fn metrics_port_keeps_metrics_off_the_public_port() {
    let redis = RedisServer::start();
    let worker = Worker::builder(&redis.url(), "metricsport")
        .env("METRICS_PORT", "0")
        .spawn()
        .await;
    let public = reqwest::get(worker.url("/metrics")).await.unwrap();
    assert_eq!(public.status(), 404);
    let body: Value = public.json().await.unwrap();
    assert!(body.to_string().contains("METRICS_PORT"), "{body}");
    let health = reqwest::get(worker.url("/health")).await.unwrap();
    assert_eq!(health.status(), 200);

    let port = worker.metrics_port().expect("metrics listening line");
    assert_ne!(port, worker.port());
    let private = format!("http://127.0.0.1:{port}");
    let metrics = scrape(&private).await;
    assert!(metrics.contains("ops_worker_up"), "{metrics}");
    let other = reqwest::get(format!("{private}/api/worker/status"))
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves nothing else"
    );
}

#[tokio::test]
async fn every_task_state_change_is_a_json_log_line_with_the_task_fields() {
    let redis = RedisServer::start();
    let q = store(&redis.url(), "logs").await;
    let w = Worker::builder(&redis.url(), "logs").spawn().await;
    let ok = noop(json!({}));
    let mut bad = noop(json!({"fail": true}));
    bad.max_retries = 1;
    let ids = [ok.task_id.to_string(), bad.task_id.to_string()];
    q.enqueue(&[ok, bad]).await.unwrap();
    eventually(LONG, "both finished", || async {
        let a = q.get(&ids[0]).await.ok()??;
        let b = q.get(&ids[1]).await.ok()??;
        (a.status.is_terminal() && b.status.is_terminal()).then_some(())
    })
    .await;
    // The record turns terminal before the worker logs the outcome: wait for both outcome lines.
    let logs = eventually(LONG, "both outcomes logged", || async {
        let logs = w.logs();
        (logs.contains("task completed") && logs.contains("task dead-lettered")).then_some(logs)
    })
    .await;
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let of = |id: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["span"]["task_id"] == id)
            .collect()
    };
    let messages = |id: &str| -> Vec<String> {
        of(id)
            .iter()
            .map(|l| l["message"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(messages(&ids[0]), ["task started", "task completed"]);
    assert_eq!(
        messages(&ids[1]),
        [
            "task started",
            "attempt failed (retryable)",
            "task retrying",
            "task started",
            "attempt failed (retryable)",
            "task dead-lettered: noop (retries_exhausted)"
        ]
    );
    for l in of(&ids[1]) {
        for field in ["task_id", "task_type", "priority", "attempt", "trace_id"] {
            assert!(!l["span"][field].is_null(), "{field} missing in {l}");
        }
        assert!(l["timestamp"].is_string() && l["level"].is_string());
    }
    let attempts: Vec<String> = of(&ids[1])
        .iter()
        .map(|l| l["span"]["attempt"].to_string())
        .collect();
    assert_eq!(attempts, ["1", "1", "1", "2", "2", "2"]);
}

/// A local HTTP endpoint posing as Sentry: records every request body.
async fn fake_sentry() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let sink = bodies.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        let body =
                            String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                        sink.lock()
                            .unwrap()
                            .push(format!("{}\n{}", &text[..end], body));
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
                            .await;
                        buf.clear();
                    }
                }
            });
        }
    });
    (port, bodies)
}

#[tokio::test]
async fn sentry_gets_the_logged_error_and_the_panic_without_secrets() {
    let (port, bodies) = fake_sentry().await;
    let redis = RedisServer::start();
    let q = store(&redis.url(), "sentry").await;
    let dsn = format!("http://sentrypublickey0001@127.0.0.1:{port}/7");
    let _w = Worker::builder(&redis.url(), "sentry")
        .env("SENTRY_DSN", dsn)
        .env("SENTRY_ENVIRONMENT", "test")
        .spawn()
        .await;
    let mut t = noop(json!({"panic": true}));
    t.max_retries = 0;
    q.enqueue(&[t]).await.unwrap();
    let got = eventually(LONG, "a panic event and an error event", || async {
        let all = bodies.lock().unwrap().join("\n---\n");
        (all.contains("noop task asked to panic") && all.contains("handler panicked"))
            .then_some(all)
    })
    .await;
    assert!(
        got.contains("/api/7/envelope/"),
        "posted to the DSN's project"
    );
    assert!(got.contains("\"environment\":\"test\""), "{got}");
    assert!(got.contains("ops-worker@"), "release set");
    for secret in [TEST_VERCEL_TOKEN, TEST_JWT_SECRET] {
        assert!(!got.contains(secret), "secret sent to Sentry");
    }
}

/// Send one request the HTTP server cannot parse, and wait until it answers or hangs up.
async fn malformed_request(port: u16) {
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    sock.write_all(b"GARBAGE\x00 /\x01 NOT-HTTP\r\nHost: ?\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(LONG, sock.read_to_end(&mut sink)).await;
    assert!(
        sink.starts_with(b"HTTP/1.1 400"),
        "the malformed request was not refused: {}",
        String::from_utf8_lossy(&sink)
    );
}

/// The Sentry events among the recorded requests (the JSON items of each envelope that are events).
fn sentry_events(bodies: &Mutex<Vec<String>>) -> Vec<Value> {
    bodies
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| b.lines().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        // The envelope header has an event_id too, but no platform.
        .filter(|v| v["event_id"].is_string() && v["platform"].is_string())
        .collect()
}

/// An event's message (`logentry.message` or `message`), or its first exception's type.
fn event_kind(event: &Value) -> String {
    [
        &event["logentry"]["message"],
        &event["message"],
        &event["exception"]["values"][0]["type"],
    ]
    .into_iter()
    .find_map(|v| v.as_str())
    .unwrap_or("")
    .to_string()
}

#[tokio::test]
async fn sentry_ignores_http_noise_and_rate_limits_repeated_errors() {
    let (port, bodies) = fake_sentry().await;
    let redis = RedisServer::start();
    let q = store(&redis.url(), "flood").await;
    let dsn = format!("http://sentrypublickey0002@127.0.0.1:{port}/8");
    let mut w = Worker::builder(&redis.url(), "flood")
        .env("SENTRY_DSN", dsn)
        .env("WORKER_MAX_RESTARTS", "1000")
        .spawn()
        .await;
    for _ in 0..10 {
        malformed_request(w.port()).await;
    }
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let mut t = noop(json!({"panic": true}));
            t.max_retries = 0;
            t
        })
        .collect();
    q.enqueue(&tasks).await.unwrap();
    eventually(LONG, "20 panicking tasks dead-lettered", || async {
        (q.stats().await.ok()?.failed >= 20).then_some(())
    })
    .await;
    // Shutting down flushes every event still queued for sending.
    w.signal("TERM");
    assert!(w.wait_exit(LONG).success(), "{}", w.logs());

    let logs = w.logs();
    assert!(
        !logs.lines().any(|l| l.contains("\"target\":\"actix_http")),
        "the malformed requests (answered 400) were logged by the HTTP server: {logs}"
    );
    let all = bodies.lock().unwrap().join("\n---\n");
    for noise in ["actix_http", "stream error", "parse error"] {
        assert!(
            !all.contains(noise),
            "HTTP server noise sent ({noise}): {all}"
        );
    }
    let kinds: Vec<String> = sentry_events(&bodies).iter().map(event_kind).collect();
    let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
    let panics = count("panic");
    let errors = count("handler panicked; the attempt failed");
    // Every dead letter is an ERROR event too, one fingerprint per type and failure class.
    let dead = count("task dead-lettered: noop (panic)");
    assert_eq!(
        panics + errors + dead,
        kinds.len(),
        "nothing else reported: {kinds:?}"
    );
    assert!((1..=5).contains(&panics), "{panics} panic events: {all}");
    assert!((1..=5).contains(&errors), "{errors} error events: {all}");
    assert!((1..=5).contains(&dead), "{dead} dead-letter events: {all}");
}
