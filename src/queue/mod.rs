//! The Redis store behind the queue: typed access for every other part of the program.
//!
//! Layout, by concern (each file adds methods to [`QueueStore`]):
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | the store, error counting, slot-migration retries, key names |
//! | `link.rs` + `conn.rs` | the connections of each topology (single, Sentinel, Cluster) |
//! | `scripts.rs` + `lua/` | the atomic steps, one Lua file each, sharing `lua/lib.lua` |
//! | `outcome.rs` | what a script did to each task ([`TaskOutcome`]), parsed from its reply |
//! | `tasks.rs` | submit, read, list, cancel, replay (the submitter's and operator's side) |
//! | `listing.rs` | listing queries, pages and cursors, filtered in Redis within a scan budget |
//! | `lifecycle.rs` | claim, renew, complete, fail, release, project locks, blocking waits (the consumer's side) |
//! | `maintenance.rs` | promote due tasks, reclaim lapsed leases |
//! | `stats.rs` | the queue snapshot, pause and resume |
//! | `server.rs` | what the Redis server reports (memory, CPU), deleting a whole queue |
//! | `control.rs` | operators' pool commands, typed |
//! | `heartbeat.rs` | instance heartbeats and the pool status they carry |
//! | `events.rs` | the event stream |
//! | `limiter.rs` | the cluster-wide Vercel rate limiter |
//! | `releases.rs` | known-good releases per project (rollback targets) |
//! | `build.rs` | live build progress of deploy tasks (states seen, build log) |
//! | `release_run.rs` | the progress of running `release` tasks (what a resumed attempt skips) |
//! | `schedules.rs` | recurring tasks: definitions, next ticks, firing due ticks once |
//! | `history.rs`, `history_read.rs` | the charts' 24 h per-minute history and the live per-second series |
//!
//! Each multi-key step is one Lua script, so a crash between two commands can never lose or
//! duplicate a task; each script reports, per task, the outcome it applied, and callers record
//! that reply (metrics, logs) instead of guessing it.
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
//! | `stats:<minute>` | hash | the charts' history of one minute (outcomes by the scripts, waits, samples), 25 h TTL |
//! | `wake` | list | wake-up tokens idle consumers block on |
//! | `events` | stream | capped event log (batch entries: see `events.rs`); also PUBLISHed on `events:<event>` |
//! | `events:sizes`, `events:count` | list, string | events per batch entry and their sum (the stream's cap in events) |
//! | `instances`, `instance:<id>` | zset, hash | heartbeats of live instances |
//! | `vercel:bucket`, `vercel:hold_until` | hash, string | cluster-wide Vercel rate limiter |
//! | `control` | hash | operators' pool commands (state, restart generation, concurrency) |
//! | `releases:<project>`, `...:entries` | list, hash | known-good releases, newest first (50) |
//! | `schedules`, `schedules:next` | hash, zset | schedule definitions; their next ticks (ms) |
//! | `build:<id>`, `build:<id>:log` | hash, list | a deploy's states seen and build log (500 lines) |
//! | `release:<id>` | hash | a release's progress (run id, deployment, built, verified, promoting/promoted, watch end, failed step, rollback target, rolled back); expires with the failed retention |
//! | `project:<project>` | string | id of the task changing the project now (PX one lease) |
//! | `project:<project>:waiting`, `projects:waiting` | zset, set | tasks waiting for the project by (priority, ready time); projects with waiters |
//! | `stats:<minute>` | hash | one epoch minute (instance clock) of history, 25 h TTL: `completed`, `failed`, `retried`, `cancelled` and wait buckets `w0`..`w14` (HINCRBY by every instance), `pending_P0`..`pending_P3`, `in_flight`, `capacity` (the minute's sampler) |
//! | `stats:sampler:<minute>` | string | the instance that samples the minute's depths (SET NX, 120 s) |
//! | `migration-guard` | never written | declared by every script (`KEYS[2]`) so a cluster slot migration refuses scripts before they run |

