//! What consumers and the Vercel gateway report, for metrics and `bench`.

use std::time::Duration;

use crate::task::{Priority, TaskType};

/// How a finished attempt ended, for observers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// Failed, another attempt scheduled.
    Retried,
    /// Failed for good (dead-lettered).
    Failed,
    /// Stopped on an operator's cancel.
    Cancelled,
    /// Handed back unfinished (shutdown) or lost to a reclaim.
    Released,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Released => "released",
        }
    }
}

/// Receives what consumers see, without slowing them down (metrics, `bench`).
pub trait TaskObserver: Send + Sync + 'static {
    /// One claim round trip took `latency` and returned `claimed` tasks.
    fn claimed(&self, _latency: Duration, _claimed: usize) {}
    /// An attempt ended. Type and priority are `None` for records that could not be decoded.
    fn finished(
        &self,
        _task_type: Option<TaskType>,
        _priority: Option<Priority>,
        _outcome: Outcome,
        _wait: Duration,
        _run: Duration,
    ) {
    }
    /// A consumer was restarted after exiting unexpectedly.
    fn consumer_restarted(&self) {}
    /// A Redis call failed.
    fn redis_error(&self) {}
    /// This instance's maintenance put `n` tasks with lapsed leases back.
    fn reclaimed(&self, _n: u64) {}
    /// This instance's maintenance dead-lettered a task whose lease lapsed on its last attempt
    /// (it keeps killing workers). `None` for a type this build doesn't know.
    fn dead_lettered_on_reclaim(&self, _task_type: Option<TaskType>) {}
    /// A Vercel call ended with `status_class` (2xx, 4xx, 429, 5xx, error) after `latency`.
    fn vercel_request(
        &self,
        _op: crate::vercel::client::Operation,
        _status_class: &'static str,
        _latency: Duration,
    ) {
    }
    /// A Vercel call had to wait for the shared limiter (`bucket`) or a 429 hold (`retry_after`).
    fn vercel_rate_limited(&self, _reason: &str) {}
    /// Vercel answered 401/403.
    fn vercel_auth_failure(&self) {}
}

/// The observer that ignores everything.
pub struct NoObserver;
impl TaskObserver for NoObserver {}
