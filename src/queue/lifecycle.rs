//! The consumer's side of the queue: claim, renew, and record what became of each attempt, plus
//! the blocking wait for work.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use redis::{RedisError, Value};
use serde_json::Value as Json;

use super::outcome::{Applied, TaskOutcome, parse_outcomes};
use super::{Conn, QueueError, QueueStore};
use crate::task::{DecodeError, TaskRecord, TaskType};
use crate::telemetry;

/// A task taken by a consumer.
#[derive(Debug)]
pub struct ClaimedTask {
    /// The id as stored (kept separately: the record may not decode).
    pub id: String,
    /// The decoded record, or why it could not be decoded (poison). Only the fields the claim
    /// reads (`CLAIM_FIELDS`) are filled in; display-only ones (source, metadata, result, ...)
    /// hold their defaults: read the record with [`QueueStore::get`] to show it.
    pub record: Result<TaskRecord, DecodeError>,
    /// Time between becoming ready to run and this claim.
    pub wait: Duration,
}

/// What one claim took: the tasks now leased to the caller, and what the script did with the
/// ids it popped but did not hand out (dead-lettered stubs, stale entries).
#[derive(Debug, Default)]
pub struct Claim {
    pub tasks: Vec<ClaimedTask>,
    pub skipped: Vec<TaskOutcome>,
}

/// A failed attempt to report.
#[derive(Debug, Clone)]
pub struct Failure {
    pub id: String,
    /// Shown on the record and in events; scrubbed of secrets by [`QueueStore::fail`].
    pub reason: String,
    /// Whether another attempt may help; the `fail` script decides whether there is one.
    pub retryable: bool,
    /// Delay before the next attempt, if the script schedules one.
    pub backoff: Duration,
}

/// What asking for a project's lock did (`project_acquire`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectClaim {
    /// The task holds the project now (it was free, or already this task's).
    Acquired,
    /// Another task holds it: this one was deferred (pending, no attempt burnt, lease dropped)
    /// into the project's waiting set, and runs when `holder` lets go.
    Waiting { holder: String },
    /// An operator cancelled the task meanwhile; it is cancelled now.
    Cancelled,
    /// The consumer no longer holds the task (`status` is what the record says).
    Stale { status: String },
}

/// The record fields a claim reads, in `claim.lua`'s order (its `CLAIM_FIELDS`): what the
/// consumer and the handlers use, not the display-only fields (source, metadata, result, ...),
/// which a claimed task's record therefore holds as their defaults. The first
/// six (`claim.lua`'s `BASE`) are read for every task, the rest (the run state) only for the types
/// whose handler reads it ([`TaskType::reads_run_state`]); for the others they come as nil.
/// Each claimed task comes as these values followed by its priority (the list it was on) and its
/// id (the key's); the batch's `started_at` and `claimed_ms` come once.
const CLAIM_FIELDS: [&str; 10] = [
    "status",
    "type",
    "attempts",
    "trace_id",
    "payload",
    "ready_ms",
    "max_retries",
    "created_at",
    "deployment_id",
    "steps",
];

/// The spellings of `types`, space separated, as the scripts take a set of types.
fn type_list(types: impl Iterator<Item = TaskType>) -> String {
    types.map(TaskType::as_str).collect::<Vec<_>>().join(" ")
}

/// The types that never hold a project lock, as `complete.lua` takes them: completing a running
/// task of one of them reads only its status.
fn lock_free_types() -> &'static str {
    static LOCK_FREE: OnceLock<String> = OnceLock::new();
    LOCK_FREE.get_or_init(|| type_list(TaskType::ALL.into_iter().filter(|t| !t.holds_projects())))
}

/// The spellings of the types whose claim reads only the first six (`claim.lua`'s `BASE`), space
/// separated, as the claim script takes them.
fn light_types() -> &'static str {
    static LIGHT: OnceLock<String> = OnceLock::new();
    LIGHT.get_or_init(|| type_list(TaskType::ALL.into_iter().filter(|t| !t.reads_run_state())))
}

