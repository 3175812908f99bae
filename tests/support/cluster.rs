//! A real local Redis Cluster for topology tests: three masters (no replicas), each a private
//! `redis-server --cluster-enabled yes` on a free port with its own `nodes.conf`, joined with
//! `redis-cli --cluster create`; plus the pokes tests need: which master owns a queue's slot, a
//! queue name whose slot lives on a given master, and moving one slot to another master the way a
//! resharding does (SETSLOT IMPORTING/MIGRATING, MIGRATE of its keys, SETSLOT NODE).

use std::process::Command;
use std::time::{Duration, Instant};

use super::RedisServer;

/// How long the cluster may take to agree after `create` or a slot move.
const SETTLE: Duration = Duration::from_secs(30);

/// Three cluster masters.
pub struct RedisCluster {
    /// The masters, in the order `create` was given them.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Start three nodes, create the cluster, and wait until every node reports `cluster_state:ok`
    /// and knows all three masters.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    "nodes.conf".into(),
                    "--cluster-node-timeout".into(),
                    "5000".into(),
                ])
            })
            .collect();
        let cluster = RedisCluster { nodes };
        let addrs: Vec<String> = cluster
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli must be installed (apt-get install redis-tools)");
        assert!(out.status.success(), "cluster create: {out:?}");
        cluster.settle(|c| c.agree());
        cluster
    }

    /// SIGKILL every node (the cluster is down; `nodes.conf` stays).
    pub fn kill(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
    }

    /// Start every node again on its port and directory; they rejoin from `nodes.conf` (with no
    /// data: the nodes keep nothing on disk). Waits until the cluster is `ok` again.
    pub fn restart(&mut self) {
        for n in &mut self.nodes {
            n.restart();
        }
        self.settle(|c| c.agree());
    }

    /// The masters' ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `REDIS_CLUSTER_NODES`: every master as `127.0.0.1:port`.
    pub fn nodes_env(&self) -> String {
        let addrs: Vec<String> = self
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        addrs.join(",")
    }

    /// `REDIS_URL` for the cluster (credentials and TLS would come from it; its host is a node).
    pub fn url(&self) -> String {
        self.nodes[0].url()
    }

    fn node(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .expect("a node of this cluster")
    }

    /// The slot of `key` (its hash tag's), asked of a node.
    pub fn slot_of(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.nodes[0].conn())
            .expect("CLUSTER KEYSLOT")
    }

    /// The port of the master owning `slot`, as the node on `asked` sees it.
    pub fn owner_seen_by(&self, asked: u16, slot: u16) -> Option<u16> {
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut self.node(asked).conn())
            .ok()?;
        nodes.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let port = fields
                .get(1)?
                .split('@')
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()?;
            let owns = fields.iter().skip(8).any(|range| {
                let mut ends = range.split('-');
                let lo = ends.next().and_then(|v| v.parse::<u16>().ok());
                let hi = ends.next().and_then(|v| v.parse::<u16>().ok()).or(lo);
                matches!((lo, hi), (Some(lo), Some(hi)) if (lo..=hi).contains(&slot))
            });
            owns.then_some(port)
        })
    }

    /// The port of the master owning `slot` (every node agrees; panics when they don't in time).
    pub fn owner(&self, slot: u16) -> u16 {
        let mut owner = None;
        self.settle(|c| {
            let seen: Vec<Option<u16>> = c
                .ports()
                .iter()
                .map(|p| c.owner_seen_by(*p, slot))
                .collect();
            owner = seen[0];
            owner.is_some() && seen.iter().all(|s| *s == owner)
        });
        owner.expect("settled")
    }

    /// The slot of queue `name` (the key base `ops:{name}`: its hash tag is the name).
    pub fn queue_slot(&self, name: &str) -> u16 {
        self.slot_of(&format!("ops:{{{name}}}"))
    }

    /// A queue name starting with `prefix` whose slot lives on the master at `port`.
    pub fn queue_on(&self, port: u16, prefix: &str) -> String {
        (0..10_000)
            .map(|i| format!("{prefix}{i}"))
            .find(|name| self.owner(self.queue_slot(name)) == port)
            .expect("some name hashes to every master")
    }

    /// A node's cluster id.
    pub fn node_id(&self, port: u16) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut self.node(port).conn())
            .expect("CLUSTER MYID")
    }

    /// Move `slot` from its master to the master at `to`, keys included, as a resharding does:
    /// IMPORTING on the target, MIGRATING on the source, MIGRATE of the slot's keys in batches
    /// until none is left, then SETSLOT NODE on every node. Answers how many keys moved.
    pub fn move_slot(&self, slot: u16, to: u16) -> usize {
        let from = self.owner(slot);
        assert_ne!(from, to, "slot {slot} is already on {to}");
        let (from_id, to_id) = (self.node_id(from), self.node_id(to));
        let setslot = |port: u16, args: &[&str]| {
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(args)
                .query::<()>(&mut self.node(port).conn())
                .unwrap_or_else(|e| panic!("SETSLOT {args:?} on {port}: {e}"));
        };
        setslot(to, &["IMPORTING", &from_id]);
        setslot(from, &["MIGRATING", &to_id]);
        let mut source = self.node(from).conn();
        let mut moved = 0;
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(100)
                .query(&mut source)
                .expect("GETKEYSINSLOT");
            if keys.is_empty() {
                break;
            }
            let reply: redis::Value = redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to)
                .arg("")
                .arg(0)
                .arg(5_000)
                .arg("KEYS")
                .arg(&keys)
                .query(&mut source)
                .expect("MIGRATE");
            assert!(
                matches!(reply, redis::Value::Okay | redis::Value::SimpleString(_)),
                "MIGRATE answered {reply:?}"
            );
            moved += keys.len();
        }
        setslot(to, &["NODE", &to_id]);
        setslot(from, &["NODE", &to_id]);
        for port in self.ports().into_iter().filter(|p| *p != from && *p != to) {
            setslot(port, &["NODE", &to_id]);
        }
        self.settle(|c| {
            c.ports()
                .iter()
                .all(|p| c.owner_seen_by(*p, slot) == Some(to))
        });
        moved
    }

    /// Every node is `cluster_state:ok` and lists three masters.
    fn agree(&self) -> bool {
        self.nodes.iter().all(|n| {
            let mut conn = n.conn();
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut conn)
                .unwrap_or_default();
            let nodes: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query(&mut conn)
                .unwrap_or_default();
            info.contains("cluster_state:ok") && nodes.matches("master").count() == 3
        })
    }

    /// Poll `ok` every 50 ms until it holds, or fail after [`SETTLE`].
    fn settle(&self, mut ok: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + SETTLE;
        while !ok(self) {
            assert!(Instant::now() < deadline, "the cluster did not settle");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
