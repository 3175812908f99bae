//! The 24 h history behind the dashboard's charts, kept in Redis as one hash per minute
//! (`stats:<minute>`, epoch minutes, expiring after [`HISTORY_TTL`]).
//!
//! Three writers:
//! - the outcomes (completed, failed, retried, cancelled) are counted by the scripts that record
//!   them, in the same call, on the Redis clock (`count_outcome` in `lua/lib.lua`: one `HINCRBY`
//!   per outcome kind per call, not per task), so nothing is lost when an instance dies and
//!   nothing counts twice;
//! - every instance counts its tasks' wait times in a [`HistoryTally`] (memory only; the
//!   consumers add to it after recording a batch) and adds them to the minute's hash with one
//!   `MULTI`/`EXEC` of `HINCRBY`s every few seconds ([`QueueStore::flush_history`], from the
//!   supervisor's chores; minutes of the instance clock);
//! - once a minute, whichever instance wins `SET stats:sampler:<minute> NX` samples the queue
//!   depth per priority, the tasks in flight and the consumers of the live instances (the
//!   capacity) into the same hash ([`QueueStore::sample_history`]).
//!
//! Wait times (ready -> claimed) are kept as counts per bucket of [`WAIT_BOUNDS_MS`], so minutes
//! from many instances add up, and percentiles come from the summed buckets ([`percentile`]).
//! The reads are in `history_read.rs`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{QueueError, QueueStore};
use crate::telemetry::events::AttemptOutcome;

/// Minute hashes live this long (25 h: the 24 h range plus a margin).
pub const HISTORY_TTL: Duration = Duration::from_secs(25 * 3600);
/// Upper bounds (inclusive, ms) of the wait-time buckets; one more bucket holds longer waits.
pub const WAIT_BOUNDS_MS: [u64; 14] = [
    10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000,
];
/// Number of wait-time buckets (the bounds plus the overflow).
pub const WAIT_BUCKETS: usize = WAIT_BOUNDS_MS.len() + 1;
/// Minutes a tally keeps when it cannot flush (Redis down): older ones are dropped, so memory
/// stays bounded.
const TALLY_MINUTES_MAX: usize = 60;

/// The wait-time counts of one minute, per bucket of [`WAIT_BOUNDS_MS`].
pub type WaitBuckets = [u64; WAIT_BUCKETS];

/// The counts of one minute of the whole cluster, as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MinuteTally {
    /// Tasks completed.
    pub completed: u64,
    /// Tasks dead-lettered.
    pub failed: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Tasks cancelled (waiting ones at once, running ones when their consumer stopped them).
    pub cancelled: u64,
    /// Wait times (ready -> claimed) per bucket of [`WAIT_BOUNDS_MS`].
    pub wait: WaitBuckets,
}

impl MinuteTally {
    /// Add another minute's counts to these.
    pub fn add(&mut self, other: &MinuteTally) {
        self.completed += other.completed;
        self.failed += other.failed;
        self.retried += other.retried;
        self.cancelled += other.cancelled;
        for (a, b) in self.wait.iter_mut().zip(other.wait.iter()) {
            *a += b;
        }
    }
}

/// The hash fields and increments of a minute's waits (only the non-zero ones).
fn wait_fields(wait: &WaitBuckets) -> impl Iterator<Item = (String, u64)> + '_ {
    wait.iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (format!("w{i}"), *n))
}

/// The bucket a wait falls in.
pub fn wait_bucket(wait: Duration) -> usize {
    let ms = wait.as_millis() as u64;
    WAIT_BOUNDS_MS
        .iter()
        .position(|b| ms <= *b)
        .unwrap_or(WAIT_BOUNDS_MS.len())
}

