//! Shared test harness: a private `redis-server` per test (free port, killable, restartable), the
//! real `ops-worker` binary as a child process, and poll-with-deadline helpers.
//!
//! Every test gets its own Redis so tests never see each other's keys and can kill or restart
//! their Redis freely. Nothing here sleeps to synchronise: waits poll a condition until a deadline.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ops_worker::config::{Config, Mode};
use ops_worker::queue::QueueStore;
use ops_worker::task::{NewTask, TaskRecord};
use serde_json::Value;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The Vercel token every test process gets; tests assert it never shows up in logs or records.
pub const TEST_VERCEL_TOKEN: &str = "tok_test_5ecret_never_logged";
/// The API signing key every test process gets.
pub const TEST_JWT_SECRET: &str = "jwt_test_secret_0123456789_abcdefghij";

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// A fresh scratch directory, removed by its owner's Drop.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir =
        std::env::temp_dir().join(format!("ops-worker-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A private redis-server for one test.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    /// With `appendfsync always`, so a kill -9 + restart keeps every acknowledged write.
    persistent: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// An in-memory Redis (nothing survives a restart).
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// A Redis with an append-only file, so data survives kill -9 and restart.
    pub fn start_persistent() -> Self {
        Self::launch(true)
    }

    fn launch(persistent: bool) -> Self {
        let mut s = RedisServer {
            port: free_port(),
            dir: scratch_dir("redis"),
            persistent,
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--save")
            .arg("")
            .arg("--logfile")
            .arg(self.dir.join("redis.log"));
        if self.persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Our own server must be the one answering: if it exited (a parallel test took the
            // port between free_port() and its bind), start again on a fresh port.
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                assert!(Instant::now() < deadline, "redis-server keeps exiting");
                self.port = free_port();
                return self.spawn();
            }
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut c) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL the server.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A blocking connection for direct pokes (raw writes, config).
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to test redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Environment for a worker or CLI process on this Redis and queue.
pub fn base_env(redis_url: &str, queue: &str) -> HashMap<String, String> {
    [
        ("REDIS_URL", redis_url.to_string()),
        ("QUEUE_NAME", queue.to_string()),
        ("LOG_FORMAT", "json".to_string()),
        ("LOG_LEVEL", "info".to_string()),
        // `run` requires a token; tests that talk to Vercel point VERCEL_API_URL at the simulator.
        ("VERCEL_TOKEN", TEST_VERCEL_TOKEN.to_string()),
        ("VERCEL_API_URL", "http://127.0.0.1:9".to_string()),
        ("JWT_SECRET", TEST_JWT_SECRET.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The library's view of a queue, for enqueuing and inspecting from tests.
pub fn store(redis_url: &str, queue: &str) -> QueueStore {
    let config = Config::from_vars(&base_env(redis_url, queue), Mode::Tool).expect("test config");
    QueueStore::new(&config.redis_url, &config.queue).expect("store")
}

/// A valid noop task.
pub fn noop(payload: Value) -> TaskRecord {
    task("noop", "P2", payload)
}

pub fn task(ty: &str, priority: &str, payload: Value) -> TaskRecord {
    NewTask {
        task_type: Some(ty.into()),
        priority: Some(priority.into()),
        payload: Some(payload),
        source: Some("test".into()),
        ..Default::default()
    }
    .validate(3, chrono::Utc::now())
    .expect("valid test task")
}

/// The `ops-worker` binary built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ops-worker")
}

/// A running `ops-worker run` process.
pub struct WorkerProcess {
    child: Option<Child>,
    pub port: u16,
    pub instance: String,
    pub log: PathBuf,
    dir: PathBuf,
}

impl WorkerProcess {
    /// Start `ops-worker run` with the base environment plus `extra`.
    pub fn spawn(redis_url: &str, queue: &str, extra: &[(&str, &str)]) -> Self {
        let dir = scratch_dir("worker");
        let port = free_port();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let instance = format!("test-{}-{n}", std::process::id());
        let log = dir.join("worker.log");
        let mut env = base_env(redis_url, queue);
        env.insert("PORT".into(), port.to_string());
        env.insert("INSTANCE_ID".into(), instance.clone());
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(bin())
            .arg("run")
            .env_clear()
            .envs(&env)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn ops-worker");
        WorkerProcess {
            child: Some(child),
            port,
            instance,
            log,
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// kill -9, and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Wait for the process to exit on its own.
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

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill9();
        if !std::thread::panicking() {
            // Every test that runs a worker also checks that no secret reached its logs.
            let logs = self.logs();
            let _ = std::fs::remove_dir_all(&self.dir);
            for secret in [
                TEST_VERCEL_TOKEN,
                TEST_JWT_SECRET,
                "sim_token_for_tests_only",
            ] {
                assert!(
                    !logs.contains(secret),
                    "a secret reached the logs of {}",
                    self.instance
                );
            }
        } else {
            eprintln!(
                "worker {} log kept at {}",
                self.instance,
                self.log.display()
            );
        }
    }
}

/// Poll `check` every 25 ms until it returns `Some`, or fail after `timeout` saying `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The HTTP status of a GET (`None` while nothing answers).
pub async fn http_status(url: &str) -> Option<u16> {
    reqwest::get(url).await.ok().map(|r| r.status().as_u16())
}

/// Wait until the queue has completed at least `n` tasks in total.
pub async fn wait_completed(store: &QueueStore, n: u64, timeout: Duration) {
    eventually(timeout, &format!("{n} tasks completed"), || async {
        let s = store.stats().await.ok()?;
        (s.completed_total >= n).then_some(())
    })
    .await
}

/// Run the CLI to completion with the base environment plus `extra`.
pub fn cli(
    redis_url: &str,
    queue: &str,
    extra: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut env = base_env(redis_url, queue);
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Command::new(bin())
        .args(args)
        .env_clear()
        .envs(&env)
        .output()
        .expect("run ops-worker")
}

/// The Vercel simulator (`ops-worker vercel-sim`) as a child process.
pub struct SimProcess {
    child: Option<Child>,
    pub url: String,
    pub token: String,
}

impl SimProcess {
    /// Start it on a free port with extra flags (e.g. `--build-secs 1`); waits until it answers.
    pub fn spawn(flags: &[&str]) -> Self {
        let port = free_port();
        let token = "sim_token_for_tests_only".to_string();
        let child = Command::new(bin())
            .arg("vercel-sim")
            .args(["--port", &port.to_string(), "--token", &token])
            .args(flags)
            .env_clear()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn vercel-sim");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "vercel-sim did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        SimProcess {
            child: Some(child),
            url,
            token,
        }
    }

    /// Environment pointing a worker at this simulator.
    pub fn worker_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VERCEL_API_URL", self.url.clone()),
            ("VERCEL_TOKEN", self.token.clone()),
            ("VERCEL_POLL_INTERVAL_SECS", "0.2".into()),
        ]
    }

    /// `GET /_sim/stats`.
    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/_sim/stats", self.url))
            .await
            .expect("sim stats")
            .json()
            .await
            .expect("sim stats JSON")
    }

    /// Create a deployment straight at the simulator (outside any worker), answering its body.
    pub async fn create_deployment(&self, body: Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}/v13/deployments", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("create deployment")
            .json()
            .await
            .expect("deployment JSON")
    }

    /// `POST /_sim/faults`.
    pub async fn faults(&self, body: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/_sim/faults", self.url))
            .json(&body)
            .send()
            .await
            .expect("sim faults");
        assert!(
            r.status().is_success(),
            "faults rejected: {}",
            r.text().await.unwrap_or_default()
        );
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `WorkerProcess::spawn` with owned environment values.
pub fn spawn_worker(redis_url: &str, queue: &str, env: &[(&'static str, String)]) -> WorkerProcess {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    WorkerProcess::spawn(redis_url, queue, &pairs)
}
