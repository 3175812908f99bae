//! Logging and error reporting.
//!
//! - `tracing` to stderr, JSON (`LOG_FORMAT=json`, the default for `run`) or pretty, filtered by
//!   `LOG_LEVEL` (other crates at WARN and above; the HTTP server's complaints about malformed
//!   requests not at all, see `directives`). Task spans carry task_id, task_type, priority,
//!   attempt and trace_id, so every line logged while a task runs can be tied to it. Every line
//!   passes through the process's [`Scrubber`] on its way to stderr.
//! - Panics are one ERROR line (target [`panic::TARGET`], fields `panic`, `location`, `thread`),
//!   never raw text on stderr, in both formats (see [`super::panic`]).
//! - Sentry when `SENTRY_DSN` is set: ERROR events of our own crate become Sentry events, its INFO
//!   and WARN become breadcrumbs (other crates' logs, e.g. the HTTP server's complaints about
//!   malformed requests, never reach Sentry); panics are captured (including handler panics that
//!   the consumer catches); environment (`SENTRY_ENVIRONMENT`, default `production`) and release
//!   are set; events are rate-limited per fingerprint ([`Limiter`]) and scrubbed before they
//!   leave; the returned guard flushes pending events when dropped at shutdown.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
use tracing::Level;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use super::limit::Limiter;
use super::panic;
use super::scrub::{self, Scrubber};
use crate::config::{Config, LogFormat};

/// Install logging only (tools, tests). Only `Bearer` tokens are scrubbed (no configuration);
/// use [`init_with`] when the configuration is at hand.
pub fn init(level: &str, format: LogFormat) {
    install(level, format, false, Scrubber::default());
}

/// Install logging (no Sentry) scrubbing the secrets of `config`.
pub fn init_with(config: &Config) {
    let scrubber = Scrubber::from_config(config);
    install(&config.log_level, config.log_format, false, scrubber);
}

/// Install logging and, when `SENTRY_DSN` is set, Sentry. Keep the guard alive until shutdown:
/// dropping it flushes pending events.
pub fn init_with_sentry(config: &Config) -> Option<sentry::ClientInitGuard> {
    let scrubber = Scrubber::from_config(config);
    let guard = config.sentry_dsn.as_ref().map(|dsn| {
        let mut options = sentry::ClientOptions::default();
        options.release = Some(concat!("ops-worker@", env!("CARGO_PKG_VERSION")).into());
        options.environment = Some(
            std::env::var("SENTRY_ENVIRONMENT")
                .unwrap_or_else(|_| "production".into())
                .into(),
        );
        options.send_default_pii = false;
        let limiter = Limiter::default();
        let scrubber = scrubber.clone();
        options.before_send = Some(Arc::new(move |event| {
            let event = limiter.filter(event, Instant::now())?;
            Some(scrub_event(event, &scrubber))
        }));
        sentry::init((dsn.expose(), options))
    });
    install(
        &config.log_level,
        config.log_format,
        guard.is_some(),
        scrubber,
    );
    guard
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn install(level: &str, format: LogFormat, sentry: bool, scrubber: Scrubber) {
    scrub::install(scrubber.clone());
    let filter = EnvFilter::try_new(directives(level)).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(ScrubbedStderr { scrubber });
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
        layers.push(Box::new(ErrorLayer::new().with_filter(filter_fn(|m| {
            *m.level() == Level::ERROR && ours(m.target()) && m.target() != panic::TARGET
        }))));
        layers.push(Box::new(BreadcrumbLayer::new().with_filter(filter_fn(
            |m| *m.level() <= Level::INFO && ours(m.target()),
        ))));
    }
    if tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .is_ok()
    {
        // After `sentry::init`, whose panic hook this replaces (it is called from ours).
        panic::install();
    }
}

/// Our crate at the chosen level; chatty dependencies one notch quieter. The HTTP protocol layer
/// (`actix_http`) logs every malformed request a client sends as an ERROR ("stream error: request
/// parse error"); the client already got its 400 and the connection is closed, so those lines
/// are dropped unless `LOG_LEVEL=trace` asks for everything.
fn directives(level: &str) -> String {
    let protocol = if level == "trace" { "trace" } else { "off" };
    format!("warn,ops_worker={level},{HTTP_PROTOCOL_TARGET}={protocol}")
}

/// The target of the HTTP server's protocol-level log lines.
const HTTP_PROTOCOL_TARGET: &str = "actix_http";

/// Whether a log target is this crate's (only its events reach Sentry).
fn ours(target: &str) -> bool {
    target == "ops_worker" || target.starts_with("ops_worker::")
}

/// The log writer: stderr, each formatted line scrubbed before it is written.
struct ScrubbedStderr {
    /// The secrets to remove.
    scrubber: Scrubber,
}

impl<'a> MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedLine;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedLine {
            scrubber: self.scrubber.clone(),
            buf: Vec::new(),
        }
    }
}

/// One formatted event, collected whole (so no secret is split across writes) and written
/// scrubbed when dropped.
struct ScrubbedLine {
    /// The secrets to remove.
    scrubber: Scrubber,
    /// The bytes formatted so far.
    buf: Vec<u8>,
}

impl Write for ScrubbedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.buf);
        let text = String::from_utf8_lossy(&bytes);
        std::io::stderr()
            .lock()
            .write_all(self.scrubber.scrub(&text).as_bytes())
    }
}

impl Drop for ScrubbedLine {
    fn drop(&mut self) {
        // Nowhere to report a failed write to stderr.
        let _ = self.flush();
    }
}

/// Replace every secret (and `Bearer` token) in every string of the event with `[redacted]`.
pub fn scrub_event(
    event: sentry::protocol::Event<'static>,
    scrubber: &Scrubber,
) -> sentry::protocol::Event<'static> {
    let Ok(mut value) = serde_json::to_value(&event) else {
        return event;
    };
    scrubber.scrub_json(&mut value);
    serde_json::from_value(value).unwrap_or(event)
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
            serde_json::json!({"nested": ["Bearer other_token", "tok_abcdef123"]}),
        );
        let clean = scrub_event(event, &Scrubber::new(["tok_abcdef123"]));
        let text = serde_json::to_string(&clean).unwrap();
        assert!(!text.contains("tok_abcdef123"), "{text}");
        assert!(!text.contains("other_token"), "{text}");
        assert!(text.contains("[redacted]"));
    }

    #[test]
    fn written_lines_are_scrubbed_whole() {
        let mut line = ScrubbedLine {
            scrubber: Scrubber::new(["tok_abcdef123"]),
            buf: Vec::new(),
        };
        line.write_all(b"{\"m\":\"tok_abc").unwrap();
        line.write_all(b"def123\"}\n").unwrap();
        let text = String::from_utf8(std::mem::take(&mut line.buf)).unwrap();
        assert_eq!(line.scrubber.scrub(&text), "{\"m\":\"[redacted]\"}\n");
    }

    #[test]
    fn http_protocol_noise_is_off_below_trace() {
        for level in ["error", "warn", "info", "debug"] {
            let d = directives(level);
            assert!(d.contains("actix_http=off"), "{d}");
            assert!(EnvFilter::try_new(&d).is_ok(), "{d}");
        }
        assert_eq!(
            directives("trace"),
            "warn,ops_worker=trace,actix_http=trace"
        );
    }

    #[test]
    fn only_our_targets_reach_sentry() {
        assert!(ours("ops_worker"));
        assert!(ours("ops_worker::pool::attempt"));
        assert!(!ours("actix_http::h1::dispatcher"));
        assert!(!ours("actix_server::worker"));
        assert!(!ours("ops_worker_other"));
    }
}
