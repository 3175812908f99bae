//! Sentinel failover under load, with real `redis-sentinel` processes: the master is killed with
//! -9 mid-drain; the worker follows the new master within seconds, keeps running, and every task
//! Redis acknowledged (and replicated) completes.

mod support;

use std::time::Duration;

use ops_worker::config::{Config, Mode};
use ops_worker::queue::QueueStore;
use serde_json::json;
use support::sentinel::{MASTER_NAME, SentinelSet};
use support::*;

const LONG: Duration = Duration::from_secs(90);

/// A store that finds the master through the Sentinels, as the worker does.
async fn sentinel_store(set: &SentinelSet, queue: &str) -> QueueStore {
    let mut env = base_env("redis://unused-host:6379", queue);
    env.insert("REDIS_SENTINELS".into(), set.nodes());
    env.insert("REDIS_SENTINEL_MASTER".into(), MASTER_NAME.into());
    let config = Config::from_vars(&env, Mode::Tool).expect("config");
    QueueStore::new(&config.redis, &config.queue)
        .await
        .expect("store")
}

#[tokio::test]
async fn a_master_failover_mid_drain_is_followed_and_loses_no_task() {
    let mut set = SentinelSet::start();
    let queue = "failover";
    let q = sentinel_store(&set, queue).await;
    let tasks: Vec<_> = (0..2_000).map(|_| noop(json!({"sleep_ms": 2}))).collect();
    q.enqueue(&tasks).await.unwrap();
    // Acknowledged and on the replica before the master dies (asynchronous replication would
    // otherwise be allowed to lose them: see docs/configuration.md).
    let mut master = set.master.conn();
    let acked: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5_000)
        .query(&mut master)
        .unwrap();
    assert_eq!(acked, 1);

    let worker = Worker::builder("redis://unused-host:6379", queue)
        .env("REDIS_SENTINELS", set.nodes())
        .env("REDIS_SENTINEL_MASTER", MASTER_NAME)
        .env("TASK_LEASE_SECS", "3")
        .env("WORKER_CONCURRENCY", "8")
        .spawn()
        .await;
    eventually(LONG, "some tasks done before the failover", || async {
        (q.stats().await.ok()?.completed_total >= 300).then_some(())
    })
    .await;
    let old = set.master.port;
    set.master.kill();
    eventually(LONG, "the Sentinels promote the replica", || async {
        (set.reported_master_port().is_some_and(|p| p != old)).then_some(())
    })
    .await;
    eventually(LONG, "every task completed on the new master", || async {
        let s = q.stats().await.ok()?;
        (s.completed_total >= 2_000).then_some(())
    })
    .await;
    for t in &tasks {
        let rec = q
            .get(&t.task_id.to_string())
            .await
            .unwrap()
            .expect("record kept");
        assert_eq!(
            rec.status,
            ops_worker::task::TaskStatus::Completed,
            "{}",
            rec.task_id
        );
    }
    let mut worker = worker;
    assert!(worker.alive(), "the worker survived the failover");
    assert!(
        worker.logs().contains("following the new Redis master"),
        "{}",
        worker.logs()
    );
    let master = format!("127.0.0.1:{}", set.replica.port);
    assert_eq!(q.redis_master().await, Some(master));

    topology_names_the_master(&set, queue, &worker, old).await;
}

/// After the failover, doctor, /health and /metrics name the topology and the new master (the
/// replica); the old master's gauge is 0.
async fn topology_names_the_master(set: &SentinelSet, queue: &str, worker: &Worker, old: u16) {
    let master = format!("127.0.0.1:{}", set.replica.port);
    let nodes = set.nodes();
    let extra = [
        ("REDIS_SENTINELS", nodes.as_str()),
        ("REDIS_SENTINEL_MASTER", MASTER_NAME),
    ];
    let out = cli(
        "redis://unused-host:6379",
        queue,
        &extra,
        &["doctor", "--json"],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |name: &str| doctor_check(&report, name);
    assert_eq!(row("redis topology")["status"], "ok", "{report}");
    assert!(
        row("redis topology")["detail"]
            .as_str()
            .unwrap()
            .contains(&master),
        "{report}"
    );
    assert_eq!(row("redis reachable")["status"], "ok", "{report}");
    let health = worker.health().await;
    assert_eq!(
        (
            health["redis_topology"].as_str(),
            health["redis_master"].as_str()
        ),
        (Some("sentinel"), Some(master.as_str()))
    );
    // /metrics: the new master is 1, the old one has no series any more.
    let gauge = |port: u16| {
        format!(
            r#"ops_worker_redis_topology_info{{topology="sentinel",master="127.0.0.1:{port}"}} "#
        )
    };
    let metrics = eventually(LONG, "the topology gauge follows the failover", || async {
        let text = worker.metrics_text().await?;
        text.contains(&format!("{}1", gauge(set.replica.port)))
            .then_some(text)
    })
    .await;
    assert!(
        !metrics.contains(&gauge(old)),
        "the old master's series is gone: {metrics}"
    );
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("ops_worker_redis_topology_info{"))
        .count();
    assert_eq!(series, 1, "{metrics}");
}

/// A store on `url` that waits for `replicas` replicas on each submission and outcome.
async fn waiting_store(url: &str, queue: &str, replicas: &str) -> QueueStore {
    let mut env = base_env(url, queue);
    env.insert("REDIS_MIN_REPLICAS_ACK".into(), replicas.into());
    let config = Config::from_vars(&env, Mode::Tool).expect("config");
    QueueStore::new(&config.redis, &config.queue)
        .await
        .expect("store")
}

/// `REDIS_MIN_REPLICAS_ACK`: a submission counts as written once that many replicas have it;
/// asking for more replicas than exist answers a clear error (503 over the API) while the task
/// stands on the master, and outcomes only warn.
#[tokio::test]
async fn submissions_wait_for_the_replicas_asked_for() {
    let master = RedisServer::start();
    let replica = RedisServer::start_replica_of(master.port);
    let queue = "durable";
    let one = waiting_store(&master.url(), queue, "1").await;
    eventually(LONG, "the replica is attached", || async {
        one.enqueue(&[noop(json!({}))]).await.ok().map(|_| ())
    })
    .await;
    let mut on_replica = replica.conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("ops:{{{queue}}}:task:*"))
        .query(&mut on_replica)
        .unwrap();
    assert!(
        !keys.is_empty(),
        "the acknowledged submission is on the replica"
    );

    let two = waiting_store(&master.url(), queue, "2").await;
    let task = noop(json!({}));
    let err = two.enqueue(std::slice::from_ref(&task)).await.unwrap_err();
    assert!(err.to_string().contains("1 of 2 replicas"), "{err}");
    assert!(
        two.get(&task.task_id.to_string()).await.unwrap().is_some(),
        "written on the master"
    );

    let worker = Worker::builder(&master.url(), queue)
        .env("REDIS_MIN_REPLICAS_ACK", "2")
        .spawn()
        .await;
    let (status, body) = worker.submit(json!({"type": "noop"})).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.to_string().contains("REDIS_MIN_REPLICAS_ACK"),
        "{body}"
    );
    wait_completed(&one, 3, LONG).await;
    // The warning comes after the outcome's WAIT (1 s) timed out, so after the outcome itself.
    eventually(LONG, "the outcome's replication warning", || async {
        let logs = worker.logs();
        logs.contains("task outcome not yet on the replicas")
            .then_some(())
    })
    .await;
}
