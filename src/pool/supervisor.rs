//! SupervisorActor: owns the consumer pool of one instance.
//!
//! actix's own `Supervised` restarts an actor only when it stops, never on a panic, and has no
//! restart limit; so this supervisor does it explicitly, OTP-style:
//! - a consumer that exits unexpectedly (handler panic, or found dead by the liveness check) is
//!   restarted in its slot;
//! - more than `WORKER_MAX_RESTARTS` restarts within `WORKER_RESTART_WINDOW_SECS` escalates: the
//!   instance reports `error`, restarts nothing for a back-off (doubling, capped at 5 min), then
//!   tries the whole pool again.
//!
//! It also runs the queue's maintenance (promote due tasks, reclaim lapsed leases; safe from every
//! instance at once), writes this instance's heartbeat, and drains the pool on stop / shutdown:
//! consumers stop claiming, finish running tasks until the deadline, then hand them back.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_rt::{Arbiter, ArbiterHandle};
use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};

use super::PoolSignal;
use super::consumer::{ConsumerActor, ConsumerDeps, ConsumerExited, Exit};
use super::usage::InstanceUsage;
use crate::config::WorkerSettings;
use crate::queue::{Heartbeat, PoolStatus};
use crate::telemetry::observer::TaskObserver;

/// How often the operators' pool commands are read from Redis.
const CONTROL_EVERY: Duration = Duration::from_secs(1);
/// How often due tasks are promoted and lapsed leases reclaimed.
const MAINTENANCE_EVERY: Duration = Duration::from_millis(500);
/// Tasks moved per maintenance step.
const MAINTENANCE_BATCH: usize = 1_000;
/// How often the heartbeat is written; it expires after `HEARTBEAT_TTL` (about four missed beats).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
const HEARTBEAT_TTL: Duration = Duration::from_secs(10);
/// First back-off after the restart limit is hit; doubles on each escalation up to the cap.
const ESCALATION_BACKOFF: Duration = Duration::from_secs(30);
const ESCALATION_BACKOFF_CAP: Duration = Duration::from_secs(300);

/// A point-in-time view of the pool.
#[derive(Debug, Clone, Serialize)]
pub struct PoolSnapshot {
    pub instance: String,
    pub status: PoolStatus,
    pub consumers: usize,
    pub concurrency: usize,
    pub in_flight: usize,
    pub restarts: u64,
}

/// Start the pool (no-op when running). `concurrency` replaces `WORKER_CONCURRENCY` when set.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartPool {
    pub concurrency: Option<usize>,
}

/// Stop the pool: drain, tasks stay pending. Replies when every consumer has exited.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopPool;

/// Process shutdown: drain like `StopPool`, stop maintenance and heartbeats, remove the heartbeat.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Ask for a [`PoolSnapshot`].
#[derive(Message)]
#[rtype(result = "PoolSnapshot")]
pub struct GetSnapshot;

pub struct SupervisorActor {
    /// Instance id, concurrency, timeouts, restart limits.
    settings: WorkerSettings,
    /// Shared by every consumer; the supervisor also uses its store for maintenance/heartbeats.
    deps: ConsumerDeps,
    /// One arbiter (thread) per core; consumers are spread over them round-robin.
    arbiters: Vec<ArbiterHandle>,
    /// Live consumers by slot.
    /// Live consumers by slot, with the spawn id each was started with: an exit report that
    /// names another spawn id is about an earlier occupant of the slot and is ignored.
    consumers: HashMap<usize, (Addr<ConsumerActor>, u64)>,
    /// Current pool size.
    concurrency: usize,
    /// Pool control for the current generation.
    control: watch::Sender<PoolSignal>,
    /// Bumped on every start, so exits of an earlier pool are not mistaken for crashes.
    generation: u64,
    /// Source of spawn ids (unique per started consumer).
    next_spawn: u64,
    status: PoolStatus,
    /// Restart times inside the intensity window.
    recent_restarts: VecDeque<Instant>,
    /// Restarts since the process started (heartbeat, metrics).
    restarts_total: u64,
    /// Next escalation back-off and when the last escalation happened.
    escalation_backoff: Duration,
    last_escalation: Option<Instant>,
    /// Callers waiting for the pool to become empty (stop, shutdown).
    drain_waiters: Vec<oneshot::Sender<()>>,
    /// Set on process shutdown: no more restarts, maintenance or heartbeats.
    shutting_down: bool,
    /// Maintenance / heartbeat / control read still in progress (never run two at once).
    maintenance_busy: bool,
    heartbeat_busy: bool,
    control_busy: bool,
    /// Restart generations (cluster, this instance) last seen in the `control` hash; `None`
    /// until the first read, so an old restart command doesn't restart a new instance.
    seen_restart: Option<(u64, u64)>,
    started_at: String,
    host: String,
}

