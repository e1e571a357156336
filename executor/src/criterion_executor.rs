//! criterion's async benchmarking on magpie (feature `criterion`): `b.to_async(&rt)`.

use std::future::Future;

use criterion::async_executor::AsyncExecutor;

use crate::Runtime;

/// `b.to_async(&rt).iter(|| async { … })`: criterion measures each sample inside one
/// [`Runtime::block_on`].
///
/// The routine's future runs on the calling (bench) thread, as in [`Runtime::block_on`]; the
/// tasks it spawns run on the runtime's workers. To measure code as it runs on a worker, spawn
/// it inside the routine and await its handle.
///
/// # Examples
///
/// ```
/// use criterion::Criterion;
/// use magpie_executor::{spawn, Runtime};
///
/// let rt = Runtime::builder().worker_threads(2).build().unwrap();
/// let mut c = Criterion::default()
///     .sample_size(10)
///     .warm_up_time(std::time::Duration::from_millis(10))
///     .measurement_time(std::time::Duration::from_millis(50));
/// c.bench_function("spawn_join", |b| {
///     b.to_async(&rt).iter(|| async { spawn(async { 6 * 7 }).await.unwrap() })
/// });
/// ```
impl AsyncExecutor for &Runtime {
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        Runtime::block_on(self, future)
    }
}

/// `b.to_async(rt)` with the runtime moved in: as for `&Runtime`.
impl AsyncExecutor for Runtime {
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        Runtime::block_on(self, future)
    }
}