pub mod build;
mod conn;
pub mod connect;
mod control;
mod events;
mod heartbeat;
pub mod history;
pub mod history_read;
mod lifecycle;
mod limiter;
mod link;
mod listing;
mod maintenance;
mod outcome;
pub mod release_run;
pub mod releases;
pub mod schedules;
mod scripts;
mod server;
mod stats;
mod tasks;

pub use conn::Conn;
pub use control::{
    Control, DesiredState, InstanceControl, MAX_CONCURRENCY, PoolCommand, ScopeControl,
};
pub use events::{StreamEntry, StreamEvent, StreamPage};
pub use heartbeat::{Heartbeat, PoolStatus};
pub use lifecycle::{Claim, ClaimedTask, Done, Failure, ProjectClaim, TaskFacts};
pub use limiter::LimiterAnswer;
pub use listing::{
    Cursor, LIST_LIMIT_MAX, ListIndex, ListQuery, SCAN_MIN, SCAN_PER_ROW, TaskPage, scan_budget,
};
pub use outcome::{Applied, TaskOutcome};
pub use stats::{PerPriority, QueueStats, priorities_text};
pub use tasks::{CancelOutcome, DeleteOutcome, ReplayOutcome, status_text};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use redis::{RedisError, ScriptInvocation};

use crate::config::{QueueSettings, RedisSettings};
use crate::telemetry::events::{InternalEvent, RedisCallFailed};
use scripts::Scripts;

/// Approximate cap of the events stream, in task events (batch entries are counted by their
/// events; one-event entries also by XADD MAXLEN ~).
pub const EVENTS_STREAM_MAX: u64 = 10_000;
/// Cap of the `recent` index.
pub const RECENT_MAX: u64 = 1_000;
/// Idempotency keys are remembered this long (24 h).
pub const IDEMPOTENCY_TTL_SECS: u64 = 86_400;
/// How long one Redis reply may take on the shared connection before it counts as an error.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// A key of the queue's slot that is never written; every script declares it (`KEYS[2]`).
const MIGRATION_GUARD: &str = "migration-guard";
/// How long a script refused by a slot migration is retried before the error is returned.
const MIGRATION_RETRY_FOR: Duration = Duration::from_secs(10);
/// How long a write waits for `REDIS_MIN_REPLICAS_ACK` replicas.
pub const REPLICA_WAIT: Duration = Duration::from_secs(1);

/// Everything that can go wrong talking to the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis unreachable, timed out or answered with an error. Never contains the URL's password.
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    /// A reply that did not have the expected shape.
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
    /// Written on the master, but fewer replicas than `REDIS_MIN_REPLICAS_ACK` confirmed it in
    /// time: a failover now could lose it.
    #[error(
        "written, but only {acked} of {wanted} replicas confirmed it within 1 s (REDIS_MIN_REPLICAS_ACK)"
    )]
    NotReplicated {
        /// Replicas that confirmed.
        acked: u32,
        /// Replicas asked for.
        wanted: u32,
    },
}

/// Typed access to one queue. Cheap to clone; clones share the connection and counters.
#[derive(Clone)]
pub struct QueueStore {
    /// The shared connection and the client of blocking ones; follows a Sentinel failover.
    link: link::Link,
    /// Replicas each submission and outcome waits for (`REDIS_MIN_REPLICAS_ACK`; 0 = none).
    min_replicas_ack: u32,
    /// `<prefix>:{<queue>}`: the start of every key.
    base: Arc<str>,
    /// The Lua scripts, compiled in.
    scripts: Arc<Scripts>,
    /// Lease length given on claim and renewal.
    lease: Duration,
    /// TTL of failed, and of completed/cancelled records.
    retention: Duration,
    retention_completed: Duration,
    /// Count caps of finished records (completed and cancelled, failed).
    keep: (u64, u64),
    /// Calls sent to Redis (for `bench`: round trips per task).
    round_trips: Arc<AtomicU64>,
    /// Whether Redis is unreachable now, so an outage logs one ERROR when it starts and one INFO
    /// with its length when it ends (not one line per failed call).
    outage: Arc<Outage>,
    /// This instance's wait counts not yet flushed to the history (`history.rs`).
    history: Arc<history::HistoryTally>,
}

