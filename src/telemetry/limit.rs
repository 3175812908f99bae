//! Deduplication and rate limiting of Sentry events per fingerprint, so one recurring error (a
//! flapping dependency, a client retrying a bad request) cannot flood the project or the quota.
//!
//! At most [`EVENTS_PER_WINDOW`] events with the same fingerprint are sent per [`WINDOW`]
//! (fixed windows, starting at the first event of the fingerprint); later ones are dropped and
//! counted, and the next event let through carries the count as `extra.suppressed`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sentry::protocol::Event;

/// Events per fingerprint sent in one [`WINDOW`]: enough to see that an error recurs and with
/// which details, few enough that a flood costs five events.
pub const EVENTS_PER_WINDOW: u32 = 5;
/// Length of a rate-limit window.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// Fingerprints remembered before expired ones are forgotten (bounds the memory of the limiter).
const MAX_TRACKED: usize = 1024;

/// One fingerprint's window.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// When the current window began.
    start: Instant,
    /// Events let through in the current window.
    sent: u32,
    /// Events dropped since the last one let through.
    suppressed: u64,
}

/// The per-fingerprint limiter used by Sentry's `before_send`.
#[derive(Debug)]
pub struct Limiter {
    /// Events allowed per fingerprint and window.
    limit: u32,
    /// Window length.
    window: Duration,
    /// Fingerprint -> its window.
    slots: Mutex<HashMap<String, Slot>>,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new(EVENTS_PER_WINDOW, WINDOW)
    }
}

impl Limiter {
    /// A limiter letting `limit` events per fingerprint through per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an event with `fingerprint` may be sent at `now`: `Some(n)` with the number of
    /// events dropped since the previous one sent, or `None` to drop this one.
    pub fn admit(&self, fingerprint: &str, now: Instant) -> Option<u64> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.len() >= MAX_TRACKED && !slots.contains_key(fingerprint) {
            let window = self.window;
            slots.retain(|_, s| now.duration_since(s.start) < window || s.suppressed > 0);
        }
        let slot = slots.entry(fingerprint.to_string()).or_insert(Slot {
            start: now,
            sent: 0,
            suppressed: 0,
        });
        if now.duration_since(slot.start) >= self.window {
            slot.start = now;
            slot.sent = 0;
        }
        if slot.sent < self.limit {
            slot.sent += 1;
            Some(std::mem::take(&mut slot.suppressed))
        } else {
            slot.suppressed += 1;
            None
        }
    }

    /// [`Self::admit`] for a Sentry event: the event (with `extra.suppressed` when earlier
    /// duplicates were dropped) or `None` to drop it.
    pub fn filter(&self, mut event: Event<'static>, now: Instant) -> Option<Event<'static>> {
        let suppressed = self.admit(&fingerprint(&event), now)?;
        if suppressed > 0 {
            event.extra.insert("suppressed".into(), suppressed.into());
        }
        Some(event)
    }
}

/// What makes two events "the same": the event's own fingerprint when set (other than Sentry's
/// `{{ default }}`), else its message or first exception (type and value) plus its logger (the
/// `tracing` target).
pub fn fingerprint(event: &Event<'_>) -> String {
    let custom: Vec<&str> = event
        .fingerprint
        .iter()
        .map(|f| f.as_ref())
        .filter(|f| *f != "{{ default }}")
        .collect();
    if !custom.is_empty() {
        return custom.join("\u{1f}");
    }
    let what = match (&event.message, event.exception.values.first()) {
        (Some(m), _) => m.clone(),
        (None, Some(e)) => format!("{}: {}", e.ty, e.value.as_deref().unwrap_or("")),
        (None, None) => String::new(),
    };
    format!("{what}\u{1f}{}", event.logger.as_deref().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(message: &str, logger: &str) -> Event<'static> {
        Event {
            message: Some(message.into()),
            logger: Some(logger.into()),
            ..Default::default()
        }
    }

    #[test]
    fn at_most_the_limit_per_window_then_the_count_of_dropped_ones() {
        let limiter = Limiter::new(5, WINDOW);
        let t0 = Instant::now();
        let sent: Vec<_> = (0..20)
            .filter_map(|i| {
                limiter.filter(event("boom", "ops_worker::x"), t0 + Duration::from_secs(i))
            })
            .collect();
        assert_eq!(sent.len(), 5);
        assert!(sent.iter().all(|e| !e.extra.contains_key("suppressed")));
        // Still inside the window: dropped.
        assert!(
            limiter
                .filter(event("boom", "ops_worker::x"), t0 + WINDOW / 2)
                .is_none()
        );
        // Next window: let through, carrying the 16 dropped meanwhile.
        let next = limiter.filter(event("boom", "ops_worker::x"), t0 + WINDOW);
        let next = next.expect("a new window lets the event through");
        assert_eq!(next.extra["suppressed"], 16);
        // The count was reported once.
        let again = limiter.filter(event("boom", "ops_worker::x"), t0 + WINDOW);
        assert!(!again.unwrap().extra.contains_key("suppressed"));
    }

    #[test]
    fn fingerprints_are_limited_separately() {
        let limiter = Limiter::new(1, WINDOW);
        let now = Instant::now();
        assert!(limiter.filter(event("a", "ops_worker::x"), now).is_some());
        assert!(limiter.filter(event("a", "ops_worker::y"), now).is_some());
        assert!(limiter.filter(event("b", "ops_worker::x"), now).is_some());
        assert!(limiter.filter(event("a", "ops_worker::x"), now).is_none());
    }

    #[test]
    fn an_explicit_fingerprint_wins_and_exceptions_count_by_type_and_value() {
        let mut a = event("one", "t");
        a.fingerprint = vec!["db".into(), "down".into()].into();
        let mut b = event("two", "u");
        b.fingerprint = a.fingerprint.clone();
        assert_eq!(fingerprint(&a), fingerprint(&b));

        let panic = |value: &str| Event {
            exception: vec![sentry::protocol::Exception {
                ty: "panic".into(),
                value: Some(value.into()),
                ..Default::default()
            }]
            .into(),
            ..Default::default()
        };
        assert_eq!(fingerprint(&panic("x")), fingerprint(&panic("x")));
        assert_ne!(fingerprint(&panic("x")), fingerprint(&panic("y")));
    }
}
