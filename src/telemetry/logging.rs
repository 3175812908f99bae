//! Logging and error reporting.
//!
//! - `tracing` to stderr, JSON (`LOG_FORMAT=json`, the default for `run`) or pretty, filtered by
//!   `LOG_LEVEL`. Task spans carry task_id, task_type, priority, attempt and trace_id, so every
//!   line logged while a task runs can be tied to it.
//! - Sentry when `SENTRY_DSN` is set: ERROR events become Sentry events, INFO and WARN become
//!   breadcrumbs (explicit level filters per layer); panics are captured (including handler panics
//!   that the consumer catches); environment (`SENTRY_ENVIRONMENT`, default `production`) and
//!   release are set; every event is scrubbed of the configured secrets before it leaves; the
//!   returned guard flushes pending events when dropped at shutdown.

use std::io::IsTerminal;
use std::sync::Arc;

use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{Config, LogFormat};

/// Install logging only (tools, tests).
pub fn init(level: &str, format: LogFormat) {
    install(level, format, false);
}

/// Install logging and, when `SENTRY_DSN` is set, Sentry. Keep the guard alive until shutdown:
/// dropping it flushes pending events.
pub fn init_with_sentry(config: &Config) -> Option<sentry::ClientInitGuard> {
    let guard = config.sentry_dsn.as_ref().map(|dsn| {
        let secrets = Arc::new(secret_values(config));
        let mut options = sentry::ClientOptions::default();
        options.release = Some(concat!("ops-worker@", env!("CARGO_PKG_VERSION")).into());
        options.environment = Some(
            std::env::var("SENTRY_ENVIRONMENT")
                .unwrap_or_else(|_| "production".into())
                .into(),
        );
        options.send_default_pii = false;
        options.before_send = Some(Arc::new(move |event| Some(scrub_event(event, &secrets))));
        sentry::init((dsn.expose(), options))
    });
    install(&config.log_level, config.log_format, guard.is_some());
    guard
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn install(level: &str, format: LogFormat, sentry: bool) {
    // Our crate at the chosen level; chatty dependencies one notch quieter.
    let filter = EnvFilter::try_new(format!("warn,ops_worker={level}"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let fmt: BoxedLayer = match format {
        LogFormat::Json => Box::new(
            fmt.json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_filter(filter),
        ),
        LogFormat::Pretty => Box::new(fmt.compact().with_filter(filter)),
    };
    let mut layers: Vec<BoxedLayer> = vec![fmt];
    if sentry {
        layers.push(Box::new(ErrorLayer::new().with_filter(LevelFilter::ERROR)));
        layers.push(Box::new(
            BreadcrumbLayer::new().with_filter(LevelFilter::INFO),
        ));
    }
    let _ = tracing_subscriber::registry().with(layers).try_init();
}

/// Every secret value of the configuration (long enough to be worth scrubbing).
fn secret_values(config: &Config) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(t) = &config.vercel.token {
        v.push(t.expose().to_string());
    }
    if let Some(s) = &config.jwt_secret {
        v.push(s.expose().to_string());
    }
    if let Some(dsn) = &config.sentry_dsn
        && let Some(key) = dsn
            .expose()
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .map(|(key, _)| key.to_string())
    {
        v.push(key);
    }
    let url = config.redis_url.expose();
    if let Some((_, rest)) = url.split_once("://")
        && let Some((creds, _)) = rest.rsplit_once('@')
    {
        let password = creds.rsplit(':').next().unwrap_or(creds);
        v.push(password.to_string());
    }
    v.retain(|s| s.len() >= 6);
    v
}

/// Replace every secret in every string of the event with `[redacted]`.
pub fn scrub_event(
    event: sentry::protocol::Event<'static>,
    secrets: &[String],
) -> sentry::protocol::Event<'static> {
    if secrets.is_empty() {
        return event;
    }
    let Ok(mut value) = serde_json::to_value(&event) else {
        return event;
    };
    scrub_value(&mut value, secrets);
    serde_json::from_value(value).unwrap_or(event)
}

fn scrub_value(v: &mut serde_json::Value, secrets: &[String]) {
    match v {
        serde_json::Value::String(s) => {
            for secret in secrets {
                if s.contains(secret.as_str()) {
                    *s = s.replace(secret.as_str(), "[redacted]");
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| scrub_value(x, secrets)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| scrub_value(x, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_scrubbed_everywhere() {
        let mut event = sentry::protocol::Event {
            message: Some("call failed with token tok_abcdef123".into()),
            ..Default::default()
        };
        event.extra.insert(
            "detail".into(),
            serde_json::json!({"nested": ["Bearer tok_abcdef123"]}),
        );
        let clean = scrub_event(event, &["tok_abcdef123".to_string()]);
        let text = serde_json::to_string(&clean).unwrap();
        assert!(!text.contains("tok_abcdef123"), "{text}");
        assert!(text.contains("[redacted]"));
    }
}
