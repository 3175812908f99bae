//! The task: what a submitter asks for, what the queue stores, and how a payload is parsed.
//!
//! A task record lives in one Redis hash (see `queue`). This module owns the conversion between that
//! hash (a flat map of strings) and [`TaskRecord`], and the per-type payload rules ([`Payload`])
//! that are checked twice: when a task is submitted (so the submitter gets a 400 / CLI error naming
//! the field) and again when it runs (so a record pushed into Redis by hand is dead-lettered with a
//! reason, never retried forever and never a crash). The record keeps the payload as submitted;
//! handlers get the typed [`Payload`] parsed from it.

mod payload;

pub use payload::{
    Build, Cancel, Check, DEPLOYMENT_FIELDS, Deploy, GitHubRepo, NOOP_MAX_SLEEP_MS, Noop,
    PROJECT_FIELDS, Payload, ProductionChange, Redeploy,
};

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Priority classes, strictly ordered: every P0 task is claimed before any P1 task, and so on.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Priority {
    P0,
    P1,
    #[default]
    P2,
    P3,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::P0, Priority::P1, Priority::P2, Priority::P3];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "P0" => Ok(Priority::P0),
            "P1" => Ok(Priority::P1),
            "P2" => Ok(Priority::P2),
            "P3" => Ok(Priority::P3),
            _ => Err(format!(
                "`{s}` is not a priority (expected P0, P1, P2 or P3)"
            )),
        }
    }
}

/// What a task does. `deployment` is accepted as an alias of `deploy` because the deployment guide's
/// own curl example submits it that way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    #[serde(alias = "deployment")]
    Deploy,
    Redeploy,
    Promote,
    Rollback,
    Cancel,
    Check,
    Noop,
    /// A stored record whose type this build does not know (hand-written, or a stub for an id
    /// with no record). Never accepted at submission; dead-lettered when claimed.
    Unknown,
}

impl TaskType {
    pub const ALL: [TaskType; 7] = [
        TaskType::Deploy,
        TaskType::Redeploy,
        TaskType::Promote,
        TaskType::Rollback,
        TaskType::Cancel,
        TaskType::Check,
        TaskType::Noop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Deploy => "deploy",
            TaskType::Redeploy => "redeploy",
            TaskType::Promote => "promote",
            TaskType::Rollback => "rollback",
            TaskType::Cancel => "cancel",
            TaskType::Check => "check",
            TaskType::Noop => "noop",
            TaskType::Unknown => "unknown",
        }
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        if t == "deployment" {
            return Ok(TaskType::Deploy);
        }
        TaskType::ALL
            .into_iter()
            .find(|ty| ty.as_str() == t)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a task type (expected one of deploy, deployment, redeploy, promote, \
                     rollback, cancel, check, noop)"
                )
            })
    }
}

/// Where a task is in its life. See `docs/architecture.md` for the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    InProgress,
    Retrying,
    Completed,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Pending,
        TaskStatus::InProgress,
        TaskStatus::Retrying,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Retrying => "retrying",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a task status"))
    }
}

/// A field that failed validation, named the way the submitter wrote it (`payload.project`, `priority`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Dotted path of the offending field, so HTTP 400 bodies and CLI errors can name it.
    pub field: String,
    /// What is wrong with it, in words an operator understands.
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a submitter hands in (HTTP body, CLI flags). Everything but `type` has a default.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewTask {
    /// The task type as written; parsed by [`NewTask::validate`] so errors can name it.
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    /// `P0`..`P3`; `P2` when absent.
    pub priority: Option<String>,
    /// Type-specific arguments; must be a JSON object.
    pub payload: Option<Value>,
    /// Who submitted it (service name, `cli`, `api`); free text for operators.
    pub source: Option<String>,
    /// Overrides `TASK_MAX_RETRIES` for this task.
    pub max_retries: Option<u32>,
    /// Same key within 24 h returns the task that key created first.
    pub idempotency_key: Option<String>,
    /// Do not run before this instant (RFC 3339).
    pub run_at: Option<String>,
    /// Correlation id propagated to logs and events; generated when absent.
    pub trace_id: Option<String>,
    /// Free-form JSON object kept on the record (e.g. PR number, requester).
    pub metadata: Option<Value>,
}

