//! The cluster-wide Vercel rate limiter: a token bucket shared by every instance, plus a shared
//! "hold until" written after a 429, both on the Redis clock so skewed instances agree.

use std::time::Duration;

use super::{QueueError, QueueStore};

/// What the limiter says about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimiterAnswer {
    /// Send it now.
    Go,
    /// The bucket is empty: ask again after `wait`.
    Bucket { wait: Duration },
    /// Vercel asked every instance to hold (a 429): ask again after `wait`.
    RetryAfter { wait: Duration },
}

impl QueueStore {
    /// Take a token from the cluster-wide Vercel rate limiter (`per_min` 0 = unlimited).
    pub async fn vercel_acquire(
        &self,
        per_min: u32,
        burst: u32,
    ) -> Result<LimiterAnswer, QueueError> {
        let mut inv = self.invocation(&self.scripts.vercel_acquire);
        inv.arg(per_min).arg(burst);
        let (ms, reason): (u64, String) = self.run(&inv).await?;
        let wait = Duration::from_millis(ms);
        Ok(match reason.as_str() {
            _ if ms == 0 => LimiterAnswer::Go,
            "bucket" => LimiterAnswer::Bucket { wait },
            "retry_after" => LimiterAnswer::RetryAfter { wait },
            other => {
                return Err(QueueError::Protocol(format!(
                    "the rate limiter answered `{other}`"
                )));
            }
        })
    }

    /// Hold every instance's Vercel calls for `wait` (after a 429).
    pub async fn vercel_hold(&self, wait: Duration) -> Result<(), QueueError> {
        let mut inv = self.invocation(&self.scripts.vercel_hold);
        inv.arg(wait.as_millis() as u64);
        let _: i64 = self.run(&inv).await?;
        Ok(())
    }
}
