//! `noop`: the diagnostic task used by tests, benchmarks and smoke checks.
//!
//! Payload ([`Noop`]): `sleep_ms` (wait that long), `fail` (fail with a retryable error), `panic`
//! (panic, to exercise the consumer's panic boundary and the supervisor's restart limit).

use std::time::Duration;

use serde_json::json;

use super::{HandlerFuture, TaskContext, TaskError, TaskHandler};
use crate::task::{Noop, Payload};

/// Runs `noop` tasks.
pub struct NoopHandler;

impl TaskHandler for NoopHandler {
    fn run(&self, ctx: TaskContext) -> HandlerFuture {
        let Payload::Noop(noop) = ctx.payload else {
            let msg = format!(
                "the noop handler does not run `{}` tasks",
                ctx.record.task_type
            );
            return Box::pin(async move { Err(TaskError::Permanent(msg)) });
        };
        Box::pin(run(noop))
    }
}

async fn run(
    Noop {
        sleep_ms,
        fail,
        panic,
    }: Noop,
) -> Result<serde_json::Value, TaskError> {
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
}