/// The `q` quantile (0..=1) of bucketed waits, in ms, interpolated linearly inside its bucket;
/// a quantile in the overflow bucket reads as the last bound. `None` when there are no waits.
pub fn percentile(buckets: &[u64; WAIT_BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
    let mut seen = 0u64;
    for (i, n) in buckets.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        if (seen + n) as f64 >= rank {
            let Some(upper) = WAIT_BOUNDS_MS.get(i) else {
                return WAIT_BOUNDS_MS.last().map(|b| *b as f64);
            };
            let lower = if i == 0 { 0 } else { WAIT_BOUNDS_MS[i - 1] };
            let within = (rank - seen as f64) / *n as f64;
            return Some(lower as f64 + within * (upper - lower) as f64);
        }
        seen += n;
    }
    WAIT_BOUNDS_MS.last().map(|b| *b as f64)
}

/// The current epoch minute on this instance's clock.
pub fn current_minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 60)
        .unwrap_or(0)
}

/// One instance's wait-time counts not yet added to Redis, by minute (the outcomes are counted
/// by the scripts). Shared by the store's clones.
#[derive(Debug, Default)]
pub struct HistoryTally {
    /// Minute -> wait buckets since the last flush.
    minutes: Mutex<BTreeMap<u64, WaitBuckets>>,
    /// The last minute this instance tried to take the sampler's turn for (+1; 0 = never), so
    /// it asks once a minute.
    sampled: AtomicU64,
}

impl HistoryTally {
    /// Count the wait of one recorded attempt of a task that was claimed and ran. Hand-backs
    /// (`Released`) count nothing: the task runs again and counts then. (Its outcome is counted
    /// by the script that recorded it.)
    pub fn note_wait(&self, outcome: AttemptOutcome, wait: Duration) {
        self.note_at(current_minute(), outcome, wait);
    }

    fn note_at(&self, minute: u64, outcome: AttemptOutcome, wait: Duration) {
        if outcome == AttemptOutcome::Released {
            return;
        }
        let Ok(mut minutes) = self.minutes.lock() else {
            return;
        };
        minutes.entry(minute).or_insert([0; WAIT_BUCKETS])[wait_bucket(wait)] += 1;
        while minutes.len() > TALLY_MINUTES_MAX {
            minutes.pop_first();
        }
    }

    /// Take everything counted so far.
    fn take(&self) -> BTreeMap<u64, WaitBuckets> {
        self.minutes
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }

    /// Put counts back that could not be flushed (they go out with the next flush).
    fn restore(&self, taken: BTreeMap<u64, WaitBuckets>) {
        let Ok(mut minutes) = self.minutes.lock() else {
            return;
        };
        for (minute, t) in taken {
            let m = minutes.entry(minute).or_insert([0; WAIT_BUCKETS]);
            for (a, b) in m.iter_mut().zip(t.iter()) {
                *a += b;
            }
        }
        while minutes.len() > TALLY_MINUTES_MAX {
            minutes.pop_first();
        }
    }

    /// Whether this instance should try for the sampler's turn of `minute` (once per minute).
    fn first_look_at(&self, minute: u64) -> bool {
        self.sampled.swap(minute + 1, Ordering::Relaxed) != minute + 1
    }
}

impl QueueStore {
    /// This store's tally of waits, flushed by [`QueueStore::flush_history`].
    pub fn history_tally(&self) -> &HistoryTally {
        &self.history
    }

    /// The key of one minute's hash.
    pub(super) fn minute_key(&self, minute: u64) -> String {
        self.key(&format!("stats:{minute}"))
    }

    /// Add the tally to the minute hashes (one `MULTI`/`EXEC` of `HINCRBY`s and `EXPIRE`s: all
    /// or nothing, so a flush that fails half-way adds nothing and the counts kept for the next
    /// flush count once). Returns the minutes written.
    pub async fn flush_history(&self) -> Result<usize, QueueError> {
        let taken = self.history.take();
        if taken.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (minute, t) in &taken {
            let key = self.minute_key(*minute);
            for (field, n) in wait_fields(t) {
                pipe.cmd("HINCRBY").arg(&key).arg(field).arg(n).ignore();
            }
            pipe.cmd("EXPIRE")
                .arg(&key)
                .arg(HISTORY_TTL.as_secs())
                .ignore();
        }
        match self.pipeline::<()>(&pipe).await {
            Ok(()) => Ok(taken.len()),
            Err(e) => {
                self.history.restore(taken);
                Err(e)
            }
        }
    }

