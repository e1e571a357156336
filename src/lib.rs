//! # magpie
//!
//! A multi-threaded work-stealing async runtime with the concepts of Python's asyncio:
//! coroutines are `async fn`s, tasks are [`spawn`]ed, the event loop is [`run`], and
//! `gather`, `wait_for`, `sleep`, `Lock`, `Event` and `Queue` all have a counterpart here —
//! running on every core, with the concurrency proven by loom models.
//!
//! | asyncio | magpie |
//! |---|---|
//! | `asyncio.run(main())` | [`magpie::run(main())`](run) |
//! | `asyncio.create_task(coro)` | [`magpie::spawn(fut)`](spawn) → [`JoinHandle`] |
//! | `task.cancel()` | [`JoinHandle::abort`] |
//! | `await asyncio.gather(*aws)` | [`join_all(futs).await`](join_all) |
//! | `asyncio.wait(.., FIRST_COMPLETED)` | [`wait_any`], [`select`], [`race`] |
//! | `asyncio.as_completed(aws)` | [`as_completed`] |
//! | `asyncio.TaskGroup()` | [`task::TaskGroup`] |
//! | `asyncio.to_thread(f)` | [`spawn_blocking(f)`](spawn_blocking) |
//! | `asyncio.current_task()` | [`task::current`] |
//!
//! See `docs/asyncio.md` in the repository for the whole mapping.
//!
//! # Examples
//!
//! ```
//! async fn fetch(id: u32) -> u32 {
//!     magpie::task::yield_now().await; // stands in for I/O
//!     id * 10
//! }
//!
//! let results = magpie::run(async {
//!     // Three tasks, in parallel on the worker threads.
//!     let handles: Vec<_> = (1..=3).map(|i| magpie::spawn(fetch(i))).collect();
//!     magpie::join_all(handles).await
//! });
//! let results: Vec<u32> = results.into_iter().map(Result::unwrap).collect();
//! assert_eq!(results, vec![10, 20, 30]);
//! ```

pub use magpie_executor::combinator::{
    as_completed, join_all, race, select, try_join_all, wait_any, Either,
};
pub use magpie_executor::{
    block_on, run, spawn, spawn_blocking, AbortHandle, Builder, Handle, JoinError, JoinHandle,
    Runtime, ShutdownReport, TryCurrentError,
};

/// Tasks and the tools to work with them: [`yield_now`](task::yield_now),
/// [`TaskGroup`](task::TaskGroup), [`Builder`](task::Builder) for named tasks,
/// [`current`](task::current), and the combinators.
pub mod task {
    pub use magpie_executor::task::*;
}

/// Timers: [`sleep`](time::sleep), [`timeout`](time::timeout) (asyncio's `wait_for`),
/// [`interval`](time::interval), driven by the reactor thread; they work under any executor.
pub mod time {
    pub use magpie_timers::*;
}

/// asyncio's synchronization primitives, for many threads: [`Lock`](sync::Lock),
/// [`RwLock`](sync::RwLock), [`Event`](sync::Event), [`Condition`](sync::Condition),
/// [`Semaphore`](sync::Semaphore), [`Barrier`](sync::Barrier), [`Queue`](sync::Queue),
/// [`PriorityQueue`](sync::PriorityQueue) and [`oneshot`](sync::oneshot()). They only use
/// `Waker`s, so they work under any executor.
pub mod sync {
    pub use magpie_sync::*;
}

/// Non-blocking I/O on the shared reactor thread: [`Async`](crate::Async) for any file
/// descriptor.
pub use magpie_reactor::Async;

/// TCP, UDP and Unix sockets with the `futures-io` traits.
pub mod net {
    pub use magpie_reactor::net::*;
}

/// The extension traits most async code wants in scope: `AsyncReadExt`, `AsyncWriteExt`,
/// `StreamExt`, `FutureExt` (from `futures-lite`).
pub mod prelude {
    pub use futures_lite::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};
}

/// The README's examples, compiled and run as doctests so that they cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
