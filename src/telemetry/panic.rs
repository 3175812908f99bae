//! Panics as log lines: the panic hook installed by the telemetry init functions replaces Rust's
//! default one (which prints plain text, and a backtrace when `RUST_BACKTRACE` is set, straight to
//! stderr and so breaks JSON logs) with one `tracing` ERROR event carrying the panic's message and
//! location, then reports the panic to Sentry when Sentry is configured.

use std::cell::Cell;
use std::panic::PanicHookInfo;

/// The target of the panic line; kept out of Sentry's error layer because Sentry's own panic
/// handler already reports the panic (with its stack trace).
pub const TARGET: &str = "ops_worker::panic";
/// The message of the panic line (the panic's own message is the `panic` field).
pub const MESSAGE: &str = "panicked";

thread_local! {
    /// Set while this thread runs the hook, so a panic inside logging cannot recurse.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// Replace the process's panic hook (any previous one, Rust's default or Sentry's, is dropped:
/// both would write to stderr).
pub fn install() {
    drop(std::panic::take_hook());
    std::panic::set_hook(Box::new(hook));
}

fn hook(info: &PanicHookInfo<'_>) {
    if IN_HOOK.with(|h| h.replace(true)) {
        return;
    }
    let message = message(info);
    let location = info
        .location()
        .map(|l| format!("{}:{}", l.file(), l.line()))
        .unwrap_or_default();
    let thread = std::thread::current();
    tracing::error!(
        target: TARGET,
        panic = %message,
        location = %location,
        thread = thread.name().unwrap_or("unnamed"),
        "{MESSAGE}: {message}"
    );
    // No-op unless a Sentry client with the panic integration is bound.
    sentry::integrations::panic::panic_handler(info);
    IN_HOOK.with(|h| h.set(false));
}

/// The panic's message (`&str` and `String` payloads; anything else is named as such).
pub fn message<'a>(info: &'a PanicHookInfo<'_>) -> &'a str {
    let payload = info.payload();
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}
