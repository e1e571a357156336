//! `task::Builder`: spawn a task with options (its name).

use std::future::Future;
use std::io;
use std::panic::Location;

use super::JoinHandle;
use crate::runtime::Handle;

/// Spawns a task with options. The name shows in `JoinHandle`'s `Debug` output, in panic
/// reports and through [`current`](super::current).
///
/// # Examples
///
/// ```
/// use magpie_executor::task;
///
/// magpie_executor::run(async {
///     let handle = task::Builder::new().name("fetch").spawn(async { 1 }).unwrap();
///     assert_eq!(handle.name(), Some("fetch"));
///     assert_eq!(handle.await.unwrap(), 1);
/// });
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
}

impl Builder {
    /// A builder with no options set.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the task.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Spawns the task on the current thread's runtime.
    ///
    /// # Errors
    ///
    /// An [`io::ErrorKind::Other`] error when called outside a runtime (use
    /// [`spawn_on`](Self::spawn_on) with a [`Handle`] there).
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> io::Result<JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let location = Location::caller();
        let handle = Handle::try_current().map_err(io::Error::other)?;
        Ok(handle.spawn_at(future, self.name, location))
    }

    /// Spawns the task on the runtime of `handle`.
    #[track_caller]
    pub fn spawn_on<F>(self, future: F, handle: &Handle) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        handle.spawn_at(future, self.name, Location::caller())
    }
}
