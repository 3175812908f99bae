//! Reading the charts' series: the per-minute history (`stats:<minute>` hashes, see
//! `history.rs`) summed into steps, and the live per-second completed/failed counts from the
//! `tp:<outcome>:<sec>` counters the outcome scripts keep for 10 minutes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redis::Value;
use serde::Serialize;

use super::history::{MinuteTally, WAIT_BUCKETS, percentile};
use super::{PerPriority, QueueError, QueueStore};

/// Seconds the live series covers (the `tp:` counters live 10 minutes).
pub const LIVE_SECS: u64 = 600;

/// Wait-time percentiles of one step, ms.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, utoipa::ToSchema)]
pub struct WaitPercentiles {
    /// The median wait.
    pub p50: f64,
    /// What 1 task in 20 waits longer than.
    pub p95: f64,
    /// What 1 task in 100 waits longer than.
    pub p99: f64,
}

/// One step of the history.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HistoryPoint {
    /// Start of the step.
    pub at: DateTime<Utc>,
    /// Tasks completed in the step.
    pub completed: u64,
    /// Tasks dead-lettered in the step.
    pub failed: u64,
    /// Failed attempts scheduled again.
    pub retried: u64,
    /// Tasks cancelled (waiting ones at once, running ones when their consumer stopped them).
    pub cancelled: u64,
    /// `completed` per second of the step.
    pub completed_per_sec: f64,
    /// `failed` per second of the step.
    pub failed_per_sec: f64,
    /// Queue depth per priority at the step's last sample; null when no minute was sampled.
    pub pending: Option<PerPriority>,
    /// Tasks in flight at the step's last sample.
    pub in_flight: Option<u64>,
    /// Consumers of the live instances at the step's last sample.
    pub capacity: Option<u64>,
    /// Claimed tasks whose wait is in the percentiles.
    pub waits: u64,
    /// Wait (ready -> claimed) percentiles; null without waits.
    pub wait_ms: Option<WaitPercentiles>,
}

/// One second of the live series.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LivePoint {
    /// The second (Redis clock).
    pub at: DateTime<Utc>,
    /// Tasks completed in that second.
    pub completed: u64,
    /// Tasks dead-lettered in that second.
    pub failed: u64,
}

/// What one minute's hash holds, decoded.
#[derive(Debug, Default)]
struct MinuteRead {
    /// Outcomes (counted by the scripts) and waits (flushed by the instances).
    tally: MinuteTally,
    /// The sampler's fields, when the minute was sampled: depths, in flight, capacity.
    sample: Option<(PerPriority, u64, u64)>,
}

fn decode_minute(map: &HashMap<String, String>) -> MinuteRead {
    let num = |f: &str| map.get(f).and_then(|v| v.parse::<u64>().ok());
    let mut tally = MinuteTally {
        completed: num("completed").unwrap_or(0),
        failed: num("failed").unwrap_or(0),
        retried: num("retried").unwrap_or(0),
        cancelled: num("cancelled").unwrap_or(0),
        wait: [0; WAIT_BUCKETS],
    };
    for (i, w) in tally.wait.iter_mut().enumerate() {
        *w = num(&format!("w{i}")).unwrap_or(0);
    }
    let sample = num("capacity").map(|capacity| {
        let pending = PerPriority {
            p0: num("pending_P0").unwrap_or(0),
            p1: num("pending_P1").unwrap_or(0),
            p2: num("pending_P2").unwrap_or(0),
            p3: num("pending_P3").unwrap_or(0),
        };
        (pending, num("in_flight").unwrap_or(0), capacity)
    });
    MinuteRead { tally, sample }
}

/// Sum minutes `first..first+n` (oldest first) into one point starting at `first`.
fn step_point(first: u64, minutes: &[MinuteRead]) -> HistoryPoint {
    let mut sum = MinuteTally::default();
    let mut last_sample = None;
    for m in minutes {
        sum.add(&m.tally);
        if m.sample.is_some() {
            last_sample = m.sample;
        }
    }
    let secs = (minutes.len().max(1) * 60) as f64;
    let waits: u64 = sum.wait.iter().sum();
    let wait_ms = match (
        percentile(&sum.wait, 0.5),
        percentile(&sum.wait, 0.95),
        percentile(&sum.wait, 0.99),
    ) {
        (Some(p50), Some(p95), Some(p99)) => Some(WaitPercentiles { p50, p95, p99 }),
        _ => None,
    };
    HistoryPoint {
        at: DateTime::from_timestamp((first * 60) as i64, 0).unwrap_or_default(),
        completed: sum.completed,
        failed: sum.failed,
        retried: sum.retried,
        cancelled: sum.cancelled,
        completed_per_sec: sum.completed as f64 / secs,
        failed_per_sec: sum.failed as f64 / secs,
        pending: last_sample.map(|s| s.0),
        in_flight: last_sample.map(|s| s.1),
        capacity: last_sample.map(|s| s.2),
        waits,
        wait_ms,
    }
}

