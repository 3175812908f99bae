//! Metrics (SPEC §7, `docs/metrics.md`): the Prometheus recorder, the observer that turns consumer
//! and Vercel events into counters and histograms, and the MetricsActor that samples gauges.
//!
//! `/metrics` only renders the recorder's handle: gauges read from Redis are refreshed once per
//! instance every [`SAMPLE_EVERY`] by the MetricsActor, never per scrape, so a scrape storm costs
//! Redis nothing. Every metric is described (HELP) and every known label combination starts at 0.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::warn;

use super::observer::{Outcome, TaskObserver};
use crate::queue::PoolStatus;
use crate::task::{Priority, TaskType};
use crate::vercel::client::Operation;

/// Histogram buckets (seconds), up to the 10-minute ceiling of SPEC §7.
pub const BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
const OUTCOMES: [Outcome; 5] = [
    Outcome::Completed,
    Outcome::Retried,
    Outcome::Failed,
    Outcome::Cancelled,
    Outcome::Released,
];
const STATUSES: [PoolStatus; 4] = [
    PoolStatus::Running,
    PoolStatus::Stopping,
    PoolStatus::Stopped,
    PoolStatus::Error,
];
const STATUS_CLASSES: [&str; 6] = ["2xx", "3xx", "4xx", "429", "5xx", "error"];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the process-wide Prometheus recorder (once) and describe every metric.
pub fn install() -> Option<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Some(h.clone());
    }
    let handle = match PrometheusBuilder::new()
        .set_buckets(&BUCKETS)
        .and_then(|b| b.install_recorder())
    {
        Ok(h) => h,
        Err(e) => {
            warn!(error = %e, "cannot install the metrics recorder; /metrics will be empty");
            return None;
        }
    };
    describe_all();
    initialise_zeros();
    Some(HANDLE.get_or_init(|| handle).clone())
}

fn describe_all() {
    describe_gauge!("ops_worker_up", "1 while the process serves metrics");
    describe_gauge!(
        "ops_worker_worker_status",
        "1 for the pool's current status"
    );
    describe_gauge!("ops_worker_consumers", "consumers busy with a task / idle");
    describe_counter!(
        "ops_worker_consumer_restarts_total",
        "consumers restarted after a panic or unexpected exit"
    );
    describe_gauge!(
        "ops_worker_queue_pending",
        "ready-to-run tasks per priority (queue-wide: aggregate with max)"
    );
    describe_gauge!(
        "ops_worker_queue_in_flight",
        "claimed tasks being processed (queue-wide)"
    );
    describe_gauge!(
        "ops_worker_queue_retrying",
        "failed attempts waiting for their back-off (queue-wide)"
    );
    describe_gauge!(
        "ops_worker_queue_delayed",
        "tasks waiting for their run_at (queue-wide)"
    );
    describe_gauge!(
        "ops_worker_queue_dead_letter",
        "failed, dead-lettered tasks (queue-wide)"
    );
    describe_gauge!(
        "ops_worker_queue_paused",
        "1 when the priority is paused (queue-wide)"
    );
    describe_gauge!(
        "ops_worker_queue_oldest_pending_age_seconds",
        "age of the oldest ready task (queue-wide)"
    );
    describe_counter!(
        "ops_worker_tasks_total",
        "finished task attempts by type and outcome"
    );
    describe_histogram!(
        "ops_worker_task_duration_seconds",
        metrics::Unit::Seconds,
        "handler run time per attempt"
    );
    describe_histogram!(
        "ops_worker_task_wait_seconds",
        metrics::Unit::Seconds,
        "time from ready to claimed"
    );
    describe_gauge!(
        "ops_worker_task_running_longest_seconds",
        "run time so far of the longest task running now"
    );
    describe_counter!(
        "ops_worker_tasks_reclaimed_total",
        "lapsed leases this instance put back"
    );
    describe_counter!("ops_worker_redis_errors_total", "failed Redis calls");
    describe_counter!(
        "ops_worker_vercel_requests_total",
        "Vercel API calls by operation and status class"
    );
    describe_histogram!(
        "ops_worker_vercel_request_duration_seconds",
        metrics::Unit::Seconds,
        "Vercel API call latency"
    );
    describe_counter!(
        "ops_worker_vercel_rate_limited_waits_total",
        "Vercel calls that waited for the shared rate limit"
    );
    describe_counter!(
        "ops_worker_vercel_auth_failures_total",
        "Vercel 401/403 answers"
    );
    describe_gauge!(
        "ops_worker_cpu_usage_ratio",
        "process CPU use / the container's CPU limit"
    );
    describe_gauge!(
        "ops_worker_memory_usage_ratio",
        "resident memory / the container's memory limit"
    );
    describe_gauge!("ops_worker_build_info", "build information; always 1");
}

