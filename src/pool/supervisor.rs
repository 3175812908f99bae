//! SupervisorActor: owns the consumer pool of one instance.
//!
//! A thin actor: it feeds what happens (control reads, consumer exits, timers, stop and shutdown
//! requests) to the pure [`PoolState`] and carries out the [`Effect`]s it answers. actix's own
//! `Supervised` restarts an actor only when it stops, never on a panic, and has no restart limit,
//! so restarts follow the [`RestartPolicy`](super::policy::RestartPolicy) instead.
//!
//! It also runs the queue's maintenance and writes this instance's heartbeat (`chores.rs`), and
//! drains the pool on stop and shutdown: consumers stop claiming, finish running tasks until the
//! deadline, then hand them back.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;
use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};

use super::PoolSignal;
use super::chores::{
    self, HEARTBEAT_EVERY, HISTORY_EVERY, Identity, MAINTENANCE_EVERY, PoolReport,
};
use super::consumer::{ConsumerDeps, ConsumerExited};
use super::policy::RestartPolicy;
use super::slots::Slots;
use super::state::{Effect, PoolState};
use crate::config::WorkerSettings;
use crate::queue::PoolStatus;
use crate::telemetry::events::{ConsumerRestarted, InternalEvent, PoolStatusChanged};

/// How often the operators' pool commands are read from Redis.
const CONTROL_EVERY: Duration = Duration::from_secs(1);

/// A point-in-time view of the pool.
#[derive(Debug, Clone, Serialize)]
pub struct PoolSnapshot {
    pub instance: String,
    pub status: PoolStatus,
    pub consumers: usize,
    pub concurrency: usize,
    pub in_flight: usize,
    pub restarts: u64,
    /// How long the pool has had its current status, seconds (liveness: an `error` that lasts).
    pub status_secs: f64,
}

/// Stop the pool: drain, tasks stay pending. Replies when every consumer has exited.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopPool;

/// Process shutdown: drain, then emit `worker.stopped` and remove the heartbeat.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Ask for a [`PoolSnapshot`].
#[derive(Message)]
#[rtype(result = "PoolSnapshot")]
pub struct GetSnapshot;

/// Read the operators' commands now instead of at the next tick (sent by the API after it
/// records a command, so the local instance reacts at once).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckControl;

/// Periodic jobs; each runs at most once at a time, so a slow Redis never stacks them up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Job {
    Control,
    Maintenance,
    Heartbeat,
    History,
}

pub struct SupervisorActor {
    /// Instance id and drain timeout.
    settings: WorkerSettings,
    /// What every consumer shares (store, handlers, usage).
    deps: ConsumerDeps,
    /// The live consumers.
    slots: Slots,
    /// What the pool does and why.
    state: PoolState,
    /// Run or drain, watched by the current pool's consumers. Replaced on each fresh start, so
    /// consumers of a drained pool keep their drain signal.
    signal: watch::Sender<PoolSignal>,
    /// Callers waiting for the pool to become empty (stop, shutdown).
    drain_waiters: Vec<oneshot::Sender<()>>,
    /// Periodic jobs in flight.
    jobs: HashSet<Job>,
    /// Consumers started again after dying (heartbeat, metrics).
    restarts_total: u64,
    /// The pending end of an escalation back-off: replaced (the old one cancelled) by each new
    /// escalation, so an earlier timer can't end a later back-off early.
    recovery: Option<SpawnHandle>,
    /// This process, for heartbeats.
    identity: Identity,
    /// When the pool entered its current status.
    status_since: Instant,
}

impl SupervisorActor {
    pub fn new(settings: WorkerSettings, deps: ConsumerDeps) -> Self {
        let policy = RestartPolicy::new(settings.max_restarts, settings.restart_window);
        SupervisorActor {
            state: PoolState::new(settings.concurrency, policy),
            identity: Identity::new(&settings.instance_id),
            signal: watch::channel(PoolSignal::Run).0,
            settings,
            deps,
            slots: Slots::new(),
            drain_waiters: Vec::new(),
            jobs: HashSet::new(),
            restarts_total: 0,
            recovery: None,
            status_since: Instant::now(),
        }
    }

