//! Vercel tasks through the real pipeline: Redis + `ops-worker run` (consumers, VercelActor,
//! shared rate limiter) + the Vercel simulator, asserting at the simulator what Vercel would see.

mod support;

use std::time::Duration;

use ops_worker::task::TaskStatus;
use serde_json::{Value, json};
use support::vercel_tasks::*;
use support::*;

const LONG: Duration = TASK_WAIT;

#[tokio::test]
async fn deploy_reaches_ready_error_fails_without_retry_and_5xx_bursts_are_retried() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "1"]);
    let q = store(&redis.url(), "deploy").await;
    let _w = Worker::builder(&redis.url(), "deploy")
        .envs(sim.worker_env())
        .spawn()
        .await;

    // READY: the deployment lands in `result` and on the record, with its events.
    let ok = submit(
        &q,
        "deploy",
        json!({"project": "web", "target": "production"}),
        3,
    )
    .await;
    let rec = wait_status(&q, &ok, TaskStatus::Completed).await;
    let result = rec.result.clone().unwrap();
    assert_eq!(result["state"], "READY");
    assert_eq!(result["project"], "web");
    let dpl = result["deployment_id"].as_str().unwrap();
    assert!(dpl.starts_with("dpl_"));
    assert!(result["url"].as_str().unwrap().ends_with(".vercel.app"));
    assert_eq!(rec.deployment_id.as_deref(), Some(dpl));
    let inspector = rec.inspector_url.as_deref().unwrap_or_default();
    assert!(
        inspector.starts_with("https://") && inspector.ends_with(dpl.trim_start_matches("dpl_")),
        "Vercel's inspector URL is stored with the deployment: {inspector:?}"
    );
    assert_eq!(rec.attempts, 1);
    let kinds = event_kinds(&q, &ok).await;
    assert!(
        kinds.contains(&"deploy.started".into()) && kinds.contains(&"deploy.succeeded".into()),
        "{kinds:?}"
    );

    // ERROR build: failed at once, no retry, deploy.failed emitted.
    let bad = submit(&q, "deploy", json!({"project": "error-web"}), 3).await;
    let rec = wait_status(&q, &bad, TaskStatus::Failed).await;
    assert_eq!(rec.attempts, 1, "a failed build is not retried");
    assert!(rec.error.unwrap().contains("ended in ERROR"));
    assert!(
        event_kinds(&q, &bad)
            .await
            .contains(&"deploy.failed".into())
    );

    // A burst of 500s: retried with back-off, the task completes.
    sim.faults(json!({"fail_next": 3})).await;
    let burst = submit(&q, "deployment", json!({"service": "api"}), 3).await;
    let rec = wait_status(&q, &burst, TaskStatus::Completed).await;
    assert_eq!(rec.result.unwrap()["state"], "READY");
    let reqs = requests(&sim.stats().await);
    assert!(reqs.iter().filter(|r| r.2 == 500).count() >= 3, "{reqs:?}");
    let created = sim.stats().await["deployments_created"].clone();
    assert_eq!(created["api"], 1, "{created}");
}

