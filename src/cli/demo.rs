//! `ops-worker demo`: the whole product on one machine with no accounts.
//!
//! Uses `REDIS_URL` (default the local Redis) or, when nothing answers there, starts a private
//! `redis-server`; runs the Vercel simulator in-process; starts the pool, metrics and the API +
//! dashboard exactly as `run` does; submits sample tasks of every type and priority; prints the
//! dashboard URL and an admin token. Ctrl-C drains and stops everything.
//!
//! `--scenario bugfix` is the deployment guide's staging step "run the E2E test": one P1 bug-fix
//! deploy goes through the real pipeline; it exits 0 once the task is `completed` and its
//! `deploy.succeeded` event was seen on Redis, non-zero otherwise.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::api::auth::{JwtKeys, Role};
use crate::app::{Instance, shutdown_signal};
use crate::config::{Config, LOCAL_REDIS_URL, Mode, RedisUrl, Secret};
use crate::queue::QueueStore;
use crate::task::{NewTask, TaskStatus};
use crate::vercel::sim::{self, SimConfig};

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The environment does not validate (exit 2, naming the variable).
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Setup(String),
    #[error("scenario failed: {0}")]
    Scenario(String),
}

/// A private redis-server the demo started (killed on drop).
struct PrivateRedis {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let attempt = async {
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut c).await.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(_))
    )
}

