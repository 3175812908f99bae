//! [`spawn_app`]: a private Redis plus one healthy worker on it, the usual start of an API test
//! (the shape of zero2prod's `spawn_app`).

use std::ops::Deref;

use super::{RedisServer, Worker, WorkerBuilder};

/// A private Redis and one worker on `queue`. Derefs to the [`Worker`], so its request helpers
/// (`call`, `submit`, ...) are available directly.
pub struct TestApp {
    /// Declared first, so it is dropped (and its log checked) before its Redis goes away.
    pub worker: Worker,
    /// The worker's private Redis.
    pub redis: RedisServer,
    /// The worker's queue name.
    pub queue: String,
}

/// Start a private Redis and a worker on `queue` with `env` on top of the base environment;
/// returns once the worker is healthy.
pub async fn spawn_app(queue: &str, env: &[(&str, &str)]) -> TestApp {
    let redis = RedisServer::start();
    let worker = Worker::builder(&redis.url(), queue)
        .envs(env.iter().copied())
        .spawn()
        .await;
    TestApp {
        worker,
        redis,
        queue: queue.to_string(),
    }
}

impl TestApp {
    /// A builder for another worker on the same Redis and queue (e.g. a second instance).
    pub fn another_worker(&self) -> WorkerBuilder {
        Worker::builder(&self.redis.url(), &self.queue)
    }
}

impl Deref for TestApp {
    type Target = Worker;

    fn deref(&self) -> &Worker {
        &self.worker
    }
}
