//! The monitoring artefacts (Prometheus scrape config and rules, Alertmanager routing, the Grafana
//! dashboard, the metrics reference), proven with the real tools rather than by reading them:
//!
//! - `prometheus/prometheus.yml` and `prometheus/rules/*.yml` pass `promtool check`, and the rule unit
//!   tests pass `promtool test rules`: `prometheus/tests/ops-worker.test.yml` shows every alert
//!   firing and not firing, `prometheus/tests/week.test.yml` replays a week at 15 s scrapes and
//!   probes every page at every probe time;
//! - a real `prometheus` loads the rules; from its `/api/v1/rules` answer every alert is checked for
//!   severity, summary, description and a runbook_url whose anchor is a heading of
//!   `docs/runbooks.md`, and routed through `amtool config routes test`;
//! - `prometheus/alertmanager.yml` passes `amtool check-config` (it holds no secret: PagerDuty and
//!   Slack credentials are `*_file` paths, which amtool does not need to exist) and routes critical
//!   alerts to PagerDuty and Slack, warnings to Slack only, the Watchdog to the heartbeat; a real
//!   Alertmanager applies its inhibit rules so one incident pages once;
//! - every query of `grafana/dashboards/ops-worker.json` parses (`promtool check rules` on a
//!   generated rule file), uses the `${ds}`, `$environment`, `$job` and `$instance` variables,
//!   aggregates queue-wide gauges with `max` and counts over a fixed window or `$__range`, never
//!   one that changes with the zoom;
//! - every `ops_worker_*` metric used by the rules and the dashboard is documented in
//!   `docs/metrics.md`, and the dashboard shows every documented metric.
//!
//! The tools come from Debian's `prometheus` and `prometheus-alertmanager` packages. A missing tool
//! fails the test with the install command; nothing is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

const INSTALL_HINT: &str = "apt-get install -y prometheus prometheus-alertmanager";
const RUNBOOK_URL_PREFIX: &str =
    "https://github.com/ops-worker/ops-worker/blob/main/docs/runbooks.md#";
const RULES: &str = "prometheus/rules/ops-worker.yml";
/// One scenario per alert.
const RULE_TESTS: &str = "prometheus/tests/ops-worker.test.yml";
/// A replayed week at the production scrape interval: exactly the expected pages.
const WEEK_TEST: &str = "prometheus/tests/week.test.yml";
const ALERTMANAGER: &str = "prometheus/alertmanager.yml";
const DASHBOARD: &str = "grafana/dashboards/ops-worker.json";
const PAGERDUTY_RECEIVER: &str = "pagerduty-critical";
const SLACK_RECEIVER: &str = "slack-ops-agent-alerts";
const HEARTBEAT_RECEIVER: &str = "heartbeat";

// ------------------------------------------------------------------------------------------------
// helpers: files, tools, scratch directories

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A command for one of the Prometheus tools, failing loudly when it is not installed.
fn tool(name: &str) -> Command {
    match Command::new(name).arg("--version").output() {
        Ok(_) => {
            let mut cmd = Command::new(name);
            cmd.current_dir(root());
            cmd
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`{name}` is not installed (needed by this test): run `{INSTALL_HINT}`")
        }
        Err(e) => panic!("cannot run `{name}`: {e}"),
    }
}

/// Runs a command, asserts it succeeded, returns stdout + stderr.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let text = output_text(&out);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{text}",
        out.status
    );
    text
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ops-artefacts-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ------------------------------------------------------------------------------------------------
// helpers: the rules as a real Prometheus loads them

/// `/api/v1/rules` of a real Prometheus that loaded `prometheus/rules/*.yml` (started once, then
/// stopped): the groups, with every rule's name, query, labels and annotations as parsed.
fn loaded_rule_groups() -> &'static Vec<Value> {
    static GROUPS: OnceLock<Vec<Value>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        let scratch = Scratch::new("prometheus");
        let rules_glob = root().join("prometheus/rules/*.yml");
        let config = format!(
            "global:\n  evaluation_interval: 1h\nrule_files:\n  - {}\n",
            serde_json::to_string(&rules_glob.to_string_lossy()).unwrap()
        );
        let config_path = scratch.write("prometheus.yml", &config);
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = tool("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                scratch.0.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start prometheus");
        let mut server = KillOnDrop(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(port, "/-/ready").is_none() {
            if let Ok(Some(status)) = server.0.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = server.0.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("prometheus exited ({status}) before it was ready:\n{err}");
            }
            assert!(Instant::now() < deadline, "prometheus not ready after 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let body = http_get(port, "/api/v1/rules").expect("GET /api/v1/rules");
        let json: Value = serde_json::from_str(&body).expect("rules API answers JSON");
        let groups = json["data"]["groups"]
            .as_array()
            .expect("data.groups")
            .clone();
        assert!(
            !groups.is_empty(),
            "prometheus loaded no rule group: {body}"
        );
        groups
    })
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Body of a 200 answer to `GET path` on 127.0.0.1:port, None otherwise (HTTP/1.0: no chunking).
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.lines()
        .next()
        .filter(|status| status.contains(" 200 "))
        .map(|_| body.to_string())
}

