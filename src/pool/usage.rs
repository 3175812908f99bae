//! What the pool shares with the gauge sampler and the heartbeat.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Instance-wide state the gauge sampler reads and the heartbeat reports.
#[derive(Default)]
pub struct InstanceUsage {
    /// Start time of the task each consumer is running, by consumer name.
    pub running: Mutex<HashMap<String, Instant>>,
    /// Latest `(cpu ratio, memory ratio)` sample.
    pub ratios: Mutex<(f64, f64)>,
    /// Tasks running now, instance-wide (heartbeat, status API).
    pub in_flight: AtomicUsize,
}

impl InstanceUsage {
    /// Note that consumer `name` started a task (`Some`) or finished it (`None`).
    pub fn set_running(&self, name: &str, since: Option<Instant>) {
        match since {
            Some(_) => self.in_flight.fetch_add(1, Ordering::Relaxed),
            None => self.in_flight.fetch_sub(1, Ordering::Relaxed),
        };
        if let Ok(mut m) = self.running.lock() {
            match since {
                Some(t) => m.insert(name.to_string(), t),
                None => m.remove(name),
            };
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Run time so far of the longest task running now.
    pub fn longest_running_secs(&self) -> f64 {
        self.running
            .lock()
            .map(|m| {
                m.values()
                    .map(|t| t.elapsed().as_secs_f64())
                    .fold(0.0, f64::max)
            })
            .unwrap_or(0.0)
    }

    /// The latest `(cpu, memory)` ratios.
    pub fn ratios(&self) -> (f64, f64) {
        self.ratios.lock().map(|r| *r).unwrap_or((0.0, 0.0))
    }

    pub fn set_ratios(&self, cpu: f64, mem: f64) {
        if let Ok(mut r) = self.ratios.lock() {
            *r = (cpu, mem);
        }
    }
}
