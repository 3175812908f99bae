//! The pool state machine: what the pool of one instance does, as a pure value.
//!
//! ```text
//!            start (control says running)             drained
//!  Stopped ─────────────────────────────▶ Running ◀────────────── Draining(Start)
//!     ▲                                   │  │  ▲                      ▲
//!     │ drained          stop / resize /  │  │  │ back-off over        │ restart / resize
//!     │                  restart          │  │  │                      │
//!  Draining(Stop) ◀───────────────────────┘  └─▶ Backoff (error) ──────┘
//!                     too many restarts ───┘
//!  shutdown from anywhere: Draining(Exit) ─▶ Stopped (and nothing starts again)
//! ```
//!
//! The supervisor feeds it what happened (a control read, a consumer exit, the end of a back-off,
//! a stop or shutdown request) with the number of live consumers, and carries out the
//! [`Effect`]s it answers. Nothing here touches actix, Redis or the clock.

use std::time::{Duration, Instant};

use super::policy::{RestartPolicy, RestartTracker, Verdict};
use crate::queue::{InstanceControl, PoolStatus};

/// Where the pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Consumers are finishing their tasks; `then` says what happens when the last one is gone.
    Draining(AfterDrain),
    Stopped,
    /// The restart limit was hit: nothing restarts until the back-off ends.
    Backoff,
}

/// What a drain leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterDrain {
    /// Stay stopped (a stop command).
    Stop,
    /// Start again (a restart, a new size, or a start that came during a stop).
    Start,
    /// The process is exiting: nothing starts again.
    Exit,
}

/// What the supervisor must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Start consumers in every empty slot below the pool size; `restarts` when they replace
    /// consumers that died (counted as restarts).
    FillSlots { restarts: bool },
    /// Start one consumer again in `slot`.
    Respawn { slot: usize },
    /// Tell every consumer to drain.
    Drain,
    /// Report [`PoolState::backoff_over`] after this long.
    ScheduleRecovery(Duration),
    /// The pool's status changed (log, metric, heartbeat).
    StatusChanged(PoolStatus),
    /// Emit `worker.started`.
    AnnounceStarted,
    /// Emit `worker.stopped`.
    AnnounceStopped,
}

/// The pool of one instance.
#[derive(Debug, Clone)]
pub struct PoolState {
    /// Where it is.
    phase: Phase,
    /// Consumers it runs when running.
    concurrency: usize,
    /// `WORKER_CONCURRENCY`: the size whenever no command sets one.
    default_concurrency: usize,
    /// Restart generations last seen in the control hash; `None` until the first read, so a
    /// restart recorded before this instance started doesn't restart it.
    seen_restart: Option<(u64, u64)>,
    /// Unexpected exits and the back-off they earn.
    restarts: RestartTracker,
    /// Set by [`PoolState::shutdown`]: the process is exiting and nothing starts again.
    exiting: bool,
}

