//! Limits a submission must respect beyond its type's payload rules, set by the configuration:
//! the size of `payload` and `metadata`, how far ahead `run_at` may be, and whether `noop`'s
//! diagnostic knobs are accepted. Checked at submission (400 / CLI error naming the field).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Payload, TaskRecord, ValidationError};

/// The configurable submission limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitRules {
    /// `noop`'s diagnostic knobs (`sleep_ms`, `fail`, `panic`, `exit_consumer`) are accepted and
    /// honoured (`WORKER_DIAGNOSTICS`); off in production, so no caller can make tasks panic.
    pub diagnostics: bool,
    /// Largest `payload`, in bytes of JSON (`TASK_MAX_PAYLOAD_BYTES`).
    pub max_payload_bytes: usize,
    /// Largest `metadata`, in bytes of JSON (`TASK_MAX_METADATA_BYTES`).
    pub max_metadata_bytes: usize,
    /// How far ahead `run_at` may be (`TASK_MAX_DELAY`), so no record lives forever.
    pub max_delay: Duration,
}

impl Default for SubmitRules {
    fn default() -> Self {
        SubmitRules {
            diagnostics: false,
            max_payload_bytes: 32 * 1024,
            max_metadata_bytes: 4 * 1024,
            max_delay: Duration::from_secs(30 * 86_400),
        }
    }
}

impl SubmitRules {
    /// Check a validated record against the limits.
    pub fn check(&self, record: &TaskRecord, now: DateTime<Utc>) -> Result<(), ValidationError> {
        let size = |v: &serde_json::Value| v.to_string().len();
        if size(&record.payload) > self.max_payload_bytes {
            return Err(too_large("payload", self.max_payload_bytes));
        }
        if size(&record.metadata) > self.max_metadata_bytes {
            return Err(too_large("metadata", self.max_metadata_bytes));
        }
        if let Some(at) = record.run_at {
            let latest = chrono::Duration::from_std(self.max_delay)
                .ok()
                .and_then(|d| now.checked_add_signed(d));
            if latest.is_some_and(|latest| at > latest) {
                return Err(ValidationError::new(
                    "run_at",
                    format!(
                        "is more than {} s ahead (TASK_MAX_DELAY)",
                        self.max_delay.as_secs()
                    ),
                ));
            }
        }
        self.check_diagnostics(record)
    }

    /// `noop`'s diagnostic knobs need `WORKER_DIAGNOSTICS=true`.
    pub fn check_diagnostics(&self, record: &TaskRecord) -> Result<(), ValidationError> {
        if self.diagnostics {
            return Ok(());
        }
        match Payload::parse(record.task_type, &record.payload) {
            Ok(Payload::Noop(noop)) => match noop.diagnostic_field() {
                Some(field) => Err(ValidationError::new(
                    field,
                    "is a diagnostic knob; the workers must run with WORKER_DIAGNOSTICS=true",
                )),
                None => Ok(()),
            },
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn too_large(field: &str, max: usize) -> ValidationError {
    ValidationError::new(field, format!("is larger than {max} bytes of JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::NewTask;
    use serde_json::{Value, json};

    fn record(ty: &str, payload: Value) -> TaskRecord {
        NewTask {
            task_type: Some(ty.into()),
            payload: Some(payload),
            ..Default::default()
        }
        .validate(3, Utc::now())
        .unwrap()
    }

    #[test]
    fn diagnostic_knobs_need_the_switch() {
        let strict = SubmitRules::default();
        for (knob, v) in [
            ("sleep_ms", json!(5)),
            ("fail", json!(true)),
            ("panic", json!(true)),
        ] {
            let r = record("noop", json!({ knob: v }));
            let e = strict.check(&r, Utc::now()).unwrap_err();
            assert_eq!(e.field, format!("payload.{knob}"));
            let open = SubmitRules {
                diagnostics: true,
                ..strict
            };
            assert!(open.check(&r, Utc::now()).is_ok());
        }
        assert!(strict.check(&record("noop", json!({})), Utc::now()).is_ok());
        assert!(
            strict
                .check(&record("noop", json!({"panic": false})), Utc::now())
                .is_ok()
        );
    }

    #[test]
    fn sizes_and_delay_are_bounded_naming_the_field() {
        let rules = SubmitRules {
            max_payload_bytes: 64,
            max_metadata_bytes: 16,
            max_delay: Duration::from_secs(3600),
            diagnostics: true,
        };
        let mut r = record("deploy", json!({"project": "x".repeat(80)}));
        assert_eq!(rules.check(&r, Utc::now()).unwrap_err().field, "payload");
        r.payload = json!({"project": "web"});
        r.metadata = json!({"note": "y".repeat(20)});
        assert_eq!(rules.check(&r, Utc::now()).unwrap_err().field, "metadata");
        r.metadata = json!({});
        r.run_at = Some(Utc::now() + chrono::Duration::hours(2));
        assert_eq!(rules.check(&r, Utc::now()).unwrap_err().field, "run_at");
        r.run_at = Some(Utc::now() + chrono::Duration::minutes(30));
        assert!(rules.check(&r, Utc::now()).is_ok());
    }
}
