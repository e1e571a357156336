//! The three runtimes, each prepared once with exactly N worker threads.

use std::future::Future;
use std::sync::Arc;
use std::thread;

use async_executor::{Executor, Task};

/// One of the runtimes under comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeKind {
    /// magpie's work-stealing runtime.
    Magpie,
    /// tokio's multi-thread runtime.
    Tokio,
    /// async-executor's `Executor`, run by N threads with async-io.
    AsyncExecutor,
}

impl RuntimeKind {
    /// Every runtime, in table order.
    pub const ALL: [RuntimeKind; 3] = [
        RuntimeKind::Magpie,
        RuntimeKind::Tokio,
        RuntimeKind::AsyncExecutor,
    ];

    /// The name used in tables, JSON and criterion ids.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Magpie => "magpie",
            RuntimeKind::Tokio => "tokio",
            RuntimeKind::AsyncExecutor => "async-executor",
        }
    }

    /// The runtime called `name` (see [`RuntimeKind::name`]).
    pub fn from_name(name: &str) -> Option<RuntimeKind> {
        RuntimeKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }
}

/// The three runtimes, each with the same number of worker threads.
#[derive(Debug)]
pub struct Runtimes {
    /// magpie.
    pub magpie: magpie::Runtime,
    /// tokio's multi-thread runtime, all drivers enabled.
    pub tokio: tokio::runtime::Runtime,
    /// async-executor on N threads.
    pub async_executor: AsyncExecutorPool,
}

impl Runtimes {
    /// Starts all three runtimes with `workers` worker threads each.
    ///
    /// # Panics
    ///
    /// If `workers` is 0 or a runtime cannot start its threads.
    pub fn new(workers: usize) -> Runtimes {
        Runtimes {
            magpie: magpie_runtime(workers),
            tokio: tokio_runtime(workers),
            async_executor: AsyncExecutorPool::new(workers),
        }
    }
}

/// magpie's runtime with `workers` worker threads.
///
/// # Panics
///
/// If `workers` is 0 or the threads cannot be started.
pub(crate) fn magpie_runtime(workers: usize) -> magpie::Runtime {
    assert!(workers > 0, "a runtime needs at least one worker thread");
    magpie::Runtime::builder()
        .worker_threads(workers)
        .build()
        .expect("failed to start magpie")
}

/// tokio's multi-thread runtime with `workers` worker threads.
///
/// # Panics
///
/// If `workers` is 0 or the threads cannot be started.
pub(crate) fn tokio_runtime(workers: usize) -> tokio::runtime::Runtime {
    assert!(workers > 0, "a runtime needs at least one worker thread");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("failed to start tokio")
}

/// async-executor as smol runs it: N threads, each driving the shared [`Executor`] inside
/// `async_io::block_on`, so an idle thread also polls the async-io reactor.
pub struct AsyncExecutorPool {
    executor: Arc<Executor<'static>>,
    /// Dropped to stop the threads: their `run` futures end when the channel closes.
    stop: Option<async_channel::Sender<()>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl AsyncExecutorPool {
    /// Starts `workers` threads running one shared executor.
    ///
    /// # Panics
    ///
    /// If `workers` is 0 or a thread cannot be started.
    pub fn new(workers: usize) -> AsyncExecutorPool {
        assert!(workers > 0, "a runtime needs at least one worker thread");
        let executor = Arc::new(Executor::new());
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let threads = (0..workers)
            .map(|index| {
                let executor = executor.clone();
                let stopped = stopped.clone();
                thread::Builder::new()
                    .name(format!("async-executor-{index}"))
                    .spawn(move || {
                        async_io::block_on(executor.run(async move {
                            // Err once `stop` is dropped: the pool is shutting down.
                            let _ = stopped.recv().await;
                        }))
                    })
                    .expect("failed to start an async-executor thread")
            })
            .collect();
        AsyncExecutorPool {
            executor,
            stop: Some(stop),
            threads,
        }
    }

    /// The shared executor, for spawning from inside tasks.
    pub fn executor(&self) -> &Arc<Executor<'static>> {
        &self.executor
    }

    /// Spawns `future` onto the pool.
    pub fn spawn<F>(&self, future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.executor.spawn(future)
    }

    /// Drives `future` on the calling thread (not one of the pool's), like tokio's and
    /// magpie's `Runtime::block_on`.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        async_io::block_on(future)
    }
}

impl Drop for AsyncExecutorPool {
    fn drop(&mut self) {
        drop(self.stop.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for AsyncExecutorPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncExecutorPool")
            .field("workers", &self.threads.len())
            .finish_non_exhaustive()
    }
}
