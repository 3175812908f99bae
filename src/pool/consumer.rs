//! ConsumerActor: claims tasks and runs them.
//!
//! The actor hosts one async loop. Each turn claims a batch in one atomic script; with nothing to
//! do it blocks on its own Redis connection (BLPOP on the wake list, bounded by
//! `WORKER_POLL_INTERVAL`), so an idle pool costs no polling and a new task is picked up within a
//! round trip. Running a claimed batch (handlers, leases, recording outcomes) is `attempt.rs`.
//!
//! The batch size adapts ([`ClaimSize`]): one task until the consumer has timed some, then as many
//! as it expects to finish within [`HOLD_TARGET`], at most `WORKER_PREFETCH`, and one again after
//! the queue ran dry. Long tasks are
//! therefore claimed one at a time (no consumer holds work another could start), short ones in
//! batches (one claim and one acknowledgement serve many). A batch that still overruns
//! [`HOLD_LIMIT`] hands its unstarted tasks back to the head of their queues, at once even while
//! a long task of the batch still runs (`attempt.rs`).
//!
//! A handler panic is caught and is that task's failed attempt (retryable, so a poison task is
//! dead-lettered after `max_retries`): no task payload can end a consumer or change the pool's
//! status. Only a consumer that dies outside a handler meets the supervisor's restart policy.
//! Redis errors never end the loop: it backs off and tries again.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::FutureExt;
use tokio::sync::watch;
use tracing::{Instrument, debug, info_span, warn};

use super::PoolSignal;
use super::attempt::Batch;
use super::usage::InstanceUsage;
use crate::handlers::HandlerRegistry;
use crate::queue::{Applied, Conn, QueueStore};
use crate::telemetry::events::{AttemptRecorded, InternalEvent};

/// Why a consumer's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The pool asked it to stop (stop, restart, shutdown).
    Stopped,
    /// It died outside a handler (a panic past the loop, or the `exit_consumer` knob); the
    /// supervisor decides whether to restart it.
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

/// Told how long each claim round trip took (`bench` measures claim latency with it).
pub trait ClaimProbe: Send + Sync + 'static {
    fn claimed(&self, latency: Duration, claimed: usize);
}

/// Everything a consumer needs; cloned into each new consumer by the supervisor.
#[derive(Clone)]
pub struct ConsumerDeps {
    pub store: QueueStore,
    pub handlers: Arc<HandlerRegistry>,
    /// Running tasks and CPU/memory ratios, shared with the heartbeat and the gauge sampler.
    pub usage: Arc<InstanceUsage>,
    /// Most tasks claimed per round trip (`WORKER_PREFETCH`); the batch adapts below it.
    pub prefetch: usize,
    /// Upper bound of one blocking wait.
    pub poll_interval: Duration,
    /// Claim latency observer, when someone measures it.
    pub probe: Option<Arc<dyn ClaimProbe>>,
}

pub struct ConsumerActor {
    /// Position in the pool, so the supervisor can restart the same slot.
    slot: usize,
    /// Unique per start, so the supervisor can tell this consumer from a later one in its slot.
    spawn_id: u64,
    /// Told when this consumer ends and why.
    supervisor: Recipient<ConsumerExited>,
    /// The loop to run, taken when the actor starts.
    consumer: Option<Consumer>,
}

impl ConsumerActor {
    /// A consumer named `name` (`<instance>/c<slot>`, the lease owner of every task it claims).
    pub fn new(
        name: String,
        slot: usize,
        spawn_id: u64,
        deps: ConsumerDeps,
        signal: watch::Receiver<PoolSignal>,
        supervisor: Recipient<ConsumerExited>,
    ) -> Self {
        let consumer = Consumer { name, deps, signal };
        Self {
            slot,
            spawn_id,
            supervisor,
            consumer: Some(consumer),
        }
    }
}

impl Actor for ConsumerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        let span = info_span!("consumer", consumer = %consumer.name);
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

/// The loop itself, separate from the actor so it can be one plain async fn.
pub(super) struct Consumer {
    /// Lease owner name.
    pub name: String,
    pub deps: ConsumerDeps,
    /// Pool control.
    pub signal: watch::Receiver<PoolSignal>,
}

/// Work a batch is sized to take: a P0 task that arrives behind a backlog of short tasks waits at
/// most about this long for a consumer (plus the task each consumer is running).
pub const HOLD_TARGET: Duration = Duration::from_millis(5);
/// A batch still running after this hands its unstarted tasks back, while a long task runs or
/// after a task (the sizing guessed wrong: the tasks got longer).
pub const HOLD_LIMIT: Duration = Duration::from_millis(20);

/// How many tasks the next claim asks for, from how long this consumer's recent tasks took.
#[derive(Debug, Clone)]
pub struct ClaimSize {
    /// Upper bound (`WORKER_PREFETCH`).
    max: usize,
    /// Moving average of the time one task held the consumer (its handler; the acknowledgement
    /// is not counted: the tasks it holds are finished); `None` until a batch was timed, so the
    /// first claim takes one task.
    per_task: Option<Duration>,
}

impl ClaimSize {
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            per_task: None,
        }
    }

    /// Tasks to claim next: as many as fit in [`HOLD_TARGET`], between 1 and the maximum.
    pub fn next(&self) -> usize {
        match self.per_task {
            None => 1,
            Some(d) => {
                let fit = HOLD_TARGET.as_nanos() / d.as_nanos().max(1);
                (fit.min(self.max as u128) as usize).max(1)
            }
        }
    }

    /// Start over at one task (the queue ran dry: the next tasks may be long ones).
    pub fn forget(&mut self) {
        self.per_task = None;
    }

    /// A batch ran `ran` tasks in `elapsed`.
    pub fn observe(&mut self, elapsed: Duration, ran: usize) {
        if ran == 0 {
            return;
        }
        let sample = elapsed / ran as u32;
        self.per_task = Some(match self.per_task {
            // A slower batch counts at once (fairness first); a faster one half.
            Some(old) if sample < old => (old + sample) / 2,
            _ => sample,
        });
    }
}

