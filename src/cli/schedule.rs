//! `ops-worker schedule add|list|rm`: recurring tasks kept in Redis and fired by every running
//! instance (each tick exactly once).

use clap::{Args, Subcommand};
use serde_json::Value;

use super::error::CliError;
use crate::config::Config;
use crate::queue::QueueStore;
use crate::task::ScheduleSpec;

/// `schedule` subcommands.
#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Add a schedule (or replace the one of the same name).
    Add(AddArgs),
    /// List the schedules and when each fires next.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a schedule.
    Rm {
        /// The schedule's name.
        name: String,
    },
}

/// Flags of `schedule add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// Unique name (A-Z a-z 0-9 - _ .).
    #[arg(long)]
    name: String,
    /// Cron expression: 5 fields (minute hour day month weekday), or 6 with seconds first.
    #[arg(long)]
    cron: String,
    /// Task type, as for `enqueue --type`.
    #[arg(long = "type", value_name = "TYPE")]
    task_type: String,
    /// JSON object of type-specific arguments.
    #[arg(long, default_value = "{}")]
    payload: String,
    /// P0 (highest) .. P3.
    #[arg(long, default_value = "P2")]
    priority: String,
    /// IANA time zone the expression is read in (default UTC).
    #[arg(long)]
    tz: Option<String>,
}

/// Run one `schedule` subcommand.
pub async fn run(
    config: &Config,
    store: &QueueStore,
    command: &ScheduleCommand,
) -> Result<(), CliError> {
    match command {
        ScheduleCommand::Add(args) => add(config, store, args).await,
        ScheduleCommand::List { json } => list(store, *json).await,
        ScheduleCommand::Rm { name } => {
            if store.remove_schedule(name).await? {
                println!("schedule {name} removed");
                Ok(())
            } else {
                Err(CliError::invalid(
                    "name",
                    format!("no schedule named `{name}`"),
                ))
            }
        }
    }
}

async fn add(config: &Config, store: &QueueStore, args: &AddArgs) -> Result<(), CliError> {
    let payload: Value = serde_json::from_str(&args.payload)
        .map_err(|e| CliError::invalid("payload", format!("invalid JSON: {e}")))?;
    let now = chrono::Utc::now();
    let spec = ScheduleSpec {
        name: Some(args.name.clone()),
        cron: Some(args.cron.clone()),
        tz: args.tz.clone(),
        task_type: Some(args.task_type.clone()),
        payload: Some(payload),
        priority: Some(args.priority.clone()),
        max_retries: None,
    };
    let schedule = spec.validate(config.queue.max_retries, &config.submit, now)?;
    let first = schedule
        .next_after(now)
        .ok_or_else(|| CliError::invalid("cron", "never fires"))?;
    store.put_schedule(&schedule, first).await?;
    println!("schedule {} added; first tick {first}", schedule.name);
    Ok(())
}

async fn list(store: &QueueStore, json: bool) -> Result<(), CliError> {
    let entries = store.schedules().await?;
    if json {
        println!("{}", serde_json::to_string(&entries).unwrap_or_default());
        return Ok(());
    }
    if entries.is_empty() {
        println!("no schedules");
        return Ok(());
    }
    println!(
        "{:<24} {:<20} {:<16} {:<9} {:<3} next tick",
        "name", "cron", "tz", "type", "pri"
    );
    for e in entries {
        let s = &e.schedule;
        let next = e
            .next_tick
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "never".into());
        println!(
            "{:<24} {:<20} {:<16} {:<9} {:<3} {next}",
            s.name,
            s.cron,
            s.tz,
            s.task_type.as_str(),
            s.priority.as_str()
        );
    }
    Ok(())
}
