//! Unit tests of the pool state machine: every transition, without actix or Redis.

use std::time::{Duration, Instant};

use super::*;
use crate::queue::{InstanceControl, PoolStatus};

fn pool() -> PoolState {
    PoolState::new(4, RestartPolicy::new(2, Duration::from_secs(10)))
}

fn run(concurrency: Option<usize>, gens: (u64, u64)) -> InstanceControl {
    InstanceControl {
        running: true,
        concurrency,
        restart_gens: gens,
    }
}

fn stopped() -> InstanceControl {
    InstanceControl {
        running: false,
        concurrency: None,
        restart_gens: (0, 0),
    }
}

/// A pool started by its first control read, with `live` consumers running.
fn running() -> PoolState {
    let mut p = pool();
    p.apply(run(None, (0, 0)), 0);
    p
}

#[test]
fn the_first_control_read_starts_the_pool_at_its_default_size() {
    let mut p = pool();
    assert_eq!(p.status(), PoolStatus::Stopped);
    let fx = p.apply(run(None, (7, 1)), 0);
    assert_eq!(
        fx,
        [
            Effect::StatusChanged(PoolStatus::Running),
            Effect::FillSlots { restarts: false },
            Effect::AnnounceStarted
        ]
    );
    assert_eq!(p.concurrency(), 4);
    // The restart generations seen first are not a restart.
    assert!(p.apply(run(None, (7, 1)), 4).is_empty());
}

#[test]
fn a_stopped_cluster_stays_stopped_on_start_up() {
    let mut p = pool();
    assert!(p.apply(stopped(), 0).is_empty());
    assert_eq!(p.status(), PoolStatus::Stopped);
}

#[test]
fn redis_down_at_start_up_runs_the_local_configuration_once() {
    let mut p = pool();
    let fx = p.control_unreadable(0);
    assert!(fx.contains(&Effect::FillSlots { restarts: false }));
    assert_eq!(p.status(), PoolStatus::Running);
    // Later outages change nothing.
    assert!(p.control_unreadable(4).is_empty());
    let mut p = running();
    assert!(p.control_unreadable(4).is_empty());
}

#[test]
fn stop_drains_then_stops_and_announces() {
    let mut p = running();
    assert_eq!(
        p.apply(stopped(), 4),
        [Effect::Drain, Effect::StatusChanged(PoolStatus::Stopping)]
    );
    let t = Instant::now();
    assert!(p.exited(0, 3, t).is_empty(), "drain exits are expected");
    assert_eq!(
        p.exited(1, 0, t),
        [
            Effect::StatusChanged(PoolStatus::Stopped),
            Effect::AnnounceStopped
        ]
    );
    assert!(p.apply(stopped(), 0).is_empty());
}

#[test]
fn restart_and_resize_drain_then_start_at_the_new_size() {
    let mut p = running();
    let fx = p.apply(run(None, (1, 0)), 4);
    assert_eq!(
        fx,
        [Effect::Drain, Effect::StatusChanged(PoolStatus::Stopping)]
    );
    let fx = p.exited(0, 0, Instant::now());
    assert!(fx.contains(&Effect::FillSlots { restarts: false }));
    assert_eq!(p.status(), PoolStatus::Running);
    p.apply(run(Some(8), (1, 0)), 4);
    assert_eq!((p.status(), p.concurrency()), (PoolStatus::Stopping, 8));
}

#[test]
fn start_without_a_size_returns_to_the_default() {
    let mut p = running();
    p.apply(run(Some(8), (0, 0)), 4);
    p.exited(0, 0, Instant::now());
    assert_eq!(p.concurrency(), 8);
    p.apply(run(None, (0, 0)), 8);
    assert_eq!(
        p.concurrency(),
        4,
        "a command without a size means WORKER_CONCURRENCY"
    );
}

#[test]
fn a_start_during_a_stop_starts_again_once_drained() {
    let mut p = running();
    p.apply(stopped(), 4);
    assert!(p.apply(run(None, (0, 0)), 4).is_empty());
    let fx = p.exited(0, 0, Instant::now());
    assert!(fx.contains(&Effect::FillSlots { restarts: false }));
    assert_eq!(p.status(), PoolStatus::Running);
}

#[test]
fn crashes_restart_their_slot_until_the_limit_then_back_off() {
    let mut p = running();
    let t = Instant::now();
    assert_eq!(p.exited(2, 3, t), [Effect::Respawn { slot: 2 }]);
    assert_eq!(p.exited(3, 3, t), [Effect::Respawn { slot: 3 }]);
    assert_eq!(
        p.exited(1, 3, t),
        [
            Effect::StatusChanged(PoolStatus::Error),
            Effect::ScheduleRecovery(Duration::from_secs(30))
        ]
    );
    // While backing off, nothing restarts.
    assert!(p.exited(0, 2, t).is_empty());
    assert_eq!(
        p.backoff_over(),
        [
            Effect::StatusChanged(PoolStatus::Running),
            Effect::FillSlots { restarts: true }
        ]
    );
    assert_eq!(p.recent_restarts(), 0);
    assert!(p.backoff_over().is_empty(), "only a back-off can end");
}

#[test]
fn an_operator_can_stop_or_restart_a_pool_in_error() {
    let mut p = running();
    let t = Instant::now();
    for slot in 0..3 {
        p.exited(slot, 1, t);
    }
    assert_eq!(p.status(), PoolStatus::Error);
    p.apply(stopped(), 1);
    p.exited(3, 0, t);
    assert_eq!(p.status(), PoolStatus::Stopped);
    assert!(
        p.backoff_over().is_empty(),
        "a late recovery doesn't restart a stopped pool"
    );
}

#[test]
fn shutdown_drains_and_nothing_starts_afterwards() {
    let mut p = running();
    assert_eq!(
        p.shutdown(4),
        [Effect::Drain, Effect::StatusChanged(PoolStatus::Stopping)]
    );
    assert!(p.apply(run(None, (5, 5)), 4).is_empty());
    assert_eq!(
        p.exited(0, 0, Instant::now()),
        [Effect::StatusChanged(PoolStatus::Stopped)]
    );
    assert!(p.exiting());
    assert!(p.apply(run(None, (6, 6)), 0).is_empty());
    assert!(p.control_unreadable(0).is_empty());
}
