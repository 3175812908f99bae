//! `ops-worker bench`: enqueue N noop (or `--kind deploy`) tasks into a private queue on
//! `REDIS_URL`, drain them with C consumers of the real pool, and report enqueue/s, drain/s, claim
//! latency, peak RSS, Redis round trips per task and the Redis server's CPU time per task (from
//! `INFO cpu` before and after, enqueue included). The private queue is deleted afterwards.
//!
//! The pool runs with `run`'s settings (`WORKER_CONCURRENCY`, `WORKER_PREFETCH` and the rest from
//! the environment, or their defaults) unless `--concurrency` / `--prefetch` say otherwise.
//!
//! The pool API is used in one place only, [`with_pool`] (plus the [`ClaimProbe`] impl that
//! records claim latencies).

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Args;
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::app::StartupError;
use crate::config::Config;
use crate::handlers::HandlerRegistry;
use crate::pool::consumer::ClaimProbe;
use crate::pool::supervisor::StopPool;
use crate::queue::{QueueError, QueueStore};
use crate::task::{NewTask, TaskRecord};
use crate::vercel::sim::{self, SimServer};

/// The drain must finish within this, or no figures are reported.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

/// Why a benchmark produced no figures.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Redis unreachable or answering unexpectedly.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// `--kind deploy`: the in-process Vercel simulator could not bind a port.
    #[error("cannot start the simulator: {0}")]
    Simulator(#[source] std::io::Error),
    /// `--kind deploy`: the Vercel client for the simulator could not be built.
    #[error("cannot set up the Vercel handlers: {0}")]
    Vercel(#[from] StartupError),
    /// The pool did not complete every task within [`DRAIN_TIMEOUT`].
    #[error(
        "only {finished} of {total} tasks completed within {} s; no figures reported",
        DRAIN_TIMEOUT.as_secs()
    )]
    Timeout {
        /// Tasks completed when the wait gave up.
        finished: usize,
        /// Tasks enqueued.
        total: usize,
    },
}

/// Flags of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Noop tasks to enqueue and drain.
    #[arg(long, default_value_t = 20_000)]
    pub tasks: usize,
    /// Consumers draining them (default: `WORKER_CONCURRENCY`, as `run` would use).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Tasks claimed per round trip (default: `WORKER_PREFETCH`, as `run` would use).
    #[arg(long)]
    pub prefetch: Option<usize>,
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
    /// `noop` or `deploy` (`--kind`).
    pub kind: String,
    /// Tasks enqueued and drained.
    pub tasks: usize,
    /// Consumers that drained them.
    pub concurrency: usize,
    /// Tasks claimed per round trip.
    pub prefetch: usize,
    /// Submission throughput (4 concurrent batches of 5000).
    pub enqueue_per_sec: f64,
    /// Pool throughput, from pool start to the last completion.
    pub drain_per_sec: f64,
    /// Median time a consumer waited for a claim that returned work.
    pub claim_wait_p50_ms: f64,
    /// 99th percentile of the same.
    pub claim_wait_p99_ms: f64,
    /// The pool's Redis calls divided by the tasks (the bench's own polling excluded).
    pub redis_round_trips_per_task: f64,
    /// Peak resident memory of the process.
    pub peak_rss_mb: f64,
    /// Redis server CPU time (user + sys, from `INFO cpu`) per task, in microseconds, over the
    /// enqueue and the drain. It includes whatever else the server did meanwhile (the bench's own
    /// completion polling, other clients), so run it against a private Redis.
    pub redis_cpu_us_per_task: f64,
    /// The part of it spent on the enqueue.
    pub redis_cpu_us_per_task_enqueue: f64,
    /// `redis_version` of the server measured.
    pub redis_version: String,
}

/// Claim latencies in milliseconds, recorded for claims that returned work.
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