/// A successful attempt to record.
#[derive(Debug, Clone)]
pub struct Done {
    pub id: String,
    /// The handler's result, stored on the record.
    pub result: Json,
    /// The `task.completed` event's fields as the consumer knows them from its claim; `None`
    /// has the script read them from the record.
    pub facts: Option<TaskFacts>,
}

/// What a consumer knows of a task it claimed, for its events.
#[derive(Debug, Clone)]
pub struct TaskFacts {
    pub task_type: &'static str,
    pub priority: &'static str,
    pub attempts: u32,
    pub trace_id: String,
}

/// What every task of one claim shares: when it started (RFC 3339, Redis clock) and the claim's
/// time in epoch ms (for the wait since each task became ready).
struct BatchTimes {
    started_at: String,
    claimed_ms: Option<i64>,
}

fn bulk_string(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// Values per claimed task in the claim's flat reply: the fields, the priority and the id.
const CLAIM_STRIDE: usize = CLAIM_FIELDS.len() + 2;

fn claimed_task(entry: &[Value], batch: &BatchTimes) -> Result<ClaimedTask, QueueError> {
    let Some((Value::BulkString(id), items)) = entry.split_last() else {
        return Err(QueueError::Protocol(
            "a claimed record without its id".into(),
        ));
    };
    let Some((prio, items)) = items.split_last() else {
        return Err(QueueError::Protocol(
            "a claimed record without its priority".into(),
        ));
    };
    let id = String::from_utf8_lossy(id).into_owned();
    let mut map = HashMap::with_capacity(CLAIM_FIELDS.len() + 3);
    if let Some(p) = bulk_string(Some(prio)) {
        map.insert("priority".to_string(), p);
    }
    for (name, v) in CLAIM_FIELDS.iter().zip(items) {
        // Absent fields come as nil.
        if let Value::BulkString(v) = v {
            map.insert(name.to_string(), String::from_utf8_lossy(v).into_owned());
        }
    }
    if !batch.started_at.is_empty() {
        map.insert("started_at".to_string(), batch.started_at.clone());
    }
    if map
        .get("type")
        .is_some_and(|t| light_types().split(' ').any(|l| l == t))
    {
        // Not read for this type (no handler of it uses them): placeholders, so the record
        // decodes; its stored values are unchanged.
        map.entry("max_retries".to_string())
            .or_insert_with(|| "0".to_string());
        map.entry("created_at".to_string())
            .or_insert_with(|| batch.started_at.clone());
    }
    let ready = map.get("ready_ms").and_then(|v| v.parse::<i64>().ok());
    let wait = match (batch.claimed_ms, ready) {
        (Some(c), Some(r)) if c > r => Duration::from_millis((c - r) as u64),
        _ => Duration::ZERO,
    };
    crate::task::with_key_id(&mut map, &id);
    let record = TaskRecord::from_fields(&map).and_then(|r| {
        if r.task_id.to_string() == id {
            Ok(r)
        } else {
            Err(DecodeError {
                field: "task_id",
                message: format!("`{}` does not match its key (`{id}`)", r.task_id),
            })
        }
    });
    Ok(ClaimedTask { id, record, wait })
}

impl QueueStore {
    /// Claim up to `max` tasks for `consumer` (strict priority, FIFO, paused priorities skipped).
    pub async fn claim(&self, consumer: &str, max: usize) -> Result<Claim, QueueError> {
        let mut inv = self.invocation(&self.scripts.claim);
        inv.arg(consumer)
            .arg(self.lease.as_millis() as u64)
            .arg(max)
            .arg(light_types());
        let reply: Value = self.run(&inv).await?;
        let Value::Array(parts) = &reply else {
            return Err(QueueError::Protocol(format!("claim answered {reply:?}")));
        };
        let (Some(Value::Array(records)), Some(skipped)) = (parts.first(), parts.get(1)) else {
            return Err(QueueError::Protocol(format!("claim answered {reply:?}")));
        };
        let batch = BatchTimes {
            started_at: bulk_string(parts.get(2)).unwrap_or_default(),
            claimed_ms: bulk_string(parts.get(3)).and_then(|v| v.parse().ok()),
        };
        if records.len() % CLAIM_STRIDE != 0 {
            return Err(QueueError::Protocol(format!(
                "claim answered {} values, not a multiple of {CLAIM_STRIDE}",
                records.len()
            )));
        }
        Ok(Claim {
            tasks: records
                .chunks(CLAIM_STRIDE)
                .map(|r| claimed_task(r, &batch))
                .collect::<Result<_, _>>()?,
            skipped: parse_outcomes(skipped)?,
        })
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

    /// Take `project`'s lock for task `id` run by `consumer` (for one lease, renewed with it),
    /// or defer the task behind the holder in the same atomic step.
    pub async fn acquire_project(
        &self,
        id: &str,
        consumer: &str,
        project: &str,
    ) -> Result<ProjectClaim, QueueError> {
        let mut inv = self.invocation(&self.scripts.project_acquire);
        inv.arg(id)
            .arg(consumer)
            .arg(project)
            .arg(self.lease.as_millis() as u64);
        let (kind, detail): (String, String) = self.run(&inv).await?;
        Ok(match kind.as_str() {
            "acquired" => ProjectClaim::Acquired,
            "waiting" => ProjectClaim::Waiting { holder: detail },
            "cancelled" => ProjectClaim::Cancelled,
            "stale" => ProjectClaim::Stale { status: detail },
            other => {
                return Err(QueueError::Protocol(format!(
                    "project_acquire answered `{other}`"
                )));
            }
        })
    }

    /// Record successful attempts of tasks the caller did not claim itself (the script reads
    /// the event's fields from each record); see [`QueueStore::complete_claimed`].
    pub async fn complete(&self, done: &[(String, Json)]) -> Result<Vec<TaskOutcome>, QueueError> {
        let done: Vec<Done> = done
            .iter()
            .map(|(id, result)| Done {
                id: id.clone(),
                result: result.clone(),
                facts: None,
            })
            .collect();
        self.complete_claimed(&done).await
    }

    /// Record successful attempts; answers what was applied to each (`Completed`, or `Stale`
    /// when the task had already finished). The script lists only the stale ones.
    pub async fn complete_claimed(&self, done: &[Done]) -> Result<Vec<TaskOutcome>, QueueError> {
        if done.is_empty() {
            return Ok(vec![]);
        }
        let mut inv = self.invocation(&self.scripts.complete);
        inv.arg(lock_free_types());
        for d in done {
            inv.arg(&d.id).arg(d.result.to_string());
            match &d.facts {
                Some(f) => inv
                    .arg(f.task_type)
                    .arg(f.priority)
                    .arg(f.attempts)
                    .arg(&f.trace_id),
                None => inv.arg("").arg("").arg("").arg(""),
            };
        }
        let reply: Value = self.run(&inv).await?;
        self.outcome_replicated().await;
        let stale = parse_outcomes(&reply)?;
        let completed = done
            .iter()
            .filter(|d| !stale.iter().any(|s| s.id == d.id))
            .map(|d| TaskOutcome {
                id: d.id.clone(),
                task_type: None,
                applied: Applied::Completed,
            });
        Ok(completed.chain(stale.iter().cloned()).collect())
    }

    /// Record failed attempts of `consumer`'s tasks; answers, per task, whether the script
    /// scheduled a retry, dead-lettered it, cancelled it (an operator asked) or ignored a stale
    /// report about a task `consumer` no longer holds.
    pub async fn fail(
        &self,
        consumer: &str,
        failures: &[Failure],
    ) -> Result<Vec<TaskOutcome>, QueueError> {
        if failures.is_empty() {
            return Ok(vec![]);
        }
        let mut inv = self.invocation(&self.scripts.fail);
        inv.arg(consumer);
        for f in failures {
            // Reasons often quote upstream errors; no secret may reach the record or events.
            inv.arg(&f.id)
                .arg(telemetry::scrub::text(&f.reason).as_ref())
                .arg(if f.retryable { "1" } else { "0" })
                .arg(f.backoff.as_millis() as u64);
        }
        let reply: Value = self.run(&inv).await?;
        self.outcome_replicated().await;
        parse_outcomes(&reply)
    }

    /// Hand leases back without burning an attempt; answers `Requeued`, `Cancelled` or `Stale`
    /// per task.
    pub async fn release(
        &self,
        consumer: &str,
        ids: &[String],
    ) -> Result<Vec<TaskOutcome>, QueueError> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut inv = self.invocation(&self.scripts.release);
        inv.arg(consumer);
        for id in ids {
            inv.arg(id);
        }
        let reply: Value = self.run(&inv).await?;
        parse_outcomes(&reply)
    }

    /// Mark a running task cancelled after its consumer stopped it.
    pub async fn finish_cancel(
        &self,
        consumer: &str,
        id: &str,
    ) -> Result<Vec<TaskOutcome>, QueueError> {
        let mut inv = self.invocation(&self.scripts.finish_cancel);
        inv.arg(consumer).arg(id);
        let reply: Value = self.run(&inv).await?;
        parse_outcomes(&reply)
    }

    /// After a claim got no answer (Redis may have run it), hand back every task leased to
    /// `consumer` at once, without burning the attempts; answers what was handed back.
    pub async fn recover(&self, consumer: &str) -> Result<Vec<TaskOutcome>, QueueError> {
        let mut inv = self.invocation(&self.scripts.recover);
        inv.arg(consumer);
        let reply: Value = self.run(&inv).await?;
        parse_outcomes(&reply)
    }

    /// Open a connection for blocking waits (one per consumer): on a cluster, one that follows
    /// the queue's slot like the shared one.
    pub async fn blocking_connection(&self, max_block: Duration) -> Result<Conn, QueueError> {
        self.dedicated_connection(max_block).await
    }

    /// Block until a wake-up token arrives or `timeout` passes. `true` when woken.
    pub async fn wait_for_work(
        &self,
        conn: &mut Conn,
        timeout: Duration,
    ) -> Result<bool, QueueError> {
        let r: Result<Option<(String, String)>, RedisError> = redis::cmd("BLPOP")
            .arg(self.key("wake"))
            .arg(timeout.as_secs_f64())
            .query_async(conn)
            .await;
        Ok(self.track(r)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    /// The claim's reply is read by position: `claim.lua`'s list and [`super::CLAIM_FIELDS`] must
    /// name the same fields in the same order.
    #[test]
    fn claim_fields_match_the_script() {
        let lua = include_str!("lua/claim.lua");
        let start = lua
            .find("local CLAIM_FIELDS = {")
            .expect("claim.lua lists its fields");
        let list = &lua[start..];
        let list = &list[list.find('{').unwrap_or(0) + 1..list.find('}').unwrap_or(0)];
        let script: Vec<&str> = list
            .split(',')
            .map(|f| f.trim().trim_matches('\''))
            .collect();
        assert_eq!(script, super::CLAIM_FIELDS);
        // The run state starts after the base fields.
        let base_fields = super::CLAIM_FIELDS
            .iter()
            .position(|f| *f == "max_retries")
            .unwrap_or(0);
        let base = format!("local BASE = {base_fields}\n");
        assert!(lua.contains(&base), "claim.lua declares {base:?}");
    }

    /// The run-state fields are read for the types that use them, and for a spelling the
    /// script does not know as light.
    #[test]
    fn light_types_leave_out_deploy_and_release() {
        let light: Vec<&str> = super::light_types().split(' ').collect();
        assert!(light.contains(&"noop") && light.contains(&"promote"));
        for heavy in ["deploy", "release", "unknown", "deployment"] {
            assert!(!light.contains(&heavy), "{heavy} needs its run state");
        }
    }

    /// Only types whose handlers never take a project lock skip the project read on completion.
    #[test]
    fn only_noop_is_lock_free() {
        assert_eq!(super::lock_free_types(), "noop");
    }
}
