//! The Redis store behind the queue (SPEC §4).
//!
//! Layout: `mod.rs` is the typed API every other part uses ([`QueueStore`]); `scripts.rs` loads the
//! atomic steps from `lua/*.lua`; `keys` below names every key. Each multi-key step is one Lua
//! script, so a crash between two commands can never lose or duplicate a task.
//!
//! Keys, all under `<prefix>:{<queue>}` (one Redis Cluster hash slot per queue):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `task:<id>` | hash | the task record |
//! | `pending:P0`..`pending:P3` | list | ids ready to run (LPUSH in, RPOP out: FIFO) |
//! | `inflight` | zset | claimed ids scored by lease deadline (ms) |
//! | `retry` / `delayed` | zset | ids scored by when they may run again / first |
//! | `failed` | zset | the dead-letter set, scored by failure time |
//! | `paused` | set | paused priorities |
//! | `idem:<key>` | string | idempotency key -> task id, 24 h |
//! | `recent` | zset | ids by last change, capped (dashboard) |
//! | `counters` | hash | completed/failed/reclaimed/cancelled totals |
//! | `tp:<outcome>:<sec>` | string | per-second outcome counts, 10 min TTL |
//! | `wake` | list | wake-up tokens idle consumers block on |
//! | `events` | stream | capped event log; also PUBLISHed on `events:<event>` |
//! | `instances`, `instance:<id>` | zset, hash | heartbeats of live instances |
//! | `vercel:bucket`, `vercel:hold_until` | hash, string | cluster-wide Vercel rate limiter |
//! | `control` | hash | operators' pool commands (state, restart generation, concurrency) |

mod cluster;
mod scripts;

pub use cluster::{Heartbeat, PoolStatus};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, RedisError, ScriptInvocation};
use serde::Serialize;
use serde_json::Value;

use crate::config::{QueueSettings, RedisUrl};
use crate::task::{DecodeError, Priority, TaskRecord};
use scripts::Scripts;

/// Approximate cap of the events stream (XADD MAXLEN ~).
pub const EVENTS_STREAM_MAX: u64 = 10_000;
/// Cap of the `recent` index.
pub const RECENT_MAX: u64 = 1_000;
/// Idempotency keys are remembered this long (SPEC §4: 24 h).
pub const IDEMPOTENCY_TTL_SECS: u64 = 86_400;
/// Tasks per enqueue script call, so one huge submission can't stall Redis.
const ENQUEUE_CHUNK: usize = 500;
/// How long one Redis reply may take on the shared connection before it counts as an error.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything that can go wrong talking to the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis unreachable, timed out or answered with an error. Never contains the URL's password.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// A reply that did not have the expected shape.
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
    /// A stored record could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A task taken by a consumer.
#[derive(Debug)]
pub struct ClaimedTask {
    /// The id as stored (kept separately: the record may not decode).
    pub id: String,
    /// The decoded record, or why it could not be decoded (poison).
    pub record: Result<TaskRecord, DecodeError>,
    /// Time between becoming ready to run and this claim.
    pub wait: Duration,
}

/// A failed attempt to report.
#[derive(Debug, Clone)]
pub struct Failure {
    pub id: String,
    /// Shown on the record and in events; must not contain secrets.
    pub reason: String,
    /// Whether another attempt may help.
    pub retryable: bool,
    /// Delay before the next attempt when retried.
    pub backoff: Duration,
}

/// Result of a cancel request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled,
    /// Running; its consumer will stop it at the next lease renewal.
    Cancelling,
    NotFound,
    /// Already terminal in this status.
    NotCancellable(String),
}

/// Result of a replay request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    Replayed,
    NotFound,
    /// Only failed tasks can be replayed; this is its status.
    NotFailed(String),
}

/// One snapshot of the queue (`ops-worker stats --json`, `/stats`, metrics gauges).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct QueueStats {
    /// Ready-to-run tasks per priority.
    pub pending: HashMap<String, u64>,
    pub in_flight: u64,
    pub retrying: u64,
    /// Waiting for their `run_at`.
    pub delayed: u64,
    /// Dead-lettered.
    pub failed: u64,
    pub paused: Vec<String>,
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
        self.pending.values().sum()
    }
}

/// Typed access to one queue. Cheap to clone; clones share the connection and counters.
#[derive(Clone)]
pub struct QueueStore {
    /// Multiplexed connection shared by every non-blocking call; reconnects by itself.
    conn: ConnectionManager,
    /// Opens the dedicated connections that blocking waits need (a BLPOP would stall `conn`).
    client: redis::Client,
    /// `<prefix>:{<queue>}`: the start of every key.
    base: Arc<str>,
    /// The Lua scripts, compiled in.
    scripts: Arc<Scripts>,
    /// Lease length given on claim and renewal.
    lease: Duration,
    /// TTL of finished records.
    retention: Duration,
    /// Calls sent to Redis (for `bench`: round trips per task).
    round_trips: Arc<AtomicU64>,
    /// Redis errors seen by this store (for `/health` and metrics).
    errors: Arc<AtomicU64>,
}

