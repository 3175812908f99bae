//! Telemetry: logs (and Sentry), metrics, and the process's resource use.
//!
//! - [`logging`]: `tracing` to stderr as JSON or text, Sentry when configured, secret scrubbing.
//! - [`events`]: one type per internal occurrence, emitting its log line and metrics together.
//! - [`metrics`]: the Prometheus recorder and every metric's name and description.
//! - [`resources`]: CPU and memory use against the container's limits.

pub mod events;
pub mod logging;
pub mod metrics;
pub mod resources;

pub use logging::{init, init_with_sentry, scrub_event};
