//! ops-worker: a crash-safe, horizontally scalable pool of actix actors that takes ops tasks from a
//! Redis priority queue and runs them.
//!
//! Data flows one way: HTTP/CLI ([`api`], [`cli`]) → queue ([`queue`]) → consumer
//! ([`pool::consumer`]) → handler ([`handlers`], [`vercel`]) → task record → events and metrics.
//!
//! Modules, from the entry points down; a module only uses the ones below it:
//!
//! | layer | module | what it holds |
//! |---|---|---|
//! | entry points | [`cli`] | the `ops-worker` commands, `demo`, `bench`, `doctor` |
//! | wiring | [`app`] | builds an instance (store, handlers, pool, API), runs it, shuts it down |
//! | api / pool | [`api`], [`pool`] | the HTTP API and dashboard; the supervisor and its consumers |
//! | integrations | [`vercel`] | the Vercel client, its gateway actor, the Vercel task handlers, the simulator |
//! | handlers | [`handlers`] | the handler trait and registry, the built-in `noop` |
//! | queue | [`queue`] | the Redis store; every multi-key step is a Lua script in `queue/lua/` |
//! | foundations | [`telemetry`], [`task`], [`config`] | logs, metrics and events; the task model; configuration |

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod handlers;
pub mod pool;
pub mod queue;
pub mod task;
pub mod telemetry;
pub mod vercel;
