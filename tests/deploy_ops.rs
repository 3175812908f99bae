//! Deployment operations through the real pipeline (Redis + `ops-worker run` + the Vercel
//! simulator): known-good releases and rollback to them, live build progress, and one change per
//! project at a time across instances.

mod support;

use std::time::Duration;

use ops_worker::queue::QueueStore;
use ops_worker::task::TaskStatus;
use serde_json::{Value, json};
use support::vercel_tasks::*;
use support::*;

const LONG: Duration = TASK_WAIT;

/// Run a production deploy of `project` to READY and answer its deployment id.
async fn deployed_to_production(q: &QueueStore, project: &str) -> String {
    deployed_with(q, json!({"project": project, "target": "production"})).await
}

/// `(deployment_id, status, source)` of each known-good release, newest first.
async fn releases(q: &QueueStore, project: &str) -> Vec<(String, String, String)> {
    let text = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
    q.releases(project)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let v = serde_json::to_value(&r).unwrap();
            (
                r.deployment_id,
                text(v["status"].clone()),
                text(v["source"].clone()),
            )
        })
        .collect()
}

/// Production deploys that reach READY become known-good releases (previews don't); a rollback
/// without a deployment id goes back to the newest good one that production is not serving, and
/// the release rolled away from is never chosen again; a promote records its deployment; the API
/// and the CLI list them; a project with nothing to go back to fails the rollback in plain words.
#[tokio::test]
async fn rollback_without_a_deployment_goes_back_to_the_last_known_good_release() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "0.2"]);
    let q = store(&redis.url(), "rel").await;
    let worker = Worker::builder(&redis.url(), "rel")
        .envs(sim.worker_env())
        .spawn()
        .await;
    let v1 = deployed_to_production(&q, "shop").await;
    let v2 = deployed_to_production(&q, "shop").await;
    let preview = deployed(&q, "shop").await;
    let good = |id: &str, source: &str| (id.to_string(), "good".to_string(), source.to_string());
    assert_eq!(
        releases(&q, "shop").await,
        [good(&v2, "deploy"), good(&v1, "deploy")]
    );

    for _ in 0..2 {
        let back = submit(&q, "rollback", json!({"project": "shop"}), 0).await;
        let rec = wait_status(&q, &back, TaskStatus::Completed).await;
        let result = rec.result.unwrap();
        assert_eq!(result["deployment_id"], v1.as_str(), "{result}");
        assert_eq!(result["chosen"], "last_known_good");
    }
    let rolled_back = (v2.clone(), "rolled_back".to_string(), "deploy".to_string());
    assert_eq!(
        releases(&q, "shop").await,
        [rolled_back.clone(), good(&v1, "deploy")]
    );
    let reqs = requests(&sim.stats().await);
    let rollbacks: Vec<_> = reqs.iter().filter(|r| r.1.contains("/rollback/")).collect();
    assert_eq!(rollbacks.len(), 2, "{reqs:?}");
    assert!(
        rollbacks
            .iter()
            .all(|r| r.1 == format!("/v1/projects/shop/rollback/{v1}"))
    );

    let promote = submit(
        &q,
        "promote",
        json!({"project": "shop", "deployment_id": preview}),
        0,
    )
    .await;
    wait_status(&q, &promote, TaskStatus::Completed).await;
    let listed = releases(&q, "shop").await;
    assert_eq!(listed[0], good(&preview, "promote"), "{listed:?}");

    releases_listed_by_the_api_and_the_cli(&worker, &redis.url(), [&preview, &v2, &v1]).await;
    let nothing = submit(&q, "rollback", json!({"project": "empty"}), 0).await;
    let rec = wait_status(&q, &nothing, TaskStatus::Failed).await;
    let error = rec.error.unwrap_or_default();
    assert!(error.contains("no known-good release"), "{error}");
}

