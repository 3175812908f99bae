//! Configuration from the environment (SPEC §9), validated all at once.
//!
//! Every variable is read from a plain `name -> value` map so tests can build one without touching
//! the process environment; CLI flags override by writing into that map before validation. A bad
//! configuration is reported as a list naming every offending variable; `main` prints it and exits 2.
//! Secrets are wrapped in [`Secret`] and Redis URLs in [`RedisUrl`], whose `Debug`/`Display` never
//! show the secret part.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// A value that must never be printed: tokens, the JWT secret, DSN keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
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
    Json,
    Pretty,
}

/// Which command is loading the configuration: `run` is strict (production), the operator tools
/// (`enqueue`, `stats`, `bench`) fall back to a local Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    Tool,
}

/// Shortest accepted `JWT_SECRET`.
pub const MIN_JWT_SECRET: usize = 32;

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
    /// How long completed/cancelled records are kept.
    pub retention: Duration,
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
    /// Tasks one consumer claims per round trip (1 = fairest; larger = faster for tiny tasks).
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
    pub redis_url: RedisUrl,
    pub queue: QueueSettings,
    pub worker: WorkerSettings,
    pub vercel: VercelSettings,
    /// HTTP port for `/health` (and the API later).
    pub port: u16,
    pub log_level: String,
    pub log_format: LogFormat,
    pub sentry_dsn: Option<Secret>,
    /// HS256 key of the API's bearer tokens; required by `run`, at least 32 bytes.
    pub jwt_secret: Option<Secret>,
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

struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    problems: Vec<(String, String)>,
    /// Every variable name looked up, so [`Config::variables`] can't drift from the code.
    read: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl<'a> Reader<'a> {
    fn raw(&self, name: &str) -> Option<&'a str> {
        self.read.borrow_mut().insert(name.to_string());
        self.vars
            .get(name)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }
    fn problem(&mut self, name: &str, msg: impl Into<String>) {
        self.problems.push((name.to_string(), msg.into()));
    }
    fn string(&mut self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_string()
    }
    fn number<T: std::str::FromStr + Copy + PartialOrd + fmt::Display>(
        &mut self,
        name: &str,
        default: T,
        min: T,
        max: T,
    ) -> T {
        let Some(raw) = self.raw(name) else {
            return default;
        };
        match raw.parse::<T>() {
            Ok(v) if v >= min && v <= max => v,
            _ => {
                self.problem(name, format!("`{raw}` is not a number from {min} to {max}"));
                default
            }
        }
    }
    fn seconds(&mut self, name: &str, default: f64, min: f64, max: f64) -> Duration {
        Duration::from_secs_f64(self.number(name, default, min, max))
    }
}

