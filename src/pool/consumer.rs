//! ConsumerActor: claims tasks and runs them.
//!
//! The actor hosts one async loop. Each turn claims up to `WORKER_PREFETCH` tasks in one atomic
//! script; with nothing to do it blocks on its own Redis connection (BLPOP on the wake list,
//! bounded by `WORKER_POLL_INTERVAL`), so an idle pool costs no polling and a new task is picked
//! up within a round trip. Running a claimed batch (handlers, leases, recording outcomes) is
//! `attempt.rs`.
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
use redis::aio::MultiplexedConnection;
use tokio::sync::watch;
use tracing::{Instrument, debug, info_span, warn};

use super::PoolSignal;
use super::attempt::Batch;
use super::usage::InstanceUsage;
use crate::handlers::HandlerRegistry;
use crate::queue::{Applied, QueueStore};
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
    /// Tasks claimed per round trip.
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
        let mut blocking: Option<MultiplexedConnection> = None;
        let mut backoff = CLAIM_BACKOFF;
        // Set when a claim got no answer: Redis may have leased tasks to us without telling.
        let mut unsure = false;
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
            let claim = match self.deps.store.claim(&self.name, self.deps.prefetch).await {
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
                self.wait_for_work(&mut blocking).await;
                continue;
            }
            if Batch::new(&mut self, claim.tasks).run().await == Exit::Panicked {
                return Exit::Panicked;
            }
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