impl QueueStore {
    /// The last `range_min` minutes (the current one included, on the Redis clock, which the
    /// scripts count outcomes by) in steps of `step_min` minutes, aligned on multiples of the
    /// step, oldest first: one `TIME`, then one pipeline of `HGETALL`s.
    pub async fn history(
        &self,
        range_min: u64,
        step_min: u64,
    ) -> Result<Vec<HistoryPoint>, QueueError> {
        let step = step_min.max(1);
        let now = self.redis_minute().await?;
        let first = (now + 1).saturating_sub(range_min.max(1));
        let first = first - first % step;
        let minutes: Vec<u64> = (first..=now).collect();
        let maps = self
            .hgetall_many(minutes.iter().map(|m| self.minute_key(*m)))
            .await?;
        let reads: Vec<MinuteRead> = maps.iter().map(decode_minute).collect();
        Ok(reads
            .chunks(step as usize)
            .enumerate()
            .map(|(i, chunk)| step_point(first + i as u64 * step, chunk))
            .collect())
    }

    /// The current epoch minute on the Redis clock.
    async fn redis_minute(&self) -> Result<u64, QueueError> {
        let (secs, _micros): (u64, u64) = self.query(&redis::cmd("TIME")).await?;
        Ok(secs / 60)
    }

    /// Completed and failed per second over the last [`LIVE_SECS`] seconds of the Redis clock,
    /// oldest first (one script: the counters are keyed by Redis seconds).
    pub async fn live_throughput(&self) -> Result<Vec<LivePoint>, QueueError> {
        let mut inv = self.invocation(&self.scripts.throughput);
        inv.arg(LIVE_SECS);
        let reply: Vec<Value> = self.run(&inv).await?;
        let int = |v: &Value| match v {
            Value::Int(n) => Ok((*n).max(0) as u64),
            other => Err(QueueError::Protocol(format!(
                "throughput: expected an integer, got {other:?}"
            ))),
        };
        let (Some(now), rest) = (reply.first(), reply.get(1..).unwrap_or_default()) else {
            return Err(QueueError::Protocol("throughput: empty reply".into()));
        };
        let now = int(now)?;
        let n = LIVE_SECS as usize;
        if rest.len() != 2 * n {
            return Err(QueueError::Protocol(format!(
                "throughput: expected {} counts, got {}",
                2 * n,
                rest.len()
            )));
        }
        (0..n)
            .map(|i| {
                let sec = now + 1 + i as u64 - LIVE_SECS;
                Ok(LivePoint {
                    at: DateTime::from_timestamp(sec as i64, 0).unwrap_or_default(),
                    completed: int(&rest[i])?,
                    failed: int(&rest[n + i])?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn steps_sum_counts_and_keep_the_last_sample() {
        let a = decode_minute(&map(&[
            ("completed", "60"),
            ("w0", "3"),
            ("capacity", "4"),
            ("in_flight", "2"),
            ("pending_P1", "7"),
        ]));
        let b = decode_minute(&map(&[("completed", "60"), ("failed", "6"), ("w2", "1")]));
        let p = step_point(10, &[a, b]);
        assert_eq!(p.at.timestamp(), 600);
        assert_eq!(p.completed, 120);
        assert!((p.completed_per_sec - 1.0).abs() < 1e-9);
        assert!((p.failed_per_sec - 0.05).abs() < 1e-9);
        assert_eq!(p.capacity, Some(4));
        assert_eq!(p.pending.map(|x| x.p1), Some(7));
        assert_eq!(p.waits, 4);
        assert!(p.wait_ms.is_some());
        let empty = step_point(0, &[decode_minute(&HashMap::new())]);
        assert_eq!(empty.pending, None);
        assert_eq!(empty.wait_ms, None);
    }
}
