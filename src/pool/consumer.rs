//! ConsumerActor: claims tasks and runs them.
//!
//! The actor hosts one async loop (`Consumer::consume`). Each turn claims up to `WORKER_PREFETCH`
//! tasks in one atomic script; with nothing to do it blocks on its own Redis connection (BLPOP on the
//! wake list, bounded by `WORKER_POLL_INTERVAL`), so an idle pool costs no polling and a new task is
//! picked up within a round trip. While a handler runs, the lease is renewed every third of its
//! length; a lost lease (the task was reclaimed elsewhere) or an operator's cancel stops the handler.
//!
//! The handler runs behind `catch_unwind`: a panic fails the attempt (retryable, so a poison task is
//! dead-lettered after `max_retries`) and then ends this consumer, so the supervisor's restart
//! limit sees it. Redis errors never end the loop: it backs off and tries again.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::FutureExt;
use redis::aio::MultiplexedConnection;
use serde_json::Value;
use tokio::sync::watch;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::PoolSignal;
use super::usage::InstanceUsage;
use crate::handlers::{HandlerRegistry, TaskContext, TaskError};
use crate::queue::{ClaimedTask, Failure, QueueStore, retry_backoff};
use crate::task::Payload;
use crate::telemetry::observer::{Outcome, TaskObserver};

/// Why a consumer's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The pool asked it to stop (stop, restart, shutdown).
    Stopped,
    /// A handler panicked; the supervisor decides whether to restart it.
    Panicked,
}

/// Sent to the supervisor when a consumer ends.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConsumerExited {
    pub slot: usize,
    /// The spawn id the consumer was started with (unique per start).
    pub spawn_id: u64,
    pub exit: Exit,
}

/// Everything a consumer needs; cloned into each new consumer by the supervisor.
#[derive(Clone)]
pub struct ConsumerDeps {
    pub store: QueueStore,
    pub handlers: Arc<HandlerRegistry>,
    pub observer: Arc<dyn TaskObserver>,
    /// Instance-wide count of running tasks (heartbeat, status API).
    pub in_flight: Arc<AtomicUsize>,
    /// Start times of running tasks and the latest CPU/memory ratios (metrics, heartbeat).
    pub usage: Arc<InstanceUsage>,
    /// Tasks claimed per round trip.
    pub prefetch: usize,
    /// Upper bound of one blocking wait.
    pub poll_interval: Duration,
}

pub struct ConsumerActor {
    /// Lease owner name, `<instance>/c<slot>`: written on every task this consumer claims.
    name: String,
    /// Position in the pool, so the supervisor can restart the same slot.
    slot: usize,
    /// Unique per start, so the supervisor can tell this consumer from a later one in its slot.
    spawn_id: u64,
    deps: ConsumerDeps,
    /// Pool control: Run, or Drain with a deadline.
    control: watch::Receiver<PoolSignal>,
    /// Told when this consumer ends and why.
    supervisor: Recipient<ConsumerExited>,
}

impl ConsumerActor {
    pub fn new(
        instance: &str,
        slot: usize,
        spawn_id: u64,
        deps: ConsumerDeps,
        control: watch::Receiver<PoolSignal>,
        supervisor: Recipient<ConsumerExited>,
    ) -> Self {
        Self {
            name: format!("{instance}/c{slot}"),
            slot,
            spawn_id,
            deps,
            control,
            supervisor,
        }
    }
}

impl Actor for ConsumerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let consumer = Consumer {
            name: self.name.clone(),
            deps: self.deps.clone(),
            control: self.control.clone(),
        };
        let span = info_span!("consumer", consumer = %self.name);
        let fut = AssertUnwindSafe(consumer.consume().instrument(span))
            .catch_unwind()
            .map(|r| r.unwrap_or(Exit::Panicked));
        ctx.spawn(fut.into_actor(self).map(|exit, act, ctx| {
            act.supervisor.do_send(ConsumerExited {
                slot: act.slot,
                spawn_id: act.spawn_id,
                exit,
            });
            ctx.stop();
        }));
    }
}

