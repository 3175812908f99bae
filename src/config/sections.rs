//! One reader per configuration section. Each reads its variables in a fixed order (the order of
//! the problems in a [`ConfigError`](super::ConfigError)) and records problems on the [`Reader`].

use std::time::Duration;

use super::reader::Reader;
use super::{
    DEFAULT_JWT_MAX_TTL, LogFormat, MAX_JWT_MAX_TTL_DAYS, MIN_JWT_SECRET, Mode, QueueSettings,
    Secret, VercelSettings, WorkerSettings,
};
use crate::task::SubmitRules;

/// `QUEUE_*` and `TASK_*`.
pub(super) fn queue(r: &mut Reader) -> QueueSettings {
    QueueSettings {
        prefix: r.name("QUEUE_PREFIX", || "ops".into()),
        name: r.name("QUEUE_NAME", || "default".into()),
        lease: r.seconds("TASK_LEASE_SECS", 30.0, 1.0, 3600.0),
        max_retries: r.number("TASK_MAX_RETRIES", 3, 0, crate::task::MAX_RETRIES_CAP),
        retention: Duration::from_secs(r.number("TASK_RETENTION_DAYS", 7u64, 1, 365) * 86_400),
        retention_completed: r.duration(
            "TASK_RETENTION_COMPLETED",
            Duration::from_secs(86_400),
            Duration::from_secs(365 * 86_400),
        ),
        keep_completed: r.number("TASK_KEEP_COMPLETED", 100_000u64, 1, 1 << 40),
        keep_failed: r.number("TASK_KEEP_FAILED", 100_000u64, 1, 1 << 40),
    }
}

/// Submission limits: `WORKER_DIAGNOSTICS`, `TASK_MAX_DELAY`, `TASK_MAX_PAYLOAD_BYTES`,
/// `TASK_MAX_METADATA_BYTES`.
pub(super) fn submit(r: &mut Reader) -> SubmitRules {
    let d = SubmitRules::default();
    SubmitRules {
        diagnostics: r.flag("WORKER_DIAGNOSTICS", false),
        max_delay: r.duration(
            "TASK_MAX_DELAY",
            d.max_delay,
            Duration::from_secs(365 * 86_400),
        ),
        max_payload_bytes: r.number("TASK_MAX_PAYLOAD_BYTES", d.max_payload_bytes, 256, 1 << 20),
        max_metadata_bytes: r.number("TASK_MAX_METADATA_BYTES", d.max_metadata_bytes, 0, 1 << 20),
    }
}

/// `INSTANCE_ID` and `WORKER_*`.
pub(super) fn worker(r: &mut Reader) -> WorkerSettings {
    WorkerSettings {
        instance_id: r.name("INSTANCE_ID", default_instance_id),
        concurrency: r.number("WORKER_CONCURRENCY", 4usize, 1, 1024),
        prefetch: r.number("WORKER_PREFETCH", 64usize, 1, 1000),
        poll_interval: r.seconds("WORKER_POLL_INTERVAL", 5.0, 0.05, 300.0),
        shutdown_timeout: r.seconds("WORKER_SHUTDOWN_TIMEOUT", 25.0, 0.0, 3600.0),
        max_restarts: r.number("WORKER_MAX_RESTARTS", 5usize, 1, 1000),
        restart_window: r.seconds("WORKER_RESTART_WINDOW_SECS", 10.0, 1.0, 3600.0),
    }
}

/// `<hostname>-<pid>`: unique per process on one host.
fn default_instance_id() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "host".to_string());
    format!("{host}-{}", std::process::id())
}

/// `VERCEL_*`: the token is required by `run`, which never falls back to the simulator.
pub(super) fn vercel(r: &mut Reader, mode: Mode) -> VercelSettings {
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
    VercelSettings {
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
    }
}

