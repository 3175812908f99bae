//! Telemetry: logs (and Sentry), metrics, and the process's resource use.
//!
//! - [`logging`]: `tracing` to stderr as JSON or text, Sentry when configured.
//! - [`scrub`]: the one secret scrubber for logs, Sentry, stored failure reasons and events.
//! - [`panic`]: the panic hook that turns a panic into one log line (and a Sentry event).
//! - [`limit`]: per-fingerprint deduplication and rate limiting of Sentry events.
//! - [`events`]: one type per internal occurrence, emitting its log line and metrics together.
//! - [`metrics`]: the Prometheus recorder and every metric's name and description.
//! - [`resources`]: CPU and memory use against the container's limits.

pub mod events;
pub mod limit;
pub mod logging;
pub mod metrics;
pub mod panic;
pub mod resources;
pub mod scrub;

pub use logging::{init, init_with, init_with_sentry, scrub_event};
pub use scrub::Scrubber;
