//! The consumer pool of one instance.
//!
//! | file | holds |
//! |---|---|
//! | `policy.rs` | the restart policy as a value (n exits in a window, then back off) |
//! | `state.rs` | the pool state machine (running, draining, stopped, error) as a pure value |
//! | `supervisor.rs` | [`SupervisorActor`](supervisor::SupervisorActor): a thin actor feeding what happens to the state machine and carrying out its effects |
//! | `slots.rs` | the live consumers by slot, spread over one arbiter per core |
//! | `chores.rs` | the supervisor's periodic work: queue maintenance and the heartbeat |
//! | `consumer.rs` | [`ConsumerActor`](consumer::ConsumerActor): the claim loop and the blocking wait |
//! | `attempt.rs` | running one claimed batch: handlers, leases, cancel, drain |
//! | `record.rs` | writing a batch's outcomes and learning what the queue applied |
//! | `usage.rs` | what the pool shares with the gauge sampler and the heartbeat |
//!
//! Pool control flows down through a `watch` channel ([`PoolSignal`]); exits flow up as messages.

mod attempt;
mod chores;
pub mod consumer;
pub mod policy;
mod record;
mod slots;
pub mod state;
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
