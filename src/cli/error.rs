//! [`CliError`]: every way a command can fail, and the one place mapping failures to exit codes.

use crate::api::auth::AuthError;
use crate::app::StartupError;
use crate::config::ConfigError;
use crate::queue::QueueError;
use crate::task::{ParseError, ValidationError};

use super::bench::BenchError;
use super::demo::DemoError;

/// Failure of a command. [`CliError::exit_code`] maps it to the process exit code: 2 for invalid
/// input (the message names the variable, flag or field), 1 for a runtime failure.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The environment (plus the global flags) does not validate; names every variable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A flag has an invalid value; `arg` names it as typed on the command line.
    #[error("{arg}: {problem}")]
    InvalidArg {
        /// The flag, without dashes (`ttl`, `fail-rate`).
        arg: &'static str,
        /// What is wrong with its value.
        problem: String,
    },
    /// A priority argument of `pause`/`resume` is not P0..P3 (the message quotes it).
    #[error(transparent)]
    InvalidPriority(ParseError),
    /// A task to submit fails validation; names the field (`payload.project`).
    #[error(transparent)]
    InvalidTask(#[from] ValidationError),
    /// Redis unreachable or answering unexpectedly.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// `run` could not start (port taken, Vercel client, missing secret).
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// No task with this id.
    #[error("task {0} not found")]
    TaskNotFound(String),
    /// `cancel` of a task that already ended.
    #[error("task {task_id} is already {status}; nothing to cancel")]
    NotCancellable {
        /// The task asked for.
        task_id: String,
        /// Its terminal status.
        status: &'static str,
    },
    /// `retry` of a dead-letter entry whose task record is gone.
    #[error("task {0} is a dead-lettered stub with no task behind it; nothing to retry")]
    DeadLetterStub(String),
    /// `retry` of a task that is not `failed`.
    #[error("task {task_id} is {status}; only failed tasks can be retried")]
    NotRetryable {
        /// The task asked for.
        task_id: String,
        /// Its current status.
        status: &'static str,
    },
    /// `token` could not sign (the signer's own message).
    #[error(transparent)]
    Mint(AuthError),
    /// `vercel-sim` could not bind its port.
    #[error("cannot start the simulator: {0}")]
    Simulator(#[source] std::io::Error),
    /// `doctor` found a failing check (the table says which).
    #[error("doctor found problems")]
    DoctorFailed,
    /// `demo` failed; its configuration errors count as invalid input.
    #[error(transparent)]
    Demo(#[from] DemoError),
    /// `bench` failed.
    #[error(transparent)]
    Bench(#[from] BenchError),
}

impl CliError {
    /// 2 for invalid input, 1 for a runtime failure (0 is success, never an error).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_)
            | CliError::InvalidArg { .. }
            | CliError::InvalidPriority(_)
            | CliError::InvalidTask(_)
            | CliError::Demo(DemoError::Config(_)) => 2,
            CliError::Queue(_)
            | CliError::Startup(_)
            | CliError::TaskNotFound(_)
            | CliError::NotCancellable { .. }
            | CliError::DeadLetterStub(_)
            | CliError::NotRetryable { .. }
            | CliError::Mint(_)
            | CliError::Simulator(_)
            | CliError::DoctorFailed
            | CliError::Demo(_)
            | CliError::Bench(_) => 1,
        }
    }

    /// An invalid value of the flag `arg`.
    pub(super) fn invalid(arg: &'static str, problem: impl Into<String>) -> Self {
        CliError::InvalidArg {
            arg,
            problem: problem.into(),
        }
    }
}
