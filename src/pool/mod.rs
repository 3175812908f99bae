//! The consumer pool of one instance.
//!
//! - [`SupervisorActor`](supervisor::SupervisorActor): owns the pool. Spawns `WORKER_CONCURRENCY`
//!   consumers spread over one arbiter per core, restarts the ones that exit unexpectedly within a
//!   restart-intensity limit, runs queue maintenance (promote due tasks, reclaim lapsed leases),
//!   writes the heartbeat, and drains the pool on stop / shutdown.
//! - [`ConsumerActor`](consumer::ConsumerActor): claims tasks, runs their handler behind a panic
//!   boundary while renewing the lease, and records the outcome.
//!
//! Pool control flows down through a `watch` channel ([`PoolSignal`]); exits flow up as messages.

pub mod consumer;
pub mod supervisor;
pub mod usage;

use std::time::Instant;

/// What the pool tells its consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolSignal {
    /// Claim and run tasks.
    Run,
    /// Stop claiming; finish running tasks until `deadline`, then hand them back.
    Drain { deadline: Instant },
}
