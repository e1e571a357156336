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
//!
//! # Features
//!
//! - `hyper`: hyper 1.x on magpie with no glue crate (the `magpie::hyper` module).
//! - `tracing`: a `tracing` span per task (id, name, spawn location); debug mode's reports as
//!   `warn!` events.
//! - `criterion`: criterion's `AsyncExecutor` for [`Runtime`], so `b.to_async(&rt).iter(|| async
//!   { … })` benches your own async code on magpie (docs/profiling.md).

pub use magpie_executor::combinator::{
    as_completed, join_all, race, select, try_join_all, wait_any, Either,
};
pub use magpie_executor::{
    block_on, run, spawn, spawn_blocking, AbortHandle, Builder, Handle, JoinError, JoinHandle,
    Runtime, RuntimeMetrics, ShutdownCause, ShutdownReport, SlowPoll, TaskDump, TaskPanic,
    TaskSnapshot, TaskState, TryCurrentError, UnhandledPanic, WorkerMetrics,
};

/// `#[magpie::main]`: `async fn main` on a runtime of its own (asyncio's `asyncio.run(main())`).
///
/// Turns an `async fn` into the program's sync `main`: it builds a runtime with [`Builder`] and
/// the attribute's options, [`block_on`](Runtime::block_on)s the body and returns its value (so
/// `main` may return `Result<(), E>`, or anything a `main` may return), then shuts the runtime
/// down, cancelling the tasks still pending — [`run`], configured.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// #[magpie::main(worker_threads = 2, thread_name = "api")]
/// async fn main() -> Result<(), magpie::JoinError> {
///     let task = magpie::spawn(async {
///         magpie::time::sleep(Duration::from_millis(10)).await;
///         std::thread::current().name().map(str::to_owned)
///     });
///     let thread = task.await?; // a `Result` from `main`, as with a sync `main`
///     assert!(thread.unwrap().starts_with("api-"));
///     Ok(())
/// }
/// ```
pub use magpie_macros::main;

/// `#[magpie::test]`: an async `#[test]` on a fresh runtime of its own (asyncio's
/// `IsolatedAsyncioTestCase`).
///
/// Turns an `async fn` into a `#[test]` that builds a runtime of its own (with [`Builder`] and
/// the attribute's options), [`block_on`](Runtime::block_on)s the body and shuts the runtime
/// down, so no task outlives its test. A panic in the body (or an unwrapped [`JoinError`] of a
/// task that panicked) fails the test, so `#[should_panic]` works; the fn may return
/// `Result<(), E>` as with `#[test]`. Its other attributes and doc comments are kept.
///
/// With `seeds = N` the test runs in the deterministic runtime instead ([`sim::check`] over
/// seeds `0..N`): every task on the test's thread in a seeded order, on a virtual clock; a
/// failing seed is printed with the command that replays it (`MAGPIE_SEED=…`). It takes no
/// runtime option then, and the fn returns `()`.
///
/// # Examples
///
/// ```
/// # // A doctest is not built with `--test`, so this only checks that the tests compile;
/// # // tests/macros.rs in the repository runs them.
/// #[magpie::test]
/// async fn spawned_task_finishes() {
///     let answer = magpie::spawn(async { 6 * 7 }).await.unwrap();
///     assert_eq!(answer, 42);
/// }
///
/// #[magpie::test(worker_threads = 1)]
/// #[should_panic(expected = "boom")]
/// async fn a_panicking_body_fails_the_test() {
///     panic!("boom");
/// }
///
/// #[magpie::test]
/// async fn returns_a_result() -> Result<(), std::num::ParseIntError> {
///     assert_eq!("7".parse::<u8>()?, 7);
///     Ok(())
/// }
///
/// #[magpie::test(seeds = 500)]
/// async fn an_hour_passes_at_once() {
///     let start = magpie::time::now();
///     magpie::time::sleep(std::time::Duration::from_secs(3600)).await;
///     assert_eq!(magpie::time::now() - start, std::time::Duration::from_secs(3600));
/// }
/// # fn main() {}
/// ```
pub use magpie_macros::test;

/// Tasks and the tools to work with them: [`yield_now`](task::yield_now),
/// [`TaskGroup`](task::TaskGroup), [`Builder`](task::Builder) for named tasks,
/// [`current`](task::current), and the combinators.
pub mod task {
    pub use magpie_executor::task::*;
}

/// Timers: [`sleep`](time::sleep), [`timeout`](time::timeout) (asyncio's `wait_for`),
/// [`interval`](time::interval), fired by whoever drives the reactor (an idle worker, or the
/// reactor thread); they work under any executor.
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

