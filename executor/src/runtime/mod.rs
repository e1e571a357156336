//! The multi-threaded work-stealing runtime.

mod builder;
pub(crate) mod context;
mod credits;
pub(crate) mod debug;
mod drive;
mod dump;
mod handle;
mod idle;
mod lifo;
pub(crate) mod metrics;
#[cfg(not(loom))]
mod monitor;
mod overflow;
mod owned;
pub(crate) mod panic_policy;
pub(crate) mod park;
pub(crate) mod queue;
pub(crate) mod shared;
mod shutdown;
#[cfg(feature = "tracing")]
pub(crate) mod trace;
mod worker;

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

pub use builder::Builder;
pub(crate) use builder::{run_hook, Hook};
pub use debug::SlowPoll;
pub use dump::{TaskDump, TaskSnapshot, TaskState};
pub use handle::{Handle, TryCurrentError};
pub use metrics::{RuntimeMetrics, WorkerMetrics};
pub use panic_policy::{ShutdownCause, TaskPanic, UnhandledPanic};
pub use shutdown::ShutdownReport;

use std::mem::ManuallyDrop;

use crate::blocking::Pool;
use crate::loom::atomic::AtomicBool;
use crate::loom::{thread, Arc, Condvar, Mutex};
use crate::task::cell::Header;
use crate::task::cell_cache::{self, CellDepot, WorkerCache};
use crate::task::raw::{Notified, OwnedTask, RawTask};
use crate::task::JoinHandle;
use park::Parker;
use queue::{Injector, Worker};
use shared::{Config, Shared};

/// Where a task goes when it is woken: its runtime. Whether the task is one of the workers'
/// or of the blocking pool is a property of its type, kept in its vtable (`Vtable::blocking`),
/// so this is one pointer wide: it is in every task's header.
///
/// Holds a strong count of the runtime's `Arc<Shared>`, taken from and given back to the
/// worker's credits on the runtime's own workers (`credits.rs`).
pub(crate) struct Scheduler(ManuallyDrop<Arc<Shared>>);

impl Scheduler {
    /// The scheduler of a new task of `shared`.
    #[inline]
    pub(crate) fn new(shared: &Arc<Shared>) -> Scheduler {
        Scheduler(ManuallyDrop::new(credits::take(shared)))
    }

    /// Gives the task's count of the runtime back as this scheduler's drop does, without
    /// dropping the scheduler: as a credit on a worker of the runtime; elsewhere the count is
    /// returned, for the caller to drop (it may be the runtime's last, whose drop runs the
    /// user's code: the caller contains a panic there).
    ///
    /// # Safety
    /// The caller neither uses nor drops the scheduler afterwards (`Header::drop_plain`,
    /// which frees a header without its drop glue).
    #[inline]
    #[must_use = "the count returned is dropped by the caller"]
    pub(crate) unsafe fn give_back_count(&self) -> Option<impl Sized> {
        // SAFETY: a bitwise copy of the count, which the caller gives up with the scheduler
        // (the contract): it is given back once, here, or returned.
        let mut count = unsafe { std::ptr::read(&self.0) };
        // SAFETY: the count is ours to give up, and not used afterwards.
        unsafe { credits::give_back_or_return(&mut count) }
    }

    /// A wake by value made the task runnable: `task` carries the waker's only reference
    /// (see [`Shared::schedule_last_ref`]).
    #[inline]
    pub(crate) fn schedule_last_ref(&self, task: Notified) {
        if task.header().vtable.blocking {
            // Not reached (see `schedule`). Were it reached, `Pool::push` would need the same
            // keep-alive as `schedule_last_ref`.
            Pool::push(&self.0.blocking, task);
        } else {
            self.0.schedule_last_ref(task);
        }
    }

