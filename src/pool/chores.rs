//! The supervisor's periodic work besides the pool itself: queue maintenance (every instance
//! runs it; each step is atomic, so that is safe), this instance's heartbeat, and the charts'
//! history (flushing this instance's counts, sampling the queue once a minute).

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use tracing::{debug, warn};

use crate::queue::{Applied, Heartbeat, PoolStatus, QueueStore};
use crate::telemetry::events::{InternalEvent, LeasesReclaimed};

/// How often due tasks are promoted and lapsed leases reclaimed.
pub const MAINTENANCE_EVERY: Duration = Duration::from_millis(500);
/// Tasks moved per maintenance step.
const MAINTENANCE_BATCH: usize = 1_000;
/// How often the heartbeat is written ...
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// ... and how long it lives without a refresh (about four missed beats).
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(10);

/// Promote due delayed and retrying tasks, deal with lapsed leases, and fire due schedules.
pub async fn maintain(store: QueueStore) {
    match store.promote_due(MAINTENANCE_BATCH).await {
        Ok(n) if n > 0 => debug!(promoted = n, "due tasks promoted"),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "promoting due tasks failed"),
    }
    match store.trim(MAINTENANCE_BATCH).await {
        Ok((0, 0)) => {}
        Ok((done, failed)) => debug!(done, failed, "finished records beyond the caps deleted"),
        Err(e) => warn!(error = %e, "trimming finished records failed"),
    }
    match store.reclaim(MAINTENANCE_BATCH).await {
        Ok(outcomes) => {
            let tasks: Vec<_> = outcomes
                .iter()
                .filter(|o| !matches!(o.applied, Applied::Stale { .. }))
                .map(|o| (o.type_label(), o.applied.metric()))
                .collect();
            LeasesReclaimed { tasks: &tasks }.emit();
        }
        Err(e) => warn!(error = %e, "reclaiming lapsed leases failed"),
    }
    match store.fire_due_schedules().await {
        Ok(f) if f.created + f.duplicates > 0 => {
            debug!(
                created = f.created,
                duplicates = f.duplicates,
                "schedules fired"
            )
        }
        Ok(_) => {}
        Err(e) => warn!(error = %e, "firing due schedules failed"),
    }
}

/// How often this instance adds its wait-time counts to the history and looks whether the
/// minute's queue sample is still to be taken.
pub const HISTORY_EVERY: Duration = Duration::from_secs(5);

/// The charts' history: flush this instance's wait-time counts (the outcomes are counted by the
/// scripts), and take the minute's sample when this instance wins the minute's turn.
pub async fn history(store: QueueStore) {
    if let Err(e) = store.flush_history().await {
        warn!(error = %e, "adding wait-time counts to the history failed; kept for the next flush");
    }
    match store.sample_history().await {
        Ok(true) => debug!("queue depths sampled into the history"),
        Ok(false) => {}
        Err(e) => warn!(error = %e, "sampling queue depths into the history failed"),
    }
}

/// Who this process is, for its heartbeats.
#[derive(Debug, Clone)]
pub struct Identity {
    pub instance: String,
    pub host: String,
    pub started_at: String,
    pub pid: u64,
}

impl Identity {
    pub fn new(instance: &str) -> Self {
        Identity {
            instance: instance.to_string(),
            host: hostname::get()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            started_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            pid: u64::from(std::process::id()),
        }
    }
}

/// What the pool reports in one heartbeat.
pub struct PoolReport {
    pub status: PoolStatus,
    pub consumers: usize,
    pub in_flight: usize,
    pub restarts: u64,
    /// `(cpu, memory)` ratios of the container's limits.
    pub usage: (f64, f64),
}

/// Write one heartbeat.
pub async fn beat(store: QueueStore, id: &Identity, report: PoolReport) {
    let hb = Heartbeat {
        instance: id.instance.clone(),
        host: id.host.clone(),
        status: Some(report.status),
        consumers: report.consumers as u64,
        in_flight: report.in_flight as u64,
        restarts: report.restarts,
        started_at: id.started_at.clone(),
        last_heartbeat: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        pid: id.pid,
        cpu_percent: report.usage.0 * 100.0,
        memory_percent: report.usage.1 * 100.0,
    };
    if let Err(e) = store.heartbeat(&hb, HEARTBEAT_TTL).await {
        warn!(error = %e, "heartbeat failed");
    }
}

/// Emit `worker.started` / `worker.stopped` with the instance and its pool size (and why, when
/// the process is exiting).
pub async fn announce(
    store: QueueStore,
    event: &'static str,
    instance: String,
    consumers: usize,
    reason: Option<&'static str>,
) {
    let mut body = serde_json::Map::new();
    body.insert("instance".into(), instance.into());
    body.insert("consumers".into(), consumers.into());
    if let Some(r) = reason {
        body.insert("reason".into(), r.into());
    }
    if let Err(e) = store.emit_event(event, None, body).await {
        warn!(error = %e, event, "could not emit worker event");
    }
}
