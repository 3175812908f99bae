//! `ops-worker demo`: the whole product on one machine with no accounts.
//!
//! Uses `REDIS_URL` (default the local Redis) or, when nothing answers there, starts a private
//! `redis-server`; runs the Vercel simulator in-process; starts the pool, metrics and the API +
//! dashboard exactly as `run` does; submits sample tasks of every type and priority; prints the
//! dashboard URL and an admin token. Ctrl-C drains and stops everything.
//!
//! `--scenario bugfix` is the deployment guide's bug-fix scenario and its staging step "run the
//! E2E test", with `release` tasks through the real pipeline: a known-good release, a P1 hot fix
//! whose verification fails and is rolled back automatically, then the fixed hot fix; it exits 0
//! when all three ended as expected, non-zero otherwise.
//!
//! Files: `local_redis` finds or starts the Redis, `samples` submits and watches the sample tasks,
//! `scenario` is the bug-fix scenario; this one wires them together.

mod local_redis;
mod samples;
mod scenario;

use std::collections::HashMap;
use std::time::Duration;

use crate::api::auth::{AuthError, JwtKeys, Role};
use crate::app::{Instance, StartupError, shutdown_signal};
use crate::config::{Config, ConfigError, Mode, RedisUrl, Secret};
use crate::queue::{QueueError, QueueStore};
use crate::task::{TaskStatus, ValidationError};
use crate::vercel::sim::{self, SimConfig, SimServer};

use scenario::EVENT_TIMEOUT;

/// Why the demo could not run. `Config` is invalid input (exit 2); everything else is a runtime
/// failure (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The environment does not validate (exit 2, naming the variable).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `--scenario` names no known scenario.
    #[error("unknown scenario `{0}` (available: bugfix)")]
    UnknownScenario(String),
    /// No port could be reserved for a private redis-server.
    #[error("no free port for Redis: {0}")]
    NoFreePort(#[source] std::io::Error),
    /// The private redis-server's data directory could not be created.
    #[error("{0}")]
    RedisDir(#[source] std::io::Error),
    /// Nothing answers at `url` and `redis-server` could not be run.
    #[error(
        "nothing answers at {url} and redis-server could not be started ({source}).\n\
         Install it with `apt-get install -y redis-server` (or point REDIS_URL at a Redis)."
    )]
    NoRedis {
        /// The Redis that was tried first (redacted when printed).
        url: RedisUrl,
        /// Why `redis-server` did not run.
        source: std::io::Error,
    },
    /// The private redis-server ran but never answered.
    #[error("the private redis-server did not start")]
    RedisNotAnswering,
    /// The in-process Vercel simulator could not bind a port.
    #[error("cannot start the Vercel simulator: {0}")]
    Simulator(#[source] std::io::Error),
    /// The pool, metrics or API could not start.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// A sample task did not validate (a bug in the demo).
    #[error(transparent)]
    Sample(#[from] ValidationError),
    /// Redis failed while submitting or reading tasks.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The admin token could not be signed (the signer's message).
    #[error(transparent)]
    Mint(AuthError),
    /// The event subscription's Redis client could not be built.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// The scenario could not subscribe to the deploy events.
    #[error("cannot subscribe to events: {0}")]
    Subscribe(#[source] redis::RedisError),
    /// The bug-fix sample deploy did not end, so its deployment cannot be operated on.
    #[error("the bug-fix deploy did not finish")]
    BugfixUnfinished,
    /// Scenario: no `release.rolled_back` event for the broken hot fix in time.
    #[error("scenario failed: no release.rolled_back event within {} s", EVENT_TIMEOUT.as_secs())]
    NoEvent,
    /// Scenario: production was rolled back somewhere else than the last known good release.
    #[error("scenario failed: rolled back to {0}, not to the last known good release")]
    WrongRollback(String),
    /// Scenario: the event came but the task record never became terminal.
    #[error("scenario failed: the task did not finish")]
    TaskUnfinished,
    /// Scenario: the task ended but not `completed`.
    #[error("scenario failed: task ended {status} ({error})")]
    TaskEnded {
        /// Its terminal status.
        status: TaskStatus,
        /// Its last error, empty when none.
        error: String,
    },
}

/// 48 random letters and digits (the JWT secret and simulator token when none is set).
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

/// Where the demo runs: its Redis, the simulator and the HTTP port.
struct DemoTarget<'a> {
    /// The Redis in use (the environment's or the private one).
    redis_url: &'a str,
    /// The in-process simulator's base URL.
    sim_url: &'a str,
    /// The token the simulator accepts.
    sim_token: &'a str,
    /// HTTP port of the API and dashboard.
    port: u16,
}

/// The environment with the demo's defaults and its Redis, simulator and port forced.
fn demo_config(
    vars: &HashMap<String, String>,
    target: &DemoTarget<'_>,
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
    v.insert("REDIS_URL".into(), target.redis_url.into());
    v.insert("VERCEL_API_URL".into(), target.sim_url.into());
    v.insert("VERCEL_TOKEN".into(), target.sim_token.into());
    v.remove("VERCEL_TEAM_ID");
    v.insert("PORT".into(), target.port.to_string());
    v.insert("AUTH_TRUST_LOOPBACK".into(), "true".into());
    // The demo's samples use noop's diagnostic knobs (sleep, fail, panic).
    v.insert("WORKER_DIAGNOSTICS".into(), "true".into());
    v.entry("JWT_SECRET".into()).or_insert_with(random_secret);
    Ok(Config::from_vars(&v, Mode::Run)?)
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
        return Err(DemoError::UnknownScenario(s.to_string()));
    }
    let port = port
        .or_else(|| vars.get("PORT").and_then(|p| p.parse().ok()))
        .unwrap_or(8080);
    let (redis_url, _private_redis) = local_redis::redis_for_demo(&vars).await?;
    let sim_token = format!("sim_{}", random_secret());
    // The scenario's three releases build in 2 s each; the interactive demo's builds take 10 s.
    let build_secs = if scenario.is_some() { 2.0 } else { 10.0 };
    let sim = start_simulator(&sim_token, build_secs).await?;
    let target = DemoTarget {
        redis_url: &redis_url,
        sim_url: &sim.url,
        sim_token: &sim_token,
        port,
    };
    let config = demo_config(&vars, &target, queue)?;
    crate::telemetry::init(&config.log_level, config.log_format);
    let instance = Instance::start(&config).await?;
    let store = instance.store.clone();

    let outcome = match scenario {
        Some(_) => scenario::bugfix_scenario(&config, &store, &sim).await,
        None => interactive(&config, store, sim.site_url()).await,
    };
    instance.shutdown().await;
    sim.stop().await;
    outcome
}

