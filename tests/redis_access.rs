//! Redis over TLS and as a restricted ACL user, against a real `redis-server --tls-port` with
//! certificates made by the test: the whole pipeline over `rediss://` with a private CA and with
//! mutual TLS, `doctor` explaining each certificate failure in plain words, the loudly logged
//! insecure mode, and a worker whose Redis user may touch only its own queue's keys.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::tls::TlsFiles;
use support::*;

const LONG: Duration = Duration::from_secs(60);

/// Submit `n` noop tasks over the API and wait until the queue (read over the plain port of the
/// same Redis) has completed them all.
async fn run_tasks(worker: &Worker, plain_url: &str, n: u64) {
    for i in 0..n {
        let (status, body) = worker
            .submit(json!({"type": "noop", "priority": "P2", "payload": {"i": i}}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    wait_completed(&store(plain_url, worker.queue()).await, n, LONG).await;
}

/// `doctor --json` rows by name, for a worker environment plus `extra`.
fn doctor_rows(redis_url: &str, extra: &[(&str, &str)]) -> Vec<(String, String, String)> {
    let out = cli(redis_url, "tls", extra, &["doctor", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "doctor printed no JSON: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (field("name"), field("status"), field("detail"))
        })
        .collect()
}

fn row(rows: &[(String, String, String)], name: &str) -> (String, String) {
    rows.iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, s, d)| (s.clone(), d.clone()))
        .unwrap_or_else(|| panic!("no `{name}` row in {rows:?}"))
}

#[tokio::test]
async fn pipeline_runs_over_tls_with_a_private_ca() {
    let certs = TlsFiles::generate();
    let redis = RedisServer::start_tls(&certs.server, &certs.ca, false);
    let ca = certs.ca.display().to_string();
    let worker = Worker::builder(&redis.tls_url(), "tlsqueue")
        .env("REDIS_CA_FILE", &ca)
        .spawn()
        .await;
    run_tasks(&worker, &redis.url(), 20).await;

    let rows = doctor_rows(&redis.tls_url(), &[("REDIS_CA_FILE", &ca)]);
    let (status, detail) = row(&rows, "redis tls");
    assert_eq!(status, "ok", "{detail}");
    assert!(detail.contains("REDIS_CA_FILE"), "{detail}");
    assert_eq!(row(&rows, "redis reachable").0, "ok", "{rows:?}");
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let certs = TlsFiles::generate();
    let redis = RedisServer::start_tls(&certs.server, &certs.ca, true);
    let ca = certs.ca.display().to_string();
    let without = doctor_rows(&redis.tls_url(), &[("REDIS_CA_FILE", &ca)]);
    let (status, detail) = row(&without, "redis reachable");
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains("requires a client certificate"),
        "a plain-words reason: {detail}"
    );

    let cert = certs.client.cert.display().to_string();
    let key = certs.client.key.display().to_string();
    let worker = Worker::builder(&redis.tls_url(), "mtls")
        .env("REDIS_CA_FILE", &ca)
        .env("REDIS_CLIENT_CERT", &cert)
        .env("REDIS_CLIENT_KEY", &key)
        .spawn()
        .await;
    run_tasks(&worker, &redis.url(), 10).await;
    let key_text = std::fs::read_to_string(&certs.client.key).unwrap();
    let key_body = key_text.lines().nth(1).unwrap();
    assert!(
        !worker.logs().contains(key_body),
        "the client key must never be logged"
    );
}

#[tokio::test]
async fn doctor_explains_each_certificate_failure() {
    let certs = TlsFiles::generate();
    let ca = certs.ca.display().to_string();
    let cases = [
        (&certs.expired_server, "expired"),
        (&certs.wrong_name_server, "not valid for the host"),
        (&certs.unknown_ca_server, "REDIS_CA_FILE"),
    ];
    for (pair, meaning) in cases {
        let redis = RedisServer::start_tls(pair, &certs.ca, false);
        let rows = doctor_rows(&redis.tls_url(), &[("REDIS_CA_FILE", &ca)]);
        let (status, detail) = row(&rows, "redis reachable");
        assert_eq!(status, "fail", "{detail}");
        assert!(
            detail.contains(meaning),
            "expected `{meaning}` in: {detail}"
        );
    }
    // Without REDIS_CA_FILE the test CA is unknown too: the system roots don't have it.
    let redis = RedisServer::start_tls(&certs.server, &certs.ca, false);
    let (status, detail) = row(&doctor_rows(&redis.tls_url(), &[]), "redis reachable");
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("does not trust"), "{detail}");
}

#[tokio::test]
async fn insecure_mode_connects_to_anything_and_says_so() {
    let certs = TlsFiles::generate();
    let redis = RedisServer::start_tls(&certs.unknown_ca_server, &certs.ca, false);
    let worker = Worker::builder(&redis.tls_url(), "insecure")
        .env("REDIS_TLS_INSECURE", "true")
        .spawn()
        .await;
    run_tasks(&worker, &redis.url(), 5).await;
    let warned = worker.logs().lines().any(|l| {
        serde_json::from_str::<Value>(l).is_ok_and(|v| {
            v["level"] == "WARN"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("REDIS_TLS_INSECURE"))
        })
    });
    assert!(
        warned,
        "no WARN line about REDIS_TLS_INSECURE:\n{}",
        worker.logs()
    );
    let rows = doctor_rows(&redis.tls_url(), &[("REDIS_TLS_INSECURE", "true")]);
    assert_eq!(row(&rows, "redis tls").0, "warn", "{rows:?}");
}

