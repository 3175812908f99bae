//! The live consumers of one instance, by slot, spread round-robin over one arbiter per core.
//!
//! Each arbiter is one OS thread with a single-threaded runtime, so handler futures need not be
//! `Send`; a handler that blocks its thread freezes every consumer on that arbiter.

use std::collections::HashMap;

use actix::prelude::*;
use actix_rt::{Arbiter, ArbiterHandle};
use tokio::sync::watch;

use super::PoolSignal;
use super::consumer::{ConsumerActor, ConsumerDeps, ConsumerExited};

/// The consumers by slot.
pub struct Slots {
    /// One arbiter (thread) per core; slot `i` runs on arbiter `i mod n`.
    arbiters: Vec<ArbiterHandle>,
    /// Live consumers by slot, with the spawn id each was started with: an exit report naming
    /// another spawn id is about an earlier occupant of the slot and is ignored.
    live: HashMap<usize, (Addr<ConsumerActor>, u64)>,
    /// Source of spawn ids (unique per started consumer).
    next_spawn: u64,
}

impl Slots {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        // One per core, whatever the starting size: the pool can be resized later.
        let arbiters = (0..cores.max(1)).map(|_| Arbiter::new().handle()).collect();
        Slots {
            arbiters,
            live: HashMap::new(),
            next_spawn: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn contains(&self, slot: usize) -> bool {
        self.live.contains_key(&slot)
    }

    /// Start a consumer in `slot` (replacing any record of an earlier one).
    pub fn spawn(
        &mut self,
        slot: usize,
        instance: &str,
        deps: &ConsumerDeps,
        signal: watch::Receiver<PoolSignal>,
        supervisor: Recipient<ConsumerExited>,
    ) {
        let arbiter = &self.arbiters[slot % self.arbiters.len()];
        self.next_spawn += 1;
        let spawn_id = self.next_spawn;
        let name = format!("{instance}/c{slot}");
        let deps = deps.clone();
        let addr = ConsumerActor::start_in_arbiter(arbiter, move |_| {
            ConsumerActor::new(name, slot, spawn_id, deps, signal, supervisor)
        });
        self.live.insert(slot, (addr, spawn_id));
    }

    /// Forget the consumer of an exit report; `false` when the report is about an earlier
    /// occupant of the slot (already replaced or found dead).
    pub fn remove(&mut self, slot: usize, spawn_id: u64) -> bool {
        if self.live.get(&slot).map(|(_, id)| *id) != Some(spawn_id) {
            return false;
        }
        self.live.remove(&slot);
        true
    }

    /// Forget consumers whose actor is gone without reporting (a panic outside the loop's
    /// boundary); answers their slots.
    pub fn remove_vanished(&mut self) -> Vec<usize> {
        let dead: Vec<usize> = self
            .live
            .iter()
            .filter(|(_, (addr, _))| !addr.connected())
            .map(|(slot, _)| *slot)
            .collect();
        for slot in &dead {
            self.live.remove(slot);
        }
        dead
    }
}
