//! `Builder`: how a runtime is configured.

use std::fmt;
use std::io;
use std::sync::Arc as StdArc;
use std::time::Duration;

use super::debug::{SlowPoll, SlowPollHook};
use super::panic_policy::{TaskPanic, TaskPanicHook, UnhandledPanic};
use super::Runtime;

/// A thread start/stop hook.
pub(crate) type Hook = StdArc<dyn Fn() + Send + Sync + 'static>;

/// Runs a thread's start or stop hook (`which` names it), if there is one. A panic in it is
/// caught and reported (`debug::report_error`), and the thread carries on: a worker whose start hook unwound
/// would never serve its queue nor count itself out, and the runtime's shutdown would wait for
/// it forever; a blocking thread would stay counted as one that serves the pool.
pub(crate) fn run_hook(hook: Option<&Hook>, which: &str) {
    let Some(hook) = hook else {
        return;
    };
    // The payload is the user's too: a destructor that panics must not unwind from here.
    if !crate::task::harness::swallow_panic(|| hook()) {
        return;
    }
    super::debug::report_error(format_args!(
        "magpie: the {which} hook panicked on thread {:?}; the panic was ignored",
        std::thread::current().name().unwrap_or("<unnamed>")
    ));
}

/// Configures and builds a [`Runtime`].
///
/// # Examples
///
/// ```
/// let rt = magpie_executor::Runtime::builder()
///     .worker_threads(2)
///     .thread_name("app")
///     .build()
///     .unwrap();
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// ```
#[derive(Clone)]
pub struct Builder {
    pub(crate) worker_threads: Option<usize>,
    pub(crate) thread_name: String,
    pub(crate) max_blocking_threads: usize,
    pub(crate) blocking_keep_alive: Duration,
    pub(crate) global_queue_interval: u32,
    pub(crate) spin_before_park: Duration,
    pub(crate) task_cache_bytes: usize,
    pub(crate) on_thread_start: Option<Hook>,
    pub(crate) on_thread_stop: Option<Hook>,
    pub(crate) slow_poll_threshold: Option<Duration>,
    pub(crate) on_slow_poll: Option<SlowPollHook>,
    pub(crate) unhandled_panic: UnhandledPanic,
    pub(crate) on_task_panic: Option<TaskPanicHook>,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            worker_threads: None,
            thread_name: "magpie".to_owned(),
            max_blocking_threads: 512,
            blocking_keep_alive: Duration::from_secs(10),
            // A prime, so the check does not fall into step with a task that yields every
            // few polls; rare enough that the local queue's cache locality wins.
            global_queue_interval: 61,
            // Measured on `tcp_echo` (docs/benchmarks.md): 10 µs caught about half of the
            // batches the other worker dispatched, 25, 50 and 100 µs nearly all, with the same
            // times; 50 leaves room for a slower dispatch.
            spin_before_park: Duration::from_micros(50),
            // Room for the cells of ~9 000 small tasks (112-byte cells: a task whose future
            // holds a few words) per worker: a burst of 10 000 spawned and joined tasks on two
            // workers runs mostly from the caches (measured: 22 % fewer instructions per
            // spawn + run + join, docs/benchmarks.md), for at most 1 MiB per worker. Off under
            // Miri, whose job includes catching a use of a freed task, which a reused cell
            // would hide (the cache's own tests set a budget).
            task_cache_bytes: if cfg!(miri) { 0 } else { 1 << 20 },
            on_thread_start: None,
            on_thread_stop: None,
            slow_poll_threshold: None,
            on_slow_poll: None,
            unhandled_panic: UnhandledPanic::Ignore,
            on_task_panic: None,
        }
    }
}

impl Builder {
    /// The longest [`spin_before_park`](Self::spin_before_park) that [`build`](Self::build)
    /// accepts. A spin is meant to bridge the microseconds until another worker queues what
    /// it found; a longer one would keep a CPU busy through much of an idle runtime's wait.
    pub const MAX_SPIN_BEFORE_PARK: Duration = Duration::from_secs(1);

    /// The most [`worker_threads`](Self::worker_threads) that [`build`](Self::build)
    /// accepts: far beyond any machine's cores (a worker per core is the point), and within
    /// what the idle bookkeeping counts in its state word (16 bits of searching workers).
    pub const MAX_WORKER_THREADS: usize = 32_768;