fn default_instance_id() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "host".to_string());
    format!("{host}-{}", std::process::id())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
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
    pub fn variables() -> std::collections::BTreeSet<String> {
        let mut all = Self::read(&HashMap::new(), Mode::Run).1;
        all.extend(Self::read(&HashMap::new(), Mode::Tool).1);
        all
    }

    fn read(
        vars: &HashMap<String, String>,
        mode: Mode,
    ) -> (
        Result<Self, ConfigError>,
        std::collections::BTreeSet<String>,
    ) {
        let mut r = Reader {
            vars,
            problems: Vec::new(),
            read: Default::default(),
        };

        let redis_url = match (r.raw("REDIS_URL"), mode) {
            (Some(u), _) if u.starts_with("redis://") || u.starts_with("rediss://") => {
                RedisUrl(u.to_string())
            }
            (Some(_), _) => {
                r.problem("REDIS_URL", "must start with redis:// or rediss://");
                RedisUrl(LOCAL_REDIS_URL.into())
            }
            (None, Mode::Run) => {
                r.problem("REDIS_URL", "is required (e.g. redis://localhost:6379)");
                RedisUrl(LOCAL_REDIS_URL.into())
            }
            (None, Mode::Tool) => RedisUrl(LOCAL_REDIS_URL.into()),
        };

        let prefix = r.string("QUEUE_PREFIX", "ops");
        if !valid_name(&prefix) {
            r.problem("QUEUE_PREFIX", "use 1-64 of A-Z a-z 0-9 - _ .");
        }
        let name = r.string("QUEUE_NAME", "default");
        if !valid_name(&name) {
            r.problem("QUEUE_NAME", "use 1-64 of A-Z a-z 0-9 - _ .");
        }
        let queue = QueueSettings {
            prefix,
            name,
            lease: r.seconds("TASK_LEASE_SECS", 30.0, 1.0, 3600.0),
            max_retries: r.number("TASK_MAX_RETRIES", 3, 0, crate::task::MAX_RETRIES_CAP),
            retention: Duration::from_secs(r.number("TASK_RETENTION_DAYS", 7u64, 1, 365) * 86_400),
        };

        let instance_id = r.raw("INSTANCE_ID").map(str::to_string);
        let instance_id = match instance_id {
            Some(id) if valid_name(&id) => id,
            Some(_) => {
                r.problem("INSTANCE_ID", "use 1-64 of A-Z a-z 0-9 - _ .");
                default_instance_id()
            }
            None => default_instance_id(),
        };
        let worker = WorkerSettings {
            instance_id,
            concurrency: r.number("WORKER_CONCURRENCY", 4usize, 1, 1024),
            prefetch: r.number("WORKER_PREFETCH", 1usize, 1, 1000),
            poll_interval: r.seconds("WORKER_POLL_INTERVAL", 5.0, 0.05, 300.0),
            shutdown_timeout: r.seconds("WORKER_SHUTDOWN_TIMEOUT", 25.0, 0.0, 3600.0),
            max_restarts: r.number("WORKER_MAX_RESTARTS", 5usize, 1, 1000),
            restart_window: r.seconds("WORKER_RESTART_WINDOW_SECS", 10.0, 1.0, 3600.0),
        };

        let api_url = r.string("VERCEL_API_URL", "https://api.vercel.com");
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            r.problem("VERCEL_API_URL", "must be an http(s) URL");
        }
        let token = r.raw("VERCEL_TOKEN").map(Secret::new);
        if token.is_none() && mode == Mode::Run {
            r.problem(
                "VERCEL_TOKEN",
                "is required (a Vercel access token; `run` never falls back to the simulator)",
            );
        }
        let rate_limit_per_min = r.number("VERCEL_RATE_LIMIT_PER_MIN", 100u32, 0, 1_000_000);
        let vercel = VercelSettings {
            token,
            team_id: r.raw("VERCEL_TEAM_ID").map(str::to_string),
            api_url: api_url.trim_end_matches('/').to_string(),
            rate_limit_per_min,
            rate_limit_burst: r.number(
                "VERCEL_RATE_LIMIT_BURST",
                rate_limit_per_min.clamp(1, 10),
                1,
                1_000_000,
            ),
            request_timeout: r.seconds("VERCEL_TIMEOUT_SECS", 30.0, 1.0, 600.0),
            poll_interval: r.seconds("VERCEL_POLL_INTERVAL_SECS", 5.0, 0.05, 300.0),
            deploy_timeout: r.seconds("VERCEL_DEPLOY_TIMEOUT_SECS", 1800.0, 1.0, 86_400.0),
        };

        let log_level = r.string("LOG_LEVEL", "INFO").to_ascii_lowercase();
        if !matches!(
            log_level.as_str(),
            "trace" | "debug" | "info" | "warn" | "warning" | "error"
        ) {
            r.problem(
                "LOG_LEVEL",
                "must be one of TRACE, DEBUG, INFO, WARN, ERROR",
            );
        }
        let log_level = if log_level == "warning" {
            "warn".to_string()
        } else {
            log_level
        };
        let log_format = match r.raw("LOG_FORMAT").map(str::to_ascii_lowercase).as_deref() {
            None => match mode {
                Mode::Run => LogFormat::Json,
                Mode::Tool => LogFormat::Pretty,
            },
            Some("json") => LogFormat::Json,
            Some("pretty") | Some("text") => LogFormat::Pretty,
            Some(_) => {
                r.problem("LOG_FORMAT", "must be json or pretty");
                LogFormat::Json
            }
        };

        let port = r.number("PORT", 8080u16, 0, 65535);
        let sentry_dsn = r.raw("SENTRY_DSN").map(Secret::new);
        if let Some(dsn) = &sentry_dsn
            && dsn.expose().parse::<sentry::types::Dsn>().is_err()
        {
            r.problem(
                "SENTRY_DSN",
                "does not parse (expected https://<public key>@<host>/<project id>)",
            );
        }
        let jwt_secret = r.raw("JWT_SECRET").map(Secret::new);
        match (&jwt_secret, mode) {
            (None, Mode::Run) => r.problem(
                "JWT_SECRET",
                "is required (the API's token signing key; at least 32 characters)",
            ),
            (Some(s), _) if s.expose().len() < MIN_JWT_SECRET => r.problem(
                "JWT_SECRET",
                format!("is too short: use at least {MIN_JWT_SECRET} characters"),
            ),
            _ => {}
        }
        let trust_loopback = match r.raw("AUTH_TRUST_LOOPBACK").map(str::to_ascii_lowercase) {
            None => false,
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes") => true,
            Some(v) if matches!(v.as_str(), "0" | "false" | "no") => false,
            Some(_) => {
                r.problem("AUTH_TRUST_LOOPBACK", "must be true or false");
                false
            }
        };
        let body_limit = r.number("API_BODY_LIMIT_BYTES", 65_536usize, 1_024, 16 * 1_048_576);

        let names = r.read.take();
        let result = if r.problems.is_empty() {
            Ok(Config {
                redis_url,
                queue,
                worker,
                vercel,
                port,
                log_level,
                log_format,
                sentry_dsn,
                jwt_secret,
                trust_loopback,
                body_limit,
            })
        } else {
            Err(ConfigError {
                problems: r.problems,
            })
        };
        (result, names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn run_requires_redis_url_and_names_every_bad_variable() {
        let err = Config::from_vars(
            &vars(&[("WORKER_CONCURRENCY", "zero"), ("LOG_FORMAT", "xml")]),
            Mode::Run,
        )
        .unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(
            names,
            [
                "REDIS_URL",
                "WORKER_CONCURRENCY",
                "VERCEL_TOKEN",
                "LOG_FORMAT",
                "JWT_SECRET"
            ]
        );
        assert!(err.to_string().contains("WORKER_CONCURRENCY: `zero`"));
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = Config::from_vars(
            &vars(&[
                ("REDIS_URL", "redis://h:1"),
                ("VERCEL_TOKEN", "t"),
                ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ]),
            Mode::Run,
        )
        .unwrap();
        assert_eq!(c.worker.poll_interval, Duration::from_secs(5));
        assert_eq!(c.worker.shutdown_timeout, Duration::from_secs(25));
        assert_eq!(c.queue.lease, Duration::from_secs(30));
        assert_eq!(c.queue.max_retries, 3);
        assert_eq!(c.port, 8080);
        assert_eq!(c.log_level, "info");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.queue.key_base(), "ops:{default}");
    }

    #[test]
    fn secrets_never_print() {
        let c = Config::from_vars(
            &vars(&[
                ("REDIS_URL", "redis://:hunter2pw@h:1/0"),
                ("VERCEL_TOKEN", "tok_supersecret"),
                ("JWT_SECRET", "jwt_supersecret_jwt_supersecret_xx"),
                ("SENTRY_DSN", "https://dsnkey_secret@o1.ingest.sentry.io/1"),
            ]),
            Mode::Run,
        )
        .unwrap();
        let dbg = format!("{c:?}");
        for s in [
            "hunter2pw",
            "tok_supersecret",
            "jwt_supersecret",
            "dsnkey_secret",
        ] {
            assert!(!dbg.contains(s), "{s} leaked in {dbg}");
        }
        assert_eq!(c.redis_url.to_string(), "redis://***@h:1/0");
    }
}
