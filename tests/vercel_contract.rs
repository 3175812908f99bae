//! Contract test: the Vercel simulator's responses and the client's request bodies against the
//! OpenAPI subset in `tests/fixtures/vercel/openapi-subset.json`, checked by a real JSON Schema
//! validator (jsonschema, draft 2020-12). OpenAPI 3.0 is converted first: `nullable: true` allows
//! null, `oneOf` becomes `anyOf` (the upstream defects listed in `tests/fixtures/vercel/README.md` make a
//! strict `oneOf` reject valid bodies), and an empty `anyOf` is dropped.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ops_worker::vercel::client::CreateDeployment;
use ops_worker::vercel::sim::{self, SimConfig};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TOKEN: &str = "contract-token";

// ---------------------------------------------------------------- schema helpers

/// The OpenAPI document converted to JSON Schema, loaded once.
fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vercel/openapi-subset.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let mut doc: Value = serde_json::from_str(&text).expect("the OpenAPI subset is JSON");
        to_json_schema(&mut doc);
        doc
    })
}

/// OpenAPI 3.0 → JSON Schema, in place, over the whole document.
fn to_json_schema(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(to_json_schema),
        Value::Object(map) => {
            map.values_mut().for_each(to_json_schema);
            if let Some(one_of) = map.remove("oneOf") {
                match map.remove("anyOf") {
                    // Both present: each must still hold.
                    Some(any_of) => {
                        map.insert(
                            "allOf".into(),
                            json!([{"anyOf": one_of}, {"anyOf": any_of}]),
                        );
                    }
                    None => {
                        map.insert("anyOf".into(), one_of);
                    }
                }
            }
            if map
                .get("anyOf")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                map.remove("anyOf");
            }
            if map.get("nullable") == Some(&Value::Bool(true)) {
                map.remove("nullable");
                let schema = Value::Object(std::mem::take(map));
                map.insert("anyOf".into(), json!([schema, {"type": "null"}]));
            }
        }
        _ => {}
    }
}

/// A JSON pointer (as a URI fragment) to a schema inside the document.
fn pointer(path: &str, method: &str, tail: &str) -> String {
    let escaped = path.replace('~', "~0").replace('/', "~1");
    let escaped = escaped.replace('{', "%7B").replace('}', "%7D");
    format!("#/paths/{escaped}/{method}/{tail}")
}

fn response_pointer(path: &str, method: &str, code: u16) -> String {
    pointer(
        path,
        method,
        &format!("responses/{code}/content/application~1json/schema"),
    )
}

/// Every validation error of `instance` against the schema at `fragment` (empty = valid).
fn errors(fragment: &str, instance: &Value) -> Vec<String> {
    let doc = spec();
    let schema = json!({"$ref": fragment, "paths": doc["paths"], "components": doc["components"]});
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .unwrap_or_else(|e| panic!("compile schema {fragment}: {e}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[track_caller]
fn assert_valid(fragment: &str, instance: &Value) {
    let errs = errors(fragment, instance);
    assert!(
        errs.is_empty(),
        "body does not match {fragment}:\n  {}\nbody: {}",
        errs.join("\n  "),
        serde_json::to_string_pretty(instance).unwrap_or_default()
    );
}

#[track_caller]
fn assert_response_valid(path: &str, method: &str, code: u16, body: &Value) {
    assert_valid(&response_pointer(path, method, code), body);
}

fn create_request_schema() -> String {
    pointer(
        "/v13/deployments",
        "post",
        "requestBody/content/application~1json/schema",
    )
}

// ---------------------------------------------------------------- simulator helpers

/// Start a simulator on its own thread and actix System; returns its base URL.
fn start_sim(config: SimConfig) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = sim::start(config, 0).await.expect("start the simulator");
            tx.send(server.url.clone()).expect("send the URL");
            futures::future::pending::<()>().await;
            server.stop().await;
        });
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("simulator URL")
}

fn config(build_secs: f64) -> SimConfig {
    SimConfig {
        token: TOKEN.into(),
        build_secs,
        ..SimConfig::default()
    }
}

