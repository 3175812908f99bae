//! What the instances of one queue share besides the tasks: heartbeats, operators' pool commands,
//! the cluster-wide Vercel rate limiter, and the event stream.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use redis::RedisError;
use serde::Serialize;
use serde_json::Value;

use super::{EVENTS_STREAM_MAX, QueueError, QueueStore, now_iso, pairs_to_map};

/// What the pool is doing, as shown in heartbeats and the status API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PoolStatus {
    Running,
    /// Draining towards stopped.
    Stopping,
    Stopped,
    /// Restart limit hit; backing off before trying again.
    Error,
}

impl PoolStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolStatus::Running => "running",
            PoolStatus::Stopping => "stopping",
            PoolStatus::Stopped => "stopped",
            PoolStatus::Error => "error",
        }
    }
}

/// An instance's heartbeat as stored in Redis.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Heartbeat {
    pub instance: String,
    pub host: String,
    /// running | stopping | stopped | error
    pub status: String,
    pub consumers: u64,
    pub in_flight: u64,
    /// Consumer restarts since the process started.
    pub restarts: u64,
    pub started_at: String,
    pub last_heartbeat: String,
    pub pid: u64,
    /// Process CPU use, percent of the container's CPU limit.
    pub cpu_percent: f64,
    /// Resident memory, percent of the container's memory limit.
    pub memory_percent: f64,
}

impl QueueStore {
    /// Take a token from the cluster-wide Vercel rate limiter. `Duration::ZERO` means go now;
    /// otherwise wait that long and ask again. The reason is `ok`, `bucket` or `retry_after`.
    pub async fn vercel_acquire(
        &self,
        per_min: u32,
        burst: u32,
    ) -> Result<(Duration, String), QueueError> {
        let mut inv = self.invocation(&self.scripts.vercel_acquire);
        inv.arg(per_min).arg(burst);
        let (ms, reason): (u64, String) = self.run(&inv).await?;
        Ok((Duration::from_millis(ms), reason))
    }

    /// Hold every instance's Vercel calls for `wait` (after a 429).
    pub async fn vercel_hold(&self, wait: Duration) -> Result<(), QueueError> {
        let mut inv = self.invocation(&self.scripts.vercel_hold);
        inv.arg(wait.as_millis() as u64);
        let _: i64 = self.run(&inv).await?;
        Ok(())
    }

    /// Record a pool command (`start`, `stop`, `restart`) for the whole cluster (`instance` None)
    /// or one instance; every instance converges on it within a second.
    pub async fn set_control(
        &self,
        instance: Option<&str>,
        command: &str,
        concurrency: Option<usize>,
    ) -> Result<HashMap<String, String>, QueueError> {
        let mut inv = self.invocation(&self.scripts.control);
        inv.arg(instance.unwrap_or(""))
            .arg(command)
            .arg(concurrency.map(|n| n.to_string()).unwrap_or_default());
        let flat: Vec<String> = self.run(&inv).await?;
        Ok(pairs_to_map(flat))
    }

    /// The pool commands in force (see [`QueueStore::set_control`]).
    pub async fn control(&self) -> Result<HashMap<String, String>, QueueError> {
        self.query(redis::cmd("HGETALL").arg(self.key("control")))
            .await
    }

    /// Emit an event that is not a task state change (worker.*, deploy.*).
    pub async fn emit_event(
        &self,
        event: &str,
        task_id: Option<&str>,
        mut body: serde_json::Map<String, Value>,
    ) -> Result<(), QueueError> {
        body.insert("event".into(), event.into());
        body.insert("ts".into(), now_iso().into());
        if let Some(id) = task_id {
            body.insert("task_id".into(), id.into());
        }
        let json = Value::Object(body).to_string();
        let mut pipe = redis::pipe();
        pipe.cmd("XADD")
            .arg(self.key("events"))
            .arg("MAXLEN")
            .arg("~")
            .arg(EVENTS_STREAM_MAX)
            .arg("*")
            .arg("event")
            .arg(event)
            .arg("task_id")
            .arg(task_id.unwrap_or(""))
            .arg("data")
            .arg(&json)
            .ignore();
        pipe.cmd("PUBLISH")
            .arg(self.key(&format!("events:{event}")))
            .arg(&json)
            .ignore();
        let mut conn = self.conn.clone();
        let r: Result<(), RedisError> = pipe.query_async(&mut conn).await;
        self.track(r)
    }

    /// Events in the stream, oldest first, as `(event, task_id, data JSON)`.
    pub async fn events(&self, count: usize) -> Result<Vec<(String, String, Value)>, QueueError> {
        type Entry = (String, HashMap<String, String>);
        let entries: Vec<Entry> = self
            .query(
                redis::cmd("XRANGE")
                    .arg(self.key("events"))
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        Ok(entries
            .into_iter()
            .map(|(_, f)| {
                let data = f
                    .get("data")
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or(Value::Null);
                (
                    f.get("event").cloned().unwrap_or_default(),
                    f.get("task_id").cloned().unwrap_or_default(),
                    data,
                )
            })
            .collect())
    }

    /// Write this instance's heartbeat (expires after `ttl` unless refreshed).
    pub async fn heartbeat(&self, hb: &Heartbeat, ttl: Duration) -> Result<(), QueueError> {
        let key = self.key(&format!("instance:{}", hb.instance));
        let now_ms = Utc::now().timestamp_millis();
        let mut pipe = redis::pipe();
        pipe.cmd("HSET")
            .arg(&key)
            .arg("instance")
            .arg(&hb.instance)
            .arg("host")
            .arg(&hb.host)
            .arg("status")
            .arg(&hb.status)
            .arg("consumers")
            .arg(hb.consumers)
            .arg("in_flight")
            .arg(hb.in_flight)
            .arg("restarts")
            .arg(hb.restarts)
            .arg("started_at")
            .arg(&hb.started_at)
            .arg("last_heartbeat")
            .arg(&hb.last_heartbeat)
            .arg("pid")
            .arg(hb.pid)
            .arg("cpu_percent")
            .arg(hb.cpu_percent)
            .arg("memory_percent")
            .arg(hb.memory_percent)
            .ignore();
        pipe.cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl.as_millis() as u64)
            .ignore();
        pipe.cmd("ZADD")
            .arg(self.key("instances"))
            .arg(now_ms)
            .arg(&hb.instance)
            .ignore();
        // Instances silent for an hour are forgotten entirely.
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(self.key("instances"))
            .arg("-inf")
            .arg(now_ms - 3_600_000)
            .ignore();
        let mut conn = self.conn.clone();
        let r: Result<(), RedisError> = pipe.query_async(&mut conn).await;
        self.track(r)
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
        let mut conn = self.conn.clone();
        let r: Result<(), RedisError> = pipe.query_async(&mut conn).await;
        self.track(r)
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
            .into_iter()
            .filter(|m| !m.is_empty())
            .map(|m| {
                let s = |f: &str| m.get(f).cloned().unwrap_or_default();
                let n = |f: &str| m.get(f).and_then(|v| v.parse().ok()).unwrap_or(0);
                let x = |f: &str| m.get(f).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                Heartbeat {
                    instance: s("instance"),
                    host: s("host"),
                    status: s("status"),
                    consumers: n("consumers"),
                    in_flight: n("in_flight"),
                    restarts: n("restarts"),
                    started_at: s("started_at"),
                    last_heartbeat: s("last_heartbeat"),
                    pid: n("pid"),
                    cpu_percent: x("cpu_percent"),
                    memory_percent: x("memory_percent"),
                }
            })
            .collect())
    }
}