#[tokio::test]
async fn operations_hit_the_right_method_and_path() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "0.5"]);
    let q = store(&redis.url(), "ops").await;
    let _w = Worker::builder(&redis.url(), "ops")
        .envs(sim.worker_env())
        .spawn()
        .await;
    let dpl = deployed(&q, "shop").await;

    let promote = submit(
        &q,
        "promote",
        json!({"project": "shop", "deployment_id": dpl}),
        0,
    )
    .await;
    let rollback = submit(
        &q,
        "rollback",
        json!({"project": "shop", "deployment_id": dpl}),
        0,
    )
    .await;
    let check = submit(&q, "check", json!({"deployment_id": dpl}), 0).await;
    let latest = submit(&q, "check", json!({"project": "shop"}), 0).await;
    for id in [&promote, &rollback, &check, &latest] {
        wait_status(&q, id, TaskStatus::Completed).await;
    }
    assert!(
        event_kinds(&q, &rollback)
            .await
            .contains(&"deploy.rolled_back".into())
    );
    assert_eq!(
        q.get(&latest).await.unwrap().unwrap().result.unwrap()["deployment_id"],
        dpl.as_str()
    );

    // A deployment that is still building, to cancel.
    sim.faults(json!({"build_secs": 60})).await;
    let slow = sim.create_deployment(json!({"name": "shop"})).await;
    let slow_id = slow["id"].as_str().unwrap().to_string();
    let cancel = submit(&q, "cancel", json!({"deployment_id": slow_id}), 0).await;
    let rec = wait_status(&q, &cancel, TaskStatus::Completed).await;
    assert_eq!(rec.result.unwrap()["state"], "CANCELED");

    let reqs = requests(&sim.stats().await);
    let hit = |method: &str, path: String| {
        assert!(
            reqs.iter()
                .any(|r| r.0 == method && r.1 == path && (200..300).contains(&r.2)),
            "no 2xx {method} {path} in {reqs:?}"
        )
    };
    hit("POST", format!("/v10/projects/shop/promote/{dpl}"));
    hit("POST", format!("/v1/projects/shop/rollback/{dpl}"));
    hit("GET", format!("/v13/deployments/{dpl}"));
    hit("GET", "/v6/deployments".into());
    hit("PATCH", format!("/v12/deployments/{slow_id}/cancel"));
}

#[tokio::test]
async fn kill_9_while_waiting_for_ready_resumes_the_same_deployment() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "5"]);
    let q = store(&redis.url(), "resume").await;
    let mut env = sim.worker_env();
    env.push(("TASK_LEASE_SECS", "2".into()));
    let mut a = Worker::builder(&redis.url(), "resume")
        .envs(env.clone())
        .spawn()
        .await;
    let id = submit(&q, "deploy", json!({"project": "web"}), 3).await;
    let stored = eventually(LONG, "deployment id stored on the record", || async {
        q.get(&id).await.ok()??.deployment_id
    })
    .await;
    a.kill9();

    let _b = Worker::builder(&redis.url(), "resume")
        .envs(env.clone())
        .spawn()
        .await;
    let rec = wait_status(&q, &id, TaskStatus::Completed).await;
    assert_eq!(rec.attempts, 2, "reclaimed after the lease lapsed");
    assert_eq!(rec.result.unwrap()["deployment_id"], stored.as_str());
    let stats = sim.stats().await;
    assert_eq!(
        stats["deployments_created"]["web"], 1,
        "{}",
        stats["deployments_created"]
    );
    let creates = requests(&stats)
        .into_iter()
        .filter(|r| r.0 == "POST" && r.1 == "/v13/deployments")
        .count();
    assert_eq!(creates, 1);
}

#[tokio::test]
async fn a_retry_finds_the_deployment_an_earlier_attempt_created_instead_of_creating_another() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "0.5"]);
    let q = store(&redis.url(), "dedupe").await;
    // An earlier attempt created this deployment but died before storing its id on the record.
    let mut t = task("deploy", "P1", json!({"project": "web"}));
    let id = t.task_id.to_string();
    t.attempts = 1;
    let earlier = sim
        .create_deployment(json!({"name": "web", "meta": {"ops_task_id": id}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    q.enqueue(&[t]).await.unwrap();
    let _w = Worker::builder(&redis.url(), "dedupe")
        .envs(sim.worker_env())
        .spawn()
        .await;
    let rec = wait_status(&q, &id, TaskStatus::Completed).await;
    assert_eq!(rec.attempts, 2);
    assert_eq!(rec.deployment_id.as_deref(), Some(earlier.as_str()));
    assert_eq!(rec.result.unwrap()["deployment_id"], earlier.as_str());
    assert_eq!(
        sim.stats().await["deployments_created"]["web"],
        1,
        "no second deployment"
    );
}

#[tokio::test]
async fn a_401_fails_the_task_clearly_and_the_token_never_leaks() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&[]);
    let q = store(&redis.url(), "auth").await;
    let mut env = sim.worker_env();
    env.retain(|(k, _)| *k != "VERCEL_TOKEN");
    env.push(("VERCEL_TOKEN", TEST_VERCEL_TOKEN.into()));
    let w = Worker::builder(&redis.url(), "auth")
        .envs(env.clone())
        .spawn()
        .await;
    let id = submit(&q, "deploy", json!({"project": "web"}), 3).await;
    let rec = wait_status(&q, &id, TaskStatus::Failed).await;
    assert_eq!(rec.attempts, 1, "401 is permanent");
    let err = rec.error.clone().unwrap();
    assert!(
        err.contains("rejected the token") && err.contains("401"),
        "{err}"
    );
    let record_json = serde_json::to_string(&rec).unwrap();
    let logs = w.logs();
    assert!(logs.contains("attempt failed (permanent)"), "{logs}");
    for secret in [TEST_VERCEL_TOKEN, sim.token.as_str(), TEST_JWT_SECRET] {
        assert!(!record_json.contains(secret), "secret in the record");
        assert!(!logs.contains(secret), "secret in the logs");
    }
    let events = serde_json::to_string(&q.events(1000).await.unwrap()).unwrap();
    assert!(!events.contains(TEST_VERCEL_TOKEN));
}

