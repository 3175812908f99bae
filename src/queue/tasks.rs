//! The submitter's and operator's side of the queue: submit, read, list, cancel, replay.
//! Listings are filtered inside Redis by the `list` script; their types are in `listing.rs`.

use super::listing::{LIST_LIMIT_MAX, ListIndex, ListQuery, TaskPage, parse_page, scan_budget};
use super::{QueueError, QueueStore};
use crate::task::{Priority, TaskRecord, TaskStatus, TaskType};

/// Tasks per enqueue script call, so one huge submission can't stall Redis.
const ENQUEUE_CHUNK: usize = 500;

/// Result of a cancel request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled,
    /// Running; its consumer will stop it at the next lease renewal.
    Cancelling,
    NotFound,
    /// Already terminal in this status (`None`: a status this build doesn't know).
    NotCancellable(Option<TaskStatus>),
}

/// Result of a replay request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    Replayed,
    NotFound,
    /// A dead-lettered id that never had a record (or a type this build can't run): nothing to
    /// run again.
    Stub,
    /// Only failed tasks can be replayed; this is its status (`None`: one this build doesn't know).
    NotFailed(Option<TaskStatus>),
}

/// Result of deleting a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// Only failed tasks can be deleted; this is its status (`None`: one this build doesn't know).
    NotFailed(Option<TaskStatus>),
}

impl QueueStore {
    /// Store new tasks. Returns `(task id, created)` per task: `created` is false when the
    /// idempotency key matched an existing task, whose id is returned instead.
    pub async fn enqueue(&self, tasks: &[TaskRecord]) -> Result<Vec<(String, bool)>, QueueError> {
        let mut out = Vec::with_capacity(tasks.len());
        for chunk in tasks.chunks(ENQUEUE_CHUNK) {
            let mut inv = self.invocation(&self.scripts.enqueue);
            inv.arg(super::IDEMPOTENCY_TTL_SECS);
            for t in chunk {
                let fields = t.to_fields();
                inv.arg(t.task_id.to_string())
                    .arg(t.priority.as_str())
                    .arg(t.run_at.map(|r| r.timestamp_millis()).unwrap_or(0))
                    .arg(t.idempotency_key.as_deref().unwrap_or(""))
                    .arg(fields.len());
                for (k, v) in fields {
                    inv.arg(k).arg(v);
                }
            }
            // Only the tasks not created (an idempotency key matched) are answered, by position.
            let matched: Vec<(usize, String)> = self.run_durable(&inv).await?;
            let first = out.len();
            out.extend(chunk.iter().map(|t| (t.task_id.to_string(), true)));
            for (pos, existing) in matched {
                if let Some(slot) = pos.checked_sub(1).and_then(|p| out.get_mut(first + p)) {
                    *slot = (existing, false);
                }
            }
        }
        Ok(out)
    }

    /// One task's record, `None` when unknown or expired.
    pub async fn get(&self, id: &str) -> Result<Option<TaskRecord>, QueueError> {
        let reply: redis::Value = self
            .query(redis::cmd("HGETALL").arg(self.key(&format!("task:{id}"))))
            .await?;
        let mut map = super::lossy_map(&reply);
        if map.is_empty() {
            return Ok(None);
        }
        crate::task::with_key_id(&mut map, id);
        Ok(Some(TaskRecord::from_fields_lossy(&map)))
    }

    /// One page of a listing, filtered in Redis (see [`ListQuery`] and [`TaskPage`]).
    pub async fn list(&self, q: &ListQuery) -> Result<TaskPage, QueueError> {
        let limit = q.limit.clamp(1, LIST_LIMIT_MAX);
        let mut inv = self.invocation(&self.scripts.list);
        inv.arg(q.index.key_name())
            .arg(limit)
            .arg(scan_budget(limit));
        match &q.cursor {
            Some(c) => inv.arg(c.score.to_string()).arg(&c.id[..]),
            None => inv.arg("").arg(""),
        };
        inv.arg(q.status.map(TaskStatus::as_str).unwrap_or(""))
            .arg(q.task_type.map(TaskType::as_str).unwrap_or(""))
            .arg(q.priority.map(Priority::as_str).unwrap_or(""))
            .arg(q.id_prefix.as_deref().unwrap_or(""));
        let reply: redis::Value = self.run(&inv).await?;
        parse_page(reply)
    }

    /// The most recently changed tasks, newest first (the first page of an unfiltered listing).
    pub async fn recent(&self, limit: usize) -> Result<Vec<TaskRecord>, QueueError> {
        let page = self.list(&ListQuery::new(ListIndex::Recent, limit)).await?;
        Ok(page.tasks)
    }

    /// Dead-lettered tasks, newest first (the first page of an unfiltered listing).
    pub async fn failed(&self, limit: usize) -> Result<Vec<TaskRecord>, QueueError> {
        let page = self.list(&ListQuery::new(ListIndex::Failed, limit)).await?;
        Ok(page.tasks)
    }

    /// Cancel a task (a running one is stopped by its consumer at the next renewal).
    pub async fn cancel(&self, id: &str) -> Result<CancelOutcome, QueueError> {
        let mut inv = self.invocation(&self.scripts.cancel);
        inv.arg(id);
        let r: String = self.run(&inv).await?;
        Ok(match r.as_str() {
            "cancelled" => CancelOutcome::Cancelled,
            "cancelling" => CancelOutcome::Cancelling,
            "not_found" => CancelOutcome::NotFound,
            other => CancelOutcome::NotCancellable(other.parse().ok()),
        })
    }

    /// Replay a dead-lettered task.
    pub async fn replay(&self, id: &str) -> Result<ReplayOutcome, QueueError> {
        let mut inv = self.invocation(&self.scripts.replay);
        inv.arg(id);
        let r: String = self.run(&inv).await?;
        Ok(match r.as_str() {
            "replayed" => ReplayOutcome::Replayed,
            "not_found" => ReplayOutcome::NotFound,
            "stub" => ReplayOutcome::Stub,
            other => ReplayOutcome::NotFailed(other.parse().ok()),
        })
    }

    /// Delete a dead-lettered task for good (record, build progress, index entries).
    pub async fn delete_failed(&self, id: &str) -> Result<DeleteOutcome, QueueError> {
        let mut inv = self.invocation(&self.scripts.delete);
        inv.arg(id);
        let r: String = self.run(&inv).await?;
        Ok(match r.as_str() {
            "deleted" => DeleteOutcome::Deleted,
            "not_found" => DeleteOutcome::NotFound,
            other => DeleteOutcome::NotFailed(other.parse().ok()),
        })
    }

    /// Store the deployment a task created on its record, with Vercel's inspector URL for it
    /// when Vercel returned one.
    pub async fn set_deployment_id(
        &self,
        task_id: &str,
        deployment: &str,
        inspector_url: Option<&str>,
    ) -> Result<bool, QueueError> {
        let mut inv = self.invocation(&self.scripts.set_deployment);
        inv.arg(task_id)
            .arg(deployment)
            .arg(inspector_url.unwrap_or(""));
        let n: i64 = self.run(&inv).await?;
        Ok(n == 1)
    }
}

/// A stored status for messages: its name, or `in an unknown state`.
pub fn status_text(status: Option<TaskStatus>) -> &'static str {
    status
        .map(TaskStatus::as_str)
        .unwrap_or("in an unknown state")
}