/// First wait after a failed claim; doubles up to [`CLAIM_BACKOFF_CAP`].
const CLAIM_BACKOFF: Duration = Duration::from_millis(100);
const CLAIM_BACKOFF_CAP: Duration = Duration::from_secs(5);

impl Consumer {
    pub fn draining(&self) -> bool {
        !matches!(*self.signal.borrow(), PoolSignal::Run)
    }

    /// Sleep for `d` unless the pool signal changes first.
    pub async fn pause(&self, d: Duration) {
        let mut signal = self.signal.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = signal.changed() => {}
        }
    }

    async fn consume(mut self) -> Exit {
        debug!("consumer started");
        let mut blocking: Option<Conn> = None;
        let mut backoff = CLAIM_BACKOFF;
        // Set when a claim got no answer: Redis may have leased tasks to us without telling.
        let mut unsure = false;
        let mut size = ClaimSize::new(self.deps.prefetch);
        loop {
            if self.draining() {
                if unsure {
                    let _ = self.recover().await;
                }
                return Exit::Stopped;
            }
            if unsure && !self.recover().await {
                self.pause(backoff).await;
                backoff = (backoff * 2).min(CLAIM_BACKOFF_CAP);
                continue;
            }
            unsure = false;
            let started = Instant::now();
            let claim = match self.deps.store.claim(&self.name, size.next()).await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "claim failed");
                    unsure = true;
                    self.pause(backoff).await;
                    backoff = (backoff * 2).min(CLAIM_BACKOFF_CAP);
                    continue;
                }
            };
            backoff = CLAIM_BACKOFF;
            if let Some(probe) = &self.deps.probe {
                probe.claimed(started.elapsed(), claim.tasks.len());
            }
            report_skipped(&claim.skipped);
            if claim.tasks.is_empty() {
                // What comes after an idle spell may be a different kind of work.
                size.forget();
                self.wait_for_work(&mut blocking).await;
                continue;
            }
            let (exit, ran, busy) = Batch::new(&mut self, claim.tasks).run().await;
            if exit == Exit::Panicked {
                return Exit::Panicked;
            }
            size.observe(busy, ran);
        }
    }

    /// Hand back whatever a claim without an answer may have leased to us (a lost reply costs a
    /// round trip, not a lease). `false` while Redis still can't be asked.
    async fn recover(&self) -> bool {
        match self.deps.store.recover(&self.name).await {
            Ok(handed_back) => {
                if !handed_back.is_empty() {
                    warn!(
                        tasks = handed_back.len(),
                        "handed back tasks whose claim reply was lost"
                    );
                }
                true
            }
            Err(e) => {
                warn!(error = %e, "cannot ask Redis which tasks are leased to this consumer yet");
                false
            }
        }
    }

    /// Block until woken, the poll interval passes, or the pool signal changes.
    async fn wait_for_work(&mut self, blocking: &mut Option<Conn>) {
        if blocking.is_none() {
            match self
                .deps
                .store
                .blocking_connection(self.deps.poll_interval)
                .await
            {
                Ok(c) => *blocking = Some(c),
                Err(e) => {
                    warn!(error = %e, "cannot open the blocking connection");
                    self.pause(Duration::from_secs(1)).await;
                    return;
                }
            }
        }
        let Some(conn) = blocking.as_mut() else {
            return;
        };
        let mut signal = self.signal.clone();
        let store = self.deps.store.clone();
        tokio::select! {
            r = store.wait_for_work(conn, self.deps.poll_interval) => {
                if let Err(e) = r {
                    warn!(error = %e, "blocking wait failed; reconnecting");
                    *blocking = None;
                    self.pause(Duration::from_millis(500)).await;
                }
            }
            _ = signal.changed() => {}
        }
    }
}

/// Ids a claim popped but did not hand out: stubs it dead-lettered count as failed attempts of
/// type `unknown`; stale entries are dropped quietly.
fn report_skipped(skipped: &[crate::queue::TaskOutcome]) {
    for s in skipped {
        if matches!(s.applied, Applied::DeadLettered { .. }) {
            AttemptRecorded {
                task_type: s.type_label(),
                priority: None,
                outcome: s.applied.metric(),
                detail: &s.applied.detail(),
                wait: Duration::ZERO,
                run: Duration::ZERO,
                failure: Some("no_record"),
            }
            .emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_start_at_one_grow_for_tiny_tasks_and_shrink_at_once_for_long_ones() {
        let mut size = ClaimSize::new(64);
        assert_eq!(size.next(), 1, "nothing timed yet");
        size.observe(Duration::from_micros(50), 1);
        assert_eq!(size.next(), 64, "5 ms / 50 us = 100, capped at the maximum");
        size.observe(Duration::from_millis(2), 2);
        assert_eq!(size.next(), 5, "a slower batch counts at once: 5 ms / 1 ms");
        size.observe(Duration::from_micros(100), 1);
        assert_eq!(size.next(), 9, "a faster one half: average 550 us");
        size.observe(Duration::from_secs(2), 1);
        assert_eq!(size.next(), 1, "long tasks are claimed one at a time");
        size.observe(Duration::from_micros(10), 0);
        assert_eq!(size.next(), 1, "a batch that ran nothing says nothing");
        size.observe(Duration::from_micros(10), 1);
        size.forget();
        assert_eq!(size.next(), 1, "after an idle spell, one again");
        assert_eq!(ClaimSize::new(0).max, 1);
    }
}
