//! Queue upkeep that any instance may run at any time (each step is atomic and re-checks what it
//! acts on): promote tasks whose time has come, reclaim tasks whose lease lapsed.

use redis::Value;

use super::outcome::{TaskOutcome, parse_outcomes};
use super::{QueueError, QueueStore};

impl QueueStore {
    /// Move due delayed/retrying tasks to pending; returns how many moved.
    pub async fn promote_due(&self, limit: usize) -> Result<u64, QueueError> {
        let mut inv = self.invocation(&self.scripts.promote);
        inv.arg(limit);
        self.run(&inv).await
    }

    /// Delete the oldest finished records beyond the count caps (`TASK_KEEP_COMPLETED`,
    /// `TASK_KEEP_FAILED`), at most `limit` per kind; answers `(completed, failed)` deleted.
    pub async fn trim(&self, limit: usize) -> Result<(u64, u64), QueueError> {
        let mut inv = self.invocation(&self.scripts.trim);
        inv.arg(self.keep.0).arg(self.keep.1).arg(limit);
        self.run(&inv).await
    }

    /// Deal with up to `limit` lapsed leases; answers, per task, whether it was requeued,
    /// dead-lettered (it used its last attempt: it keeps killing workers), cancelled (an
    /// operator had asked) or stale (the lease entry outlived its task).
    pub async fn reclaim(&self, limit: usize) -> Result<Vec<TaskOutcome>, QueueError> {
        let mut inv = self.invocation(&self.scripts.reclaim);
        inv.arg(limit);
        let reply: Value = self.run(&inv).await?;
        parse_outcomes(&reply)
    }
}
