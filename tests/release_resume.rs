//! Crash-resume of `release` tasks: a worker is killed with SIGKILL in the middle of a step, its
//! lease lapses, another worker reclaims the task and resumes it at the recorded step. Asserted at
//! the simulator's record of calls: one deployment, at most one promotion, at most one rollback.

mod support;

use std::time::Duration;

use ops_worker::queue::QueueStore;
use ops_worker::task::{TaskRecord, TaskStatus};
use serde_json::{Value, json};
use support::vercel_tasks::history;
use support::*;

const LONG: Duration = Duration::from_secs(120);

async fn wait_status(q: &QueueStore, id: &str, want: TaskStatus) -> TaskRecord {
    eventually(LONG, &format!("task {id} {want}"), || async {
        q.get(id).await.ok()?.filter(|r| r.status == want)
    })
    .await
}

/// The record once its history holds `word` (`step:state`).
async fn reached(q: &QueueStore, id: &str, word: &str) -> TaskRecord {
    eventually(LONG, &format!("task {id} at {word}"), || async {
        let r = q.get(id).await.ok()??;
        history(&r).iter().any(|w| w == word).then_some(r)
    })
    .await
}

/// `(path, status)` of the simulator's requests with this method and path prefix.
async fn calls(sim: &SimProcess, method: &str, prefix: &str) -> Vec<(String, u64)> {
    let stats = sim.stats().await;
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method && r["path"].as_str().unwrap().starts_with(prefix))
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A crash test: the simulator, a Redis, and workers with a 2 s lease (a killed one's task is
/// reclaimed quickly).
struct Crash {
    redis: RedisServer,
    sim: SimProcess,
    queue: &'static str,
}

impl Crash {
    fn new(queue: &'static str) -> Self {
        Crash {
            redis: RedisServer::start(),
            sim: SimProcess::spawn(&["--build-secs", "1"]),
            queue,
        }
    }

    async fn worker(&self) -> Worker {
        let mut env = self.sim.worker_env();
        env.push(("TASK_LEASE_SECS", "2".into()));
        Worker::builder(&self.redis.url(), self.queue)
            .envs(env)
            .spawn()
            .await
    }

    async fn store(&self) -> QueueStore {
        store(&self.redis.url(), self.queue).await
    }

    async fn submit(&self, ty: &str, payload: Value) -> String {
        let t = task(ty, "P1", payload);
        let id = t.task_id.to_string();
        self.store().await.enqueue(&[t]).await.unwrap();
        id
    }

    /// Deployments created and promote / rollback calls answered 201, for `project`.
    async fn counts(&self, project: &str) -> (usize, usize, usize) {
        let ok = |v: Vec<(String, u64)>| v.into_iter().filter(|c| c.1 == 201).count();
        (
            calls(&self.sim, "POST", "/v13/deployments").await.len(),
            ok(calls(
                &self.sim,
                "POST",
                &format!("/v10/projects/{project}/promote/"),
            )
            .await),
            ok(calls(
                &self.sim,
                "POST",
                &format!("/v1/projects/{project}/rollback/"),
            )
            .await),
        )
    }
}

#[tokio::test]
async fn kill_9_while_building_resumes_the_same_deployment() {
    let t = Crash::new("build");
    let q = t.store().await;
    let mut a = t.worker().await;
    t.sim.faults(json!({"hold_builds": true})).await;
    let verify = json!({"url": t.sim.site_url(), "withinSecs": 30});
    let id = t
        .submit("release", json!({"project": "b", "verify": verify}))
        .await;
    let rec = reached(&q, &id, "build:started").await;
    let deployment = rec.deployment_id.unwrap();
    a.kill9();
    let _b = t.worker().await;
    t.sim.faults(json!({"hold_builds": false})).await;
    let rec = wait_status(&q, &id, TaskStatus::Completed).await;
    assert_eq!(rec.attempts, 2, "reclaimed after the lease lapsed");
    assert_eq!(rec.deployment_id.as_deref(), Some(deployment.as_str()));
    assert!(
        history(&rec).contains(&"build:resumed".to_string()),
        "{:?}",
        history(&rec)
    );
    assert_eq!(t.counts("b").await, (1, 1, 0));
}

#[tokio::test]
async fn kill_9_while_verifying_resumes_the_verification_without_a_second_deployment() {
    let t = Crash::new("verify");
    let q = t.store().await;
    let mut a = t.worker().await;
    t.sim.site(json!({"status": 503})).await;
    let verify = json!({"url": t.sim.site_url(), "withinSecs": 60});
    let id = t
        .submit("release", json!({"project": "v", "verify": verify}))
        .await;
    let rec = reached(&q, &id, "verify:started").await;
    a.kill9();
    let deployment = rec.deployment_id.unwrap();
    t.sim
        .site(json!({"status": 200, "deployment": deployment}))
        .await;
    let _b = t.worker().await;
    let rec = wait_status(&q, &id, TaskStatus::Completed).await;
    let h = history(&rec);
    assert!(h.contains(&"verify:resumed".to_string()), "{h:?}");
    assert!(
        !h.contains(&"build:resumed".to_string()),
        "the build was done: {h:?}"
    );
    assert_eq!(t.counts("v").await, (1, 1, 0));
}

#[tokio::test]
async fn kill_9_while_watching_neither_promotes_again_nor_restarts_the_window() {
    let t = Crash::new("watch");
    let q = t.store().await;
    let mut a = t.worker().await;
    let verify = json!({"url": t.sim.site_url(), "withinSecs": 30});
    let payload = json!({"project": "w", "watchSecs": 12, "verify": verify});
    let id = t.submit("release", payload).await;
    let rec = reached(&q, &id, "watch:started").await;
    let watch_started = rec.steps.last().unwrap().at;
    a.kill9();
    let _b = t.worker().await;
    let rec = wait_status(&q, &id, TaskStatus::Completed).await;
    let h = history(&rec);
    assert!(h.contains(&"watch:resumed".to_string()), "{h:?}");
    assert_eq!(
        h.iter().filter(|w| *w == "promote:succeeded").count(),
        1,
        "{h:?}"
    );
    assert_eq!(t.counts("w").await, (1, 1, 0));
    // The resumed watch ended when the first one would have, not 12 s after the resume.
    let watched = rec.steps.last().unwrap().at - watch_started;
    assert!(
        watched < chrono::Duration::seconds(20),
        "watched for {watched}"
    );
    assert!(
        watched >= chrono::Duration::seconds(12),
        "watched for {watched}"
    );
}

#[tokio::test]
async fn kill_9_during_the_rollback_call_rolls_back_once() {
    let t = Crash::new("rollback");
    let q = t.store().await;
    let mut a = t.worker().await;
    let release = |within: u64| {
        json!({"project": "r", "target": "production",
               "verify": {"url": t.sim.site_url(), "withinSecs": within}})
    };
    let first = t.submit("release", release(30)).await;
    let good = wait_status(&q, &first, TaskStatus::Completed).await;
    let good_id = good.deployment_id.unwrap();

    t.sim.site(json!({"status": 500})).await;
    let id = t.submit("release", release(3)).await;
    reached(&q, &id, "verify:started").await;
    // Vercel answers slowly now (the sites do not): the worker dies with its rollback in flight.
    t.sim.faults(json!({"latency_ms": 800})).await;
    reached(&q, &id, "rollback:started").await;
    a.kill9();
    t.sim.faults(json!({"latency_ms": 0})).await;
    let _b = t.worker().await;
    let rec = wait_status(&q, &id, TaskStatus::Failed).await;
    let error = rec.error.clone().unwrap();
    assert!(error.starts_with("release failed at verify"), "{error}");
    assert!(
        error.ends_with(&format!("rolled back to {good_id}")),
        "{error}"
    );
    let h = history(&rec);
    assert!(h.contains(&"rollback:resumed".to_string()), "{h:?}");
    assert_eq!(rec.attempts, 2);
    assert_eq!(
        h.iter().filter(|w| *w == "rollback:started").count(),
        1,
        "{h:?}"
    );
    assert_eq!(
        h.iter().filter(|w| *w == "rollback:succeeded").count(),
        1,
        "{h:?}"
    );
    let (created, promoted, rolled_back) = t.counts("r").await;
    assert_eq!((created, promoted), (2, 0));
    assert_eq!(rolled_back, 1, "production was rolled back exactly once");
}

#[tokio::test]
async fn kill_9_with_the_create_call_in_flight_ends_with_one_deployment() {
    let t = Crash::new("create");
    let q = t.store().await;
    let mut a = t.worker().await;
    // Vercel answers slowly: the worker dies after it sent the create, before it got the answer.
    t.sim.faults(json!({"latency_ms": 800})).await;
    let verify = json!({"url": t.sim.site_url(), "withinSecs": 30});
    let id = t
        .submit("release", json!({"project": "c", "verify": verify}))
        .await;
    reached(&q, &id, "deploy:started").await;
    eventually(LONG, "the create sent", || async {
        let sent = calls(&t.sim, "POST", "/v13/deployments").await;
        (!sent.is_empty()).then_some(())
    })
    .await;
    a.kill9();
    t.sim.faults(json!({"latency_ms": 0})).await;
    let _b = t.worker().await;
    let rec = wait_status(&q, &id, TaskStatus::Completed).await;
    let h = history(&rec);
    eprintln!("create: {h:?}");
    assert!(h.contains(&"deploy:resumed".to_string()), "{h:?}");
    let stats = t.sim.stats().await;
    assert_eq!(
        stats["deployments_created"]["c"], 1,
        "{}",
        stats["deployments_created"]
    );
    assert_eq!(t.counts("c").await.1, 1, "promoted once");
}

#[tokio::test]
async fn kill_9_during_the_promote_call_promotes_once() {
    let t = Crash::new("promote");
    let q = t.store().await;
    let mut a = t.worker().await;
    t.sim.site(json!({"status": 503})).await;
    let verify = json!({"url": t.sim.site_url(), "withinSecs": 60});
    let id = t
        .submit("release", json!({"project": "p", "verify": verify}))
        .await;
    let rec = reached(&q, &id, "verify:started").await;
    // Vercel answers slowly now (the sites do not): the worker dies with its promote in flight.
    t.sim.faults(json!({"latency_ms": 800})).await;
    let deployment = rec.deployment_id.unwrap();
    t.sim
        .site(json!({"status": 200, "deployment": deployment}))
        .await;
    reached(&q, &id, "promote:started").await;
    a.kill9();
    t.sim.faults(json!({"latency_ms": 0})).await;
    let _b = t.worker().await;
    let rec = wait_status(&q, &id, TaskStatus::Completed).await;
    let h = history(&rec);
    assert!(h.contains(&"promote:resumed".to_string()), "{h:?}");
    assert_eq!(rec.attempts, 2);
    assert_eq!(
        t.counts("p").await,
        (1, 1, 0),
        "one deployment, promoted once"
    );
}

#[tokio::test]
async fn kill_9_after_a_replay_labels_only_this_runs_steps_resumed() {
    let t = Crash::new("replayed");
    let q = t.store().await;
    let mut a = t.worker().await;
    // Run 1 fails at verify (the site never answers 200).
    t.sim.site(json!({"status": 500})).await;
    let verify = json!({"url": t.sim.site_url(), "withinSecs": 2});
    let id = t
        .submit("release", json!({"project": "rp", "verify": verify}))
        .await;
    let failed = wait_status(&q, &id, TaskStatus::Failed).await;
    let first = failed.deployment_id.clone().unwrap();
    assert!(history(&failed).contains(&"verify:started".to_string()));

    // Run 2 (replayed) crashes while building its own deployment.
    t.sim.faults(json!({"hold_builds": true})).await;
    q.replay(&id).await.unwrap();
    let second = eventually(LONG, "run 2 created its deployment", || async {
        let r = q.get(&id).await.ok()??;
        let d = r.deployment_id.clone().filter(|d| *d != first)?;
        history(&r)
            .iter()
            .filter(|w| *w == "build:started")
            .nth(1)
            .map(|_| d)
    })
    .await;
    a.kill9();
    t.sim
        .site(json!({"status": 200, "deployment": second}))
        .await;
    let _b = t.worker().await;
    t.sim.faults(json!({"hold_builds": false})).await;
    let rec = wait_status(&q, &id, TaskStatus::Completed).await;
    let h = history(&rec);
    assert!(h.contains(&"build:resumed".to_string()), "{h:?}");
    // Run 1's verify is not run 2's: run 2 starts its verification.
    assert!(!h.contains(&"verify:resumed".to_string()), "{h:?}");
    assert_eq!(
        h.iter().filter(|w| *w == "verify:started").count(),
        2,
        "{h:?}"
    );
    assert_eq!(rec.deployment_id.as_deref(), Some(second.as_str()));
}