    /// A wake by reference (or an abort) made the task runnable; the caller holds a reference
    /// of its own, which keeps this scheduler alive.
    #[inline]
    pub(crate) fn schedule(&self, task: Notified) {
        if task.header().vtable.blocking {
            // Not reached today: a blocking task is queued or running from its spawn to its
            // completion, so no wake or abort ever submits it again. Kept correct anyway.
            Pool::push(&self.0.blocking, task);
        } else {
            self.0.schedule(task, false);
        }
    }

    /// The task woke itself during its poll: queue it behind the others.
    #[inline]
    pub(crate) fn reschedule(&self, task: Notified) {
        if task.header().vtable.blocking {
            Pool::push(&self.0.blocking, task);
        } else {
            self.0.schedule(task, true);
        }
    }

    /// The task panicked (on the thread that polled it).
    pub(crate) fn task_panicked(&self, header: &Header, error: &crate::JoinError) {
        self.0.task_panicked(header, error);
    }

    /// The task's panic will never be looked at.
    pub(crate) fn unhandled_panic(&self, header: &Header, error: &crate::JoinError) {
        Shared::unhandled_panic(&self.0, header, error);
    }

    /// Lists a task spawned unlisted, at the end of its first poll, which returned `Pending`
    /// (`owned.rs`). `false` when the runtime is shutting down: the caller, which holds
    /// `RUNNING`, cancels the task.
    ///
    /// # Safety
    /// `task` is the task whose header holds this scheduler; the caller holds `RUNNING` and a
    /// reference to it.
    pub(crate) unsafe fn list(&self, task: RawTask) -> bool {
        // SAFETY: the caller holds a reference.
        let owned = unsafe { OwnedTask::new_ref(task) };
        // A blocking task's one poll always ends it (and nothing takes it off the list).
        debug_assert!(!owned.header().vtable.blocking, "a blocking task waited");
        let worker = context::worker_index(self.0.addr());
        self.0.owned.insert_later(owned, worker).is_ok()
    }

    /// The task is done with: finished with no `JoinHandle`, or its handle has read the output
    /// or gone. Takes it off the live-task list, if it is on it.
    #[inline]
    pub(crate) fn release(&self, header: &Header) -> Option<OwnedTask> {
        // A task that never waited is not on the list, nor is a blocking task: that look is
        // made here, inline, and the call made only for a listed task (chained spawn, whose
        // tasks never wait: 15 instructions fewer per task, callgrind).
        if !header.is_listed() {
            None
        } else {
            self.0.release(header)
        }
    }
}

impl Drop for Scheduler {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the scheduler's count is given up here, once, and never used again.
        unsafe { credits::give_back(&mut self.0) };
    }
}

/// A multi-threaded work-stealing runtime: asyncio's event loop, on every core.
///
/// Each worker thread runs tasks from its own queue and steals from the others when it runs
/// dry. Dropping the runtime shuts it down: the workers stop, every unfinished task is
/// dropped (its `JoinHandle` resolves to a cancelled [`JoinError`](crate::JoinError)) and the
/// threads are joined.
///
/// # Panics
///
/// Dropping it from inside one of its own tasks or blocking threads panics (unless that
/// thread is unwinding already): the drop would wait for its own thread to stop. The shutdown
/// still happens, on a thread of its own.
///
/// # Examples
///
/// ```
/// use magpie_executor::Runtime;
///
/// let rt = Runtime::new().unwrap();
/// let handle = rt.spawn(async { "hello" });
/// assert_eq!(rt.block_on(handle).unwrap(), "hello");
/// ```
pub struct Runtime {
    handle: Handle,
    threads: Vec<thread::JoinHandle<()>>,
    /// The monitor thread (`monitor.rs`), if this runtime has one: the shutdown sequence
    /// joins it. (The debug-mode watchdog is not joined: see `build`.)
    monitor: Option<thread::JoinHandle<()>>,
    /// Set once shutdown has run, so `Drop` does not run it again.
    shut_down: bool,
}