/// `GET /api/projects/shop/releases` lists `newest_first`; a bad project name is a 400 naming
/// it; `ops-worker releases shop --json` prints as many.
async fn releases_listed_by_the_api_and_the_cli(
    worker: &Worker,
    redis_url: &str,
    newest_first: [&str; 3],
) {
    let [preview, v2, v1] = newest_first;
    let (status, body) = worker
        .call(
            reqwest::Method::GET,
            "/api/projects/shop/releases",
            Some(&token(ops_worker::api::auth::Role::Viewer)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<_> = body["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["deployment_id"].clone())
        .collect();
    assert_eq!(ids, [json!(preview), json!(v2), json!(v1)]);
    let (status, body) = worker
        .call(
            reqwest::Method::GET,
            "/api/projects/sh%20op/releases",
            Some(&token(ops_worker::api::auth::Role::Viewer)),
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("project"), "{body}");
    let out = cli(redis_url, "rel", &[], &["releases", "shop", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed.as_array().unwrap().len(), 3, "{printed}");
}

/// `GET /tasks/{id}/build` of a deploy over the API.
async fn build_of(worker: &Worker, id: &str) -> Value {
    let viewer = token(ops_worker::api::auth::Role::Viewer);
    let (status, body) = worker
        .call(
            reqwest::Method::GET,
            &format!("/tasks/{id}/build"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// While a deploy runs, its build progress shows the Vercel state (BUILDING, with when it was
/// first seen) and the log so far; at the end, READY and the whole log (the failure line for a
/// failed build), read incrementally so no line appears twice.
#[tokio::test]
async fn a_running_deploy_shows_its_vercel_state_and_build_log() {
    let redis = RedisServer::start();
    // BUILDING lasts 80% of the build: long enough that polls paced by the shared rate limit
    // (raised here, so two deploys polling every 0.2 s are not slowed to a call a second) see it.
    let sim = SimProcess::spawn(&["--build-secs", "6"]);
    let q = store(&redis.url(), "progress").await;
    let worker = Worker::builder(&redis.url(), "progress")
        .envs(sim.worker_env())
        .env("VERCEL_RATE_LIMIT_PER_MIN", "1200")
        .spawn()
        .await;
    let ok = submit(&q, "deploy", json!({"project": "shop"}), 0).await;
    let bad = submit(&q, "deploy", json!({"project": "error-shop"}), 0).await;
    let during = eventually(LONG, "BUILDING seen while the deploy runs", || async {
        let b = build_of(&worker, &ok).await;
        let running = q.get(&ok).await.ok()??.status == TaskStatus::InProgress;
        let building = b["states"]
            .as_array()?
            .iter()
            .any(|s| s["state"] == "BUILDING");
        (running && building).then_some(b)
    })
    .await;
    assert!(
        during["deployment_id"]
            .as_str()
            .is_some_and(|d| d.starts_with("dpl_")),
        "{during}"
    );
    assert!(during["states"][0]["at"].is_string(), "{during}");

    wait_status(&q, &ok, TaskStatus::Completed).await;
    wait_status(&q, &bad, TaskStatus::Failed).await;
    for (id, state, last) in [
        (&ok, "READY", "Build Completed"),
        (&bad, "ERROR", "exited with 1"),
    ] {
        let b = build_of(&worker, id).await;
        let states: Vec<&str> = b["states"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["state"].as_str())
            .collect();
        assert_eq!(states.last(), Some(&state), "{b}");
        let log: Vec<&str> = b["log"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["text"].as_str())
            .collect();
        assert!(log.last().is_some_and(|l| l.contains(last)), "{b}");
        assert_eq!(log.len(), 4, "each line once: {log:?}");
    }
    let (status, _) = worker
        .call(
            reqwest::Method::GET,
            "/tasks/00000000-0000-0000-0000-000000000000/build",
            Some(&token(ops_worker::api::auth::Role::Viewer)),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

/// `[created, ready]` (epoch ms, the simulator's clock) of every deployment of `project`.
async fn build_windows(sim: &SimProcess, project: &str) -> Vec<(u64, u64)> {
    let body: Value = reqwest::Client::new()
        .get(format!("{}/v6/deployments", sim.url))
        .query(&[("projectId", project), ("limit", "100")])
        .bearer_auth(&sim.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // 404 (no deployments array) while the project does not exist yet; a build still running
    // has no `ready` and counts as running until the end of time.
    let Some(list) = body["deployments"].as_array() else {
        return Vec::new();
    };
    let mut out: Vec<(u64, u64)> = list
        .iter()
        .map(|d| {
            let created = d["created"].as_u64().unwrap();
            (created, d["ready"].as_u64().unwrap_or(u64::MAX))
        })
        .collect();
    out.sort();
    out
}

fn overlap(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The task id holding `project`'s lock, and the instance its consumer belongs to.
fn lock_owner(redis: &RedisServer, queue: &str, project: &str) -> Option<(String, String)> {
    let mut conn = redis.conn();
    let holder: Option<String> = redis::cmd("GET")
        .arg(format!("ops:{{{queue}}}:project:{project}"))
        .query(&mut conn)
        .unwrap();
    let holder = holder?;
    let worker: Option<String> = redis::cmd("HGET")
        .arg(format!("ops:{{{queue}}}:task:{holder}"))
        .arg("worker")
        .query(&mut conn)
        .unwrap();
    let instance = worker?.split('/').next()?.to_string();
    Some((holder, instance))
}

/// One change per project, cluster-wide: with 2 instances, 6 deploys of `alpha` and 6 of
/// `beta` never overlap within a project but do across projects; waiting burns no attempt; a
/// `check` of a busy project is not held up; kill -9 of the instance holding a project frees it
/// once the lease lapses.
#[tokio::test]
async fn two_instances_deploy_one_change_per_project_at_a_time() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "1"]);
    let q = store(&redis.url(), "plock").await;
    let mut env = sim.worker_env();
    env.push(("TASK_LEASE_SECS", "2".into()));
    env.push(("WORKER_CONCURRENCY", "4".into()));
    env.push(("VERCEL_RATE_LIMIT_PER_MIN", "0".into()));
    let mut workers = [
        Worker::builder(&redis.url(), "plock")
            .envs(env.clone())
            .spawn()
            .await,
        Worker::builder(&redis.url(), "plock")
            .envs(env)
            .spawn()
            .await,
    ];
    let mut ids = Vec::new();
    for k in 0..12 {
        let project = if k % 2 == 0 { "alpha" } else { "beta" };
        ids.push((
            project,
            submit(&q, "deploy", json!({"project": project}), 3).await,
        ));
    }
    // A read of a busy project runs at once.
    eventually(LONG, "an alpha deployment building", || async {
        (!build_windows(&sim, "alpha").await.is_empty()).then_some(())
    })
    .await;
    let check = submit(&q, "check", json!({"project": "alpha"}), 0).await;
    let check = wait_status(&q, &check, TaskStatus::Completed).await;
    let mut alpha_done = Vec::new();
    for (project, id) in &ids {
        let rec = wait_status(&q, id, TaskStatus::Completed).await;
        assert_eq!(rec.attempts, 1, "waiting for {project} burnt no attempt");
        if *project == "alpha" {
            alpha_done.push(rec.completed_at.unwrap());
        }
    }
    assert!(
        check.completed_at.unwrap() < *alpha_done.iter().max().unwrap(),
        "the check finished while alpha was still being deployed"
    );
    assert_eq!(check.attempts, 1);
    let check_events = event_kinds(&q, &check.task_id.to_string()).await;
    assert!(
        !check_events.contains(&"task.waiting_for_project".to_string()),
        "a read never waits: {check_events:?}"
    );
    builds_never_overlap_within_a_project(&sim, &q).await;
    a_crashed_holder_frees_the_project(&sim, &q, &redis, &mut workers).await;
}

/// The 12 builds: one at a time per project, overlapping across projects; some deploys waited.
async fn builds_never_overlap_within_a_project(sim: &SimProcess, q: &QueueStore) {
    let (alpha, beta) = (
        build_windows(sim, "alpha").await,
        build_windows(sim, "beta").await,
    );
    assert_eq!((alpha.len(), beta.len()), (6, 6));
    for w in [&alpha, &beta] {
        for pair in w.windows(2) {
            assert!(
                !overlap(pair[0], pair[1]),
                "one build at a time per project: {w:?}"
            );
        }
    }
    assert!(
        alpha.iter().any(|a| beta.iter().any(|b| overlap(*a, *b))),
        "projects do not wait for each other: {alpha:?} {beta:?}"
    );
    let waited = q
        .events(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "task.waiting_for_project")
        .count();
    assert!(waited > 0, "some deploys waited for their project");
}

/// Kill -9 the instance holding alpha while a second alpha deploy waits for it: the waiting one
/// runs once the lease lapses, the holder's task is reclaimed.
async fn a_crashed_holder_frees_the_project(
    sim: &SimProcess,
    q: &QueueStore,
    redis: &RedisServer,
    workers: &mut [Worker],
) {
    sim.faults(json!({"build_secs": 4})).await;
    let first = submit(q, "deploy", json!({"project": "alpha"}), 3).await;
    let (_, instance) = eventually(LONG, "alpha locked by the new deploy", || async {
        lock_owner(redis, "plock", "alpha").filter(|(holder, _)| *holder == first)
    })
    .await;
    let second = submit(q, "deploy", json!({"project": "alpha"}), 3).await;
    eventually(LONG, "the second alpha deploy waiting", || async {
        let waits = event_kinds(q, &second).await;
        waits
            .contains(&"task.waiting_for_project".to_string())
            .then_some(())
    })
    .await;
    let victim = workers.iter().position(|w| w.instance == instance).unwrap();
    workers[victim].kill9();
    let rec = wait_status(q, &second, TaskStatus::Completed).await;
    assert_eq!(rec.attempts, 1);
    let rec = wait_status(q, &first, TaskStatus::Completed).await;
    assert_eq!(
        rec.attempts, 2,
        "the crashed holder was reclaimed after its lease lapsed"
    );
}