    /// A builder with the defaults: one worker per available core, up to 512 blocking
    /// threads.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The number of worker threads. Default: `std::thread::available_parallelism()` (at
    /// most [`MAX_WORKER_THREADS`](Self::MAX_WORKER_THREADS)). Zero, or more than
    /// [`MAX_WORKER_THREADS`](Self::MAX_WORKER_THREADS), is refused by [`build`](Self::build).
    pub fn worker_threads(mut self, n: usize) -> Builder {
        self.worker_threads = Some(n);
        self
    }

    /// The name prefix of the runtime's threads: workers are `{name}-{i}`, blocking threads
    /// `{name}-blocking`. Default: `magpie`. A name with a NUL byte (which no OS thread name
    /// can hold) is refused by [`build`](Self::build).
    pub fn thread_name(mut self, name: impl Into<String>) -> Builder {
        self.thread_name = name.into();
        self
    }

    /// The most threads [`spawn_blocking`](crate::spawn_blocking) may run at once; more
    /// blocking tasks wait in a queue. Default: 512. Zero is refused by `build`.
    pub fn max_blocking_threads(mut self, n: usize) -> Builder {
        self.max_blocking_threads = n;
        self
    }

    /// How long an idle blocking thread waits for more work before it exits. Default: 10 s.
    pub fn blocking_keep_alive(mut self, keep_alive: Duration) -> Builder {
        self.blocking_keep_alive = keep_alive;
        self
    }

    /// Every `n` scheduler ticks a worker takes from the global queue before its own, so tasks
    /// spawned from outside the runtime are not starved by a busy worker. Default: 61. Zero is
    /// refused by `build`.
    pub fn global_queue_interval(mut self, n: u32) -> Builder {
        self.global_queue_interval = n;
        self
    }

    /// How long a worker that ran out of tasks keeps watching the other workers' queues and
    /// the global queue before it goes to sleep, while another worker of this runtime drives
    /// the reactor (waits in its poller, or collects events between tasks). Default: 50 µs.
    /// `Duration::ZERO` turns the spin off: a worker with nothing to do sleeps at once; more
    /// than [`MAX_SPIN_BEFORE_PARK`](Self::MAX_SPIN_BEFORE_PARK) (1 s) is refused by
    /// [`build`](Self::build).
    ///
    /// Under I/O load the workers tend to run out of tasks together; one of them collects the
    /// next batch of ready sockets and queues their tasks a few microseconds later. A worker
    /// that slept meanwhile costs a futex wake-up and a context switch per batch; one that
    /// watched for those microseconds takes its share at once. At most one worker spins at a
    /// time, it yields its CPU between two looks to any thread waiting for it, and an idle
    /// runtime is not kept busy (after the spin the worker sleeps). On a machine whose CPUs
    /// are shared with other busy processes, lower it or turn it off if its CPU time matters
    /// more there than the latency it saves.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // Sleep as soon as there is nothing to run.
    /// let rt = magpie_executor::Builder::new()
    ///     .worker_threads(2)
    ///     .spin_before_park(Duration::ZERO)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
    /// ```
    pub fn spin_before_park(mut self, spin: Duration) -> Builder {
        self.spin_before_park = spin;
        self
    }