/// An ongoing Redis outage (connection-level errors), shared by a store's clones.
#[derive(Default)]
struct Outage {
    /// Fast path: checked on every successful reply.
    down: std::sync::atomic::AtomicBool,
    /// When it started.
    since: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Outage {
    fn failed(&self, e: &RedisError) {
        let connection = e.is_io_error()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_connection_dropped();
        if !connection || self.down.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Ok(mut since) = self.since.lock() {
            *since = Some(std::time::Instant::now());
        }
        tracing::error!(error = %e, "Redis is unreachable; every caller keeps retrying");
    }

    fn answered(&self) {
        if !self.down.swap(false, Ordering::Relaxed) {
            return;
        }
        let since = self.since.lock().ok().and_then(|mut s| s.take());
        let secs = since.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
        tracing::info!(outage_secs = secs, "Redis is reachable again");
    }
}

/// Errors a slot migration (resharding) or a cluster still settling causes, where the call did
/// not run and can be sent again.
fn migrating(e: &RedisError) -> bool {
    matches!(e.code(), Some("TRYAGAIN" | "ASK" | "MOVED" | "CLUSTERDOWN"))
}

fn now_iso() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A hash reply (RESP2 flat list or RESP3 map) as text, decoding invalid UTF-8 lossily, so one
/// corrupt byte shows as U+FFFD instead of failing the whole read.
fn lossy_map(v: &redis::Value) -> HashMap<String, String> {
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(n) => n.to_string(),
        _ => String::new(),
    };
    match v {
        redis::Value::Array(items) => items
            .chunks(2)
            .filter_map(|p| match p {
                [k, v] => Some((text(k), text(v))),
                _ => None,
            })
            .collect(),
        redis::Value::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), text(v))).collect(),
        _ => HashMap::new(),
    }
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
    /// worker can start before its Redis does. With Sentinel, the master is asked for first.
    pub async fn new(redis: &RedisSettings, settings: &QueueSettings) -> Result<Self, QueueError> {
        let base = settings.key_base();
        Ok(QueueStore {
            link: link::Link::open(redis, &base).await?,
            min_replicas_ack: redis.min_replicas_ack,
            base: base.into(),
            scripts: Arc::new(Scripts::new()),
            lease: settings.lease,
            retention: settings.retention,
            retention_completed: settings.retention_completed,
            keep: (settings.keep_completed, settings.keep_failed),
            round_trips: Arc::new(AtomicU64::new(0)),
            outage: Arc::new(Outage::default()),
            history: Arc::new(history::HistoryTally::default()),
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

    /// Every Redis reply of the process passes here: count the call, count and report errors.
    fn track<T>(&self, r: Result<T, RedisError>) -> Result<T, QueueError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(v) => {
                self.outage.answered();
                Ok(v)
            }
            Err(e) => {
                RedisCallFailed { error: &e }.emit();
                self.outage.failed(&e);
                self.link.note_error(&e);
                Err(QueueError::Redis(e))
            }
        }
    }

    /// A connection of its own (blocking waits, doctor): to the URL's host, the Sentinel's
    /// master, or the cluster (routing like the shared one). Replies may take `max_block` more.
    pub async fn dedicated_connection(&self, max_block: Duration) -> Result<Conn, QueueError> {
        let r = self.link.dedicated(max_block).await;
        self.track(r)
    }

    /// `single`, `sentinel` or `cluster`.
    pub fn redis_topology(&self) -> &'static str {
        self.link.topology()
    }

    /// The master in use (`host:port`): `REDIS_URL`'s host, the one a Sentinel named, or on a
    /// cluster the node owning the queue's slot now. `None` when no Sentinel or node answered.
    pub async fn redis_master(&self) -> Option<String> {
        self.link.master().await
    }

    /// A script call with the common prelude arguments filled in. `KEYS[1]`, the events stream,
    /// routes the call; `KEYS[2]` is [`MIGRATION_GUARD`], a key of the same slot that is never
    /// written: while the slot migrates between cluster nodes, a script declaring a key that
    /// exists on neither side is refused up front (`TRYAGAIN` or `ASK`, before any write)
    /// instead of failing half-way on a key that already moved, and [`QueueStore::run`] retries it.
    fn invocation<'a>(&self, script: &'a redis::Script) -> ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        inv.key(self.key("events"))
            .key(self.key(MIGRATION_GUARD))
            .arg(&*self.base)
            .arg(EVENTS_STREAM_MAX)
            .arg(RECENT_MAX)
            .arg(format!(
                "{}:{}",
                self.retention_completed.as_secs().max(1),
                self.retention.as_secs().max(1)
            ));
        inv
    }

    /// Run a script. While the queue's slot migrates to another cluster node, the script is
    /// refused before it runs (`TRYAGAIN`, `ASK`, `MOVED`, `CLUSTERDOWN`, see
    /// [`QueueStore::invocation`]): it is sent again after a short back-off (5 ms doubling up
    /// to 200 ms, for up to [`MIGRATION_RETRY_FOR`]), so a resharding delays calls but fails none.
    async fn run<T: redis::FromRedisValue>(
        &self,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, QueueError> {
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let mut conn = self.link.conn();
            let r = inv.invoke_async(&mut conn).await;
            match r {
                Err(e) if migrating(&e) && started.elapsed() < MIGRATION_RETRY_FOR => {
                    self.round_trips.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "queue slot migrating; sending the script again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                r => return self.track(r),
            }
        }
    }

    /// Run a script that writes submissions, then wait for `REDIS_MIN_REPLICAS_ACK` replicas
    /// ([`QueueStore::replicated`]). `Err(NotReplicated)` when fewer confirmed: the write is on
    /// the master but a failover could lose it.
    async fn run_durable<T: redis::FromRedisValue>(
        &self,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, QueueError> {
        let value = self.run(inv).await?;
        self.replicated().await?;
        Ok(value)
    }

    /// With `REDIS_MIN_REPLICAS_ACK`, wait up to [`REPLICA_WAIT`] until that many replicas have
    /// every write sent so far on the shared connection (`WAIT`).
    pub(crate) async fn replicated(&self) -> Result<(), QueueError> {
        if self.min_replicas_ack == 0 {
            return Ok(());
        }
        let wait = redis::cmd("WAIT")
            .arg(self.min_replicas_ack)
            .arg(REPLICA_WAIT.as_millis() as u64)
            .to_owned();
        let acked: u32 = self.query(&wait).await?;
        if acked < self.min_replicas_ack {
            return Err(QueueError::NotReplicated {
                acked,
                wanted: self.min_replicas_ack,
            });
        }
        Ok(())
    }

    /// After an outcome write: wait for the replicas like a submission, but only warn when they
    /// are late (the outcome stands on the master; writing it again would change nothing).
    async fn outcome_replicated(&self) {
        if let Err(e) = self.replicated().await {
            tracing::warn!(error = %e, "task outcome not yet on the replicas");
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, QueueError> {
        let mut conn = self.link.conn();
        let r = cmd.query_async(&mut conn).await;
        self.track(r)
    }

    async fn pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, QueueError> {
        let mut conn = self.link.conn();
        let r = pipe.query_async(&mut conn).await;
        self.track(r)
    }

    /// `PING`.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
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
        let replies: Vec<redis::Value> = self.pipeline(&pipe).await?;
        Ok(replies.iter().map(lossy_map).collect())
    }
}

/// Full-jitter exponential back-off between attempts: uniform in
/// `[0, min(5 min, 1 s * 2^(attempt-1))]`. The `fail` script decides whether there is a next
/// attempt; this only says how long it waits.
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
