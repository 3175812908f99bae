//! ops-worker: a crash-safe, horizontally scalable pool of actix actors that takes ops tasks from a
//! Redis priority queue and runs them.
//!
//! Data flows one way: HTTP/CLI ([`api`], [`cli`]) → queue ([`queue`]) → consumer
//! ([`actors::consumer`]) → handler ([`handlers`]) → task record → events.
//!
//! - [`config`]: environment variables, validated at once; secrets never print.
//! - [`task`]: the task record, types, statuses and payload rules.
//! - [`queue`]: the Redis store; every multi-key step is a Lua script in `queue/lua/`.
//! - [`actors`]: the supervisor and its consumers.
//! - [`startup`]: wiring and graceful shutdown; [`telemetry`]: logging.
//! - [`bench`]: the throughput benchmark behind `ops-worker bench`.

pub mod actors;
pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod handlers;
pub mod queue;
pub mod resources;
pub mod startup;
pub mod task;
pub mod telemetry;
pub mod vercel;
