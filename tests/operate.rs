//! Operating it: `demo` on a machine without Redis, `doctor` on healthy and broken setups, the
//! guide's E2E bug-fix scenario, and the Render blueprint.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ops_worker::config::Config;
use serde_json::Value;
use support::*;

const STRONG_SECRET: &str = "9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a";

fn path_env() -> String {
    std::env::var("PATH").unwrap_or_default()
}

#[test]
fn demo_starts_without_redis_runs_every_sample_and_stops_on_sigint() {
    let closed = free_port();
    // `demo` prints its dashboard URL from the configured port, not the bound one, so it cannot
    // run on port 0 yet: this is the one `ops-worker` HTTP port still picked up front.
    let port = free_port();
    let mut child = Command::new(bin())
        .args(["demo", "--port", &port.to_string()])
        .env_clear()
        .env("PATH", path_env())
        .env("REDIS_URL", format!("redis://127.0.0.1:{closed}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !lines
        .iter()
        .any(|l: &String| l.contains("the dashboard stays up"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => panic!(
                "demo did not finish its samples; output so far:\n{}",
                lines.join("\n")
            ),
        }
    }
    let out = lines.join("\n");
    assert!(out.contains("started a private redis-server"), "{out}");
    assert!(out.contains(&format!("http://localhost:{port}/")), "{out}");
    assert!(out.contains("admin token: ey"), "{out}");
    let summary: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("  ok ") || l.starts_with("  !! "))
        .collect();
    assert!(summary.len() >= 14, "{out}");
    assert!(
        summary.iter().all(|l| l.starts_with("  ok ")),
        "a sample ended unexpectedly:\n{out}"
    );
    for ty in [
        "deploy",
        "deployment",
        "check",
        "promote",
        "redeploy",
        "roll back",
        "cancel",
        "release",
        "noop",
    ] {
        assert!(out.contains(ty), "no {ty} sample:\n{out}");
    }
    for p in ["P0", "P1", "P2", "P3"] {
        assert!(
            summary.iter().any(|l| l.contains(&format!(" {p} "))),
            "no {p} sample"
        );
    }
    let redis_port: u16 = out
        .split("started a private redis-server at redis://127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap();

    let health = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{port}/health"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&health.stdout), "200");

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "demo did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", redis_port)).is_err(),
        "private Redis left running"
    );
}

#[test]
fn bugfix_scenario_passes() {
    let redis = RedisServer::start();
    // Port 0: any free port; the scenario itself makes no HTTP call.
    let out = Command::new(bin())
        .args(["demo", "--scenario", "bugfix", "--port", "0"])
        .env_clear()
        .env("PATH", path_env())
        .env("REDIS_URL", redis.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The broken hot fix failed at its verification and production went back to the first
    // release; the fixed hot fix completed.
    let known_good = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("1. release ")?.split(": ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no known-good line: {stdout}"));
    assert!(
        stdout.contains("failed: release failed at verify: GET "),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "event release.rolled_back: production back on \"{known_good}\""
        )),
        "{stdout}"
    );
    assert!(stdout.contains("rollback succeeded"), "{stdout}");
    assert!(stdout.contains("3. fixed hot fix "), "{stdout}");
    assert!(stdout.contains("E2E bug-fix scenario passed"), "{stdout}");
}