    /// Carry out what the state machine asked for, then wake drain waiters if the pool is empty.
    fn execute(&mut self, effects: Vec<Effect>, ctx: &mut Context<Self>) {
        for effect in effects {
            match effect {
                Effect::FillSlots { restarts } => self.fill_slots(restarts, ctx),
                Effect::Respawn { slot } => self.respawn(slot, ctx),
                Effect::Drain => self.drain(),
                Effect::ScheduleRecovery(backoff) => self.schedule_recovery(backoff, ctx),
                Effect::StatusChanged(status) => {
                    self.status_since = Instant::now();
                    PoolStatusChanged {
                        status: status.as_str(),
                        all: &PoolStatus::LABELS,
                    }
                    .emit()
                }
                Effect::AnnounceStarted => self.announce("worker.started", None, ctx),
                Effect::AnnounceStopped => self.announce("worker.stopped", None, ctx),
            }
        }
        if self.slots.is_empty() {
            for w in self.drain_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    fn spawn(&mut self, slot: usize, ctx: &mut Context<Self>) {
        let me = ctx.address().recipient();
        let signal = self.signal.subscribe();
        let instance = self.settings.instance_id.clone();
        self.slots.spawn(slot, &instance, &self.deps, signal, me);
    }

    fn fill_slots(&mut self, restarts: bool, ctx: &mut Context<Self>) {
        if !restarts {
            // A fresh pool: its own signal, so consumers still draining keep theirs.
            self.signal = watch::channel(PoolSignal::Run).0;
        }
        for slot in 0..self.state.concurrency() {
            if !self.slots.contains(slot) {
                if restarts {
                    self.respawn(slot, ctx);
                } else {
                    self.spawn(slot, ctx);
                }
            }
        }
        if !restarts {
            info!(consumers = self.state.concurrency(), "worker pool started");
        }
    }

    fn respawn(&mut self, slot: usize, ctx: &mut Context<Self>) {
        self.restarts_total += 1;
        ConsumerRestarted {
            slot,
            restarts: self.restarts_total,
        }
        .emit();
        self.spawn(slot, ctx);
    }

    fn drain(&mut self) {
        let deadline = Instant::now() + self.settings.shutdown_timeout;
        self.signal.send_replace(PoolSignal::Drain { deadline });
    }

    fn schedule_recovery(&mut self, backoff: Duration, ctx: &mut Context<Self>) {
        error!(
            restarts = self.state.recent_restarts(),
            window_secs = self.settings.restart_window.as_secs_f64(),
            backoff_secs = backoff.as_secs(),
            "consumer restart limit reached; instance in error, backing off"
        );
        if let Some(earlier) = self.recovery.take() {
            ctx.cancel_future(earlier);
        }
        self.recovery = Some(ctx.run_later(backoff, |act, ctx| {
            act.recovery = None;
            let fx = act.state.backoff_over();
            if !fx.is_empty() {
                info!("back-off over; consumer pool restarted");
            }
            act.execute(fx, ctx);
        }));
    }

    fn announce(&self, event: &'static str, reason: Option<&'static str>, ctx: &mut Context<Self>) {
        let fut = chores::announce(
            self.deps.store.clone(),
            event,
            self.settings.instance_id.clone(),
            self.state.concurrency(),
            reason,
        );
        ctx.spawn(fut.into_actor(self));
    }

    /// Run `job` unless it is still running from the last tick.
    fn run_job<F>(&mut self, job: Job, fut: F, ctx: &mut Context<Self>)
    where
        F: ActorFuture<Self, Output = ()> + 'static,
    {
        if self.state.exiting() || !self.jobs.insert(job) {
            return;
        }
        ctx.spawn(fut.map(move |_, act: &mut Self, _| {
            act.jobs.remove(&job);
        }));
    }

    /// Read the operators' commands from Redis and converge on them.
    fn check_control(&mut self, ctx: &mut Context<Self>) {
        let store = self.deps.store.clone();
        let read = async move { store.control().await }
            .into_actor(self)
            .map(|r, act, ctx| {
                let live = act.slots.len();
                let fx = match r {
                    Ok(control) => act
                        .state
                        .apply(control.for_instance(&act.settings.instance_id), live),
                    Err(e) => {
                        let fx = act.state.control_unreadable(live);
                        if !fx.is_empty() {
                            warn!(error = %e, "cannot read pool commands; starting the pool");
                        }
                        fx
                    }
                };
                act.execute(fx, ctx);
            });
        self.run_job(Job::Control, read, ctx);
    }

    fn maintenance(&mut self, ctx: &mut Context<Self>) {
        let fut = chores::maintain(self.deps.store.clone()).into_actor(self);
        self.run_job(Job::Maintenance, fut, ctx);
    }

    /// Add this instance's counts to the charts' history (and sample the queue once a minute).
    fn history(&mut self, ctx: &mut Context<Self>) {
        let fut = chores::history(self.deps.store.clone()).into_actor(self);
        self.run_job(Job::History, fut, ctx);
    }

    /// Catch consumers that died without telling us, then write the heartbeat.
    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        for slot in self.slots.remove_vanished() {
            error!(slot, "consumer vanished");
            let fx = self.state.exited(slot, self.slots.len(), Instant::now());
            self.execute(fx, ctx);
        }
        let report = PoolReport {
            status: self.state.status(),
            consumers: self.slots.len(),
            in_flight: self.deps.usage.in_flight(),
            restarts: self.restarts_total,
            usage: self.deps.usage.ratios(),
        };
        let store = self.deps.store.clone();
        let id = self.identity.clone();
        let fut = async move { chores::beat(store, &id, report).await }.into_actor(self);
        self.run_job(Job::Heartbeat, fut, ctx);
    }

    fn snapshot(&self) -> PoolSnapshot {
        PoolSnapshot {
            instance: self.settings.instance_id.clone(),
            status: self.state.status(),
            consumers: self.slots.len(),
            concurrency: self.state.concurrency(),
            in_flight: self.deps.usage.in_flight(),
            restarts: self.restarts_total,
            status_secs: self.status_since.elapsed().as_secs_f64(),
        }
    }

    fn wait_drained(&mut self, ctx: &mut Context<Self>) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.drain_waiters.push(tx);
        self.execute(vec![], ctx);
        rx
    }
}