/// The longest idempotency key / source / trace id we store; longer values are a client bug.
const MAX_TEXT_FIELD: usize = 256;
/// Hard cap on how many retries a submitter may ask for, so a bad value can't pin a task forever.
pub const MAX_RETRIES_CAP: u32 = 100;

impl NewTask {
    /// Check every field and build the record to store. `default_max_retries` is `TASK_MAX_RETRIES`.
    pub fn validate(
        self,
        default_max_retries: u32,
        now: DateTime<Utc>,
    ) -> Result<TaskRecord, ValidationError> {
        let task_type: TaskType = match self.task_type.as_deref() {
            None | Some("") => return Err(ValidationError::new("type", "is required")),
            Some(t) => t.parse().map_err(|e| ValidationError::new("type", e))?,
        };
        let priority = match self.priority.as_deref() {
            None | Some("") => Priority::default(),
            Some(p) => p.parse().map_err(|e| ValidationError::new("priority", e))?,
        };
        let payload = json_object("payload", self.payload)?;
        Payload::parse(task_type, &payload)?;
        let metadata = json_object("metadata", self.metadata)?;
        let max_retries = self.max_retries.unwrap_or(default_max_retries);
        if max_retries > MAX_RETRIES_CAP {
            return Err(ValidationError::new(
                "max_retries",
                format!("must be at most {MAX_RETRIES_CAP}"),
            ));
        }
        let run_at = parse_run_at(self.run_at.as_deref())?;
        let idempotency_key = text_field("idempotency_key", self.idempotency_key)?;
        let source = text_field("source", self.source)?.unwrap_or_else(|| "unknown".to_string());
        let trace_id = text_field("trace_id", self.trace_id)?
            .unwrap_or_else(|| Uuid::new_v4().simple().to_string());
        Ok(TaskRecord {
            task_id: Uuid::new_v4(),
            task_type,
            priority,
            payload,
            source,
            status: TaskStatus::Pending,
            attempts: 0,
            max_retries,
            // Stored with millisecond precision; answer with the same value everywhere.
            created_at: now.trunc_subsecs(3),
            started_at: None,
            completed_at: None,
            error: None,
            result: None,
            trace_id,
            idempotency_key,
            metadata,
            run_at,
            deployment_id: None,
        })
    }
}

/// An optional JSON object field: absent or null is `{}`, anything but an object is refused.
fn json_object(name: &str, v: Option<Value>) -> Result<Value, ValidationError> {
    match v {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(ValidationError::new(name, "must be a JSON object")),
    }
}

/// `run_at`: absent or empty is "now", else an RFC 3339 instant.
fn parse_run_at(s: Option<&str>) -> Result<Option<DateTime<Utc>>, ValidationError> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| ValidationError::new("run_at", format!("not RFC 3339: {e}"))),
    }
}

/// A free-text field: empty is absent, longer than [`MAX_TEXT_FIELD`] bytes is refused.
fn text_field(name: &str, v: Option<String>) -> Result<Option<String>, ValidationError> {
    match v {
        Some(s) if s.len() > MAX_TEXT_FIELD => Err(ValidationError::new(
            name,
            format!("must be at most {MAX_TEXT_FIELD} bytes"),
        )),
        Some(s) if s.is_empty() => Ok(None),
        other => Ok(other),
    }
}

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
}

/// A record in Redis that could not be decoded (hand-written, truncated, or from a newer version).
#[derive(Debug, Clone, thiserror::Error)]
#[error("malformed task record: field `{field}`: {message}")]
pub struct DecodeError {
    pub field: &'static str,
    pub message: String,
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl TaskRecord {
    /// The hash fields written on enqueue. Absent optionals are simply not written.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("task_id", self.task_id.to_string()),
            ("type", self.task_type.as_str().to_string()),
            ("priority", self.priority.as_str().to_string()),
            ("payload", self.payload.to_string()),
            ("source", self.source.clone()),
            ("status", self.status.as_str().to_string()),
            ("attempts", self.attempts.to_string()),
            ("max_retries", self.max_retries.to_string()),
            ("created_at", rfc3339(&self.created_at)),
            ("trace_id", self.trace_id.clone()),
            ("metadata", self.metadata.to_string()),
        ];
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
        }
    }

    /// Decode a record from its Redis hash. Every problem names the field.
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
            payload: json("payload", req(map, "payload")?)?,
            source: opt("source").unwrap_or_else(|| "unknown".into()),
            status: req(map, "status")?.parse().map_err(|e| bad("status", e))?,
            attempts: req(map, "attempts")?
                .parse()
                .map_err(|e| bad("attempts", e))?,
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
        })
    }
}

