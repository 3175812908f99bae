//! What a script did to each task it was given, as the script reported it.
//!
//! Every script that changes tasks answers one `{ id, outcome, detail, type }` entry per task, so
//! the rules (retry or dead-letter, honour a cancel, ignore a stale report) live only in Lua and
//! callers record what was actually applied.

use redis::Value;

use super::QueueError;
use crate::task::TaskType;
use crate::telemetry::events::AttemptOutcome;

/// The state change a script applied to one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Done; the result is stored.
    Completed,
    /// Failed; another attempt is scheduled at `at_ms` (epoch ms, Redis clock).
    Retrying { at_ms: i64 },
    /// Failed for good; moved to the dead-letter set with `reason`.
    DeadLettered { reason: String },
    /// An operator's cancel took effect.
    Cancelled { reason: String },
    /// Back at the head of its priority list (handed back, or reclaimed).
    Requeued,
    /// Nothing changed: the caller no longer held the task, or it had already finished. `status`
    /// is what the record said (or `missing`).
    Stale { status: String },
}

impl Applied {
    fn parse(kind: &str, detail: String) -> Result<Self, QueueError> {
        Ok(match kind {
            "completed" => Applied::Completed,
            "retrying" => Applied::Retrying {
                at_ms: detail.parse().map_err(|_| {
                    QueueError::Protocol(format!("retry time `{detail}` is not a number"))
                })?,
            },
            "dead_lettered" => Applied::DeadLettered { reason: detail },
            "cancelled" => Applied::Cancelled { reason: detail },
            "requeued" => Applied::Requeued,
            "stale" => Applied::Stale { status: detail },
            other => {
                return Err(QueueError::Protocol(format!(
                    "unknown task outcome `{other}`"
                )));
            }
        })
    }

    /// The `outcome` label this change counts as.
    pub fn metric(&self) -> AttemptOutcome {
        match self {
            Applied::Completed => AttemptOutcome::Completed,
            Applied::Retrying { .. } => AttemptOutcome::Retried,
            Applied::DeadLettered { .. } => AttemptOutcome::Failed,
            Applied::Cancelled { .. } => AttemptOutcome::Cancelled,
            Applied::Requeued | Applied::Stale { .. } => AttemptOutcome::Released,
        }
    }

    /// The reason, retry time or stale status, for log lines.
    pub fn detail(&self) -> String {
        match self {
            Applied::Completed | Applied::Requeued => String::new(),
            Applied::Retrying { at_ms } => at_ms.to_string(),
            Applied::DeadLettered { reason } | Applied::Cancelled { reason } => reason.clone(),
            Applied::Stale { status } => status.clone(),
        }
    }
}

/// One task's entry in a script's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutcome {
    pub id: String,
    /// The stored type; `None` when the record is gone or its type is one this build doesn't know.
    pub task_type: Option<TaskType>,
    pub applied: Applied,
}

impl TaskOutcome {
    /// The `type` label: the stored type, or `unknown`.
    pub fn type_label(&self) -> &'static str {
        self.task_type.map(TaskType::as_str).unwrap_or("unknown")
    }
}

fn text(v: &Value) -> Result<String, QueueError> {
    match v {
        Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(n) => Ok(n.to_string()),
        other => Err(QueueError::Protocol(format!(
            "expected text in a task outcome, got {other:?}"
        ))),
    }
}

/// Parse a script's list of `{ id, outcome, detail, type }` entries.
pub fn parse_outcomes(reply: &Value) -> Result<Vec<TaskOutcome>, QueueError> {
    let Value::Array(entries) = reply else {
        return Err(QueueError::Protocol(format!(
            "expected a list of task outcomes, got {reply:?}"
        )));
    };
    entries.iter().map(parse_entry).collect()
}

fn parse_entry(entry: &Value) -> Result<TaskOutcome, QueueError> {
    let Value::Array(fields) = entry else {
        return Err(QueueError::Protocol(format!(
            "expected a task outcome entry, got {entry:?}"
        )));
    };
    let [id, kind, detail, ty] = fields.as_slice() else {
        return Err(QueueError::Protocol(format!(
            "a task outcome has {} fields, expected 4",
            fields.len()
        )));
    };
    Ok(TaskOutcome {
        id: text(id)?,
        applied: Applied::parse(&text(kind)?, text(detail)?)?,
        task_type: text(ty)?.parse().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(parts: [&str; 4]) -> Value {
        Value::Array(
            parts
                .iter()
                .map(|p| Value::BulkString(p.as_bytes().to_vec()))
                .collect(),
        )
    }

    #[test]
    fn every_outcome_parses_with_its_detail() {
        let reply = Value::Array(vec![
            entry(["a", "completed", "", "noop"]),
            entry(["b", "retrying", "1700000000123", "deploy"]),
            entry(["c", "dead_lettered", "boom", "check"]),
            entry(["d", "cancelled", "asked", "noop"]),
            entry(["e", "requeued", "", "noop"]),
            entry(["f", "stale", "completed", "launch_missiles"]),
        ]);
        let out = parse_outcomes(&reply).unwrap();
        let applied: Vec<_> = out.iter().map(|o| o.applied.clone()).collect();
        assert_eq!(
            applied,
            [
                Applied::Completed,
                Applied::Retrying {
                    at_ms: 1_700_000_000_123
                },
                Applied::DeadLettered {
                    reason: "boom".into()
                },
                Applied::Cancelled {
                    reason: "asked".into()
                },
                Applied::Requeued,
                Applied::Stale {
                    status: "completed".into()
                },
            ]
        );
        assert_eq!(out[1].task_type, Some(TaskType::Deploy));
        assert_eq!(out[5].type_label(), "unknown");
        assert_eq!(out[2].applied.metric(), AttemptOutcome::Failed);
        assert_eq!(out[5].applied.metric(), AttemptOutcome::Released);
    }

    #[test]
    fn malformed_replies_are_protocol_errors_not_panics() {
        for bad in [
            Value::Int(3),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![entry(["a", "exploded", "", "noop"])]),
            Value::Array(vec![entry(["a", "retrying", "soon", "noop"])]),
        ] {
            assert!(matches!(parse_outcomes(&bad), Err(QueueError::Protocol(_))));
        }
    }
}
