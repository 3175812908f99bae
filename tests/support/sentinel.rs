//! A Sentinel-managed Redis for failover tests: a master, one replica and three real
//! `redis-sentinel` processes watching them as `mymaster` (quorum 2, down after 1 s), each on a
//! free port with its own config file (Sentinels rewrite theirs).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{RedisServer, free_port, scratch_dir};

/// The master name the Sentinels watch.
pub const MASTER_NAME: &str = "mymaster";

/// Master, replica and three Sentinels.
pub struct SentinelSet {
    pub master: RedisServer,
    pub replica: RedisServer,
    /// Ports of the Sentinels.
    pub ports: Vec<u16>,
    children: Vec<Child>,
    dir: std::path::PathBuf,
}

impl SentinelSet {
    /// Start everything and wait until every Sentinel sees the replica and its peers.
    pub fn start() -> Self {
        let master = RedisServer::start();
        let replica = RedisServer::start_replica_of(master.port);
        let dir = scratch_dir("sentinel");
        let mut set = SentinelSet {
            master,
            replica,
            ports: Vec::new(),
            children: Vec::new(),
            dir,
        };
        for n in 0..3 {
            set.spawn_sentinel(n);
        }
        set.wait_until_watching();
        set
    }

    fn spawn_sentinel(&mut self, n: usize) {
        let port = free_port();
        let conf = self.dir.join(format!("sentinel-{n}.conf"));
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\nlogfile {dir}/sentinel-{n}.log\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 5000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            dir = self.dir.display(),
            master = self.master.port,
        );
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("redis-sentinel")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-sentinel must be installed (apt-get install redis-sentinel)");
        self.ports.push(port);
        self.children.push(child);
    }

    /// `REDIS_SENTINELS` for these Sentinels.
    pub fn nodes(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The master's port as the first answering Sentinel reports it.
    pub fn reported_master_port(&self) -> Option<u16> {
        self.ports.iter().find_map(|p| {
            let client = redis::Client::open(format!("redis://127.0.0.1:{p}")).ok()?;
            let mut c = client
                .get_connection_with_timeout(Duration::from_secs(1))
                .ok()?;
            let (_, port): (String, u16) = redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(MASTER_NAME)
                .query(&mut c)
                .ok()?;
            Some(port)
        })
    }

    fn wait_until_watching(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self.ports.iter().all(|p| {
                let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{p}")) else {
                    return false;
                };
                let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
                    return false;
                };
                let replicas: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg("replicas")
                    .arg(MASTER_NAME)
                    .query(&mut c)
                    .unwrap_or_default();
                let peers: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg("sentinels")
                    .arg(MASTER_NAME)
                    .query(&mut c)
                    .unwrap_or_default();
                !replicas.is_empty() && peers.len() >= 2
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Sentinels did not settle; logs in {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
