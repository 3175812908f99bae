//! The HTTP API against a running `ops-worker run`: auth matrix, validation, the guide's curl
//! commands, cluster-wide control across two instances, and the OpenAPI route table.

mod support;

use std::time::Duration;

use ops_worker::api::auth::{Claims, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

const LONG: Duration = Duration::from_secs(60);

/// A token signed with `secret` that expires `exp_offset` seconds from now (negative: expired).
fn raw_token(secret: &str, role: Role, exp_offset: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: "test".into(),
        role,
        exp: (now + exp_offset).max(0) as u64,
        iat: now.max(0) as u64,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Which id a route's call consumes; filled per attempt.
#[derive(Clone, Copy)]
enum Id {
    None,
    Existing,
    Waiting,
    Failed,
}

/// Every protected route: (method, path, minimum role, the id it needs, JSON body).
const PROTECTED: &[(&str, &str, Role, Id, Option<&str>)] = &[
    (
        "POST",
        "/tasks",
        Role::Agent,
        Id::None,
        Some(r#"{"type": "noop"}"#),
    ),
    ("GET", "/tasks/{id}", Role::Viewer, Id::Existing, None),
    ("GET", "/tasks/{id}/build", Role::Viewer, Id::Existing, None),
    ("POST", "/tasks/{id}/cancel", Role::Agent, Id::Waiting, None),
    ("POST", "/tasks/{id}/retry", Role::Admin, Id::Failed, None),
    ("DELETE", "/tasks/{id}", Role::Admin, Id::Failed, None),
    (
        "POST",
        "/api/tasks/bulk",
        Role::Agent,
        Id::None,
        Some(r#"{"action": "cancel", "ids": ["no-such-task"]}"#),
    ),
    (
        "GET",
        "/api/stats/history?range=1h",
        Role::Viewer,
        Id::None,
        None,
    ),
    ("GET", "/stats", Role::Viewer, Id::None, None),
    ("GET", "/api/worker/status", Role::Viewer, Id::None, None),
    ("GET", "/api/queue/stats", Role::Viewer, Id::None, None),
    (
        "GET",
        "/api/tasks/recent?limit=10",
        Role::Viewer,
        Id::None,
        None,
    ),
    ("GET", "/api/tasks/failed", Role::Viewer, Id::None, None),
    (
        "POST",
        "/api/queue/pause",
        Role::Admin,
        Id::None,
        Some(r#"{"priorities": ["P3"]}"#),
    ),
    (
        "POST",
        "/api/queue/resume",
        Role::Admin,
        Id::None,
        Some(r#"{"priorities": ["P3"]}"#),
    ),
    ("POST", "/api/worker/stop", Role::Admin, Id::None, None),
    ("POST", "/api/worker/restart", Role::Admin, Id::None, None),
    ("POST", "/api/worker/start", Role::Admin, Id::None, None),
    (
        "GET",
        "/api/projects/web/releases",
        Role::Viewer,
        Id::None,
        None,
    ),
    ("GET", "/api/schedules", Role::Viewer, Id::None, None),
    (
        "POST",
        "/api/schedules",
        Role::Admin,
        Id::None,
        Some(
            r#"{"name": "auth-matrix", "cron": "0 9 * * *", "type": "check", "payload": {"project": "web"}}"#,
        ),
    ),
    // After the POST above: the schedule exists, so the admin's DELETE succeeds.
    (
        "DELETE",
        "/api/schedules/auth-matrix",
        Role::Admin,
        Id::None,
        None,
    ),
];

#[tokio::test]
async fn every_protected_route_checks_token_and_role() {
    let app = spawn_app("api", &[("WORKER_CONCURRENCY", "1")]).await;
    let bad_sig = raw_token("some-other-secret-some-other-secret", Role::Admin, 3600);
    let expired = raw_token(TEST_JWT_SECRET, Role::Admin, -3600);
    let done = app.waiting_task().await; // any existing id works for GET
    for &(method, path, min, id_kind, body) in PROTECTED {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body: Option<Value> = body.map(|b| serde_json::from_str(b).unwrap());
        let route = Route {
            method: &method,
            path,
            body: &body,
        };
        refuses_bad_tokens(&app, &route, &done, [&bad_sig, &expired]).await;
        if min > Role::Viewer {
            refuses_the_role_below(&app, &route, &done, min).await;
        }
        let id = match id_kind {
            Id::None | Id::Existing => done.clone(),
            Id::Waiting => app.waiting_task().await,
            Id::Failed => app.failed_task().await,
        };
        let (s, v) = app
            .call(
                method.clone(),
                &route.at(&id),
                Some(&token(min)),
                body.clone(),
            )
            .await;
        assert!(s.is_success(), "{method} {path} as {min:?}: {s} {v}");
    }
}

/// One protected route's call.
struct Route<'a> {
    method: &'a Method,
    path: &'a str,
    body: &'a Option<Value>,
}

impl Route<'_> {
    /// The path with `{id}` filled.
    fn at(&self, id: &str) -> String {
        self.path.replace("{id}", id)
    }
}

/// No token, a token of another secret, an expired one: 401 `unauthorized` each.
async fn refuses_bad_tokens(app: &TestApp, r: &Route<'_>, id: &str, bad: [&str; 2]) {
    let cases: [(Option<&str>, StatusCode); 3] = [
        (None, StatusCode::UNAUTHORIZED),
        (Some(bad[0]), StatusCode::UNAUTHORIZED),
        (Some(bad[1]), StatusCode::UNAUTHORIZED),
    ];
    let (method, path) = (r.method, r.path);
    for (tok, want) in cases {
        let (s, v) = app
            .call(method.clone(), &r.at(id), tok, r.body.clone())
            .await;
        assert_eq!(s, want, "{method} {path} with {tok:?}: {v}");
        assert_eq!(v["error"]["code"], "unauthorized", "{v}");
    }
}

/// The role just below `min`: 403.
async fn refuses_the_role_below(app: &TestApp, r: &Route<'_>, id: &str, min: Role) {
    let lower = if min == Role::Admin {
        Role::Agent
    } else {
        Role::Viewer
    };
    let (method, path) = (r.method, r.path);
    let (s, v) = app
        .call(
            method.clone(),
            &r.at(id),
            Some(&token(lower)),
            r.body.clone(),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "{method} {path} as {lower:?}: {v}"
    );
}

#[tokio::test]
async fn validation_errors_name_the_field_and_limits_apply() {
    let app = spawn_app("api", &[("API_BODY_LIMIT_BYTES", "2048")]).await;
    submissions_are_refused_naming_the_field(&app).await;
    a_good_submission_and_its_idempotency_key(&app).await;
    listing_parameters_and_unknown_routes(&app).await;
    control_bodies_are_checked(&app).await;
    cancel_and_retry_conflicts(&app).await;
}

/// Bad fields, a body that is not JSON, a body over the limit.
async fn submissions_are_refused_naming_the_field(app: &TestApp) {
    let cases = [
        (json!({}), "type"),
        (json!({"type": "teleport"}), "type"),
        (json!({"type": "noop", "priority": "P7"}), "priority"),
        (json!({"type": "noop", "priority": 1}), "priority"),
        (json!({"type": "deploy", "payload": {}}), "payload.project"),
        (
            json!({"type": "noop", "payload": {"sleep_ms": "soon"}}),
            "payload.sleep_ms",
        ),
        (json!({"type": "noop", "max_retries": -1}), "max_retries"),
        (json!({"type": "noop", "run_at": "tomorrow"}), "run_at"),
        (json!({"type": "noop", "colour": "red"}), "colour"),
    ];
    for (body, field) in cases {
        let (s, v) = app.submit(body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(field),
            "{v}"
        );
    }
    // Not JSON at all.
    let resp = app
        .http
        .post(app.url("/tasks"))
        .bearer_auth(token(Role::Agent))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Over the body limit.
    let big = json!({"type": "noop", "metadata": {"blob": "x".repeat(4096)}});
    let (s, v) = app.submit(big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "payload_too_large");
}

async fn a_good_submission_and_its_idempotency_key(app: &TestApp) {
    // Happy path: 201 with the record; GET returns it; the guide's alias is accepted.
    let (s, v) = app
        .submit(json!({"type": "deployment", "payload": {"service": "test"}, "priority": "P2"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["type"].as_str(), v["status"].as_str()),
        (Some("deploy"), Some("pending"))
    );
    let id = v["task_id"].as_str().unwrap();
    let (s, got) = app.view(&format!("/tasks/{id}")).await;
    assert_eq!((s, got["task_id"].as_str()), (StatusCode::OK, Some(id)));

    // Idempotency over HTTP: same key, same task, 200 instead of 201.
    let body = json!({"type": "noop", "idempotency_key": "k-1", "run_at": week_ahead()});
    let (s1, a) = app.submit(body.clone()).await;
    let (s2, b) = app.submit(body).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a["task_id"], b["task_id"]);
}

async fn listing_parameters_and_unknown_routes(app: &TestApp) {
    // limit is capped, bad limits are named; unknown tasks and routes are JSON 404s.
    let viewer = token(Role::Viewer);
    let (s, v) = app
        .call(
            Method::GET,
            "/api/tasks/recent?limit=5000",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!((s, v["limit"].as_u64()), (StatusCode::OK, Some(100)));
    let (s, v) = app
        .call(
            Method::GET,
            "/api/tasks/recent?limit=abc",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );
    let (s, v) = app
        .call(
            Method::GET,
            "/api/tasks/recent?status=done",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("status"))
    );
    let (s, v) = app
        .call(
            Method::GET,
            "/api/tasks/recent?type=deploy&limit=10",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["type"] == "deploy")
    );
    assert_eq!(v["count"], 1);
    let (s, v) = app
        .call(Method::GET, "/tasks/no-such-task", Some(&viewer), None)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, v) = app.call(Method::GET, "/nope", None, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

async fn control_bodies_are_checked(app: &TestApp) {
    // Control and pause validation.
    let admin = token(Role::Admin);
    let (s, v) = app
        .call(
            Method::POST,
            "/api/queue/pause",
            Some(&admin),
            Some(json!({"priorities": ["P9"]})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("priorities[0]"))
    );
    let (s, v) = app
        .call(
            Method::POST,
            "/api/queue/pause",
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("priorities"))
    );
    let (s, v) = app
        .call(
            Method::POST,
            "/api/worker/start",
            Some(&admin),
            Some(json!({"config": {"concurrency": 0}})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("config.concurrency"))
    );
    let (s, v) = app
        .call(
            Method::POST,
            "/api/worker/stop",
            Some(&admin),
            Some(json!({"instance": "ghost"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

async fn cancel_and_retry_conflicts(app: &TestApp) {
    let admin = token(Role::Admin);
    // Cancel and retry conflicts.
    let (s, _) = app
        .call(
            Method::POST,
            "/tasks/no-such-task/cancel",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let waiting = app.waiting_task().await;
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/tasks/{waiting}/retry"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

/// The guide's commands ("階段 4" and appendix A) as written, against this server: only the host
/// is replaced, `$JWT_TOKEN` is a minted token, and appendix A's `{"config": {...}}` placeholder
/// is filled with a real setting. Appendix A sends no token: local commands rely on
/// `AUTH_TRUST_LOOPBACK=true` (requests from the same machine act as admin).
#[tokio::test]
async fn the_guides_curl_commands_work_as_written() {
    let app = spawn_app("api", &[("AUTH_TRUST_LOOPBACK", "true")]).await;
    let base = app.base_url();
    let commands = [
        "curl https://morningai-orchestrator-api.onrender.com/health",
        "curl https://morningai-orchestrator-api.onrender.com/api/worker/status",
        r#"curl -X POST https://morningai-orchestrator-api.onrender.com/tasks \
  -H "Authorization: Bearer $JWT_TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "type": "deployment",
    "payload": {"service": "test"},
    "priority": "P2"
  }'"#,
        "curl https://morningai-orchestrator-api.onrender.com/stats",
        "curl http://localhost:8080/api/worker/status",
        r#"curl -X POST http://localhost:8080/api/worker/start \
  -H "Content-Type: application/json" \
  -d '{"config": {"concurrency": 2}}'"#,
        "curl -X POST http://localhost:8080/api/worker/stop",
        "curl -X POST http://localhost:8080/api/worker/restart",
        "curl http://localhost:8080/api/queue/stats",
        "curl http://localhost:8080/api/tasks/recent?limit=10",
    ];
    for cmd in commands {
        let cmd = cmd
            .replace("https://morningai-orchestrator-api.onrender.com", &base)
            .replace("http://localhost:8080", &base)
            .replacen("curl", "curl -sS -o /dev/stderr -w '%{http_code}'", 1);
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&cmd)
            .env("JWT_TOKEN", token(Role::Agent))
            .output()
            .unwrap();
        let code = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success() && code.starts_with('2'),
            "{cmd} -> {code} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Without the loopback trust, the same tokenless command is refused.
    let other = app.another_worker().spawn().await;
    let code = http_status(&other.url("/api/worker/status")).await;
    assert_eq!(code, Some(401));
}

#[tokio::test]
async fn pool_commands_reach_every_instance_or_just_one() {
    let app = spawn_app("api", &[("WORKER_CONCURRENCY", "2")]).await;
    let second = app
        .another_worker()
        .env("WORKER_CONCURRENCY", "2")
        .spawn()
        .await;
    let admin = token(Role::Admin);
    let all_status = |want: &'static str| {
        let app = &app;
        async move {
            eventually(LONG, &format!("both instances {want}"), || async {
                let s = app.instance_statuses().await;
                (s.len() == 2 && s.iter().all(|(_, st)| st == want)).then_some(())
            })
            .await
        }
    };
    all_status("running").await;

    // Stop through the first instance's API: both stop; new tasks stay pending.
    let (s, v) = app
        .call(Method::POST, "/api/worker/stop", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["scope"], "cluster");
    all_status("stopped").await;
    let q = app.store().await;
    let tasks: Vec<_> = (0..6).map(|_| noop(json!({}))).collect();
    q.enqueue(&tasks).await.unwrap();
    two_heartbeats_of_every_instance(&q).await;
    let pending_probe = eventually(LONG, "stats", || async { q.stats().await.ok() }).await;
    assert_eq!(
        pending_probe.pending_total(),
        6,
        "nothing runs while stopped"
    );
    assert_eq!(pending_probe.completed_total, 0);

    // Start: both run again and the tasks complete.
    let (s, _) = app
        .call(Method::POST, "/api/worker/start", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    all_status("running").await;
    wait_completed(&q, 6, LONG).await;

    one_instance_then_a_cluster_restart(&app, &second).await;
}

/// Let time pass in a way the test can observe: two more heartbeats from each instance (each is
/// written after the pool re-reads its commands).
async fn two_heartbeats_of_every_instance(q: &ops_worker::queue::QueueStore) {
    for _ in 0..2 {
        let before: Vec<String> = q
            .instances()
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.last_heartbeat)
            .collect();
        eventually(LONG, "a new heartbeat from every instance", || async {
            let now: Vec<String> = q
                .instances()
                .await
                .ok()?
                .into_iter()
                .map(|h| h.last_heartbeat)
                .collect();
            (now.len() == 2 && now.iter().all(|h| !before.contains(h))).then_some(())
        })
        .await;
    }
}

/// Stop just the second instance, then restart the cluster with 3 consumers each.
async fn one_instance_then_a_cluster_restart(app: &TestApp, second: &Worker) {
    let admin = token(Role::Admin);
    // One instance only.
    let (s, v) = app
        .call(
            Method::POST,
            "/api/worker/stop",
            Some(&admin),
            Some(json!({"instance": second.instance})),
        )
        .await;
    assert_eq!(
        (s, v["scope"].as_str()),
        (StatusCode::ACCEPTED, Some("instance"))
    );
    eventually(LONG, "only the second instance stopped", || async {
        let s = app.instance_statuses().await;
        let of = |id: &str| s.iter().find(|(i, _)| i == id).map(|(_, st)| st.clone());
        (of(&second.instance).as_deref() == Some("stopped")
            && of(&app.worker.instance).as_deref() == Some("running"))
        .then_some(())
    })
    .await;

    // Restart with a new size applies to every instance and is visible in the heartbeat.
    let (s, _) = app
        .call(
            Method::POST,
            "/api/worker/restart",
            Some(&admin),
            Some(json!({"config": {"concurrency": 3}})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    eventually(LONG, "both running with 3 consumers", || async {
        let (_, v) = app
            .call(Method::GET, "/api/worker/status", Some(&admin), None)
            .await;
        let list = v["instances"].as_array()?.clone();
        (list.len() == 2
            && list
                .iter()
                .all(|i| i["status"] == "running" && i["consumers"] == 3))
        .then_some(())
    })
    .await;
}

/// Every page of `path` (which carries its own query), following `next_cursor` to the end.
async fn pages(app: &TestApp, path: &str) -> Vec<Value> {
    let viewer = token(Role::Viewer);
    let mut out: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_string(),
        };
        let (s, v) = app.call(Method::GET, &url, Some(&viewer), None).await;
        assert_eq!(s, StatusCode::OK, "{url}: {v}");
        assert!(v.as_object().unwrap().contains_key("next_cursor"), "{v}");
        assert_eq!(v["count"], v["tasks"].as_array().unwrap().len());
        cursor = v["next_cursor"].as_str().map(str::to_string);
        out.push(v);
        assert!(out.len() < 500, "{path}: the pages do not end");
        if cursor.is_none() {
            return out;
        }
    }
}

fn page_ids(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p["tasks"].as_array().unwrap().iter())
        .map(|t| t["task_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn listings_filter_and_page_in_redis_and_name_bad_parameters() {
    let app = spawn_app("listing", &[("WORKER_CONCURRENCY", "1")]).await;
    bad_listing_parameters_are_named(&app).await;
    filters_page_across_cursors(&app).await;
    undecodable_entries_are_listed_lossily(&app).await;
}

async fn bad_listing_parameters_are_named(app: &TestApp) {
    let viewer = token(Role::Viewer);
    for route in ["/api/tasks/recent", "/api/tasks/failed"] {
        let long = "a".repeat(129);
        for (query, field) in [
            ("priority=P9", "priority"),
            ("priority=high", "priority"),
            ("id_prefix=a%20b", "id_prefix"),
            ("id_prefix=x%2Fy", "id_prefix"),
            (&format!("id_prefix={long}") as &str, "id_prefix"),
            ("cursor=garbage", "cursor"),
            ("cursor=1_zz", "cursor"),
            ("cursor=NaN_6162", "cursor"),
            ("status=done", "status"),
            ("type=teleport", "type"),
            ("limit=0", "limit"),
        ] {
            let (s, v) = app
                .call(
                    Method::GET,
                    &format!("{route}?{query}"),
                    Some(&viewer),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{route}?{query}: {v}");
            assert_eq!(v["error"]["field"], field, "{route}?{query}: {v}");
        }
    }
}

async fn filters_page_across_cursors(app: &TestApp) {
    // Waiting tasks (a week ahead, so they stay put): five P1 noops, three P3 deploys.
    let mut p1 = Vec::new();
    let mut deploys = Vec::new();
    for i in 0..8 {
        let body = if i < 5 {
            json!({"type": "noop", "priority": "P1", "run_at": week_ahead()})
        } else {
            json!({"type": "deploy", "priority": "P3", "payload": {"project": "web"},
                   "run_at": week_ahead()})
        };
        let (s, v) = app.submit(body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let id = v["task_id"].as_str().unwrap().to_string();
        if i < 5 { p1.push(id) } else { deploys.push(id) }
    }
    let walked = pages(app, "/api/tasks/recent?priority=p1&limit=2").await;
    assert!(
        walked
            .iter()
            .all(|p| p["limit"] == 2 && p["count"].as_u64() <= Some(2))
    );
    let mut got = page_ids(&walked);
    got.sort();
    p1.sort();
    assert_eq!(got, p1, "every P1 task once, across pages");
    let walked = pages(
        app,
        "/api/tasks/recent?type=deployment&priority=P3&status=pending",
    )
    .await;
    let mut got = page_ids(&walked);
    got.sort();
    deploys.sort();
    assert_eq!(got, deploys);
    let prefix = &p1[0][..8];
    let walked = pages(app, &format!("/api/tasks/recent?id_prefix={prefix}")).await;
    assert_eq!(page_ids(&walked), [p1[0].clone()]);
    let walked = pages(app, "/api/tasks/recent?status=completed").await;
    assert_eq!(page_ids(&walked), Vec::<String>::new());
}

async fn undecodable_entries_are_listed_lossily(app: &TestApp) {
    // An index id and a record that are not UTF-8: listed lossily, 200, and paged past.
    let mut conn = app.redis.conn();
    let base = "ops:{listing}";
    let bad_id: &[u8] = b"bad-\xff";
    let mut key = format!("{base}:task:").into_bytes();
    key.extend_from_slice(bad_id);
    let _: i64 = redis::cmd("HSET")
        .arg(&key[..])
        .arg(&[
            &b"task_id"[..],
            bad_id,
            b"type",
            b"noop",
            b"status",
            b"failed",
        ])
        .arg(&[&b"priority"[..], b"P2", b"error", b"broken \xfe bytes"])
        .query(&mut conn)
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for index in ["recent", "failed"] {
        let _: i64 = redis::cmd("ZADD")
            .arg(format!("{base}:{index}"))
            .arg(now)
            .arg(bad_id)
            .query(&mut conn)
            .unwrap();
    }
    for path in [
        "/api/tasks/recent?limit=1",
        "/api/tasks/failed?limit=1&type=noop",
    ] {
        let walked = pages(app, path).await;
        let lossy = walked
            .iter()
            .flat_map(|p| p["tasks"].as_array().unwrap().iter())
            .filter_map(|t| t["error"].as_str())
            .find(|e| e.contains("broken \u{fffd} bytes"));
        assert!(
            lossy.is_some_and(|e| e.contains("bad-\u{fffd}")),
            "{path}: {walked:?}"
        );
    }
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes_the_server_serves() {
    let app = spawn_app("api", &[]).await;
    let (s, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.to_string(), path.to_string()));
        }
    }
    let mut served: Vec<(String, String)> = ops_worker::api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
    // And every served route really answers (not the JSON 404 fallback).
    for (m, p) in &served {
        let path = p.replace("{id}", "x");
        let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
        let (s, v) = app.call(method, &path, None, None).await;
        assert_ne!(
            v["error"]["message"]
                .as_str()
                .map(|m| m.starts_with("no route")),
            Some(true),
            "{m} {p}: {s}"
        );
    }
}
