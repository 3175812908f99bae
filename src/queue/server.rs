//! What the store asks of the Redis server itself rather than of the queue's keys: memory and CPU
//! used (`INFO`, on a cluster the master owning the queue's slot), the completion counter the
//! bench polls, and deleting every key of a queue (`bench`'s private queue).

use super::{QueueError, QueueStore};

impl QueueStore {
    /// Redis's `used_memory` and `maxmemory` (0 = no limit), from `INFO memory`.
    pub async fn memory(&self) -> Result<(u64, u64), QueueError> {
        let info: String = self.query(redis::cmd("INFO").arg("memory")).await?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        match (field("used_memory"), field("maxmemory")) {
            (Some(used), Some(max)) => Ok((used, max)),
            _ => Err(QueueError::Protocol(
                "INFO memory has no used_memory / maxmemory".into(),
            )),
        }
    }

    /// Tasks completed so far (`completed_total`): one `HGET`, for callers that poll it often
    /// (`bench`), where the `stats` snapshot would be the larger cost.
    pub async fn completed_total(&self) -> Result<u64, QueueError> {
        let v: Option<u64> = self
            .query(
                redis::cmd("HGET")
                    .arg(self.key("counters"))
                    .arg("completed_total"),
            )
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// CPU seconds the Redis server has used since it started (`used_cpu_sys + used_cpu_user`
    /// from `INFO cpu`), and its version (`redis_version` from `INFO server`).
    pub async fn server_cpu(&self) -> Result<(f64, String), QueueError> {
        let info: String = self
            .query(redis::cmd("INFO").arg("server").arg("cpu"))
            .await?;
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let secs = |name: &str| field(name).and_then(|v| v.parse::<f64>().ok());
        match (secs("used_cpu_sys"), secs("used_cpu_user")) {
            (Some(sys), Some(user)) => Ok((
                sys + user,
                field("redis_version").unwrap_or("unknown").to_string(),
            )),
            _ => Err(QueueError::Protocol(
                "INFO cpu has no used_cpu_sys / used_cpu_user".into(),
            )),
        }
    }

    /// Delete every key of this queue (used by `bench` on its private queue).
    pub async fn destroy(&self) -> Result<u64, QueueError> {
        let mut deleted = 0u64;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(format!("{}:*", self.base))
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            if !keys.is_empty() {
                let n: u64 = self.query(redis::cmd("UNLINK").arg(&keys)).await?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}
