//! Configuration from the environment, validated all at once.
//!
//! Every variable is read from a plain `name -> value` map so tests can build one without touching
//! the process environment; CLI flags override by writing into that map before validation. A bad
//! configuration is reported as a list naming every offending variable; `main` prints it and exits 2.
//! Secrets are wrapped in [`Secret`] and Redis URLs in [`RedisUrl`], whose `Debug`/`Display` never
//! show the secret part.

mod reader;
mod redis;
mod sections;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use reader::Reader;
pub use redis::{Pem, RedisSettings, RedisTls, Sentinel, Topology};

/// A value that must never be printed: tokens, the JWT secret, DSN keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value read from the environment or generated.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The raw value, for the one place that must send it (an HTTP header, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A Redis URL whose password (if any) is masked when printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Wrap a URL (for printing it redacted).
    pub fn new(url: &str) -> Self {
        Self(url.to_string())
    }
    /// The URL with its credentials, for the one place that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// `redis://***@host:port/db` when credentials are present (user name hidden too).
    pub fn redacted(&self) -> String {
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://***@{}", &self.0[..scheme], &self.0[at + 1..])
            }
            _ => self.0.clone(),
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.redacted())
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors (the default of `run`).
    Json,
    /// Human-readable lines (the default of the operator tools).
    Pretty,
}

/// Which command is loading the configuration: `run` is strict (production), the operator tools
/// (`enqueue`, `stats`, `bench`) fall back to a local Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `run`: every production variable is required.
    Run,
    /// The operator tools: Redis defaults to [`LOCAL_REDIS_URL`], secrets are optional.
    Tool,
}

/// Shortest accepted `JWT_SECRET`.
pub const MIN_JWT_SECRET: usize = 32;

/// `JWT_MAX_TTL` when unset: API tokens live at most 30 days.
pub const DEFAULT_JWT_MAX_TTL: Duration = Duration::from_secs(30 * 86_400);

/// The largest `JWT_MAX_TTL` accepted, in days (10 years, the longest `ops-worker token --ttl`).
pub const MAX_JWT_MAX_TTL_DAYS: u64 = 3_650;

/// The default Redis of a developer machine, used by the operator tools when `REDIS_URL` is unset.
pub const LOCAL_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Where the queue lives and how tasks behave in it.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Key prefix; keys are `<prefix>:{<name>}:...` so one queue shares one Cluster hash slot.
    pub prefix: String,
    /// Queue name; several independent queues can share one Redis.
    pub name: String,
    /// How long a claim stays valid without renewal before any instance may reclaim the task.
    pub lease: Duration,
    /// Retries after the first attempt (per-task override allowed at submission).
    pub max_retries: u32,
    /// How long dead-lettered (failed) records are kept, replayable (`TASK_RETENTION_DAYS`).
    pub retention: Duration,
    /// How long completed and cancelled records are kept (`TASK_RETENTION_COMPLETED`).
    pub retention_completed: Duration,
    /// At most this many completed and cancelled records are kept, the oldest deleted first
    /// (`TASK_KEEP_COMPLETED`), so a steady stream of tasks can't fill Redis.
    pub keep_completed: u64,
    /// At most this many dead-lettered records are kept (`TASK_KEEP_FAILED`).
    pub keep_failed: u64,
}

impl QueueSettings {
    /// The key prefix including the hash tag, e.g. `ops:{default}`.
    pub fn key_base(&self) -> String {
        format!("{}:{{{}}}", self.prefix, self.name)
    }
}

/// How one instance's consumer pool behaves.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Name of this instance in heartbeats and lease owners; unique per process.
    pub instance_id: String,
    /// Number of ConsumerActors.
    pub concurrency: usize,
    /// Most tasks one consumer claims per round trip; the pool sizes each claim below it from
    /// how long recent tasks took (1 = always one at a time).
    pub prefetch: usize,
    /// Upper bound of one blocking wait for work (`WORKER_POLL_INTERVAL`).
    pub poll_interval: Duration,
    /// How long in-flight tasks may keep running after SIGTERM / stop before being handed back.
    pub shutdown_timeout: Duration,
    /// Restart intensity: more than this many consumer restarts ...
    pub max_restarts: usize,
    /// ... within this window puts the instance in `error` and backs off.
    pub restart_window: Duration,
}

