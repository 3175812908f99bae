//! `ops-worker run` as a child process: [`Worker::builder`] starts one with `PORT=0`, learns the
//! port it bound from its JSON "HTTP listening" log line, and waits until `/health` answers 200
//! for this very instance. Nothing is started on a port the test merely hoped was free.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ops_worker::queue::QueueStore;
use serde_json::Value;

use super::{
    COUNTER, SIM_TOKEN, TEST_JWT_SECRET, TEST_VERCEL_TOKEN, base_env, bin, scratch_dir, store,
};

/// How long a worker may take to bind its port and report healthy (a cold binary on a busy
/// two-core machine can be slow).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Interval between polls of the log file and of `/health`.
const POLL: Duration = Duration::from_millis(25);
/// The log message that carries the bound port (field `port`); see `Instance::start`.
const LISTENING_MESSAGE: &str = "HTTP listening";
/// Secrets no worker log may contain; checked when a [`Worker`] is dropped.
const SECRETS: [&str; 3] = [TEST_VERCEL_TOKEN, TEST_JWT_SECRET, SIM_TOKEN];

/// Configures and starts an `ops-worker run` process; made by [`Worker::builder`].
#[must_use = "a builder does nothing until `spawn` is awaited"]
pub struct WorkerBuilder {
    redis_url: String,
    queue: String,
    env: Vec<(String, String)>,
}

impl WorkerBuilder {
    /// Add (or override) one environment variable on top of [`base_env`]. `PORT` is not allowed:
    /// the harness always binds port 0 and reads the real port back.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        assert_ne!(
            key, "PORT",
            "workers bind PORT=0 and report their port; use Worker::port() instead"
        );
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// [`Self::env`] for each pair, e.g. `SimProcess::worker_env()` or a `[(&str, &str)]` array.
    pub fn envs<K: AsRef<str>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in vars {
            self = self.env(k.as_ref(), v);
        }
        self
    }

    /// Start the process and return once it has bound its port and `/health` answers 200 with
    /// this instance's id. Panics (with the worker's log) if it exits or misses [`START_TIMEOUT`].
    pub async fn spawn(self) -> Worker {
        let dir = scratch_dir("worker");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let mut env: HashMap<String, String> = base_env(&self.redis_url, &self.queue);
        env.insert(
            "INSTANCE_ID".into(),
            format!("test-{}-{n}", std::process::id()),
        );
        env.extend(self.env);
        env.insert("PORT".into(), "0".into());
        let instance = env["INSTANCE_ID"].clone();
        let log = dir.join("worker.log");
        let out = std::fs::File::create(&log).expect("create worker log file");
        let err = out.try_clone().expect("clone worker log file");
        let child = Command::new(bin())
            .arg("run")
            .env_clear()
            .envs(&env)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn ops-worker run");
        let mut worker = Worker {
            child: Some(child),
            port: 0,
            instance,
            log,
            dir,
            redis_url: self.redis_url,
            queue: self.queue,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("HTTP client"),
        };
        worker.port = worker.await_bound_port().await;
        worker.wait_healthy().await;
        worker
    }
}

/// A running `ops-worker run` process with its own log file, killed (SIGKILL) on drop. On drop it
/// also checks that no test secret reached its log; when the test panics the log is kept and its
/// path printed.
pub struct Worker {
    child: Option<Child>,
    port: u16,
    /// Its `INSTANCE_ID` (as in heartbeats and `/health`).
    pub instance: String,
    /// Its stdout and stderr, merged.
    pub log: PathBuf,
    dir: PathBuf,
    redis_url: String,
    queue: String,
    /// A client for requests to this worker (see the `api_client` helpers).
    pub http: reqwest::Client,
}

impl Worker {
    /// A builder for a worker on this Redis and queue, with [`base_env`] as its environment.
    pub fn builder(redis_url: &str, queue: &str) -> WorkerBuilder {
        WorkerBuilder {
            redis_url: redis_url.to_string(),
            queue: queue.to_string(),
            env: Vec::new(),
        }
    }