    /// Once per minute per instance: try for the minute's sampler turn (`SET NX`); the winner
    /// stores the queue depth per priority, the tasks in flight and the live instances'
    /// consumers in the minute's hash. Returns whether this call sampled.
    pub async fn sample_history(&self) -> Result<bool, QueueError> {
        let minute = current_minute();
        if !self.history.first_look_at(minute) {
            return Ok(false);
        }
        let won: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(self.key(&format!("stats:sampler:{minute}")))
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(120),
            )
            .await?;
        if won.is_none() {
            return Ok(false);
        }
        let stats = self.stats().await?;
        let capacity: u64 = self.instances().await?.iter().map(|h| h.consumers).sum();
        let key = self.minute_key(minute);
        let mut pipe = redis::pipe();
        let hset = pipe.cmd("HSET").arg(&key);
        for p in crate::task::Priority::ALL {
            hset.arg(format!("pending_{}", p.as_str()))
                .arg(stats.pending.get(p));
        }
        hset.arg("in_flight")
            .arg(stats.in_flight)
            .arg("capacity")
            .arg(capacity)
            .ignore();
        pipe.cmd("EXPIRE")
            .arg(&key)
            .arg(HISTORY_TTL.as_secs())
            .ignore();
        self.pipeline::<()>(&pipe).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_fall_in_their_buckets() {
        assert_eq!(wait_bucket(Duration::from_millis(0)), 0);
        assert_eq!(wait_bucket(Duration::from_millis(10)), 0);
        assert_eq!(wait_bucket(Duration::from_millis(11)), 1);
        assert_eq!(wait_bucket(Duration::from_secs(7200)), WAIT_BOUNDS_MS.len());
    }

    #[test]
    fn percentiles_interpolate_within_the_bucket() {
        let mut b = [0u64; WAIT_BUCKETS];
        assert_eq!(percentile(&b, 0.5), None);
        b[0] = 50; // 0..10 ms
        b[2] = 50; // 50..100 ms
        assert_eq!(percentile(&b, 0.5), Some(10.0));
        let p99 = percentile(&b, 0.99).unwrap();
        assert!((p99 - 99.0).abs() < 1e-9, "{p99}");
        b[WAIT_BUCKETS - 1] = 1000;
        assert_eq!(percentile(&b, 0.99), Some(3_600_000.0));
    }

    #[test]
    fn the_tally_counts_waits_by_minute_and_gives_back_what_failed_to_flush() {
        let ms = Duration::from_millis;
        let t = HistoryTally::default();
        t.note_at(7, AttemptOutcome::Completed, ms(3));
        t.note_at(7, AttemptOutcome::Failed, ms(4));
        t.note_at(7, AttemptOutcome::Released, ms(3));
        t.note_at(8, AttemptOutcome::Retried, ms(60));
        let taken = t.take();
        assert_eq!(taken[&7][0], 2, "hand-backs count no wait");
        assert_eq!(taken[&8][2], 1);
        assert_eq!(
            wait_fields(&taken[&8]).collect::<Vec<_>>(),
            [("w2".into(), 1)]
        );
        assert!(t.take().is_empty());
        t.restore(taken.clone());
        t.note_at(7, AttemptOutcome::Completed, ms(5));
        assert_eq!(t.take()[&7][0], 3);
        for m in 0..100 {
            t.note_at(m, AttemptOutcome::Completed, ms(1));
        }
        assert_eq!(t.take().len(), TALLY_MINUTES_MAX);
    }

    #[test]
    fn the_sampler_turn_is_asked_for_once_a_minute() {
        let t = HistoryTally::default();
        assert!(t.first_look_at(5));
        assert!(!t.first_look_at(5));
        assert!(t.first_look_at(6));
    }
}
