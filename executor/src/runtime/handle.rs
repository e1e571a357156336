//! `Handle`: a cloneable reference to a runtime, for spawning from any thread.

use std::fmt;
use std::future::Future;

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
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Shared::spawn(&self.shared, future, None)
    }

    pub(crate) fn spawn_named<F>(&self, future: F, name: Option<String>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Shared::spawn(&self.shared, future, name)
    }

    /// Runs the blocking function `f` on this runtime's blocking thread pool
    /// (asyncio's `to_thread`).
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        crate::blocking::Pool::spawn(&self.shared, f)
    }

    /// How many tasks of this runtime are alive (spawned and not yet finished).
    pub fn alive_tasks(&self) -> usize {
        self.shared.owned.len()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.shared.stealers.len())
            .finish_non_exhaustive()
    }
}
