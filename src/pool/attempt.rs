//! Running one claimed batch: each task's handler behind a panic boundary while the batch's
//! leases are renewed, honouring an operator's cancel and the drain deadline, then recording
//! every outcome in as few script calls as possible and emitting what the queue applied.
//!
//! The leases of the whole batch are renewed together every third of the lease, both while a
//! handler runs and between tasks, so prefetched tasks do not lapse while they wait their turn.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::Value;
use tokio::sync::watch;
use tracing::{Instrument, Span, error, info, info_span, warn};

use super::PoolSignal;
use super::consumer::{Consumer, Exit, HOLD_LIMIT};
use super::record::{self, Writes};
use crate::handlers::{ExitConsumer, HandlerFuture, TaskContext, TaskError};
use crate::queue::{ClaimedTask, Done, Failure, TaskFacts, retry_backoff};
use crate::task::{DecodeError, Payload, Priority, TaskType, ValidationError};
use crate::telemetry::events::{AttemptOutcome, AttemptRecorded, InternalEvent};

/// What became of one claimed task, before the queue records it.
enum Verdict {
    Done(Value),
    /// `class` is a bounded name of why, for the dead letter's error event.
    Failed {
        reason: String,
        retryable: bool,
        class: &'static str,
    },
    /// The drain deadline passed: handed back without burning the attempt.
    HandBack,
    /// A renewal said another consumer owns it now: nothing to record.
    LeaseLost,
    /// An operator cancelled it while it ran.
    Cancel,
    /// Another task holds its project: the queue already deferred it into the project's
    /// waiting set (no attempt burnt), so nothing is recorded. The text names project and holder.
    Waiting(String),
}

/// Why a claimed task can never run: it is failed permanently (dead-lettered), never retried.
#[derive(Debug, thiserror::Error)]
enum Unrunnable {
    /// The stored record does not decode (hand-written, truncated, from a newer version).
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    /// The payload breaks its type's rules.
    #[error("invalid payload: {0}")]
    InvalidPayload(#[from] ValidationError),
    /// This build has no handler for the type.
    #[error("no handler for task type `{0}` in this build")]
    NoHandler(TaskType),
}

impl Unrunnable {
    fn class(&self) -> &'static str {
        match self {
            Unrunnable::Malformed(_) => "malformed_record",
            Unrunnable::InvalidPayload(_) => "invalid_payload",
            Unrunnable::NoHandler(_) => "no_handler",
        }
    }
}

/// One task the batch ran, with what its events need.
struct Ran {
    id: String,
    /// `type` label (`unknown` for undecodable records).
    task_type: &'static str,
    priority: Option<Priority>,
    /// Attempts including this one (for the back-off).
    attempts: u32,
    /// The record's trace id (the completion's event carries it without a read-back).
    trace_id: String,
    /// Ready to claimed.
    wait: Duration,
    /// Handler run time.
    run: Duration,
    /// The task's span: its outcome is logged in it.
    span: Span,
    verdict: Verdict,
}

/// The leases of one claimed batch.
struct Leases {
    /// Ids this consumer still holds (claimed, not lost to a reclaim).
    held: Vec<String>,
    /// When the next renewal is due.
    next_renewal: Instant,
    /// Ids an operator asked to cancel, from the last renewal.
    cancel: Vec<String>,
}

/// A claimed batch in the hands of one consumer.
pub(super) struct Batch<'a> {
    consumer: &'a mut Consumer,
    tasks: Vec<ClaimedTask>,
    leases: Leases,
}

