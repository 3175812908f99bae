//! Task handlers: what each task type does when a consumer runs it.
//!
//! A handler gets a [`TaskContext`] (the record and its payload, already parsed into a typed
//! [`Payload`]) and returns the JSON `result` for the record, or a
//! [`TaskError`] saying whether another attempt could help. The consumer owns everything around it
//! (leases, retries, panics, acknowledgements), so a handler is just the work. New task types plug
//! in by registering in [`HandlerRegistry`]; a type with no handler in this build is dead-lettered
//! with that reason, never retried.

mod noop;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::LocalBoxFuture;
use serde_json::Value;

use crate::queue::{ProjectClaim, QueueStore};
use crate::task::{Payload, TaskRecord, TaskType};

pub use noop::NoopHandler;

/// A panic payload that ends the consumer running the handler (instead of failing the attempt,
/// as any other panic does), so the supervisor's restart policy can be exercised. Only `noop`'s
/// `exit_consumer` diagnostic knob raises it.
#[derive(Debug, Clone, Copy)]
pub struct ExitConsumer;

/// Why an attempt did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// Worth another attempt after a back-off (timeouts, 5xx, a flaky dependency).
    #[error("{0}")]
    Retryable(String),
    /// Another attempt would fail the same way (bad input, 4xx, a build that failed).
    #[error("{0}")]
    Permanent(String),
    /// Another task is changing `project`: this one was deferred into the project's waiting set
    /// by the queue (no attempt burnt) and runs when `holder` lets go. Nothing is to be recorded.
    #[error("waiting for project {project} (held by task {holder})")]
    Deferred { project: String, holder: String },
}

/// What a handler gets to work with.
pub struct TaskContext {
    /// The record as claimed (attempts already counts this attempt). Its `payload` is the raw JSON
    /// as stored; handlers read [`TaskContext::payload`] instead.
    pub record: TaskRecord,
    /// The record's payload, validated for its type by the consumer, so a handler never parses
    /// JSON and cannot disagree with the submission rules.
    pub payload: Payload,
    /// The queue, for handlers that write progress to the record or emit events.
    pub store: QueueStore,
    /// The consumer running the task (its lease owner), for steps that check it still holds
    /// the task, such as taking a project's lock.
    pub consumer: String,
}

impl TaskContext {
    /// Hold `project` for this task (one change per project at a time, cluster-wide) before
    /// changing it. `Err(Deferred)` when another task holds it: the queue has already put this
    /// task in the project's waiting set, so the handler must stop.
    pub async fn hold_project(&self, project: &str) -> Result<(), TaskError> {
        let id = self.record.task_id.to_string();
        match self
            .store
            .acquire_project(&id, &self.consumer, project)
            .await
        {
            Ok(ProjectClaim::Acquired) => Ok(()),
            Ok(ProjectClaim::Waiting { holder }) => Err(TaskError::Deferred {
                project: project.to_string(),
                holder,
            }),
            Ok(ProjectClaim::Cancelled) => Err(TaskError::Permanent(format!(
                "cancelled while waiting for project {project}"
            ))),
            Ok(ProjectClaim::Stale { status }) => Err(TaskError::Retryable(format!(
                "this consumer no longer holds the task (it is {status})"
            ))),
            Err(e) => Err(TaskError::Retryable(format!(
                "cannot take the lock of project {project}: {e}"
            ))),
        }
    }
}

/// The future a handler returns. Consumers run on single-threaded arbiters, so it need not be Send.
pub type HandlerFuture = LocalBoxFuture<'static, Result<Value, TaskError>>;

/// One task type's behaviour.
pub trait TaskHandler: Send + Sync + 'static {
    fn run(&self, ctx: TaskContext) -> HandlerFuture;
}

/// Task type -> handler. Built once at startup and shared by every consumer.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: HashMap<TaskType, Arc<dyn TaskHandler>>,
}

impl HandlerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The handlers that need nothing but the queue (`noop`, its knobs honoured when
    /// `diagnostics`).
    pub fn builtin(diagnostics: bool) -> Self {
        let mut r = Self::new();
        r.register(TaskType::Noop, NoopHandler { diagnostics });
        r
    }

    pub fn register(&mut self, ty: TaskType, handler: impl TaskHandler) {
        self.handlers.insert(ty, Arc::new(handler));
    }

    pub fn get(&self, ty: TaskType) -> Option<Arc<dyn TaskHandler>> {
        self.handlers.get(&ty).cloned()
    }
}