impl Actor for SupervisorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        PoolStatusChanged {
            status: self.state.status().as_str(),
            all: &PoolStatus::LABELS,
        }
        .emit();
        // The pool starts once the operators' control state is known (stopped stays stopped).
        self.check_control(ctx);
        ctx.run_interval(CONTROL_EVERY, |act, ctx| act.check_control(ctx));
        ctx.run_interval(MAINTENANCE_EVERY, |act, ctx| act.maintenance(ctx));
        self.heartbeat(ctx);
        ctx.run_interval(HEARTBEAT_EVERY, |act, ctx| act.heartbeat(ctx));
        ctx.run_interval(HISTORY_EVERY, |act, ctx| act.history(ctx));
    }
}

impl Handler<ConsumerExited> for SupervisorActor {
    type Result = ();

    fn handle(&mut self, msg: ConsumerExited, ctx: &mut Self::Context) {
        if !self.slots.remove(msg.slot, msg.spawn_id) {
            return; // an earlier occupant of the slot, already replaced or found dead
        }
        let fx = self
            .state
            .exited(msg.slot, self.slots.len(), Instant::now());
        self.execute(fx, ctx);
    }
}

impl Handler<StopPool> for SupervisorActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopPool, ctx: &mut Self::Context) -> Self::Result {
        let fx = self.state.stop(self.slots.len());
        self.execute(fx, ctx);
        let rx = self.wait_drained(ctx);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<Shutdown> for SupervisorActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        info!(
            timeout_secs = self.settings.shutdown_timeout.as_secs_f64(),
            in_flight = self.deps.usage.in_flight(),
            "shutting down: no new claims; running tasks may finish until the timeout"
        );
        let fx = self.state.shutdown(self.slots.len());
        self.execute(fx, ctx);
        let rx = self.wait_drained(ctx);
        let store = self.deps.store.clone();
        let instance = self.settings.instance_id.clone();
        let consumers = self.state.concurrency();
        Box::pin(async move {
            let _ = rx.await;
            let event = "worker.stopped";
            chores::announce(
                store.clone(),
                event,
                instance.clone(),
                consumers,
                Some("shutdown"),
            )
            .await;
            // The drained pool's last wait times still count in the charts' history.
            if let Err(e) = store.flush_history().await {
                warn!(error = %e, "could not add the last wait-time counts to the history");
            }
            if let Err(e) = store.remove_heartbeat(&instance).await {
                warn!(error = %e, "could not remove the heartbeat; it will expire");
            }
        })
    }
}

impl Handler<GetSnapshot> for SupervisorActor {
    type Result = MessageResult<GetSnapshot>;

    fn handle(&mut self, _: GetSnapshot, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.snapshot())
    }
}

impl Handler<CheckControl> for SupervisorActor {
    type Result = ();

    fn handle(&mut self, _: CheckControl, ctx: &mut Self::Context) {
        self.check_control(ctx);
    }
}
