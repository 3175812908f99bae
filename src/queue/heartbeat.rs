//! Instance heartbeats: each instance writes its own every few seconds (with a TTL), so every
//! instance, the API and the dashboard can list the live ones and their pool status.

use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{QueueError, QueueStore};

/// What an instance's pool is doing, as shown in heartbeats, `/health` and the status API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PoolStatus {
    Running,
    /// Draining towards stopped (or towards a restart).
    Stopping,
    Stopped,
    /// Restart limit hit; backing off before trying again.
    Error,
}

impl PoolStatus {
    pub const ALL: [PoolStatus; 4] = [
        PoolStatus::Running,
        PoolStatus::Stopping,
        PoolStatus::Stopped,
        PoolStatus::Error,
    ];
    /// Every status as a label value, for metrics.
    pub const LABELS: [&'static str; 4] = ["running", "stopping", "stopped", "error"];

    pub fn as_str(self) -> &'static str {
        match self {
            PoolStatus::Running => "running",
            PoolStatus::Stopping => "stopping",
            PoolStatus::Stopped => "stopped",
            PoolStatus::Error => "error",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        PoolStatus::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// An instance's heartbeat as stored in Redis.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Heartbeat {
    pub instance: String,
    pub host: String,
    /// `None` when the stored value is not a status this build knows (shown as null).
    pub status: Option<PoolStatus>,
    pub consumers: u64,
    pub in_flight: u64,
    /// Consumer restarts since the process started.
    pub restarts: u64,
    pub started_at: String,
    pub last_heartbeat: String,
    pub pid: u64,
    /// Process CPU use, percent of the container's CPU limit (0 when the stored value is not a
    /// finite number).
    pub cpu_percent: f64,
    /// Resident memory, percent of the container's memory limit (same rule).
    pub memory_percent: f64,
}

/// Instances silent for this long are forgotten entirely.
const FORGET_AFTER_MS: i64 = 3_600_000;

impl Heartbeat {
    fn from_fields(m: &std::collections::HashMap<String, String>) -> Self {
        let s = |f: &str| m.get(f).cloned().unwrap_or_default();
        let n = |f: &str| m.get(f).and_then(|v| v.parse().ok()).unwrap_or(0);
        let x = |f: &str| {
            m.get(f)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .unwrap_or(0.0)
        };
        Heartbeat {
            instance: s("instance"),
            host: s("host"),
            status: m.get("status").and_then(|v| PoolStatus::parse(v)),
            consumers: n("consumers"),
            in_flight: n("in_flight"),
            restarts: n("restarts"),
            started_at: s("started_at"),
            last_heartbeat: s("last_heartbeat"),
            pid: n("pid"),
            cpu_percent: x("cpu_percent"),
            memory_percent: x("memory_percent"),
        }
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("instance", self.instance.clone()),
            ("host", self.host.clone()),
            (
                "status",
                self.status
                    .map(PoolStatus::as_str)
                    .unwrap_or("")
                    .to_string(),
            ),
            ("consumers", self.consumers.to_string()),
            ("in_flight", self.in_flight.to_string()),
            ("restarts", self.restarts.to_string()),
            ("started_at", self.started_at.clone()),
            ("last_heartbeat", self.last_heartbeat.clone()),
            ("pid", self.pid.to_string()),
            ("cpu_percent", self.cpu_percent.to_string()),
            ("memory_percent", self.memory_percent.to_string()),
        ]
    }
}

impl QueueStore {
    /// Write this instance's heartbeat (expires after `ttl` unless refreshed).
    pub async fn heartbeat(&self, hb: &Heartbeat, ttl: Duration) -> Result<(), QueueError> {
        let key = self.key(&format!("instance:{}", hb.instance));
        let now_ms = Utc::now().timestamp_millis();
        let mut pipe = redis::pipe();
        pipe.cmd("HSET").arg(&key).arg(hb.fields()).ignore();
        pipe.cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl.as_millis() as u64)
            .ignore();
        pipe.cmd("ZADD")
            .arg(self.key("instances"))
            .arg(now_ms)
            .arg(&hb.instance)
            .ignore();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(self.key("instances"))
            .arg("-inf")
            .arg(now_ms - FORGET_AFTER_MS)
            .ignore();
        self.pipeline(&pipe).await
    }

    /// Remove this instance's heartbeat (clean exit).
    pub async fn remove_heartbeat(&self, instance: &str) -> Result<(), QueueError> {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL")
            .arg(self.key(&format!("instance:{instance}")))
            .ignore();
        pipe.cmd("ZREM")
            .arg(self.key("instances"))
            .arg(instance)
            .ignore();
        self.pipeline(&pipe).await
    }

    /// Every instance whose heartbeat has not expired.
    pub async fn instances(&self) -> Result<Vec<Heartbeat>, QueueError> {
        let ids: Vec<String> = self
            .query(
                redis::cmd("ZRANGE")
                    .arg(self.key("instances"))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let maps = self
            .hgetall_many(ids.iter().map(|id| self.key(&format!("instance:{id}"))))
            .await?;
        Ok(maps
            .iter()
            .filter(|m| !m.is_empty())
            .map(Heartbeat::from_fields)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_heartbeats_are_read_defensively() {
        let mut m = std::collections::HashMap::new();
        m.insert("status".to_string(), "running".to_string());
        m.insert("cpu_percent".to_string(), "NaN".to_string());
        m.insert("memory_percent".to_string(), "12.5".to_string());
        let hb = Heartbeat::from_fields(&m);
        assert_eq!(hb.status, Some(PoolStatus::Running));
        assert_eq!((hb.cpu_percent, hb.memory_percent), (0.0, 12.5));
        m.insert("status".to_string(), "dancing".to_string());
        assert_eq!(Heartbeat::from_fields(&m).status, None);
        for (s, label) in PoolStatus::ALL.iter().zip(PoolStatus::LABELS) {
            assert_eq!(s.as_str(), label);
        }
    }
}