/// Vercel access and pacing.
#[derive(Debug, Clone)]
pub struct VercelSettings {
    /// Bearer token; required by `run` (it never falls back to the simulator).
    pub token: Option<Secret>,
    /// Sent as `teamId` on every call when set.
    pub team_id: Option<String>,
    /// API base, `https://api.vercel.com` unless overridden (the simulator in tests and demo).
    pub api_url: String,
    /// Cluster-wide calls per minute across every instance; 0 = no limit.
    pub rate_limit_per_min: u32,
    /// How many calls may go out back-to-back before the per-minute pace applies.
    pub rate_limit_burst: u32,
    /// Timeout of one HTTP call.
    pub request_timeout: Duration,
    /// Interval between deployment state polls.
    pub poll_interval: Duration,
    /// How long a deploy may take to reach READY/ERROR/CANCELED before the attempt fails (retryable;
    /// the retry resumes the same deployment).
    pub deploy_timeout: Duration,
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the queue lives and how to reach it (`REDIS_URL`, required by `run`; TLS options).
    pub redis: RedisSettings,
    /// Queue keys and task lifetimes (`QUEUE_*`, `TASK_*`).
    pub queue: QueueSettings,
    /// What a submission may ask for: sizes, delay, diagnostic knobs.
    pub submit: crate::task::SubmitRules,
    /// This instance's consumer pool (`INSTANCE_ID`, `WORKER_*`).
    pub worker: WorkerSettings,
    /// Vercel access and pacing (`VERCEL_*`).
    pub vercel: VercelSettings,
    /// HTTP port of the API, dashboard, `/health` and `/metrics` (`PORT`, 0-65535). 0 binds any
    /// free port, which lets tests run several instances side by side.
    pub port: u16,
    /// Port of a second HTTP listener that serves only `/metrics` (`METRICS_PORT`; 0 = any free
    /// port). Set on a public web service so its metrics stay on the private network; then
    /// `PORT` answers 404 for `/metrics`. Unset = `/metrics` is served on `PORT`.
    pub metrics_port: Option<u16>,
    /// Tracing filter level, lower-case (`LOG_LEVEL`; `warning` is read as `warn`).
    pub log_level: String,
    /// Log line format (`LOG_FORMAT`; JSON for `run`, pretty for the tools unless set).
    pub log_format: LogFormat,
    /// Where errors are reported (`SENTRY_DSN`); unset = Sentry off.
    pub sentry_dsn: Option<Secret>,
    /// HS256 key of the API's bearer tokens; required by `run`, at least 32 bytes.
    pub jwt_secret: Option<Secret>,
    /// Longest lifetime (`exp - iat`) of an accepted bearer token (`JWT_MAX_TTL`), and the
    /// longest `ops-worker token --ttl`.
    pub jwt_max_ttl: Duration,
    /// Requests from 127.0.0.1/::1 act as admin without a token (the guide's local curl
    /// commands); off unless `AUTH_TRUST_LOOPBACK=true`.
    pub trust_loopback: bool,
    /// Largest accepted request body.
    pub body_limit: usize,
}

/// Every problem found, each naming its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.iter().map(|(v, m)| format!("  {v}: {m}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    /// `(VARIABLE, what is wrong)`; never contains a secret's value.
    pub problems: Vec<(String, String)>,
}

impl Config {
    /// Read the process environment.
    pub fn from_env(mode: Mode) -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect(), mode)
    }

    /// Validate a variable map; returns every problem at once.
    pub fn from_vars(vars: &HashMap<String, String>, mode: Mode) -> Result<Self, ConfigError> {
        Self::read(vars, mode).0
    }

    /// Every environment variable the configuration reads.
    pub fn variables() -> BTreeSet<String> {
        let mut all = Self::read(&HashMap::new(), Mode::Run).1;
        all.extend(Self::read(&HashMap::new(), Mode::Tool).1);
        all
    }

    /// Read every section (in a fixed order, which is the order of the problems reported), then
    /// the configuration or every problem, plus the names of the variables looked up.
    fn read(
        vars: &HashMap<String, String>,
        mode: Mode,
    ) -> (Result<Self, ConfigError>, BTreeSet<String>) {
        let mut r = Reader::new(vars);
        let redis = redis::redis(&mut r, mode);
        let queue = sections::queue(&mut r);
        let submit = sections::submit(&mut r);
        let worker = sections::worker(&mut r);
        let vercel = sections::vercel(&mut r, mode);
        let (log_level, log_format) = sections::logging(&mut r, mode);
        let server = sections::server(&mut r, mode);
        let (problems, names) = r.finish();
        if !problems.is_empty() {
            return (Err(ConfigError { problems }), names);
        }
        let config = Config {
            redis,
            queue,
            submit,
            worker,
            vercel,
            port: server.port,
            metrics_port: server.metrics_port,
            log_level,
            log_format,
            sentry_dsn: server.sentry_dsn,
            jwt_secret: server.jwt_secret,
            jwt_max_ttl: server.jwt_max_ttl,
            trust_loopback: server.trust_loopback,
            body_limit: server.body_limit,
        };
        (Ok(config), names)
    }
}
