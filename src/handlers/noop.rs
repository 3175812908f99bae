//! `noop`: the diagnostic task used by tests, benchmarks and smoke checks.
//!
//! Payload ([`Noop`]): `sleep_ms` (wait that long), `fail` (fail with a retryable error), `panic`
//! (panic inside the handler: a failed attempt), `exit_consumer` (end the consumer, to exercise
//! the restart policy). The knobs only work with `WORKER_DIAGNOSTICS=true`; otherwise a task
//! using one fails permanently, naming the knob (submissions are refused earlier, with a 400).

use std::time::Duration;

use serde_json::json;

use super::{ExitConsumer, HandlerFuture, TaskContext, TaskError, TaskHandler};
use crate::task::{Noop, Payload};

/// Runs `noop` tasks.
pub struct NoopHandler {
    /// `WORKER_DIAGNOSTICS`: whether the knobs are honoured.
    pub diagnostics: bool,
}

impl TaskHandler for NoopHandler {
    fn run(&self, ctx: TaskContext) -> HandlerFuture {
        let Payload::Noop(noop) = ctx.payload else {
            let msg = format!(
                "the noop handler does not run `{}` tasks",
                ctx.record.task_type
            );
            return Box::pin(async move { Err(TaskError::Permanent(msg)) });
        };
        if let Some(field) = noop.diagnostic_field().filter(|_| !self.diagnostics) {
            let msg = format!("{field} is a diagnostic knob and WORKER_DIAGNOSTICS is off");
            return Box::pin(async move { Err(TaskError::Permanent(msg)) });
        }
        Box::pin(run(noop))
    }
}

async fn run(noop: Noop) -> Result<serde_json::Value, TaskError> {
    if noop.sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(noop.sleep_ms)).await;
    }
    if noop.exit_consumer {
        std::panic::panic_any(ExitConsumer);
    }
    if noop.panic {
        panic!("noop task asked to panic (payload.panic = true)");
    }
    if noop.fail {
        return Err(TaskError::Retryable(
            "noop task asked to fail (payload.fail = true)".into(),
        ));
    }
    Ok(json!({ "slept_ms": noop.sleep_ms }))
}
