//! `Handle`: a cloneable reference to a runtime, for spawning from any thread.

use std::fmt;
use std::future::Future;
use std::panic::Location;

use super::context;
use super::shared::Shared;
use crate::loom::Arc;
use crate::task::JoinHandle;

/// A handle to a [`Runtime`](super::Runtime): spawns tasks onto it from any thread.
/// `Clone + Send + Sync`; it does not keep the runtime's threads running (dropping the
/// `Runtime` shuts it down, after which spawned tasks are cancelled at once).
///
/// # Examples
///
/// ```
/// let rt = magpie_executor::Runtime::new().unwrap();
/// let handle = rt.handle();
/// let out = std::thread::spawn(move || {
///     magpie_executor::block_on(handle.spawn(async { 7 })).unwrap()
/// });
/// assert_eq!(out.join().unwrap(), 7);
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

/// The error of [`Handle::try_current`] outside a runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TryCurrentError(());

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no magpie runtime on this thread: call this from a task, from inside \
             `Runtime::block_on` or `magpie::run`, or use a `Handle`",
        )
    }
}

impl std::error::Error for TryCurrentError {}

impl Handle {
    /// The handle of the runtime running on this thread.
    ///
    /// # Panics
    ///
    /// Outside a runtime (not in a task, nor inside `Runtime::block_on`); see
    /// [`try_current`](Self::try_current).
    pub fn current() -> Handle {
        Handle::try_current().unwrap_or_else(|err| panic!("{err}"))
    }

    /// The handle of the runtime running on this thread, or an error outside a runtime.
    pub fn try_current() -> Result<Handle, TryCurrentError> {
        context::with_handle(|h| h.cloned()).ok_or(TryCurrentError(()))
    }

    /// Spawns `future` as a task on this runtime: it starts running in the background at once
    /// (asyncio's `create_task`). Await the returned handle for its output.
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Shared::spawn(&self.shared, future, None, Location::caller())
    }

    pub(crate) fn spawn_at<F>(
        &self,
        future: F,
        name: Option<String>,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Shared::spawn(&self.shared, future, name, location)
    }

    /// Runs the blocking function `f` on this runtime's blocking thread pool
    /// (asyncio's `to_thread`).
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        crate::blocking::Pool::spawn(&self.shared, f, Location::caller())
    }

    /// How many tasks of this runtime are alive (spawned and not yet finished).
    pub fn alive_tasks(&self) -> usize {
        self.shared.alive_tasks()
    }

    /// Every live task of the runtime, with its id, name, spawn location and state (and, in
    /// debug mode, its age, poll count and time since its last poll): asyncio's
    /// `all_tasks()`. Taken while the runtime runs, without stopping it; the cost is bounded
    /// by the number of tasks. Blocking tasks are not in it (see [`metrics`](Self::metrics)).
    /// A task that finished while its `JoinHandle` is still held shows as
    /// [`TaskState::Finished`](super::TaskState::Finished).
    ///
    /// Outside debug mode, a task that another task spawned without a name shows from its
    /// first wait on: until then it is queued or in its first poll (the runtime keeps its list
    /// of tasks for the ones that wait), and one that finishes in that first poll does not
    /// show at all. Named tasks, tasks spawned from outside the runtime, and every task in
    /// debug mode show from their spawn.
    pub fn dump(&self) -> super::TaskDump {
        super::dump::take(&self.shared)
    }

    /// A snapshot of the runtime's metrics, always on: per worker (polls, steals, parks, LIFO
    /// hits, global-queue takes, overflows, queue depth, busy time) and global (live and
    /// spawned tasks, global-queue depth, blocking threads, reactor events, pending timers).
    /// See [`RuntimeMetrics`](super::RuntimeMetrics), and docs/debugging.md for exporting
    /// them.
    pub fn metrics(&self) -> super::RuntimeMetrics {
        let shared = &self.shared;
        let now = shared.stats.now_ns();
        let workers = shared
            .stats
            .workers
            .iter()
            .zip(shared.stealers.iter())
            .map(|(stats, stealer)| super::WorkerMetrics::read(stats, stealer.len(), now))
            .collect();
        let blocking = shared.blocking.counts();
        let reactor = magpie_reactor::stats();
        super::RuntimeMetrics {
            workers,
            live_tasks: shared.alive_tasks(),
            tasks_spawned: shared.tasks_spawned(),
            injector_depth: shared.injector.len() + shared.overflow.tasks(),
            blocking_threads_busy: blocking.busy,
            blocking_threads_idle: blocking.idle,
            blocking_queue_depth: blocking.queued,
            reactor_events: reactor.events,
            pending_timers: reactor.pending_timers,
            task_depot_bytes: shared.cell_depot.as_ref().map_or(0, |depot| depot.bytes()),
        }
    }

    /// Why the runtime shut itself down, if it did (under
    /// [`UnhandledPanic::ShutdownRuntime`](super::UnhandledPanic::ShutdownRuntime)); `None`
    /// while it runs and after an ordinary shutdown.
    pub fn shutdown_cause(&self) -> Option<super::ShutdownCause> {
        crate::loom::lock(&self.shared.cause).clone()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.shared.stealers.len())
            .finish_non_exhaustive()
    }
}
