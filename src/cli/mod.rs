//! The command line (SPEC §10). Every subcommand has `--help`.
//!
//! Exit codes: 0 success; 1 a runtime failure (Redis unreachable, a task not found); 2 bad input
//! (invalid configuration naming the variable, an invalid flag or payload naming the field).

pub mod bench;
pub mod demo;
pub mod doctor;

use std::collections::HashMap;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::config::{Config, ConfigError, Mode};
use crate::queue::{
    CancelOutcome, QueueStats, QueueStore, ReplayOutcome, priorities_text, status_text,
};
use crate::task::{NewTask, Priority};

#[derive(Parser, Debug)]
#[command(
    name = "ops-worker",
    version,
    about = "Crash-safe Redis priority-queue worker for ops tasks (Vercel deployments)",
    long_about = "Crash-safe Redis priority-queue worker for ops tasks (Vercel deployments).\n\n\
                  Configuration comes from the environment (see docs/configuration.md); the flags \
                  below override it."
)]
pub struct Cli {
    /// Redis URL (overrides REDIS_URL).
    #[arg(long, global = true, value_name = "URL")]
    redis_url: Option<String>,
    /// Queue name (overrides QUEUE_NAME).
    #[arg(long, global = true, value_name = "NAME")]
    queue: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the consumer pool and the HTTP server until SIGTERM/SIGINT.
    Run(RunArgs),
    /// Everything on one machine, no accounts: Redis (private if none answers), the Vercel
    /// simulator, the pool, the API + dashboard, and sample tasks. Ctrl-C stops it.
    Demo {
        /// HTTP port (default PORT or 8080).
        #[arg(long)]
        port: Option<u16>,
        /// Run a scripted scenario and exit with its result instead (available: bugfix).
        #[arg(long)]
        scenario: Option<String>,
    },
    /// Submit tasks.
    Enqueue(EnqueueArgs),
    /// Pre-deploy checklist: configuration, Redis (reachable, writable, noeviction), Vercel token
    /// and team, Sentry DSN, JWT secret. Exits 1 when anything required fails.
    Doctor {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print queue statistics.
    Stats {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one task's record as JSON.
    Show { task_id: String },
    /// Cancel a task (a running one stops at its next lease renewal).
    Cancel { task_id: String },
    /// Replay a failed (dead-lettered) task.
    Retry { task_id: String },
    /// Pause priorities cluster-wide; their tasks stay pending.
    Pause {
        #[arg(required = true, value_name = "PRIORITY")]
        priorities: Vec<String>,
    },
    /// Resume paused priorities.
    Resume {
        #[arg(required = true, value_name = "PRIORITY")]
        priorities: Vec<String>,
    },
    /// Measure enqueue and drain throughput (noop, or deploy against a simulator) on a private queue.
    Bench(bench::BenchArgs),
    /// Mint an API token (JWT, HS256) from JWT_SECRET.
    Token(TokenArgs),
    /// Run the Vercel API simulator (for tests, demos and staging runs without Vercel).
    VercelSim(SimArgs),
}

#[derive(Args, Debug)]
struct SimArgs {
    /// Port on 127.0.0.1 (0 = any free port; the URL is printed).
    #[arg(long, default_value_t = 4010)]
    port: u16,
    /// Seconds from QUEUED to READY.
    #[arg(long, default_value_t = 2.0)]
    build_secs: f64,
    /// Answer 429 beyond this many calls per minute (default: unlimited).
    #[arg(long)]
    rate_limit_per_min: Option<u32>,
    /// Probability (0..1) of a 500 on any call.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Added to every response.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// The Bearer token it accepts (default: VERCEL_TOKEN, else `sim-token`).
    #[arg(long)]
    token: Option<String>,
}

#[derive(Args, Debug)]
struct TokenArgs {
    /// viewer (read), agent (submit and cancel tasks) or admin (everything).
    #[arg(long)]
    role: String,
    /// Lifetime: seconds, or with a unit: 30m, 24h, 7d.
    #[arg(long, default_value = "24h")]
    ttl: String,
    /// Who the token is for (shown in the worker's logs for control actions).
    #[arg(long, default_value = "operator")]
    sub: String,
}

/// `90`, `30s`, `15m`, `24h`, `7d` → seconds.
fn parse_ttl(s: &str) -> Result<u64, CliError> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| {
        CliError::Invalid(format!(
            "ttl: `{s}` is not a duration like 3600, 30m, 24h, 7d"
        ))
    })?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(CliError::Invalid(format!(
                "ttl: unknown unit `{unit}` (use s, m, h or d)"
            )));
        }
    };
    match n.checked_mul(mult) {
        Some(secs) if secs > 0 && secs <= 10 * 365 * 86_400 => Ok(secs),
        _ => Err(CliError::Invalid(
            "ttl: must be from 1 second to 10 years".into(),
        )),
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Consumers in this instance (overrides WORKER_CONCURRENCY).
    #[arg(long)]
    concurrency: Option<usize>,
    /// HTTP port (overrides PORT).
    #[arg(long)]
    port: Option<u16>,
}