/// What became of one claimed task.
enum Attempt {
    Done(Value),
    Failed(Failure, Outcome),
    /// Handed back (drain deadline) — released without burning the attempt.
    HandBack,
    /// Another instance owns it now, or it was cancelled; nothing to record.
    Gone(Outcome),
    /// The handler panicked; record the failure, then end this consumer.
    Panicked(Failure, Outcome),
}

/// The leases of one claimed batch.
struct Leases {
    /// Ids this consumer still holds (claimed, not lost to a reclaim).
    held: Vec<String>,
    /// When the next renewal is due (every third of the lease, for the whole batch).
    next_renewal: Instant,
    /// Ids an operator asked to cancel, from the last renewal.
    cancel: Vec<String>,
}

/// The loop itself, separate from the actor so it can be one plain async fn.
struct Consumer {
    name: String,
    deps: ConsumerDeps,
    control: watch::Receiver<PoolSignal>,
}

/// Wait for the pool to start draining, then until its deadline. Resolves at once if the pool
/// is gone.
async fn hand_back_deadline(mut control: watch::Receiver<PoolSignal>) {
    loop {
        let signal = *control.borrow_and_update();
        if let PoolSignal::Drain { deadline } = signal {
            tokio::time::sleep_until(deadline.into()).await;
            return;
        }
        if control.changed().await.is_err() {
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

impl Consumer {
    fn draining(&self) -> bool {
        !matches!(*self.control.borrow(), PoolSignal::Run)
    }

    /// Sleep for `d` unless the pool starts draining first.
    async fn pause(&mut self, d: Duration) {
        let mut control = self.control.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = control.changed() => {}
        }
    }

    async fn consume(mut self) -> Exit {
        debug!("consumer started");
        let mut blocking: Option<MultiplexedConnection> = None;
        let mut redis_backoff = Duration::from_millis(100);
        loop {
            if self.draining() {
                return Exit::Stopped;
            }
            let started = Instant::now();
            let batch = match self.deps.store.claim(&self.name, self.deps.prefetch).await {
                Ok(b) => {
                    redis_backoff = Duration::from_millis(100);
                    b
                }
                Err(e) => {
                    self.deps.observer.redis_error();
                    warn!(error = %e, retry_in_ms = redis_backoff.as_millis() as u64, "claim failed");
                    self.pause(redis_backoff).await;
                    redis_backoff = (redis_backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            self.deps.observer.claimed(started.elapsed(), batch.len());
            if batch.is_empty() {
                self.wait_for_work(&mut blocking).await;
                continue;
            }
            if self.run_batch(batch).await == Exit::Panicked {
                return Exit::Panicked;
            }
        }
    }

    /// Block until woken, the poll interval passes, or the pool drains.
    async fn wait_for_work(&mut self, blocking: &mut Option<MultiplexedConnection>) {
        if blocking.is_none() {
            match self
                .deps
                .store
                .blocking_connection(self.deps.poll_interval)
                .await
            {
                Ok(c) => *blocking = Some(c),
                Err(e) => {
                    self.deps.observer.redis_error();
                    warn!(error = %e, "cannot open the blocking connection");
                    self.pause(Duration::from_secs(1)).await;
                    return;
                }
            }
        }
        let Some(conn) = blocking.as_mut() else {
            return;
        };
        let mut control = self.control.clone();
        let store = self.deps.store.clone();
        tokio::select! {
            r = store.wait_for_work(conn, self.deps.poll_interval) => {
                if let Err(e) = r {
                    self.deps.observer.redis_error();
                    warn!(error = %e, "blocking wait failed; reconnecting");
                    *blocking = None;
                    self.pause(Duration::from_millis(500)).await;
                }
            }
            _ = control.changed() => {}
        }
    }

    async fn run_batch(&mut self, batch: Vec<ClaimedTask>) -> Exit {
        let mut leases = Leases {
            held: batch.iter().map(|t| t.id.clone()).collect(),
            next_renewal: Instant::now() + self.deps.store.lease() / 3,
            cancel: Vec::new(),
        };
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let mut hand_back = Vec::new();
        let mut exit = Exit::Stopped;
        let mut rest = batch.into_iter();
        for task in rest.by_ref() {
            // Between tasks of a batch, keep every held lease alive, and skip tasks already lost.
            if Instant::now() >= leases.next_renewal {
                self.renew(&mut leases).await;
            }
            if !leases.held.contains(&task.id) {
                warn!(task_id = %task.id, "lease lost before the task started; skipping it");
                continue;
            }
            let id = task.id.clone();
            let task_type = task.record.as_ref().ok().map(|r| r.task_type);
            let priority = task.record.as_ref().ok().map(|r| r.priority);
            let wait = task.wait;
            let started = Instant::now();
            self.set_running(Some(started));
            self.deps.in_flight.fetch_add(1, Ordering::Relaxed);
            let attempt = self.run_one(task, &mut leases).await;
            self.deps.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.set_running(None);
            let outcome = match attempt {
                Attempt::Done(v) => {
                    done.push((id, v));
                    Outcome::Completed
                }
                Attempt::Failed(f, o) => {
                    failed.push(f);
                    o
                }
                Attempt::HandBack => {
                    hand_back.push(id);
                    Outcome::Released
                }
                Attempt::Gone(o) => o,
                Attempt::Panicked(f, outcome) => {
                    failed.push(f);
                    exit = Exit::Panicked;
                    outcome
                }
            };
            self.deps
                .observer
                .finished(task_type, priority, outcome, wait, started.elapsed());
            if exit == Exit::Panicked || self.draining() {
                break;
            }
        }
        // Claimed but not started (prefetch > 1 and the pool is draining or we panicked): hand back.
        hand_back.extend(rest.map(|t| t.id));
        self.record_outcomes(done, failed, hand_back).await;
        exit
    }

    fn set_running(&self, since: Option<Instant>) {
        if let Ok(mut m) = self.deps.usage.running.lock() {
            match since {
                Some(t) => m.insert(self.name.clone(), t),
                None => m.remove(&self.name),
            };
        }
    }

    /// Renew every lease still held; forget the lost ones; note cancel requests.
    async fn renew(&mut self, leases: &mut Leases) {
        leases.next_renewal = Instant::now() + self.deps.store.lease() / 3;
        match self.deps.store.renew(&self.name, &leases.held).await {
            Ok((lost, cancel)) => {
                leases.held.retain(|id| !lost.contains(id));
                leases.cancel = cancel;
            }
            Err(e) => {
                self.deps.observer.redis_error();
                warn!(error = %e, "lease renewal failed; will retry");
            }
        }
    }

    async fn run_one(&mut self, task: ClaimedTask, leases: &mut Leases) -> Attempt {
        let permanent = |reason: String| {
            Attempt::Failed(
                Failure {
                    id: task.id.clone(),
                    reason,
                    retryable: false,
                    backoff: Duration::ZERO,
                },
                Outcome::Failed,
            )
        };
        let record = match task.record {
            Ok(r) => r,
            Err(e) => {
                warn!(task_id = %task.id, error = %e, "dead-lettering a malformed record");
                return permanent(e.to_string());
            }
        };
        let payload = match Payload::parse(record.task_type, &record.payload) {
            Ok(p) => p,
            Err(e) => return permanent(format!("invalid payload: {e}")),
        };
        let Some(handler) = self.deps.handlers.get(record.task_type) else {
            return permanent(format!(
                "no handler for task type `{}` in this build",
                record.task_type
            ));
        };
        let span = info_span!(
            "task",
            task_id = %record.task_id,
            task_type = %record.task_type,
            priority = %record.priority,
            attempt = record.attempts,
            trace_id = %record.trace_id,
        );
        let attempts = record.attempts;
        // A retryable failure on the last allowed attempt is dead-lettered by the fail script.
        let retry_outcome = if attempts <= record.max_retries {
            Outcome::Retried
        } else {
            Outcome::Failed
        };
        let failure = |reason: String, retryable: bool| Failure {
            id: task.id.clone(),
            reason,
            retryable,
            backoff: if retryable {
                retry_backoff(attempts)
            } else {
                Duration::ZERO
            },
        };
        async {
            info!("task started");
            let ctx = TaskContext {
                record,
                payload,
                store: self.deps.store.clone(),
            };
            let work = AssertUnwindSafe(handler.run(ctx)).catch_unwind();
            tokio::pin!(work);
            let deadline = hand_back_deadline(self.control.clone());
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    r = &mut work => {
                        return match r {
                            Ok(Ok(v)) => {
                                info!("task completed");
                                Attempt::Done(v)
                            }
                            Ok(Err(TaskError::Retryable(m))) => {
                                warn!(error = %m, "attempt failed (retryable)");
                                Attempt::Failed(failure(m, true), retry_outcome)
                            }
                            Ok(Err(TaskError::Permanent(m))) => {
                                warn!(error = %m, "attempt failed (permanent)");
                                Attempt::Failed(failure(m, false), Outcome::Failed)
                            }
                            Err(p) => {
                                let m = format!("handler panicked: {}", panic_message(&*p));
                                error!(error = %m, "handler panicked; restarting this consumer");
                                Attempt::Panicked(failure(m, true), retry_outcome)
                            }
                        };
                    }
                    _ = tokio::time::sleep_until(leases.next_renewal.into()) => {
                        self.renew(leases).await;
                        if !leases.held.contains(&task.id) {
                            warn!("lease lost (reclaimed elsewhere); abandoning this attempt");
                            return Attempt::Gone(Outcome::Released);
                        }
                        if leases.cancel.contains(&task.id) {
                            info!("cancelled by an operator; stopping the handler");
                            if let Err(e) = self.deps.store.finish_cancel(&self.name, &task.id).await {
                                warn!(error = %e, "could not record the cancel; the lease will lapse");
                            }
                            return Attempt::Gone(Outcome::Cancelled);
                        }
                    }
                    _ = &mut deadline => {
                        warn!("shutdown timeout reached; handing the task back");
                        return Attempt::HandBack;
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Write outcomes to Redis, retrying through Redis outages for up to one lease length. If that
    /// fails the leases lapse and the tasks run again elsewhere (at-least-once).
    async fn record_outcomes(
        &mut self,
        done: Vec<(String, Value)>,
        failed: Vec<Failure>,
        hand_back: Vec<String>,
    ) {
        let give_up = Instant::now() + self.deps.store.lease();
        let mut backoff = Duration::from_millis(50);
        let (mut done_ok, mut failed_ok, mut back_ok) =
            (done.is_empty(), failed.is_empty(), hand_back.is_empty());
        loop {
            let store = &self.deps.store;
            if !done_ok {
                done_ok = store.complete(&done).await.is_ok();
            }
            if !failed_ok {
                failed_ok = store.fail(&self.name, &failed).await.is_ok();
            }
            if !back_ok {
                back_ok = store.release(&self.name, &hand_back).await.is_ok();
            }
            if done_ok && failed_ok && back_ok {
                return;
            }
            self.deps.observer.redis_error();
            if Instant::now() >= give_up {
                error!(
                    unrecorded = (!done_ok) as usize * done.len()
                        + (!failed_ok) as usize * failed.len()
                        + (!back_ok) as usize * hand_back.len(),
                    "could not record task outcomes; their leases will lapse and they will run again"
                );
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}
