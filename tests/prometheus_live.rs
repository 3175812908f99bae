//! The monitoring artefacts end to end: every Grafana dashboard query and every recording / alert
//! expression returns data from a real Prometheus scraping running workers.
//!
//! The test starts a private Redis, two `ops-worker run` processes (so `instance` tells two series
//! apart) and a private `prometheus` (1 s scrapes and rule evaluations) that scrapes them as job
//! `ops-worker` (with the pool's `service` and an `environment` label), itself and a private
//! Alertmanager (the repository's configuration), and loads `prometheus/rules/ops-worker.yml`.
//! It then submits a
//! small load touching every metric family — completed, failing, retried, panicking, delayed and
//! paused tasks, and a `check` task whose Vercel calls fail for want of a server — waits until
//! Prometheus has scraped the outcome, and queries Prometheus's `/api/v1/query` with:
//!
//! - every panel target of `grafana/dashboards/ops-worker.json`, as Grafana sends it for "all
//!   instances" of the job (`$instance` → `.*`, `$job` → [`JOB`], `$environment` →
//!   [`ENVIRONMENT`], `$__rate_interval` and `$__range` → [`RATE_INTERVAL`]);
//! - every recording-rule expression, as Prometheus itself loaded it (`/api/v1/rules`, so no YAML
//!   parser is needed and the text is exactly what Prometheus evaluates);
//! - every alert expression with each comparison given the `bool` modifier (see [`with_bool`]):
//!   a healthy system legitimately returns nothing for `x > 100`, so the filter is turned into a
//!   0/1 value per series, which is non-empty exactly when the compared series exist;
//! - every series selector inside any of those expressions on its own (see [`selectors`]), so that
//!   no `or vector(0)` fallback, `or` branch or `absent()` hides a metric the worker never exports.
//!
//! Each query is polled until it returns at least one sample (a `rate()` needs two scrapes), and the
//! failure message names every query still empty by panel title / rule name. Finally every rule
//! must report health `ok` (it evaluated without error).

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ops_worker::task::{NewTask, Priority, TaskRecord};
use serde_json::{Value, json};
use support::*;

const DASHBOARD: &str = "grafana/dashboards/ops-worker.json";
const RULES: &str = "prometheus/rules/ops-worker.yml";
/// The rules select `job="ops-worker"`; the dashboard accepts it too.
const JOB: &str = "ops-worker";
/// The dashboard's `$environment` for the workers of this test.
const ENVIRONMENT: &str = "live-test";
/// What `$__rate_interval` becomes. Any window holding two scrapes works for "returns data"
/// (Grafana's own value with 1 s scrapes would be 4 s); one minute keeps the whole load inside
/// the window for the life of the test, so rate panels also show non-zero values.
const RATE_INTERVAL: &str = "1m";
/// Deadline of each wait (queue settling, Prometheus catching up, queries answering). The long
/// windows' recording rules are subqueries over minute-aligned steps of the 5m recordings, so
/// they have data only once a minute boundary has passed after the first evaluation: up to ~60 s.
const WAIT: Duration = Duration::from_secs(90);

/// The load: how many tasks complete, how many end in the dead-letter set, how many attempts run.
const COMPLETED: u64 = 6;
const DEAD_LETTERED: u64 = 4;
const FAILED_ATTEMPTS: u64 = 5;