fn now_iso() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn pairs_to_map(flat: Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    map
}

impl QueueStore {
    /// Create a store. Connects lazily: a Redis that is down now is retried on every call, so a
    /// worker can start before its Redis does.
    pub fn new(url: &RedisUrl, settings: &QueueSettings) -> Result<Self, QueueError> {
        let client = redis::Client::open(url.expose())?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(QueueStore {
            conn,
            client,
            base: settings.key_base().into(),
            scripts: Arc::new(Scripts::new()),
            lease: settings.lease,
            retention: settings.retention,
            round_trips: Arc::new(AtomicU64::new(0)),
            errors: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The full name of one of this queue's keys.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.base)
    }

    /// `<prefix>:{<queue>}`.
    pub fn key_base(&self) -> &str {
        &self.base
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Calls sent to Redis so far.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Redis errors seen so far.
    pub fn redis_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn track<T>(&self, r: Result<T, RedisError>) -> Result<T, QueueError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        r.map_err(|e| {
            self.errors.fetch_add(1, Ordering::Relaxed);
            QueueError::Redis(e)
        })
    }

    /// A script call with the common prelude arguments filled in.
    fn invocation<'a>(&self, script: &'a redis::Script) -> ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        inv.key(self.key("events"))
            .arg(&*self.base)
            .arg(EVENTS_STREAM_MAX)
            .arg(RECENT_MAX)
            .arg(self.retention.as_secs());
        inv
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, QueueError> {
        let mut conn = self.conn.clone();
        let r = inv.invoke_async(&mut conn).await;
        self.track(r)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, QueueError> {
        let mut conn = self.conn.clone();
        let r = cmd.query_async(&mut conn).await;
        self.track(r)
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }

    /// Store new tasks. Returns `(task id, created)` per task: `created` is false when the
    /// idempotency key matched an existing task, whose id is returned instead.
    pub async fn enqueue(&self, tasks: &[TaskRecord]) -> Result<Vec<(String, bool)>, QueueError> {
        let mut out = Vec::with_capacity(tasks.len());
        for chunk in tasks.chunks(ENQUEUE_CHUNK) {
            let mut inv = self.invocation(&self.scripts.enqueue);
            inv.arg(IDEMPOTENCY_TTL_SECS);
            for t in chunk {
                let fields = t.to_fields();
                inv.arg(t.task_id.to_string())
                    .arg(t.priority.as_str())
                    .arg(t.run_at.map(|r| r.timestamp_millis()).unwrap_or(0))
                    .arg(t.idempotency_key.as_deref().unwrap_or(""))
                    .arg(fields.len());
                for (k, v) in fields {
                    inv.arg(k).arg(v);
                }
            }
            let reply: Vec<(String, i64)> = self.run(&inv).await?;
            out.extend(reply.into_iter().map(|(id, created)| (id, created == 1)));
        }
        Ok(out)
    }

    /// Claim up to `max` tasks for `consumer` (strict priority, FIFO, paused priorities skipped).
    pub async fn claim(&self, consumer: &str, max: usize) -> Result<Vec<ClaimedTask>, QueueError> {
        let mut inv = self.invocation(&self.scripts.claim);
        inv.arg(consumer)
            .arg(self.lease.as_millis() as u64)
            .arg(max);
        let reply: Vec<Vec<String>> = self.run(&inv).await?;
        Ok(reply
            .into_iter()
            .map(|flat| {
                let map = pairs_to_map(flat);
                let num = |f: &str| map.get(f).and_then(|v| v.parse::<i64>().ok());
                let wait = match (num("claimed_ms"), num("ready_ms")) {
                    (Some(c), Some(r)) if c > r => Duration::from_millis((c - r) as u64),
                    _ => Duration::ZERO,
                };
                ClaimedTask {
                    id: map.get("task_id").cloned().unwrap_or_default(),
                    record: TaskRecord::from_fields(&map),
                    wait,
                }
            })
            .collect())
    }

    /// Extend `consumer`'s leases. Returns `(lost, cancel_requested)` ids.
    pub async fn renew(
        &self,
        consumer: &str,
        ids: &[String],
    ) -> Result<(Vec<String>, Vec<String>), QueueError> {
        if ids.is_empty() {
            return Ok((vec![], vec![]));
        }
        let mut inv = self.invocation(&self.scripts.renew);
        inv.arg(consumer).arg(self.lease.as_millis() as u64);
        for id in ids {
            inv.arg(id);
        }
        self.run(&inv).await
    }

    /// Record successful outcomes; returns how many were newly completed.
    pub async fn complete(&self, done: &[(String, Value)]) -> Result<u64, QueueError> {
        if done.is_empty() {
            return Ok(0);
        }
        let mut inv = self.invocation(&self.scripts.complete);
        for (id, result) in done {
            inv.arg(id).arg(result.to_string());
        }
        self.run(&inv).await
    }

    /// Record failed attempts of `consumer`'s tasks; returns `(retried, dead_lettered)`.
    /// Reports about tasks `consumer` no longer holds are ignored.
    pub async fn fail(
        &self,
        consumer: &str,
        failures: &[Failure],
    ) -> Result<(u64, u64), QueueError> {
        if failures.is_empty() {
            return Ok((0, 0));
        }
        let mut inv = self.invocation(&self.scripts.fail);
        inv.arg(consumer);
        for f in failures {
            inv.arg(&f.id)
                .arg(&f.reason)
                .arg(if f.retryable { "1" } else { "0" })
                .arg(f.backoff.as_millis() as u64);
        }
        self.run(&inv).await
    }

    /// Hand leases back without burning an attempt; returns how many went back to pending.
    pub async fn release(&self, consumer: &str, ids: &[String]) -> Result<u64, QueueError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut inv = self.invocation(&self.scripts.release);
        inv.arg(consumer);
        for id in ids {
            inv.arg(id);
        }
        self.run(&inv).await
    }

    /// Reclaim up to `limit` lapsed leases; returns `(requeued, dead_lettered)`.
    /// Returns how many went back to pending and the task types of those dead-lettered.
    pub async fn reclaim(&self, limit: usize) -> Result<(u64, Vec<String>), QueueError> {
        let mut inv = self.invocation(&self.scripts.reclaim);
        inv.arg(limit);
        self.run(&inv).await
    }

    /// Move due delayed/retrying tasks to pending; returns how many moved.
    pub async fn promote_due(&self, limit: usize) -> Result<u64, QueueError> {
        let mut inv = self.invocation(&self.scripts.promote);
        inv.arg(limit);
        self.run(&inv).await
    }

    /// Cancel a task (a running one is stopped by its consumer at the next renewal).
    pub async fn cancel(&self, id: &str) -> Result<CancelOutcome, QueueError> {
        let mut inv = self.invocation(&self.scripts.cancel);
        inv.arg(id);
        let r: String = self.run(&inv).await?;
        Ok(match r.as_str() {
            "cancelled" => CancelOutcome::Cancelled,
            "cancelling" => CancelOutcome::Cancelling,
            "not_found" => CancelOutcome::NotFound,
            other => CancelOutcome::NotCancellable(other.to_string()),
        })
    }

    /// Mark a running task cancelled after its consumer stopped it.
    pub async fn finish_cancel(&self, consumer: &str, id: &str) -> Result<bool, QueueError> {
        let mut inv = self.invocation(&self.scripts.finish_cancel);
        inv.arg(consumer).arg(id);
        let n: i64 = self.run(&inv).await?;
        Ok(n == 1)
    }

    /// Replay a dead-lettered task.
    pub async fn replay(&self, id: &str) -> Result<ReplayOutcome, QueueError> {
        let mut inv = self.invocation(&self.scripts.replay);
        inv.arg(id);
        let r: String = self.run(&inv).await?;
        Ok(match r.as_str() {
            "replayed" => ReplayOutcome::Replayed,
            "not_found" => ReplayOutcome::NotFound,
            other => ReplayOutcome::NotFailed(other.to_string()),
        })
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

    /// The paused priorities, sorted.
    pub async fn paused(&self) -> Result<Vec<String>, QueueError> {
        let mut v: Vec<String> = self
            .query(redis::cmd("SMEMBERS").arg(self.key("paused")))
            .await?;
        v.sort();
        Ok(v)
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
        let mut conn = self.conn.clone();
        let r: Result<(), RedisError> = pipe.query_async(&mut conn).await;
        self.track(r)
    }

    /// The queue snapshot.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let inv = self.invocation(&self.scripts.stats);
        let v: Vec<redis::Value> = self.run(&inv).await?;
        let num = |i: usize| -> Result<u64, QueueError> {
            match v.get(i) {
                Some(redis::Value::Int(n)) => Ok((*n).max(0) as u64),
                other => Err(QueueError::Protocol(format!(
                    "stats field {i}: expected an integer, got {other:?}"
                ))),
            }
        };
        let paused = match v.get(8) {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b)
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            _ => vec![],
        };
        let oldest_ms = num(13)?;
        let now_ms = num(18)?;
        Ok(QueueStats {
            pending: Priority::ALL
                .iter()
                .enumerate()
                .map(|(i, p)| Ok((p.as_str().to_string(), num(i)?)))
                .collect::<Result<_, QueueError>>()?,
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

    /// One task's record, `None` when unknown or expired.
    pub async fn get(&self, id: &str) -> Result<Option<TaskRecord>, QueueError> {
        let map: HashMap<String, String> = self
            .query(redis::cmd("HGETALL").arg(self.key(&format!("task:{id}"))))
            .await?;
        if map.is_empty() {
            return Ok(None);
        }
        Ok(Some(TaskRecord::from_fields_lossy(&map)))
    }

    /// HGETALL of several keys in one round trip (missing keys give empty maps).
    async fn hgetall_many(
        &self,
        keys: impl Iterator<Item = String>,
    ) -> Result<Vec<HashMap<String, String>>, QueueError> {
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HGETALL").arg(key);
        }
        let mut conn = self.conn.clone();
        let r: Result<Vec<HashMap<String, String>>, RedisError> = pipe.query_async(&mut conn).await;
        self.track(r)
    }

    async fn records(&self, ids: Vec<String>) -> Result<Vec<TaskRecord>, QueueError> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let maps = self
            .hgetall_many(ids.iter().map(|id| self.key(&format!("task:{id}"))))
            .await?;
        // Expired records are skipped; undecodable ones are shown as stored.
        Ok(maps
            .into_iter()
            .filter(|m| !m.is_empty())
            .map(|m| TaskRecord::from_fields_lossy(&m))
            .collect())
    }

    /// The most recently changed tasks, newest first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<TaskRecord>, QueueError> {
        let ids: Vec<String> = self
            .query(
                redis::cmd("ZREVRANGE")
                    .arg(self.key("recent"))
                    .arg(0)
                    .arg(limit.saturating_sub(1)),
            )
            .await?;
        self.records(ids).await
    }

