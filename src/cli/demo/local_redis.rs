//! The demo's Redis: `REDIS_URL` (or the local default) when it answers, else a private
//! `redis-server` on a free port that is killed when the demo ends.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::DemoError;
use crate::config::{LOCAL_REDIS_URL, RedisUrl};

/// A private redis-server the demo started (killed on drop).
pub(super) struct PrivateRedis {
    /// The `redis-server` process.
    child: Child,
    /// Its working directory, removed on drop.
    dir: std::path::PathBuf,
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PING answered within 2 s.
async fn answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let attempt = async {
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut c).await.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(_))
    )
}

/// `REDIS_URL` (or the local default) when it answers, else a private redis-server.
pub(super) async fn redis_for_demo(
    vars: &HashMap<String, String>,
) -> Result<(String, Option<PrivateRedis>), DemoError> {
    let wanted = vars
        .get("REDIS_URL")
        .filter(|u| !u.is_empty())
        .cloned()
        .unwrap_or_else(|| LOCAL_REDIS_URL.to_string());
    if answers(&wanted).await {
        return Ok((wanted, None));
    }
    let wanted = RedisUrl::new(&wanted);
    let (url, redis) = start_private_redis(&wanted).await?;
    println!("nothing answered at {wanted}; started a private redis-server at {url}");
    Ok((url, Some(redis)))
}

/// Run `redis-server` on a free local port (no persistence, `noeviction`) and wait until it
/// answers (at most 10 s). `wanted` is only named in the error.
async fn start_private_redis(wanted: &RedisUrl) -> Result<(String, PrivateRedis), DemoError> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(DemoError::NoFreePort)?;
    let dir = std::env::temp_dir().join(format!("ops-worker-demo-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(DemoError::RedisDir)?;
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--maxmemory-policy", "noeviction"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| DemoError::NoRedis {
            url: wanted.clone(),
            source,
        })?;
    let redis = PrivateRedis { child, dir };
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !answers(&url).await {
        if Instant::now() > deadline {
            return Err(DemoError::RedisNotAnswering);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((url, redis))
}
