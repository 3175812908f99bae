//! Recurring tasks: a [`Schedule`] is a cron expression (an optional seconds field first), a
//! time zone and the task to submit at each tick. [`ScheduleSpec`] is what an operator hands in
//! (CLI flags, API body); [`ScheduleSpec::validate`] checks every field, naming the bad one.
//!
//! The task made for a tick carries `source = "schedule:<name>"`, `metadata.schedule` and
//! `metadata.tick`, and the idempotency key `schedule:<name>:<tick in ms>`: however many instances
//! try to fire the same tick, the queue keeps one task.

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{NewTask, Priority, SubmitRules, TaskRecord, TaskType, ValidationError};

/// Longest schedule name.
const NAME_MAX: usize = 64;

/// A validated schedule, as stored in Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    /// Unique per queue: letters, digits, `-`, `_`, `.`; the key operators use to remove it.
    pub name: String,
    /// The cron expression as given (5 fields, or 6 with seconds first).
    pub cron: String,
    /// IANA time zone the expression is read in (`UTC` unless given).
    pub tz: String,
    /// The task type to submit.
    #[serde(rename = "type")]
    pub task_type: TaskType,
    /// Its payload (validated for the type when the schedule was added).
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Its priority.
    pub priority: Priority,
    /// Its retries after the first attempt (`TASK_MAX_RETRIES` when the schedule was added).
    pub max_retries: u32,
    /// When the schedule was added.
    pub created_at: DateTime<Utc>,
}

/// What an operator hands in to add a schedule.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ScheduleSpec {
    pub name: Option<String>,
    pub cron: Option<String>,
    /// IANA time zone (`Europe/Paris`); `UTC` when absent.
    pub tz: Option<String>,
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    #[schema(value_type = Object)]
    pub payload: Option<Value>,
    /// `P0`..`P3`; `P2` when absent.
    pub priority: Option<String>,
    /// Overrides `TASK_MAX_RETRIES` for the tasks it makes.
    pub max_retries: Option<u32>,
}

impl ScheduleSpec {
    /// Check every field (the task template as a submission would be) and build the schedule.
    pub fn validate(
        self,
        default_max_retries: u32,
        rules: &SubmitRules,
        now: DateTime<Utc>,
    ) -> Result<Schedule, ValidationError> {
        let name = valid_name(self.name)?;
        let cron = self
            .cron
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| ValidationError::new("cron", "is required"))?;
        parse_cron(&cron)?;
        let tz = self
            .tz
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "UTC".into());
        parse_tz(&tz)?;
        let template = NewTask {
            task_type: self.task_type,
            priority: self.priority,
            payload: self.payload,
            max_retries: self.max_retries,
            ..NewTask::default()
        };
        let record = template.validate(default_max_retries, now)?;
        rules.check(&record, now)?;
        rules.check_diagnostics(&record)?;
        let schedule = Schedule {
            name,
            cron,
            tz,
            task_type: record.task_type,
            payload: record.payload,
            priority: record.priority,
            max_retries: record.max_retries,
            created_at: now.trunc_subsecs(3),
        };
        if schedule.next_after(now).is_none() {
            return Err(ValidationError::new("cron", "never fires"));
        }
        Ok(schedule)
    }
}

impl Schedule {
    /// The first tick strictly after `t`; `None` when the expression no longer parses (a stored
    /// schedule from another version) or never fires again.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = parse_cron(&self.cron).ok()?;
        let tz = parse_tz(&self.tz).ok()?;
        cron.find_next_occurrence(&t.with_timezone(&tz), false)
            .ok()
            .map(|next| next.with_timezone(&Utc))
    }

    /// The task this schedule submits for `tick`.
    pub fn task_for(
        &self,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TaskRecord, ValidationError> {
        let tick_ms = tick.timestamp_millis();
        NewTask {
            task_type: Some(self.task_type.as_str().to_string()),
            priority: Some(self.priority.as_str().to_string()),
            payload: Some(self.payload.clone()),
            source: Some(format!("schedule:{}", self.name)),
            max_retries: Some(self.max_retries),
            idempotency_key: Some(format!("schedule:{}:{tick_ms}", self.name)),
            metadata: Some(json!({
                "schedule": self.name,
                "tick": tick.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            })),
            ..NewTask::default()
        }
        .validate(self.max_retries, now)
    }
}

