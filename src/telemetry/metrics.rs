//! Metrics: every metric's name and description, defined once, and the Prometheus recorder.
//!
//! Naming follows `docs/metrics.md`: prefix `ops_worker_`, base units (seconds, ratios 0-1),
//! `_total` for counters, bounded label values only (never a task id, deployment id or URL).
//! Code never spells a metric name: it uses the constants in [`names`], and counters and
//! histograms are only touched by the internal events of [`super::events`].
//!
//! `/metrics` only renders the recorder's handle ([`render`]), plus the one series the recorder
//! cannot hold ([`set_redis_topology`]). Every metric is described (HELP) when the recorder is
//! installed, and every known label combination starts at 0 so the first increment of a series
//! is not lost to Prometheus's first-scrape baseline.

use std::sync::{Mutex, OnceLock};

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::warn;

use super::events::AttemptOutcome;
use crate::task::{Priority, TaskType};

/// Every metric name, once.
pub mod names {
    pub const UP: &str = "ops_worker_up";
    pub const WORKER_STATUS: &str = "ops_worker_worker_status";
    pub const CONSUMERS: &str = "ops_worker_consumers";
    pub const CONSUMER_RESTARTS: &str = "ops_worker_consumer_restarts_total";
    pub const QUEUE_PENDING: &str = "ops_worker_queue_pending";
    pub const QUEUE_IN_FLIGHT: &str = "ops_worker_queue_in_flight";
    pub const QUEUE_RETRYING: &str = "ops_worker_queue_retrying";
    pub const QUEUE_DELAYED: &str = "ops_worker_queue_delayed";
    pub const QUEUE_DEAD_LETTER: &str = "ops_worker_queue_dead_letter";
    pub const QUEUE_PAUSED: &str = "ops_worker_queue_paused";
    pub const QUEUE_OLDEST_PENDING_AGE: &str = "ops_worker_queue_oldest_pending_age_seconds";
    pub const TASKS: &str = "ops_worker_tasks_total";
    pub const TASK_DURATION: &str = "ops_worker_task_duration_seconds";
    pub const TASK_WAIT: &str = "ops_worker_task_wait_seconds";
    pub const TASK_RUNNING_LONGEST: &str = "ops_worker_task_running_longest_seconds";
    pub const TASKS_RECLAIMED: &str = "ops_worker_tasks_reclaimed_total";
    pub const REDIS_ERRORS: &str = "ops_worker_redis_errors_total";
    pub const REDIS_MEMORY_USED: &str = "ops_worker_redis_memory_used_bytes";
    pub const REDIS_MEMORY_MAX: &str = "ops_worker_redis_memory_max_bytes";
    pub const VERCEL_REQUESTS: &str = "ops_worker_vercel_requests_total";
    pub const VERCEL_REQUEST_DURATION: &str = "ops_worker_vercel_request_duration_seconds";
    pub const VERCEL_RATE_LIMITED_WAITS: &str = "ops_worker_vercel_rate_limited_waits_total";
    pub const VERCEL_AUTH_FAILURES: &str = "ops_worker_vercel_auth_failures_total";
    pub const CPU_USAGE: &str = "ops_worker_cpu_usage_ratio";
    pub const MEMORY_USAGE: &str = "ops_worker_memory_usage_ratio";
    pub const BUILD_INFO: &str = "ops_worker_build_info";
    pub const REDIS_TOPOLOGY_INFO: &str = "ops_worker_redis_topology_info";
}

/// Histogram buckets (seconds), up to the 10-minute ceiling of the longest task. The 300 s
/// bucket is the guide's "task processing time < 5 minutes"; 360-540 s keep quantiles of tasks
/// between 5 and 10 minutes close to the truth (without them a 330 s task reads as ~575 s).
pub const BUCKETS: [f64; 20] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 360.0,
    420.0, 480.0, 540.0, 600.0,
];

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Always in seconds.
    Histogram,
}

/// One metric: its name, kind and HELP text.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn spec(name: &'static str, kind: Kind, help: &'static str) -> Spec {
    Spec { name, kind, help }
}

use Kind::{Counter, Gauge, Histogram};
use names::*;