impl Runtime {
    /// A runtime with the default configuration (see [`Builder`]).
    ///
    /// # Errors
    ///
    /// The OS's error when a worker thread cannot be started.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// A [`Builder`] to configure a runtime.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A runtime with no worker threads for the deterministic runtime (`crate::sim`): its
    /// tasks go to the injector (nothing runs them but the simulation's driver, on its own
    /// thread), `spawn_blocking` runs its function as an ordinary task, and no watchdog runs.
    /// Under [`UnhandledPanic::ShutdownRuntime`] it records the cause and stops running tasks,
    /// but starts no shutdown thread: the driver sees the cause and drops the runtime itself.
    #[cfg(not(loom))]
    pub(crate) fn start_deterministic(unhandled_panic: UnhandledPanic) -> Runtime {
        let builder = Builder {
            worker_threads: Some(0),
            unhandled_panic,
            ..Builder::new()
        };
        Runtime::start(&builder, true).expect("a runtime without threads starts no thread")
    }

    fn start(builder: &Builder, deterministic: bool) -> io::Result<Runtime> {
        let num_workers = builder.resolved_worker_threads();
        let locals: Vec<Worker<Notified>> = (0..num_workers).map(|_| Worker::new_fifo()).collect();
        let parkers: Vec<Parker> = (0..num_workers)
            .map(|_| Parker::with_driver(drive::notify_driver()))
            .collect();
        let shared = Arc::new(Shared {
            injector: Injector::new(),
            overflow: overflow::OverflowBatches::new(),
            stealers: locals.iter().map(Worker::stealer).collect(),
            lifo: (0..num_workers)
                .map(|_| Arc::new(lifo::LifoSlot::new()))
                .collect(),
            unparkers: parkers.iter().map(Parker::unparker).collect(),
            idle: idle::Idle::new(num_workers),
            worker_drives: AtomicBool::new(false),
            owned: owned::OwnedTasks::new(num_workers),
            shutdown: AtomicBool::new(false),
            config: Config {
                global_queue_interval: builder.global_queue_interval,
                spin_before_park: builder.spin_before_park,
                // Debug mode measures polls on workers; the deterministic runtime has none.
                debug: builder
                    .resolved_slow_poll_threshold()
                    .filter(|_| !deterministic)
                    .map(|threshold| debug::DebugConfig {
                        threshold,
                        hook: builder.on_slow_poll.clone(),
                    }),
                deterministic,
                task_cache_bytes: builder.task_cache_bytes,
                unhandled_panic: builder.unhandled_panic,
                on_task_panic: builder.on_task_panic.clone(),
            },
            blocking: Pool::new(builder),
            // Holds up to one worker's budget. Not under loom, whose builds cache no cells: its
            // lock would only add interleavings to the models.
            cell_depot: (!cfg!(loom) && num_workers > 1 && builder.task_cache_bytes > 0)
                .then(|| Arc::new(CellDepot::new(builder.task_cache_bytes))),
            workers_running: Mutex::new(num_workers),
            running_at_close: Mutex::new(Vec::new()),
            workers_done: Condvar::new(),
            stats: metrics::Stats::new(num_workers),
            cause: Mutex::new(None),
            cause_waiters: Mutex::new(shared::CauseWaiters::default()),
            early_report: Mutex::new(None),
            shutdown_sequence: Mutex::new(()),
            #[cfg(not(loom))]
            watchdog_sleep: Default::default(),
        });
        let handle = Handle { shared };
        handle.shared.blocking.set_handle(handle.clone());
        let mut rt = Runtime {
            handle: handle.clone(),
            threads: Vec::with_capacity(num_workers),
            monitor: None,
            shut_down: false,
        };
        // The watchdog is not joined: it runs the user's `on_slow_poll` hook, which a shutdown
        // must not wait for (`shutdown_timeout` would overrun, a hook taking a lock the
        // dropping thread holds would deadlock). Shutdown wakes it; it ends on its own.
        #[cfg(not(loom))]
        debug::start_watchdog(&handle.shared, &builder.thread_name);
        for (index, (local, parker)) in locals.into_iter().zip(parkers).enumerate() {
            let core = Box::new(worker::Core::new(index, local, handle.shared.clone()));
            let handle = handle.clone();
            let start = builder.on_thread_start.clone();
            let stop = builder.on_thread_stop.clone();
            let name = format!("{}-{index}", builder.thread_name);
            let task_cache_bytes = builder.task_cache_bytes;
            let depot = handle.shared.cell_depot.clone();
            let spawned = crate::loom::spawn_named(name, move || {
                context::set_owner(handle.shared.addr());
                let _enter = context::enter_handle(handle);
                builder::run_hook(start.as_ref(), "on_thread_start");
                // The cells of tasks that end on this thread are kept for its next spawns
                // (`task/cell_cache.rs`); freed when the worker stops, also if it unwinds.
                let cell_cache = WorkerCache::enable(task_cache_bytes, depot);
                // A loop that unwinds (a bug: every poll catches its panic) still ends with
                // the stop hook, which a user may pair with the start hook (a registration to
                // undo); then the thread dies of the panic, which the shutdown's join ignores.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    worker::run(core, parker);
                }));
                drop(cell_cache);
                builder::run_hook(stop.as_ref(), "on_thread_stop");
                if let Err(panic) = ran {
                    std::panic::resume_unwind(panic);
                }
            });
            match spawned {
                Ok(thread) => rt.threads.push(thread),
                Err(err) => {
                    // The workers never started count themselves out; do it for them, then
                    // shut down the ones that did start (dropping `rt`).
                    *crate::loom::lock(&rt.handle.shared.workers_running) -= num_workers - index;
                    return Err(err);
                }
            }
        }
        // After the workers: the monitor is no part of a runtime that could not start.
        #[cfg(not(loom))]
        if !deterministic {
            rt.monitor = monitor::start(&rt.handle.shared, &builder.thread_name);
        }
        Ok(rt)
    }

    /// A [`Handle`] for spawning onto this runtime from anywhere.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Spawns `future` as a task on this runtime (asyncio's `create_task`).
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Runs the blocking function `f` on the blocking thread pool (asyncio's `to_thread`).
    #[track_caller]
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.handle.spawn_blocking(f)
    }

    /// Drives `future` to completion on the calling thread, while the workers run the spawned
    /// tasks; inside it, [`spawn`](crate::spawn) uses this runtime.
    ///
    /// # Panics
    ///
    /// When called from one of this or another magpie runtime's worker threads: blocking a
    /// worker on a future stalls every task queued behind it and can deadlock. Use `.await`
    /// there instead. Under [`UnhandledPanic::ShutdownRuntime`], when the runtime shuts itself
    /// down: the message names the task that panicked.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        if context::with_core(|core| core.is_some()) {
            panic!(
                "`Runtime::block_on` called from inside a magpie worker thread: blocking a \
                 worker can deadlock the runtime; `.await` the future instead"
            );
        }
        let _enter = context::enter_handle(self.handle.clone());
        // The future driven here spawns from outside the workers and awaits the handles: this
        // thread allocates and frees those tasks' cells, so it keeps them like a worker, from
        // now until it drops a runtime or exits (`task/cell_cache.rs`).
        cell_cache::enable_for_block_on(self.handle.shared.config.task_cache_bytes);
        if self.handle.shared.config.unhandled_panic != UnhandledPanic::ShutdownRuntime {
            return crate::block_on::block_on(future);
        }
        // The runtime may shut itself down: then stop waiting, and say why.
        let watch = shared::CauseWatch::new(&self.handle.shared);
        let outcome = crate::block_on::block_on(futures_lite::future::or(
            async { Err(watch.await) },
            async { Ok(future.await) },
        ));
        match outcome {
            Ok(output) => output,
            Err(cause) => panic!("the magpie runtime shut down: {cause}"),
        }
    }

    /// Shuts the runtime down, waiting at most `timeout` for the workers to stop (a task that
    /// never yields keeps its worker busy; that worker is then left behind, detached), and
    /// reports what was cancelled.
    ///
    /// # Panics
    ///
    /// When called from one of the runtime's own tasks or blocking threads (or from a task's
    /// destructor that its shutdown runs): the call would wait for its own thread to stop. The
    /// shutdown still happens, on a thread of its own, as for a `Runtime` dropped there. (On
    /// a thread that is unwinding already, it returns an empty report instead of panicking
    /// again.)
    pub fn shutdown_timeout(mut self, timeout: Duration) -> ShutdownReport {
        let this = self.handle.shared.addr();
        if context::owner() == this || context::shutting_down() == this {
            self.hand_off_shutdown();
            if std::thread::panicking() {
                return ShutdownReport::default();
            }
            panic!(
                "`Runtime::shutdown_timeout` was called from inside one of the runtime's own \
                 tasks or blocking threads; it would wait for its own thread to stop. Call it \
                 from outside (or move the runtime to another thread)"
            );
        }
        self.shutdown(Some(timeout))
    }

    fn shutdown(&mut self, timeout: Option<Duration>) -> ShutdownReport {
        self.shut_down = true;
        let threads = std::mem::take(&mut self.threads);
        let monitor = self.monitor.take();
        let report = shutdown::run(&self.handle.shared, threads, monitor, timeout, false);
        // After the tasks it cancelled were freed (some here, into the cache): a thread that
        // is done with its runtime should not hold its cells.
        cell_cache::release_for_block_on();
        // A shutdown the runtime ran on its own did the cancelling: report it with ours.
        let early = crate::loom::lock(&self.handle.shared.early_report).take();
        match early {
            Some(early) => early.followed_by(report),
            None => report,
        }
    }
}