fn initialise_zeros() {
    gauge!("ops_worker_up").set(1.0);
    for g in [
        "ops_worker_queue_in_flight",
        "ops_worker_queue_retrying",
        "ops_worker_queue_delayed",
        "ops_worker_queue_dead_letter",
        "ops_worker_queue_oldest_pending_age_seconds",
        "ops_worker_task_running_longest_seconds",
        "ops_worker_cpu_usage_ratio",
        "ops_worker_memory_usage_ratio",
    ] {
        gauge!(g).set(0.0);
    }
    for state in ["busy", "idle"] {
        gauge!("ops_worker_consumers", "state" => state).set(0.0);
    }
    gauge!("ops_worker_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    counter!("ops_worker_consumer_restarts_total").absolute(0);
    counter!("ops_worker_tasks_reclaimed_total").absolute(0);
    counter!("ops_worker_redis_errors_total").absolute(0);
    counter!("ops_worker_vercel_auth_failures_total").absolute(0);
    for s in STATUSES {
        gauge!("ops_worker_worker_status", "status" => s.as_str()).set(0.0);
    }
    // Histograms are registered up front too, so the first observation of a series is not lost
    // to Prometheus's first-scrape baseline.
    for ty in TaskType::ALL.iter().map(|t| t.as_str()).chain(["unknown"]) {
        let _ = histogram!("ops_worker_task_duration_seconds", "type" => ty);
        for o in OUTCOMES {
            counter!("ops_worker_tasks_total", "type" => ty, "outcome" => o.as_str()).absolute(0);
        }
    }
    for op in Operation::ALL {
        let _ =
            histogram!("ops_worker_vercel_request_duration_seconds", "operation" => op.as_str());
        for class in STATUS_CLASSES {
            counter!("ops_worker_vercel_requests_total", "operation" => op.as_str(), "status_class" => class)
                .absolute(0);
        }
    }
    for reason in ["bucket", "retry_after"] {
        counter!("ops_worker_vercel_rate_limited_waits_total", "reason" => reason).absolute(0);
    }
    for p in Priority::ALL {
        let _ = histogram!("ops_worker_task_wait_seconds", "priority" => p.as_str());
        gauge!("ops_worker_queue_pending", "priority" => p.as_str()).set(0.0);
        gauge!("ops_worker_queue_paused", "priority" => p.as_str()).set(0.0);
    }
}

/// Turns what consumers and the VercelActor report into metrics.
pub struct MetricsObserver;

impl TaskObserver for MetricsObserver {
    fn finished(
        &self,
        task_type: Option<TaskType>,
        priority: Option<Priority>,
        outcome: Outcome,
        wait: Duration,
        run: Duration,
    ) {
        let ty = task_type.map(TaskType::as_str).unwrap_or("unknown");
        counter!("ops_worker_tasks_total", "type" => ty, "outcome" => outcome.as_str())
            .increment(1);
        histogram!("ops_worker_task_duration_seconds", "type" => ty).record(run.as_secs_f64());
        if let Some(p) = priority {
            histogram!("ops_worker_task_wait_seconds", "priority" => p.as_str())
                .record(wait.as_secs_f64());
        }
    }
    fn consumer_restarted(&self) {
        counter!("ops_worker_consumer_restarts_total").increment(1);
    }
    fn redis_error(&self) {
        counter!("ops_worker_redis_errors_total").increment(1);
    }
    fn reclaimed(&self, n: u64) {
        counter!("ops_worker_tasks_reclaimed_total").increment(n);
    }
    fn dead_lettered_on_reclaim(&self, task_type: Option<TaskType>) {
        let ty = task_type.map(TaskType::as_str).unwrap_or("unknown");
        counter!("ops_worker_tasks_total", "type" => ty, "outcome" => "failed").increment(1);
    }
    fn vercel_request(&self, op: Operation, status_class: &'static str, latency: Duration) {
        counter!("ops_worker_vercel_requests_total", "operation" => op.as_str(), "status_class" => status_class)
            .increment(1);
        histogram!("ops_worker_vercel_request_duration_seconds", "operation" => op.as_str())
            .record(latency.as_secs_f64());
    }
    fn vercel_rate_limited(&self, reason: &str) {
        let reason = if reason == "bucket" {
            "bucket"
        } else {
            "retry_after"
        };
        counter!("ops_worker_vercel_rate_limited_waits_total", "reason" => reason).increment(1);
    }
    fn vercel_auth_failure(&self) {
        counter!("ops_worker_vercel_auth_failures_total").increment(1);
    }
}