#[tokio::test]
async fn every_dashboard_query_and_rule_expression_returns_data_from_live_workers() {
    let started = Instant::now();
    let redis = RedisServer::start();
    let queue = "prometheus-live";
    let spawn = || {
        Worker::builder(&redis.url(), queue)
            .env("WORKER_CONCURRENCY", "2")
            .spawn()
    };
    let workers = [spawn().await, spawn().await];
    let ports: Vec<u16> = workers.iter().map(|w| w.port()).collect();
    let alertmanager = Alertmanager::start();
    let prometheus = Prometheus::start(&ports, alertmanager.port).await;

    // Both workers scraped, as two instances, before any task runs: the counters then grow between
    // scrapes and the rate panels show the load.
    prometheus
        .await_data(
            "both workers scraped",
            vec![Check::new(
                "two instances up",
                format!(r#"count(count by (instance) (ops_worker_up{{job="{JOB}"}} == 1)) == 2"#),
            )],
        )
        .await;

    set_maxmemory(&redis);
    let store = store(&redis.url(), queue).await;
    submit_load(&store).await;
    wait_for_queue_to_settle(&store).await;
    prometheus
        .await_data("the load, as Prometheus scraped it", load_checks())
        .await;

    let mut checks = Vec::new();
    for (title, ref_id, expr) in dashboard_queries() {
        checks.push(Check::new(
            format!("panel {title:?} {ref_id}"),
            substitute_variables(&expr),
        ));
    }
    let rules = prometheus.rules().await;
    assert!(
        rules.iter().any(|r| r.kind == "recording") && rules.iter().any(|r| r.kind == "alerting"),
        "Prometheus loaded no recording or no alerting rule from {RULES}: {rules:?}"
    );
    for rule in &rules {
        let query = if rule.kind == "alerting" {
            with_bool(&rule.query)
        } else {
            rule.query.clone()
        };
        checks.push(Check::new(
            format!("{} rule {}", rule.kind, rule.name),
            query,
        ));
    }
    checks.extend(selector_checks(&checks));
    prometheus
        .await_data("dashboard queries and rule expressions", checks)
        .await;
    prometheus.await_healthy_rules().await;
    eprintln!(
        "prometheus_live: all queries answered in {:?}",
        started.elapsed()
    );
}

// ------------------------------------------------------------------------------------------------
// the load

fn new_task(
    ty: &str,
    priority: &str,
    payload: Value,
    max_retries: u32,
    run_at: Option<DateTime<Utc>>,
) -> TaskRecord {
    NewTask {
        task_type: Some(ty.into()),
        priority: Some(priority.into()),
        payload: Some(payload),
        source: Some("prometheus-live".into()),
        max_retries: Some(max_retries),
        run_at: run_at.map(|t| t.to_rfc3339()),
        ..Default::default()
    }
    .validate(3, Utc::now())
    .expect("valid test task")
}

/// Touches every metric family: see the comments for what each task exercises.
async fn submit_load(store: &ops_worker::queue::QueueStore) {
    // P3 paused with a task pending: queue_paused, queue_pending{P3}, oldest_pending_age.
    store.pause(&[Priority::P3]).await.expect("pause P3");
    let mut tasks = vec![new_task("noop", "P3", json!({}), 0, None)];
    // Completed tasks in three priorities: tasks_total{completed}, task_duration, task_wait.
    for priority in ["P0", "P1", "P2"] {
        for _ in 0..2 {
            tasks.push(new_task("noop", priority, json!({"sleep_ms": 50}), 0, None));
        }
    }
    tasks.extend([
        // Fails once, dead-lettered: queue_dead_letter, the failure outcomes.
        new_task("noop", "P2", json!({"fail": true}), 0, None),
        // Fails, retried after a back-off (queue_retrying), fails again, dead-lettered.
        new_task("noop", "P1", json!({"fail": true}), 1, None),
        // A consumer that dies outside its handler: consumer_restarts_total.
        new_task("noop", "P2", json!({"exit_consumer": true}), 0, None),
        // Not due for an hour: queue_delayed.
        new_task(
            "noop",
            "P2",
            json!({}),
            0,
            Some(Utc::now() + chrono::Duration::hours(1)),
        ),
        // VERCEL_API_URL points at a closed port: vercel_requests_total{status_class="error"},
        // vercel_request_duration_seconds; dead-lettered after the client's transient retries.
        new_task("check", "P2", json!({"deployment_id": "dpl_x"}), 0, None),
    ]);
    store.enqueue(&tasks).await.expect("enqueue the load");
}

/// Every task that can finish has finished (as Redis sees it).
async fn wait_for_queue_to_settle(store: &ops_worker::queue::QueueStore) {
    eventually(
        WAIT,
        &format!(
            "{COMPLETED} completed, {DEAD_LETTERED} dead-lettered, 1 delayed, 1 paused P3 pending"
        ),
        || async {
            let s = store.stats().await.ok()?;
            (s.completed_total == COMPLETED
                && s.failed == DEAD_LETTERED
                && s.delayed == 1
                && s.pending.p3 == 1
                && s.in_flight == 0
                && s.retrying == 0)
                .then_some(())
        },
    )
    .await;
}

/// A maxmemory, so the Redis memory ratio (and RedisMemoryNearLimit's expression) has a value.
fn set_maxmemory(redis: &RedisServer) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1gb")
        .query(&mut redis.conn())
        .expect("CONFIG SET maxmemory");
}

