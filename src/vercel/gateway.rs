//! VercelActor: every Vercel call of this process goes through it.
//!
//! For each call it
//! 1. takes a token from the cluster-wide limiter in Redis (`VERCEL_RATE_LIMIT_PER_MIN`, a token
//!    bucket shared by every instance, plus a shared "hold until" written after a 429), waiting as
//!    long as the limiter says;
//! 2. sends the request once;
//! 3. on 429 stores the hold (from `Retry-After` or the body's `limit.reset`) so every instance
//!    waits, then tries again; on 5xx / transport errors retries with full-jitter back-off a few
//!    times; 401/403 and other 4xx are returned at once (permanent).
//!
//! Each call runs as its own future (`ResponseFuture`), so a slow Vercel answer never blocks the
//! actor's mailbox or its arbiter.

use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::Value;
use tracing::{Instrument, warn};

use super::client::{ApiRequest, VercelClient, VercelError};
use crate::queue::{LimiterAnswer, QueueStore};
use crate::telemetry::events::{
    InternalEvent, VercelAuthRejected, VercelRateLimitWait, VercelRequestFinished,
};

/// Retries of one call on 5xx / transport errors before the task attempt fails (retryable).
const TRANSIENT_RETRIES: u32 = 3;
/// The longest a single call may spend waiting for rate-limit holds before giving up (retryable).
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(600);
/// When a 429 names no wait, assume Vercel's one-minute window.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How long the limiter may be unreachable (Redis down) before a call fails.
const LIMITER_OUTAGE: Duration = Duration::from_secs(30);

/// Send one request (rate-limited, retried). Answers the 2xx body.
#[derive(Message)]
#[rtype(result = "Result<Value, VercelError>")]
pub struct Call {
    pub request: ApiRequest,
    /// The caller's span (the task's), so the actor's log lines carry task_id and trace_id.
    pub span: tracing::Span,
}

/// Pacing settings.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Calls per minute, cluster-wide; 0 = unlimited.
    pub per_min: u32,
    /// Calls allowed back-to-back.
    pub burst: u32,
}

pub struct VercelActor {
    /// The HTTP client (holds the token; never logged).
    client: VercelClient,
    /// Where the shared limiter lives.
    store: QueueStore,
    /// The cluster-wide pace.
    pace: Pace,
}

impl VercelActor {
    pub fn new(client: VercelClient, store: QueueStore, pace: Pace) -> Self {
        Self {
            client,
            store,
            pace,
        }
    }
}

impl Actor for VercelActor {
    type Context = Context<Self>;
}

impl Handler<Call> for VercelActor {
    type Result = ResponseFuture<Result<Value, VercelError>>;

    fn handle(&mut self, msg: Call, _: &mut Self::Context) -> Self::Result {
        let job = CallJob {
            client: self.client.clone(),
            store: self.store.clone(),
            pace: self.pace,
        };
        Box::pin(job.run(msg.request).instrument(msg.span))
    }
}

/// One call on its way: what it needs from the actor, owned, so it runs as its own future.
struct CallJob {
    client: VercelClient,
    store: QueueStore,
    pace: Pace,
}