    /// How many bytes of freed task memory each worker thread, and each thread that runs
    /// [`Runtime::block_on`](crate::Runtime::block_on), keeps for the next tasks spawned on it.
    /// Default: 1 MiB. `0` turns the caches off: every task is allocated and freed through the
    /// global allocator.
    ///
    /// Every spawn allocates the task (its future and a 64-byte header) and every finished task
    /// frees it. A worker keeps the blocks of tasks that end on its thread, by size, and its
    /// spawns take them first, which saves the global allocator's work when thousands of tasks
    /// come and go at once. What a worker keeps stays allocated, so after a burst the runtime
    /// may hold up to `bytes` × workers more than its tasks need: a worker gives its cache back
    /// when it goes to sleep after a second or more without spawning from it (a worker that
    /// only finishes tasks spawned elsewhere, or a runtime gone quiet, at its next wake-up),
    /// and when its thread stops. A worker that frees more tasks of a size than it spawns (it
    /// runs tasks stolen from others) passes them, 64 at a time, to a worker that ran out,
    /// through a depot of the runtime that holds up to `bytes` more (one budget, whatever the
    /// number of workers); the depot is freed when the workers stop, and when a worker goes
    /// to sleep after a second in which no worker gave it or took from it.
    ///
    /// A thread that runs `block_on` (the main thread under [`run`](crate::run) or
    /// `#[magpie::main]`) spawns from outside the workers and usually frees those tasks itself,
    /// when it reads their `JoinHandle`s: from its first `block_on` on, it keeps them the same
    /// way, up to `bytes` (the budget of the runtime whose `block_on` it ran last), also
    /// between calls. It gives them back when it sleeps in `block_on` after a second or more
    /// without spawning from them, when it drops a runtime, and when it exits. Only tasks of
    /// up to 512 bytes and an alignment of at most 8 are kept; other threads always use the
    /// global allocator.
    ///
    /// # Examples
    ///
    /// ```
    /// // Every task straight from and back to the global allocator.
    /// let rt = magpie_executor::Builder::new()
    ///     .worker_threads(2)
    ///     .task_cache_bytes(0)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
    /// ```
    pub fn task_cache_bytes(mut self, bytes: usize) -> Builder {
        self.task_cache_bytes = bytes;
        self
    }

    /// Runs `f` on every thread of the runtime (workers and blocking threads) when it starts.
    ///
    /// A panic in `f` is caught and reported on stderr (with the `tracing` feature and a
    /// subscriber, as an `error!` event); the thread runs on all the same.
    pub fn on_thread_start(mut self, f: impl Fn() + Send + Sync + 'static) -> Builder {
        self.on_thread_start = Some(StdArc::new(f));
        self
    }

    /// Runs `f` on every thread of the runtime when it stops.
    ///
    /// A panic in `f` is caught and reported on stderr (with the `tracing` feature and a
    /// subscriber, as an `error!` event); the thread still stops cleanly.
    pub fn on_thread_stop(mut self, f: impl Fn() + Send + Sync + 'static) -> Builder {
        self.on_thread_stop = Some(StdArc::new(f));
        self
    }

    /// Turns debug mode on: a task poll that takes longer than `threshold` is reported (to
    /// [`on_slow_poll`](Self::on_slow_poll)'s hook, by default one line on stderr) with the
    /// task's id, name, spawn location, worker and duration; a watchdog thread reports a
    /// worker stuck in one poll past `threshold` *while* it is stuck, with the tasks queued
    /// behind it; tasks keep the statistics the [task dump](super::Handle::dump) shows (age,
    /// polls, time since the last poll); and a panic nobody retrieved is reported.
    ///
    /// Off by default (it reads the clock a few times per poll). Without this call, `MAGPIE_DEBUG=1`
    /// in the environment turns it on with a 100 ms threshold, like asyncio's
    /// `PYTHONASYNCIODEBUG`. A zero threshold is refused by [`build`](Self::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = magpie_executor::Runtime::builder()
    ///     .slow_poll_threshold(Duration::from_millis(100))
    ///     .build()
    ///     .unwrap();
    /// # drop(rt);
    /// ```
    pub fn slow_poll_threshold(mut self, threshold: Duration) -> Builder {
        self.slow_poll_threshold = Some(threshold);
        self
    }

    /// Where debug mode's reports go (see [`slow_poll_threshold`](Self::slow_poll_threshold)):
    /// `f` is called on the worker that ran a slow poll when the poll ends, and on the
    /// watchdog thread for a poll still running (`SlowPoll::in_progress`). A panic in `f` is
    /// caught and reported. Default: one line on stderr (with the `tracing` feature, a
    /// `tracing::warn!` event instead). Setting a hook does not turn debug mode on.
    pub fn on_slow_poll(mut self, f: impl Fn(&SlowPoll) + Send + Sync + 'static) -> Builder {
        self.on_slow_poll = Some(StdArc::new(f));
        self
    }