impl PoolState {
    /// A stopped pool; it starts on the first control read (a stopped cluster stays stopped).
    pub fn new(default_concurrency: usize, policy: RestartPolicy) -> Self {
        PoolState {
            phase: Phase::Stopped,
            concurrency: default_concurrency,
            default_concurrency,
            seen_restart: None,
            restarts: RestartTracker::new(policy),
            exiting: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The pool size when running.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The status shown to operators.
    pub fn status(&self) -> PoolStatus {
        match self.phase {
            Phase::Running => PoolStatus::Running,
            Phase::Draining(_) => PoolStatus::Stopping,
            Phase::Stopped => PoolStatus::Stopped,
            Phase::Backoff => PoolStatus::Error,
        }
    }

    /// True once shutdown began: nothing starts any more.
    pub fn exiting(&self) -> bool {
        self.exiting
    }

    fn set_phase(&mut self, phase: Phase, fx: &mut Vec<Effect>) {
        let before = self.status();
        self.phase = phase;
        if self.status() != before {
            fx.push(Effect::StatusChanged(self.status()));
        }
    }

    /// Converge on what the control hash asks of this instance.
    pub fn apply(&mut self, control: InstanceControl, live: usize) -> Vec<Effect> {
        if self.exiting() {
            return vec![];
        }
        let restart = self
            .seen_restart
            .is_some_and(|seen| seen != control.restart_gens);
        self.seen_restart = Some(control.restart_gens);
        if !control.running {
            return self.stop(live);
        }
        let size = control.concurrency.unwrap_or(self.default_concurrency);
        self.start(size, restart, live)
    }

    /// The control hash could not be read. Before the first successful read that means Redis is
    /// down at startup: run with the local configuration (the commands apply once it answers).
    pub fn control_unreadable(&mut self, live: usize) -> Vec<Effect> {
        if !self.exiting && self.seen_restart.is_none() && self.phase == Phase::Stopped && live == 0
        {
            return self.start(self.default_concurrency, false, live);
        }
        vec![]
    }

    fn start(&mut self, size: usize, restart: bool, live: usize) -> Vec<Effect> {
        let mut fx = Vec::new();
        let resize = size != self.concurrency;
        self.concurrency = size;
        match self.phase {
            Phase::Stopped => self.drain_then(AfterDrain::Start, live, &mut fx),
            Phase::Running | Phase::Backoff if restart || resize => {
                self.drain_then(AfterDrain::Start, live, &mut fx)
            }
            Phase::Running | Phase::Backoff => {}
            Phase::Draining(AfterDrain::Exit) => {}
            Phase::Draining(_) => self.phase = Phase::Draining(AfterDrain::Start),
        }
        fx
    }

    /// Drain (tasks stay queued) and stay stopped.
    pub fn stop(&mut self, live: usize) -> Vec<Effect> {
        let mut fx = Vec::new();
        match self.phase {
            Phase::Running | Phase::Backoff => self.drain_then(AfterDrain::Stop, live, &mut fx),
            Phase::Draining(AfterDrain::Start) => self.phase = Phase::Draining(AfterDrain::Stop),
            Phase::Draining(_) | Phase::Stopped => {}
        }
        fx
    }

    /// The process is exiting: drain, and never start again.
    pub fn shutdown(&mut self, live: usize) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.exiting = true;
        self.drain_then(AfterDrain::Exit, live, &mut fx);
        fx
    }

    fn drain_then(&mut self, then: AfterDrain, live: usize, fx: &mut Vec<Effect>) {
        if live == 0 {
            self.finish(then, fx);
            return;
        }
        fx.push(Effect::Drain);
        self.set_phase(Phase::Draining(then), fx);
    }

    fn finish(&mut self, then: AfterDrain, fx: &mut Vec<Effect>) {
        match then {
            AfterDrain::Stop => {
                self.set_phase(Phase::Stopped, fx);
                fx.push(Effect::AnnounceStopped);
            }
            AfterDrain::Start => {
                // A fresh pool starts with a clean restart window.
                self.restarts.recovered();
                self.set_phase(Phase::Running, fx);
                fx.push(Effect::FillSlots { restarts: false });
                fx.push(Effect::AnnounceStarted);
            }
            // The shutdown announces the stop itself, once the heartbeat is gone.
            AfterDrain::Exit => self.set_phase(Phase::Stopped, fx),
        }
    }

    /// A consumer in `slot` ended; `live` consumers remain.
    pub fn exited(&mut self, slot: usize, live: usize, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        match self.phase {
            // A running pool's consumers only end when something went wrong.
            Phase::Running => match self.restarts.on_exit(now) {
                Verdict::Restart => fx.push(Effect::Respawn { slot }),
                Verdict::Escalate { backoff } => {
                    self.set_phase(Phase::Backoff, &mut fx);
                    fx.push(Effect::ScheduleRecovery(backoff));
                }
            },
            Phase::Backoff => {
                self.restarts.on_exit(now);
            }
            Phase::Draining(then) if live == 0 => self.finish(then, &mut fx),
            Phase::Draining(_) | Phase::Stopped => {}
        }
        fx
    }

    /// The escalation back-off is over: refill every empty slot and run again.
    pub fn backoff_over(&mut self) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.phase == Phase::Backoff && !self.exiting {
            self.restarts.recovered();
            self.set_phase(Phase::Running, &mut fx);
            fx.push(Effect::FillSlots { restarts: true });
        }
        fx
    }

    /// Unexpected exits counted in the current restart window.
    pub fn recent_restarts(&self) -> usize {
        self.restarts.recent()
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