/// Largest number of requests in any window of `window_ms` (arrival times sorted).
fn max_in_window(times: &[u64], window_ms: u64) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= window_ms {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[tokio::test]
async fn two_instances_share_one_rate_limit_and_no_task_fails() {
    let redis = RedisServer::start();
    let per_min: u64 = 120;
    let burst: u64 = 4;
    let sim = SimProcess::spawn(&["--rate-limit-per-min", &per_min.to_string()]);
    let q = store(&redis.url(), "limit").await;
    let mut env = sim.worker_env();
    env.push(("VERCEL_RATE_LIMIT_PER_MIN", per_min.to_string()));
    env.push(("VERCEL_RATE_LIMIT_BURST", burst.to_string()));
    env.push(("WORKER_CONCURRENCY", "3".into()));
    let _a = Worker::builder(&redis.url(), "limit")
        .envs(env.clone())
        .spawn()
        .await;
    let _b = Worker::builder(&redis.url(), "limit")
        .envs(env.clone())
        .spawn()
        .await;

    // One deployment to check, created straight at the simulator (outside the workers' limiter).
    let dpl = sim.create_deployment(json!({"name": "web"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ids = Vec::new();
    for _ in 0..24 {
        ids.push(submit(&q, "check", json!({"deployment_id": dpl}), 0).await);
    }
    for id in &ids {
        wait_status(&q, id, TaskStatus::Completed).await;
    }
    let stats = sim.stats().await;
    let mut times: Vec<u64> = requests(&stats)
        .iter()
        .filter(|r| r.0 == "GET")
        .map(|r| r.3)
        .collect();
    times.sort();
    assert_eq!(times.len(), 24, "one call per check");
    assert_eq!(
        stats["rate_limited"], 0,
        "the simulator never had to refuse a call"
    );
    assert!(max_in_window(&times, 60_000) as u64 <= per_min);
    // Token-bucket pacing: any span of d ms holds at most burst + rate * d (+1 for arrival jitter).
    let per_ms = per_min as f64 / 60_000.0;
    for i in 0..times.len() {
        for j in i..times.len() {
            let n = (j - i + 1) as f64;
            let allowed = burst as f64 + per_ms * (times[j] - times[i]) as f64 + 1.0;
            assert!(
                n <= allowed,
                "{n} calls in {} ms (allowed {allowed:.1})",
                times[j] - times[i]
            );
        }
    }
}

#[tokio::test]
async fn after_a_429_no_instance_calls_before_retry_after() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "0.2"]);
    let q = store(&redis.url(), "hold").await;
    let mut env = sim.worker_env();
    env.push(("WORKER_CONCURRENCY", "2".into()));
    let _a = Worker::builder(&redis.url(), "hold")
        .envs(env.clone())
        .spawn()
        .await;
    let _b = Worker::builder(&redis.url(), "hold")
        .envs(env.clone())
        .spawn()
        .await;
    let dpl = deployed(&q, "web").await;

    sim.faults(json!({"rate_limit_next": 1, "retry_after_secs": 3}))
        .await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(submit(&q, "check", json!({"deployment_id": dpl}), 0).await);
    }
    for id in &ids {
        wait_status(&q, id, TaskStatus::Completed).await;
    }
    let reqs = requests(&sim.stats().await);
    let t429 = reqs
        .iter()
        .find(|r| r.2 == 429)
        .expect("the injected 429")
        .3;
    // A call admitted before the hold reached Redis may still arrive shortly after the 429
    // (the hold is written once the worker has read the 429); none may arrive later in the hold.
    let early: Vec<_> = reqs
        .iter()
        .filter(|r| r.3 > t429 + 1_000 && r.3 < t429 + 3_000)
        .collect();
    assert!(
        early.is_empty(),
        "calls during the Retry-After hold: {early:?}"
    );
    assert!(
        reqs.iter().any(|r| r.3 >= t429 + 3_000 && r.2 == 200),
        "calls resumed after the hold"
    );
}

