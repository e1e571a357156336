//! magpie's multi-threaded work-stealing executor.
//!
//! Worker threads, one per core by default, each run tasks from a local queue and steal from
//! each other when idle; a global injector takes tasks spawned from outside. See
//! `docs/architecture.md` for the design, and the `magpie` facade crate for the whole runtime.
//!
//! # Examples
//!
//! ```
//! let total = magpie_executor::run(async {
//!     let handles: Vec<_> = (0..10u64).map(|i| magpie_executor::spawn(async move { i * i })).collect();
//!     let mut total = 0;
//!     for handle in handles {
//!         total += handle.await.unwrap();
//!     }
//!     total
//! });
//! assert_eq!(total, 285);
//! ```

mod block_on;
mod blocking;
pub mod combinator;
#[cfg(feature = "criterion")]
mod criterion_executor;
#[cfg(all(feature = "fault-injection", not(loom)))]
pub mod fault;
#[cfg(feature = "hyper")]
mod hyper_executor;
pub(crate) mod loom;
mod runtime;
// Not under loom: the simulation is one thread, and its clock and I/O are real crates'.
#[cfg(not(loom))]
pub mod sim;
pub mod task;

use std::future::Future;

pub use block_on::block_on;
pub use blocking::spawn_blocking;
#[cfg(feature = "hyper")]
pub use hyper_executor::HyperExecutor;
pub use runtime::{
    Builder, Handle, Runtime, RuntimeMetrics, ShutdownCause, ShutdownReport, SlowPoll, TaskDump,
    TaskPanic, TaskSnapshot, TaskState, TryCurrentError, UnhandledPanic, WorkerMetrics,
};
pub use task::{AbortHandle, JoinError, JoinHandle};

/// Spawns `future` as a task on the current thread's runtime: asyncio's `create_task`. The
/// task starts at once, in parallel with the caller; await the [`JoinHandle`] for its output,
/// or drop it to let the task run detached.
///
/// # Panics
///
/// Outside a runtime (not inside a task, `Runtime::block_on` or [`run`]): use
/// [`Runtime::spawn`], [`Handle::spawn`], or start a runtime with [`run`].
///
/// # Examples
///
/// ```
/// magpie_executor::run(async {
///     let handle = magpie_executor::spawn(async { "done" });
///     assert_eq!(handle.await.unwrap(), "done");
/// });
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let location = std::panic::Location::caller();
    runtime::context::with_handle(|handle| match handle {
        Some(handle) => handle.spawn_at(future, None, location),
        None => panic!(
            "`magpie::spawn` called outside a magpie runtime: use `Runtime::spawn` or \
             `Handle::spawn`, or start a runtime with `magpie::run`"
        ),
    })
}

/// Runs `future` to completion on a new runtime with the default configuration, then shuts
/// the runtime down (tasks still running are cancelled): asyncio's `run`.
///
/// # Panics
///
/// When the runtime's threads cannot be started, and when called from inside a runtime
/// worker (see [`Runtime::block_on`]).
///
/// # Examples
///
/// ```
/// async fn greet(name: &str) -> String {
///     format!("Hello, {name}!")
/// }
///
/// assert_eq!(magpie_executor::run(greet("Alice")), "Hello, Alice!");
/// ```
pub fn run<F: Future>(future: F) -> F::Output {
    let runtime =
        Runtime::new().unwrap_or_else(|err| panic!("failed to start the magpie runtime: {err}"));
    runtime.block_on(future)
}