/// `REDIS_URL` (or the local default) when it answers, else a private redis-server.
async fn redis_for_demo(
    vars: &HashMap<String, String>,
) -> Result<(String, Option<PrivateRedis>), DemoError> {
    let wanted = vars
        .get("REDIS_URL")
        .filter(|u| !u.is_empty())
        .cloned()
        .unwrap_or_else(|| LOCAL_REDIS_URL.to_string());
    if answers(&wanted).await {
        return Ok((wanted, None));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DemoError::Setup(format!("no free port for Redis: {e}")))?;
    let dir = std::env::temp_dir().join(format!("ops-worker-demo-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| DemoError::Setup(e.to_string()))?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "no", "--maxmemory-policy", "noeviction"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            DemoError::Setup(format!(
                "nothing answers at {} and redis-server could not be started ({e}).\n\
                 Install it with `apt-get install -y redis-server` (or point REDIS_URL at a Redis).",
                RedisUrl::new(&wanted)
            ))
        })?;
    let redis = PrivateRedis { child, dir };
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers(&url).await {
        if Instant::now() > deadline {
            return Err(DemoError::Setup(
                "the private redis-server did not start".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "nothing answered at {}; started a private redis-server at {url}",
        RedisUrl::new(&wanted)
    );
    Ok((url, Some(redis)))
}

fn random_secret() -> String {
    (0..48)
        .map(|_| {
            let n = rand::random_range(0..62u8);
            (match n {
                0..=9 => b'0' + n,
                10..=35 => b'a' + n - 10,
                _ => b'A' + n - 36,
            }) as char
        })
        .collect()
}

/// One sample submission and what it should end as.
struct Sample {
    id: String,
    label: &'static str,
    expect: TaskStatus,
}

async fn submit(
    store: &QueueStore,
    ty: &str,
    priority: &str,
    payload: Value,
    max_retries: u32,
) -> Result<String, DemoError> {
    let record = NewTask {
        task_type: Some(ty.into()),
        priority: Some(priority.into()),
        payload: Some(payload),
        source: Some("demo".into()),
        max_retries: Some(max_retries),
        ..Default::default()
    }
    .validate(max_retries, Utc::now())
    .map_err(|e| DemoError::Setup(e.to_string()))?;
    let id = record.task_id.to_string();
    store
        .enqueue(&[record])
        .await
        .map_err(|e| DemoError::Setup(e.to_string()))?;
    Ok(id)
}

async fn wait_for(
    store: &QueueStore,
    id: &str,
    timeout: Duration,
    done: impl Fn(&crate::task::TaskRecord) -> bool,
) -> Option<crate::task::TaskRecord> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(r)) = store.get(id).await
            && done(&r)
        {
            return Some(r);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// The bug-fix deploy of the guide's staging run.
fn bugfix_payload() -> Value {
    json!({
        "project": "morningai-web",
        "repo": "RC918/morningai",
        "branch": "fix/ops-worker-timeout",
        "commit": "3f2c1ab9e0d4",
        "pr": 128,
        "target": "production"
    })
}

async fn submit_samples(store: QueueStore) -> Result<Vec<Sample>, DemoError> {
    let mut out = Vec::new();
    let mut add = |id: String, label: &'static str, expect: TaskStatus| {
        println!("  submitted {id}  {label:<48} (expect {expect})");
        out.push(Sample { id, label, expect });
    };
    let fix = submit(&store, "deploy", "P1", bugfix_payload(), 3).await?;
    add(
        fix.clone(),
        "P1 deploy: bug fix PR #128 to production",
        TaskStatus::Completed,
    );
    let guide = submit(&store, "deployment", "P2", json!({"service": "test"}), 3).await?;
    add(
        guide,
        "P2 deployment {\"service\":\"test\"} (the guide)",
        TaskStatus::Completed,
    );
    add(
        submit(&store, "noop", "P0", json!({"sleep_ms": 200}), 3).await?,
        "P0 noop",
        TaskStatus::Completed,
    );
    for _ in 0..3 {
        add(
            submit(&store, "noop", "P3", json!({"sleep_ms": 500}), 3).await?,
            "P3 noop (low priority)",
            TaskStatus::Completed,
        );
    }
    add(
        submit(&store, "noop", "P2", json!({"fail": true}), 1).await?,
        "P2 noop that fails: retried, then dead-lettered",
        TaskStatus::Failed,
    );
    add(
        submit(&store, "deploy", "P2", json!({"project": "error-demo"}), 3).await?,
        "P2 deploy whose build fails (ERROR)",
        TaskStatus::Failed,
    );
    // A preview deploy cancelled while it builds: the cancel completes, the deploy ends CANCELED.
    let preview = submit(
        &store,
        "deploy",
        "P2",
        json!({"project": "morningai-preview"}),
        3,
    )
    .await?;
    add(
        preview.clone(),
        "P2 deploy, cancelled while it builds",
        TaskStatus::Failed,
    );
    let building = wait_for(&store, &preview, Duration::from_secs(60), |r| {
        r.deployment_id.is_some() || r.status.is_terminal()
    })
    .await;
    if let Some(dpl) = building.and_then(|r| r.deployment_id) {
        add(
            submit(&store, "cancel", "P0", json!({"deployment_id": dpl}), 3).await?,
            "P0 cancel that deployment",
            TaskStatus::Completed,
        );
    }
    // Operations on the bug-fix deployment once it is READY.
    let ready = wait_for(&store, &fix, Duration::from_secs(120), |r| {
        r.status.is_terminal()
    })
    .await;
    let Some(dpl) = ready
        .and_then(|r| r.result)
        .and_then(|v| v["deployment_id"].as_str().map(str::to_string))
    else {
        return Err(DemoError::Setup("the bug-fix deploy did not finish".into()));
    };
    let on = |p: &str| json!({"project": "morningai-web", "deployment_id": dpl, "target": p});
    add(
        submit(&store, "check", "P2", on("production"), 3).await?,
        "P2 check the deployment",
        TaskStatus::Completed,
    );
    add(
        submit(&store, "promote", "P1", on("production"), 3).await?,
        "P1 promote it",
        TaskStatus::Completed,
    );
    add(
        submit(&store, "redeploy", "P3", json!({"deployment_id": dpl}), 3).await?,
        "P3 redeploy it",
        TaskStatus::Completed,
    );
    add(
        submit(&store, "rollback", "P0", on("production"), 3).await?,
        "P0 roll back to it",
        TaskStatus::Completed,
    );
    Ok(out)
}

fn demo_config(
    vars: &HashMap<String, String>,
    redis_url: &str,
    sim_url: &str,
    sim_token: &str,
    port: u16,
    queue: Option<&str>,
) -> Result<Config, DemoError> {
    let mut v = vars.clone();
    // Never the exported QUEUE_NAME: a shell set up for production must not have its real tasks
    // run against the simulator. Only `--queue` chooses another queue.
    v.remove("QUEUE_NAME");
    if let Some(q) = queue {
        v.insert("QUEUE_NAME".into(), q.to_string());
    }
    let defaults = [
        ("QUEUE_NAME", "demo"),
        ("WORKER_CONCURRENCY", "8"),
        ("LOG_LEVEL", "warn"),
        ("LOG_FORMAT", "pretty"),
        ("VERCEL_POLL_INTERVAL_SECS", "0.5"),
    ];
    for (k, val) in defaults {
        v.entry(k.to_string()).or_insert_with(|| val.to_string());
    }
    v.insert("REDIS_URL".into(), redis_url.into());
    v.insert("VERCEL_API_URL".into(), sim_url.into());
    v.insert("VERCEL_TOKEN".into(), sim_token.into());
    v.remove("VERCEL_TEAM_ID");
    v.insert("PORT".into(), port.to_string());
    v.insert("AUTH_TRUST_LOOPBACK".into(), "true".into());
    v.entry("JWT_SECRET".into()).or_insert_with(random_secret);
    Config::from_vars(&v, Mode::Run).map_err(|e| DemoError::Config(e.to_string()))
}

/// Run the demo (or the bug-fix scenario) with these environment variables. Call inside an actix
/// System.
pub async fn run(
    vars: HashMap<String, String>,
    port: Option<u16>,
    scenario: Option<&str>,
    queue: Option<&str>,
) -> Result<(), DemoError> {
    if let Some(s) = scenario.filter(|s| *s != "bugfix") {
        return Err(DemoError::Setup(format!(
            "unknown scenario `{s}` (available: bugfix)"
        )));
    }
    let port = port
        .or_else(|| vars.get("PORT").and_then(|p| p.parse().ok()))
        .unwrap_or(8080);
    let (redis_url, _private_redis) = redis_for_demo(&vars).await?;
    let sim_token = format!("sim_{}", random_secret());
    let sim = sim::start(
        SimConfig {
            token: sim_token.clone(),
            build_secs: 6.0,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .map_err(|e| DemoError::Setup(format!("cannot start the Vercel simulator: {e}")))?;
    let config = demo_config(&vars, &redis_url, &sim.url, &sim_token, port, queue)?;
    crate::telemetry::init(&config.log_level, config.log_format);
    let instance = Instance::start(&config).map_err(|e| DemoError::Setup(e.to_string()))?;
    let store = instance.store.clone();

    let outcome = match scenario {
        Some(_) => bugfix_scenario(&config, &store).await,
        None => interactive(&config, store).await,
    };
    instance.shutdown().await;
    sim.stop().await;
    outcome
}

async fn interactive(config: &Config, store: QueueStore) -> Result<(), DemoError> {
    let secret = config
        .jwt_secret
        .clone()
        .unwrap_or_else(|| Secret::new(random_secret()));
    let token = JwtKeys::new(&secret, false)
        .mint("demo-admin", Role::Admin, 86_400)
        .map_err(DemoError::Setup)?;
    let base = format!("http://localhost:{}", config.port);
    println!();
    println!("ops-worker demo is running");
    println!("  dashboard:   {base}/");
    println!("  admin token: {token}");
    println!(
        "  try:         curl {base}/api/queue/stats   (local requests are trusted in the demo)"
    );
    println!(
        "               curl -H \"Authorization: Bearer $TOKEN\" {base}/api/tasks/recent?limit=10"
    );
    println!(
        "  Vercel:      simulated in-process; queue {}",
        store.key_base()
    );
    println!("  stop:        Ctrl-C");
    println!();
    println!("submitting sample tasks:");
    let samples = tokio::select! {
        s = submit_samples(store.clone()) => s?,
        _ = shutdown_signal() => return Ok(()),
    };
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let mut open = 0;
            for s in &samples {
                if !store
                    .get(&s.id)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.status.is_terminal())
                {
                    open += 1;
                }
            }
            if open == 0 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!();
        println!("sample tasks:");
        for s in &samples {
            let status = store
                .get(&s.id)
                .await
                .ok()
                .flatten()
                .map(|r| r.status.to_string())
                .unwrap_or_else(|| "missing".into());
            let mark = if status == s.expect.as_str() {
                "ok "
            } else {
                "!! "
            };
            println!("  {mark}{}  {:<48} {status}", s.id, s.label);
        }
        println!();
        println!("the dashboard stays up at {base}/ until Ctrl-C");
        futures::future::pending::<()>().await;
    };
    tokio::select! {
        _ = watch => {}
        _ = shutdown_signal() => println!("stopping (draining the pool)..."),
    }
    Ok(())
}

async fn bugfix_scenario(config: &Config, store: &QueueStore) -> Result<(), DemoError> {
    // Watch for the event first, so it cannot be missed.
    let client = redis::Client::open(config.redis_url.expose())
        .map_err(|e| DemoError::Setup(e.to_string()))?;
    let mut pubsub = client
        .get_async_pubsub()
        .await
        .map_err(|e| DemoError::Setup(format!("cannot subscribe to events: {e}")))?;
    let channel = store.key("events:deploy.succeeded");
    pubsub
        .subscribe(&channel)
        .await
        .map_err(|e| DemoError::Setup(format!("cannot subscribe to events: {e}")))?;
    let id = submit(store, "deploy", "P1", bugfix_payload(), 3).await?;
    println!(
        "E2E bug-fix scenario: submitted P1 deploy {id} (PR #128, fix/ops-worker-timeout @ 3f2c1ab9e0d4)"
    );

    let mut messages = pubsub.on_message();
    let event = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(msg) = messages.next().await {
            let body: Value = msg
                .get_payload::<String>()
                .ok()
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or(Value::Null);
            if body["task_id"] == id.as_str() {
                return Some(body);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| DemoError::Scenario("no deploy.succeeded event within 120 s".into()))?;
    println!(
        "  event deploy.succeeded: deployment {} at {}",
        event["deployment_id"], event["url"]
    );
    let record = wait_for(store, &id, Duration::from_secs(30), |r| {
        r.status.is_terminal()
    })
    .await
    .ok_or_else(|| DemoError::Scenario("the task did not finish".into()))?;
    if record.status != TaskStatus::Completed {
        return Err(DemoError::Scenario(format!(
            "task ended {} ({})",
            record.status,
            record.error.unwrap_or_default()
        )));
    }
    let result = record.result.unwrap_or(Value::Null);
    println!(
        "  task completed: state {} url {}",
        result["state"], result["url"]
    );
    println!("E2E bug-fix scenario passed");
    Ok(())
}