/// Every metric ops-worker exports (besides `process_*`), with its HELP text.
pub const ALL: &[Spec] = &[
    spec(UP, Gauge, "1 while the process serves metrics"),
    spec(WORKER_STATUS, Gauge, "1 for the pool's current status"),
    spec(CONSUMERS, Gauge, "consumers busy with a task / idle"),
    spec(
        CONSUMER_RESTARTS,
        Counter,
        "consumers restarted after a panic or unexpected exit",
    ),
    spec(
        QUEUE_PENDING,
        Gauge,
        "ready-to-run tasks per priority (queue-wide: aggregate with max)",
    ),
    spec(
        QUEUE_IN_FLIGHT,
        Gauge,
        "claimed tasks being processed (queue-wide)",
    ),
    spec(
        QUEUE_RETRYING,
        Gauge,
        "failed attempts waiting for their back-off (queue-wide)",
    ),
    spec(
        QUEUE_DELAYED,
        Gauge,
        "tasks waiting for their run_at (queue-wide)",
    ),
    spec(
        QUEUE_DEAD_LETTER,
        Gauge,
        "failed, dead-lettered tasks (queue-wide)",
    ),
    spec(
        QUEUE_PAUSED,
        Gauge,
        "1 when the priority is paused (queue-wide)",
    ),
    spec(
        QUEUE_OLDEST_PENDING_AGE,
        Gauge,
        "age of the oldest ready task (queue-wide)",
    ),
    spec(TASKS, Counter, "finished task attempts by type and outcome"),
    spec(TASK_DURATION, Histogram, "handler run time per attempt"),
    spec(TASK_WAIT, Histogram, "time from ready to claimed"),
    spec(
        TASK_RUNNING_LONGEST,
        Gauge,
        "run time so far of the longest task running now",
    ),
    spec(
        TASKS_RECLAIMED,
        Counter,
        "lapsed leases this instance put back",
    ),
    spec(REDIS_ERRORS, Counter, "failed Redis calls"),
    spec(
        REDIS_MEMORY_USED,
        Gauge,
        "memory the queue's Redis uses (queue-wide: aggregate with max)",
    ),
    spec(
        REDIS_MEMORY_MAX,
        Gauge,
        "maxmemory of the queue's Redis; 0 = no limit (queue-wide)",
    ),
    spec(
        VERCEL_REQUESTS,
        Counter,
        "Vercel API calls by operation and status class",
    ),
    spec(
        VERCEL_REQUEST_DURATION,
        Histogram,
        "Vercel API call latency",
    ),
    spec(
        VERCEL_RATE_LIMITED_WAITS,
        Counter,
        "Vercel calls that waited for the shared rate limit",
    ),
    spec(VERCEL_AUTH_FAILURES, Counter, "Vercel 401/403 answers"),
    spec(
        CPU_USAGE,
        Gauge,
        "process CPU use / the container's CPU limit",
    ),
    spec(
        MEMORY_USAGE,
        Gauge,
        "resident memory / the container's memory limit",
    ),
    spec(BUILD_INFO, Gauge, "build information; always 1"),
    spec(
        REDIS_TOPOLOGY_INFO,
        Gauge,
        "1 for the Redis topology and the master the queue is on now (one series)",
    ),
];

/// Label values known only to the layers above (pool statuses, Vercel operations), so their
/// series can start at 0 too. The wiring fills it in from the owners' enums.
#[derive(Debug, Clone, Copy, Default)]
pub struct Series {
    /// `status` values of [`names::WORKER_STATUS`].
    pub pool_statuses: &'static [&'static str],
    /// `operation` values of the Vercel metrics.
    pub vercel_operations: &'static [&'static str],
    /// `status_class` values of [`names::VERCEL_REQUESTS`].
    pub vercel_status_classes: &'static [&'static str],
    /// `reason` values of [`names::VERCEL_RATE_LIMITED_WAITS`].
    pub rate_limit_reasons: &'static [&'static str],
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The labels (topology, master) of [`names::REDIS_TOPOLOGY_INFO`]'s one series. Kept here, not
/// in the recorder: a recorder series cannot be removed, so a master the queue left would stay
/// as a series of its own after every failover.
static TOPOLOGY: Mutex<Option<(String, String)>> = Mutex::new(None);

/// Name the master the queue is on now: from then on `ops_worker_redis_topology_info` holds
/// only its series (the previous master's is gone).
pub fn set_redis_topology(topology: &str, master: &str) {
    if let Ok(mut t) = TOPOLOGY.lock() {
        *t = Some((topology.to_string(), master.to_string()));
    }
}

/// The exposition text of `/metrics`: the recorder's series, then the topology series.
pub fn render(handle: &PrometheusHandle) -> String {
    let mut text = handle.render();
    text.push_str(&topology_text());
    text
}

/// `ops_worker_redis_topology_info` in the text format (empty until a master is known).
fn topology_text() -> String {
    let Some((topology, master)) = TOPOLOGY.lock().ok().and_then(|t| t.clone()) else {
        return String::new();
    };
    let help = ALL
        .iter()
        .find(|m| m.name == REDIS_TOPOLOGY_INFO)
        .map_or("", |m| m.help);
    let esc = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    format!(
        "# HELP {REDIS_TOPOLOGY_INFO} {help}\n# TYPE {REDIS_TOPOLOGY_INFO} gauge\n\
         {REDIS_TOPOLOGY_INFO}{{topology=\"{}\",master=\"{}\"}} 1\n\n",
        esc(&topology),
        esc(&master)
    )
}