    /// Dead-lettered tasks, newest first.
    pub async fn failed(&self, limit: usize) -> Result<Vec<TaskRecord>, QueueError> {
        let ids: Vec<String> = self
            .query(
                redis::cmd("ZREVRANGE")
                    .arg(self.key("failed"))
                    .arg(0)
                    .arg(limit.saturating_sub(1)),
            )
            .await?;
        self.records(ids).await
    }

    /// Store the deployment a task created on its record.
    pub async fn set_deployment_id(
        &self,
        task_id: &str,
        deployment: &str,
    ) -> Result<bool, QueueError> {
        let mut inv = self.invocation(&self.scripts.set_deployment);
        inv.arg(task_id).arg(deployment);
        let n: i64 = self.run(&inv).await?;
        Ok(n == 1)
    }

    /// Open a connection for blocking waits (one per consumer).
    pub async fn blocking_connection(
        &self,
        max_block: Duration,
    ) -> Result<MultiplexedConnection, QueueError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(max_block + RESPONSE_TIMEOUT));
        let r = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await;
        self.track(r)
    }

    /// Block until a wake-up token arrives or `timeout` passes. `true` when woken.
    pub async fn wait_for_work(
        &self,
        conn: &mut MultiplexedConnection,
        timeout: Duration,
    ) -> Result<bool, QueueError> {
        let r: Result<Option<(String, String)>, RedisError> = redis::cmd("BLPOP")
            .arg(self.key("wake"))
            .arg(timeout.as_secs_f64())
            .query_async(conn)
            .await;
        Ok(self.track(r)?.is_some())
    }

    /// Delete every key of this queue (used by `bench` on its private queue).
    pub async fn destroy(&self) -> Result<u64, QueueError> {
        let mut deleted = 0u64;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(format!("{}:*", self.base))
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            if !keys.is_empty() {
                let n: u64 = self.query(redis::cmd("UNLINK").arg(&keys)).await?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

/// Full-jitter exponential back-off (SPEC §4): uniform in `[0, min(cap, base * 2^(attempt-1))]`.
pub fn retry_backoff(attempt: u32) -> Duration {
    const BASE_MS: u64 = 1_000;
    const CAP_MS: u64 = 300_000;
    let exp = attempt.saturating_sub(1).min(20);
    let ceiling = BASE_MS.saturating_mul(1u64 << exp).min(CAP_MS);
    Duration::from_millis(rand::random_range(0..=ceiling))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_its_ceiling() {
        for attempt in 1..30 {
            let ceiling = (1_000u64 << (attempt - 1).min(20)).min(300_000);
            for _ in 0..50 {
                assert!(retry_backoff(attempt).as_millis() as u64 <= ceiling);
            }
        }
    }
}
