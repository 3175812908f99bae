//! Hostile callers against a real `ops-worker run`: pages of other origins under the loopback
//! trust, Authorization headers that are not tokens, tokens that live too long or come from the
//! future, connections that send nothing or send slowly, malformed HTTP, the security headers,
//! and a bounded run of the schemathesis OpenAPI fuzzer with each role.
//!
//! Raw requests go over a plain TCP socket, so the test controls every byte (Host, Origin,
//! non-ASCII headers, garbage) and sees exactly when the server closes the connection.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ops_worker::api::auth::Role;
use ops_worker::queue::Control;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server must close a silent or slow connection within this long.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);
/// The headers every response must carry, with their values.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];
/// What every 401 body says about getting a token.
const HINT: &str = "mint one with `ops-worker token --role viewer|agent|admin`";

/// A server's answer read off a raw connection.
struct Raw {
    /// Everything read until the server closed the connection (lossy UTF-8).
    text: String,
    /// How long after sending the server closed the connection (`None`: still open at the
    /// deadline).
    closed_after: Option<Duration>,
}

impl Raw {
    /// The status code of the first response (0 when there is none).
    fn status(&self) -> u16 {
        self.text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// The JSON body of the first response (`Null` when it has none).
    fn json(&self) -> Value {
        self.text
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
            .unwrap_or(Value::Null)
    }
}

/// Send `bytes` on a fresh connection to `port`, then read until the server closes it or
/// `within` passes.
async fn raw(port: u16, bytes: &[u8], within: Duration) -> Raw {
    let mut conn = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the worker");
    conn.write_all(bytes).await.expect("send");
    read_until_closed(&mut conn, Instant::now(), within).await
}

/// Read from `conn` until it is closed (read answers 0 or an error) or `within` after `since`.
async fn read_until_closed(conn: &mut TcpStream, since: Instant, within: Duration) -> Raw {
    let deadline = tokio::time::Instant::from_std(since + within);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Raw {
                    text: String::from_utf8_lossy(&buf).into_owned(),
                    closed_after: Some(since.elapsed()),
                };
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => {
                return Raw {
                    text: String::from_utf8_lossy(&buf).into_owned(),
                    closed_after: None,
                };
            }
        }
    }
}

