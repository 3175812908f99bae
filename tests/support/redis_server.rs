//! A private `redis-server` per test: its own port and directory, killable and restartable.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tls::CertPair;
use super::{free_port, scratch_dir};

/// The TLS side of a [`RedisServer`]: a second port speaking only TLS.
#[derive(Clone)]
pub struct TlsListener {
    /// The TLS port (the plain port stays open on 127.0.0.1 for the harness's own pokes).
    pub port: u16,
    /// The server's certificate and key.
    pub pair: CertPair,
    /// The CA whose client certificates are accepted (`--tls-ca-cert-file`).
    pub ca: PathBuf,
    /// Whether clients must present a certificate (`--tls-auth-clients yes`).
    pub require_client_cert: bool,
}

/// A private redis-server for one test.
pub struct RedisServer {
    /// The port it listens on (chosen by [`free_port`]; a collision is retried on a fresh port).
    pub port: u16,
    dir: PathBuf,
    /// With `appendfsync always`, so a kill -9 + restart keeps every acknowledged write.
    persistent: bool,
    /// A TLS port as well, when the test asked for one.
    tls: Option<TlsListener>,
    /// Extra `redis-server` arguments (for example an ACL user).
    extra: Vec<String>,
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

    /// A Redis that also speaks TLS on [`RedisServer::tls_url`], with the server certificate `pair`;
    /// client certificates signed by `ca` are required when `require_client_cert`.
    pub fn start_tls(pair: &CertPair, ca: &std::path::Path, require_client_cert: bool) -> Self {
        Self::launch_with(
            false,
            Some(TlsListener {
                port: free_port(),
                pair: pair.clone(),
                ca: ca.to_path_buf(),
                require_client_cert,
            }),
            Vec::new(),
        )
    }

    /// A replica of the Redis on `master_port` (for Sentinel tests).
    pub fn start_replica_of(master_port: u16) -> Self {
        let args = vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            master_port.to_string(),
        ];
        Self::launch_with(false, None, args)
    }

    /// A Redis with extra `redis-server` arguments (for example a cluster node's).
    pub fn start_with(extra: Vec<String>) -> Self {
        Self::launch_with(false, None, extra)
    }

    /// The server's own directory (relative config files such as `nodes.conf` live here).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn launch(persistent: bool) -> Self {
        Self::launch_with(persistent, None, Vec::new())
    }

    fn launch_with(persistent: bool, tls: Option<TlsListener>, extra: Vec<String>) -> Self {
        let mut s = RedisServer {
            port: free_port(),
            dir: scratch_dir("redis"),
            persistent,
            tls,
            extra,
            child: None,
        };
        s.spawn();
        s
    }

    /// `rediss://localhost:<tls port>` (the name the test server certificate is valid for).
    pub fn tls_url(&self) -> String {
        let tls = self.tls.as_ref().expect("started with start_tls");
        format!("rediss://localhost:{}", tls.port)
    }

    /// `redis-server` arguments of the TLS listener.
    fn tls_args(&self) -> Vec<String> {
        let Some(t) = &self.tls else {
            return Vec::new();
        };
        let auth = if t.require_client_cert { "yes" } else { "no" };
        [
            "--tls-port".to_string(),
            t.port.to_string(),
            "--tls-cert-file".into(),
            t.pair.cert.display().to_string(),
            "--tls-key-file".into(),
            t.pair.key.display().to_string(),
            "--tls-ca-cert-file".into(),
            t.ca.display().to_string(),
            "--tls-auth-clients".into(),
            auth.into(),
        ]
        .into()
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
        cmd.args(self.tls_args()).args(&self.extra);
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
                if let Some(t) = self.tls.as_mut() {
                    t.port = free_port();
                }
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

    /// `redis://127.0.0.1:<port>`, for `REDIS_URL` and the library's store.
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
