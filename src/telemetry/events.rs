//! Internal events: one type per thing that happens inside an instance, each emitting its log line
//! and its metrics together, so the two can never disagree and no caller spells a metric name.
//!
//! Emitters build the event with the labels they know (as `&'static str` for values owned by
//! higher layers, e.g. a pool status or a Vercel operation) and call [`InternalEvent::emit`].
//! Log lines are emitted in the caller's span, so task events carry the task's fields.

use std::fmt::Display;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use tracing::{debug, error, info, warn};

use super::metrics::names;
use crate::task::Priority;

/// Something that happened: emits its log line and its metrics.
pub trait InternalEvent {
    fn emit(self);
}

/// How one attempt of a task ended, as recorded by the queue (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Completed,
    /// Failed; the queue scheduled another attempt.
    Retried,
    /// Failed for good: dead-lettered.
    Failed,
    /// Stopped on an operator's cancel.
    Cancelled,
    /// Handed back unfinished (drain), or its result was discarded because another consumer owns
    /// the task now (lease lost).
    Released,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 5] = [
        AttemptOutcome::Completed,
        AttemptOutcome::Retried,
        AttemptOutcome::Failed,
        AttemptOutcome::Cancelled,
        AttemptOutcome::Released,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Completed => "completed",
            AttemptOutcome::Retried => "retried",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Cancelled => "cancelled",
            AttemptOutcome::Released => "released",
        }
    }
}

/// A consumer's attempt ended and the queue recorded `outcome` (the outcome the queue's script
/// applied, not the one the consumer hoped for).
pub struct AttemptRecorded<'a> {
    /// `type` label (`unknown` for records that could not be decoded).
    pub task_type: &'static str,
    /// `None` for records that could not be decoded: no wait-time observation then.
    pub priority: Option<Priority>,
    pub outcome: AttemptOutcome,
    /// What the queue said about it: the stored reason, the retry time, a stale status.
    pub detail: &'a str,
    /// Ready to claimed.
    pub wait: Duration,
    /// Handler run time.
    pub run: Duration,
    /// Why the attempt failed, as a bounded class (`panic`, `retries_exhausted`, `permanent`,
    /// `invalid_payload`, `malformed_record`, `no_handler`, `no_record`): with the type, the
    /// fingerprint of a dead letter's error event.
    pub failure: Option<&'static str>,
}

/// A task was dead-lettered: one ERROR line (so one Sentry event, rate-limited per fingerprint),
/// whose message names the type and the failure class so each pair is its own fingerprint.
fn dead_lettered(task_type: &str, class: &str, reason: &str) {
    error!(
        task_type,
        failure = class,
        reason,
        "task dead-lettered: {task_type} ({class})"
    );
}

impl InternalEvent for AttemptRecorded<'_> {
    fn emit(self) {
        let ty = self.task_type;
        counter!(names::TASKS, "type" => ty, "outcome" => self.outcome.as_str()).increment(1);
        histogram!(names::TASK_DURATION, "type" => ty).record(self.run.as_secs_f64());
        if let Some(p) = self.priority {
            histogram!(names::TASK_WAIT, "priority" => p.as_str()).record(self.wait.as_secs_f64());
        }
        let run_ms = self.run.as_millis() as u64;
        match self.outcome {
            AttemptOutcome::Completed => info!(run_ms, "task completed"),
            AttemptOutcome::Retried => info!(retry_at_ms = self.detail, "task retrying"),
            AttemptOutcome::Failed => {
                dead_lettered(ty, self.failure.unwrap_or("permanent"), self.detail)
            }
            AttemptOutcome::Cancelled => info!(reason = self.detail, "task cancelled"),
            AttemptOutcome::Released => info!(detail = self.detail, "task released"),
        }
    }
}

/// The queue maintenance of this instance dealt with lapsed leases.
pub struct LeasesReclaimed<'a> {
    /// `(type, outcome)` per task: `Released` for requeued, `Failed` for dead-lettered (the task
    /// keeps killing workers), `Cancelled` for tasks an operator had asked to cancel.
    pub tasks: &'a [(&'static str, AttemptOutcome)],
}