/// The settled queue as Prometheus must see it (gauges are sampled every 5 s, then scraped).
fn load_checks() -> Vec<Check> {
    let attempts = COMPLETED + FAILED_ATTEMPTS;
    [
        (
            "completed tasks",
            format!(r#"sum(ops_worker_tasks_total{{outcome="completed"}}) == {COMPLETED}"#),
        ),
        // The fail-with-one-retry task's first attempt is `retried`; every attempt that ends in
        // the dead-letter set (two noop fails, the panic, the Vercel check) is `failed`.
        (
            "retried attempts",
            r#"sum(ops_worker_tasks_total{outcome="retried"}) == 1"#.to_string(),
        ),
        (
            "failed attempts",
            format!(
                r#"sum(ops_worker_tasks_total{{outcome="failed"}}) == {}"#,
                FAILED_ATTEMPTS - 1
            ),
        ),
        (
            "task durations",
            format!("sum(ops_worker_task_duration_seconds_count) == {attempts}"),
        ),
        (
            "task waits",
            format!("sum(ops_worker_task_wait_seconds_count) == {attempts}"),
        ),
        (
            "consumer restart",
            "sum(ops_worker_consumer_restarts_total) >= 1".to_string(),
        ),
        (
            "Vercel transport errors",
            r#"sum(ops_worker_vercel_requests_total{status_class="error"}) >= 1"#.to_string(),
        ),
        (
            "Vercel latencies",
            "sum(ops_worker_vercel_request_duration_seconds_count) >= 1".to_string(),
        ),
        (
            "dead letter",
            format!("max(ops_worker_queue_dead_letter) == {DEAD_LETTERED}"),
        ),
        ("delayed", "max(ops_worker_queue_delayed) == 1".to_string()),
        (
            "P3 paused",
            r#"max(ops_worker_queue_paused{priority="P3"}) == 1"#.to_string(),
        ),
        (
            "P3 pending",
            r#"max(ops_worker_queue_pending{priority="P3"}) == 1"#.to_string(),
        ),
    ]
    .into_iter()
    .map(|(what, query)| Check::new(what, query))
    .collect()
}

// ------------------------------------------------------------------------------------------------
// the dashboard

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (panel title, refId, expr) of every query target, rows' nested panels included.
fn dashboard_queries() -> Vec<(String, String, String)> {
    fn walk(list: &Value, out: &mut Vec<(String, String, String)>) {
        for panel in list.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?");
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push((
                    title.to_string(),
                    target["refId"].as_str().unwrap_or("?").to_string(),
                    target["expr"].as_str().expect("target expr").to_string(),
                ));
            }
            walk(&panel["panels"], out);
        }
    }
    let path = root().join(DASHBOARD);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard is valid JSON");
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    assert!(out.len() >= 20, "only {} dashboard queries", out.len());
    out
}

/// A dashboard query as Grafana sends it for "all instances" of the job and environment.
fn substitute_variables(expr: &str) -> String {
    let promql = expr
        .replace("${instance}", ".*")
        .replace("$instance", ".*")
        .replace("$job", JOB)
        .replace("$environment", ENVIRONMENT)
        .replace("$__rate_interval", RATE_INTERVAL)
        .replace("$__range", RATE_INTERVAL);
    assert!(!promql.contains('$'), "unknown variable in {expr}");
    promql
}

// ------------------------------------------------------------------------------------------------
// Prometheus

/// One query that must return at least one sample, and who uses it.
#[derive(Debug)]
struct Check {
    what: String,
    query: String,
}

impl Check {
    fn new(what: impl Into<String>, query: impl Into<String>) -> Self {
        Check {
            what: what.into(),
            query: query.into(),
        }
    }
}

