//! hyper's executor on magpie (feature `hyper`): where hyper spawns its background tasks (an
//! HTTP/2 connection's streams, for instance).

use std::future::Future;

use crate::Handle;

/// A [`hyper::rt::Executor`] that spawns hyper's tasks on a magpie runtime.
///
/// # Examples
///
/// ```
/// use hyper::rt::Executor;
/// use magpie_executor::{HyperExecutor, Runtime};
///
/// let rt = Runtime::new().unwrap();
/// let (tx, rx) = std::sync::mpsc::channel();
/// HyperExecutor::new(rt.handle()).execute(async move { tx.send(42).unwrap() });
/// assert_eq!(rx.recv().unwrap(), 42);
/// ```
#[derive(Debug, Clone)]
pub struct HyperExecutor {
    handle: Handle,
}

impl HyperExecutor {
    /// An executor that spawns on the runtime of `handle`.
    pub fn new(handle: Handle) -> HyperExecutor {
        HyperExecutor { handle }
    }

    /// An executor that spawns on the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a magpie runtime, as [`Handle::current`] does.
    pub fn current() -> HyperExecutor {
        HyperExecutor::new(Handle::current())
    }
}

impl<F> hyper::rt::Executor<F> for HyperExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        // Detached: hyper watches its tasks through its own channels.
        drop(self.handle.spawn(future));
    }
}
