//! Recording a batch's outcomes: one script call per kind of outcome (complete, fail, release,
//! cancel), retried through Redis outages for up to one lease length, answering what the queue
//! applied to each task.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing::error;

use crate::queue::{Applied, Done, Failure, QueueError, QueueStore, TaskOutcome};

/// The script calls one batch needs.
#[derive(Default)]
pub(super) struct Writes {
    /// Successful attempts and their results.
    pub complete: Vec<Done>,
    /// Failed attempts; the `fail` script decides retry or dead-letter.
    pub fail: Vec<Failure>,
    /// Leases handed back (drain deadline, or claimed but never started).
    pub release: Vec<String>,
    /// Tasks stopped on an operator's cancel.
    pub cancel: Vec<String>,
}

/// One script call.
enum Step {
    Complete(Vec<Done>),
    Fail(Vec<Failure>),
    Release(Vec<String>),
    Cancel(String),
}

impl Step {
    async fn send(
        &self,
        store: &QueueStore,
        consumer: &str,
    ) -> Result<Vec<TaskOutcome>, QueueError> {
        match self {
            Step::Complete(done) => store.complete_claimed(done).await,
            Step::Fail(failures) => store.fail(consumer, failures).await,
            Step::Release(ids) => store.release(consumer, ids).await,
            Step::Cancel(id) => store.finish_cancel(consumer, id).await,
        }
    }
}

fn steps(w: Writes) -> Vec<Step> {
    let mut steps = Vec::new();
    if !w.complete.is_empty() {
        steps.push(Step::Complete(w.complete));
    }
    if !w.fail.is_empty() {
        steps.push(Step::Fail(w.fail));
    }
    if !w.release.is_empty() {
        steps.push(Step::Release(w.release));
    }
    steps.extend(w.cancel.into_iter().map(Step::Cancel));
    steps
}

/// Send the writes, retrying the failed ones through Redis outages for up to one lease length.
/// `None` if that fails: the leases lapse and the tasks run again elsewhere (at-least-once).
pub(super) async fn write(
    store: &QueueStore,
    consumer: &str,
    w: Writes,
) -> Option<HashMap<String, Applied>> {
    let give_up = Instant::now() + store.lease();
    let mut backoff = Duration::from_millis(50);
    let mut applied = HashMap::new();
    let mut pending = steps(w);
    loop {
        let mut failed = Vec::new();
        for step in pending {
            match step.send(store, consumer).await {
                Ok(outcomes) => applied.extend(outcomes.into_iter().map(|o| (o.id, o.applied))),
                Err(_) => failed.push(step),
            }
        }
        if failed.is_empty() {
            return Some(applied);
        }
        if Instant::now() >= give_up {
            error!(
                calls = failed.len(),
                "could not record task outcomes; their leases will lapse and they will run again"
            );
            return None;
        }
        pending = failed;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