fn doctor(env: &[(&str, String)]) -> (bool, Value, String) {
    let out = Command::new(bin())
        .args(["doctor", "--json"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.success(), json, stdout)
}

fn failing(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| {
            format!(
                "{}: {}",
                c["name"].as_str().unwrap(),
                c["detail"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn doctor_passes_a_healthy_setup_and_names_each_problem() {
    let redis = RedisServer::start();
    let sim = SimProcess::spawn(&[]);
    let healthy = vec![
        ("REDIS_URL", redis.url()),
        ("VERCEL_API_URL", sim.url.clone()),
        ("VERCEL_TOKEN", sim.token.clone()),
        ("VERCEL_TEAM_ID", "team_ops".to_string()),
        ("JWT_SECRET", STRONG_SECRET.to_string()),
        (
            "SENTRY_DSN",
            "https://publickey@o1.ingest.sentry.io/42".to_string(),
        ),
    ];
    let (ok, report, text) = doctor(&healthy);
    assert!(ok, "{text}");
    assert_eq!(report["ok"], true);
    assert!(failing(&report).is_empty());
    for name in [
        "configuration",
        "redis reachable",
        "redis writable",
        "redis eviction policy",
        "vercel token",
        "vercel team",
        "sentry dsn",
        "jwt secret",
    ] {
        assert!(
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == name && c["status"] == "ok"),
            "{name}: {text}"
        );
    }

    // A bad token.
    let mut env = healthy.clone();
    env[2].1 = "tok_wrong".into();
    let (ok, report, text) = doctor(&env);
    assert!(!ok);
    assert!(
        failing(&report)
            .iter()
            .any(|f| f.starts_with("vercel token: rejected (401)")),
        "{text}"
    );
    assert!(
        !text.contains("tok_wrong") && !text.contains(&sim.token) && !text.contains(STRONG_SECRET)
    );

    // Unreachable Redis.
    let mut env = healthy.clone();
    env[0].1 = format!("redis://127.0.0.1:{}", free_port());
    let (ok, report, _) = doctor(&env);
    assert!(!ok);
    assert!(
        failing(&report)
            .iter()
            .any(|f| f.starts_with("redis reachable"))
    );

    // A missing variable and a weak secret are named.
    let env: Vec<_> = healthy
        .iter()
        .filter(|(k, _)| *k != "VERCEL_TOKEN")
        .cloned()
        .collect();
    let (ok, report, _) = doctor(&env);
    assert!(!ok);
    assert!(
        failing(&report)
            .iter()
            .any(|f| f.contains("VERCEL_TOKEN: is required"))
    );
    let mut env = healthy.clone();
    env[4].1 = "x".repeat(40);
    let (_, report, _) = doctor(&env);
    assert!(failing(&report).iter().any(|f| f.starts_with("jwt secret")));

    // An evicting policy (the guide's own allkeys-lru suggestion).
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query(&mut redis.conn())
        .unwrap();
    let (ok, report, _) = doctor(&healthy);
    assert!(!ok);
    let f = failing(&report);
    assert!(
        f.iter()
            .any(|f| f.starts_with("redis eviction policy") && f.contains("allkeys-lru")),
        "{f:?}"
    );
}

/// The `envVars` entry for `key` of a Blueprint service, if any.
fn env_entry<'a>(service: &'a serde_yaml::Value, key: &str) -> Option<&'a serde_yaml::Value> {
    service["envVars"]
        .as_sequence()?
        .iter()
        .find(|e| e["key"] == key)
}

#[test]
fn render_blueprint_is_consistent_with_the_code() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("render.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("render.yaml parses");
    let known = Config::variables();
    let services = doc["services"].as_sequence().unwrap();
    let by_name = |n: &str| {
        services
            .iter()
            .find(|s| s["name"] == n)
            .unwrap_or_else(|| panic!("no service {n}"))
    };
    let web = by_name("ops-worker-api");
    let pool = by_name("ops-worker-pool");
    let app_services = [web, pool];
    let groups = doc["envVarGroups"].as_sequence().unwrap();
    let shared = groups
        .iter()
        .find(|g| g["name"] == "ops-worker-shared")
        .expect("environment group ops-worker-shared");
    let group_entries: Vec<&serde_yaml::Value> =
        shared["envVars"].as_sequence().unwrap().iter().collect();

    // Everything the two services running the binary get: the shared group plus their own.
    let mut env_entries = group_entries.clone();
    for s in app_services {
        let vars = s["envVars"].as_sequence().unwrap();
        assert!(
            vars.iter().any(|v| v["fromGroup"] == "ops-worker-shared"),
            "{} does not link ops-worker-shared",
            s["name"].as_str().unwrap()
        );
        env_entries.extend(vars.iter().filter(|v| v.get("key").is_some()));
    }
    let secrets: BTreeSet<&str> = ["VERCEL_TOKEN", "VERCEL_TEAM_ID", "SENTRY_DSN"].into();
    let mut seen = BTreeSet::new();
    for e in &env_entries {
        let key = e["key"].as_str().unwrap();
        seen.insert(key.to_string());
        assert!(
            known.contains(key),
            "render.yaml sets {key}, which the configuration never reads"
        );
        if secrets.contains(key) {
            assert_eq!(
                e["sync"],
                serde_yaml::Value::Bool(false),
                "{key} must be sync: false"
            );
            assert!(
                e.get("value").is_none(),
                "{key} must not have a value in the blueprint"
            );
        }
    }
    for required in ["REDIS_URL", "VERCEL_TOKEN", "JWT_SECRET"] {
        assert!(
            seen.contains(required),
            "render.yaml does not provide {required}"
        );
    }
    for s in app_services {
        for key in &secrets {
            assert!(
                env_entry(s, key).is_some(),
                "{} lacks {key}",
                s["name"].as_str().unwrap()
            );
        }
    }
    // One JWT_SECRET, generated by Render in the shared group, set nowhere else: a token minted
    // for one service is accepted by the other, and nobody types it.
    let jwt: Vec<_> = group_entries
        .iter()
        .filter(|e| e["key"] == "JWT_SECRET")
        .collect();
    assert_eq!(jwt.len(), 1, "JWT_SECRET once in ops-worker-shared");
    assert_eq!(jwt[0]["generateValue"], serde_yaml::Value::Bool(true));
    assert!(jwt[0].get("value").is_none() && jwt[0].get("sync").is_none());
    for s in services {
        assert!(
            env_entry(s, "JWT_SECRET").is_none(),
            "{} sets its own JWT_SECRET, which would override the group's",
            s["name"].as_str().unwrap()
        );
    }
    // Render rejects sync: false in an environment group (it ignores the entry).
    for e in &group_entries {
        assert!(e.get("sync").is_none(), "{:?}: sync in a group", e["key"]);
    }

    let kv = by_name("ops-worker-redis");
    assert_eq!(kv["type"], "keyvalue");
    assert_eq!(kv["maxmemoryPolicy"], "noeviction");
    assert_eq!(
        kv["ipAllowList"].as_sequence().map(|v| v.len()),
        Some(0),
        "Key Value must be internal only"
    );
    assert_eq!(web["type"], "web");
    assert_eq!(web["healthCheckPath"], "/health");
    assert_eq!(pool["type"], "pserv");
    assert_eq!(pool["scaling"]["minInstances"], 1);
    assert_eq!(pool["scaling"]["maxInstances"], 5);
    assert_eq!(pool["scaling"]["targetCPUPercent"], 70);
    let shutdown_timeout: u64 = env_entries
        .iter()
        .find(|e| e["key"] == "WORKER_SHUTDOWN_TIMEOUT")
        .and_then(|e| e["value"].as_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    for s in app_services {
        assert_eq!(s["runtime"], "rust");
        let start = s["startCommand"].as_str().unwrap();
        assert!(
            start.starts_with("./target/release/ops-worker run"),
            "{start}: run the release binary directly"
        );
        assert!(
            !start.contains("sh -c") && !start.contains("cargo run"),
            "{start}"
        );
        assert!(
            s["buildCommand"]
                .as_str()
                .unwrap()
                .contains("cargo build --release")
        );
        assert!(s["maxShutdownDelaySeconds"].as_u64().unwrap() > shutdown_timeout + 10);
        let redis = env_entry(s, "REDIS_URL").unwrap();
        assert_eq!(redis["fromService"]["type"], "keyvalue");
        assert_eq!(redis["fromService"]["property"], "connectionString");
    }

    // The monitoring stack: two private services built from the official images with the
    // repository's files, every variable they get read by their entrypoint.
    let port_of = |s: &serde_yaml::Value| -> String {
        let p = env_entry(s, "PORT").expect("PORT set explicitly");
        p["value"].as_str().unwrap().to_string()
    };
    // Render keeps port 10000 for a web service's public traffic: nothing private reaches it.
    assert_ne!(port_of(web), "10000", "Prometheus could not scrape the API");
    for (name, image) in [
        ("ops-worker-prometheus", "prom/prometheus:v"),
        ("ops-worker-alertmanager", "prom/alertmanager:v"),
    ] {
        let s = by_name(name);
        assert_eq!(s["type"], "pserv", "{name} must be private");
        assert_eq!(s["runtime"], "docker");
        assert_eq!(s["dockerContext"], ".");
        let dockerfile_path = s["dockerfilePath"].as_str().unwrap();
        let dockerfile = std::fs::read_to_string(root.join(dockerfile_path)).unwrap();
        let from = dockerfile
            .lines()
            .find(|l| l.starts_with("FROM "))
            .expect("FROM line");
        assert!(
            from.starts_with(&format!("FROM {image}")) && !from.ends_with(":latest"),
            "{from}: the official image, pinned"
        );
        for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
            let src = line.split_whitespace().nth(1).unwrap();
            assert!(root.join(src).exists(), "{dockerfile_path}: {src} missing");
        }
        let entrypoint_path = std::path::Path::new(dockerfile_path)
            .parent()
            .unwrap()
            .join("entrypoint.sh");
        let entrypoint = std::fs::read_to_string(root.join(&entrypoint_path)).unwrap();
        assert!(dockerfile.contains("entrypoint.sh\"]"), "{dockerfile_path}");
        for e in s["envVars"].as_sequence().unwrap() {
            let key = e["key"].as_str().unwrap();
            assert!(
                entrypoint.contains(&format!("${{{key}"))
                    || entrypoint.contains(&format!("{key}:")),
                "{name} sets {key}, which {} never reads",
                entrypoint_path.display()
            );
            // Every reference points at a service of this Blueprint, of the right type.
            if let Some(from) = e.get("fromService") {
                let target = by_name(from["name"].as_str().unwrap());
                assert_eq!(from["type"], target["type"], "{key}");
            }
        }
    }
    let prometheus = by_name("ops-worker-prometheus");
    let reference = |key: &str| {
        let f = &env_entry(prometheus, key).unwrap()["fromService"];
        (
            f["name"].as_str().unwrap().to_string(),
            f["property"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        reference("POOL_HOST"),
        ("ops-worker-pool".into(), "host".into())
    );
    assert_eq!(
        reference("API_HOST"),
        ("ops-worker-api".into(), "host".into())
    );
    assert_eq!(
        reference("ALERTMANAGER_HOSTPORT"),
        ("ops-worker-alertmanager".into(), "hostport".into())
    );
    let value = |s, key: &str| {
        env_entry(s, key).unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(value(prometheus, "POOL_METRICS_PORT"), port_of(pool));
    // The API serves /metrics on a second, private port; Prometheus scrapes that one.
    let api_metrics = value(web, "METRICS_PORT");
    assert_ne!(
        api_metrics,
        port_of(web),
        "the API's /metrics would be public"
    );
    assert_eq!(value(prometheus, "API_METRICS_PORT"), api_metrics);
    let alertmanager = by_name("ops-worker-alertmanager");
    for key in ["SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY"] {
        let e = env_entry(alertmanager, key).unwrap();
        assert_eq!(e["sync"], serde_yaml::Value::Bool(false), "{key}");
        assert!(e.get("value").is_none(), "{key}");
    }
    // Only the API is on the public internet.
    let public: Vec<_> = services
        .iter()
        .filter(|s| s["type"] == "web")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(public, ["ops-worker-api"]);
}
