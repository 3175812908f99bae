//! The gauge sampler: process, queue and pool gauges, refreshed on a timer so a scrape costs
//! Redis nothing (`/metrics` only renders the recorder).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use metrics::gauge;
use metrics_exporter_prometheus::PrometheusHandle;
use tracing::warn;

use crate::pool::supervisor::{GetSnapshot, PoolSnapshot, SupervisorActor};
use crate::pool::usage::InstanceUsage;
use crate::queue::{QueueStats, QueueStore};
use crate::task::Priority;
use crate::telemetry::metrics::{names, set_redis_topology};
use crate::telemetry::resources::UsageSampler;

/// How often gauges are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Samples process, queue and pool gauges every [`SAMPLE_EVERY`].
pub struct MetricsActor {
    /// Renders `/metrics`; upkeep runs here.
    handle: PrometheusHandle,
    /// Queue gauges come from one stats script per interval.
    store: QueueStore,
    /// Consumer counts.
    supervisor: Addr<SupervisorActor>,
    /// Running tasks; the CPU/memory ratios are written back here for the heartbeat.
    usage: Arc<InstanceUsage>,
    /// CPU use between samples.
    sampler: UsageSampler,
    /// `process_*` metrics.
    process: metrics_process::Collector,
    /// A sample is still in flight (a slow Redis must not pile them up).
    busy: bool,
}

fn set_queue_gauges(s: &QueueStats) {
    for p in Priority::ALL {
        gauge!(names::QUEUE_PENDING, "priority" => p.as_str()).set(s.pending.get(p) as f64);
        let paused = if s.paused.contains(&p) { 1.0 } else { 0.0 };
        gauge!(names::QUEUE_PAUSED, "priority" => p.as_str()).set(paused);
    }
    gauge!(names::QUEUE_IN_FLIGHT).set(s.in_flight as f64);
    gauge!(names::QUEUE_RETRYING).set(s.retrying as f64);
    gauge!(names::QUEUE_DELAYED).set(s.delayed as f64);
    gauge!(names::QUEUE_DEAD_LETTER).set(s.failed as f64);
    gauge!(names::QUEUE_OLDEST_PENDING_AGE).set(s.oldest_pending_age_secs);
}

fn set_consumer_gauges(snap: &PoolSnapshot) {
    let busy = snap.in_flight.min(snap.consumers);
    gauge!(names::CONSUMERS, "state" => "busy").set(busy as f64);
    gauge!(names::CONSUMERS, "state" => "idle").set((snap.consumers - busy) as f64);
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

    /// `ops_worker_redis_topology_info{topology, master}`: one series, 1, for the master in use
    /// now (a master the queue left is no longer exported). An unknown master (nobody answered)
    /// keeps the last one shown.
    fn set_topology(&self, master: Option<String>) {
        if let Some(master) = master {
            set_redis_topology(self.store.redis_topology(), &master);
        }
    }

    fn sample(&mut self, ctx: &mut Context<Self>) {
        self.process.collect();
        self.handle.run_upkeep();
        let (cpu, mem) = self.sampler.sample();
        gauge!(names::CPU_USAGE).set(cpu);
        gauge!(names::MEMORY_USAGE).set(mem);
        self.usage.set_ratios(cpu, mem);
        gauge!(names::TASK_RUNNING_LONGEST).set(self.usage.longest_running_secs());
        if self.busy {
            return;
        }
        self.busy = true;
        let store = self.store.clone();
        let supervisor = self.supervisor.clone();
        let fut = async move {
            match store.stats().await {
                Ok(s) => set_queue_gauges(&s),
                Err(e) => warn!(error = %e, "sampling queue gauges failed"),
            }
            if let Ok((used, max)) = store.memory().await {
                gauge!(names::REDIS_MEMORY_USED).set(used as f64);
                gauge!(names::REDIS_MEMORY_MAX).set(max as f64);
            }
            if let Ok(snap) = supervisor.send(GetSnapshot).await {
                set_consumer_gauges(&snap);
            }
            store.redis_master().await
        };
        ctx.spawn(fut.into_actor(self).map(|master, act, _| {
            act.busy = false;
            act.set_topology(master);
        }));
    }
}

impl Actor for MetricsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.sample(ctx);
        ctx.run_interval(SAMPLE_EVERY, |act, ctx| act.sample(ctx));
    }
}