impl SupervisorActor {
    pub fn new(settings: WorkerSettings, deps: ConsumerDeps) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        // One per core, whatever the starting size: the pool can be resized later.
        let arbiters = (0..cores.max(1)).map(|_| Arbiter::new().handle()).collect();
        let (control, _) = watch::channel(PoolSignal::Run);
        Self {
            concurrency: settings.concurrency,
            settings,
            deps,
            arbiters,
            consumers: HashMap::new(),
            control,
            generation: 0,
            next_spawn: 0,
            status: PoolStatus::Stopped,
            recent_restarts: VecDeque::new(),
            restarts_total: 0,
            escalation_backoff: ESCALATION_BACKOFF,
            last_escalation: None,
            drain_waiters: Vec::new(),
            shutting_down: false,
            maintenance_busy: false,
            heartbeat_busy: false,
            control_busy: false,
            seen_restart: None,
            started_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            host: hostname::get()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
        }
    }

    fn spawn_consumer(&mut self, slot: usize, ctx: &mut Context<Self>) {
        let arbiter = &self.arbiters[slot % self.arbiters.len()];
        let instance = self.settings.instance_id.clone();
        self.next_spawn += 1;
        let spawn_id = self.next_spawn;
        let deps = self.deps.clone();
        let control = self.control.subscribe();
        let me = ctx.address().recipient();
        let addr = ConsumerActor::start_in_arbiter(arbiter, move |_| {
            ConsumerActor::new(&instance, slot, spawn_id, deps, control, me)
        });
        self.consumers.insert(slot, (addr, spawn_id));
    }

    fn start_pool(&mut self, ctx: &mut Context<Self>) {
        self.generation += 1;
        let (control, _) = watch::channel(PoolSignal::Run);
        self.control = control;
        self.status = PoolStatus::Running;
        for slot in 0..self.concurrency {
            self.spawn_consumer(slot, ctx);
        }
        info!(
            consumers = self.concurrency,
            instance = %self.settings.instance_id,
            "worker pool started"
        );
        self.emit_worker_event("worker.started", ctx);
    }

    fn drain(&mut self) {
        if self.status == PoolStatus::Running || self.status == PoolStatus::Error {
            self.status = PoolStatus::Stopping;
        }
        let deadline = Instant::now() + self.settings.shutdown_timeout;
        self.control.send_replace(PoolSignal::Drain { deadline });
    }

    fn notify_if_drained(&mut self, ctx: &mut Context<Self>) {
        if !self.consumers.is_empty() {
            return;
        }
        if self.status == PoolStatus::Stopping {
            self.status = PoolStatus::Stopped;
            info!("worker pool stopped");
            if !self.shutting_down {
                // On shutdown the Shutdown reply emits it, so it is sent before the process exits.
                self.emit_worker_event("worker.stopped", ctx);
            }
        }
        for w in self.drain_waiters.drain(..) {
            let _ = w.send(());
        }
    }

    fn emit_worker_event(&self, event: &'static str, ctx: &mut Context<Self>) {
        let store = self.deps.store.clone();
        let mut body = serde_json::Map::new();
        body.insert("instance".into(), self.settings.instance_id.clone().into());
        body.insert("consumers".into(), self.concurrency.into());
        ctx.spawn(
            async move {
                if let Err(e) = store.emit_event(event, None, body).await {
                    warn!(error = %e, event, "could not emit worker event");
                }
            }
            .into_actor(self),
        );
    }

    /// A consumer died unexpectedly: restart it, unless the restart limit says back off.
    fn on_crash(&mut self, slot: usize, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.recent_restarts.push_back(now);
        while let Some(t) = self.recent_restarts.front() {
            if now.duration_since(*t) > self.settings.restart_window {
                self.recent_restarts.pop_front();
            } else {
                break;
            }
        }
        if self.status == PoolStatus::Error {
            return; // already backing off; the recovery restarts every empty slot
        }
        if self.recent_restarts.len() > self.settings.max_restarts {
            if self
                .last_escalation
                .is_some_and(|t| t.elapsed() > ESCALATION_BACKOFF_CAP * 2)
            {
                self.escalation_backoff = ESCALATION_BACKOFF;
            }
            let backoff = self.escalation_backoff;
            self.escalation_backoff = (backoff * 2).min(ESCALATION_BACKOFF_CAP);
            self.last_escalation = Some(now);
            self.status = PoolStatus::Error;
            error!(
                restarts = self.recent_restarts.len(),
                window_secs = self.settings.restart_window.as_secs_f64(),
                backoff_secs = backoff.as_secs(),
                "consumer restart limit reached; instance in error, backing off"
            );
            ctx.run_later(backoff, |act, ctx| act.recover(ctx));
            return;
        }
        self.restart_consumer(slot, ctx);
    }

    fn restart_consumer(&mut self, slot: usize, ctx: &mut Context<Self>) {
        self.restarts_total += 1;
        self.deps.observer.consumer_restarted();
        warn!(slot, restarts = self.restarts_total, "restarting consumer");
        self.spawn_consumer(slot, ctx);
    }

    /// End of an escalation back-off: refill every empty slot and report running again.
    fn recover(&mut self, ctx: &mut Context<Self>) {
        if self.status != PoolStatus::Error || self.shutting_down {
            return;
        }
        self.recent_restarts.clear();
        self.status = PoolStatus::Running;
        for slot in 0..self.concurrency {
            if !self.consumers.contains_key(&slot) {
                self.restart_consumer(slot, ctx);
            }
        }
        info!("back-off over; consumer pool restarted");
    }

    fn maintenance(&mut self, ctx: &mut Context<Self>) {
        if self.maintenance_busy || self.shutting_down {
            return;
        }
        self.maintenance_busy = true;
        let store = self.deps.store.clone();
        let observer = self.deps.observer.clone();
        ctx.spawn(
            async move {
                match store.promote_due(MAINTENANCE_BATCH).await {
                    Ok(n) if n > 0 => tracing::debug!(promoted = n, "due tasks promoted"),
                    Ok(_) => {}
                    Err(e) => {
                        observer.redis_error();
                        warn!(error = %e, "promoting due tasks failed");
                    }
                }
                match store.reclaim(MAINTENANCE_BATCH).await {
                    Ok((requeued, dead)) if requeued > 0 || !dead.is_empty() => {
                        observer.reclaimed(requeued);
                        for ty in &dead {
                            observer.dead_lettered_on_reclaim(ty.parse().ok());
                        }
                        warn!(
                            requeued,
                            dead_lettered = dead.len(),
                            "reclaimed tasks with lapsed leases"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => {
                        observer.redis_error();
                        warn!(error = %e, "reclaiming lapsed leases failed");
                    }
                }
            }
            .into_actor(self)
            .map(|_, act, _| act.maintenance_busy = false),
        );
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        // Catch consumers that died without telling us (a panic outside the handler boundary).
        let dead: Vec<usize> = self
            .consumers
            .iter()
            .filter(|(_, (a, _))| !a.connected())
            .map(|(s, _)| *s)
            .collect();
        for slot in dead {
            self.consumers.remove(&slot);
            if self.status == PoolStatus::Running {
                error!(slot, "consumer vanished");
                self.on_crash(slot, ctx);
            }
        }
        self.notify_if_drained(ctx);
        if self.heartbeat_busy || self.shutting_down {
            return;
        }
        self.heartbeat_busy = true;
        let (cpu, mem) = self
            .deps
            .usage
            .ratios
            .lock()
            .map(|r| *r)
            .unwrap_or((0.0, 0.0));
        let hb = Heartbeat {
            instance: self.settings.instance_id.clone(),
            host: self.host.clone(),
            status: self.status.as_str().to_string(),
            consumers: self.consumers.len() as u64,
            in_flight: self.deps.in_flight.load(Ordering::Relaxed) as u64,
            restarts: self.restarts_total,
            started_at: self.started_at.clone(),
            last_heartbeat: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            pid: std::process::id() as u64,
            cpu_percent: cpu * 100.0,
            memory_percent: mem * 100.0,
        };
        let store = self.deps.store.clone();
        let observer = self.deps.observer.clone();
        ctx.spawn(
            async move {
                if let Err(e) = store.heartbeat(&hb, HEARTBEAT_TTL).await {
                    observer.redis_error();
                    warn!(error = %e, "heartbeat failed");
                }
            }
            .into_actor(self)
            .map(|_, act, _| act.heartbeat_busy = false),
        );
    }

    /// Start the pool (or, with `restart`, drain it and start it again), at `concurrency` when
    /// given. A running pool of the right size is left alone unless `restart`.
    fn start_or_restart(
        &mut self,
        concurrency: Option<usize>,
        restart: bool,
        ctx: &mut Context<Self>,
    ) {
        if self.shutting_down {
            return;
        }
        let resize = concurrency.is_some_and(|n| n > 0 && n != self.concurrency);
        if let Some(n) = concurrency.filter(|n| *n > 0) {
            self.concurrency = n;
        }
        if self.status == PoolStatus::Running && !resize && !restart {
            return;
        }
        if !self.consumers.is_empty() {
            // A new size, a restart, or leftovers of an errored pool: drain, then start afresh.
            self.drain();
        }
        if self.consumers.is_empty() {
            self.start_pool(ctx);
            return;
        }
        let rx = self.wait_drained();
        ctx.spawn(
            async move {
                let _ = rx.await;
            }
            .into_actor(self)
            .map(|_, act, ctx| {
                if act.consumers.is_empty() && act.status != PoolStatus::Running {
                    act.start_pool(ctx);
                }
            }),
        );
    }

    /// Read the operators' commands from Redis and converge on them.
    fn check_control(&mut self, ctx: &mut Context<Self>) {
        if self.control_busy || self.shutting_down {
            return;
        }
        self.control_busy = true;
        let store = self.deps.store.clone();
        ctx.spawn(
            async move { store.control().await }
                .into_actor(self)
                .map(|r, act, ctx| {
                    act.control_busy = false;
                    match r {
                        Ok(map) => act.apply_control(&map, ctx),
                        Err(e) => {
                            act.deps.observer.redis_error();
                            if act.seen_restart.is_none()
                                && act.status == PoolStatus::Stopped
                                && act.consumers.is_empty()
                            {
                                // Redis is down at startup: run; the commands apply once it's
                                // back (the first successful read only records the restart
                                // generations, it doesn't restart).
                                warn!(error = %e, "cannot read pool commands; starting the pool");
                                act.start_or_restart(None, false, ctx);
                            }
                        }
                    }
                }),
        );
    }

    fn apply_control(&mut self, map: &HashMap<String, String>, ctx: &mut Context<Self>) {
        let id = &self.settings.instance_id;
        let get = |k: &str| map.get(&format!("{k}:{id}")).or_else(|| map.get(k));
        let generation = |k: &str| map.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let running = get("state").is_none_or(|s| s != "stopped");
        let concurrency = get("concurrency").and_then(|v| v.parse::<usize>().ok());
        let gens = (
            generation("restart_gen"),
            generation(&format!("restart_gen:{id}")),
        );
        let restart = self.seen_restart.is_some_and(|seen| seen != gens);
        self.seen_restart = Some(gens);
        if !running {
            if matches!(self.status, PoolStatus::Running | PoolStatus::Error) {
                info!("stopping the pool (operator command); tasks stay pending");
                self.drain();
                self.notify_if_drained(ctx);
            }
            return;
        }
        if restart {
            info!("restarting the pool (operator command)");
        }
        if restart
            || self.status == PoolStatus::Stopped
            || concurrency.is_some_and(|n| n != self.concurrency)
        {
            self.start_or_restart(concurrency, restart, ctx);
        }
    }

    fn snapshot(&self) -> PoolSnapshot {
        PoolSnapshot {
            instance: self.settings.instance_id.clone(),
            status: self.status,
            consumers: self.consumers.len(),
            concurrency: self.concurrency,
            in_flight: self.deps.in_flight.load(Ordering::Relaxed),
            restarts: self.restarts_total,
        }
    }

    fn wait_drained(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.drain_waiters.push(tx);
        rx
    }
}

impl Actor for SupervisorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // The pool starts once the operators' control state is known (stopped stays stopped).
        self.check_control(ctx);
        ctx.run_interval(CONTROL_EVERY, |act, ctx| act.check_control(ctx));
        ctx.run_interval(MAINTENANCE_EVERY, |act, ctx| act.maintenance(ctx));
        self.heartbeat(ctx);
        ctx.run_interval(HEARTBEAT_EVERY, |act, ctx| act.heartbeat(ctx));
    }
}