#[tokio::test]
async fn a_retried_deploy_of_a_project_that_does_not_exist_yet_creates_it_once() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "0.2"]);
    let q = store(&redis.url(), "fresh").await;
    // As if a first attempt died before creating anything: the claim makes this attempt 2.
    let id = submit(&q, "deploy", json!({"project": "brand-new"}), 3).await;
    let _: i64 = redis::cmd("HSET")
        .arg(format!("ops:{{fresh}}:task:{id}"))
        .arg("attempts")
        .arg(1)
        .query(&mut redis.conn())
        .unwrap();
    let _w = Worker::builder(&redis.url(), "fresh")
        .envs(sim.worker_env())
        .spawn()
        .await;
    let rec = wait_status(&q, &id, TaskStatus::Completed).await;
    assert_eq!(rec.attempts, 2);
    let stats = sim.stats().await;
    assert_eq!(stats["deployments_created"]["brand-new"], 1);
    let calls = requests(&stats);
    let lookup = calls
        .iter()
        .position(|r| r.0 == "GET" && r.1 == "/v6/deployments")
        .expect("the attempt looked for its own deployment first");
    assert_eq!(
        calls[lookup].2, 404,
        "Vercel's answer for a project that does not exist"
    );
    let create = calls
        .iter()
        .position(|r| r.0 == "POST" && r.1 == "/v13/deployments")
        .expect("then created it");
    assert!(lookup < create);
    // The expected 404 is not counted as a Vercel error.
    let metrics = reqwest::get(_w.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "ops_worker_vercel_requests_total{operation=\"list_deployments\",status_class=\"absent\"} 1"
        ),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("list_deployments"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn kill_9_of_one_of_two_instances_during_30_deploys_converges_to_30_deployments() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&["--build-secs", "1", "--latency-ms", "150"]);
    let q = store(&redis.url(), "converge").await;
    let mut env = sim.worker_env();
    env.push(("TASK_LEASE_SECS", "2".into()));
    env.push(("WORKER_CONCURRENCY", "4".into()));
    env.push(("VERCEL_RATE_LIMIT_PER_MIN", "0".into()));
    let mut a = Worker::builder(&redis.url(), "converge")
        .envs(env.clone())
        .spawn()
        .await;
    let _b = Worker::builder(&redis.url(), "converge")
        .envs(env)
        .spawn()
        .await;
    let mut ids = Vec::new();
    for k in 0..30 {
        ids.push(submit(&q, "deploy", json!({"project": format!("fresh-{k}")}), 3).await);
    }
    // Kill one instance while it holds deploys, some of them before their deployment exists.
    eventually(LONG, "instance a holding tasks", || async {
        let recs = futures::future::join_all(ids.iter().map(|id| q.get(id))).await;
        recs.into_iter()
            .flatten()
            .flatten()
            .any(|r| r.status == TaskStatus::InProgress && r.started_at.is_some())
            .then_some(())
    })
    .await;
    a.kill9();
    let mut deployments = std::collections::HashSet::new();
    for id in &ids {
        let rec = wait_status(&q, id, TaskStatus::Completed).await;
        deployments.insert(
            rec.result.unwrap()["deployment_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(deployments.len(), 30, "one deployment per task");
    let stats = sim.stats().await;
    let created: u64 = stats["deployments_created"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(created, 30, "{}", stats["deployments_created"]);
    assert_eq!(q.stats().await.unwrap().failed, 0);
}
