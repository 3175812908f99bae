//! The queue snapshot (`ops-worker stats`, `/api/queue/stats`, the metrics gauges), and pausing
//! priorities.

use redis::Value;
use serde::{Deserialize, Serialize};

use super::{QueueError, QueueStore};
use crate::task::Priority;

/// One count per priority; serialises as `{"P0": n, "P1": n, "P2": n, "P3": n}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PerPriority {
    #[serde(rename = "P0")]
    pub p0: u64,
    #[serde(rename = "P1")]
    pub p1: u64,
    #[serde(rename = "P2")]
    pub p2: u64,
    #[serde(rename = "P3")]
    pub p3: u64,
}

impl PerPriority {
    pub fn get(&self, p: Priority) -> u64 {
        match p {
            Priority::P0 => self.p0,
            Priority::P1 => self.p1,
            Priority::P2 => self.p2,
            Priority::P3 => self.p3,
        }
    }

    pub fn total(&self) -> u64 {
        self.p0 + self.p1 + self.p2 + self.p3
    }
}

/// One snapshot of the queue. Serialised as-is by `stats --json` and the API.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct QueueStats {
    /// Ready-to-run tasks per priority.
    pub pending: PerPriority,
    /// Sum of `pending`.
    pub pending_total: u64,
    pub in_flight: u64,
    pub retrying: u64,
    /// Waiting for their `run_at`.
    pub delayed: u64,
    /// Dead-lettered.
    pub failed: u64,
    /// Paused priorities, in order.
    pub paused: Vec<Priority>,
    pub completed_total: u64,
    pub failed_total: u64,
    pub reclaimed_total: u64,
    pub cancelled_total: u64,
    /// Age of the oldest ready task, seconds (0 when none).
    pub oldest_pending_age_secs: f64,
    pub completed_last_1m: u64,
    pub completed_last_5m: u64,
    pub failed_last_1m: u64,
    pub failed_last_5m: u64,
}

impl QueueStats {
    pub fn pending_total(&self) -> u64 {
        self.pending_total
    }

    /// Decode the `stats` script's flat reply (its field order is documented in `stats.lua`).
    fn from_reply(v: &[Value]) -> Result<Self, QueueError> {
        let num = |i: usize| -> Result<u64, QueueError> {
            match v.get(i) {
                Some(Value::Int(n)) => Ok((*n).max(0) as u64),
                other => Err(QueueError::Protocol(format!(
                    "stats field {i}: expected an integer, got {other:?}"
                ))),
            }
        };
        let paused = match v.get(8) {
            Some(Value::BulkString(b)) => parse_priorities(&String::from_utf8_lossy(b)),
            _ => vec![],
        };
        let pending = PerPriority {
            p0: num(0)?,
            p1: num(1)?,
            p2: num(2)?,
            p3: num(3)?,
        };
        let (oldest_ms, now_ms) = (num(13)?, num(18)?);
        Ok(QueueStats {
            pending,
            pending_total: pending.total(),
            in_flight: num(4)?,
            retrying: num(5)?,
            delayed: num(6)?,
            failed: num(7)?,
            paused,
            completed_total: num(9)?,
            failed_total: num(10)?,
            reclaimed_total: num(11)?,
            cancelled_total: num(12)?,
            oldest_pending_age_secs: if oldest_ms == 0 {
                0.0
            } else {
                now_ms.saturating_sub(oldest_ms) as f64 / 1000.0
            },
            completed_last_1m: num(14)?,
            completed_last_5m: num(15)?,
            failed_last_1m: num(16)?,
            failed_last_5m: num(17)?,
        })
    }
}

/// Priorities named in a space-separated list, sorted; anything else is ignored.
fn parse_priorities(s: &str) -> Vec<Priority> {
    let mut v: Vec<Priority> = s
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    v.sort();
    v.dedup();
    v
}

impl QueueStore {
    /// The queue snapshot, from one script call.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let inv = self.invocation(&self.scripts.stats);
        let v: Vec<Value> = self.run(&inv).await?;
        QueueStats::from_reply(&v)
    }

    /// Whether Redis accepts a write now (a full Redis with `noeviction` refuses them): a short-lived
    /// probe key per instance.
    pub async fn write_probe(&self, instance: &str) -> Result<(), QueueError> {
        let _: () = self
            .query(
                redis::cmd("SET")
                    .arg(self.key(&format!("probe:{instance}")))
                    .arg(1)
                    .arg("PX")
                    .arg(10_000),
            )
            .await?;
        Ok(())
    }

    /// Pause priorities cluster-wide (their tasks stay pending).
    pub async fn pause(&self, priorities: &[Priority]) -> Result<(), QueueError> {
        if priorities.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("SADD");
        cmd.arg(self.key("paused"));
        for p in priorities {
            cmd.arg(p.as_str());
        }
        let _: i64 = self.query(&cmd).await?;
        Ok(())
    }

    /// The paused priorities, in order.
    pub async fn paused(&self) -> Result<Vec<Priority>, QueueError> {
        let v: Vec<String> = self
            .query(redis::cmd("SMEMBERS").arg(self.key("paused")))
            .await?;
        Ok(parse_priorities(&v.join(" ")))
    }

    /// Resume priorities and wake idle consumers.
    pub async fn resume(&self, priorities: &[Priority]) -> Result<(), QueueError> {
        if priorities.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        let mut srem = redis::cmd("SREM");
        srem.arg(self.key("paused"));
        for p in priorities {
            srem.arg(p.as_str());
        }
        pipe.add_command(srem).ignore();
        pipe.cmd("LPUSH")
            .arg(self.key("wake"))
            .arg(vec!["1"; 64])
            .ignore();
        pipe.cmd("LTRIM")
            .arg(self.key("wake"))
            .arg(0)
            .arg(1023)
            .ignore();
        self.pipeline(&pipe).await
    }
}

/// `P1 P3`, or `-` for none (for text output).
pub fn priorities_text(v: &[Priority]) -> String {
    if v.is_empty() {
        return "-".to_string();
    }
    v.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_serialise_with_pending_keyed_by_priority() {
        let v = Value::Int(1);
        let mut reply = vec![v.clone(); 19];
        reply[2] = Value::Int(5);
        reply[8] = Value::BulkString(b"P3 P1 bogus".to_vec());
        let s = QueueStats::from_reply(&reply).unwrap();
        assert_eq!(s.pending_total, 8);
        assert_eq!(s.paused, [Priority::P1, Priority::P3]);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["pending"]["P2"], 5);
        assert_eq!(json["pending_total"], 8);
        assert_eq!(json["paused"], serde_json::json!(["P1", "P3"]));
        reply[4] = Value::Nil;
        assert!(matches!(
            QueueStats::from_reply(&reply),
            Err(QueueError::Protocol(_))
        ));
    }
}