/// One check per distinct series selector of the given queries, naming every query using it.
fn selector_checks(checks: &[Check]) -> Vec<Check> {
    let mut users: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for check in checks {
        for selector in selectors(&check.query) {
            users.entry(selector).or_default().push(&check.what);
        }
    }
    users
        .into_iter()
        .map(|(selector, users)| {
            Check::new(format!("series used by {}", users.join(", ")), selector)
        })
        .collect()
}

/// A rule as Prometheus loaded it.
#[derive(Debug)]
struct Rule {
    name: String,
    /// `recording` or `alerting`.
    kind: String,
    query: String,
    health: String,
    last_error: String,
}

/// A private `prometheus` scraping the workers every second and evaluating the repository's rules.
struct Prometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
    http: reqwest::Client,
}

impl Prometheus {
    async fn start(worker_ports: &[u16], alertmanager_port: u16) -> Self {
        let targets: Vec<String> = worker_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        // JSON strings are valid YAML scalars. `instance` keeps its default `host:port`: the
        // production relabelling keeps only the host, which would merge two local workers. The
        // workers carry the labels production's relabelling gives the pool (`service`,
        // `environment`); Prometheus scrapes itself (SELF_TARGET, filled in once its port is
        // known) and an Alertmanager, as in production, for the meta-alerts.
        let alertmanager = format!("127.0.0.1:{alertmanager_port}");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{am}]\n\
             scrape_configs:\n  - job_name: {JOB}\n    metrics_path: /metrics\n    \
             static_configs:\n      - targets: {targets}\n        \
             labels: {{service: ops-worker-pool-live, environment: {ENVIRONMENT}}}\n\
             \x20 - job_name: prometheus\n    static_configs:\n      - targets: [SELF_TARGET]\n\
             \x20 - job_name: alertmanager\n    static_configs:\n      - targets: [{am}]\n",
            rules = serde_json::to_string(&root().join(RULES)).expect("path as JSON"),
            targets = serde_json::to_string(&targets).expect("targets as JSON"),
            am = serde_json::to_string(&alertmanager).expect("target as JSON"),
        );
        // Prometheus cannot report a port-0 bind, so it gets a free port and, should another
        // process take it first, starts again on a fresh one (in a fresh directory).
        for _ in 0..5 {
            if let Some(prometheus) = Self::launch(&config).await {
                return prometheus;
            }
        }
        panic!("prometheus kept finding its port taken");
    }

    /// Start prometheus on a free port and wait until it is ready; `None` if the port was taken.
    async fn launch(config: &str) -> Option<Self> {
        let dir = scratch_dir("prometheus");
        let config_path = dir.join("prometheus.yml");
        let port = free_port();
        let config = config.replace("SELF_TARGET", &format!("127.0.0.1:{port}"));
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `prometheus` ({e}): apt-get install -y prometheus")
            });
        let mut prometheus = Prometheus {
            child,
            port,
            dir,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("http client"),
        };
        prometheus.wait_ready().await.then_some(prometheus)
    }

    /// Poll `/-/ready` until it answers; false if prometheus exited because its port was taken.
    async fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = self
                .http
                .get(self.url("/-/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return true;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                if self.logs().contains("address already in use") {
                    return false;
                }
                panic!("prometheus exited ({status}):\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let answer = self
            .http
            .get(self.url(path))
            .query(params)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let json: Value = answer.json().await.map_err(|e| e.to_string())?;
        if json["status"] == "success" {
            Ok(json["data"].clone())
        } else {
            Err(format!("{}: {}", json["errorType"], json["error"]))
        }
    }

    /// How many samples (or series) an instant query returns now.
    async fn samples(&self, query: &str) -> Result<usize, String> {
        let data = self.api("/api/v1/query", &[("query", query)]).await?;
        Ok(match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => data["result"].as_array().map_or(0, Vec::len),
            Some("scalar") | Some("string") => 1,
            other => return Err(format!("unexpected resultType {other:?}")),
        })
    }

    async fn rules(&self) -> Vec<Rule> {
        let data = self
            .api("/api/v1/rules", &[])
            .await
            .unwrap_or_else(|e| panic!("GET /api/v1/rules: {e}"));
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .map(|r| Rule {
                name: text(&r["name"]),
                kind: text(&r["type"]),
                query: text(&r["query"]),
                health: text(&r["health"]),
                last_error: text(&r["lastError"]),
            })
            .collect()
    }

    /// Polls every check until each has returned data once; on timeout fails naming every check
    /// still empty (or erroring).
    async fn await_data(&self, stage: &str, mut pending: Vec<Check>) {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut still = Vec::new();
            for check in pending {
                match self.samples(&check.query).await {
                    Ok(n) if n > 0 => {}
                    Ok(_) => still.push((check, "no data".to_string())),
                    Err(e) => still.push((check, e)),
                }
            }
            if still.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                let report: Vec<String> = still
                    .iter()
                    .map(|(c, why)| format!("- {} ({why}):\n    {}", c.what, c.query))
                    .collect();
                panic!(
                    "{stage}: {} quer{} still without data after {WAIT:?}:\n{}",
                    still.len(),
                    if still.len() == 1 { "y" } else { "ies" },
                    report.join("\n")
                );
            }
            pending = still.into_iter().map(|(c, _)| c).collect();
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every rule has been evaluated without error.
    async fn await_healthy_rules(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let unhealthy: Vec<String> = self
                .rules()
                .await
                .into_iter()
                .filter(|r| r.health != "ok")
                .map(|r| format!("{} ({}): {}", r.name, r.health, r.last_error))
                .collect();
            if unhealthy.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rules not healthy:\n{}",
                unhealthy.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A private Alertmanager with the repository's configuration: Prometheus sends it alerts and
/// scrapes it, so the meta-alerts' series exist. Its receivers' secret files do not exist, so a
/// notification fails (counted, as the meta-alert expects); nothing leaves the machine.
struct Alertmanager {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Alertmanager {
    fn start() -> Self {
        let dir = scratch_dir("alertmanager");
        let port = free_port();
        let log = std::fs::File::create(dir.join("alertmanager.log")).expect("alertmanager log");
        let child = Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                root().join("prometheus/alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `prometheus-alertmanager` ({e}): apt-get install -y prometheus-alertmanager"
                )
            });
        Alertmanager { child, port, dir }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("alertmanager files kept at {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("prometheus files kept at {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// PromQL, lexically (Prometheus 2.42 has no parse API): enough for the expressions of this repo

/// Keywords, binary operators and aggregators: identifiers that are never a metric name.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Index just past the string literal starting at `i`.
fn skip_string(b: &[u8], i: usize) -> usize {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() && b[j] != quote {
        if b[j] == b'\\' && quote != b'`' {
            j += 1;
        }
        j += 1;
    }
    (j + 1).min(b.len())
}

/// Index just past the bracket group (`{..}`, `[..]`, `(..)`) opening at `i`; strings skipped.
fn skip_group(b: &[u8], i: usize) -> usize {
    let (open, close) = (
        b[i],
        match b[i] {
            b'{' => b'}',
            b'[' => b']',
            _ => b')',
        },
    );
    let mut depth = 0;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'"' | b'\'' | b'`' => {
                j = skip_string(b, j);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    b.len()
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Every vector selector of an expression (`name{matchers}`, range and offset dropped), in order.
fn selectors(expr: &str) -> Vec<String> {
    let b = expr.as_bytes();
    let next_non_space = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => i = skip_string(b, i),
            // Range / subquery durations.
            b'[' => i = skip_group(b, i),
            // A selector without a metric name.
            b'{' => {
                let end = skip_group(b, i);
                out.push(expr[i..end].to_string());
                i = end;
            }
            // Numbers and durations (`0.95`, `5m`).
            c if c.is_ascii_digit() || c == b'.' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
            }
            c if is_ident(c) => {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let word = &expr[start..i];
                let lower = word.to_ascii_lowercase();
                let next = next_non_space(i);
                let followed_by = |c: u8| next < b.len() && b[next] == c;
                if LABEL_LISTS.contains(&lower.as_str()) {
                    if followed_by(b'(') {
                        i = skip_group(b, next);
                    }
                } else if KEYWORDS.contains(&lower.as_str()) || followed_by(b'(') {
                    // An operator, an aggregator or a function call.
                } else if followed_by(b'{') {
                    let end = skip_group(b, next);
                    let matchers = &expr[next..end];
                    out.push(format!("{word}{matchers}"));
                    i = end;
                } else {
                    out.push(word.to_string());
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The expression with the `bool` modifier on every comparison (`x > 100` → `x > bool 100`).
///
/// A comparison without `bool` is a filter: on a healthy system an alert expression such as
/// `ops_worker:queue_pending:max > 100` is rightly empty, which would prove nothing. With `bool`
/// it yields 0 or 1 for every series (or matched pair of series) it compares, so it returns data
/// exactly when the operands exist — including through `label_replace`, `or`, `and on (...)`.
fn with_bool(expr: &str) -> String {
    let b = expr.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len() + 16);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            // Label matchers (`!=`, `=~`), strings and durations hold no comparison.
            b'"' | b'\'' | b'`' | b'{' | b'[' => {
                let end = if b[i] == b'{' || b[i] == b'[' {
                    skip_group(b, i)
                } else {
                    skip_string(b, i)
                };
                out.extend_from_slice(&b[i..end]);
                i = end;
            }
            b'=' | b'!' | b'>' | b'<' => {
                let end = if b.get(i + 1) == Some(&b'=') {
                    i + 2
                } else {
                    i + 1
                };
                out.extend_from_slice(&b[i..end]);
                let rest = expr[end..].trim_start();
                let has_bool = rest.starts_with("bool")
                    && !rest.as_bytes().get(4).is_some_and(|&c| is_ident(c));
                if !has_bool {
                    out.extend_from_slice(b" bool");
                }
                i = end;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("still UTF-8")
}

#[test]
fn promql_helpers_understand_the_repositorys_expressions() {
    assert_eq!(
        selectors(
            r#"sum by (job, instance, type) (increase(ops_worker_task_duration_seconds_bucket{le="+Inf"}[10m])) - sum(x{a=~"b|c"} offset 5m)"#
        ),
        vec![
            r#"ops_worker_task_duration_seconds_bucket{le="+Inf"}"#,
            r#"x{a=~"b|c"}"#
        ]
    );
    assert_eq!(
        selectors(
            r#"avg_over_time(up{job="ops-worker"}[1h]) < 0.99 and on (job, instance) up{job="ops-worker"} or absent(up)"#
        ),
        vec![r#"up{job="ops-worker"}"#, r#"up{job="ops-worker"}"#, "up"]
    );
    assert_eq!(
        selectors(
            r#"label_replace(max by (job, instance) (ops_worker_task_running_longest_seconds) > 300, "signal", "running", "", "")"#
        ),
        vec!["ops_worker_task_running_longest_seconds"]
    );
    assert_eq!(
        selectors("ops_worker:tasks_failed:rate5m / ops_worker:tasks_finished:rate5m or vector(0)"),
        vec![
            "ops_worker:tasks_failed:rate5m",
            "ops_worker:tasks_finished:rate5m"
        ]
    );
    assert_eq!(
        selectors(r#"histogram_quantile(0.95, sum by (le) (rate(h_bucket{instance=~".*"}[1m])))"#),
        vec![r#"h_bucket{instance=~".*"}"#]
    );

    assert_eq!(with_bool("a:max > 100"), "a:max > bool 100");
    assert_eq!(
        with_bool(r#"min(s{status="running", x!="y"}) == 0 or up{job=~"a|b"} == bool 0"#),
        r#"min(s{status="running", x!="y"}) == bool 0 or up{job=~"a|b"} == bool 0"#
    );
    assert_eq!(
        with_bool(r#"avg_over_time(up[1h]) < 0.99 and on (job) up >= 1"#),
        "avg_over_time(up[1h]) < bool 0.99 and on (job) up >= bool 1"
    );
    assert_eq!(
        with_bool(r#"label_replace(x > 300, "signal", "a>b", "", "")"#),
        r#"label_replace(x > bool 300, "signal", "a>b", "", "")"#
    );
}