/// The only code using the pool API: start a pool on `store` (with the Vercel handlers when
/// `vercel`), await `work`, stop the pool, and return what `work` returned.
async fn with_pool<T>(
    config: &Config,
    pool_store: &QueueStore,
    vercel: bool,
    latencies: Arc<ClaimLatencies>,
    work: impl Future<Output = T>,
) -> Result<T, BenchError> {
    let handlers = if vercel {
        crate::app::handlers_with_vercel(config, pool_store.clone())?
    } else {
        HandlerRegistry::builtin(true)
    };
    let probe: Arc<dyn ClaimProbe> = latencies;
    let supervisor =
        crate::app::start_pool(config, pool_store.clone(), handlers, Some(probe)).supervisor;
    let out = work.await;
    // As `run` bounds its shutdown: past the drain's own timeout plus a margin the bench goes on
    // (the queue is deleted; leases of a consumer that never stopped would lapse).
    let grace = config.worker.shutdown_timeout + Duration::from_secs(10);
    if tokio::time::timeout(grace, supervisor.send(StopPool))
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = grace.as_secs_f64(),
            "the pool did not stop within its grace period; going on"
        );
    }
    Ok(out)
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

/// Redis CPU seconds at three points of the run, and the server's version.
struct RedisCpu {
    /// Before the enqueue.
    start: f64,
    /// After the enqueue, before the pool starts.
    enqueued: f64,
    /// After the last completion, before the private queue is deleted.
    drained: f64,
    /// `redis_version`.
    version: String,
}

/// What the drain measured.
struct Drain {
    /// Seconds from pool start until every task completed.
    secs: f64,
    /// Redis calls the pool made.
    round_trips: u64,
    /// Claim latencies in milliseconds, sorted.
    latencies: Vec<f64>,
}

/// Run the benchmark and print its figures. The private queue is deleted even when it fails.
pub async fn run(base: &Config, args: &BenchArgs) -> Result<(), BenchError> {
    let mut config = bench_config(base, args);
    // Separate stores: the pool's round trips are counted apart from the bench's own polling.
    let admin = QueueStore::new(&config.redis, &config.queue).await?;
    let pool_store = QueueStore::new(&config.redis, &config.queue).await?;
    admin.ping().await?;
    let sim = match args.kind.as_str() {
        "deploy" => Some(start_simulator(&mut config).await?),
        _ => None,
    };
    let tasks = args.tasks;
    let measured = measure(&config, &admin, &pool_store, sim.is_some(), tasks).await;
    admin.destroy().await?;
    if let Some(server) = sim {
        server.stop().await;
    }
    let (enqueue_secs, drain, cpu) = measured?;
    let report = report(args, &config, tasks, (enqueue_secs, drain), &cpu);
    print_report(&report, args.json);
    Ok(())
}

/// Enqueue `tasks` tasks, then drain them: the enqueue seconds, the drain figures and Redis's CPU.
async fn measure(
    config: &Config,
    admin: &QueueStore,
    pool_store: &QueueStore,
    vercel: bool,
    tasks: usize,
) -> Result<(f64, Drain, RedisCpu), BenchError> {
    let (start, version) = admin.server_cpu().await?;
    let enqueue_secs = enqueue_all(admin, tasks, vercel).await?;
    let (enqueued, _) = admin.server_cpu().await?;
    let drain = drain(config, admin, pool_store, vercel, tasks).await?;
    let (drained, _) = admin.server_cpu().await?;
    let cpu = RedisCpu {
        start,
        enqueued,
        drained,
        version,
    };
    Ok((enqueue_secs, drain, cpu))
}

/// `base` on a private queue (`bench-<random>`) with the flags' pool size.
fn bench_config(base: &Config, args: &BenchArgs) -> Config {
    let mut config = base.clone();
    config.queue.name = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    if let Some(c) = args.concurrency {
        config.worker.concurrency = c.max(1);
    }
    if let Some(p) = args.prefetch {
        config.worker.prefetch = p.max(1);
    }
    config.worker.instance_id = format!("bench-{}", std::process::id());
    config
}

/// For `--kind deploy`: an in-process simulator (instant builds) and `config.vercel` pointed at
/// it, unpaced and polling every 20 ms.
async fn start_simulator(config: &mut Config) -> Result<SimServer, BenchError> {
    let token = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let server = sim::start(
        sim::SimConfig {
            token: token.clone(),
            build_secs: 0.0,
            ..Default::default()
        },
        0,
    )
    .await
    .map_err(BenchError::Simulator)?;
    config.vercel.api_url = server.url.clone();
    config.vercel.token = Some(crate::config::Secret::new(token));
    config.vercel.rate_limit_per_min = 0;
    config.vercel.poll_interval = Duration::from_millis(20);
    Ok(server)
}