fn valid_name(name: Option<String>) -> Result<String, ValidationError> {
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ValidationError::new("name", "is required"))?;
    let ok = name.len() <= NAME_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(ValidationError::new(
            "name",
            format!("must be up to {NAME_MAX} of A-Z a-z 0-9 - _ ."),
        ));
    }
    Ok(name)
}

/// Five fields (minute hour day month weekday), or six with seconds first.
fn parse_cron(expr: &str) -> Result<Cron, ValidationError> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| {
            ValidationError::new(
                "cron",
                format!(
                    "`{expr}` is not a cron expression ({e}); use 5 fields, or 6 with seconds first"
                ),
            )
        })
}

fn parse_tz(tz: &str) -> Result<Tz, ValidationError> {
    tz.parse::<Tz>().map_err(|_| {
        ValidationError::new(
            "tz",
            format!("`{tz}` is not an IANA time zone (e.g. UTC, Europe/Paris)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rules() -> SubmitRules {
        SubmitRules {
            diagnostics: false,
            max_payload_bytes: 1024,
            max_metadata_bytes: 1024,
            max_delay: std::time::Duration::from_secs(86_400),
        }
    }

    fn spec(cron: &str, tz: Option<&str>) -> ScheduleSpec {
        ScheduleSpec {
            name: Some("nightly".into()),
            cron: Some(cron.into()),
            tz: tz.map(str::to_string),
            task_type: Some("check".into()),
            payload: Some(json!({"project": "web"})),
            ..ScheduleSpec::default()
        }
    }

    #[test]
    fn ticks_follow_the_time_zone_across_daylight_saving() {
        let now = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
        let s = spec("0 9 * * *", Some("Europe/Paris"))
            .validate(3, &rules(), now)
            .unwrap();
        let first = s.next_after(now).unwrap();
        // 09:00 in Paris is 08:00 UTC before the change (CET) and 07:00 UTC after (CEST).
        assert_eq!(first, Utc.with_ymd_and_hms(2026, 3, 29, 7, 0, 0).unwrap());
        let before = Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap();
        assert_eq!(
            s.next_after(before).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 28, 8, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_seconds_field_is_optional_and_ticks_are_strictly_later() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let s = spec("*/5 * * * * *", None)
            .validate(3, &rules(), now)
            .unwrap();
        assert_eq!(s.tz, "UTC");
        let next = s.next_after(now).unwrap();
        assert_eq!(next, now + chrono::Duration::seconds(5));
        let task = s.task_for(next, now).unwrap();
        assert_eq!(task.source, "schedule:nightly");
        assert_eq!(
            task.idempotency_key.as_deref(),
            Some(format!("schedule:nightly:{}", next.timestamp_millis()).as_str())
        );
        assert_eq!(task.metadata["schedule"], "nightly");
        assert_eq!(task.metadata["tick"], "2026-01-01T00:00:05.000Z");
    }

    #[test]
    fn every_bad_field_is_named() {
        let now = Utc::now();
        let field = |s: ScheduleSpec| s.validate(3, &rules(), now).unwrap_err().field;
        assert_eq!(field(spec("not cron", None)), "cron");
        assert_eq!(field(spec("0 9 * * *", Some("Mars/Olympus"))), "tz");
        assert_eq!(
            field(ScheduleSpec {
                name: Some("a b".into()),
                ..spec("* * * * *", None)
            }),
            "name"
        );
        assert_eq!(
            field(ScheduleSpec {
                name: None,
                ..spec("* * * * *", None)
            }),
            "name"
        );
        let no_project = ScheduleSpec {
            payload: Some(json!({})),
            ..spec("* * * * *", None)
        };
        assert_eq!(field(no_project), "payload.deployment_id");
        let diag = ScheduleSpec {
            task_type: Some("noop".into()),
            payload: Some(json!({"fail": true})),
            ..spec("* * * * *", None)
        };
        assert_eq!(field(diag), "payload.fail");
        assert_eq!(field(spec("0 0 30 2 *", None)), "cron");
    }
}