impl Runtime {
    /// Runs the shutdown sequence on a thread of its own, for a drop on a thread that must not
    /// wait for it.
    fn hand_off_shutdown(&mut self) {
        self.shut_down = true;
        let shared = self.handle.shared.clone();
        let threads = std::mem::take(&mut self.threads);
        let monitor = self.monitor.take();
        let spawned = crate::loom::spawn_named("magpie-shutdown".into(), move || {
            let _ = shutdown::run(&shared, threads, monitor, None, false);
        });
        if let Err(err) = spawned {
            // The workers are still told to stop (step 1 needs no thread); their tasks stay
            // where they are, undropped, rather than this thread waiting on itself.
            debug::report_error(format_args!(
                "magpie: cannot start the shutdown thread ({err}): the workers stop, but the \
                 tasks left on the runtime may not be dropped"
            ));
            shutdown::begin(&self.handle.shared);
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.shut_down {
            return;
        }
        if context::shutting_down() == self.handle.shared.addr() {
            // Dropped by the runtime's own shutdown sequence (a task it cancelled owned the
            // runtime): that sequence holds the sequence lock. Finish on another thread, which
            // takes the lock once the sequence is done.
            self.hand_off_shutdown();
            return;
        }
        if context::owner() == self.handle.shared.addr() {
            // Shutting down here would join the runtime's threads, this one among them: a
            // deadlock. Hand the shutdown to a thread of its own, which completes it once this
            // thread has left its task, then tell the caller — unless this thread is unwinding
            // already (the runtime dropped by a panicking task): a second panic would abort,
            // and the first one reaches the task's `JoinHandle` anyway. (Regression: that case
            // used to skip the hand-off too and shut down here, waiting for itself forever.)
            self.hand_off_shutdown();
            if std::thread::panicking() {
                return;
            }
            panic!(
                "a magpie `Runtime` was dropped from inside one of its own tasks or blocking \
                 threads; it would wait for its own thread to stop. Drop it from outside \
                 (or move it to another thread)"
            );
        }
        self.shutdown(None);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.threads.len())
            .finish_non_exhaustive()
    }
}
