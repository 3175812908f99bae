//! The gauge sampler: process, queue and pool gauges, refreshed on a timer so a scrape costs Redis
//! nothing.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::PrometheusHandle;
use tracing::warn;

use crate::pool::supervisor::{GetSnapshot, SupervisorActor};
use crate::pool::usage::InstanceUsage;
use crate::queue::{PoolStatus, QueueStore};
use crate::task::Priority;
use crate::telemetry::resources::UsageSampler;

/// How often gauges are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const STATUSES: [PoolStatus; 4] = [
    PoolStatus::Running,
    PoolStatus::Stopping,
    PoolStatus::Stopped,
    PoolStatus::Error,
];

/// Samples process, queue and pool gauges every [`SAMPLE_EVERY`].
pub struct MetricsActor {
    /// Renders `/metrics`; upkeep runs here.
    handle: PrometheusHandle,
    /// Queue gauges come from one stats script per interval.
    store: QueueStore,
    /// Pool status and consumer counts.
    supervisor: Addr<SupervisorActor>,
    usage: Arc<InstanceUsage>,
    sampler: UsageSampler,
    /// `process_*` metrics.
    process: metrics_process::Collector,
    /// A sample is still in flight (a slow Redis must not pile them up).
    busy: bool,
}

impl MetricsActor {
    pub fn new(
        handle: PrometheusHandle,
        store: QueueStore,
        supervisor: Addr<SupervisorActor>,
        usage: Arc<InstanceUsage>,
    ) -> Self {
        let process = metrics_process::Collector::default();
        process.describe();
        Self {
            handle,
            store,
            supervisor,
            usage,
            sampler: UsageSampler::new(),
            process,
            busy: false,
        }
    }

    fn sample(&mut self, ctx: &mut Context<Self>) {
        self.process.collect();
        self.handle.run_upkeep();
        let (cpu, mem) = self.sampler.sample();
        gauge!("ops_worker_cpu_usage_ratio").set(cpu);
        gauge!("ops_worker_memory_usage_ratio").set(mem);
        if let Ok(mut r) = self.usage.ratios.lock() {
            *r = (cpu, mem);
        }
        let longest = self
            .usage
            .running
            .lock()
            .map(|m| {
                m.values()
                    .map(|t| t.elapsed().as_secs_f64())
                    .fold(0.0, f64::max)
            })
            .unwrap_or(0.0);
        gauge!("ops_worker_task_running_longest_seconds").set(longest);
        if self.busy {
            return;
        }
        self.busy = true;
        let store = self.store.clone();
        let supervisor = self.supervisor.clone();
        ctx.spawn(
            async move {
                match store.stats().await {
                    Ok(s) => {
                        for p in Priority::ALL {
                            let n = s.pending.get(p.as_str()).copied().unwrap_or(0);
                            gauge!("ops_worker_queue_pending", "priority" => p.as_str())
                                .set(n as f64);
                            let paused = s.paused.iter().any(|x| x == p.as_str());
                            gauge!("ops_worker_queue_paused", "priority" => p.as_str())
                                .set(if paused { 1.0 } else { 0.0 });
                        }
                        gauge!("ops_worker_queue_in_flight").set(s.in_flight as f64);
                        gauge!("ops_worker_queue_retrying").set(s.retrying as f64);
                        gauge!("ops_worker_queue_delayed").set(s.delayed as f64);
                        gauge!("ops_worker_queue_dead_letter").set(s.failed as f64);
                        gauge!("ops_worker_queue_oldest_pending_age_seconds")
                            .set(s.oldest_pending_age_secs);
                    }
                    Err(e) => {
                        counter!("ops_worker_redis_errors_total").increment(1);
                        warn!(error = %e, "sampling queue gauges failed");
                    }
                }
                if let Ok(snap) = supervisor.send(GetSnapshot).await {
                    for s in STATUSES {
                        gauge!("ops_worker_worker_status", "status" => s.as_str())
                            .set(if s == snap.status { 1.0 } else { 0.0 });
                    }
                    let busy = snap.in_flight.min(snap.consumers);
                    gauge!("ops_worker_consumers", "state" => "busy").set(busy as f64);
                    gauge!("ops_worker_consumers", "state" => "idle")
                        .set((snap.consumers - busy) as f64);
                }
            }
            .into_actor(self)
            .map(|_, act, _| act.busy = false),
        );
    }
}

impl Actor for MetricsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.sample(ctx);
        ctx.run_interval(SAMPLE_EVERY, |act, ctx| act.sample(ctx));
    }
}
