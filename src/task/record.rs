//! [`TaskRecord`]: the stored task, and its conversion to and from the flat string map of its
//! Redis hash, strict ([`TaskRecord::from_fields`], failing with a [`DecodeError`]) or lossy for
//! display ([`TaskRecord::from_fields_lossy`]).

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Priority, StepEntry, TaskStatus, TaskType, WaitingFor};

/// Whether records are written with the fields builds before compact records (commit `345215e`)
/// require even at their defaults (`task_id`, a `{}` payload, 0 attempts). Off: records are
/// compact (~64 bytes and ~4 % of the Redis work per task less, docs/benchmarks.md); a rolling
/// deploy from an older build goes through a build that reads both forms (docs/operations.md).
const WRITE_EARLIER_VERSIONS_FIELDS: bool = false;

/// The stored task. Serialises to the JSON the API returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskRecord {
    /// Identity, a UUID v4.
    pub task_id: Uuid,
    /// Which handler runs it.
    #[serde(rename = "type")]
    pub task_type: TaskType,
    /// Claim order class.
    pub priority: Priority,
    /// Handler arguments (validated per type).
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Submitter, for operators reading the dashboard.
    pub source: String,
    /// Life-cycle position.
    pub status: TaskStatus,
    /// How many times a consumer has claimed it (a crash mid-run counts; a graceful hand-back doesn't).
    pub attempts: u32,
    /// Retries allowed after the first attempt before dead-lettering.
    pub max_retries: u32,
    /// When it was submitted (millisecond precision, as stored).
    pub created_at: DateTime<Utc>,
    /// Start of the latest attempt.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached completed / failed / cancelled.
    pub completed_at: Option<DateTime<Utc>>,
    /// Last failure reason; kept after a later attempt succeeds, so operators can see what was retried.
    pub error: Option<String>,
    /// Handler output (e.g. the deployment id, url and state).
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Correlates logs, events and Sentry reports of one task.
    pub trace_id: String,
    /// The submitter's idempotency key, when given (same key within 24 h, same task).
    pub idempotency_key: Option<String>,
    /// Submitter's free-form context.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Earliest time it may run, for delayed tasks.
    pub run_at: Option<DateTime<Utc>>,
    /// The Vercel deployment this task created, stored as soon as Vercel returned it so a retry
    /// or a reclaim resumes it instead of creating another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// Vercel's inspector page of that deployment (`inspectorUrl`), stored with its id, so the
    /// dashboard can link to the build on Vercel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspector_url: Option<String>,
    /// While the task is deferred behind a busy project: that project and the task holding it.
    /// Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<WaitingFor>,
    /// The step history of a multi-step task (a `release`), oldest first; empty for other types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepEntry>,
}