/// Resolve when the pool starts draining and its deadline has passed (at once if the pool is
/// gone).
async fn hand_back_deadline(mut signal: watch::Receiver<PoolSignal>) {
    loop {
        let current = *signal.borrow_and_update();
        if let PoolSignal::Drain { deadline } = current {
            tokio::time::sleep_until(deadline.into()).await;
            return;
        }
        if signal.changed().await.is_err() {
            return;
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// The handler's answer as a verdict (and whether the consumer must end), logged in the task's
/// span.
fn settle(r: Result<Result<Value, TaskError>, Box<dyn std::any::Any + Send>>) -> (Verdict, bool) {
    match r {
        Ok(Ok(v)) => (Verdict::Done(v), false),
        Ok(Err(TaskError::Retryable(m))) => {
            warn!(error = %m, "attempt failed (retryable)");
            (
                Verdict::Failed {
                    reason: m,
                    retryable: true,
                    class: "retries_exhausted",
                },
                false,
            )
        }
        Ok(Err(TaskError::Permanent(m))) => {
            warn!(error = %m, "attempt failed (permanent)");
            (
                Verdict::Failed {
                    reason: m,
                    retryable: false,
                    class: "permanent",
                },
                false,
            )
        }
        Ok(Err(e @ TaskError::Deferred { .. })) => {
            info!(reason = %e, "task waiting for its project");
            (Verdict::Waiting(e.to_string()), false)
        }
        Err(p) if p.is::<ExitConsumer>() => {
            let m = "the consumer was told to exit (payload.exit_consumer)".to_string();
            error!(error = %m, "ending this consumer");
            (
                Verdict::Failed {
                    reason: m,
                    retryable: true,
                    class: "consumer_exit",
                },
                true,
            )
        }
        Err(p) => {
            // A panic is this task's failure, not the consumer's: the next task runs as usual.
            let m = format!("handler panicked: {}", panic_message(&*p));
            error!(error = %m, "handler panicked; the attempt failed");
            (
                Verdict::Failed {
                    reason: m,
                    retryable: true,
                    class: "panic",
                },
                false,
            )
        }
    }
}

impl<'a> Batch<'a> {
    pub fn new(consumer: &'a mut Consumer, tasks: Vec<ClaimedTask>) -> Self {
        let leases = Leases {
            held: tasks.iter().map(|t| t.id.clone()).collect(),
            next_renewal: Instant::now() + consumer.deps.store.lease() / 3,
            cancel: Vec::new(),
        };
        Batch {
            consumer,
            tasks,
            leases,
        }
    }

    /// Run the tasks one at a time, then record every outcome. Returns how the batch ended, how
    /// many tasks it ran and how long running them took (recording excluded); past `HOLD_LIMIT`
    /// the unstarted ones are handed back.
    pub async fn run(mut self) -> (Exit, usize, Duration) {
        let started = Instant::now();
        let mut ran = Vec::new();
        let mut exit = Exit::Stopped;
        let mut rest = std::mem::take(&mut self.tasks).into_iter();
        while let Some(task) = rest.next() {
            if Instant::now() >= self.leases.next_renewal {
                self.renew().await;
            }
            if !self.leases.held.contains(&task.id) {
                warn!(task_id = %task.id, "lease lost before the task started; skipping it");
                continue;
            }
            let (done, exit_consumer) = self.run_handing_back(task, &mut rest, started).await;
            ran.push(done);
            if exit_consumer {
                exit = Exit::Panicked;
                break;
            }
            if self.consumer.draining() || started.elapsed() > HOLD_LIMIT {
                break;
            }
        }
        // Claimed but not started (the pool began draining, the consumer must end, or the batch
        // ran past HOLD_LIMIT).
        let unstarted: Vec<String> = rest.map(|t| t.id).collect();
        let (count, busy) = (ran.len(), started.elapsed());
        self.record(ran, unstarted).await;
        (exit, count, busy)
    }

    /// Run `task`. If it is still running `HOLD_LIMIT` after the batch started, hand the batch's
    /// unstarted tasks back meanwhile (they are not held behind a long task an idle consumer
    /// could start them instead); if that fails they are handed back when the batch ends.
    async fn run_handing_back(
        &mut self,
        task: ClaimedTask,
        rest: &mut std::vec::IntoIter<ClaimedTask>,
        started: Instant,
    ) -> (Ran, bool) {
        if rest.len() == 0 {
            return self.run_one(task).await;
        }
        let store = self.consumer.deps.store.clone();
        let name = self.consumer.name.clone();
        let limit = tokio::time::Instant::from_std(started + HOLD_LIMIT);
        let mut ids: Vec<String> = Vec::new();
        let (out, handed) = {
            let run = self.run_one(task);
            tokio::pin!(run);
            tokio::select! {
                out = &mut run => (out, None),
                _ = tokio::time::sleep_until(limit) => {
                    ids = rest.as_slice().iter().map(|t| t.id.clone()).collect();
                    let (out, handed) = tokio::join!(&mut run, store.release(&name, &ids));
                    (out, Some(handed))
                }
            }
        };
        match handed {
            Some(Ok(_)) => {
                *rest = Vec::new().into_iter();
                self.leases.held.retain(|id| !ids.contains(id));
            }
            Some(Err(e)) => warn!(error = %e, "cannot hand back the unstarted tasks yet"),
            None => {}
        }
        out
    }

    /// Renew every lease still held; forget the lost ones; note cancel requests.
    async fn renew(&mut self) {
        let store = &self.consumer.deps.store;
        self.leases.next_renewal = Instant::now() + store.lease() / 3;
        match store.renew(&self.consumer.name, &self.leases.held).await {
            Ok((lost, cancel)) => {
                self.leases.held.retain(|id| !lost.contains(id));
                self.leases.cancel = cancel;
            }
            Err(e) => warn!(error = %e, "lease renewal failed; will retry"),
        }
    }

    async fn run_one(&mut self, task: ClaimedTask) -> (Ran, bool) {
        let mut ran = Ran {
            id: task.id.clone(),
            task_type: "unknown",
            priority: None,
            attempts: 0,
            trace_id: String::new(),
            wait: task.wait,
            run: Duration::ZERO,
            span: info_span!("task", task_id = %task.id),
            verdict: Verdict::LeaseLost,
        };
        let work = match self.prepare(task, &mut ran) {
            Ok(work) => work,
            Err(why) => {
                ran.verdict = Verdict::Failed {
                    reason: why.to_string(),
                    retryable: false,
                    class: why.class(),
                };
                return (ran, false);
            }
        };
        let started = Instant::now();
        let usage = self.consumer.deps.usage.clone();
        usage.set_running(&self.consumer.name, Some(started));
        let span = ran.span.clone();
        let id = ran.id.clone();
        let (verdict, exit_consumer) = async {
            info!("task started");
            self.drive(&id, work).await
        }
        .instrument(span)
        .await;
        usage.set_running(&self.consumer.name, None);
        if matches!(verdict, Verdict::Waiting(_)) {
            // Its lease went with the deferral; renewing it would only report it lost.
            self.leases.held.retain(|h| *h != id);
        }
        ran.run = started.elapsed();
        ran.verdict = verdict;
        (ran, exit_consumer)
    }

    /// Decode, validate and find the handler: the future to run, or why the task can never
    /// run (failed permanently, never retried).
    fn prepare(&self, task: ClaimedTask, ran: &mut Ran) -> Result<HandlerFuture, Unrunnable> {
        let record = task.record.inspect_err(|e| {
            warn!(task_id = %task.id, error = %e, "dead-lettering a malformed record");
        })?;
        ran.task_type = record.task_type.as_str();
        ran.priority = Some(record.priority);
        ran.attempts = record.attempts;
        ran.trace_id.clone_from(&record.trace_id);
        ran.span = info_span!(
            "task",
            task_id = %record.task_id,
            task_type = %record.task_type,
            priority = %record.priority,
            attempt = record.attempts,
            trace_id = %record.trace_id,
        );
        let payload = Payload::parse(record.task_type, &record.payload)?;
        let handlers = &self.consumer.deps.handlers;
        let handler =
            (handlers.get(record.task_type)).ok_or(Unrunnable::NoHandler(record.task_type))?;
        let ctx = TaskContext {
            record,
            payload,
            store: self.consumer.deps.store.clone(),
            consumer: self.consumer.name.clone(),
        };
        Ok(handler.run(ctx))
    }

    /// Run the handler until it answers, its lease is lost, an operator cancels it, or the
    /// drain deadline passes.
    async fn drive(&mut self, id: &str, work: HandlerFuture) -> (Verdict, bool) {
        let work = AssertUnwindSafe(work).catch_unwind();
        tokio::pin!(work);
        let deadline = hand_back_deadline(self.consumer.signal.clone());
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = &mut work => return settle(r),
                _ = tokio::time::sleep_until(self.leases.next_renewal.into()) => {
                    self.renew().await;
                    if !self.leases.held.iter().any(|h| h == id) {
                        warn!("lease lost (reclaimed elsewhere); abandoning this attempt");
                        return (Verdict::LeaseLost, false);
                    }
                    if self.leases.cancel.iter().any(|c| c == id) {
                        info!("cancelled by an operator; stopping the handler");
                        return (Verdict::Cancel, false);
                    }
                }
                _ = &mut deadline => {
                    warn!("shutdown timeout reached; handing the task back");
                    return (Verdict::HandBack, false);
                }
            }
        }
    }

    /// Write every outcome, then emit what the queue applied to each task, in its span.
    async fn record(&mut self, ran: Vec<Ran>, unstarted: Vec<String>) {
        let mut writes = Writes::default();
        for r in &ran {
            writes.add(r);
        }
        writes.release.extend(unstarted);
        let applied = record::write(&self.consumer.deps.store, &self.consumer.name, writes).await;
        for r in ran {
            let _entered = r.span.enter();
            let (outcome, detail) = match (&r.verdict, applied.as_ref().and_then(|a| a.get(&r.id)))
            {
                (Verdict::LeaseLost, _) => (AttemptOutcome::Released, "lease lost".to_string()),
                (Verdict::Waiting(why), _) => (AttemptOutcome::Released, why.clone()),
                (_, Some(a)) => (a.metric(), a.detail()),
                (_, None) => (
                    AttemptOutcome::Released,
                    "not recorded; the lease will lapse and the task run again".to_string(),
                ),
            };
            let failure = match r.verdict {
                Verdict::Failed { class, .. } => Some(class),
                _ => None,
            };
            // The charts' wait times: counted here, flushed to Redis by the chores, off the hot
            // path (the outcome was counted by the script that recorded it).
            if r.priority.is_some() {
                let store = &self.consumer.deps.store;
                store.history_tally().note_wait(outcome, r.wait);
            }
            AttemptRecorded {
                task_type: r.task_type,
                priority: r.priority,
                outcome,
                detail: &detail,
                wait: r.wait,
                run: r.run,
                failure,
            }
            .emit();
        }
    }
}

impl Writes {
    /// Add what `r` needs written.
    fn add(&mut self, r: &Ran) {
        match &r.verdict {
            Verdict::Done(v) => self.complete.push(Done {
                id: r.id.clone(),
                result: v.clone(),
                facts: r.priority.map(|p| TaskFacts {
                    task_type: r.task_type,
                    priority: p.as_str(),
                    attempts: r.attempts,
                    trace_id: r.trace_id.clone(),
                }),
            }),
            Verdict::Failed {
                reason, retryable, ..
            } => self.fail.push(Failure {
                id: r.id.clone(),
                reason: reason.clone(),
                retryable: *retryable,
                backoff: if *retryable {
                    retry_backoff(r.attempts)
                } else {
                    Duration::ZERO
                },
            }),
            Verdict::HandBack => self.release.push(r.id.clone()),
            Verdict::Cancel => self.cancel.push(r.id.clone()),
            Verdict::LeaseLost | Verdict::Waiting(_) => {}
        }
    }
}
