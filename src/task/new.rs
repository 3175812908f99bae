//! [`NewTask`]: what a submitter hands in, and [`NewTask::validate`], which checks every field
//! and builds the [`TaskRecord`] to store. Every refusal is a [`ValidationError`] naming the field.

use chrono::{DateTime, SubsecRound, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{ParseError, Payload, Priority, TaskRecord, TaskStatus, TaskType};

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
    /// A problem with `field`, described by `message`.
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
            Some(t) => t
                .parse()
                .map_err(|e: ParseError| ValidationError::new("type", e.to_string()))?,
        };
        let priority = match self.priority.as_deref() {
            None | Some("") => Priority::default(),
            Some(p) => p
                .parse()
                .map_err(|e: ParseError| ValidationError::new("priority", e.to_string()))?,
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
            inspector_url: None,
            waiting_for: None,
            steps: Vec::new(),
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

#[cfg(test)]
mod tests;