impl CallJob {
    /// Wait until the shared limiter lets this call go.
    async fn wait_for_turn(&self, waited: &mut Duration) -> Result<(), VercelError> {
        let mut outage_since: Option<Instant> = None;
        loop {
            match self
                .store
                .vercel_acquire(self.pace.per_min, self.pace.burst)
                .await
            {
                Ok(LimiterAnswer::Go) => return Ok(()),
                Ok(answer) => {
                    outage_since = None;
                    let (wait, reason) = match answer {
                        LimiterAnswer::Bucket { wait } => (wait, "bucket"),
                        LimiterAnswer::RetryAfter { wait } => (wait, "retry_after"),
                        LimiterAnswer::Go => return Ok(()),
                    };
                    VercelRateLimitWait { reason, wait }.emit();
                    *waited += wait;
                    if *waited > MAX_RATE_LIMIT_WAIT {
                        return Err(VercelError::RateLimited {
                            retry_after: Some(wait),
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    let since = *outage_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > LIMITER_OUTAGE {
                        return Err(VercelError::Transport(format!(
                            "the shared rate limiter is unreachable: {e}"
                        )));
                    }
                    warn!(error = %e, "rate limiter unreachable; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Send once and report the call.
    async fn send_once(&self, req: &ApiRequest) -> Result<Value, VercelError> {
        let started = Instant::now();
        let result = self.client.send(req).await;
        VercelRequestFinished {
            operation: req.op.as_str(),
            status_class: match &result {
                Ok(_) => "2xx",
                Err(VercelError::Client { status: 404, .. }) if req.absent_ok => "absent",
                Err(e) => e.status_class(),
            },
            latency: started.elapsed(),
        }
        .emit();
        result
    }

    /// After a 429: hold every instance until Vercel's reset (a shared hold is then waited out,
    /// and counted, by `wait_for_turn`); give up past [`MAX_RATE_LIMIT_WAIT`].
    async fn hold(
        &self,
        op: &str,
        retry_after: Option<Duration>,
        waited: &mut Duration,
    ) -> Result<(), VercelError> {
        let wait = retry_after
            .unwrap_or(DEFAULT_RETRY_AFTER)
            .max(Duration::from_millis(100));
        warn!(
            op,
            wait_ms = wait.as_millis() as u64,
            "Vercel answered 429; holding every instance"
        );
        if let Err(e) = self.store.vercel_hold(wait).await {
            warn!(error = %e, "could not share the 429 hold; waiting locally");
            tokio::time::sleep(wait).await;
            *waited += wait;
        }
        if *waited > MAX_RATE_LIMIT_WAIT {
            return Err(VercelError::RateLimited {
                retry_after: Some(wait),
            });
        }
        Ok(())
    }

    async fn run(self, req: ApiRequest) -> Result<Value, VercelError> {
        let mut transient = 0u32;
        let mut waited = Duration::ZERO;
        loop {
            self.wait_for_turn(&mut waited).await?;
            match self.send_once(&req).await {
                Ok(v) => return Ok(v),
                Err(VercelError::RateLimited { retry_after }) => {
                    self.hold(req.op.as_str(), retry_after, &mut waited).await?
                }
                Err(e) if e.retryable() && req.idempotent && transient < TRANSIENT_RETRIES => {
                    transient += 1;
                    let ceiling = 500u64 << transient;
                    let backoff = Duration::from_millis(rand::random_range(ceiling / 4..=ceiling));
                    warn!(
                        op = req.op.as_str(),
                        error = %e,
                        retry = transient,
                        backoff_ms = backoff.as_millis() as u64,
                        "transient Vercel error; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => {
                    if let VercelError::Unauthorized { status, .. } = e {
                        VercelAuthRejected { status }.emit();
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// `operation` label values of the Vercel metrics (one per [`Operation`](super::client::Operation)).
pub const OPERATION_LABELS: [&str; 9] = [
    "create_deployment",
    "get_deployment",
    "list_deployments",
    "cancel_deployment",
    "promote",
    "rollback",
    "get_user",
    "get_project",
    "deployment_events",
];
/// `status_class` label values: the HTTP class, `429`, `error` (no answer), or `absent` (a 404 the
/// caller expects from a lookup: "none yet", not a failure).
pub const STATUS_CLASSES: [&str; 7] = ["2xx", "3xx", "4xx", "429", "5xx", "error", "absent"];
/// `reason` label values of rate-limit waits.
pub const RATE_LIMIT_REASONS: [&str; 2] = ["bucket", "retry_after"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vercel::client::Operation;

    #[test]
    fn metric_labels_cover_every_operation() {
        let ops: Vec<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(ops, OPERATION_LABELS);
    }
}