/// A record in Redis that could not be decoded (hand-written, truncated, or from a newer version).
#[derive(Debug, Clone, thiserror::Error)]
#[error("malformed task record: field `{field}`: {message}")]
pub struct DecodeError {
    /// The hash field that is missing or does not decode.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl TaskRecord {
    /// The hash fields written on enqueue. Absent optionals and a `metadata` of `{}` are not
    /// written (every reader takes them as the defaults), nor are `task_id` (the key holds it), a
    /// `{}` payload and 0 attempts (`WRITE_EARLIER_VERSIONS_FIELDS`).
    /// The fields the `task.created` event carries come first (`enqueue.lua` reads them at these
    /// positions).
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("type", self.task_type.as_str().to_string()),
            ("status", self.status.as_str().to_string()),
            ("trace_id", self.trace_id.clone()),
            ("priority", self.priority.as_str().to_string()),
            ("source", self.source.clone()),
            ("max_retries", self.max_retries.to_string()),
            ("created_at", rfc3339(&self.created_at)),
        ];
        if WRITE_EARLIER_VERSIONS_FIELDS || self.attempts != 0 {
            f.push(("attempts", self.attempts.to_string()));
        }
        if WRITE_EARLIER_VERSIONS_FIELDS {
            f.push(("task_id", self.task_id.to_string()));
        }
        if WRITE_EARLIER_VERSIONS_FIELDS || !is_empty_object(&self.payload) {
            f.push(("payload", self.payload.to_string()));
        }
        if !is_empty_object(&self.metadata) {
            f.push(("metadata", self.metadata.to_string()));
        }
        if let Some(k) = &self.idempotency_key {
            f.push(("idempotency_key", k.clone()));
        }
        if let Some(t) = &self.run_at {
            f.push(("run_at", rfc3339(t)));
        }
        f
    }

    /// Decode a record for display (API, dashboard, `ops-worker show`): what does not decode is
    /// shown as it is stored instead of hiding the record. JSON fields that don't parse become
    /// strings, an unknown type becomes `unknown`, broken numbers 0, broken times absent; an id
    /// that is not a UUID is shown as the nil UUID with the stored id in `error`.
    pub fn from_fields_lossy(map: &HashMap<String, String>) -> Self {
        if let Ok(r) = Self::from_fields(map) {
            return r;
        }
        let get = |f: &str| map.get(f).filter(|s| !s.is_empty()).cloned();
        let json = |f: &str| get(f).map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)));
        let time = |f: &str| {
            get(f)
                .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let raw_id = get("task_id").unwrap_or_default();
        let task_id = raw_id.parse().unwrap_or(Uuid::nil());
        let mut error = get("error");
        if task_id.is_nil() {
            error = Some(format!(
                "[stored id: {raw_id}] {}",
                error.unwrap_or_default()
            ));
        }
        TaskRecord {
            task_id,
            task_type: get("type")
                .and_then(|t| t.parse().ok())
                .unwrap_or(TaskType::Unknown),
            priority: get("priority")
                .and_then(|p| p.parse().ok())
                .unwrap_or_default(),
            payload: json("payload").unwrap_or(Value::Object(Map::new())),
            source: get("source").unwrap_or_else(|| "unknown".into()),
            status: get("status")
                .and_then(|s| s.parse().ok())
                .unwrap_or(TaskStatus::Failed),
            attempts: get("attempts").and_then(|a| a.parse().ok()).unwrap_or(0),
            max_retries: get("max_retries").and_then(|a| a.parse().ok()).unwrap_or(0),
            created_at: time("created_at").unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            started_at: time("started_at"),
            completed_at: time("completed_at"),
            error,
            result: json("result"),
            trace_id: get("trace_id").unwrap_or_default(),
            idempotency_key: get("idempotency_key"),
            metadata: json("metadata").unwrap_or(Value::Object(Map::new())),
            run_at: time("run_at"),
            deployment_id: get("deployment_id"),
            inspector_url: get("inspector_url"),
            waiting_for: waiting_for(map),
            steps: steps(map),
        }
    }

    /// Decode a record from its Redis hash. Every problem names the field. The hash need not hold
    /// `task_id` (the key does): callers add the key's id as `task_id` when it is absent
    /// ([`with_key_id`]); absent `payload`, `metadata` and `attempts` read as `{}`, `{}` and 0.
    pub fn from_fields(map: &HashMap<String, String>) -> Result<Self, DecodeError> {
        let opt = |field: &str| map.get(field).filter(|s| !s.is_empty()).cloned();

        Ok(TaskRecord {
            task_id: req(map, "task_id")?
                .parse()
                .map_err(|e| bad("task_id", e))?,
            task_type: req(map, "type")?.parse().map_err(|e| bad("type", e))?,
            priority: req(map, "priority")?
                .parse()
                .map_err(|e| bad("priority", e))?,
            payload: match map.get("payload") {
                Some(s) => json("payload", s)?,
                None => Value::Object(Map::new()),
            },
            source: opt("source").unwrap_or_else(|| "unknown".into()),
            status: req(map, "status")?.parse().map_err(|e| bad("status", e))?,
            attempts: match map.get("attempts") {
                Some(a) => a.parse().map_err(|e| bad("attempts", e))?,
                None => 0,
            },
            max_retries: req(map, "max_retries")?
                .parse()
                .map_err(|e| bad("max_retries", e))?,
            created_at: time("created_at", req(map, "created_at")?)?,
            started_at: opt_time(map, "started_at")?,
            completed_at: opt_time(map, "completed_at")?,
            error: opt("error"),
            result: match opt("result") {
                Some(s) => Some(json("result", &s)?),
                None => None,
            },
            trace_id: opt("trace_id").unwrap_or_default(),
            idempotency_key: opt("idempotency_key"),
            metadata: match opt("metadata") {
                Some(s) => json("metadata", &s)?,
                None => Value::Object(Map::new()),
            },
            run_at: opt_time(map, "run_at")?,
            deployment_id: opt("deployment_id"),
            inspector_url: opt("inspector_url"),
            waiting_for: waiting_for(map),
            steps: steps(map),
        })
    }
}

/// A record's hash fields with the id of its key as `task_id` when the hash holds none (records
/// are written without it; older ones, and hand-written ones, may hold one, which is kept so a
/// reader can check it against the key).
pub fn with_key_id(map: &mut HashMap<String, String>, id: &str) {
    if !map.contains_key("task_id") {
        map.insert("task_id".into(), id.to_string());
    }
}

/// `{}`: the default of `metadata` (and of `payload`), not written.
fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty)
}

// Decoding helpers of `TaskRecord::from_fields`; each error names the field.

/// `waiting_for` and `waiting_holder`, set while the task waits for a busy project (the queue
/// deletes both when it is handed the project or leaves the waiting set).
fn waiting_for(map: &HashMap<String, String>) -> Option<WaitingFor> {
    let project = map.get("waiting_for").filter(|s| !s.is_empty())?;
    Some(WaitingFor {
        project: project.clone(),
        holder: map.get("waiting_holder").cloned().unwrap_or_default(),
    })
}

/// The `steps` JSON list; lenient (a history that does not decode is shown empty, never hides
/// the record: it is a display aid, not a field a consumer acts on).
fn steps(map: &HashMap<String, String>) -> Vec<StepEntry> {
    map.get("steps")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// A required hash field.
fn req<'a>(map: &'a HashMap<String, String>, field: &'static str) -> Result<&'a str, DecodeError> {
    map.get(field).map(String::as_str).ok_or(DecodeError {
        field,
        message: "missing".into(),
    })
}

/// A field that is present but does not decode.
fn bad(field: &'static str, e: impl fmt::Display) -> DecodeError {
    DecodeError {
        field,
        message: e.to_string(),
    }
}

/// An RFC 3339 field.
fn time(field: &'static str, s: &str) -> Result<DateTime<Utc>, DecodeError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| bad(field, e))
}

/// An optional RFC 3339 field (empty is absent).
fn opt_time(
    map: &HashMap<String, String>,
    field: &'static str,
) -> Result<Option<DateTime<Utc>>, DecodeError> {
    match map.get(field).filter(|s| !s.is_empty()) {
        Some(s) => time(field, s).map(Some),
        None => Ok(None),
    }
}

/// A JSON field.
fn json(field: &'static str, s: &str) -> Result<Value, DecodeError> {
    serde_json::from_str(s).map_err(|e| bad(field, format!("invalid JSON: {e}")))
}

#[cfg(test)]
mod tests;