/// `count` noop tasks, or deploys of the project `bench` when `deploy`.
fn bench_tasks(count: usize, deploy: bool) -> Vec<TaskRecord> {
    let (task_type, payload) = if deploy {
        ("deploy", json!({"project": "bench"}))
    } else {
        ("noop", json!({}))
    };
    let now = Utc::now();
    (0..count)
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
        .collect()
}

/// Submit `total` tasks (deploys when `deploy`) in batches of 5000, four at a time, each batch
/// built just before it is sent (so the process never holds every record: peak RSS is the
/// pool's, not the bench's); the seconds it took.
async fn enqueue_all(admin: &QueueStore, total: usize, deploy: bool) -> Result<f64, BenchError> {
    const BATCH: usize = 5_000;
    let t0 = Instant::now();
    let sizes = (0..total).step_by(BATCH).map(|at| BATCH.min(total - at));
    // Each batch's reply (N ids) is dropped as soon as it arrives: holding them all was what
    // made peak RSS grow with N.
    let results: Vec<Result<usize, QueueError>> = futures::stream::iter(sizes)
        .map(|n| async move { Ok(admin.enqueue(&bench_tasks(n, deploy)).await?.len()) })
        .buffer_unordered(4)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Start the pool, wait until `total` tasks completed (at most [`DRAIN_TIMEOUT`]), stop it.
async fn drain(
    config: &Config,
    admin: &QueueStore,
    pool_store: &QueueStore,
    vercel: bool,
    total: usize,
) -> Result<Drain, BenchError> {
    let latencies = Arc::new(ClaimLatencies::default());
    let t1 = Instant::now();
    let work = async {
        wait_for_completions(admin, total).await?;
        let secs = t1.elapsed().as_secs_f64();
        let finished = admin.completed_total().await? as usize;
        let round_trips = pool_store.round_trips();
        Ok::<_, QueueError>((secs, finished, round_trips))
    };
    let (secs, finished, round_trips) =
        with_pool(config, pool_store, vercel, latencies.clone(), work).await??;
    if finished < total {
        return Err(BenchError::Timeout { finished, total });
    }
    let mut lat = latencies.0.lock().map(|v| v.clone()).unwrap_or_default();
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(Drain {
        secs,
        round_trips,
        latencies: lat,
    })
}

/// Poll the completion counter (one `HGET`) every 10 ms until `total` tasks completed or
/// [`DRAIN_TIMEOUT`] passed.
async fn wait_for_completions(admin: &QueueStore, total: usize) -> Result<(), QueueError> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let done = admin.completed_total().await? as usize;
        if done >= total || Instant::now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The figures of `tasks` tasks enqueued in `enqueue_secs` and drained as `drain` says, with
/// Redis using `cpu`.
fn report(
    args: &BenchArgs,
    config: &Config,
    tasks: usize,
    (enqueue_secs, drain): (f64, Drain),
    cpu: &RedisCpu,
) -> BenchReport {
    let n = tasks.max(1) as f64;
    let us_per_task = |secs: f64| secs.max(0.0) * 1e6 / n;
    BenchReport {
        kind: args.kind.clone(),
        tasks,
        concurrency: config.worker.concurrency,
        prefetch: config.worker.prefetch,
        enqueue_per_sec: n / enqueue_secs.max(1e-9),
        drain_per_sec: n / drain.secs.max(1e-9),
        claim_wait_p50_ms: percentile(&drain.latencies, 0.50),
        claim_wait_p99_ms: percentile(&drain.latencies, 0.99),
        redis_round_trips_per_task: drain.round_trips as f64 / n,
        peak_rss_mb: peak_rss_mb(),
        redis_cpu_us_per_task: us_per_task(cpu.drained - cpu.start),
        redis_cpu_us_per_task_enqueue: us_per_task(cpu.enqueued - cpu.start),
        redis_version: cpu.version.clone(),
    }
}

/// One JSON object, or the text table.
fn print_report(report: &BenchReport, as_json: bool) {
    if as_json {
        println!("{}", serde_json::to_string(report).unwrap_or_default());
        return;
    }
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
    println!(
        "redis CPU    {:.1} us per task (enqueue {:.1} us + drain), Redis {}",
        report.redis_cpu_us_per_task, report.redis_cpu_us_per_task_enqueue, report.redis_version
    );
    println!("peak RSS     {:.1} MiB", report.peak_rss_mb);
}
