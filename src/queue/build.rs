//! Live build progress of deploy tasks: the Vercel states a deployment went through (with when
//! each was first seen) and its build log lines, kept beside the task record so the record stays
//! small: `<base>:build:<task id>` (hash: `states` JSON, `log_cursor`) and
//! `<base>:build:<task id>:log` (list of JSON lines, the newest [`BUILD_LOG_MAX`]). Both expire
//! with the failed-record retention. Log text is scrubbed of secrets before it is stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{QueueError, QueueStore};
use crate::telemetry::scrub;

/// Build log lines kept per task (older ones are dropped).
pub const BUILD_LOG_MAX: isize = 500;

/// One state the deployment was seen in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StateSeen {
    /// Vercel's `readyState` (`QUEUED`, `BUILDING`, `READY`, ...).
    pub state: String,
    /// When a poll first saw it.
    pub at: DateTime<Utc>,
}

/// One build log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BuildLine {
    /// When Vercel logged it.
    pub at: DateTime<Utc>,
    /// `stdout`, `stderr`, `command`, ...
    pub stream: String,
    /// The line (secrets scrubbed).
    pub text: String,
}

/// A deploy task's progress so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BuildProgress {
    /// The deployment being followed, when one was created.
    pub deployment_id: Option<String>,
    /// States in the order first seen.
    pub states: Vec<StateSeen>,
    /// The newest log lines, oldest first.
    pub log: Vec<BuildLine>,
}

impl QueueStore {
    fn build_key(&self, task_id: &str) -> String {
        self.key(&format!("build:{task_id}"))
    }

    /// Note that the deployment is in `state` now; `false` when that was already the last state.
    pub async fn record_build_state(
        &self,
        task_id: &str,
        deployment_id: &str,
        state: &str,
    ) -> Result<bool, QueueError> {
        let key = self.build_key(task_id);
        let raw: Option<String> = self
            .query(redis::cmd("HGET").arg(&key).arg("states"))
            .await?;
        let mut states: Vec<StateSeen> = raw
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default();
        if states.last().is_some_and(|s| s.state == state) {
            return Ok(false);
        }
        states.push(StateSeen {
            state: state.to_string(),
            at: Utc::now(),
        });
        let json = serde_json::to_string(&states).unwrap_or_else(|_| "[]".into());
        let mut pipe = redis::pipe();
        pipe.hset(&key, "states", json)
            .ignore()
            .hset(&key, "deployment_id", deployment_id)
            .ignore()
            .expire(&key, self.retention.as_secs() as i64)
            .ignore();
        self.pipeline::<()>(&pipe).await?;
        Ok(true)
    }

    /// Where the log was read up to (Vercel's `created` of the last line kept, epoch ms).
    pub async fn build_log_cursor(&self, task_id: &str) -> Result<Option<i64>, QueueError> {
        let key = self.build_key(task_id);
        self.query(redis::cmd("HGET").arg(&key).arg("log_cursor"))
            .await
    }

    /// Append log lines (scrubbed) and move the cursor to `cursor`.
    pub async fn append_build_log(
        &self,
        task_id: &str,
        lines: &[BuildLine],
        cursor: i64,
    ) -> Result<(), QueueError> {
        let key = self.build_key(task_id);
        let log = format!("{key}:log");
        let ttl = self.retention.as_secs() as i64;
        let mut pipe = redis::pipe();
        for line in lines {
            let mut line = line.clone();
            line.text = scrub::text(&line.text).into_owned();
            let json = serde_json::to_string(&line).unwrap_or_default();
            pipe.rpush(&log, json).ignore();
        }
        pipe.ltrim(&log, -BUILD_LOG_MAX, -1)
            .ignore()
            .expire(&log, ttl)
            .ignore()
            .hset(&key, "log_cursor", cursor)
            .ignore()
            .expire(&key, ttl)
            .ignore();
        self.pipeline::<()>(&pipe).await
    }

    /// A task's build progress (empty when it has none).
    pub async fn build_progress(&self, task_id: &str) -> Result<BuildProgress, QueueError> {
        let key = self.build_key(task_id);
        let fields: Vec<Option<String>> = self
            .query(
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("deployment_id")
                    .arg("states"),
            )
            .await?;
        let lines: Vec<Vec<u8>> = self
            .query(
                redis::cmd("LRANGE")
                    .arg(format!("{key}:log"))
                    .arg(0)
                    .arg(-1),
            )
            .await?;
        let mut fields = fields.into_iter();
        let deployment_id = fields.next().flatten();
        let states = fields
            .next()
            .flatten()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let log = lines
            .iter()
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect();
        Ok(BuildProgress {
            deployment_id,
            states,
            log,
        })
    }
}
