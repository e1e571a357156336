//! Injected faults (feature `fault-injection`), so that tests can show what users see when the
//! OS refuses a thread, or when a worker thread dies of a bug in the runtime. Not for
//! production builds: it adds a thread-local check to every thread start, and an atomic load
//! to every poll on a worker.

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Worker loops still to die, per [`WorkerLoopPoint`] (see [`panic_worker_loops_at`]);
/// process-wide, since the workers are not the thread that asks.
static WORKER_LOOP_PANICS: [AtomicUsize; 3] = [
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
];

thread_local! {
    /// Thread starts requested from this thread: how many more succeed, then how many fail.
    static THREAD_STARTS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Makes thread starts requested from the calling thread fail as if the OS refused them
/// (`EAGAIN`): after `succeed` more successful starts, the next `fail` ones fail. Covers the
/// threads the executor starts — workers in [`Builder::build`](crate::Builder::build), the
/// blocking pool's threads (started by the thread that calls `spawn_blocking`), the shutdown
/// and debug-mode watchdog threads (the watchdog starts first in `build`, so with
/// `MAGPIE_DEBUG` set it takes one of the starts); not the reactor's threads.
/// `fail_thread_starts(0, 0)` turns it off.
///
/// # Examples
///
/// ```
/// use magpie_executor::{fault, Runtime};
///
/// fault::fail_thread_starts(1, 1); // the second worker cannot start
/// let err = Runtime::builder().worker_threads(2).build().unwrap_err();
/// assert!(err.to_string().contains("injected"));
/// assert!(Runtime::builder().worker_threads(2).build().is_ok()); // only one start failed
/// ```
pub fn fail_thread_starts(succeed: usize, fail: usize) {
    THREAD_STARTS.with(|starts| starts.set((succeed, fail)));
}

/// How many of the injected failures are still to come on the calling thread (0 once they have
/// all been used), so that a test can check its fault was hit.
pub fn pending_thread_start_failures() -> usize {
    THREAD_STARTS.with(|starts| starts.get().1)
}

/// `Err` when the thread start being requested is one to fail.
pub(crate) fn thread_start() -> io::Result<()> {
    let refuse = THREAD_STARTS
        .try_with(|starts| match starts.get() {
            (0, 0) => false,
            (0, fail) => {
                starts.set((0, fail - 1));
                true
            }
            (succeed, fail) => {
                starts.set((succeed - 1, fail));
                false
            }
        })
        .unwrap_or(false);
    if refuse {
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "injected fault: the OS refused to start a thread (magpie_executor::fault)",
        ))
    } else {
        Ok(())
    }
}

/// Where in a worker's loop a panic injected by [`panic_worker_loops_at`] strikes: each is a
/// place where the worker holds something the runtime must not lose with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WorkerLoopPoint {
    /// Right after a poll: the worker's LIFO slot and queue may hold tasks, and the task just
    /// polled, if it woke itself (`yield_now`), waits in the loop's hands to be queued again.
    AfterPoll,
    /// While the worker looks in the other workers' queues for work: it is counted as a
    /// searcher, which keeps producers from waking anyone.
    Searching,
    /// Right after the worker registered as parked, before its last look at the queues and
    /// its sleep: it is on the list that producers pick a worker to wake from.
    Parked,
}

impl WorkerLoopPoint {
    const ALL: [WorkerLoopPoint; 3] = [
        WorkerLoopPoint::AfterPoll,
        WorkerLoopPoint::Searching,
        WorkerLoopPoint::Parked,
    ];

    fn due(self) -> &'static AtomicUsize {
        &WORKER_LOOP_PANICS[self as usize]
    }
}

/// Makes the next `count` worker loops (of any runtime in the process) that finish a poll
/// panic right after it, outside the task, as a bug in the runtime itself would: each such
/// worker thread unwinds and is gone ([`WorkerLoopPoint::AfterPoll`]; the other points:
/// [`panic_worker_loops_at`]). What is kept: the tasks in the dead worker's queues, and the one
/// it had just polled if that woke itself, run on the workers left, as do new ones; its
/// `on_thread_stop` hook runs; and the shutdown counts the dead worker out (it neither waits
/// for it nor reports it still running). `panic_worker_loops(0)` turns it off.
///
/// # Examples
///
/// ```
/// use magpie_executor::{fault, Runtime};
/// use std::time::Duration;
///
/// let rt = Runtime::builder().worker_threads(2).build().unwrap();
/// fault::panic_worker_loops(1);
/// assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1); // its worker dies after this
/// while fault::pending_worker_loop_panics() > 0 {
///     std::thread::yield_now();
/// }
/// assert_eq!(rt.block_on(rt.spawn(async { 2 })).unwrap(), 2); // on the other worker
/// let report = rt.shutdown_timeout(Duration::from_secs(10));
/// assert_eq!(report.workers_left_running, 0);
/// ```
pub fn panic_worker_loops(count: usize) {
    panic_worker_loops_at(WorkerLoopPoint::AfterPoll, count);
}

/// Makes the next `count` worker loops (of any runtime in the process) that reach `point`
/// panic there, as a bug in the runtime would. Besides what [`panic_worker_loops`] keeps, the
/// dead worker gives up its place in the runtime's idle bookkeeping: a worker that dies while
/// searching or parked is never the one a new task waits for, and new tasks still wake the
/// workers left. `panic_worker_loops_at(point, 0)` turns that point off.
///
/// # Examples
///
/// ```
/// use magpie_executor::fault::{self, WorkerLoopPoint};
/// use magpie_executor::Runtime;
///
/// let rt = Runtime::builder().worker_threads(2).build().unwrap();
/// fault::panic_worker_loops_at(WorkerLoopPoint::Parked, 1); // the next worker to park dies
/// while fault::pending_worker_loop_panics() > 0 {
///     rt.block_on(rt.spawn(async {})).unwrap(); // wakes a worker, which parks again after
/// }
/// for i in 0..10 {
///     assert_eq!(rt.block_on(rt.spawn(async move { i })).unwrap(), i); // on the worker left
/// }
/// ```
pub fn panic_worker_loops_at(point: WorkerLoopPoint, count: usize) {
    point.due().store(count, Ordering::SeqCst);
}

/// How many of the worker-loop panics asked for by [`panic_worker_loops`] and
/// [`panic_worker_loops_at`] are still to come, at every point together.
pub fn pending_worker_loop_panics() -> usize {
    WorkerLoopPoint::ALL
        .iter()
        .map(|point| point.due().load(Ordering::SeqCst))
        .sum()
}

/// Called by a worker's loop at `point`: panics if a worker-loop panic is due there.
pub(crate) fn worker_loop(point: WorkerLoopPoint) {
    let due = point.due();
    // A plain load first: the common case (nothing due) writes nothing.
    if due.load(Ordering::Relaxed) == 0 {
        return;
    }
    let struck = due
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    if struck {
        panic!("injected fault: a worker loop panicked at {point:?} (magpie_executor::fault)");
    }
}