impl Handler<ConsumerExited> for SupervisorActor {
    type Result = ();

    fn handle(&mut self, msg: ConsumerExited, ctx: &mut Self::Context) {
        if self.consumers.get(&msg.slot).map(|(_, id)| *id) != Some(msg.spawn_id) {
            return; // an earlier occupant of the slot, already replaced or found dead
        }
        self.consumers.remove(&msg.slot);
        let unexpected = msg.exit == Exit::Panicked || self.status == PoolStatus::Running;
        if unexpected && !self.shutting_down && self.status != PoolStatus::Stopping {
            self.on_crash(msg.slot, ctx);
        }
        self.notify_if_drained(ctx);
    }
}

impl Handler<StartPool> for SupervisorActor {
    type Result = ();

    fn handle(&mut self, msg: StartPool, ctx: &mut Self::Context) {
        self.start_or_restart(msg.concurrency, false, ctx);
    }
}

impl Handler<StopPool> for SupervisorActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopPool, ctx: &mut Self::Context) -> Self::Result {
        self.drain();
        let rx = self.wait_drained();
        self.notify_if_drained(ctx);
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
            in_flight = self.deps.in_flight.load(Ordering::Relaxed),
            "shutting down: no new claims; running tasks may finish until the timeout"
        );
        self.shutting_down = true;
        self.drain();
        let rx = self.wait_drained();
        self.notify_if_drained(ctx);
        let store = self.deps.store.clone();
        let instance = self.settings.instance_id.clone();
        let mut body = serde_json::Map::new();
        body.insert("instance".into(), instance.clone().into());
        body.insert("reason".into(), "shutdown".into());
        Box::pin(async move {
            let _ = rx.await;
            if let Err(e) = store.emit_event("worker.stopped", None, body).await {
                warn!(error = %e, "could not emit worker.stopped");
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

/// Build the shared consumer dependencies from a store and handlers.
pub fn consumer_deps(
    store: crate::queue::QueueStore,
    handlers: Arc<crate::handlers::HandlerRegistry>,
    observer: Arc<dyn TaskObserver>,
    settings: &WorkerSettings,
) -> ConsumerDeps {
    ConsumerDeps {
        store,
        handlers,
        observer,
        in_flight: Arc::new(AtomicUsize::new(0)),
        usage: Arc::new(InstanceUsage::default()),
        prefetch: settings.prefetch,
        poll_interval: settings.poll_interval,
    }
}

/// Read the operators' commands now instead of at the next tick (sent by the API after it
/// records a command, so the local instance reacts at once).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckControl;

impl Handler<CheckControl> for SupervisorActor {
    type Result = ();

    fn handle(&mut self, _: CheckControl, ctx: &mut Self::Context) {
        self.check_control(ctx);
    }
}
