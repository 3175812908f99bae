//! What the simulator knows: its deployments, projects and request log, the rate-limit window and
//! the pending faults, all in one [`Inner`] behind a std Mutex.

use super::*;

/// A simulated deployment; its state is derived from `created_ms`, `build_ms` and `canceled_ms`.
#[derive(Debug, Clone)]
pub(super) struct Deployment {
    /// `dpl_` + 24 alphanumerics.
    pub(super) id: String,
    /// Hostname `<name>-<random>.vercel.app` (no scheme, as Vercel returns it).
    pub(super) url: String,
    /// The project's name (Vercel names deployments after their project).
    pub(super) name: String,
    /// Owning project id.
    pub(super) project_id: String,
    /// `teamId` of the creating request, else the user id.
    pub(super) owner_id: String,
    /// `production` / `staging`; `None` is preview (Vercel reports `target: null`).
    pub(super) target: Option<String>,
    /// The checked `gitSource` of the request, echoed back.
    pub(super) git_source: Option<Value>,
    /// String metadata from the request (plus the git keys Vercel adds).
    pub(super) meta: Map<String, Value>,
    /// `source` as Vercel reports it (`cli`, `git`, `redeploy`).
    pub(super) source: &'static str,
    /// Creation time, epoch ms.
    pub(super) created_ms: i64,
    /// Build duration captured at creation, so a new `build_secs` only affects new deployments.
    pub(super) build_ms: i64,
    /// Ends in ERROR instead of READY (project name starts with `error-`).
    pub(super) fails: bool,
    /// Set by cancel; freezes the state at CANCELED.
    pub(super) canceled_ms: Option<i64>,
    /// While `hold_builds` is on: when this build was frozen (its state stays what it was then).
    pub(super) held_at: Option<i64>,
    /// Time its build was held, added to the build's milestones.
    pub(super) delay_ms: i64,
    /// What its site answers once READY (`/_sim/sites/`): status and body (a default when None).
    pub(super) site: Site,
}

/// What a deployment's simulated site answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Site {
    /// The HTTP status.
    pub(super) status: u16,
    /// The body; None: `<name> <id> ok` (or `error` for a status >= 400).
    pub(super) body: Option<String>,
}

impl Default for Site {
    fn default() -> Self {
        Site {
            status: 200,
            body: None,
        }
    }
}

impl Deployment {
    pub(super) fn building_ms(&self) -> i64 {
        self.created_ms
            .saturating_add(self.delay_ms)
            .saturating_add(self.build_ms / 5)
    }
    pub(super) fn done_ms(&self) -> i64 {
        self.created_ms
            .saturating_add(self.delay_ms)
            .saturating_add(self.build_ms)
    }
    pub(super) fn state(&self, now: i64) -> ReadyState {
        let now = self.held_at.map_or(now, |h| now.min(h));
        match self.canceled_ms {
            Some(_) => ReadyState::Canceled,
            None if now < self.building_ms() => ReadyState::Queued,
            None if now < self.done_ms() => ReadyState::Building,
            None if self.fails => ReadyState::Error,
            None => ReadyState::Ready,
        }
    }
    pub(super) fn inspector_url(&self) -> String {
        let short = self.id.trim_start_matches("dpl_");
        format!("https://vercel.com/{USERNAME}/{}/{short}", self.name)
    }
}

/// A simulated project, created by the first deployment that names it.
#[derive(Debug, Clone)]
pub(super) struct Project {
    /// `prj_` + 28 alphanumerics.
    pub(super) id: String,
    /// Project name (lookups accept id or name).
    pub(super) name: String,
    /// Creation time, epoch ms.
    pub(super) created_ms: i64,
    /// The deployment serving production (set by promote / rollback).
    pub(super) production: Option<String>,
}

/// One line of the `/_sim/stats` request log.
#[derive(Debug, Clone)]
pub(super) struct LogEntry {
    /// Finds the entry when the status is known (indexes shift after a reset).
    pub(super) seq: u64,
    /// HTTP method.
    pub(super) method: String,
    /// Request path without the query string.
    pub(super) path: String,
    /// Response status; 0 while the request is in flight.
    pub(super) status: u16,
    /// Arrival time, epoch ms.
    pub(super) at_ms: i64,
}

/// Everything the simulator knows; behind a std Mutex that is never held across an await.
#[derive(Debug, Default)]
pub(super) struct Inner {
    /// Current settings (faults change latency, build time, fail rate and limit).
    pub(super) config: SimConfig,
    /// Deployments in creation order.
    pub(super) deployments: Vec<Deployment>,
    /// Projects in creation order.
    pub(super) projects: Vec<Project>,
    /// API requests in arrival order (the newest [`MAX_LOG`]).
    pub(super) log: Vec<LogEntry>,
    /// Next `LogEntry::seq`.
    pub(super) next_seq: u64,
    /// Deployments created per project name.
    pub(super) created: BTreeMap<String, u64>,
    /// 429 responses served.
    pub(super) rate_limited: u64,
    /// Start of the current fixed rate-limit window, epoch ms.
    pub(super) window_start_ms: i64,
    /// Calls counted in the current window.
    pub(super) window_count: u32,
    /// After a 429, every call before this time (epoch ms) is refused too, as Vercel does.
    pub(super) blocked_until_ms: i64,
    /// The next n API calls answer 500.
    pub(super) fail_next: u64,
    /// The next n API calls answer 429.
    pub(super) rate_limit_next: u64,
    /// `Retry-After` of forced 429s.
    pub(super) retry_after_secs: u64,
    /// Builds are held: no deployment's build moves on until this is turned off.
    pub(super) holding: bool,
    /// What the sites of deployments created from now on answer.
    pub(super) site: Site,
    /// The next n site requests answer 503 (a transient failure).
    pub(super) site_fail_next: u64,
}

impl Inner {
    /// Hold (`true`) or let go of every build still running.
    pub(super) fn hold_builds(&mut self, hold: bool, now: i64) {
        if hold == self.holding {
            return;
        }
        self.holding = hold;
        for d in &mut self.deployments {
            if hold && d.canceled_ms.is_none() && now < d.done_ms() {
                d.held_at = Some(now);
            } else if let Some(h) = d.held_at.take() {
                d.delay_ms = d.delay_ms.saturating_add(now - h);
            }
        }
    }
}

/// The shared state as actix hands it to a handler.
pub(super) type State = web::Data<Mutex<Inner>>;

/// The state, even after a handler panicked while holding it (it is only ever left consistent).
pub(super) fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Wall-clock time, epoch ms (deployment ages, the request log, the rate-limit window).
pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `n` random alphanumerics (lowercase and digits only when `lowercase_only`), for ids and hosts.
pub(super) fn random_chars(n: usize, lowercase_only: bool) -> String {
    const CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let max = if lowercase_only { 36 } else { CHARS.len() };
    (0..n)
        .map(|_| CHARS[rand::random_range(0..max)] as char)
        .collect()
}
