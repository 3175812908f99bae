//! Operating it: `demo` on a machine without Redis, `doctor` on healthy and broken setups, and the
//! guide's E2E bug-fix scenario.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const STRONG_SECRET: &str = "9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a";

fn path_env() -> String {
    std::env::var("PATH").unwrap_or_default()
}

/// Lines of a child's output until one contains `marker`; panics with what came after `within`.
fn lines_until(rx: &mpsc::Receiver<String>, marker: &str, within: Duration) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let deadline = Instant::now() + within;
    while !lines.iter().any(|l| l.contains(marker)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => panic!(
                "no {marker:?} in time; output so far:\n{}",
                lines.join("\n")
            ),
        }
    }
    lines
}

/// The demo's summary lists every sample as `ok`: every task type and every priority.
fn assert_every_sample_ran(lines: &[String]) {
    let out = lines.join("\n");
    let summary: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("  ok ") || l.starts_with("  !! "))
        .collect();
    assert!(summary.len() >= 14, "{out}");
    assert!(
        summary.iter().all(|l| l.starts_with("  ok ")),
        "a sample ended unexpectedly:\n{out}"
    );
    let types = [
        "deploy",
        "deployment",
        "check",
        "promote",
        "redeploy",
        "roll back",
        "cancel",
        "release",
        "noop",
    ];
    for ty in types {
        assert!(out.contains(ty), "no {ty} sample:\n{out}");
    }
    for p in ["P0", "P1", "P2", "P3"] {
        assert!(
            summary.iter().any(|l| l.contains(&format!(" {p} "))),
            "no {p} sample"
        );
    }
}

/// SIGINT, then the child must exit 0 within a minute.
fn stop_with_sigint(child: &mut std::process::Child) {
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
    let lines = lines_until(&rx, "the dashboard stays up", Duration::from_secs(180));
    let out = lines.join("\n");
    assert!(out.contains("started a private redis-server"), "{out}");
    assert!(out.contains(&format!("http://localhost:{port}/")), "{out}");
    assert!(out.contains("admin token: ey"), "{out}");
    assert_every_sample_ran(&lines);
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

    stop_with_sigint(&mut child);
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

/// `env` with `key` set to `value`.
fn with(env: &[(&'static str, String)], key: &str, value: &str) -> Vec<(&'static str, String)> {
    let mut env = env.to_vec();
    for (k, v) in env.iter_mut() {
        if *k == key {
            *v = value.to_string();
        }
    }
    env
}

/// Doctor fails under `env`, and one failing check matches `is_it`; returns its text output.
fn fails_with(env: &[(&str, String)], is_it: impl Fn(&str) -> bool) -> String {
    let (ok, report, text) = doctor(env);
    assert!(!ok, "doctor passed: {text}");
    let failures = failing(&report);
    assert!(failures.iter().any(|f| is_it(f)), "{failures:?}");
    text
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

    // A bad token: named, and no secret in the report.
    let text = fails_with(&with(&healthy, "VERCEL_TOKEN", "tok_wrong"), |f| {
        f.starts_with("vercel token: rejected (401)")
    });
    assert!(
        !text.contains("tok_wrong") && !text.contains(&sim.token) && !text.contains(STRONG_SECRET)
    );
    let closed = format!("redis://127.0.0.1:{}", free_port());
    fails_with(&with(&healthy, "REDIS_URL", &closed), |f| {
        f.starts_with("redis reachable")
    });
    // A missing variable and a weak secret are named.
    let missing: Vec<_> = healthy
        .iter()
        .filter(|(k, _)| *k != "VERCEL_TOKEN")
        .cloned()
        .collect();
    fails_with(&missing, |f| f.contains("VERCEL_TOKEN: is required"));
    fails_with(&with(&healthy, "JWT_SECRET", &"x".repeat(40)), |f| {
        f.starts_with("jwt secret")
    });

    // An evicting policy (the guide's own allkeys-lru suggestion).
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query(&mut redis.conn())
        .unwrap();
    fails_with(&healthy, |f| {
        f.starts_with("redis eviction policy") && f.contains("allkeys-lru")
    });
}