#[derive(Args, Debug)]
struct EnqueueArgs {
    /// Task type: deploy (alias deployment), redeploy, promote, rollback, cancel, check, noop.
    #[arg(long = "type", value_name = "TYPE")]
    task_type: String,
    /// P0 (highest) .. P3.
    #[arg(long, default_value = "P2")]
    priority: String,
    /// JSON object of type-specific arguments.
    #[arg(long, default_value = "{}")]
    payload: String,
    /// How many copies to submit.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Same key within 24 h returns the existing task.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Do not run before this RFC 3339 time.
    #[arg(long)]
    run_at: Option<String>,
    /// Retries after the first attempt (default TASK_MAX_RETRIES).
    #[arg(long)]
    max_retries: Option<u32>,
    /// Free-form submitter name.
    #[arg(long, default_value = "cli")]
    source: String,
    /// Print the submitted task ids as JSON.
    #[arg(long)]
    json: bool,
}

/// Failure of a command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::Invalid(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

impl From<crate::queue::QueueError> for CliError {
    fn from(e: crate::queue::QueueError) -> Self {
        CliError::Failed(e.to_string())
    }
}

/// Parse arguments, run the command, and map the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match actix_rt::System::new().block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// The environment with the global flags (`--redis-url`, `--queue`) applied.
fn env_with_flags(cli: &Cli) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    for (k, v) in [("REDIS_URL", &cli.redis_url), ("QUEUE_NAME", &cli.queue)] {
        if let Some(v) = v {
            vars.insert(k.to_string(), v.clone());
        }
    }
    vars
}

fn load_config(
    cli: &Cli,
    mode: Mode,
    extra: &[(&str, Option<String>)],
) -> Result<Config, CliError> {
    let mut vars = env_with_flags(cli);
    for (k, v) in extra {
        if let Some(v) = v {
            vars.insert(k.to_string(), v.clone());
        }
    }
    Ok(Config::from_vars(&vars, mode)?)
}

fn tool_store(cli: &Cli) -> Result<(Config, QueueStore), CliError> {
    let config = load_config(cli, Mode::Tool, &[])?;
    crate::telemetry::init(&config.log_level, config.log_format);
    let store = QueueStore::new(&config.redis_url, &config.queue)?;
    Ok((config, store))
}

fn parse_priorities(raw: &[String]) -> Result<Vec<Priority>, CliError> {
    raw.iter()
        .flat_map(|s| s.split(','))
        .map(|p| p.parse().map_err(CliError::Invalid))
        .collect()
}

