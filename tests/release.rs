//! `release` tasks through the real pipeline (Redis + `ops-worker run` + the Vercel simulator):
//! the happy path with promotion and a watch window, a failed verification rolled back to the
//! last known good release, a fixed release after it, the project lock held for the whole
//! release (and `waiting_for` on the waiting task), and the step history in `GET /tasks/{id}`.

mod support;

use std::time::Duration;

use ops_worker::queue::QueueStore;
use ops_worker::task::TaskStatus;
use reqwest::Method;
use serde_json::{Value, json};
use support::vercel_tasks::{event_kinds, history, wait_status};
use support::*;

const LONG: Duration = Duration::from_secs(90);

async fn submit(q: &QueueStore, ty: &str, payload: Value) -> String {
    let t = task(ty, "P1", payload);
    let id = t.task_id.to_string();
    q.enqueue(&[t]).await.unwrap();
    id
}

/// Requests of the simulator's log with this method whose path starts with `prefix`:
/// `(path, status)`.
async fn calls(sim: &SimProcess, method: &str, prefix: &str) -> Vec<(String, u64)> {
    let stats = sim.stats().await;
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["path"].as_str().unwrap().starts_with(prefix))
        .map(|r| {
            let path = r["path"].as_str().unwrap().to_string();
            (path, r["status"].as_u64().unwrap())
        })
        .collect()
}

async fn worker(redis: &RedisServer, sim: &SimProcess, queue: &str) -> Worker {
    Worker::builder(&redis.url(), queue)
        .envs(sim.worker_env())
        .spawn()
        .await
}

#[tokio::test]
async fn a_release_deploys_verifies_promotes_watches_and_becomes_known_good() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "1"]);
    let w = worker(&redis, &sim, "rel").await;
    let q = w.store().await;
    let payload = json!({"project": "shop", "watchSecs": 3,
        "verify": {"url": sim.site_url(), "expectBody": "ok", "withinSecs": 20}});
    let id = submit(&q, "release", payload).await;
    let rec = wait_status(&q, &id, TaskStatus::Completed).await;
    let deployment = rec.deployment_id.clone().unwrap();
    assert_eq!(
        history(&rec),
        [
            "deploy:started",
            "deploy:succeeded",
            "build:started",
            "build:succeeded",
            "verify:started",
            "verify:succeeded",
            "promote:started",
            "promote:succeeded",
            "watch:started",
            "watch:succeeded",
        ]
    );
    let result = rec.result.unwrap();
    assert_eq!(result["deployment_id"], deployment.as_str());
    assert_eq!(result["promoted"], true);
    assert!(
        result["verified_url"]
            .as_str()
            .unwrap()
            .contains("/_sim/sites/shop-")
    );
    let events = event_kinds(&q, &id).await;
    for e in [
        "release.started",
        "release.verified",
        "release.promoted",
        "release.succeeded",
    ] {
        assert!(events.iter().any(|k| k == e), "{e} missing from {events:?}");
    }
    assert!(!events.iter().any(|k| k == "release.rolled_back"));
    let good = q.releases("shop").await.unwrap();
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].deployment_id, deployment);
    assert_eq!(calls(&sim, "POST", "/v13/deployments").await.len(), 1);
    assert_eq!(
        calls(&sim, "POST", "/v10/projects/shop/promote/")
            .await
            .len(),
        1
    );

    // The API shows the history, with when and what.
    let (status, body) = w.view(&format!("/tasks/{id}")).await;
    assert_eq!(status, 200);
    let steps = body["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 10);
    assert_eq!(steps[0]["step"], "deploy");
    assert_eq!(
        steps[1]["detail"],
        format!("created deployment {deployment}")
    );
    assert!(steps[9]["at"].as_str().unwrap().ends_with('Z'));
    assert!(body.get("waiting_for").is_none());
}

