//! The monitoring stack of the Render Blueprint, run locally as Render runs it.
//!
//! `deploy/prometheus/entrypoint.sh` and `deploy/alertmanager/entrypoint.sh` are the entrypoints
//! of the two monitoring services. This test lays out a scratch directory exactly as their
//! Dockerfiles lay out the image (the repository's `prometheus/` files under the same names), runs
//! the entrypoints themselves with the variables `render.yaml` gives them (values pointing at
//! local processes), and checks what they start:
//!
//! - Prometheus finds two real `ops-worker run` processes (standing for `ops-worker-pool` and
//!   `ops-worker-api`) through DNS discovery of the rendered `<host>-discovery` names, as on
//!   Render. Prometheus resolves names itself through the servers of `/etc/resolv.conf`, so it
//!   runs in a private mount namespace (`unshare -m`, needs root) where `/etc/resolv.conf` names a
//!   small DNS server of this test, which answers 127.0.0.1 for those two names only. Both
//!   targets must be up with their `service` label, the rules loaded, and the rendered
//!   Alertmanager active.
//! - Alertmanager starts with the rendered configuration and its secrets (one from an environment
//!   variable, one from a Secret File), answers `/-/ready`, and `amtool` accepts the rendered file
//!   and routes a critical alert to PagerDuty and Slack.
//! - Either entrypoint refuses to start without its required settings.

mod support;