#[tokio::test]
async fn tls_options_without_rediss_are_refused_naming_the_variable() {
    let certs = TlsFiles::generate();
    let ca = certs.ca.display().to_string();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("REDIS_CA_FILE", ca.as_str())], "REDIS_CA_FILE"),
        (&[("REDIS_CA_FILE", "/nonexistent/ca.pem")], "REDIS_CA_FILE"),
        (
            &[("REDIS_CLIENT_CERT", certs.client.cert.to_str().unwrap())],
            "REDIS_CLIENT_KEY",
        ),
    ];
    for (extra, variable) in cases {
        let out = cli("redis://127.0.0.1:9", "tls", extra, &["run"]);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(variable), "{extra:?}: {stderr}");
    }
}

/// The `ACL SETUSER` line of docs/configuration.md, for queue `queue` and password `password`.
fn documented_acl(queue: &str, password: &str) -> Vec<String> {
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let line = docs
        .lines()
        .find(|l| l.starts_with("ACL SETUSER ops-worker "))
        .expect("docs/configuration.md documents the ACL");
    line.replace("{default}", &format!("{{{queue}}}"))
        .replace("CHANGE-ME", password)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Everything a worker does, as the documented restricted user: tasks that complete, fail into
/// the dead-letter set and are cancelled; pause, resume and restart; every read the dashboard
/// makes. Nothing is refused, and the user still cannot touch another queue's keys.
#[tokio::test]
async fn the_documented_acl_user_runs_the_whole_pipeline() {
    let redis = RedisServer::start();
    let queue = "aclq";
    let acl = documented_acl(queue, "acl-pass-4f2c9e");
    let mut admin = redis.conn();
    let _: () = redis::cmd(&acl[0])
        .arg(&acl[1..])
        .query(&mut admin)
        .unwrap();
    let url = format!(
        "redis://ops-worker:acl-pass-4f2c9e@127.0.0.1:{}",
        redis.port
    );
    let worker = Worker::builder(&url, queue).spawn().await;

    run_tasks(&worker, &redis.url(), 10).await;
    let (s, v) = worker
        .submit(json!({"type": "noop", "payload": {"fail": true}, "max_retries": 0}))
        .await;
    assert_eq!(s, 201, "{v}");
    let failed_id = v["task_id"].as_str().unwrap().to_string();
    every_operation_succeeds(&worker, &failed_id).await;

    let logs = worker.logs();
    assert!(
        !logs.contains("NOPERM") && !logs.contains("no permissions"),
        "a command or key the ACL lacks:\n{logs}"
    );
    let mut restricted = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let other: redis::RedisResult<Option<String>> = redis::cmd("GET")
        .arg("ops:{other}:task:1")
        .query(&mut restricted);
    let err = other.expect_err("another queue's keys are off limits");
    assert!(err.to_string().contains("no permissions"), "{err}");
}

/// Cancel, pause, resume, restart, every read the dashboard makes, then wait for `failed_id`
/// to be dead-lettered and replay it: each answers 2xx.
async fn every_operation_succeeds(worker: &Worker, failed_id: &str) {
    use reqwest::Method;
    let waiting = worker.waiting_task().await;
    let admin_token = token(ops_worker::api::auth::Role::Admin);
    let calls: [(Method, String, Option<Value>); 9] = [
        (Method::POST, format!("/tasks/{waiting}/cancel"), None),
        (
            Method::POST,
            "/api/queue/pause".into(),
            Some(json!({"priorities": ["P3"]})),
        ),
        (
            Method::POST,
            "/api/queue/resume".into(),
            Some(json!({"priorities": ["P3"]})),
        ),
        (Method::POST, "/api/worker/restart".into(), None),
        (Method::GET, "/api/queue/stats".into(), None),
        (Method::GET, "/api/worker/status".into(), None),
        (Method::GET, "/api/tasks/recent".into(), None),
        (Method::GET, "/stats".into(), None),
        (Method::GET, "/ready".into(), None),
    ];
    for (method, path, body) in calls {
        let (s, v) = worker
            .call(method.clone(), &path, Some(&admin_token), body)
            .await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
    }
    eventually(LONG, "the failing task dead-lettered", || async {
        let (_, v) = worker
            .call(Method::GET, "/api/tasks/failed", Some(&admin_token), None)
            .await;
        v["tasks"]
            .as_array()?
            .iter()
            .any(|t| t["task_id"] == failed_id)
            .then_some(())
    })
    .await;
    let (s, v) = worker
        .call(
            Method::POST,
            &format!("/tasks/{failed_id}/retry"),
            Some(&admin_token),
            None,
        )
        .await;
    assert!(s.is_success(), "retry: {s} {v}");
}