#[tokio::test]
async fn a_failed_verification_rolls_back_to_the_last_known_good_then_the_fix_goes_out() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "1"]);
    let w = worker(&redis, &sim, "fix").await;
    let q = w.store().await;
    let release = |within: u64| {
        json!({"project": "web", "target": "production", "promote": true,
               "verify": {"url": sim.site_url(), "withinSecs": within}})
    };
    let first = submit(&q, "release", release(20)).await;
    let good = wait_status(&q, &first, TaskStatus::Completed).await;
    let good_id = good.deployment_id.unwrap();

    // The hot fix is broken: its site answers 500.
    sim.site(json!({"status": 500})).await;
    let broken = submit(&q, "release", release(2)).await;
    let rec = wait_status(&q, &broken, TaskStatus::Failed).await;
    let error = rec.error.clone().unwrap();
    assert!(error.starts_with("release failed at verify: "), "{error}");
    assert!(error.contains("answered 500, expected 200"), "{error}");
    assert!(
        error.ends_with(&format!("rolled back to {good_id}")),
        "{error}"
    );
    assert_eq!(rec.attempts, 1, "a failed verification is not retried");
    let h = history(&rec);
    assert!(
        h.ends_with(&[
            "verify:failed".into(),
            "rollback:started".into(),
            "rollback:succeeded".into()
        ]),
        "{h:?}"
    );
    let events = event_kinds(&q, &broken).await;
    for e in ["release.started", "release.rolled_back", "release.failed"] {
        assert!(events.iter().any(|k| k == e), "{e} missing from {events:?}");
    }
    let rollbacks = calls(&sim, "POST", "/v1/projects/web/rollback/").await;
    assert_eq!(
        rollbacks,
        [(format!("/v1/projects/web/rollback/{good_id}"), 201)]
    );
    let bad_id = rec.deployment_id.unwrap();
    assert!(
        q.releases("web")
            .await
            .unwrap()
            .iter()
            .all(|r| r.deployment_id != bad_id)
    );

    // The fixed release goes out and becomes the newest known good.
    sim.site(json!({"status": 200})).await;
    let fixed = submit(&q, "release", release(20)).await;
    let rec = wait_status(&q, &fixed, TaskStatus::Completed).await;
    let releases = q.releases("web").await.unwrap();
    assert_eq!(releases[0].deployment_id, rec.deployment_id.unwrap());
    assert_eq!(calls(&sim, "POST", "/v13/deployments").await.len(), 3);

    // Replaying the failed release starts afresh: a new deployment, a new history after the old.
    q.replay(&broken).await.unwrap();
    let rec = wait_status(&q, &broken, TaskStatus::Completed).await;
    assert_ne!(rec.deployment_id.as_deref(), Some(bad_id.as_str()));
    let h = history(&rec);
    assert_eq!(
        h.iter().filter(|w| *w == "deploy:started").count(),
        2,
        "{h:?}"
    );
    assert!(
        h.ends_with(&["promote:started".into(), "promote:succeeded".into()]),
        "{h:?}"
    );
    assert!(!h.iter().any(|w| w.ends_with(":resumed")), "{h:?}");
    assert_eq!(calls(&sim, "POST", "/v13/deployments").await.len(), 4);
}

#[tokio::test]
async fn a_release_holds_its_project_throughout_and_the_waiting_task_says_for_what() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "1"]);
    let w = worker(&redis, &sim, "lock").await;
    let q = w.store().await;
    // The release's verification keeps failing (503) until the test lets it pass.
    sim.site(json!({"status": 503})).await;
    let payload = json!({"project": "app", "verify": {"url": sim.site_url(), "withinSecs": 60}});
    let rel = submit(&q, "release", payload).await;
    let rec = eventually(LONG, "the release verifying", || async {
        let r = q.get(&rel).await.ok()??;
        history(&r)
            .contains(&"verify:started".to_string())
            .then_some(r)
    })
    .await;
    let dep = submit(&q, "deploy", json!({"project": "app"})).await;
    let waiting = eventually(LONG, "the deploy waiting for the project", || async {
        q.get(&dep).await.ok()?.filter(|r| r.waiting_for.is_some())
    })
    .await;
    let wf = waiting.waiting_for.unwrap();
    assert_eq!(
        (wf.project.as_str(), wf.holder.as_str()),
        ("app", rel.as_str())
    );
    let (_, body) = w.view(&format!("/tasks/{dep}")).await;
    assert_eq!(
        body["waiting_for"],
        json!({"project": "app", "holder": rel})
    );

    let deployment = rec.deployment_id.unwrap();
    sim.site(json!({"status": 200, "deployment": deployment}))
        .await;
    wait_status(&q, &rel, TaskStatus::Completed).await;
    let done = wait_status(&q, &dep, TaskStatus::Completed).await;
    assert!(done.waiting_for.is_none());
    let (_, body) = w.view(&format!("/tasks/{dep}")).await;
    assert!(body.get("waiting_for").is_none(), "{body}");
}