/// The deterministic runtime (asyncio's test loops, with a seeded schedule): every task on one
/// thread in an order drawn from a seed, on a virtual clock, so that a concurrency bug in your
/// own async code is found over many seeds ([`check`](sim::check)) and replayed exactly from
/// the one that found it. See `docs/testing.md`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// magpie::sim::check(0..100, |_seed| async {
///     let start = magpie::time::now(); // the virtual clock inside a simulation
///     let slow = magpie::spawn(magpie::time::sleep(Duration::from_secs(3600)));
///     let quick = magpie::time::timeout(Duration::from_millis(10), slow).await;
///     assert!(quick.is_err(), "the hour-long sleep timed out");
///     assert_eq!(magpie::time::now() - start, Duration::from_millis(10));
/// });
/// ```
pub mod sim {
    pub use magpie_executor::sim::*;
}

/// Non-blocking I/O on the shared reactor: [`Async`] for any file
/// descriptor (on Windows: any socket).
pub use magpie_reactor::Async;

/// TCP, UDP and (on Unix) Unix sockets with the `futures-io` traits (and, with the `hyper`
/// feature, hyper's `rt::Read`/`rt::Write`).
pub mod net {
    pub use magpie_reactor::net::*;
}

/// Unix signals as streams on the shared reactor (asyncio's `loop.add_signal_handler`):
/// [`signal`](signal::signal) for `SIGTERM`, `SIGHUP`, `SIGUSR1`…, [`ctrl_c`](signal::ctrl_c)
/// for one `SIGINT`. Dropping a signal's last listener restores its previous disposition.
///
/// On Windows only [`ctrl_c`](signal::ctrl_c) (Ctrl-C or Ctrl-Break) is there.
pub mod signal {
    pub use magpie_reactor::signal::*;
}

/// Subprocesses with async pipes (asyncio's `create_subprocess_exec`): [`Command`](process::Command)
/// mirrors `std::process::Command`; a [`Child`](process::Child)'s stdin, stdout and stderr are
/// `futures-io` streams and its exit is awaited on the shared reactor, with no thread per child.
///
/// Unix only.
#[cfg(unix)]
pub mod process {
    pub use magpie_reactor::process::*;
}

/// hyper 1.x on magpie with no glue crate (feature `hyper`): magpie's
/// [`TcpStream`](crate::net::TcpStream) and [`UnixStream`](crate::net::UnixStream) implement
/// hyper's `rt::Read` and `rt::Write`; [`HyperExecutor`](hyper::HyperExecutor) spawns hyper's
/// tasks on magpie and [`HyperTimer`](hyper::HyperTimer) gives hyper its timeouts (HTTP/1's
/// header-read timeout, HTTP/2's keep-alive pings). hyper itself (1.8 or later) is your own
/// dependency, with the features you use (`server`, `client`, `http1`, `http2`). See
/// `docs/services.md` and `examples/http`.
///
/// # Examples
///
/// ```no_run
/// use hyper::server::conn::http1;
/// use hyper::service::service_fn;
/// use std::time::Duration;
///
/// # async fn hello(_: hyper::Request<hyper::body::Incoming>)
/// #     -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
/// #     Ok(hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from("hi"))))
/// # }
/// magpie::run(async {
///     let listener = magpie::net::TcpListener::bind("127.0.0.1:3000").await?;
///     loop {
///         let (stream, _) = listener.accept().await?;
///         magpie::spawn(async move {
///             let served = http1::Builder::new()
///                 .timer(magpie::hyper::HyperTimer)
///                 .header_read_timeout(Duration::from_secs(30))
///                 .serve_connection(stream, service_fn(hello))
///                 .await;
///             if let Err(err) = served {
///                 eprintln!("connection: {err}");
///             }
///         });
///     }
///     # #[allow(unreachable_code)]
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[cfg(feature = "hyper")]
pub mod hyper {
    pub use magpie_executor::HyperExecutor;
    pub use magpie_timers::HyperTimer;
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

/// docs/services.md's examples, compiled and run as doctests so that they cannot rot.
#[doc = include_str!("../docs/services.md")]
#[cfg(doctest)]
pub struct ServicesDoctests;

/// docs/debugging.md's examples, compiled and run as doctests so that they cannot rot.
#[doc = include_str!("../docs/debugging.md")]
#[cfg(doctest)]
pub struct DebuggingDoctests;

/// docs/testing.md's examples (the deterministic runtime), compiled and run as doctests so that
/// they cannot rot.
#[doc = include_str!("../docs/testing.md")]
#[cfg(doctest)]
pub struct TestingDoctests;

/// docs/profiling.md's examples (criterion on magpie, the metrics' time split), compiled and run
/// as doctests so that they cannot rot.
#[doc = include_str!("../docs/profiling.md")]
#[cfg(all(doctest, feature = "criterion"))]
pub struct ProfilingDoctests;
