//! What a runtime does when a task panics: the `on_task_panic` hook, and the policy for a
//! panic nobody will ever look at (the task's `JoinHandle` was dropped, or is dropped without
//! its `JoinError` having been read) — asyncio's "Task exception was never retrieved".

use std::fmt;
use std::panic::Location;
use std::sync::Arc as StdArc;

use super::debug::TaskLabel;
use crate::task::cell::Header;
use crate::task::{Id, JoinError};

/// What a runtime does with an unhandled panic: a task panicked and nobody awaits it (its
/// `JoinHandle` was dropped before, or is dropped without being awaited).
///
/// Only the task's own panic counts. A panic in a destructor the runtime runs for the task —
/// the future's when the task is aborted or cancelled by shutdown, or a detached task's output
/// — is contained (the worker lives on) and not reported here; the output's destructor of a
/// task whose `JoinHandle` is dropped unread after it finished runs on the handle's thread,
/// and its panic unwinds from that drop.
///
/// Set with [`Builder::unhandled_panic`](super::Builder::unhandled_panic).
///
/// # Examples
///
/// ```
/// use magpie_executor::{Runtime, UnhandledPanic};
///
/// let rt = Runtime::builder()
///     .unhandled_panic(UnhandledPanic::ShutdownRuntime)
///     .build()
///     .unwrap();
/// let handle = rt.handle();
/// drop(rt.spawn(async { panic!("nobody awaits me") })); // detached
/// // The runtime shuts down (on a thread of its own) and says why.
/// let cause = loop {
///     if let Some(cause) = handle.shutdown_cause() {
///         break cause;
///     }
///     std::thread::sleep(std::time::Duration::from_millis(1));
/// };
/// assert!(cause.to_string().contains("nobody awaits me"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UnhandledPanic {
    /// Keep running (the default): the panic is reported by the panic hook as it happens, and
    /// the other tasks go on.
    #[default]
    Ignore,
    /// Shut the runtime down: every task is cancelled, `Runtime::block_on` panics with the
    /// cause, and [`Handle::shutdown_cause`](super::Handle::shutdown_cause) and the
    /// [`ShutdownReport`](super::ShutdownReport) tell which task panicked, where it was
    /// spawned, and its message.
    ShutdownRuntime,
}

/// A task that panicked: given to the [`on_task_panic`](super::Builder::on_task_panic) hook,
/// and the cause of a shutdown under [`UnhandledPanic::ShutdownRuntime`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskPanic {
    /// The task.
    pub task: Id,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Where it was spawned.
    pub location: &'static Location<'static>,
    /// The panic's message, when the payload is a string (as `panic!` makes it).
    pub message: Option<String>,
}

impl TaskPanic {
    pub(crate) fn new(header: &Header, error: &JoinError) -> TaskPanic {
        TaskPanic {
            task: header.id,
            name: header.name().map(str::to_owned),
            location: header.location(),
            message: error.panic_message(),
        }
    }
}

impl fmt::Display for TaskPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = TaskLabel {
            id: self.task,
            name: self.name.as_deref(),
            location: self.location,
        };
        match &self.message {
            Some(message) => write!(f, "{label} panicked with message {message:?}"),
            None => write!(f, "{label} panicked"),
        }
    }
}

/// Why a runtime shut itself down: [`Handle::shutdown_cause`](super::Handle::shutdown_cause).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownCause {
    /// A task panicked and nobody awaited it, under [`UnhandledPanic::ShutdownRuntime`].
    UnhandledPanic(TaskPanic),
}

impl fmt::Display for ShutdownCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownCause::UnhandledPanic(panic) => write!(
                f,
                "{panic}, and nobody awaited it (the runtime was built with \
                 UnhandledPanic::ShutdownRuntime)"
            ),
        }
    }
}

/// A task-panic hook.
pub(crate) type TaskPanicHook = StdArc<dyn Fn(&TaskPanic) + Send + Sync + 'static>;