/// `LOG_LEVEL` (lower-cased; `warning` means `warn`) and `LOG_FORMAT` (JSON for `run`, pretty for
/// the tools unless set).
pub(super) fn logging(r: &mut Reader, mode: Mode) -> (String, LogFormat) {
    let level = r.string("LOG_LEVEL", "INFO").to_ascii_lowercase();
    if !matches!(
        level.as_str(),
        "trace" | "debug" | "info" | "warn" | "warning" | "error"
    ) {
        r.problem(
            "LOG_LEVEL",
            "must be one of TRACE, DEBUG, INFO, WARN, ERROR",
        );
    }
    let level = if level == "warning" {
        "warn".to_string()
    } else {
        level
    };
    let format = match r.raw("LOG_FORMAT").map(str::to_ascii_lowercase).as_deref() {
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
    (level, format)
}

/// What the HTTP server and its auth read: `PORT`, `METRICS_PORT`, `SENTRY_DSN`, `JWT_SECRET`,
/// `JWT_MAX_TTL`, `AUTH_TRUST_LOOPBACK`, `API_BODY_LIMIT_BYTES` (copied into the flat fields of
/// `Config`).
pub(super) struct Server {
    /// `PORT`; 0 = any free port.
    pub port: u16,
    /// `METRICS_PORT`; unset = `/metrics` on `PORT`.
    pub metrics_port: Option<u16>,
    /// `SENTRY_DSN`, checked to parse.
    pub sentry_dsn: Option<Secret>,
    /// `JWT_SECRET`, required by `run`.
    pub jwt_secret: Option<Secret>,
    /// `JWT_MAX_TTL`.
    pub jwt_max_ttl: Duration,
    /// `AUTH_TRUST_LOOPBACK`.
    pub trust_loopback: bool,
    /// `API_BODY_LIMIT_BYTES`.
    pub body_limit: usize,
}

/// The HTTP/auth section, in the order `PORT`, `METRICS_PORT`, `SENTRY_DSN`, `JWT_SECRET`,
/// `JWT_MAX_TTL`, `AUTH_TRUST_LOOPBACK`, `API_BODY_LIMIT_BYTES`.
pub(super) fn server(r: &mut Reader, mode: Mode) -> Server {
    Server {
        port: r.number("PORT", 8080u16, 0, 65535),
        metrics_port: metrics_port(r),
        sentry_dsn: sentry_dsn(r),
        jwt_secret: jwt_secret(r, mode),
        jwt_max_ttl: r.duration(
            "JWT_MAX_TTL",
            DEFAULT_JWT_MAX_TTL,
            Duration::from_secs(MAX_JWT_MAX_TTL_DAYS * 86_400),
        ),
        trust_loopback: trust_loopback(r),
        body_limit: r.number("API_BODY_LIMIT_BYTES", 65_536usize, 1_024, 16 * 1_048_576),
    }
}

/// `METRICS_PORT`: a second listener that alone serves `/metrics` (0 = any free port), so the
/// public `PORT` need not expose it. Must differ from a non-zero `PORT`.
fn metrics_port(r: &mut Reader) -> Option<u16> {
    r.raw("METRICS_PORT")?;
    let port = r.number("METRICS_PORT", 0u16, 0, 65535);
    let public = r.raw("PORT").map_or(Some(8080), |p| p.parse::<u16>().ok());
    if port != 0 && public == Some(port) {
        r.problem("METRICS_PORT", "must differ from PORT");
    }
    Some(port)
}

fn sentry_dsn(r: &mut Reader) -> Option<Secret> {
    let dsn = r.raw("SENTRY_DSN").map(Secret::new);
    if let Some(dsn) = &dsn
        && dsn.expose().parse::<sentry::types::Dsn>().is_err()
    {
        r.problem(
            "SENTRY_DSN",
            "does not parse (expected https://<public key>@<host>/<project id>)",
        );
    }
    dsn
}

fn jwt_secret(r: &mut Reader, mode: Mode) -> Option<Secret> {
    let secret = r.raw("JWT_SECRET").map(Secret::new);
    match (&secret, mode) {
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
    secret
}

fn trust_loopback(r: &mut Reader) -> bool {
    r.flag("AUTH_TRUST_LOOPBACK", false)
}