fn loaded_rules(kind: &str) -> Vec<&'static Value> {
    loaded_rule_groups()
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .filter(|r| r["type"] == kind)
        .collect()
}

fn alert_name(alert: &Value) -> &str {
    alert["name"].as_str().expect("alert name")
}

// ------------------------------------------------------------------------------------------------
// helpers: markdown, metric names, dashboard

/// GitHub's anchor for a markdown heading: lower case, punctuation dropped, spaces to hyphens.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Heading text by anchor, for every `#`..`######` heading of a markdown file.
fn headings(markdown: &str) -> BTreeMap<String, String> {
    markdown
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .map(|h| (github_anchor(&h), h))
        .collect()
}

/// Documented metrics of docs/metrics.md: name -> scope (`instance` or `queue`).
fn documented_metrics() -> BTreeMap<String, String> {
    let mut metrics = BTreeMap::new();
    for line in read("docs/metrics.md").lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 6 || !cells[1].starts_with('`') {
            continue;
        }
        let scope = cells[4].to_string();
        for name in cells[1].split(',').map(|n| n.trim().trim_matches('`')) {
            if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                metrics.insert(name.to_string(), scope.clone());
            }
        }
    }
    assert!(
        metrics.len() > 20,
        "docs/metrics.md table not understood: {metrics:?}"
    );
    metrics
}

/// Identifiers of a PromQL expression with their byte offsets (recording-rule names with `:`
/// are one identifier, so `ops_worker:foo` is never mistaken for a metric).
fn identifiers(expr: &str) -> Vec<(usize, &str)> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in expr
        .char_indices()
        .chain(std::iter::once((expr.len(), ' ')))
    {
        match (start, is_ident(c)) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                out.push((s, &expr[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Metric names (histogram suffixes stripped) of the given prefixes used by an expression.
fn metric_names(expr: &str, prefixes: &[&str]) -> Vec<(usize, String)> {
    identifiers(expr)
        .into_iter()
        .filter(|(_, id)| prefixes.iter().any(|p| id.starts_with(p)))
        .map(|(at, id)| {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| id.strip_suffix(s))
                .unwrap_or(id);
            (at, base.to_string())
        })
        .collect()
}

/// True when the metric at `at` is the direct argument of `max(...)` or `max by|without (..) (...)`.
fn is_max_aggregated(expr: &str, at: usize) -> bool {
    let Some(before) = expr[..at].trim_end().strip_suffix('(') else {
        return false;
    };
    let mut before = before.trim_end();
    if let Some(clause) = before.strip_suffix(')') {
        let Some(open) = clause.rfind('(') else {
            return false;
        };
        let keyword = clause[..open].trim_end();
        let Some(rest) = keyword
            .strip_suffix("by")
            .or_else(|| keyword.strip_suffix("without"))
        else {
            return false;
        };
        before = rest.trim_end();
    }
    before.ends_with("max")
}

/// Label matchers written right after the metric at `at`, e.g. `instance=~"$instance"`.
fn matchers_after(expr: &str, at: usize, name_len: usize) -> &str {
    let rest = &expr[at + name_len..];
    let suffix_len = ["_bucket", "_sum", "_count"]
        .iter()
        .find(|s| rest.starts_with(*s))
        .map_or(0, |s| s.len());
    let rest = &rest[suffix_len..];
    match rest.strip_prefix('{') {
        Some(inner) => inner.split('}').next().unwrap_or(""),
        None => "",
    }
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).expect("dashboard is valid JSON")
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// (panel title, refId, expr) of every query target of the dashboard.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String, String)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            p["targets"].as_array().into_iter().flatten().map(move |t| {
                (
                    title.clone(),
                    t["refId"].as_str().unwrap_or("?").to_string(),
                    t["expr"].as_str().expect("target expr").to_string(),
                )
            })
        })
        .collect()
}

/// A dashboard query as Prometheus would receive it for "all instances" of the production job.
fn substitute_variables(expr: &str) -> String {
    expr.replace("${instance}", ".*")
        .replace("$instance", ".*")
        .replace("$job", "ops-worker")
        .replace("$environment", "production")
        .replace("$__rate_interval", "5m")
        .replace("$__range", "6h")
}

// ------------------------------------------------------------------------------------------------
// Prometheus configuration and rules

