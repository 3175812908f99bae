//! The queue commands: `enqueue`, `show`, `cancel`, `retry`, `pause`, `resume`, `stats`.

use chrono::Utc;
use clap::Args;
use serde_json::{Value, json};

use super::CliError;
use crate::config::Config;
use crate::queue::{
    CancelOutcome, QueueStats, QueueStore, ReplayOutcome, priorities_text, status_text,
};
use crate::task::{NewTask, Priority, TaskRecord};

/// Flags of `enqueue`.
#[derive(Args, Debug)]
pub struct EnqueueArgs {
    /// Task type: deploy (alias deployment), redeploy, promote, rollback, cancel, check, release, noop.
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

/// `enqueue`'s payload and count, checked before any configuration or Redis access.
pub fn enqueue_payload(args: &EnqueueArgs) -> Result<Value, CliError> {
    let payload: Value = serde_json::from_str(&args.payload)
        .map_err(|e| CliError::invalid("payload", format!("invalid JSON: {e}")))?;
    if args.count == 0 || args.count > 1_000_000 {
        return Err(CliError::invalid("count", "must be from 1 to 1000000"));
    }
    Ok(payload)
}

/// `enqueue`: validate every copy first (nothing is stored when one is invalid), then submit
/// them in one call. `payload` comes from [`enqueue_payload`].
pub async fn enqueue(
    store: &QueueStore,
    config: &Config,
    args: &EnqueueArgs,
    payload: &Value,
) -> Result<(), CliError> {
    let tasks = build_tasks(args, payload, config)?;
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

fn build_tasks(
    args: &EnqueueArgs,
    payload: &Value,
    config: &Config,
) -> Result<Vec<TaskRecord>, CliError> {
    let now = Utc::now();
    (0..args.count)
        .map(|_| {
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
            let record = new.validate(config.queue.max_retries, now)?;
            config.submit.check(&record, now)?;
            Ok(record)
        })
        .collect()
}

/// `show`: the record as pretty JSON.
pub async fn show(store: &QueueStore, task_id: &str) -> Result<(), CliError> {
    match store.get(task_id).await? {
        Some(r) => {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            Ok(())
        }
        None => Err(CliError::TaskNotFound(task_id.to_string())),
    }
}

/// `cancel`: at once when not running, else at the running task's next lease renewal.
pub async fn cancel(store: &QueueStore, task_id: &str) -> Result<(), CliError> {
    match store.cancel(task_id).await? {
        CancelOutcome::Cancelled => println!("cancelled {task_id}"),
        CancelOutcome::Cancelling => {
            println!("{task_id} is running; it will stop at its next lease renewal")
        }
        CancelOutcome::NotFound => return Err(CliError::TaskNotFound(task_id.to_string())),
        CancelOutcome::NotCancellable(status) => {
            return Err(CliError::NotCancellable {
                task_id: task_id.to_string(),
                status: status_text(status),
            });
        }
    }
    Ok(())
}

/// `retry`: a dead-lettered task becomes pending again.
pub async fn retry(store: &QueueStore, task_id: &str) -> Result<(), CliError> {
    let task_id = task_id.to_string();
    match store.replay(&task_id).await? {
        ReplayOutcome::Replayed => {
            println!("{task_id} is pending again");
            Ok(())
        }
        ReplayOutcome::NotFound => Err(CliError::TaskNotFound(task_id)),
        ReplayOutcome::Stub => Err(CliError::DeadLetterStub(task_id)),
        ReplayOutcome::NotFailed(status) => Err(CliError::NotRetryable {
            task_id,
            status: status_text(status),
        }),
    }
}

/// `P1 P2` or `P1,P2` → priorities; the error quotes the bad one.
pub fn parse_priorities(raw: &[String]) -> Result<Vec<Priority>, CliError> {
    raw.iter()
        .flat_map(|s| s.split(','))
        .map(|p| p.parse().map_err(CliError::InvalidPriority))
        .collect()
}

/// `pause` (`pause == true`) or `resume`, then print what is paused now.
pub async fn set_paused(
    store: &QueueStore,
    priorities: &[Priority],
    pause: bool,
) -> Result<(), CliError> {
    if pause {
        store.pause(priorities).await?;
    } else {
        store.resume(priorities).await?;
    }
    println!("paused: {}", priorities_text(&store.paused().await?));
    Ok(())
}

/// `stats`: a table, or with `--json` the [`QueueStats`] object (pending keyed P0..P3,
/// pending_total, in_flight, retrying, failed, completed_total, paused, ...).
/// `releases PROJECT`: the project's known-good releases, newest first.
pub async fn releases(store: &QueueStore, project: &str, json: bool) -> Result<(), CliError> {
    let releases = store.releases(project).await?;
    if json {
        println!("{}", serde_json::to_string(&releases).unwrap_or_default());
        return Ok(());
    }
    if releases.is_empty() {
        println!("no known-good releases of {project} yet");
        return Ok(());
    }
    println!(
        "{:<28} {:<12} {:<8} {:<25} task",
        "deployment", "status", "source", "recorded"
    );
    for r in releases {
        let status = serde_json::to_value(r.status).unwrap_or_default();
        let source = serde_json::to_value(r.source).unwrap_or_default();
        println!(
            "{:<28} {:<12} {:<8} {:<25} {}",
            r.deployment_id,
            status.as_str().unwrap_or_default(),
            source.as_str().unwrap_or_default(),
            r.recorded_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            r.task_id
        );
    }
    Ok(())
}

pub async fn stats(store: &QueueStore, json: bool) -> Result<(), CliError> {
    let stats = store.stats().await?;
    if json {
        println!("{}", serde_json::to_string(&stats).unwrap_or_default());
    } else {
        print_stats(&stats);
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
