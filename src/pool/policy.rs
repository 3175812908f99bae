//! The restart policy, as a value: tolerate `max_restarts` unexpected consumer exits within
//! `window`; one more escalates to a back-off (the pool reports `error` and restarts nothing),
//! doubling on each escalation up to a cap, and forgotten after a long quiet spell.
//!
//! Pure: the caller passes the clock, so every rule is unit-tested without actix or Redis.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How many unexpected exits an instance tolerates, and how it backs off beyond that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// More than this many restarts ...
    pub max_restarts: usize,
    /// ... within this window escalate.
    pub window: Duration,
    /// First back-off after an escalation; doubles on each further escalation ...
    pub backoff: Duration,
    /// ... up to this. After twice this long without an escalation, the next one starts over
    /// at `backoff`.
    pub backoff_cap: Duration,
}

impl RestartPolicy {
    /// The defaults of the back-off: 30 s doubling to 5 min.
    pub fn new(max_restarts: usize, window: Duration) -> Self {
        RestartPolicy {
            max_restarts,
            window,
            backoff: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(300),
        }
    }
}

/// What to do about one unexpected exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Start the consumer again in its slot.
    Restart,
    /// Too many restarts: restart nothing for `backoff`, then refill the pool.
    Escalate { backoff: Duration },
}

/// The policy plus the exits it has seen.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    /// The rules.
    policy: RestartPolicy,
    /// Exits inside the current window, oldest first.
    recent: VecDeque<Instant>,
    /// The back-off the next escalation gets.
    next_backoff: Duration,
    /// When the last escalation happened (to forget old ones).
    last_escalation: Option<Instant>,
}

impl RestartTracker {
    pub fn new(policy: RestartPolicy) -> Self {
        RestartTracker {
            policy,
            recent: VecDeque::new(),
            next_backoff: policy.backoff,
            last_escalation: None,
        }
    }

    /// Exits counted in the current window.
    pub fn recent(&self) -> usize {
        self.recent.len()
    }

    /// Count an unexpected exit at `now` and say what to do about it.
    pub fn on_exit(&mut self, now: Instant) -> Verdict {
        self.recent.push_back(now);
        while let Some(t) = self.recent.front() {
            if now.duration_since(*t) > self.policy.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() <= self.policy.max_restarts {
            return Verdict::Restart;
        }
        if self
            .last_escalation
            .is_some_and(|t| now.duration_since(t) > self.policy.backoff_cap * 2)
        {
            self.next_backoff = self.policy.backoff;
        }
        let backoff = self.next_backoff;
        self.next_backoff = (backoff * 2).min(self.policy.backoff_cap);
        self.last_escalation = Some(now);
        Verdict::Escalate { backoff }
    }

    /// A back-off ended and the pool was refilled: the window starts empty.
    pub fn recovered(&mut self) {
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy::new(2, Duration::from_secs(10))
    }

    #[test]
    fn restarts_within_the_limit_then_escalates() {
        let t0 = Instant::now();
        let mut r = RestartTracker::new(policy());
        assert_eq!(r.on_exit(t0), Verdict::Restart);
        assert_eq!(r.on_exit(t0 + Duration::from_secs(1)), Verdict::Restart);
        assert_eq!(
            r.on_exit(t0 + Duration::from_secs(2)),
            Verdict::Escalate {
                backoff: Duration::from_secs(30)
            }
        );
    }

    #[test]
    fn exits_outside_the_window_are_forgotten() {
        let t0 = Instant::now();
        let mut r = RestartTracker::new(policy());
        for i in 0..10 {
            // One exit every 6 s: never more than 2 inside a 10 s window.
            assert_eq!(r.on_exit(t0 + Duration::from_secs(6 * i)), Verdict::Restart);
        }
        assert!(r.recent() <= 2);
    }

    #[test]
    fn back_off_doubles_to_the_cap_and_resets_after_a_quiet_spell() {
        let t0 = Instant::now();
        let mut r = RestartTracker::new(policy());
        let mut escalate = |at: Instant| {
            let mut last = Verdict::Restart;
            for k in 0..3 {
                last = r.on_exit(at + Duration::from_millis(k));
            }
            r.recovered();
            last
        };
        let backoff = |v: Verdict| match v {
            Verdict::Escalate { backoff } => backoff.as_secs(),
            Verdict::Restart => 0,
        };
        let seen: Vec<u64> = (0..6)
            .map(|i| backoff(escalate(t0 + Duration::from_secs(60 * i))))
            .collect();
        assert_eq!(seen, [30, 60, 120, 240, 300, 300]);
        // Ten quiet minutes (more than twice the cap): the next escalation starts over.
        assert_eq!(
            backoff(escalate(t0 + Duration::from_secs(60 * 5 + 601))),
            30
        );
    }

    #[test]
    fn recovery_empties_the_window() {
        let t0 = Instant::now();
        let mut r = RestartTracker::new(policy());
        for k in 0..3 {
            r.on_exit(t0 + Duration::from_millis(k));
        }
        r.recovered();
        assert_eq!(r.on_exit(t0 + Duration::from_millis(5)), Verdict::Restart);
    }
}