    /// The port its HTTP server bound (reported by the worker itself).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The URL of `path` (which starts with `/`) on this worker.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The Redis URL it was started with.
    pub fn redis_url(&self) -> &str {
        &self.redis_url
    }

    /// The queue name it was started with.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The library's view of this worker's queue.
    /// `GET /health` as JSON.
    pub async fn health(&self) -> Value {
        reqwest::get(self.url("/health"))
            .await
            .expect("GET /health")
            .json()
            .await
            .expect("/health answers JSON")
    }

    pub async fn store(&self) -> QueueStore {
        store(&self.redis_url, &self.queue).await
    }

    /// Its process id (0 once reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Send a signal by name (`TERM`, `INT`, ...).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// kill -9, and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Wait for the process to exit on its own (polling, with a deadline).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("worker already reaped");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "worker did not exit within {timeout:?}; log:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Everything it has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its `/metrics` text, `None` while it does not answer.
    pub async fn metrics_text(&self) -> Option<String> {
        let r = self.http.get(self.url("/metrics")).send().await.ok()?;
        r.text().await.ok()
    }

    /// The port of its metrics listener (`METRICS_PORT`), from its "metrics listening" log line
    /// (written before "HTTP listening", so it is there once the worker is healthy).
    pub fn metrics_port(&self) -> Option<u16> {
        logged_port(&self.logs(), "metrics listening")
    }

    /// Wait until `/health` answers 200 for this instance (the one shared health wait). Panics with
    /// the log if the process exits first or [`START_TIMEOUT`] passes; the last answer seen is in
    /// the message.
    pub async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let url = self.url("/health");
        let mut last = String::from("no answer");
        loop {
            match get_json(&self.http, &url).await {
                Some((200, body)) if body["instance"] == self.instance.as_str() => return,
                Some((status, body)) => last = format!("{status} {body}"),
                None => {}
            }
            self.assert_still_running("report healthy");
            assert!(
                Instant::now() < deadline,
                "worker {} not healthy at {url} within {START_TIMEOUT:?} (last answer: {last}); log:\n{}",
                self.instance,
                self.logs()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The port from the first "HTTP listening" line of the log, polled until it appears.
    async fn await_bound_port(&mut self) -> u16 {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(port) = listening_port(&self.logs()) {
                return port;
            }
            self.assert_still_running("log its port");
            assert!(
                Instant::now() < deadline,
                "worker {} logged no `{LISTENING_MESSAGE}` line within {START_TIMEOUT:?}; log:\n{}",
                self.instance,
                self.logs()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn assert_still_running(&mut self, doing: &str) {
        if let Some(c) = self.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            panic!(
                "worker {} exited ({status}) before it could {doing}; log:\n{}",
                self.instance,
                self.logs()
            );
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "worker {} log kept at {}",
                self.instance,
                self.log.display()
            );
            return;
        }
        // Every test that runs a worker also checks that no secret reached its logs.
        let logs = self.logs();
        let _ = std::fs::remove_dir_all(&self.dir);
        for secret in SECRETS {
            assert!(
                !logs.contains(secret),
                "a secret reached the logs of {}",
                self.instance
            );
        }
    }
}

/// `GET url` answered as (status, JSON body), `None` while nothing answers. Non-JSON bodies come
/// back as a JSON string.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Option<(u16, Value)> {
    let r = http.get(url).send().await.ok()?;
    let status = r.status().as_u16();
    let text = r.text().await.ok()?;
    Some((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// The `port` field of the first JSON log line whose message is "HTTP listening".
pub fn listening_port(logs: &str) -> Option<u16> {
    logged_port(logs, LISTENING_MESSAGE)
}

/// The non-zero `port` field of the first JSON log line whose message is `message`.
pub fn logged_port(logs: &str, message: &str) -> Option<u16> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == message)
        .and_then(|l| l["port"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0)
}