    /// What to do when a task panics and nobody awaits it: keep running (the default), or
    /// shut the runtime down (see [`UnhandledPanic`]).
    pub fn unhandled_panic(mut self, policy: UnhandledPanic) -> Builder {
        self.unhandled_panic = policy;
        self
    }

    /// Calls `f` on the polling thread each time a task's panic ends the task, whether or not
    /// its `JoinHandle` is awaited (for example to log or count panics). Runs after the
    /// process's panic hook; a panic in `f` is caught and reported. A panic caught inside the
    /// task (as `TaskGroup` does for its tasks, to cancel their siblings) does not end the task
    /// and is not seen here.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let panics = Arc::new(AtomicUsize::new(0));
    /// let count = panics.clone();
    /// let rt = magpie_executor::Runtime::builder()
    ///     .on_task_panic(move |panic| {
    ///         assert_eq!(panic.message.as_deref(), Some("boom"));
    ///         count.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()
    ///     .unwrap();
    /// assert!(rt.block_on(rt.spawn(async { panic!("boom") })).is_err());
    /// assert_eq!(panics.load(Ordering::SeqCst), 1);
    /// ```
    pub fn on_task_panic(mut self, f: impl Fn(&TaskPanic) + Send + Sync + 'static) -> Builder {
        self.on_task_panic = Some(StdArc::new(f));
        self
    }

    /// Starts the runtime's worker threads.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] when `worker_threads`, `max_blocking_threads`,
    /// `global_queue_interval` or `slow_poll_threshold` is zero, `worker_threads` is more than
    /// [`MAX_WORKER_THREADS`](Self::MAX_WORKER_THREADS), `spin_before_park` is longer than
    /// [`MAX_SPIN_BEFORE_PARK`](Self::MAX_SPIN_BEFORE_PARK), or `thread_name` holds a NUL
    /// byte; the OS's error when a thread cannot be started.
    pub fn build(&self) -> io::Result<Runtime> {
        let invalid = |what: &str| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what} must be at least 1 (got 0)"),
            ))
        };
        if self.worker_threads == Some(0) {
            return invalid("worker_threads");
        }
        if let Some(n) = self
            .worker_threads
            .filter(|&n| n > Self::MAX_WORKER_THREADS)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "worker_threads must be at most {} (got {n})",
                    Self::MAX_WORKER_THREADS
                ),
            ));
        }
        // std's thread builder panics on such a name (it does not return an error), and a
        // panic halfway through starting the workers would leave the runtime's shutdown
        // waiting for threads that never started.
        if self.thread_name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "thread_name must not contain a NUL byte (got {:?})",
                    self.thread_name
                ),
            ));
        }
        if self.max_blocking_threads == 0 {
            return invalid("max_blocking_threads");
        }
        if self.global_queue_interval == 0 {
            return invalid("global_queue_interval");
        }
        if self.slow_poll_threshold == Some(Duration::ZERO) {
            return invalid("slow_poll_threshold");
        }
        if self.spin_before_park > Self::MAX_SPIN_BEFORE_PARK {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "spin_before_park must be at most {:?} (got {:?})",
                    Self::MAX_SPIN_BEFORE_PARK,
                    self.spin_before_park
                ),
            ));
        }
        Runtime::start(self, false)
    }

    /// The slow-poll threshold: the one set, else `MAGPIE_DEBUG`'s.
    pub(crate) fn resolved_slow_poll_threshold(&self) -> Option<Duration> {
        self.slow_poll_threshold
            .or_else(|| super::debug::enabled_by_env().then_some(super::debug::DEFAULT_THRESHOLD))
    }

    pub(crate) fn resolved_worker_threads(&self) -> usize {
        self.worker_threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get().min(Self::MAX_WORKER_THREADS))
        })
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("worker_threads", &self.worker_threads)
            .field("thread_name", &self.thread_name)
            .field("max_blocking_threads", &self.max_blocking_threads)
            .field("blocking_keep_alive", &self.blocking_keep_alive)
            .field("global_queue_interval", &self.global_queue_interval)
            .field("spin_before_park", &self.spin_before_park)
            .field("task_cache_bytes", &self.task_cache_bytes)
            .field("slow_poll_threshold", &self.slow_poll_threshold)
            .field("unhandled_panic", &self.unhandled_panic)
            .finish_non_exhaustive()
    }
}
