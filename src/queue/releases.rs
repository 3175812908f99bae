//! Known-good releases per project: every production deployment that reached READY (or was
//! promoted to production), newest first, so a `rollback` without a deployment id knows where to
//! go back to. Kept under `<base>:releases:<project>` (ids) and `...:entries` (JSON), capped at
//! [`RELEASES_KEPT`]; written by `known_good.lua` so a retried attempt never records twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{QueueError, QueueStore};

/// How many releases of each project are kept (older ones are dropped).
pub const RELEASES_KEPT: usize = 50;

/// Whether a release may still be rolled back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    /// Reached READY in production (or was promoted there) and was not rolled back since.
    Good,
    /// Production was rolled back away from it: never chosen as a rollback target again.
    RolledBack,
}

impl ReleaseStatus {
    fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Good => "good",
            ReleaseStatus::RolledBack => "rolled_back",
        }
    }
}

/// How a release became known good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseSource {
    /// A `deploy` or `redeploy` task to production that reached READY.
    Deploy,
    /// A `promote` task that moved the deployment to production.
    Promote,
}

/// One known-good release of a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Release {
    /// The Vercel deployment.
    pub deployment_id: String,
    /// Its URL, when Vercel gave one.
    pub url: Option<String>,
    /// The task that deployed or promoted it (the audit trail back to the request).
    pub task_id: String,
    /// Deploy or promote.
    pub source: ReleaseSource,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Still a rollback target, or rolled back away from.
    pub status: ReleaseStatus,
}

impl QueueStore {
    /// Record `release` as the newest known-good release of `project`. `false` when that
    /// deployment was already recorded (safe to repeat).
    pub async fn record_release(
        &self,
        project: &str,
        release: &Release,
    ) -> Result<bool, QueueError> {
        let entry = serde_json::to_string(release)
            .map_err(|e| QueueError::Protocol(format!("cannot encode a release: {e}")))?;
        let mut inv = self.invocation(&self.scripts.known_good);
        inv.arg("record")
            .arg(project)
            .arg(&release.deployment_id)
            .arg(entry)
            .arg(RELEASES_KEPT);
        let n: i64 = self.run(&inv).await?;
        Ok(n == 1)
    }

    /// Mark one release of `project`; `false` when it is not recorded.
    pub async fn mark_release(
        &self,
        project: &str,
        deployment_id: &str,
        status: ReleaseStatus,
    ) -> Result<bool, QueueError> {
        let mut inv = self.invocation(&self.scripts.known_good);
        inv.arg("mark")
            .arg(project)
            .arg(deployment_id)
            .arg(status.as_str());
        let n: i64 = self.run(&inv).await?;
        Ok(n == 1)
    }

    /// The releases of `project`, newest first (entries that do not decode are skipped).
    pub async fn releases(&self, project: &str) -> Result<Vec<Release>, QueueError> {
        let ids_key = self.key(&format!("releases:{project}"));
        let ids: Vec<String> = self
            .query(redis::cmd("LRANGE").arg(&ids_key).arg(0).arg(-1))
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let entries: Vec<Option<Vec<u8>>> = self
            .query(
                redis::cmd("HMGET")
                    .arg(format!("{ids_key}:entries"))
                    .arg(&ids),
            )
            .await?;
        Ok(entries
            .into_iter()
            .flatten()
            .filter_map(|raw| serde_json::from_slice(&raw).ok())
            .collect())
    }

    /// The newest good release of `project` other than `current` (the deployment production
    /// serves now, when known): where a rollback without a deployment id goes.
    pub async fn last_known_good(
        &self,
        project: &str,
        current: Option<&str>,
    ) -> Result<Option<Release>, QueueError> {
        Ok(self
            .releases(project)
            .await?
            .into_iter()
            .find(|r| r.status == ReleaseStatus::Good && Some(r.deployment_id.as_str()) != current))
    }
}
