//! The command line. Every subcommand has `--help`.
//!
//! Exit codes: 0 success; 1 a runtime failure (Redis unreachable, a task not found); 2 bad input
//! (invalid configuration naming the variable, an invalid flag or payload naming the field). The
//! mapping lives in [`CliError::exit_code`].
//!
//! This file parses the arguments and dispatches; each command lives in its own file: the queue
//! commands in `tasks`, `token`, `vercel-sim` in `sim`, plus `bench`, `demo` and `doctor`.

pub mod bench;
pub mod demo;
pub mod doctor;
mod error;
mod schedule;
mod sim;
mod tasks;
mod token;

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Mode};
use crate::queue::QueueStore;

pub use error::CliError;

/// The parsed command line: global flags and one subcommand.
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

/// The subcommands; the doc comments are their `--help` text.
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
    Enqueue(tasks::EnqueueArgs),
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
    /// List a project's known-good releases, newest first (the target of a rollback without a
    /// deployment id is the first `good` one that production is not serving now).
    Releases {
        /// The project (name or id, as in task payloads).
        project: String,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Recurring tasks: add, list, remove (each tick fires once across all instances).
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Measure enqueue and drain throughput (noop, or deploy against a simulator) on a private queue.
    Bench(bench::BenchArgs),
    /// Mint an API token (JWT, HS256) from JWT_SECRET.
    Token(token::TokenArgs),
    /// Run the Vercel API simulator (for tests, demos and staging runs without Vercel).
    VercelSim(sim::SimArgs),
}

/// Flags of `run`.
#[derive(Args, Debug)]
struct RunArgs {
    /// Consumers in this instance (overrides WORKER_CONCURRENCY).
    #[arg(long)]
    concurrency: Option<usize>,
    /// HTTP port (overrides PORT).
    #[arg(long)]
    port: Option<u16>,
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

/// Run one command. Arguments are checked before the configuration is read, so a bad flag is
/// reported as such even when the environment is also wrong.
async fn dispatch(cli: Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Run(args) => run(&cli, args).await,
        Command::Demo { port, scenario } => demo(&cli, *port, scenario.as_deref()).await,
        Command::Enqueue(args) => {
            let payload = tasks::enqueue_payload(args)?;
            let (config, store) = tool_store(&cli).await?;
            tasks::enqueue(&store, &config, args, &payload).await
        }
        Command::Doctor { json } => doctor(&cli, *json).await,
        Command::Stats { json } => tasks::stats(&tool_store(&cli).await?.1, *json).await,
        Command::Show { task_id } => tasks::show(&tool_store(&cli).await?.1, task_id).await,
        Command::Cancel { task_id } => tasks::cancel(&tool_store(&cli).await?.1, task_id).await,
        Command::Retry { task_id } => tasks::retry(&tool_store(&cli).await?.1, task_id).await,
        Command::Pause { priorities } | Command::Resume { priorities } => {
            let pause = matches!(cli.command, Command::Pause { .. });
            let priorities = tasks::parse_priorities(priorities)?;
            tasks::set_paused(&tool_store(&cli).await?.1, &priorities, pause).await
        }
        Command::Releases { project, json } => {
            tasks::releases(&tool_store(&cli).await?.1, project, *json).await
        }
        Command::Schedule(command) => {
            let (config, store) = tool_store(&cli).await?;
            schedule::run(&config, &store, command).await
        }
        Command::Bench(args) => bench(&cli, args).await,
        Command::Token(args) => {
            let request = token::parse(args)?;
            token::mint(&load_config(&cli, Mode::Tool, &[])?, &request)
        }
        Command::VercelSim(args) => sim::run(args).await,
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

/// The configuration from the environment, the global flags and a command's own overrides.
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

/// Configuration, logging and a store for the operator tools.
async fn tool_store(cli: &Cli) -> Result<(Config, QueueStore), CliError> {
    let config = load_config(cli, Mode::Tool, &[])?;
    crate::telemetry::init(&config.log_level, config.log_format);
    let store = QueueStore::new(&config.redis, &config.queue).await?;
    Ok((config, store))
}

/// `run`: the pool and the HTTP server (strict configuration, Sentry on when configured).
async fn run(cli: &Cli, args: &RunArgs) -> Result<(), CliError> {
    let overrides = [
        (
            "WORKER_CONCURRENCY",
            args.concurrency.map(|n| n.to_string()),
        ),
        ("PORT", args.port.map(|p| p.to_string())),
    ];
    let config = load_config(cli, Mode::Run, &overrides)?;
    let _sentry = crate::telemetry::init_with_sentry(&config);
    Ok(crate::app::run(config).await?)
}

/// `demo`: see [`demo::run`].
async fn demo(cli: &Cli, port: Option<u16>, scenario: Option<&str>) -> Result<(), CliError> {
    let vars = env_with_flags(cli);
    Ok(demo::run(vars, port, scenario, cli.queue.as_deref()).await?)
}

/// `doctor`: print every check; fails when any required one does.
async fn doctor(cli: &Cli, json: bool) -> Result<(), CliError> {
    let checks = doctor::checks(&env_with_flags(cli)).await;
    if doctor::report(&checks, json) {
        Ok(())
    } else {
        Err(CliError::DoctorFailed)
    }
}

/// `bench`: see [`bench::run`]; logs only warnings so the figures stay readable.
async fn bench(cli: &Cli, args: &bench::BenchArgs) -> Result<(), CliError> {
    let config = load_config(cli, Mode::Tool, &[])?;
    crate::telemetry::init("warn", config.log_format);
    Ok(bench::run(&config, args).await?)
}