/// A `method path` request with `headers` (each ending in CRLF) and `body`, asking the server to
/// close the connection after answering.
fn request(method: &str, path: &str, headers: &str, body: &str) -> Vec<u8> {
    let length = if body.is_empty() {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    format!("{method} {path} HTTP/1.1\r\n{headers}{length}Connection: close\r\n\r\n{body}")
        .into_bytes()
}

/// A token with exactly these claims, signed with the test workers' secret.
fn signed(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .expect("sign")
}

fn now() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

/// A request a page of another site could make the operator's browser send to a local worker.
struct CrossSite {
    /// What the test case is, for messages.
    what: &'static str,
    /// Always a POST: the state-changing requests.
    path: &'static str,
    /// Host, Origin, Sec-Fetch-Site, Content-Type, each ending in CRLF.
    headers: String,
    /// Send a noop task as the body.
    body: bool,
    /// The answers that refuse it.
    allowed: &'static [u16],
}

/// The cross-site and DNS-rebinding requests of the loopback test.
fn cross_site_requests(port: u16) -> Vec<CrossSite> {
    let local = format!("Host: 127.0.0.1:{port}\r\n");
    let evil = "Origin: https://evil.example\r\n";
    let plain = "Content-Type: text/plain\r\n";
    let json = "Content-Type: application/json\r\n";
    let rebound = "127.0.0.1.evil.example";
    let case = |what, path, headers: String, body, allowed| CrossSite {
        what,
        path,
        headers,
        body,
        allowed,
    };
    vec![
        case(
            "a cross-origin text/plain post",
            "/tasks",
            format!("{local}{evil}{plain}"),
            true,
            &[403, 415],
        ),
        case(
            "a cross-origin JSON post",
            "/tasks",
            format!("{local}{evil}{json}"),
            true,
            &[403],
        ),
        case(
            "a cross-origin stop",
            "/api/worker/stop",
            format!("{local}{evil}"),
            false,
            &[403],
        ),
        case(
            "Origin: null",
            "/api/worker/stop",
            format!("{local}Origin: null\r\n"),
            false,
            &[403],
        ),
        case(
            "Sec-Fetch-Site: cross-site",
            "/api/worker/stop",
            format!("{local}Sec-Fetch-Site: cross-site\r\n"),
            false,
            &[403],
        ),
        case(
            "Sec-Fetch-Site: same-site",
            "/api/worker/restart",
            format!("{local}Sec-Fetch-Site: same-site\r\n"),
            false,
            &[403],
        ),
        case(
            "a rebound host",
            "/api/worker/stop",
            format!("Host: {rebound}:{port}\r\n"),
            false,
            &[403],
        ),
        case(
            "a rebound host with its own Origin",
            "/tasks",
            format!("Host: {rebound}:{port}\r\nOrigin: http://{rebound}:{port}\r\n{json}"),
            true,
            &[403],
        ),
        case(
            "a local text/plain post",
            "/tasks",
            format!("{local}{plain}"),
            true,
            &[415],
        ),
    ]
}

#[tokio::test]
async fn loopback_trust_refuses_pages_of_other_origins_and_rebound_hosts() {
    let app = spawn_app("security", &[("AUTH_TRUST_LOOPBACK", "true")]).await;
    let port = app.port();
    let local = format!("Host: 127.0.0.1:{port}\r\n");
    // A local tool with no token is still admin.
    let status = request("GET", "/api/worker/status", &local, "");
    let ok = raw(port, &status, CLOSE_WITHIN).await;
    assert_eq!(ok.status(), 200, "{}", ok.text);
    for attack in cross_site_requests(port) {
        let body = if attack.body {
            r#"{"type":"noop"}"#
        } else {
            ""
        };
        let bytes = request("POST", attack.path, &attack.headers, body);
        let (what, allowed) = (attack.what, attack.allowed);
        let r = raw(port, &bytes, CLOSE_WITHIN).await;
        assert!(allowed.contains(&r.status()), "{what}: {}", r.text);
        let body = r.json();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{what}: no plain-word message in {}",
            r.text
        );
        if r.status() == 403 {
            assert!(
                message.starts_with("refused: a request without a token"),
                "{what}: {message}"
            );
        } else {
            assert!(
                message.contains("Content-Type: application/json"),
                "{what}: {message}"
            );
        }
    }
    let store = app.store().await;
    assert!(
        store.recent(100).await.unwrap().is_empty(),
        "an attack enqueued a task"
    );
    assert_eq!(
        store.control().await.unwrap(),
        Control::default(),
        "an attack changed the pool"
    );
    // The pool (just started) reaches running: nothing stopped it.
    eventually(Duration::from_secs(30), "the pool to run", || async {
        let r = raw(port, &status, CLOSE_WITHIN).await;
        (r.json()["status"] == "running").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_present_authorization_header_that_is_not_a_token_is_401_even_under_loopback_trust() {
    let app = spawn_app("security", &[("AUTH_TRUST_LOOPBACK", "true")]).await;
    let port = app.port();
    let values: [&[u8]; 5] = [
        "Bearer \u{e9}t\u{e9}".as_bytes(),
        b"Bearer \xff\xfe\xfd",
        b"\xc3\xa9",
        b"Basic YWRtaW46YWRtaW4=",
        b"Bearer",
    ];
    for value in values {
        let mut bytes =
            format!("POST /api/worker/stop HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: ")
                .into_bytes();
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        let r = raw(port, &bytes, CLOSE_WITHIN).await;
        assert_eq!(
            r.status(),
            401,
            "{:?}: {}",
            String::from_utf8_lossy(value),
            r.text
        );
        let message = r.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(message.ends_with(HINT), "{message}");
    }
    assert_eq!(
        app.store().await.control().await.unwrap(),
        Control::default()
    );
}

#[tokio::test]
async fn tokens_that_live_too_long_or_come_from_the_future_are_401_in_plain_words() {
    let app = spawn_app("security", &[]).await;
    let t = now();
    let claims = |role: &str, iat: Option<u64>, exp: u64, nbf: Option<u64>| {
        let mut c = json!({"sub": "attacker", "role": role, "exp": exp});
        if let Some(iat) = iat {
            c["iat"] = json!(iat);
        }
        if let Some(nbf) = nbf {
            c["nbf"] = json!(nbf);
        }
        signed(c)
    };
    let cases = [
        (
            "exp = u64::MAX",
            claims("admin", Some(t), u64::MAX, None),
            "JWT_MAX_TTL is 30d",
        ),
        (
            "a year long",
            claims("admin", Some(t), t + 365 * 86_400, None),
            "JWT_MAX_TTL is 30d",
        ),
        ("no iat", claims("admin", None, t + 60, None), "no iat"),
        (
            "iat tomorrow",
            claims("admin", Some(t + 86_400), t + 2 * 86_400, None),
            "not valid yet",
        ),
        (
            "nbf in an hour",
            claims("admin", Some(t), t + 7_200, Some(t + 3_600)),
            "not valid yet",
        ),
        (
            "role root",
            claims("root", Some(t), t + 60, None),
            "role is not viewer, agent or admin",
        ),
        ("garbage", "a.b.c".to_string(), "invalid token"),
    ];
    for (what, token, says) in cases {
        let (s, v) = app
            .call(Method::POST, "/api/worker/stop", Some(&token), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{what}: {message}");
        assert!(message.ends_with(HINT), "{what}: {message}");
        for internal in [
            "unknown variant",
            "expected one of",
            "Error(",
            "invalid type",
        ] {
            assert!(!message.contains(internal), "{what}: {message}");
        }
    }
    // The same claims within the limits are accepted, so the refusals above are about the times.
    let fine = claims("admin", Some(t), t + 3_600, Some(t));
    let (s, v) = app
        .call(Method::GET, "/api/worker/status", Some(&fine), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn jwt_max_ttl_bounds_accepted_tokens_and_the_token_command() {
    let app = spawn_app("security", &[("JWT_MAX_TTL", "1h")]).await;
    let t = now();
    let two_hours = signed(json!({"sub": "ops", "role": "viewer", "iat": t, "exp": t + 7_200}));
    let (s, v) = app
        .call(Method::GET, "/stats", Some(&two_hours), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JWT_MAX_TTL is 1h"),
        "{v}"
    );

    let (redis, queue) = (app.redis.url(), app.queue.clone());
    let refused = cli(
        &redis,
        &queue,
        &[("JWT_MAX_TTL", "1h")],
        &["token", "--role", "viewer", "--ttl", "2h"],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("2h is longer than JWT_MAX_TTL (1h)"),
        "{stderr}"
    );
    assert!(refused.stdout.is_empty());

    let minted = cli(
        &redis,
        &queue,
        &[("JWT_MAX_TTL", "1h")],
        &["token", "--role", "viewer", "--ttl", "1h"],
    );
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let token = String::from_utf8(minted.stdout).unwrap();
    let (s, v) = app
        .call(Method::GET, "/stats", Some(token.trim()), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    for args in [&["token", "--role", "viewer"][..], &["run"][..]] {
        let bad = cli(&redis, &queue, &[("JWT_MAX_TTL", "forever")], args);
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("JWT_MAX_TTL: `forever`"),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn silent_and_idle_connections_are_closed_within_10_s() {
    let app = spawn_app("security", &[]).await;
    // Connections that never send a byte (several at once, as an attacker would).
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(TcpStream::connect(("127.0.0.1", app.port())).await.unwrap());
    }
    let opened = Instant::now();
    for mut conn in silent {
        let r = read_until_closed(&mut conn, opened, CLOSE_WITHIN).await;
        assert!(
            r.closed_after.is_some(),
            "a silent connection is still open after {CLOSE_WITHIN:?}"
        );
    }
    // A keep-alive connection left idle after one request.
    let mut conn = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    conn.write_all(
        format!(
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
            app.port()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let r = read_until_closed(&mut conn, Instant::now(), CLOSE_WITHIN).await;
    assert!(r.text.starts_with("HTTP/1.1 200"), "{}", r.text);
    assert!(
        r.closed_after.is_some(),
        "an idle keep-alive connection is still open after {CLOSE_WITHIN:?}"
    );
}

#[tokio::test]
async fn a_slow_body_is_cut_with_408() {
    let app = spawn_app("security", &[]).await;
    let mut conn = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    let head = format!(
        "POST /tasks HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
        app.port(),
        token(Role::Agent)
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // Dribble one byte a second (the attack), until the server answers or closes.
    let answer = loop {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(1), conn.read(&mut chunk)).await {
            Ok(Ok(n)) => break String::from_utf8_lossy(&chunk[..n]).into_owned(),
            Ok(Err(e)) => panic!("connection failed before an answer: {e}"),
            Err(_) => {
                assert!(
                    started.elapsed() < CLOSE_WITHIN + Duration::from_secs(5),
                    "slow body still held"
                );
                let _ = conn.write_all(b" ").await;
            }
        }
    };
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 10 s"), "{answer}");
    let rest = read_until_closed(&mut conn, Instant::now(), Duration::from_secs(5)).await;
    assert!(
        rest.closed_after.is_some(),
        "the connection stays open after the 408"
    );
    assert!(app.store().await.recent(10).await.unwrap().is_empty());
}

fn assert_security_headers(what: &str, headers: &HeaderMap) {
    for (name, want) in SECURITY_HEADERS {
        assert_eq!(
            headers.get(name),
            Some(&HeaderValue::from_static(want)),
            "{what}: {name} in {headers:?}"
        );
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app("security", &[]).await;
    let viewer = token(Role::Viewer);
    let http = &app.http;
    let cases = [
        ("the page", http.get(app.url("/")), 200),
        ("the script", http.get(app.url("/dashboard/app.js")), 200),
        (
            "an API read",
            http.get(app.url("/api/worker/status")).bearer_auth(&viewer),
            200,
        ),
        ("a 401", http.get(app.url("/api/worker/status")), 401),
        (
            "the OpenAPI document",
            http.get(app.url("/openapi.json")),
            200,
        ),
        ("a 404", http.get(app.url("/no/such/route")), 404),
        (
            "a 415",
            http.post(app.url("/tasks"))
                .bearer_auth(&viewer)
                .header("content-type", "text/plain")
                .body("{}"),
            415,
        ),
    ];
    for (what, req, want) in cases {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), want, "{what}");
        assert_security_headers(what, resp.headers());
    }
    let page = app
        .http
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("<script>") && !page.contains("<style") && !page.contains(" style="),
        "inline script or style in the page"
    );
}

#[tokio::test]
async fn malformed_http_is_answered_and_never_logged_as_an_error() {
    let app = spawn_app("security", &[]).await;
    let garbage: [&[u8]; 6] = [
        b"GARBAGE \xff\xfe\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
        b"POST /tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n",
    ];
    for bytes in garbage {
        let r = raw(app.port(), bytes, CLOSE_WITHIN).await;
        assert!(
            r.closed_after.is_some(),
            "{:?}: connection left open",
            String::from_utf8_lossy(bytes)
        );
        assert!(
            r.status() == 400 || r.status() == 401,
            "{:?}: {}",
            String::from_utf8_lossy(bytes),
            r.text
        );
    }
    // The server is fine, and wrote no ERROR line (nor anything from the HTTP layer) about them.
    assert_eq!(http_status(&app.url("/health")).await, Some(200));
    let logs = app.logs();
    for line in logs.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        assert!(v.is_object(), "not a JSON log line: {line}");
        assert_ne!(v["level"], "ERROR", "{line}");
        assert!(
            !v["target"]
                .as_str()
                .unwrap_or_default()
                .starts_with("actix_http"),
            "{line}"
        );
    }
}

/// The schemathesis CLI installed by `scripts/install-test-deps.sh` (or `$SCHEMATHESIS`).
fn schemathesis() -> PathBuf {
    let path = std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/schemathesis-venv/bin/schemathesis")
        });
    assert!(
        path.is_file(),
        "the fuzz test needs schemathesis at {}: run scripts/install-test-deps.sh (or point \
         SCHEMATHESIS at the CLI)",
        path.display()
    );
    path
}

/// The fuzz run's settings: `/ready` answers 503 "not ready" by design while the pool is stopped,
/// which the admin run does (`POST /api/worker/stop`); every other 5xx is a failure. The event
/// stream is endless by design, so its cases ask it to end after a second (`timeout=1`).
const SCHEMATHESIS_CONFIG: &str = r#"
[[operations]]
include-path = "/ready"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]

[[operations]]
include-path = "/api/events"
parameters = { "query.timeout" = 1 }
"#;

/// A bounded schemathesis run with `token` (none: anonymous); panics with its output unless it
/// tested every route and found no server error.
fn fuzz(app: &TestApp, token: Option<&str>, what: &str) {
    let dir = scratch_dir("schemathesis");
    let config = dir.join("schemathesis.toml");
    std::fs::write(&config, SCHEMATHESIS_CONFIG).expect("write the schemathesis config");
    let mut cmd = std::process::Command::new(schemathesis());
    cmd.arg("--config-file").arg(&config).arg("--no-color");
    cmd.arg("run").arg(app.url("/openapi.json"));
    // One worker: with two, schemathesis itself once crashed here ("AST constructor recursion
    // depth mismatch" inside hypothesis); one is fast enough for this size.
    cmd.args([
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "15",
        "--workers",
        "1",
    ]);
    cmd.args(["--request-timeout", "15", "--max-failures", "5"]);
    if let Some(t) = token {
        cmd.arg("--header")
            .arg(format!("Authorization: Bearer {t}"));
    }
    cmd.current_dir(&dir).env("SCHEMATHESIS_TELEMETRY", "false");
    let started = Instant::now();
    let out = cmd.output().expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "schemathesis as {what}: {:?}, exit {:?}",
        started.elapsed(),
        out.status.code()
    );
    assert!(
        out.status.success(),
        "schemathesis as {what} found problems:\n{text}"
    );
    // Every route but /openapi.json itself, which schemathesis loads rather than tests.
    let tested = format!("Tested: {}", ops_worker::api::ROUTES.len() - 1);
    assert!(
        text.contains(&tested),
        "schemathesis as {what} did not test every route:\n{text}"
    );
    assert!(!text.contains("Server error"), "{what}:\n{text}");
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_with_any_role() {
    // Diagnostics off, as in production: the fuzzer can't ask noop to panic or sleep.
    let mut app = spawn_app(
        "security",
        &[("WORKER_CONCURRENCY", "1"), ("WORKER_DIAGNOSTICS", "false")],
    )
    .await;
    let roles = [
        ("anonymous", None),
        ("viewer", Some(Role::Viewer)),
        ("agent", Some(Role::Agent)),
        ("admin", Some(Role::Admin)),
    ];
    for (what, role) in roles {
        fuzz(&app, role.map(token).as_deref(), what);
    }
    assert!(app.worker.alive(), "the worker died under fuzzing");
    let logs = app.logs();
    let errors: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(
        errors.is_empty(),
        "errors logged under fuzzing:\n{}",
        errors.join("\n")
    );
}
