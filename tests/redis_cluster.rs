//! Redis Cluster, with a real local 3-master cluster: two queues whose slots live on different
//! masters drain at once; one queue's slot is resharded to another master mid-load and nothing is
//! lost or run twice; doctor, `/health` and `/metrics` name the topology and the queue's master.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use ops_worker::api::auth::Role;
use ops_worker::config::{Config, Mode};
use ops_worker::queue::QueueStore;
use ops_worker::task::{TaskRecord, TaskStatus};
use reqwest::Method;
use serde_json::{Value, json};
use support::cluster::RedisCluster;
use support::*;

const LONG: Duration = Duration::from_secs(120);

/// A store on the cluster, as the worker builds it.
async fn cluster_store(cluster: &RedisCluster, queue: &str) -> QueueStore {
    let mut env = base_env(&cluster.url(), queue);
    env.insert("REDIS_CLUSTER_NODES".into(), cluster.nodes_env());
    let config = Config::from_vars(&env, Mode::Tool).expect("config");
    QueueStore::new(&config.redis, &config.queue)
        .await
        .expect("store")
}

/// A worker process on the cluster.
async fn cluster_worker(cluster: &RedisCluster, queue: &str) -> Worker {
    Worker::builder(&cluster.url(), queue)
        .env("REDIS_CLUSTER_NODES", cluster.nodes_env())
        .env("WORKER_CONCURRENCY", "4")
        .spawn()
        .await
}