// Decoding helpers of `TaskRecord::from_fields`; each error names the field.

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
mod tests {
    use super::*;
    use serde_json::json;

    fn new(ty: &str, payload: Value) -> NewTask {
        NewTask {
            task_type: Some(ty.into()),
            payload: Some(payload),
            ..Default::default()
        }
    }

    #[test]
    fn guide_deployment_example_is_a_deploy_of_project_test() {
        let rec = new("deployment", json!({"service": "test"}))
            .validate(3, Utc::now())
            .unwrap();
        assert_eq!(rec.task_type, TaskType::Deploy);
        assert_eq!(rec.priority, Priority::P2);
        assert_eq!(rec.max_retries, 3);
    }

    #[test]
    fn errors_name_the_field() {
        let e = new("deploy", json!({}))
            .validate(3, Utc::now())
            .unwrap_err();
        assert_eq!(e.field, "payload.project");
        let e = new("noop", json!({"sleep_ms": -1}))
            .validate(3, Utc::now())
            .unwrap_err();
        assert_eq!(e.field, "payload.sleep_ms");
        let e = NewTask {
            task_type: Some("noop".into()),
            priority: Some("P9".into()),
            ..Default::default()
        }
        .validate(3, Utc::now())
        .unwrap_err();
        assert_eq!(e.field, "priority");
        let e = NewTask::default().validate(3, Utc::now()).unwrap_err();
        assert_eq!(e.field, "type");
        let e = new("promote", json!({"project": "p"}))
            .validate(3, Utc::now())
            .unwrap_err();
        assert_eq!(e.field, "payload.deployment_id");
        let e = new("noop", json!([1])).validate(3, Utc::now()).unwrap_err();
        assert_eq!(e.field, "payload");
    }

    #[test]
    fn record_round_trips_through_hash_fields() {
        let rec = NewTask {
            task_type: Some("check".into()),
            payload: Some(json!({"deployment_id": "dpl_1"})),
            idempotency_key: Some("k".into()),
            run_at: Some("2030-01-01T00:00:00Z".into()),
            ..Default::default()
        }
        .validate(2, Utc::now())
        .unwrap();
        let map: HashMap<String, String> = rec
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let back = TaskRecord::from_fields(&map).unwrap();
        // created_at is stored with millisecond precision.
        assert_eq!(back.task_id, rec.task_id);
        assert_eq!(back.payload, rec.payload);
        assert_eq!(back.run_at, rec.run_at);
        assert_eq!(back.idempotency_key.as_deref(), Some("k"));
    }

    #[test]
    fn decode_names_the_broken_field() {
        let mut map: HashMap<String, String> = HashMap::new();
        map.insert("task_id".into(), Uuid::new_v4().to_string());
        map.insert("type".into(), "noop".into());
        map.insert("priority".into(), "P1".into());
        map.insert("payload".into(), "{not json".into());
        let e = TaskRecord::from_fields(&map).unwrap_err();
        assert_eq!(e.field, "payload");
        // For display, the same record is shown as stored.
        let shown = TaskRecord::from_fields_lossy(&map);
        assert_eq!(shown.payload, Value::String("{not json".into()));
        assert_eq!(shown.priority, Priority::P1);
        map.insert("type".into(), "launch_missiles".into());
        map.insert("task_id".into(), "garbage-id".into());
        let shown = TaskRecord::from_fields_lossy(&map);
        assert_eq!(shown.task_type, TaskType::Unknown);
        assert!(shown.error.unwrap().contains("garbage-id"));
        assert!(
            "unknown".parse::<TaskType>().is_err(),
            "never accepted at submission"
        );
    }
}