/// The answer of one call: status, headers, raw body and the body as JSON (Null if not JSON).
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    json: Value,
}

async fn call(method: Method, url: &str, token: Option<&str>, body: Option<&Value>) -> Reply {
    let client = reqwest::Client::new();
    let mut req = client.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.expect("HTTP call to the simulator");
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.expect("response body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

async fn get(base: &str, path: &str) -> Reply {
    call(Method::GET, &format!("{base}{path}"), Some(TOKEN), None).await
}

async fn post(base: &str, path: &str, body: &Value) -> Reply {
    call(
        Method::POST,
        &format!("{base}{path}"),
        Some(TOKEN),
        Some(body),
    )
    .await
}

async fn create(base: &str, body: &Value) -> Value {
    let r = post(base, "/v13/deployments", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_response_valid("/v13/deployments", "post", 200, &r.json);
    r.json
}

/// Poll GET /v13/deployments/{id} until `readyState` is `want` (5 s deadline); returns that body.
async fn wait_for(base: &str, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = get(base, &format!("/v13/deployments/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.json["readyState"] == want {
            return r.json;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never reached {want}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A deployment body must match the operation's schema and its full (private) alternative.
#[track_caller]
fn assert_deployment_valid(body: &Value) {
    let path = "/v13/deployments/{idOrUrl}";
    assert_response_valid(path, "get", 200, body);
    let full = format!("{}/anyOf/0", response_pointer(path, "get", 200));
    assert_valid(&full, body);
    assert_eq!(body["status"], body["readyState"]);
}

async fn faults(base: &str, body: Value) -> Value {
    let r = post(base, "/_sim/faults", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json
}

#[track_caller]
fn assert_error_shape(r: &Reply, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text);
    assert!(
        r.json["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{}",
        r.text
    );
    assert!(
        r.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        r.text
    );
}

fn github_source() -> Value {
    json!({"type": "github", "org": "acme", "repo": "web", "ref": "main"})
}

// ---------------------------------------------------------------- tests

#[test]
fn the_validator_is_not_vacuous() {
    let full = json!({"id": "dpl_x", "readyState": "READY"});
    assert!(!errors(&response_pointer("/v13/deployments", "post", 200), &full).is_empty());
    let bad_state = json!({"pagination": {"count": 0, "next": null, "prev": null},
        "deployments": [{"uid": 1}]});
    assert!(!errors(&response_pointer("/v6/deployments", "get", 200), &bad_state).is_empty());
    let one = response_pointer("/v13/deployments/{idOrUrl}", "get", 200);
    assert!(!errors(&one, &json!({"id": 1})).is_empty());
    assert!(!errors(&create_request_schema(), &json!({"name": "x", "bogus": 1})).is_empty());
    assert!(!errors(&create_request_schema(), &json!({"project": "x"})).is_empty());
    // nullable → null allowed; not nullable → null refused.
    let mut user = json!({"user": {"id": "u", "email": "e", "name": null, "username": "n",
        "avatar": null, "defaultTeamId": null, "limited": true}});
    assert!(errors(&response_pointer("/v2/user", "get", 200), &user).is_empty());
    user["user"]["email"] = Value::Null;
    assert!(!errors(&response_pointer("/v2/user", "get", 200), &user).is_empty());
}

#[tokio::test]
async fn user_endpoint_validates() {
    let base = start_sim(config(0.5));
    let r = get(&base, "/v2/user?teamId=team_123").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_response_valid("/v2/user", "get", 200, &r.json);
    assert!(r.json["user"]["id"].as_str().is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn deployment_lifecycle_validates_in_every_state() {
    let base = start_sim(config(0.5));
    let (id, url) = a_created_deployment(&base).await;
    let project_id = states_and_lookups_validate(&base, &id, &url).await;
    promote_and_rollback_answer_empty_bodies(&base, &id, &project_id).await;
    a_preview_is_promoted_only_once_ready(&base).await;
}

/// `POST /v13/deployments`: the id's and URL's shapes, QUEUED, the fields sent echoed. Answers
/// the id and URL.
async fn a_created_deployment(base: &str) -> (String, String) {
    let meta = json!({"ops_task": "t-1", "branch": "main"});
    let body =
        json!({"name": "shop", "target": "production", "gitSource": github_source(), "meta": meta});
    let created = create(base, &body).await;
    let id = created["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("dpl_") && id.len() == 28, "{id}");
    assert!(id[4..].chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
    let url = created["url"].as_str().expect("url").to_string();
    assert!(
        url.starts_with("shop-") && url.ends_with(".vercel.app"),
        "{url}"
    );
    assert_eq!(created["readyState"], "QUEUED");
    assert_eq!(created["target"], "production");
    assert_eq!(created["meta"]["ops_task"], "t-1");
    assert_eq!(created["gitSource"]["repo"], "web");

    (id, url)
}

/// BUILDING and READY validate (and a body missing a required field does not); the deployment by
/// hostname, in the listings, and its project. Answers the project id.
async fn states_and_lookups_validate(base: &str, id: &str, url: &str) -> String {
    let building = wait_for(base, id, "BUILDING").await;
    assert_deployment_valid(&building);
    let ready = wait_for(base, id, "READY").await;
    assert_deployment_valid(&ready);
    assert!(ready["ready"].is_number() && ready["readyStateAt"].is_number());
    // The full alternative really is checked: dropping a required field fails it.
    let mut broken = ready.clone();
    broken.as_object_mut().map(|o| o.remove("inspectorUrl"));
    let full = format!(
        "{}/anyOf/0",
        response_pointer("/v13/deployments/{idOrUrl}", "get", 200)
    );
    assert!(!errors(&full, &broken).is_empty());
    // By hostname too, as Vercel allows.
    let by_url = get(base, &format!("/v13/deployments/{url}")).await;
    assert_eq!(by_url.json["id"], id);

    let list = get(
        base,
        "/v6/deployments?projectId=shop&limit=5&target=production",
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_response_valid("/v6/deployments", "get", 200, &list.json);
    assert_eq!(list.json["deployments"][0]["uid"], id);
    assert_eq!(list.json["deployments"][0]["state"], "READY");
    assert_eq!(list.json["pagination"]["count"], 1);
    let project_id = ready["projectId"].as_str().expect("projectId").to_string();
    let by_id = get(
        base,
        &format!("/v6/deployments?projectId={project_id}&state=READY"),
    )
    .await;
    assert_response_valid("/v6/deployments", "get", 200, &by_id.json);
    assert_eq!(by_id.json["deployments"].as_array().map(Vec::len), Some(1));

    let project = get(base, "/v9/projects/shop").await;
    assert_eq!(project.status, StatusCode::OK, "{}", project.text);
    assert_response_valid("/v9/projects/{idOrName}", "get", 200, &project.json);
    assert_eq!(project.json["id"], project_id.as_str());

    project_id
}

/// Promote and rollback: 201 with an empty body; the deployment then reads PROMOTED.
async fn promote_and_rollback_answer_empty_bodies(base: &str, id: &str, project_id: &str) {
    let promote = post(
        base,
        &format!("/v10/projects/{project_id}/promote/{id}"),
        &json!({}),
    )
    .await;
    assert_eq!(promote.status, StatusCode::CREATED, "{}", promote.text);
    assert!(
        promote.text.is_empty(),
        "promote answers an empty body: {}",
        promote.text
    );
    assert_eq!(
        wait_for(base, id, "READY").await["readySubstate"],
        "PROMOTED"
    );
    let rollback = post(
        base,
        &format!("/v1/projects/shop/rollback/{id}"),
        &json!({}),
    )
    .await;
    assert_eq!(rollback.status, StatusCode::CREATED, "{}", rollback.text);
    assert!(rollback.text.is_empty());
}

/// A preview: promoting it before READY is a 409; once READY it is promoted and still validates.
async fn a_preview_is_promoted_only_once_ready(base: &str) {
    // A deployment that is not READY yet cannot be promoted.
    let fresh = create(base, &json!({"name": "shop"})).await;
    let fresh_id = fresh["id"].as_str().expect("id");
    assert_eq!(
        fresh["target"],
        Value::Null,
        "preview is reported as target null"
    );
    let early = post(
        base,
        &format!("/v10/projects/shop/promote/{fresh_id}"),
        &json!({}),
    )
    .await;
    assert_error_shape(&early, StatusCode::CONFLICT);

    // A promoted preview reports that it serves production, in a body that still validates.
    let promoted = wait_for(base, fresh_id, "READY").await;
    assert_eq!(promoted["readySubstate"], Value::Null, "not promoted yet");
    let path = format!("/v10/projects/shop/promote/{fresh_id}");
    let promote = post(base, &path, &json!({})).await;
    assert_eq!(promote.status, StatusCode::CREATED, "{}", promote.text);
    let after = wait_for(base, fresh_id, "READY").await;
    assert_eq!(after["readySubstate"], "PROMOTED");
    assert_deployment_valid(&after);
}

#[tokio::test]
async fn error_builds_end_in_error_with_a_message() {
    let base = start_sim(config(0.5));
    let created = create(&base, &json!({"name": "error-x"})).await;
    let id = created["id"].as_str().expect("id");
    let failed = wait_for(&base, id, "ERROR").await;
    assert_deployment_valid(&failed);
    assert!(
        failed["errorMessage"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(failed["errorCode"].is_string());
    let list = get(&base, "/v6/deployments?app=error-x").await;
    assert_response_valid("/v6/deployments", "get", 200, &list.json);
    assert_eq!(list.json["deployments"][0]["readyState"], "ERROR");
}

#[tokio::test]
async fn cancel_validates_and_stays_canceled() {
    let base = start_sim(config(0.5));
    let created = create(&base, &json!({"name": "cancel-me"})).await;
    let id = created["id"].as_str().expect("id");
    let url = format!("{base}/v12/deployments/{id}/cancel");
    let r = call(Method::PATCH, &url, Some(TOKEN), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_response_valid("/v12/deployments/{id}/cancel", "patch", 200, &r.json);
    assert_eq!(r.json["readyState"], "CANCELED");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let later = wait_for(&base, id, "CANCELED").await;
    assert_deployment_valid(&later);
    // Canceling again is harmless; a finished deployment cannot be canceled.
    assert_eq!(
        call(Method::PATCH, &url, Some(TOKEN), None).await.status,
        StatusCode::OK
    );
    let done = create(&base, &json!({"name": "cancel-me"})).await;
    let done_id = done["id"].as_str().expect("id");
    wait_for(&base, done_id, "READY").await;
    let late = call(
        Method::PATCH,
        &format!("{base}/v12/deployments/{done_id}/cancel"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_error_shape(&late, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unauthorized_calls_get_401_without_the_token() {
    let base = start_sim(config(0.5));
    for path in [
        "/v2/user",
        "/v6/deployments",
        "/v13/deployments/dpl_whatever",
    ] {
        let url = format!("{base}{path}");
        let missing = call(Method::GET, &url, None, None).await;
        assert_error_shape(&missing, StatusCode::UNAUTHORIZED);
        let wrong = call(Method::GET, &url, Some("wrong-secret-token-42"), None).await;
        assert_error_shape(&wrong, StatusCode::UNAUTHORIZED);
        assert!(
            !wrong.text.contains("wrong-secret-token-42"),
            "{}",
            wrong.text
        );
        assert!(!wrong.text.contains(TOKEN), "{}", wrong.text);
    }
    let url = format!("{base}/v13/deployments");
    let r = call(
        Method::POST,
        &url,
        Some("nope"),
        Some(&json!({"name": "x"})),
    )
    .await;
    assert_error_shape(&r, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_requests_name_the_field_and_unknown_things_are_404() {
    let base = start_sim(config(0.5));
    let r = post(&base, "/v13/deployments", &json!({"target": "production"})).await;
    assert_error_shape(&r, StatusCode::BAD_REQUEST);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`name`")),
        "{}",
        r.text
    );
    let r = post(
        &base,
        "/v13/deployments",
        &json!({"name": "x", "meta": {"n": 1}}),
    )
    .await;
    assert_error_shape(&r, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("meta"), "{}", r.text);

    let r = get(&base, "/v13/deployments/dpl_doesnotexist000000000000").await;
    assert_error_shape(&r, StatusCode::NOT_FOUND);
    let r = post(
        &base,
        "/v13/deployments",
        &json!({"name": "x", "deploymentId": "dpl_nope"}),
    )
    .await;
    assert_error_shape(&r, StatusCode::NOT_FOUND);
    let r = get(&base, "/v9/projects/no-such-project").await;
    assert_error_shape(&r, StatusCode::NOT_FOUND);
    let r = get(&base, "/v99/nothing").await;
    assert_error_shape(&r, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forced_rate_limit_answers_429_like_vercel() {
    let base = start_sim(config(0.5));
    let settings = faults(&base, json!({"rate_limit_next": 1, "retry_after_secs": 1})).await;
    assert_eq!(settings["rate_limit_next"], 1);
    let before = chrono::Utc::now().timestamp();
    let r = get(&base, "/v2/user").await;
    assert_error_shape(&r, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json["error"]["code"], "rate_limited");
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.headers["x-ratelimit-remaining"], "0");
    assert!(r.headers.contains_key("x-ratelimit-limit"));
    let reset = r.json["error"]["limit"]["reset"]
        .as_i64()
        .expect("error.limit.reset");
    assert!(
        (before..=before + 3).contains(&reset),
        "reset {reset} vs now {before}"
    );
    assert_eq!(
        r.json["error"]["limit"]["resetMs"].as_i64(),
        Some(reset * 1000)
    );
    assert_eq!(
        r.headers["x-ratelimit-reset"].to_str().ok(),
        Some(reset.to_string().as_str())
    );
    // Until the reset, Vercel keeps refusing; afterwards calls go through.
    assert_eq!(
        get(&base, "/v2/user").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let wait = (reset * 1000 - chrono::Utc::now().timestamp_millis()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait + 50)).await;
    assert_eq!(get(&base, "/v2/user").await.status, StatusCode::OK);
}

#[tokio::test]
async fn per_minute_limit_refuses_the_fourth_call() {
    let base = start_sim(SimConfig {
        rate_limit_per_min: Some(3),
        ..config(0.5)
    });
    for remaining in ["2", "1", "0"] {
        let r = get(&base, "/v2/user").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.headers["x-ratelimit-remaining"], remaining);
        assert_eq!(r.headers["x-ratelimit-limit"], "3");
    }
    let r = get(&base, "/v2/user").await;
    assert_error_shape(&r, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.json["error"]["limit"]["total"], 3);
    let stats = get(&base, "/_sim/stats").await.json;
    assert_eq!(stats["rate_limited"], 1);
}

#[tokio::test]
async fn injected_failures_and_latency() {
    let base = start_sim(config(0.5));
    faults(&base, json!({"fail_next": 2})).await;
    for _ in 0..2 {
        let r = get(&base, "/v2/user").await;
        assert_error_shape(&r, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.json["error"]["code"], "internal_server_error");
    }
    assert_eq!(get(&base, "/v2/user").await.status, StatusCode::OK);
    let settings = faults(&base, json!({"latency_ms": 150})).await;
    assert_eq!(settings["latency_ms"], 150);
    let started = Instant::now();
    assert_eq!(get(&base, "/v2/user").await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let bad = post(&base, "/_sim/faults", &json!({"fial_next": 1})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn client_create_bodies_match_the_request_schema_and_the_simulator_accepts_them() {
    let base = start_sim(config(0.5));
    let meta: BTreeMap<String, String> = [
        ("task_id".to_string(), "t-42".to_string()),
        ("pr".to_string(), "17".to_string()),
    ]
    .into();
    let plain = CreateDeployment {
        name: "site".into(),
        project: None,
        target: None,
        git_source: None,
        deployment_id: None,
        meta: BTreeMap::new(),
    };
    let github = CreateDeployment {
        name: "site".into(),
        project: Some("site".into()),
        target: Some("production".into()),
        git_source: Some(github_source()),
        deployment_id: None,
        meta: meta.clone(),
    };
    let preview = CreateDeployment {
        target: Some("preview".into()),
        ..plain.clone()
    };
    for args in [&plain, &github, &preview] {
        let body = args.body();
        assert_valid(&create_request_schema(), &body);
        create(&base, &body).await;
    }
    let first = create(&base, &plain.body()).await;
    let redeploy = CreateDeployment {
        deployment_id: Some(first["id"].as_str().expect("id").into()),
        meta,
        ..plain.clone()
    };
    let body = redeploy.body();
    assert_valid(&create_request_schema(), &body);
    let again = create(&base, &body).await;
    assert_ne!(again["id"], first["id"]);
    assert_eq!(again["projectId"], first["projectId"]);
    assert_eq!(again["source"], "redeploy");
}

#[tokio::test]
async fn stats_count_deployments_per_project_and_log_every_call() {
    let base = start_sim(config(0.5));
    get(&base, "/v2/user").await;
    let reset = post(&base, "/_sim/reset", &json!({})).await;
    assert_eq!(reset.status, StatusCode::OK);
    let started = chrono::Utc::now().timestamp_millis();
    create(&base, &json!({"name": "alpha"})).await;
    create(&base, &json!({"name": "alpha"})).await;
    create(&base, &json!({"name": "x", "project": "beta"})).await;
    let denied = call(Method::GET, &format!("{base}/v2/user"), None, None).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    let missing = get(&base, "/v13/deployments/dpl_missing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let stats = get(&base, "/_sim/stats").await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(
        stats.json["deployments_created"],
        json!({"alpha": 2, "beta": 1})
    );
    let requests = stats.json["requests"].as_array().expect("requests");
    let seen: Vec<(String, String, u64)> = requests
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (
                s("method"),
                s("path"),
                r["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let expected: Vec<(String, String, u64)> = [
        ("POST", "/v13/deployments", 200),
        ("POST", "/v13/deployments", 200),
        ("POST", "/v13/deployments", 200),
        ("GET", "/v2/user", 401),
        ("GET", "/v13/deployments/dpl_missing", 404),
    ]
    .iter()
    .map(|(m, p, s)| (m.to_string(), p.to_string(), *s))
    .collect();
    assert_eq!(
        seen, expected,
        "the log is in arrival order and excludes /_sim/*"
    );
    let mut last = started;
    for r in requests {
        let at = r["at_ms"].as_i64().expect("at_ms");
        assert!(at >= last - 5, "at_ms {at} not increasing");
        last = at;
    }
}

/// The build log grows with the build, validates against the events schema, pages with `since`,
/// ends with the failure for an error build, and is 404 for an unknown deployment.
#[tokio::test]
async fn build_events_validate_and_page() {
    let base = start_sim(config(0.5));
    let path = "/v3/deployments/{idOrUrl}/events";
    for (name, last) in [("shop", "Build Completed"), ("error-shop", "exited with 1")] {
        let created = create(&base, &json!({"name": name})).await;
        let id = created["id"].as_str().expect("id").to_string();
        let early = get(&base, &format!("/v3/deployments/{id}/events?builds=1")).await;
        assert_eq!(early.status, StatusCode::OK, "{}", early.text);
        assert_response_valid(path, "get", 200, &early.json);
        let end = if name == "shop" { "READY" } else { "ERROR" };
        wait_for(&base, &id, end).await;
        let all = get(&base, &format!("/v3/deployments/{id}/events?builds=1")).await;
        assert_response_valid(path, "get", 200, &all.json);
        let events = all.json.as_array().unwrap();
        assert!(
            events.len() > early.json.as_array().unwrap().len(),
            "{}",
            all.text
        );
        let text = events.last().unwrap()["text"].as_str().unwrap();
        assert!(text.contains(last), "{text}");
        let first = events[0]["created"].as_i64().unwrap();
        let after = get(&base, &format!("/v3/deployments/{id}/events?since={first}")).await;
        assert_eq!(after.json.as_array().unwrap().len(), events.len() - 1);
    }
    let missing = get(&base, "/v3/deployments/dpl_nope/events").await;
    assert_error_shape(&missing, StatusCode::NOT_FOUND);
}
