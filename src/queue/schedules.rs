//! Recurring tasks in Redis: definitions in the hash `<base>:schedules` (name -> JSON), next ticks
//! in the zset `<base>:schedules:next` (name -> epoch ms). Every instance fires due ticks
//! ([`QueueStore::fire_due_schedules`]); a tick's task has a deterministic idempotency key and the
//! tick is advanced by compare-and-set (`schedules.lua`), so each tick makes exactly one task
//! however many instances try, and none is missed while any instance runs.

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use tracing::{error, info, warn};
use utoipa::ToSchema;

use super::{QueueError, QueueStore};
use crate::task::Schedule;

/// A stored schedule and its next tick.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleEntry {
    #[serde(flatten)]
    pub schedule: Schedule,
    /// When it fires next; `None` once it will never fire again.
    pub next_tick: Option<DateTime<Utc>>,
}

/// What one firing round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    /// Ticks whose task this instance created.
    pub created: usize,
    /// Ticks another instance had already submitted (same idempotency key).
    pub duplicates: usize,
}

/// Most due schedules handled per round.
const DUE_BATCH: usize = 100;
/// Missed ticks younger than this are each fired; older ones collapse into one.
const CATCH_UP: chrono::Duration = chrono::Duration::minutes(5);
/// Most ticks of one schedule fired per round (the next round goes on).
const MAX_TICKS_PER_ROUND: usize = 60;

impl QueueStore {
    /// Add or replace a schedule; it first fires at `first_tick`.
    pub async fn put_schedule(
        &self,
        schedule: &Schedule,
        first_tick: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        let json = serde_json::to_string(schedule)
            .map_err(|e| QueueError::Protocol(format!("cannot encode a schedule: {e}")))?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset(self.key("schedules"), &schedule.name, json)
            .ignore()
            .zadd(
                self.key("schedules:next"),
                &schedule.name,
                first_tick.timestamp_millis(),
            )
            .ignore();
        self.pipeline::<()>(&pipe).await
    }

    /// Remove a schedule; `false` when there was none of that name.
    pub async fn remove_schedule(&self, name: &str) -> Result<bool, QueueError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hdel(self.key("schedules"), name)
            .zrem(self.key("schedules:next"), name)
            .ignore();
        let (removed,): (i64,) = self.pipeline(&pipe).await?;
        Ok(removed == 1)
    }

    /// Every schedule with its next tick, by name (definitions that do not decode are skipped).
    pub async fn schedules(&self) -> Result<Vec<ScheduleEntry>, QueueError> {
        let defs: Vec<(String, Vec<u8>)> = self
            .query(redis::cmd("HGETALL").arg(self.key("schedules")))
            .await?;
        let next: Vec<(String, i64)> = self
            .query(
                redis::cmd("ZRANGE")
                    .arg(self.key("schedules:next"))
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES"),
            )
            .await?;
        let next: std::collections::HashMap<String, i64> = next.into_iter().collect();
        let mut out: Vec<ScheduleEntry> = defs
            .into_iter()
            .filter_map(|(name, raw)| {
                let schedule: Schedule = serde_json::from_slice(&raw).ok()?;
                let next_tick = next.get(&name).and_then(|ms| from_ms(*ms));
                Some(ScheduleEntry {
                    schedule,
                    next_tick,
                })
            })
            .collect();
        out.sort_by(|a, b| a.schedule.name.cmp(&b.schedule.name));
        Ok(out)
    }

    /// Submit the task of every due tick and move each schedule on. Ticks missed for less than
    /// [`CATCH_UP`] (a slow round, a moment with no instance) are each fired; a longer gap
    /// collapses into one task, so a cluster back after a night down does not replay the night.
    pub async fn fire_due_schedules(&self) -> Result<Fired, QueueError> {
        let mut inv = self.invocation(&self.scripts.schedules);
        inv.arg("due").arg(DUE_BATCH);
        let reply: Vec<String> = self.run(&inv).await?;
        let Some((now, due)) = reply.split_first() else {
            return Ok(Fired::default());
        };
        let now = now.parse().ok().and_then(from_ms).unwrap_or_else(Utc::now);
        let mut fired = Fired::default();
        for pair in due.chunks_exact(2) {
            let (name, tick) = (&pair[0], pair[1].parse::<i64>().unwrap_or_default());
            match self.fire_one(name, tick, now).await? {
                Some(true) => fired.created += 1,
                Some(false) => fired.duplicates += 1,
                None => {}
            }
        }
        Ok(fired)
    }

    /// Fire one due schedule from `tick_ms`: each missed tick within [`CATCH_UP`] of now gets its
    /// task (at most [`MAX_TICKS_PER_ROUND`] per round); older missed ticks collapse into one.
    /// `Some(created)` for the first tick handled, `None` when the definition is gone or unusable
    /// (the schedule is then stopped, with an ERROR line).
    async fn fire_one(
        &self,
        name: &str,
        tick_ms: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, QueueError> {
        let raw: Option<Vec<u8>> = self
            .query(redis::cmd("HGET").arg(self.key("schedules")).arg(name))
            .await?;
        let schedule = raw.and_then(|r| serde_json::from_slice::<Schedule>(&r).ok());
        let (Some(schedule), Some(mut tick)) = (schedule, from_ms(tick_ms)) else {
            error!(
                schedule = name,
                "schedule definition missing or unreadable; it stops"
            );
            self.advance(name, tick_ms, None).await?;
            return Ok(None);
        };
        let mut first = None;
        for _ in 0..MAX_TICKS_PER_ROUND {
            let Some(created) = self.fire_tick(&schedule, tick, now).await? else {
                return Ok(first);
            };
            first.get_or_insert(created);
            let from = if now - tick > CATCH_UP { now } else { tick };
            let next = schedule.next_after(from);
            if !self.advance(name, tick.timestamp_millis(), next).await? {
                break; // another instance moved it on
            }
            match next {
                Some(n) if n <= now => tick = n,
                Some(_) => break,
                None => {
                    warn!(schedule = name, "schedule will never fire again");
                    break;
                }
            }
        }
        Ok(first)
    }

    /// Submit the task of one tick; `Some(created)`, or `None` when the schedule no longer makes
    /// a valid task (it is stopped).
    async fn fire_tick(
        &self,
        schedule: &Schedule,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, QueueError> {
        let task = match schedule.task_for(tick, now) {
            Ok(t) => t,
            Err(e) => {
                let name = schedule.name.as_str();
                error!(schedule = name, error = %e, "schedule no longer makes a valid task; it stops");
                self.advance(name, tick.timestamp_millis(), None).await?;
                return Ok(None);
            }
        };
        let created = self
            .enqueue(std::slice::from_ref(&task))
            .await?
            .first()
            .is_some_and(|(_, created)| *created);
        if created {
            info!(schedule = %schedule.name, tick = %tick, task_id = %task.task_id, "schedule fired");
        }
        Ok(Some(created))
    }

    /// Compare-and-set the schedule's next tick from `tick_ms` to `next`.
    async fn advance(
        &self,
        name: &str,
        tick_ms: i64,
        next: Option<DateTime<Utc>>,
    ) -> Result<bool, QueueError> {
        let mut inv = self.invocation(&self.scripts.schedules);
        inv.arg("advance").arg(name).arg(tick_ms).arg(
            next.map(|n| n.timestamp_millis().to_string())
                .unwrap_or_default(),
        );
        let n: i64 = self.run(&inv).await?;
        Ok(n == 1)
    }
}

fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}
