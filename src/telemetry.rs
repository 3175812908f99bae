//! Logging setup: `tracing` to stderr, JSON (`LOG_FORMAT=json`, the default for `run`) or pretty,
//! filtered by `LOG_LEVEL`. Task spans carry task_id, task_type, priority, attempt and trace_id,
//! so every line a handler logs can be tied to its task.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Install the global subscriber. Safe to call twice (the second call is ignored).
pub fn init(level: &str, format: LogFormat) {
    // Our crate at the chosen level; chatty dependencies one notch quieter.
    let filter = EnvFilter::try_new(format!("warn,ops_worker={level}"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
