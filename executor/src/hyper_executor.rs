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
    // The task's spawn location (task dumps, slow-poll reports) is hyper's call, not here.
    #[track_caller]
    fn execute(&self, future: F) {
        // Detached: hyper watches its tasks through its own channels.
        drop(self.handle.spawn(future));
    }
}

#[cfg(test)]
mod tests {
    use super::HyperExecutor;
    use crate::Runtime;
    use hyper::rt::Executor;

    #[test]
    fn a_task_it_spawns_is_located_at_the_call_not_in_magpie() {
        let rt = Runtime::new().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let executor = HyperExecutor::new(rt.handle());
        let future = async move {
            let location = crate::task::current().unwrap().spawn_location();
            tx.send((location.file(), location.line())).unwrap();
        };
        executor.execute(future);
        let line = line!() - 1;
        assert_eq!(rx.recv().unwrap(), (file!(), line));
    }
}
