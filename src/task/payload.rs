//! Payload rules per task type, checked at submission (400 / CLI error naming the field) and
//! again when a consumer runs the task (a record written by hand is dead-lettered with the reason).

use serde_json::Value;

use super::{TaskType, ValidationError};

fn str_field<'a>(payload: &'a Value, names: &[&str]) -> Result<Option<&'a str>, ValidationError> {
    for name in names {
        match payload.get(*name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if !s.trim().is_empty() => return Ok(Some(s.as_str())),
            Some(_) => {
                return Err(ValidationError::new(
                    format!("payload.{name}"),
                    "must be a non-empty string",
                ));
            }
        }
    }
    Ok(None)
}

fn required_str<'a>(payload: &'a Value, names: &[&str]) -> Result<&'a str, ValidationError> {
    str_field(payload, names)?.ok_or_else(|| {
        ValidationError::new(
            format!("payload.{}", names[0]),
            if names.len() > 1 {
                format!("is required (or one of: {})", names[1..].join(", "))
            } else {
                "is required".to_string()
            },
        )
    })
}

fn optional_bool(payload: &Value, name: &str) -> Result<bool, ValidationError> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ValidationError::new(
            format!("payload.{name}"),
            "must be true or false",
        )),
    }
}

/// The project a payload names: `project`, `projectId`, `name`, or the guide's `service`.
pub const PROJECT_FIELDS: [&str; 4] = ["project", "projectId", "name", "service"];
/// The deployment a payload names.
pub const DEPLOYMENT_FIELDS: [&str; 2] = ["deployment_id", "deploymentId"];

/// Longest `noop` sleep: the top histogram bucket (10 minutes).
pub const NOOP_MAX_SLEEP_MS: u64 = 600_000;

/// Validate a payload for its type. Used at submission and again at execution.
pub fn validate_payload(task_type: TaskType, payload: &Value) -> Result<(), ValidationError> {
    if !payload.is_object() {
        return Err(ValidationError::new("payload", "must be a JSON object"));
    }
    match task_type {
        TaskType::Unknown => {
            return Err(ValidationError::new("type", "unknown task type"));
        }
        TaskType::Noop => {
            match payload.get("sleep_ms") {
                None | Some(Value::Null) => {}
                Some(v) => match v.as_u64() {
                    Some(ms) if ms <= NOOP_MAX_SLEEP_MS => {}
                    _ => {
                        return Err(ValidationError::new(
                            "payload.sleep_ms",
                            format!("must be an integer from 0 to {NOOP_MAX_SLEEP_MS}"),
                        ));
                    }
                },
            }
            optional_bool(payload, "fail")?;
            optional_bool(payload, "panic")?;
        }
        TaskType::Deploy => {
            required_str(payload, &PROJECT_FIELDS)?;
            if let Some(t) = str_field(payload, &["target"])?
                && t != "production"
                && t != "preview"
            {
                return Err(ValidationError::new(
                    "payload.target",
                    "must be `production` or `preview`",
                ));
            }
            match payload.get("gitSource") {
                None | Some(Value::Null) | Some(Value::Object(_)) => {}
                Some(_) => {
                    return Err(ValidationError::new(
                        "payload.gitSource",
                        "must be a JSON object",
                    ));
                }
            }
            str_field(payload, &DEPLOYMENT_FIELDS)?;
        }
        TaskType::Redeploy | TaskType::Cancel => {
            required_str(payload, &DEPLOYMENT_FIELDS)?;
        }
        TaskType::Promote | TaskType::Rollback => {
            required_str(payload, &PROJECT_FIELDS)?;
            required_str(payload, &DEPLOYMENT_FIELDS)?;
        }
        TaskType::Check => {
            if str_field(payload, &DEPLOYMENT_FIELDS)?.is_none()
                && str_field(payload, &PROJECT_FIELDS)?.is_none()
            {
                return Err(ValidationError::new(
                    "payload.deployment_id",
                    "is required (or payload.project, to check its latest deployment)",
                ));
            }
        }
    }
    Ok(())
}