/// The in-process Vercel simulator. The interactive demo's builds take 10 s, so cancelling one
/// while it builds works even on a busy machine.
async fn start_simulator(token: &str, build_secs: f64) -> Result<SimServer, DemoError> {
    let config = SimConfig {
        token: token.to_string(),
        build_secs,
        ..SimConfig::default()
    };
    sim::start(config, 0).await.map_err(DemoError::Simulator)
}

/// Print the URLs and an admin token, submit the samples, report how they ended, and keep the
/// dashboard up until Ctrl-C.
async fn interactive(
    config: &Config,
    store: QueueStore,
    site_url: String,
) -> Result<(), DemoError> {
    let secret = config
        .jwt_secret
        .clone()
        .unwrap_or_else(|| Secret::new(random_secret()));
    let token = JwtKeys::new(&secret, false)
        .mint(
            "demo-admin",
            Role::Admin,
            config.jwt_max_ttl.as_secs().min(86_400),
        )
        .map_err(DemoError::Mint)?;
    let base = format!("http://localhost:{}", config.port);
    print_banner(&base, &token, &store);
    let samples = tokio::select! {
        s = samples::submit_samples(store.clone(), site_url) => s?,
        _ = shutdown_signal() => return Ok(()),
    };
    let watch = async {
        samples::wait_until_ended(&store, &samples, Duration::from_secs(180)).await;
        samples::print_outcomes(&store, &samples).await;
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

fn print_banner(base: &str, token: &str, store: &QueueStore) {
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
}