#[test]
fn prometheus_config_is_valid_and_loads_the_rules() {
    let out = run_ok(tool("promtool").args(["check", "config", "prometheus/prometheus.yml"]));
    assert!(
        out.contains("is valid prometheus config file syntax"),
        "{out}"
    );
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
    let config = read("prometheus/prometheus.yml");
    for needle in [
        "ops-worker-pool-discovery # render: POOL_DISCOVERY",
        "job_name: ops-worker",
        "job_name: ops-worker-local",
        "localhost:8080",
        "alertmanager:9093 # render: ALERTMANAGER_HOSTPORT",
        "job_name: prometheus",
        "job_name: alertmanager",
        "target_label: environment",
        "environment: development",
    ] {
        assert!(config.contains(needle), "prometheus.yml lacks {needle}");
    }
}

#[test]
fn alert_rules_are_valid() {
    let out = run_ok(tool("promtool").args(["check", "rules", RULES]));
    assert!(out.contains("SUCCESS"), "{out}");
    let total = loaded_rules("alerting").len() + loaded_rules("recording").len();
    assert!(out.contains(&format!("{total} rules found")), "{out}");
}

#[test]
fn alert_rule_unit_tests_pass() {
    let out = run_ok(tool("promtool").args(["test", "rules", RULE_TESTS]));
    assert!(out.contains("SUCCESS"), "{out}");
    assert!(!out.contains("FAILED"), "{out}");
}

/// The replayed week: 15 s scrapes, quiet nights, bursts, deploy waves, a scale-out, a scrape gap,
/// a deliberate stop and two incidents; every page is probed at every probe time.
#[test]
fn a_replayed_week_pages_exactly_for_the_two_incidents() {
    let week = read(WEEK_TEST);
    assert!(
        week.contains("    interval: 15s\n"),
        "{WEEK_TEST}: not at 15 s"
    );
    let pages: Vec<&str> = loaded_rules("alerting")
        .into_iter()
        .filter(|a| a["labels"]["severity"] == "critical")
        .map(alert_name)
        .collect();
    assert!(pages.len() >= 3, "pages: {pages:?}");
    // Every probe time checks every page, and the two incidents page.
    let mut probes: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut firing = BTreeSet::new();
    let lines: Vec<&str> = week.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(at) = line.split("eval_time: ").nth(1) else {
            continue;
        };
        let at = at.split([',', ' ']).next().unwrap_or_default().to_string();
        // `- {eval_time: .., alertname: .., exp_alerts: []}` on one line, or a block whose next
        // lines are `alertname:` and `exp_alerts:` with its `- exp_labels:` entries.
        let entry = if line.contains("alertname:") {
            line.to_string()
        } else {
            lines[i + 1..(i + 4).min(lines.len())].join("\n")
        };
        let Some(name) = pages.iter().find(|p| {
            entry.contains(&format!("alertname: {p},"))
                || entry.contains(&format!("alertname: {p}\n"))
        }) else {
            continue;
        };
        if entry.contains("exp_labels:") {
            firing.insert(*name);
        }
        probes.entry(at).or_default().insert(name);
    }
    assert!(probes.len() >= 30, "only {} probe times", probes.len());
    for (at, probed) in &probes {
        for page in &pages {
            assert!(
                probed.contains(page),
                "{WEEK_TEST}: {page} not probed at {at}"
            );
        }
    }
    for page in [
        "WorkerDown",
        "TaskErrorBudgetFastBurn",
        "PoolAvailabilityFastBurn",
    ] {
        assert!(firing.contains(page), "{WEEK_TEST}: {page} never pages");
    }
    let out = run_ok(tool("promtool").args(["test", "rules", WEEK_TEST]));
    assert!(out.contains("SUCCESS"), "{out}");
    assert!(!out.contains("FAILED"), "{out}");
}

/// Each alert has a unit test where it fires and one where it must not.
#[test]
fn every_alert_is_unit_tested_firing_and_not_firing() {
    let tests = read(RULE_TESTS);
    let lines: Vec<&str> = tests.lines().collect();
    let mut firing = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((_, rest)) = line.split_once("alertname:") else {
            continue;
        };
        let name = rest
            .trim()
            .split([',', '}', ' '])
            .next()
            .unwrap_or_default()
            .to_string();
        let window = lines[i..(i + 3).min(lines.len())].join("\n");
        if window.contains("exp_alerts: []") {
            silent.insert(name);
        } else if window.contains("exp_labels:") {
            firing.insert(name);
        }
    }
    let alerts: Vec<&str> = loaded_rules("alerting")
        .into_iter()
        .map(alert_name)
        .collect();
    assert!(
        alerts.len() >= 20,
        "expected the guide's alerts, the objectives and the meta-alerts, got {alerts:?}"
    );
    for alert in alerts {
        assert!(
            firing.contains(alert),
            "{RULE_TESTS}: no test shows {alert} firing"
        );
        // The Watchdog fires always, by design.
        assert!(
            silent.contains(alert) || alert == "Watchdog",
            "{RULE_TESTS}: no test shows {alert} not firing"
        );
    }
}