async fn dispatch(cli: Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Run(args) => {
            let config = load_config(
                &cli,
                Mode::Run,
                &[
                    (
                        "WORKER_CONCURRENCY",
                        args.concurrency.map(|n| n.to_string()),
                    ),
                    ("PORT", args.port.map(|p| p.to_string())),
                ],
            )?;
            let _sentry = crate::telemetry::init_with_sentry(&config);
            crate::app::run(config)
                .await
                .map_err(|e| CliError::Failed(e.to_string()))
        }
        Command::Enqueue(args) => enqueue(&cli, args).await,
        Command::Doctor { json } => {
            let checks = doctor::checks(&env_with_flags(&cli)).await;
            if doctor::report(&checks, *json) {
                Ok(())
            } else {
                Err(CliError::Failed("doctor found problems".into()))
            }
        }
        Command::Demo { port, scenario } => demo::run(
            env_with_flags(&cli),
            *port,
            scenario.as_deref(),
            cli.queue.as_deref(),
        )
        .await
        .map_err(|e| match e {
            demo::DemoError::Config(m) => CliError::Invalid(m),
            demo::DemoError::Setup(m) => CliError::Failed(m),
            other => CliError::Failed(other.to_string()),
        }),
        Command::Stats { json } => {
            let (_, store) = tool_store(&cli)?;
            let stats = store.stats().await?;
            if *json {
                println!("{}", serde_json::to_string(&stats).unwrap_or_default());
            } else {
                print_stats(&stats);
            }
            Ok(())
        }
        Command::Show { task_id } => {
            let (_, store) = tool_store(&cli)?;
            match store.get(task_id).await? {
                Some(r) => {
                    println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                    Ok(())
                }
                None => Err(CliError::Failed(format!("task {task_id} not found"))),
            }
        }
        Command::Cancel { task_id } => {
            let (_, store) = tool_store(&cli)?;
            match store.cancel(task_id).await? {
                CancelOutcome::Cancelled => println!("cancelled {task_id}"),
                CancelOutcome::Cancelling => {
                    println!("{task_id} is running; it will stop at its next lease renewal")
                }
                CancelOutcome::NotFound => {
                    return Err(CliError::Failed(format!("task {task_id} not found")));
                }
                CancelOutcome::NotCancellable(s) => {
                    return Err(CliError::Failed(format!(
                        "task {task_id} is already {}; nothing to cancel",
                        status_text(s)
                    )));
                }
            }
            Ok(())
        }
        Command::Retry { task_id } => {
            let (_, store) = tool_store(&cli)?;
            match store.replay(task_id).await? {
                ReplayOutcome::Replayed => {
                    println!("{task_id} is pending again");
                    Ok(())
                }
                ReplayOutcome::NotFound => {
                    Err(CliError::Failed(format!("task {task_id} not found")))
                }
                ReplayOutcome::Stub => Err(CliError::Failed(format!(
                    "task {task_id} is a dead-lettered stub with no task behind it; nothing to retry"
                ))),
                ReplayOutcome::NotFailed(s) => Err(CliError::Failed(format!(
                    "task {task_id} is {}; only failed tasks can be retried",
                    status_text(s)
                ))),
            }
        }
        Command::Pause { priorities } => {
            let ps = parse_priorities(priorities)?;
            let (_, store) = tool_store(&cli)?;
            store.pause(&ps).await?;
            println!("paused: {}", priorities_text(&store.paused().await?));
            Ok(())
        }
        Command::Resume { priorities } => {
            let ps = parse_priorities(priorities)?;
            let (_, store) = tool_store(&cli)?;
            store.resume(&ps).await?;
            println!("paused: {}", priorities_text(&store.paused().await?));
            Ok(())
        }
        Command::Token(args) => {
            let role: crate::api::auth::Role = args
                .role
                .parse()
                .map_err(|e| CliError::Invalid(format!("role: {e}")))?;
            let ttl = parse_ttl(&args.ttl)?;
            let config = load_config(&cli, Mode::Tool, &[])?;
            let secret = config.jwt_secret.ok_or_else(|| {
                CliError::Config(ConfigError {
                    problems: vec![("JWT_SECRET".into(), "is required to mint tokens".into())],
                })
            })?;
            let token = crate::api::auth::JwtKeys::new(&secret, false)
                .mint(&args.sub, role, ttl)
                .map_err(CliError::Failed)?;
            println!("{token}");
            Ok(())
        }
        Command::VercelSim(args) => {
            if !(0.0..=1.0).contains(&args.fail_rate) {
                return Err(CliError::Invalid("fail-rate: must be from 0 to 1".into()));
            }
            if !(args.build_secs >= 0.0 && args.build_secs <= 3600.0) {
                return Err(CliError::Invalid(
                    "build-secs: must be from 0 to 3600".into(),
                ));
            }
            crate::telemetry::init("info", crate::config::LogFormat::Pretty);
            let token = args
                .token
                .clone()
                .or_else(|| std::env::var("VERCEL_TOKEN").ok().filter(|t| !t.is_empty()))
                .unwrap_or_else(|| "sim-token".into());
            let config = crate::vercel::sim::SimConfig {
                token,
                build_secs: args.build_secs,
                rate_limit_per_min: args.rate_limit_per_min,
                fail_rate: args.fail_rate,
                latency_ms: args.latency_ms,
            };
            let server = crate::vercel::sim::start(config, args.port)
                .await
                .map_err(|e| CliError::Failed(format!("cannot start the simulator: {e}")))?;
            println!("Vercel simulator listening on {}", server.url);
            println!(
                "use: VERCEL_API_URL={} (stats: {}/_sim/stats)",
                server.url, server.url
            );
            crate::app::shutdown_signal().await;
            server.stop().await;
            Ok(())
        }
        Command::Bench(args) => {
            let config = load_config(&cli, Mode::Tool, &[])?;
            crate::telemetry::init("warn", config.log_format);
            bench::run(&config, args)
                .await
                .map_err(|e| CliError::Failed(e.to_string()))
        }
    }
}