/// `ops_worker_redis_topology_info` of `master`, once the worker's sampler has set it.
async fn topology_gauge(worker: &Worker, master: &str) -> String {
    let series =
        format!(r#"ops_worker_redis_topology_info{{topology="cluster",master="{master}"}}"#);
    eventually(LONG, &format!("{series} = 1"), || async {
        let text = worker.metrics_text().await?;
        (metric_sample(&text, &series) == Some(1.0)).then_some(text)
    })
    .await
}

/// Every task completed, and ran exactly as its record says: one `task.completed` event, and as
/// many claims (`task.started`) as the record counts attempts, not counting the claims a consumer
/// handed back unstarted (`task.requeued` "handed back", which refunds the attempt).
async fn assert_each_completed_once(q: &QueueStore, tasks: &[TaskRecord]) {
    let mut started: HashMap<String, u32> = HashMap::new();
    let mut completed: HashMap<String, u32> = HashMap::new();
    for e in q.events(100_000).await.unwrap() {
        let handed_back = e.data["reason"]
            .as_str()
            .is_some_and(|r| r.contains("handed back"));
        match e.event.as_str() {
            "task.started" => *started.entry(e.task_id).or_default() += 1,
            "task.requeued" if handed_back => *started.entry(e.task_id).or_default() -= 1,
            "task.completed" => *completed.entry(e.task_id).or_default() += 1,
            _ => {}
        }
    }
    for t in tasks {
        let id = t.task_id.to_string();
        let rec = q.get(&id).await.unwrap().expect("record kept");
        assert_eq!(rec.status, TaskStatus::Completed, "{id}");
        assert_eq!(completed.get(&id), Some(&1), "{id} completed once");
        assert_eq!(
            started.get(&id).copied(),
            Some(rec.attempts),
            "{id}: every run is an attempt on its record"
        );
    }
}

/// `/health` and `/metrics` of `worker` name the cluster and the master on `port`, INFO reached
/// that master, and idle consumers block on their own cluster connections without timing out.
async fn names_its_master(worker: &Worker, port: u16) {
    let master = format!("127.0.0.1:{port}");
    let health = worker.health().await;
    assert_eq!(health["redis_topology"], "cluster", "{health}");
    assert_eq!(health["redis_master"], master.as_str(), "{health}");
    let metrics = topology_gauge(worker, &master).await;
    // INFO memory reached the queue's master (a keyless command sent to every master would
    // not parse).
    let used = metric_sample(&metrics, "ops_worker_redis_memory_used_bytes");
    assert!(used.is_some_and(|b| b > 0.0), "{metrics}");
    // Idle consumers block on their own cluster connections without timing out.
    assert!(
        !worker.logs().contains("blocking wait failed"),
        "{}",
        worker.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_queues_on_different_masters_drain_at_once() {
    let cluster = RedisCluster::start();
    let ports = cluster.ports();
    let (qa, qb) = (
        cluster.queue_on(ports[0], "alpha"),
        cluster.queue_on(ports[1], "beta"),
    );
    let (slot_a, slot_b) = (cluster.queue_slot(&qa), cluster.queue_slot(&qb));
    assert_eq!(
        cluster.owner(slot_a),
        ports[0],
        "{qa} is on the first master"
    );
    assert_eq!(
        cluster.owner(slot_b),
        ports[1],
        "{qb} is on the second master"
    );

    let (sa, sb) = (
        cluster_store(&cluster, &qa).await,
        cluster_store(&cluster, &qb).await,
    );
    let ta: Vec<_> = (0..300).map(|_| noop(json!({"sleep_ms": 1}))).collect();
    let tb: Vec<_> = (0..300).map(|_| noop(json!({"sleep_ms": 1}))).collect();
    sa.enqueue(&ta).await.unwrap();
    sb.enqueue(&tb).await.unwrap();
    let (wa, wb) = (
        cluster_worker(&cluster, &qa).await,
        cluster_worker(&cluster, &qb).await,
    );
    wait_completed(&sa, 300, LONG).await;
    wait_completed(&sb, 300, LONG).await;
    assert_each_completed_once(&sa, &ta).await;
    assert_each_completed_once(&sb, &tb).await;

    // Records are readable over each worker's API.
    let viewer = token(Role::Viewer);
    for (worker, tasks) in [(&wa, &ta), (&wb, &tb)] {
        for t in tasks.iter().step_by(10) {
            let path = format!("/tasks/{}", t.task_id);
            let (status, body) = worker.call(Method::GET, &path, Some(&viewer), None).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["status"], "completed", "{body}");
        }
    }

    // /health and /metrics name the topology and the master each queue is on.
    for (worker, port) in [(&wa, ports[0]), (&wb, ports[1])] {
        names_its_master(worker, port).await;
    }

    // destroy (SCAN on the queue's master, then UNLINK) deletes every key of the queue.
    drop((wa, wb));
    assert!(sa.destroy().await.unwrap() > 0);
    let left: u64 = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(slot_a)
        .query(&mut cluster.nodes[0].conn())
        .unwrap();
    assert_eq!(left, 0, "no key of {qa} is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_a_queue_slot_mid_load_loses_and_repeats_nothing() {
    let cluster = RedisCluster::start();
    let ports = cluster.ports();
    let queue = cluster.queue_on(ports[0], "moving");
    let slot = cluster.queue_slot(&queue);
    let q = cluster_store(&cluster, &queue).await;
    let mut tasks: Vec<_> = (0..1_500).map(|_| noop(json!({"sleep_ms": 2}))).collect();
    q.enqueue(&tasks).await.unwrap();
    let mut worker = cluster_worker(&cluster, &queue).await;
    topology_gauge(&worker, &format!("127.0.0.1:{}", ports[0])).await;
    eventually(LONG, "some tasks done before the move", || async {
        (q.stats().await.ok()?.completed_total >= 200).then_some(())
    })
    .await;

    // Move the slot while the worker drains and more tasks arrive.
    let late: Vec<_> = (0..300).map(|_| noop(json!({"sleep_ms": 1}))).collect();
    let submitter = {
        let (q, late) = (q.clone(), late.clone());
        tokio::spawn(async move {
            for chunk in late.chunks(10) {
                q.enqueue(chunk).await.expect("enqueue during the move");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let to = ports[1];
    let moved = tokio::task::spawn_blocking(move || {
        let moved = cluster.move_slot(slot, to);
        (cluster, moved)
    });
    let (cluster, moved) = moved.await.unwrap();
    assert!(moved > 5, "the queue's keys moved ({moved})");
    submitter.await.unwrap();
    assert_eq!(
        cluster.owner(slot),
        ports[1],
        "the slot is on the second master"
    );

    tasks.extend(late);
    wait_completed(&q, tasks.len() as u64, LONG).await;
    assert_each_completed_once(&q, &tasks).await;
    assert_eq!(q.stats().await.unwrap().completed_total, tasks.len() as u64);
    assert!(worker.alive(), "the worker survived the resharding");
    let new_master = format!("127.0.0.1:{}", ports[1]);
    assert_eq!(q.redis_master().await, Some(new_master.clone()));
    let metrics = topology_gauge(&worker, &new_master).await;
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("ops_worker_redis_topology_info{"))
        .collect();
    assert_eq!(series.len(), 1, "only the new master's series: {series:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_the_cluster_and_the_queue_master() {
    let cluster = RedisCluster::start();
    let ports = cluster.ports();
    let queue = cluster.queue_on(ports[2], "doc");
    let nodes = cluster.nodes_env();
    let out = cli(
        &cluster.url(),
        &queue,
        &[("REDIS_CLUSTER_NODES", nodes.as_str())],
        &["doctor", "--json"],
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |name: &str| doctor_check(&report, name);
    let topology = row("redis topology");
    assert_eq!(topology["status"], "ok", "{report}");
    let detail = topology["detail"].as_str().unwrap();
    assert!(detail.starts_with("cluster"), "{report}");
    assert!(
        detail.contains(&format!("127.0.0.1:{}", ports[2])),
        "{report}"
    );
    for name in ["redis reachable", "redis writable", "redis eviction policy"] {
        assert_eq!(row(name)["status"], "ok", "{name}: {report}");
    }

    // Sentinel and Cluster at once is refused, naming both.
    let both = cli(
        &cluster.url(),
        &queue,
        &[
            ("REDIS_CLUSTER_NODES", nodes.as_str()),
            ("REDIS_SENTINELS", "127.0.0.1:26379"),
            ("REDIS_SENTINEL_MASTER", "m"),
        ],
        &["stats"],
    );
    assert_eq!(both.status.code(), Some(2), "{both:?}");
    let err = String::from_utf8_lossy(&both.stderr);
    assert!(
        err.contains("REDIS_SENTINELS") && err.contains("REDIS_CLUSTER_NODES"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_while_the_cluster_is_down_works_once_it_is_back() {
    let mut cluster = RedisCluster::start();
    let queue = cluster.queue_on(cluster.ports()[1], "late");
    cluster.kill();
    let mut worker = cluster_worker(&cluster, &queue).await;
    let health = worker.health().await;
    assert_eq!(health["redis"], "down", "{health}");
    cluster.restart();
    let q = cluster_store(&cluster, &queue).await;
    let tasks: Vec<_> = (0..50).map(|_| noop(json!({}))).collect();
    eventually(LONG, "the cluster takes submissions again", || async {
        q.enqueue(&tasks).await.ok()
    })
    .await;
    wait_completed(&q, 50, LONG).await;
    assert_each_completed_once(&q, &tasks).await;
    assert!(worker.alive(), "the worker waited for its cluster");
}

/// The `ACL SETUSER ops-worker` lines of docs/configuration.md (the minimal user, then the
/// cluster's additions), for queue `queue` and password `password`.
fn documented_acls(queue: &str, password: &str) -> Vec<Vec<String>> {
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    docs.lines()
        .filter(|l| l.starts_with("ACL SETUSER ops-worker "))
        .map(|l| {
            l.replace("{default}", &format!("{{{queue}}}"))
                .replace("CHANGE-ME", password)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_acl_user_works_on_a_cluster() {
    let cluster = RedisCluster::start();
    let queue = cluster.queue_on(cluster.ports()[0], "acl");
    let acls = documented_acls(&queue, "acl-pass-7d1e");
    assert_eq!(
        acls.len(),
        2,
        "the minimal user and the cluster's additions"
    );
    for node in &cluster.nodes {
        let mut admin = node.conn();
        for acl in &acls {
            let _: () = redis::cmd(&acl[0])
                .arg(&acl[1..])
                .query(&mut admin)
                .unwrap();
        }
    }
    let url = format!(
        "redis://ops-worker:acl-pass-7d1e@127.0.0.1:{}",
        cluster.ports()[0]
    );
    let worker = Worker::builder(&url, &queue)
        .env("REDIS_CLUSTER_NODES", cluster.nodes_env())
        .spawn()
        .await;
    let q = cluster_store(&cluster, &queue).await;
    let tasks: Vec<_> = (0..20).map(|_| noop(json!({}))).collect();
    q.enqueue(&tasks).await.unwrap();
    wait_completed(&q, 20, LONG).await;
    let health = worker.health().await;
    let master = format!("127.0.0.1:{}", cluster.ports()[0]);
    assert_eq!(health["redis_master"], master.as_str(), "{health}");
    let logs = worker.logs();
    assert!(
        !logs.contains("NOPERM") && !logs.contains("no permissions"),
        "a command or key the ACL lacks:\n{logs}"
    );
}
