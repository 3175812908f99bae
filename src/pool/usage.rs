//! What the pool shares with the gauge sampler and the heartbeat.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Instance-wide state the MetricsActor reads and the heartbeat reports.
#[derive(Default)]
pub struct InstanceUsage {
    /// Start time of the task each consumer is running, by consumer name.
    pub running: Mutex<HashMap<String, Instant>>,
    /// Latest `(cpu ratio, memory ratio)` sample.
    pub ratios: Mutex<(f64, f64)>,
}