#[test]
fn every_alert_has_severity_summary_description_and_runbook() {
    let runbook_headings = headings(&read("docs/runbooks.md"));
    for alert in loaded_rules("alerting") {
        let name = alert_name(alert);
        let severity = alert["labels"]["severity"].as_str().unwrap_or_default();
        // The Watchdog is for the dead man's switch, never for a human.
        let allowed: &[&str] = if name == "Watchdog" {
            &["none"]
        } else {
            &["critical", "warning"]
        };
        assert!(allowed.contains(&severity), "{name}: severity {severity:?}");
        let annotations = &alert["annotations"];
        for key in ["summary", "description"] {
            let text = annotations[key].as_str().unwrap_or_default();
            assert!(!text.trim().is_empty(), "{name}: no {key}");
        }
        let description = annotations["description"].as_str().unwrap_or_default();
        assert!(
            description.contains("$value") || description.contains("$labels"),
            "{name}: the description should show the value or labels: {description}"
        );
        let url = annotations["runbook_url"].as_str().unwrap_or_default();
        let anchor = url.strip_prefix(RUNBOOK_URL_PREFIX).unwrap_or_else(|| {
            panic!("{name}: runbook_url {url:?} is not under {RUNBOOK_URL_PREFIX}")
        });
        assert_eq!(
            runbook_headings.get(anchor).map(String::as_str),
            Some(name),
            "{name}: docs/runbooks.md needs a heading `## {name}` (anchor #{anchor})"
        );
    }
}

/// Every alert threshold the operations guide names (worker not running, queue depth over 100, error
/// rate over 5 %, CPU and memory over 80 %, ...) has its alert, with that comparison and severity.
#[test]
fn the_guides_thresholds_all_have_an_alert() {
    let alerts: BTreeMap<&str, &Value> = loaded_rules("alerting")
        .into_iter()
        .map(|a| (alert_name(a), a))
        .collect();
    for (name, threshold, severity) in [
        // "Worker Down — status != running": a page when no pool instance can work, a warning
        // for an instance's pool in another status (a deliberate stop among them)
        ("WorkerDown", "== 0", "critical"),
        ("PoolNotRunning", "stopped|stopping|error", "warning"),
        ("HighQueueDepth", "> 100", "warning"),
        // "Failed tasks < 5%": the objective, its fast burn pages, the 5% itself is a ticket
        ("TaskErrorBudgetFastBurn", "(14.4 * 0.05)", "critical"),
        ("TaskErrorBudgetSlowBurn", "(6 * 0.05)", "warning"),
        ("HighErrorRate", "> 0.05", "warning"),
        ("HighCPU", "> 0.8", "warning"),
        ("HighMemory", "> 0.8", "warning"),
        // "Processing tasks < 10" became saturation (the recording rule keeps the count)
        ("PoolSaturated", "> 0.9", "warning"),
        ("SlowTask", "> 300", "warning"),
        ("RedisErrors", "> 0", "warning"),
        ("VercelApiErrors", "> 0.01", "warning"),
        // "Uptime > 99%": the objective
        ("PoolAvailabilityFastBurn", "(14.4 * 0.01)", "critical"),
        ("PoolAvailabilitySlowBurn", "(6 * 0.01)", "warning"),
        ("UptimeBelowObjective", "< 0.99", "warning"),
    ] {
        let alert = alerts
            .get(name)
            .unwrap_or_else(|| panic!("no alert {name}"));
        let query = alert["query"].as_str().unwrap_or_default();
        assert!(
            query.contains(threshold),
            "{name}: {query} lacks {threshold}"
        );
        assert_eq!(alert["labels"]["severity"], severity, "{name}");
    }
    let recorded: BTreeSet<&str> = loaded_rules("recording")
        .into_iter()
        .map(alert_name)
        .collect();
    for record in [
        "job:ops_worker_queue_in_flight:max",
        "job:ops_worker_tasks_error_ratio:rate5m",
        "job:ops_worker_pool_availability:ratio3d",
    ] {
        assert!(recorded.contains(record), "no recording rule {record}");
    }
}

// ------------------------------------------------------------------------------------------------
// Alertmanager