impl InternalEvent for LeasesReclaimed<'_> {
    fn emit(self) {
        let mut requeued = 0u64;
        let mut dead = 0u64;
        for (ty, outcome) in self.tasks {
            match outcome {
                AttemptOutcome::Released => requeued += 1,
                other => {
                    if *other == AttemptOutcome::Failed {
                        dead += 1;
                        dead_lettered(ty, "lease_expired", "the lease lapsed on its last attempt");
                    }
                    counter!(names::TASKS, "type" => *ty, "outcome" => other.as_str()).increment(1);
                }
            }
        }
        counter!(names::TASKS_RECLAIMED).increment(requeued);
        if !self.tasks.is_empty() {
            warn!(
                requeued,
                dead_lettered = dead,
                handled = self.tasks.len(),
                "reclaimed tasks with lapsed leases"
            );
        }
    }
}

/// A consumer that died outside a handler was started again in its slot.
pub struct ConsumerRestarted {
    pub slot: usize,
    /// Restarts since the process started.
    pub restarts: u64,
}

impl InternalEvent for ConsumerRestarted {
    fn emit(self) {
        counter!(names::CONSUMER_RESTARTS).increment(1);
        warn!(
            slot = self.slot,
            restarts = self.restarts,
            "restarting consumer"
        );
    }
}

/// The pool of this instance changed status.
pub struct PoolStatusChanged {
    pub status: &'static str,
    /// Every status value, so the others read 0.
    pub all: &'static [&'static str],
}

impl InternalEvent for PoolStatusChanged {
    fn emit(self) {
        for s in self.all {
            let v = if *s == self.status { 1.0 } else { 0.0 };
            gauge!(names::WORKER_STATUS, "status" => *s).set(v);
        }
        info!(status = self.status, "pool status changed");
    }
}

/// A Redis call failed (any caller: every Redis call of the process goes through the queue store).
pub struct RedisCallFailed<'a> {
    pub error: &'a dyn Display,
}

impl InternalEvent for RedisCallFailed<'_> {
    fn emit(self) {
        counter!(names::REDIS_ERRORS).increment(1);
        debug!(error = %self.error, "redis call failed");
    }
}

/// A Vercel API call ended (`status_class`: 2xx, 3xx, 4xx, 429, 5xx, or error = no answer).
pub struct VercelRequestFinished {
    pub operation: &'static str,
    pub status_class: &'static str,
    pub latency: Duration,
}

impl InternalEvent for VercelRequestFinished {
    fn emit(self) {
        counter!(names::VERCEL_REQUESTS, "operation" => self.operation,
            "status_class" => self.status_class)
        .increment(1);
        histogram!(names::VERCEL_REQUEST_DURATION, "operation" => self.operation)
            .record(self.latency.as_secs_f64());
        debug!(
            operation = self.operation,
            status_class = self.status_class,
            latency_ms = self.latency.as_millis() as u64,
            "Vercel call finished"
        );
    }
}

/// A Vercel call has to wait for the shared limiter (`bucket`) or a 429 hold (`retry_after`).
pub struct VercelRateLimitWait {
    pub reason: &'static str,
    pub wait: Duration,
}

impl InternalEvent for VercelRateLimitWait {
    fn emit(self) {
        counter!(names::VERCEL_RATE_LIMITED_WAITS, "reason" => self.reason).increment(1);
        debug!(
            reason = self.reason,
            wait_ms = self.wait.as_millis() as u64,
            "waiting for the Vercel rate limit"
        );
    }
}

/// Vercel answered 401/403: the token is missing, wrong, expired or lacks access.
pub struct VercelAuthRejected {
    pub status: u16,
}

impl InternalEvent for VercelAuthRejected {
    fn emit(self) {
        counter!(names::VERCEL_AUTH_FAILURES).increment(1);
        // ERROR, so it reaches Sentry: an expired token stops every Vercel task until replaced.
        error!(
            status = self.status,
            "Vercel rejected the token (expired, revoked or lacking access)"
        );
    }
}
