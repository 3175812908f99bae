//! `ops-worker bench`: enqueue N noop (or `--kind deploy`) tasks into a private queue on
//! `REDIS_URL`, drain them with C consumers of the real pool, and report enqueue/s, drain/s, claim latency, peak RSS and Redis
//! round trips per task. The private queue is deleted afterwards.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Args;
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::config::Config;
use crate::handlers::HandlerRegistry;
use crate::pool::consumer::ClaimProbe;
use crate::pool::supervisor::StopPool;
use crate::queue::{QueueError, QueueStore};
use crate::task::{NewTask, TaskRecord};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Noop tasks to enqueue and drain.
    #[arg(long, default_value_t = 20_000)]
    pub tasks: usize,
    /// Consumers draining them.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Tasks claimed per round trip (WORKER_PREFETCH for the drain).
    #[arg(long, default_value_t = 64)]
    pub prefetch: usize,
    /// What to drain: `noop` tasks, or `deploy` tasks against an in-process Vercel simulator
    /// (builds finish at once, rate limit off) to measure the Vercel path's overhead.
    #[arg(long, default_value = "noop", value_parser = ["noop", "deploy"])]
    pub kind: String,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `bench` reports.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub kind: String,
    pub tasks: usize,
    pub concurrency: usize,
    pub prefetch: usize,
    pub enqueue_per_sec: f64,
    pub drain_per_sec: f64,
    pub claim_wait_p50_ms: f64,
    pub claim_wait_p99_ms: f64,
    pub redis_round_trips_per_task: f64,
    pub peak_rss_mb: f64,
}

#[derive(Default)]
struct ClaimLatencies(Mutex<Vec<f64>>);

impl ClaimProbe for ClaimLatencies {
    fn claimed(&self, latency: Duration, claimed: usize) {
        if claimed > 0
            && let Ok(mut v) = self.0.lock()
        {
            v.push(latency.as_secs_f64() * 1000.0);
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub async fn run(base: &Config, args: &BenchArgs) -> Result<(), QueueError> {
    let mut config = base.clone();
    config.queue.name = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    config.worker.concurrency = args.concurrency.max(1);
    config.worker.prefetch = args.prefetch.max(1);
    config.worker.instance_id = format!("bench-{}", std::process::id());

    // Separate stores: the pool's round trips are counted apart from the bench's own polling.
    let admin = QueueStore::new(&config.redis_url, &config.queue)?;
    let pool_store = QueueStore::new(&config.redis_url, &config.queue)?;
    admin.ping().await?;

    // For deploy benchmarks: an in-process simulator and a Vercel client pointed at it.
    let sim = if args.kind == "deploy" {
        let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let server = crate::vercel::sim::start(
            crate::vercel::sim::SimConfig {
                token: token.clone(),
                build_secs: 0.0,
                ..Default::default()
            },
            0,
        )
        .await
        .map_err(|e| QueueError::Protocol(format!("cannot start the simulator: {e}")))?;
        config.vercel.api_url = server.url.clone();
        config.vercel.token = Some(crate::config::Secret::new(token));
        config.vercel.rate_limit_per_min = 0;
        config.vercel.poll_interval = Duration::from_millis(20);
        Some(server)
    } else {
        None
    };
    let (task_type, payload) = if sim.is_some() {
        ("deploy", json!({"project": "bench"}))
    } else {
        ("noop", json!({}))
    };

    let now = Utc::now();
    let records: Vec<TaskRecord> = (0..args.tasks)
        .filter_map(|_| {
            NewTask {
                task_type: Some(task_type.into()),
                payload: Some(payload.clone()),
                source: Some("bench".into()),
                ..Default::default()
            }
            .validate(0, now)
            .ok()
        })
        .collect();

    let t0 = Instant::now();
    let results: Vec<Result<_, QueueError>> = futures::stream::iter(records.chunks(5_000))
        .map(|chunk| admin.enqueue(chunk))
        .buffer_unordered(4)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let enqueue_secs = t0.elapsed().as_secs_f64();

    let latencies = Arc::new(ClaimLatencies::default());
    let t1 = Instant::now();
    let handlers = if sim.is_some() {
        crate::app::handlers_with_vercel(&config, pool_store.clone())
            .map_err(|e| QueueError::Protocol(e.to_string()))?
    } else {
        HandlerRegistry::builtin()
    };
    let supervisor = crate::app::start_pool(
        &config,
        pool_store.clone(),
        handlers,
        Some(latencies.clone()),
    )
    .supervisor;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let s = admin.stats().await?;
        if s.completed_total as usize >= records.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain_secs = t1.elapsed().as_secs_f64();
    let finished = admin.stats().await?.completed_total as usize;
    if finished < records.len() {
        let _ = supervisor.send(StopPool).await;
        admin.destroy().await?;
        return Err(QueueError::Protocol(format!(
            "only {finished} of {} tasks completed within 600 s; no figures reported",
            records.len()
        )));
    }
    let trips = pool_store.round_trips();
    let _ = supervisor.send(StopPool).await;
    admin.destroy().await?;
    if let Some(server) = sim {
        server.stop().await;
    }

    let mut lat = latencies.0.lock().map(|v| v.clone()).unwrap_or_default();
    lat.sort_by(|a, b| a.total_cmp(b));
    let n = records.len().max(1) as f64;
    let report = BenchReport {
        kind: args.kind.clone(),
        tasks: records.len(),
        concurrency: config.worker.concurrency,
        prefetch: config.worker.prefetch,
        enqueue_per_sec: n / enqueue_secs.max(1e-9),
        drain_per_sec: n / drain_secs.max(1e-9),
        claim_wait_p50_ms: percentile(&lat, 0.50),
        claim_wait_p99_ms: percentile(&lat, 0.99),
        redis_round_trips_per_task: trips as f64 / n,
        peak_rss_mb: peak_rss_mb(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        println!(
            "{} tasks {}  consumers {}  prefetch {}",
            report.kind, report.tasks, report.concurrency, report.prefetch
        );
        println!("enqueue      {:>10.0} tasks/s", report.enqueue_per_sec);
        println!("drain        {:>10.0} tasks/s", report.drain_per_sec);
        println!(
            "claim wait   p50 {:.2} ms  p99 {:.2} ms",
            report.claim_wait_p50_ms, report.claim_wait_p99_ms
        );
        println!(
            "redis        {:.3} round trips per task (drain)",
            report.redis_round_trips_per_task
        );
        println!("peak RSS     {:.1} MiB", report.peak_rss_mb);
    }
    Ok(())
}