#[test]
fn alertmanager_config_is_valid_and_holds_no_secret() {
    // amtool does not read *_file secrets: the paths need not exist for the check.
    let out = run_ok(tool("amtool").args(["check-config", ALERTMANAGER]));
    assert!(out.contains("SUCCESS"), "{out}");
    assert!(out.contains("3 receivers"), "{out}");
    assert!(out.contains("4 inhibit rules"), "{out}");
    let config = read(ALERTMANAGER);
    for file in [
        "routing_key_file: /etc/alertmanager/secrets/pagerduty_routing_key",
        "api_url_file: /etc/alertmanager/secrets/slack_webhook_url",
        "channel: '#ops-agent-alerts'",
        "url: http://127.0.0.1:9/heartbeat-url-not-configured # render: HEARTBEAT_URL",
    ] {
        assert!(config.contains(file), "alertmanager.yml lacks {file}");
    }
    for secret in [
        "routing_key:",
        "service_key:",
        "api_url:",
        "slack_api_url:",
        "hooks.slack.com",
    ] {
        assert!(
            !config.contains(secret),
            "alertmanager.yml must not hold secrets ({secret})"
        );
    }
}

/// Receivers `amtool config routes test` resolves for a label set, verified by amtool itself.
fn routed_receivers(labels: &[&str], expected: &[&str]) -> String {
    let out = run_ok(
        tool("amtool")
            .args(["config", "routes", "test"])
            .arg(format!("--config.file={ALERTMANAGER}"))
            .arg(format!("--verify.receivers={}", expected.join(",")))
            .args(labels),
    );
    out.lines()
        .find(|l| !l.starts_with("Warning:") && !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn alertmanager_routes_critical_to_pagerduty_and_slack_warning_to_slack() {
    let critical = routed_receivers(
        &["severity=critical", "alertname=HighErrorRate"],
        &[PAGERDUTY_RECEIVER, SLACK_RECEIVER],
    );
    assert_eq!(critical, format!("{PAGERDUTY_RECEIVER},{SLACK_RECEIVER}"));
    let warning = routed_receivers(&["severity=warning"], &[SLACK_RECEIVER]);
    assert_eq!(warning, SLACK_RECEIVER);
    // The Watchdog reaches the dead man's switch and nobody else.
    let watchdog = routed_receivers(
        &["alertname=Watchdog", "severity=none"],
        &[HEARTBEAT_RECEIVER],
    );
    assert_eq!(watchdog, HEARTBEAT_RECEIVER);

    let config = read(ALERTMANAGER);
    let receiver_block = |name: &str| {
        let start = config
            .find(&format!("- name: {name}"))
            .unwrap_or_else(|| panic!("no receiver {name}"));
        let rest = &config[start + 1..];
        rest[..rest.find("\n  - name:").unwrap_or(rest.len())].to_string()
    };
    assert!(receiver_block(PAGERDUTY_RECEIVER).contains("pagerduty_configs:"));
    assert!(receiver_block(SLACK_RECEIVER).contains("slack_configs:"));
    assert!(!receiver_block(SLACK_RECEIVER).contains("pagerduty_configs:"));
    assert!(receiver_block(HEARTBEAT_RECEIVER).contains("webhook_configs:"));
    let heartbeat_route = &config[config
        .find("alertname=\"Watchdog\"")
        .expect("Watchdog route")..];
    assert!(
        heartbeat_route[..heartbeat_route
            .find("- matchers:")
            .unwrap_or(heartbeat_route.len())]
            .contains("repeat_interval: 1m"),
        "the Watchdog route must repeat every minute"
    );
}

#[test]
fn every_alert_reaches_the_receivers_of_its_severity() {
    for alert in loaded_rules("alerting") {
        let name = alert_name(alert);
        let severity = alert["labels"]["severity"].as_str().unwrap_or_default();
        let expected: &[&str] = match severity {
            _ if name == "Watchdog" => &[HEARTBEAT_RECEIVER],
            "critical" => &[PAGERDUTY_RECEIVER, SLACK_RECEIVER],
            _ => &[SLACK_RECEIVER],
        };
        let labels = [
            format!("alertname={name}"),
            format!("severity={severity}"),
            "instance=10.0.0.1".to_string(),
        ];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        assert_eq!(
            routed_receivers(&labels, expected),
            expected.join(","),
            "{name}"
        );
    }
}

/// `POST path` with a JSON body on 127.0.0.1:port; true on a 2xx answer.
fn http_post_json(port: u16, path: &str, body: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().is_some_and(|l| l.contains(" 20"))
}

/// A real Alertmanager with `prometheus/alertmanager.yml` on a free port, ready; its receivers'
/// secret files do not exist, so nothing is ever delivered.
fn start_alertmanager(scratch: &Scratch) -> (KillOnDrop, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let child = tool("prometheus-alertmanager")
        .arg(format!(
            "--config.file={}",
            root().join(ALERTMANAGER).display()
        ))
        .arg(format!(
            "--storage.path={}",
            scratch.0.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let server = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(port, "/-/ready").is_none() {
        assert!(
            Instant::now() < deadline,
            "alertmanager not ready after 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port)
}

/// Posts alerts (a JSON array) and polls `GET /api/v2/alerts` until it lists `count` of them.
fn post_and_list_alerts(port: u16, body: &str, count: usize) -> Vec<Value> {
    assert!(
        http_post_json(port, "/api/v2/alerts", body),
        "POST /api/v2/alerts failed"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed: Vec<Value> = http_get(port, "/api/v2/alerts")
            .and_then(|b| serde_json::from_str(&b).ok())
            .unwrap_or_default();
        if listed.len() == count {
            return listed;
        }
        assert!(Instant::now() < deadline, "alertmanager lists {listed:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Alerts of four incidents, one job each: (job, alertname, severity, slo, instance, inhibited?).
const INCIDENTS: [(&str, &str, &str, &str, &str, bool); 13] = [
    ("pool-down", "WorkerDown", "critical", "", "", false),
    (
        "pool-down",
        "PoolAvailabilityFastBurn",
        "critical",
        "pool-availability",
        "",
        true,
    ),
    ("pool-down", "HighQueueDepth", "warning", "", "", true),
    (
        "failing",
        "TaskErrorBudgetFastBurn",
        "critical",
        "task-success",
        "",
        false,
    ),
    (
        "failing",
        "TaskErrorBudgetSlowBurn",
        "warning",
        "task-success",
        "",
        true,
    ),
    (
        "failing",
        "HighErrorRate",
        "warning",
        "task-success",
        "",
        true,
    ),
    ("failing", "DeadLetterGrowing", "warning", "", "", true),
    ("failing", "HighCPU", "warning", "", "10.0.0.1", false),
    ("redis", "RedisDown", "critical", "", "", false),
    ("redis", "WorkerDown", "critical", "", "", true),
    ("redis", "RedisErrors", "warning", "", "10.0.0.1", true),
    // another job's fast burn silences nothing here
    (
        "other",
        "TaskErrorBudgetSlowBurn",
        "warning",
        "task-success",
        "",
        false,
    ),
    (
        "other",
        "PoolAvailabilitySlowBurn",
        "warning",
        "pool-availability",
        "",
        false,
    ),
];

/// One incident pages once: a real Alertmanager with `prometheus/alertmanager.yml` receives the
/// alerts of four incidents (one job each) and reports which ones its inhibit rules silence.
#[test]
fn alertmanager_inhibits_the_consequences_of_an_incident() {
    let alerts = INCIDENTS;
    let scratch = Scratch::new("alertmanager");
    let (_server, port) = start_alertmanager(&scratch);
    let body: Vec<Value> = alerts
        .iter()
        .map(|(job, name, severity, slo, instance, _)| {
            let mut labels =
                serde_json::json!({"alertname": name, "severity": severity, "job": job});
            for (key, value) in [("slo", slo), ("instance", instance)] {
                if !value.is_empty() {
                    labels[key] = Value::from(*value);
                }
            }
            serde_json::json!({"labels": labels, "annotations": {"summary": "test"}})
        })
        .collect();
    let mut answer = post_and_list_alerts(port, &Value::Array(body).to_string(), alerts.len());
    // The inhibitor learns of the source alerts asynchronously: poll until every alert shows the
    // expected state, then report the ones that still differ.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let wrong = wrongly_inhibited(&answer);
        if wrong.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "inhibition differs: {wrong:#?}");
        std::thread::sleep(Duration::from_millis(200));
        answer = http_get(port, "/api/v2/alerts")
            .and_then(|b| serde_json::from_str(&b).ok())
            .unwrap_or_default();
    }
}

/// The incidents' alerts whose inhibition in Alertmanager's answer is not the expected one.
fn wrongly_inhibited(answer: &[Value]) -> Vec<String> {
    INCIDENTS
        .iter()
        .filter_map(|(job, name, _, _, _, inhibited)| {
            let Some(alert) = answer
                .iter()
                .find(|a| a["labels"]["job"] == *job && a["labels"]["alertname"] == *name)
            else {
                return Some(format!("{job}/{name} not listed"));
            };
            let by = alert["status"]["inhibitedBy"]
                .as_array()
                .map_or(0, Vec::len);
            ((by > 0) != *inhibited).then(|| format!("{job}/{name}: {}", alert["status"]))
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Grafana

#[test]
fn every_dashboard_query_parses() {
    let queries = dashboard_queries(&dashboard());
    assert!(queries.len() >= 20, "only {} queries", queries.len());
    let mut rules = String::from("groups:\n  - name: dashboard-queries\n    rules:\n");
    let mut legend = String::new();
    for (n, (title, ref_id, expr)) in queries.iter().enumerate() {
        let promql = substitute_variables(expr);
        assert!(
            !promql.contains('$'),
            "panel {title:?} {ref_id}: unknown variable in {expr}"
        );
        // A JSON string is a valid YAML double-quoted scalar.
        let quoted = serde_json::to_string(&promql).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard_query_{n}\n        expr: {quoted}\n"
        ));
        legend.push_str(&format!("dashboard_query_{n} = panel {title:?} {ref_id}\n"));
    }
    let scratch = Scratch::new("dashboard-queries");
    let file = scratch.write("dashboard-queries.yml", &rules);
    let out = tool("promtool")
        .arg("check")
        .arg("rules")
        .arg(&file)
        .output()
        .expect("run promtool");
    let text = output_text(&out);
    assert!(
        out.status.success() && text.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "a dashboard query does not parse:\n{text}\n{legend}"
    );
}

#[test]
fn dashboard_uses_the_datasource_and_instance_variables() {
    let dashboard = dashboard();
    let schema = dashboard["schemaVersion"].as_u64().unwrap_or_default();
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    let ds = variable("ds");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    // environment -> job -> instance, each narrowing the next; production by default, so the
    // development job (environment="development") stays out.
    let environment = variable("environment");
    assert_eq!(
        environment["definition"],
        "label_values(ops_worker_up, environment)"
    );
    assert_eq!(environment["current"]["value"], "production");
    assert_eq!(environment["includeAll"], false);
    let job = variable("job");
    assert_eq!(
        job["definition"],
        r#"label_values(ops_worker_up{environment=~"$environment"}, job)"#
    );
    // "All" expands to the listed jobs (a `.*` would take in Prometheus's own `up` series).
    assert!(job["allValue"].is_null(), "{job}");
    let instance = variable("instance");
    assert_eq!(instance["type"], "query");
    assert_eq!(
        instance["definition"],
        r#"label_values(ops_worker_up{job=~"$job", environment=~"$environment"}, instance)"#
    );
    assert_eq!(instance["multi"], true);
    assert_eq!(instance["includeAll"], true);
    assert_eq!(instance["datasource"]["uid"], "${ds}");

    for panel in panels(&dashboard) {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap_or("?");
        assert_eq!(panel["datasource"]["uid"], "${ds}", "panel {title:?}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${ds}", "panel {title:?}");
        }
    }
}

/// Every series is filtered by `$job` and `$environment` (recorded `job:` series, which keep only
/// `job`, by `$job`), per-instance series by `$instance`, queue-wide gauges are aggregated with
/// `max`; no count changes with the zoom: rates use `$__rate_interval`, counts (`increase`) a
/// fixed window or the whole range (`$__range`).
#[test]
fn dashboard_queries_follow_the_aggregation_rule() {
    let documented = documented_metrics();
    let filters = [r#"job=~"$job""#, r#"environment=~"$environment""#];
    for (title, ref_id, expr) in dashboard_queries(&dashboard()) {
        let at = format!("panel {title:?} {ref_id}: {expr}");
        for (pos, metric) in metric_names(&expr, &["ops_worker_", "process_", "up"]) {
            if metric != "up"
                && !metric.starts_with("ops_worker_")
                && !metric.starts_with("process_")
            {
                continue;
            }
            let matchers = matchers_after(&expr, pos, metric.len());
            for filter in filters {
                assert!(matchers.contains(filter), "{at}: {metric} needs {filter}");
            }
            let scope = documented.get(&metric).map(String::as_str);
            if scope == Some("queue") {
                assert!(is_max_aggregated(&expr, pos), "{at}: {metric} needs max");
            } else if metric != "up" {
                assert!(
                    matchers.contains(r#"instance=~"$instance""#),
                    "{at}: {metric} needs instance=~\"$instance\""
                );
            }
        }
        for (pos, recorded) in identifiers(&expr)
            .into_iter()
            .filter(|(_, id)| id.starts_with("job:"))
        {
            let matchers = matchers_after(&expr, pos, recorded.len());
            assert!(
                matchers.contains(filters[0]),
                "{at}: {recorded} needs {}",
                filters[0]
            );
        }
        for function in ["rate(", "increase("] {
            for (i, _) in expr.match_indices(function) {
                let window = expr[i..]
                    .split('[')
                    .nth(1)
                    .and_then(|w| w.split(']').next())
                    .unwrap_or_default();
                let fixed =
                    window.ends_with('m') && window[..window.len() - 1].parse::<u32>().is_ok();
                let ok = match function {
                    "rate(" => window == "$__rate_interval" || fixed,
                    _ => window == "$__range" || fixed,
                };
                assert!(ok, "{at}: {function}..[{window}] changes with the zoom");
            }
        }
    }
}

#[test]
fn grafana_provisioning_points_at_the_dashboard_and_datasource() {
    let datasource = read("grafana/provisioning/datasources/prometheus.yml");
    assert!(datasource.contains("uid: prometheus"), "{datasource}");
    assert!(
        datasource.contains("url: ${PROMETHEUS_URL}"),
        "{datasource}"
    );
    assert!(datasource.contains("type: prometheus"), "{datasource}");
    let provider = read("grafana/provisioning/dashboards/ops-worker.yml");
    assert!(provider.contains("type: file"), "{provider}");
    assert!(
        provider.contains("path: /var/lib/grafana/dashboards/ops-worker"),
        "{provider}"
    );
    assert_eq!(dashboard()["uid"], "ops-worker");
}

// ------------------------------------------------------------------------------------------------
// metric names and runbooks

#[test]
fn every_metric_used_is_documented_and_every_documented_metric_is_shown() {
    let documented = documented_metrics();
    let mut used = BTreeMap::new();
    for rule in loaded_rules("alerting")
        .into_iter()
        .chain(loaded_rules("recording"))
    {
        let query = rule["query"].as_str().expect("query");
        for (pos, metric) in metric_names(query, &["ops_worker_"]) {
            if documented.get(&metric).map(String::as_str) == Some("queue") {
                assert!(
                    is_max_aggregated(query, pos),
                    "rule {}: {metric} needs max: {query}",
                    rule["name"]
                );
            }
            used.insert(metric, format!("rule {}", rule["name"]));
        }
    }
    let mut shown = BTreeSet::new();
    for (title, _, expr) in dashboard_queries(&dashboard()) {
        for (_, metric) in metric_names(&expr, &["ops_worker_", "process_"]) {
            shown.insert(metric.clone());
            used.insert(metric, format!("panel {title:?}"));
        }
    }
    for (metric, user) in &used {
        assert!(
            documented.contains_key(metric),
            "{user} uses {metric}, which docs/metrics.md does not document"
        );
    }
    for metric in documented.keys() {
        assert!(
            shown.contains(metric),
            "the dashboard shows no panel for {metric}"
        );
    }
}

#[test]
fn runbooks_cover_the_guides_emergency_scenarios_and_links_resolve() {
    let runbooks = read("docs/runbooks.md");
    let anchors = headings(&runbooks);
    for heading in [
        "Emergency scenarios",
        "Worker crash",
        "Redis connection failure",
        "Slow task processing",
        "Vercel API errors",
    ] {
        assert!(
            anchors.contains_key(&github_anchor(heading)),
            "docs/runbooks.md lacks `{heading}`"
        );
    }
    for (i, _) in runbooks.match_indices("](#") {
        let anchor = runbooks[i + 3..].split(')').next().unwrap_or_default();
        assert!(
            anchors.contains_key(anchor),
            "docs/runbooks.md links to #{anchor}, which is no heading"
        );
    }
    for command in [
        "curl -s http://localhost:8080/health",
        "/api/worker/status",
        "/api/queue/stats",
        "ops-worker stats --json",
        "redis-cli -u \"$REDIS_URL\" ping",
        "https://api.vercel.com/v2/user",
        "ops-worker retry <task-id>",
        "ops-worker pause P3",
        "ops-worker resume P3",
        "/api/worker/restart",
    ] {
        assert!(
            runbooks.contains(command),
            "docs/runbooks.md never shows `{command}`"
        );
    }
}

#[test]
fn helpers_understand_promql() {
    assert!(is_max_aggregated("max(ops_worker_queue_in_flight)", 4));
    let e = "sum(max by (priority) (ops_worker_queue_pending))";
    assert!(is_max_aggregated(e, e.find("ops_worker").unwrap()));
    let e = "sum by (priority) (ops_worker_queue_pending)";
    assert!(!is_max_aggregated(e, e.find("ops_worker").unwrap()));
    let e = "rate(ops_worker_task_duration_seconds_bucket{instance=~\"$instance\"}[5m])";
    let names = metric_names(e, &["ops_worker_"]);
    assert_eq!(
        names,
        vec![(5, "ops_worker_task_duration_seconds".to_string())]
    );
    assert_eq!(
        matchers_after(e, 5, names[0].1.len()),
        "instance=~\"$instance\""
    );
    assert!(metric_names("ops_worker:queue_pending:max > 100", &["ops_worker_"]).is_empty());
    assert_eq!(
        github_anchor("Redis connection failure"),
        "redis-connection-failure"
    );
    assert_eq!(github_anchor("WorkerDown"), "workerdown");
}