/// Install the process-wide Prometheus recorder (once), describe every metric and start every
/// known series at 0.
pub fn install(series: &Series) -> Option<PrometheusHandle> {
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
    zero_instance_series();
    zero_task_series();
    zero_layer_series(series);
    Some(HANDLE.get_or_init(|| handle).clone())
}

fn describe_all() {
    for m in ALL {
        match m.kind {
            Counter => describe_counter!(m.name, m.help),
            Gauge => describe_gauge!(m.name, m.help),
            Histogram => describe_histogram!(m.name, Unit::Seconds, m.help),
        }
    }
}

fn zero_instance_series() {
    gauge!(UP).set(1.0);
    for g in [
        QUEUE_IN_FLIGHT,
        QUEUE_RETRYING,
        QUEUE_DELAYED,
        QUEUE_DEAD_LETTER,
        QUEUE_OLDEST_PENDING_AGE,
        REDIS_MEMORY_USED,
        REDIS_MEMORY_MAX,
        TASK_RUNNING_LONGEST,
        CPU_USAGE,
        MEMORY_USAGE,
    ] {
        gauge!(g).set(0.0);
    }
    for state in ["busy", "idle"] {
        gauge!(CONSUMERS, "state" => state).set(0.0);
    }
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for c in [
        CONSUMER_RESTARTS,
        TASKS_RECLAIMED,
        REDIS_ERRORS,
        VERCEL_AUTH_FAILURES,
    ] {
        counter!(c).absolute(0);
    }
}

fn zero_task_series() {
    for ty in TaskType::ALL.iter().map(|t| t.as_str()).chain(["unknown"]) {
        let _ = histogram!(TASK_DURATION, "type" => ty);
        for o in AttemptOutcome::ALL {
            counter!(TASKS, "type" => ty, "outcome" => o.as_str()).absolute(0);
        }
    }
    for p in Priority::ALL {
        let _ = histogram!(TASK_WAIT, "priority" => p.as_str());
        gauge!(QUEUE_PENDING, "priority" => p.as_str()).set(0.0);
        gauge!(QUEUE_PAUSED, "priority" => p.as_str()).set(0.0);
    }
}

fn zero_layer_series(series: &Series) {
    for s in series.pool_statuses {
        gauge!(WORKER_STATUS, "status" => *s).set(0.0);
    }
    for op in series.vercel_operations {
        let _ = histogram!(VERCEL_REQUEST_DURATION, "operation" => *op);
        for class in series.vercel_status_classes {
            counter!(VERCEL_REQUESTS, "operation" => *op, "status_class" => *class).absolute(0);
        }
    }
    for reason in series.rate_limit_reasons {
        counter!(VERCEL_RATE_LIMITED_WAITS, "reason" => *reason).absolute(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_ascend_and_split_five_to_ten_minutes() {
        assert!(BUCKETS.windows(2).all(|w| w[0] < w[1]), "{BUCKETS:?}");
        let between: Vec<f64> = BUCKETS
            .iter()
            .copied()
            .filter(|b| *b > 300.0 && *b < 600.0)
            .collect();
        assert_eq!(between, [360.0, 420.0, 480.0, 540.0]);
        assert_eq!(BUCKETS.last(), Some(&600.0));
    }

    #[test]
    fn the_topology_series_follows_the_master_and_is_the_only_one() {
        set_redis_topology("cluster", "10.0.0.1:7000");
        set_redis_topology("cluster", "10.0.0.2:7001");
        let text = topology_text();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(REDIS_TOPOLOGY_INFO))
            .collect();
        assert_eq!(
            series,
            [r#"ops_worker_redis_topology_info{topology="cluster",master="10.0.0.2:7001"} 1"#],
            "{text}"
        );
        assert!(
            text.contains("# TYPE ops_worker_redis_topology_info gauge"),
            "{text}"
        );
    }

    #[test]
    fn every_metric_is_documented_once_and_named_by_the_rules() {
        let doc = include_str!("../../docs/metrics.md");
        let mut seen = std::collections::HashSet::new();
        for m in ALL {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(m.name.starts_with("ops_worker_"), "{}", m.name);
            assert_eq!(m.kind == Counter, m.name.ends_with("_total"), "{}", m.name);
            if m.kind == Histogram {
                assert!(m.name.ends_with("_seconds"), "{}", m.name);
            }
            assert!(
                doc.contains(&format!("`{}`", m.name)),
                "{} not in docs/metrics.md",
                m.name
            );
        }
    }
}