#[tokio::test]
async fn bad_release_payloads_are_refused_naming_the_field_and_the_record_fields_are_documented() {
    let redis = RedisServer::start();
    let w = Worker::builder(&redis.url(), "bad").spawn().await;
    let (_, doc) = w.call(Method::GET, "/openapi.json", None, None).await;
    let schemas = &doc["components"]["schemas"];
    let record = &schemas["TaskRecord"]["properties"];
    assert!(
        record["steps"].is_object() && record["waiting_for"].is_object(),
        "{record}"
    );
    for field in ["step", "state", "at", "detail"] {
        assert!(
            schemas["StepEntry"]["properties"][field].is_object(),
            "{field}"
        );
    }
    for field in ["project", "holder"] {
        assert!(
            schemas["WaitingFor"]["properties"][field].is_object(),
            "{field}"
        );
    }
    let types = schemas["TaskType"].to_string();
    assert!(types.contains("\"release\""), "{types}");
    for (payload, field) in [
        (json!({}), "payload.project"),
        (
            json!({"project": "p", "target": "staging"}),
            "payload.target",
        ),
        (
            json!({"project": "p", "verify": {"expectStatus": 42}}),
            "payload.verify.expectStatus",
        ),
        (
            json!({"project": "p", "verify": {"url": "file:///etc"}}),
            "payload.verify.url",
        ),
        (
            json!({"project": "p", "watchSecs": "long"}),
            "payload.watchSecs",
        ),
    ] {
        let (status, body) = w
            .submit(json!({"type": "release", "payload": payload}))
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains(field), "{field}: {body}");
    }
}

#[tokio::test]
async fn release_steps_go_to_the_record_and_the_progress_only_while_the_record_exists() {
    use ops_worker::queue::release_run::{Fact, ReleaseProgress};
    use ops_worker::task::{StepEntry, StepName, StepState};
    let redis = RedisServer::start();
    let q = store(&redis.url(), "steps").await;
    let t = task("release", "P1", json!({"project": "s"}));
    let id = t.task_id.to_string();
    let entry = |step, state, detail: Option<&str>| StepEntry {
        step,
        state,
        at: chrono::Utc::now(),
        detail: detail.map(str::to_string),
    };
    let first = entry(StepName::Deploy, StepState::Started, None);
    let facts = [
        (Fact::Run, "r1".to_string()),
        (Fact::DeploymentId, "dpl_1".into()),
    ];
    // Nothing is written for a record that does not exist (or no longer does).
    assert!(
        !q.record_release_step(&id, std::slice::from_ref(&first), &facts)
            .await
            .unwrap()
    );
    assert_eq!(
        q.release_progress(&id).await.unwrap(),
        ReleaseProgress::default()
    );

    q.enqueue(&[t]).await.unwrap();
    assert!(
        q.record_release_step(&id, std::slice::from_ref(&first), &facts)
            .await
            .unwrap()
    );
    let more = [
        entry(
            StepName::Verify,
            StepState::Failed,
            Some("GET / answered 500"),
        ),
        entry(
            StepName::Rollback,
            StepState::Skipped,
            Some("no known-good release"),
        ),
    ];
    let facts = [
        (Fact::Verified, "1".to_string()),
        (Fact::FailedStep, "verify".into()),
        (Fact::FailedReason, "GET / answered 500".into()),
    ];
    assert!(q.record_release_step(&id, &more, &facts).await.unwrap());
    let rec = q.get(&id).await.unwrap().unwrap();
    assert_eq!(rec.steps, [vec![first], more.to_vec()].concat());
    assert_eq!(
        rec.deployment_id.as_deref(),
        Some("dpl_1"),
        "stored on the record too"
    );
    let p = q.release_progress(&id).await.unwrap();
    assert_eq!(
        (p.run.as_deref(), p.deployment_id.as_deref()),
        (Some("r1"), Some("dpl_1"))
    );
    assert!(p.verified);
    assert_eq!(
        p.failed,
        Some((StepName::Verify, "GET / answered 500".into()))
    );
    a_fact_is_deleted_and_the_progress_expires(&q, &redis, &id).await;
}

/// An empty value deletes a fact (the history stays); the progress expires with the
/// failed-record retention.
async fn a_fact_is_deleted_and_the_progress_expires(q: &QueueStore, redis: &RedisServer, id: &str) {
    use ops_worker::queue::release_run::Fact;
    // An empty value deletes the fact; the history is kept.
    assert!(
        q.record_release_step(id, &[], &[(Fact::Verified, String::new())])
            .await
            .unwrap()
    );
    assert!(!q.release_progress(id).await.unwrap().verified);
    assert_eq!(q.get(id).await.unwrap().unwrap().steps.len(), 3);
    // The progress expires with the failed-record retention.
    let mut conn = redis::Client::open(redis.url()).unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(q.key(&format!("release:{id}")))
        .query(&mut conn)
        .unwrap();
    assert!(ttl > 0, "ttl {ttl}");
}
