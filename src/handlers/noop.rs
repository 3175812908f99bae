//! `noop`: the diagnostic task used by tests, benchmarks and smoke checks.
//!
//! Payload: `sleep_ms` (wait that long), `fail` (fail with a retryable error), `panic` (panic, to
//! exercise the consumer's panic boundary and the supervisor's restart limit).

use std::time::Duration;

use serde_json::json;

use super::{HandlerFuture, TaskContext, TaskError, TaskHandler};

pub struct NoopHandler;

impl TaskHandler for NoopHandler {
    fn run(&self, ctx: TaskContext) -> HandlerFuture {
        let p = ctx.record.payload;
        let sleep_ms = p.get("sleep_ms").and_then(|v| v.as_u64()).unwrap_or(0);
        let fail = p.get("fail").and_then(|v| v.as_bool()).unwrap_or(false);
        let panic = p.get("panic").and_then(|v| v.as_bool()).unwrap_or(false);
        Box::pin(async move {
            if sleep_ms > 0 {
                tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
            }
            if panic {
                panic!("noop task asked to panic (payload.panic = true)");
            }
            if fail {
                return Err(TaskError::Retryable(
                    "noop task asked to fail (payload.fail = true)".into(),
                ));
            }
            Ok(json!({ "slept_ms": sleep_ms }))
        })
    }
}