use std::collections::HashMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(90);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blueprint_monitoring_stack_runs_as_rendered() {
    let redis = RedisServer::start();
    let queue = "blueprint";
    let pool = Worker::builder(&redis.url(), queue).spawn().await;
    // The API as the Blueprint runs it: `/metrics` on its own listener (METRICS_PORT).
    let api = Worker::builder(&redis.url(), queue)
        .env("METRICS_PORT", "0")
        .spawn()
        .await;
    let api_metrics_port = api.metrics_port().expect("the API's metrics listener");
    // Internal hostnames as Render makes them: the service name plus a random suffix.
    let n = std::process::id();
    let pool_host = format!("ops-worker-pool-t{n}");
    let api_host = format!("ops-worker-api-t{n}");
    let dns = DnsServer::start(&[
        format!("{pool_host}-discovery"),
        format!("{api_host}-discovery"),
    ]);

    let alertmanager = Alertmanager::start().await;
    let prometheus = Prometheus::start(&[
        ("POOL_HOST", pool_host.clone()),
        ("POOL_METRICS_PORT", pool.port().to_string()),
        ("API_HOST", api_host.clone()),
        ("API_METRICS_PORT", api_metrics_port.to_string()),
        (
            "ALERTMANAGER_HOSTPORT",
            format!("127.0.0.1:{}", alertmanager.port),
        ),
    ])
    .await;

    check_rendered_config(
        &prometheus,
        [
            ("POOL_DISCOVERY", format!("- {pool_host}-discovery ")),
            ("POOL_METRICS_PORT", format!("port: {} ", pool.port())),
            ("API_DISCOVERY", format!("- {api_host}-discovery ")),
            ("API_METRICS_PORT", format!("port: {api_metrics_port} ")),
            (
                "ALERTMANAGER_HOSTPORT",
                format!("- 127.0.0.1:{} ", alertmanager.port),
            ),
        ],
    );

    // Both services' instances discovered through DNS and scraped.
    let seen = discovered_targets(&prometheus).await;
    let mut expected = vec![
        (
            api_host.clone(),
            "127.0.0.1".to_string(),
            format!("http://127.0.0.1:{api_metrics_port}/metrics"),
        ),
        (
            pool_host.clone(),
            "127.0.0.1".to_string(),
            format!("http://127.0.0.1:{}/metrics", pool.port()),
        ),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    let queried = dns.queried();
    for name in [
        format!("{pool_host}-discovery"),
        format!("{api_host}-discovery"),
    ] {
        assert!(
            queried.contains(&name),
            "Prometheus never asked the DNS server for {name}: {queried:?}"
        );
    }
    check_rules_and_alertmanager(&prometheus, alertmanager.port).await;
    alertmanager.check_rendered().await;
    drop(prometheus);
    drop(alertmanager);
}

#[test]
fn entrypoints_refuse_to_start_without_their_settings() {
    let dir = ScratchLayout::prometheus();
    let out = Command::new("sh")
        .arg(root().join("deploy/prometheus/entrypoint.sh"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PROMETHEUS_CONFIG_DIR", &dir.0)
        .env("PROMETHEUS_BIN", "true")
        .env("POOL_HOST", "ops-worker-pool-ab12")
        .env("ALERTMANAGER_HOSTPORT", "ops-worker-alertmanager-cd34:9093")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("API_HOST is not set"),
        "{out:?}"
    );
    assert!(!dir.0.join("prometheus.yml").exists());
    // A value that is not a hostname is refused, not pasted into the configuration.
    let out = Command::new("sh")
        .arg(root().join("deploy/prometheus/entrypoint.sh"))
        .env("PROMETHEUS_CONFIG_DIR", &dir.0)
        .env("PROMETHEUS_BIN", "true")
        .env("POOL_HOST", "a|b")
        .env("API_HOST", "ops-worker-api-ab12")
        .env("ALERTMANAGER_HOSTPORT", "ops-worker-alertmanager-cd34:9093")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a hostname"),
        "{out:?}"
    );

    let am = ScratchLayout::alertmanager();
    let out = Command::new("sh")
        .arg(root().join("deploy/alertmanager/entrypoint.sh"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ALERTMANAGER_HOME", &am.0)
        .env("SECRET_FILES_DIR", am.0.join("no-secret-files"))
        .env("ALERTMANAGER_BIN", "true")
        .env("SLACK_WEBHOOK_URL", "https://hooks.slack.invalid/x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no pagerduty_routing_key: set PAGERDUTY_ROUTING_KEY"),
        "{out:?}"
    );
}

/// The dead man's switch URL: rendered into the heartbeat receiver when it is a plain http(s) URL
/// (the file stays private and the URL out of the log), refused otherwise.
#[test]
fn alertmanager_entrypoint_renders_the_heartbeat_url() {
    let am = ScratchLayout::alertmanager();
    let alertmanager_with_heartbeat = |url: &str| {
        Command::new("sh")
            .arg(root().join("deploy/alertmanager/entrypoint.sh"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ALERTMANAGER_HOME", &am.0)
            .env("SECRET_FILES_DIR", am.0.join("no-secret-files"))
            .env("ALERTMANAGER_BIN", "true")
            .env("SLACK_WEBHOOK_URL", "https://hooks.slack.invalid/x")
            .env("PAGERDUTY_ROUTING_KEY", "test-routing-key")
            .env("HEARTBEAT_URL", url)
            .output()
            .unwrap()
    };
    let url = "https://hc-ping.invalid/0f1e2d3c-check?rid=a&b=1";
    let out = alertmanager_with_heartbeat(url);
    assert!(out.status.success(), "{out:?}");
    let rendered = std::fs::read_to_string(am.0.join("alertmanager.rendered.yml")).unwrap();
    assert!(
        rendered.contains(&format!("- url: {url} # render: HEARTBEAT_URL\n")),
        "{rendered}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(url),
        "{out:?}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(am.0.join("alertmanager.rendered.yml"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "rendered configuration readable by others");
    for bad in ["ftp://hc-ping.invalid/x", "https://hc-ping.invalid/a b|c"] {
        let out = alertmanager_with_heartbeat(bad);
        assert!(!out.status.success(), "{bad}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("heartbeat URL"),
            "{out:?}"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// helpers

/// A scratch directory laid out like the image's /etc/prometheus or /etc/alertmanager.
struct ScratchLayout(PathBuf);

impl ScratchLayout {
    /// deploy/prometheus/Dockerfile: prometheus.yml as prometheus.template.yml, rules/ as rules/.
    fn prometheus() -> Self {
        let dir = scratch_dir("bp-prometheus");
        std::fs::copy(
            root().join("prometheus/prometheus.yml"),
            dir.join("prometheus.template.yml"),
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("rules")).unwrap();
        for entry in std::fs::read_dir(root().join("prometheus/rules")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join("rules").join(path.file_name().unwrap())).unwrap();
        }
        ScratchLayout(dir)
    }

    /// deploy/alertmanager/Dockerfile: alertmanager.yml under its own name.
    fn alertmanager() -> Self {
        let dir = scratch_dir("bp-alertmanager");
        std::fs::copy(
            root().join("prometheus/alertmanager.yml"),
            dir.join("alertmanager.yml"),
        )
        .unwrap();
        ScratchLayout(dir)
    }
}

impl Drop for ScratchLayout {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("files kept at {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The rendered `prometheus.yml`: the template with exactly the six marked lines replaced
/// (Alertmanager's host:port twice: where alerts go and the scrape target of the meta-alerts), each
/// with its value; and promtool accepts it.
fn check_rendered_config(prometheus: &Prometheus, expected: [(&str, String); 5]) {
    let template = std::fs::read_to_string(root().join("prometheus/prometheus.yml")).unwrap();
    let rendered = std::fs::read_to_string(prometheus.dir.join("prometheus.yml")).unwrap();
    let changed: Vec<(&str, &str)> = template
        .lines()
        .zip(rendered.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(template.lines().count(), rendered.lines().count());
    assert_eq!(changed.len(), 6, "{changed:#?}");
    for (mark, value) in expected {
        let line = format!("# render: {mark}");
        assert!(
            changed
                .iter()
                .any(|(_, b)| b.ends_with(&line) && b.contains(&value)),
            "{line}: expected {value:?} in {changed:#?}"
        );
    }
    let check = Command::new("promtool")
        .args(["check", "config"])
        .arg(prometheus.dir.join("prometheus.yml"))
        .output()
        .expect("promtool");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

/// `(service, instance, scrape URL)` of the production job's targets, sorted, once both are up.
async fn discovered_targets(prometheus: &Prometheus) -> Vec<(String, String, String)> {
    let up = eventually(WAIT, "both discovered targets up", || async {
        let data = prometheus.api("/api/v1/targets", &[]).await.ok()?;
        let targets: Vec<Value> = data["activeTargets"]
            .as_array()?
            .iter()
            .filter(|t| t["labels"]["job"] == "ops-worker")
            .cloned()
            .collect();
        let healthy = targets.len() == 2 && targets.iter().all(|t| t["health"] == "up");
        healthy.then_some(targets)
    })
    .await;
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut seen: Vec<_> = up
        .iter()
        .map(|t| {
            let labels = &t["labels"];
            (
                text(&labels["service"]),
                text(&labels["instance"]),
                text(&t["scrapeUrl"]),
            )
        })
        .collect();
    seen.sort();
    seen
}

/// The worker's own series arrive under the production job, the repository's rules are loaded
/// from the rendered file's rules/ directory, and alerts go to the rendered Alertmanager.
async fn check_rules_and_alertmanager(prometheus: &Prometheus, alertmanager_port: u16) {
    let series = eventually(WAIT, "ops_worker series scraped from both", || async {
        let data = prometheus
            .api(
                "/api/v1/query",
                &[(
                    "query",
                    "count by (service) (ops_worker_worker_status{job=\"ops-worker\"})",
                )],
            )
            .await
            .ok()?;
        let result = data["result"].as_array()?.clone();
        (result.len() == 2).then_some(result)
    })
    .await;
    assert_eq!(series.len(), 2);

    let rules = prometheus.api("/api/v1/rules", &[]).await.unwrap();
    let names: Vec<&str> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .filter_map(|r| r["name"].as_str())
        .collect();
    for alert in ["WorkerDown", "HighQueueDepth", "UptimeBelowObjective"] {
        assert!(names.contains(&alert), "{alert} not loaded: {names:?}");
    }
    let expected_am = format!("http://127.0.0.1:{alertmanager_port}/api/v2/alerts");
    eventually(WAIT, "alertmanager active in prometheus", || async {
        let data = prometheus.api("/api/v1/alertmanagers", &[]).await.ok()?;
        let active = data["activeAlertmanagers"].as_array()?;
        active
            .iter()
            .any(|a| a["url"] == expected_am.as_str())
            .then_some(())
    })
    .await;
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Start `command` (a server on `port`) and wait for `ready_path` to answer 2xx. `None` if it
/// exited because the port was taken (the caller starts again on a fresh port).
async fn start_server(mut command: Command, port: u16, log: &Path, what: &str) -> Option<Child> {
    let log_file = std::fs::File::create(log).unwrap();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let client = http();
    let url = format!("http://127.0.0.1:{port}/-/ready");
    let deadline = Instant::now() + WAIT;
    loop {
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Some(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let logs = std::fs::read_to_string(log).unwrap_or_default();
            if logs.contains("address already in use") {
                return None;
            }
            panic!("{what} exited ({status}):\n{logs}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} not ready:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Prometheus started by deploy/prometheus/entrypoint.sh in a mount namespace whose
/// /etc/resolv.conf names the test's DNS server.
struct Prometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
    _layout: ScratchLayout,
    http: reqwest::Client,
}

impl Prometheus {
    async fn start(env: &[(&str, String)]) -> Self {
        for _ in 0..5 {
            let layout = ScratchLayout::prometheus();
            let dir = layout.0.clone();
            let port = free_port();
            let resolv = dir.join("resolv.conf");
            std::fs::write(&resolv, format!("nameserver {}\n", DnsServer::address())).unwrap();
            let mut command = Command::new("unshare");
            command
                .args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(r#"mount --bind "$0" /etc/resolv.conf && exec sh "$1""#)
                .arg(&resolv)
                .arg(root().join("deploy/prometheus/entrypoint.sh"))
                .env("PROMETHEUS_CONFIG_DIR", &dir)
                .env("PROMETHEUS_BIN", "prometheus")
                .env("PROMETHEUS_LISTEN", format!("127.0.0.1:{port}"))
                .env("PROMETHEUS_STORAGE", dir.join("data"))
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
            let log = dir.join("prometheus.log");
            if let Some(child) = start_server(command, port, &log, "prometheus (entrypoint)").await
            {
                return Prometheus {
                    child,
                    port,
                    dir,
                    _layout: layout,
                    http: http(),
                };
            }
        }
        panic!("prometheus kept finding its port taken");
    }

    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let answer = self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .query(params)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let json: Value = answer.json().await.map_err(|e| e.to_string())?;
        if json["status"] == "success" {
            Ok(json["data"].clone())
        } else {
            Err(json.to_string())
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        kill(&mut self.child);
        if std::thread::panicking() {
            eprintln!(
                "prometheus log:\n{}",
                std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
            );
        }
    }
}

const SLACK_URL: &str = "http://127.0.0.1:9/slack-webhook-for-tests";
const PAGERDUTY_KEY: &str = "pagerduty-routing-key-for-tests";

/// Alertmanager started by deploy/alertmanager/entrypoint.sh: the Slack URL from its environment
/// variable, the PagerDuty key from a Secret File.
struct Alertmanager {
    child: Child,
    port: u16,
    layout: ScratchLayout,
}

impl Alertmanager {
    async fn start() -> Self {
        for _ in 0..5 {
            let layout = ScratchLayout::alertmanager();
            let dir = layout.0.clone();
            let secret_files = dir.join("etc-secrets");
            std::fs::create_dir_all(&secret_files).unwrap();
            std::fs::write(secret_files.join("pagerduty_routing_key"), PAGERDUTY_KEY).unwrap();
            let port = free_port();
            let mut command = Command::new("sh");
            command
                .arg(root().join("deploy/alertmanager/entrypoint.sh"))
                .env("ALERTMANAGER_HOME", &dir)
                .env("SECRET_FILES_DIR", &secret_files)
                .env("SLACK_WEBHOOK_URL", SLACK_URL)
                .env_remove("PAGERDUTY_ROUTING_KEY")
                .env("ALERTMANAGER_BIN", "prometheus-alertmanager")
                .env("ALERTMANAGER_LISTEN", format!("127.0.0.1:{port}"))
                .env("ALERTMANAGER_STORAGE", dir.join("data"));
            let log = dir.join("alertmanager.log");
            if let Some(child) =
                start_server(command, port, &log, "alertmanager (entrypoint)").await
            {
                return Alertmanager {
                    child,
                    port,
                    layout,
                };
            }
        }
        panic!("alertmanager kept finding its port taken");
    }

    /// The rendered file, its secrets, and what Alertmanager and amtool make of it.
    async fn check_rendered(&self) {
        let dir = &self.layout.0;
        let rendered_path = dir.join("alertmanager.rendered.yml");
        let rendered = std::fs::read_to_string(&rendered_path).unwrap();
        let original = std::fs::read_to_string(root().join("prometheus/alertmanager.yml")).unwrap();
        let home = format!("{}/", dir.display());
        assert_eq!(rendered, original.replace("/etc/alertmanager/", &home));
        let secrets = dir.join("secrets");
        assert_eq!(
            std::fs::read_to_string(secrets.join("slack_webhook_url")).unwrap(),
            SLACK_URL
        );
        assert_eq!(
            std::fs::read_to_string(secrets.join("pagerduty_routing_key")).unwrap(),
            PAGERDUTY_KEY
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(secrets.join("slack_webhook_url"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "secret readable by others: {mode:o}");

        // The running Alertmanager loaded the rendered file (its secret paths are the scratch ones).
        let status: Value = http()
            .get(format!("http://127.0.0.1:{}/api/v2/status", self.port))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let loaded = status["config"]["original"].as_str().unwrap_or("");
        assert!(
            loaded.contains(&format!("{home}secrets/slack_webhook_url")),
            "{loaded}"
        );
        assert!(loaded.contains("pagerduty-critical"), "{loaded}");

        let check = Command::new("amtool")
            .args(["check-config"])
            .arg(&rendered_path)
            .output()
            .expect("amtool");
        assert!(check.status.success(), "{check:?}");
        let routes = Command::new("amtool")
            .args(["config", "routes", "test"])
            .arg(format!("--config.file={}", rendered_path.display()))
            .arg("severity=critical")
            .output()
            .expect("amtool");
        assert_eq!(
            String::from_utf8_lossy(&routes.stdout).trim(),
            "pagerduty-critical,slack-ops-agent-alerts"
        );
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        kill(&mut self.child);
        if std::thread::panicking() {
            eprintln!(
                "alertmanager log:\n{}",
                std::fs::read_to_string(self.layout.0.join("alertmanager.log")).unwrap_or_default()
            );
        }
    }
}

/// A DNS server on port 53 of a loopback address of its own (127.53.x.y): A queries for its
/// names are answered 127.0.0.1, anything else NXDOMAIN. Records every name asked for.
struct DnsServer {
    queried: Arc<Mutex<Vec<String>>>,
}

static DNS_ADDRESS: Mutex<Option<Ipv4Addr>> = Mutex::new(None);

impl DnsServer {
    /// The address of the one server this test process runs.
    fn address() -> Ipv4Addr {
        DNS_ADDRESS.lock().unwrap().expect("DnsServer::start first")
    }

    fn start(names: &[String]) -> Self {
        let names: HashMap<String, ()> = names.iter().map(|n| (n.to_lowercase(), ())).collect();
        let queried = Arc::new(Mutex::new(Vec::new()));
        let socket = (0..50)
            .find_map(|i| {
                let pid = std::process::id();
                let addr = Ipv4Addr::new(127, 53, ((pid >> 8) as u8).wrapping_add(i), pid as u8);
                UdpSocket::bind((addr, 53)).ok().map(|s| (addr, s))
            })
            .map(|(addr, s)| {
                *DNS_ADDRESS.lock().unwrap() = Some(addr);
                s
            })
            .expect("cannot bind a DNS server on 127.53.x.y:53 (the test needs root)");
        let log = queried.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                if let Some((name, reply)) = answer(&buf[..len], &names) {
                    log.lock().unwrap().push(name);
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        DnsServer { queried }
    }

    fn queried(&self) -> Vec<String> {
        self.queried.lock().unwrap().clone()
    }
}

/// The reply to one DNS query: the question echoed, plus an A record 127.0.0.1 if the name is
/// one of `names` and the type is A (1) or ANY; NXDOMAIN for unknown names.
fn answer(query: &[u8], names: &HashMap<String, ()>) -> Option<(String, Vec<u8>)> {
    if query.len() < 12 {
        return None;
    }
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let len = *query.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(i..i + len)?).to_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let question = query.get(12..i + 4)?;
    let name = labels.join(".");
    let known = names.contains_key(&name);
    let a = known && (qtype == 1 || qtype == 255);
    let mut reply = Vec::new();
    reply.extend_from_slice(&query[0..2]); // id
    let rd = query[2] & 0x01;
    reply.push(0x84 | rd); // response, authoritative, recursion desired as asked
    reply.push(if known { 0x00 } else { 0x03 }); // NOERROR or NXDOMAIN
    reply.extend_from_slice(&[0, 1, 0, u8::from(a), 0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if a {
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 127, 0, 0, 1]);
    }
    Some((name, reply))
}