async fn enqueue(cli: &Cli, args: &EnqueueArgs) -> Result<(), CliError> {
    let payload: Value = serde_json::from_str(&args.payload)
        .map_err(|e| CliError::Invalid(format!("payload: invalid JSON: {e}")))?;
    if args.count == 0 || args.count > 1_000_000 {
        return Err(CliError::Invalid("count: must be from 1 to 1000000".into()));
    }
    let (config, store) = tool_store(cli)?;
    let now = Utc::now();
    let mut tasks = Vec::with_capacity(args.count);
    for _ in 0..args.count {
        let new = NewTask {
            task_type: Some(args.task_type.clone()),
            priority: Some(args.priority.clone()),
            payload: Some(payload.clone()),
            source: Some(args.source.clone()),
            max_retries: args.max_retries,
            idempotency_key: args.idempotency_key.clone(),
            run_at: args.run_at.clone(),
            ..Default::default()
        };
        tasks.push(
            new.validate(config.queue.max_retries, now)
                .map_err(|e| CliError::Invalid(e.to_string()))?,
        );
    }
    let ids = store.enqueue(&tasks).await?;
    if args.json {
        let list: Vec<Value> = ids
            .iter()
            .map(|(id, created)| json!({"task_id": id, "created": created}))
            .collect();
        println!("{}", Value::Array(list));
    } else {
        let created = ids.iter().filter(|(_, c)| *c).count();
        println!(
            "enqueued {created} task(s) on {} ({} already existed)",
            store.key_base(),
            ids.len() - created
        );
        for (id, _) in ids.iter().take(20) {
            println!("{id}");
        }
    }
    Ok(())
}

fn print_stats(s: &QueueStats) {
    let p = |p: Priority| s.pending.get(p);
    println!(
        "pending     P0 {}  P1 {}  P2 {}  P3 {}  (total {})",
        p(Priority::P0),
        p(Priority::P1),
        p(Priority::P2),
        p(Priority::P3),
        s.pending_total
    );
    println!("in flight   {}", s.in_flight);
    println!("retrying    {}", s.retrying);
    println!("delayed     {}", s.delayed);
    println!("failed      {} (dead-lettered)", s.failed);
    println!("paused      {}", priorities_text(&s.paused));
    println!(
        "completed   {} total, {} last 1m, {} last 5m",
        s.completed_total, s.completed_last_1m, s.completed_last_5m
    );
    println!(
        "failures    {} total, {} last 1m, {} last 5m",
        s.failed_total, s.failed_last_1m, s.failed_last_5m
    );
    println!("oldest      {:.1}s waiting", s.oldest_pending_age_secs);
}
