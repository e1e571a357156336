//! The shutdown sequence.

use std::fmt;
use std::time::{Duration, Instant};

use super::dump::{running_tasks, TaskSnapshot};
use super::panic_policy::ShutdownCause;
use super::shared::Shared;
use crate::loom::atomic::{fence, Ordering};
use crate::loom::{lock, thread};

/// What [`Runtime::shutdown_timeout`](super::Runtime::shutdown_timeout) found: how many tasks
/// were cancelled or left running, and which ones.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let rt = magpie_executor::Runtime::new().unwrap();
/// let _stuck = magpie_executor::task::Builder::new()
///     .name("never-finishes")
///     .spawn_on(std::future::pending::<()>(), &rt.handle());
/// let report = rt.shutdown_timeout(Duration::from_secs(5));
/// assert_eq!(report.cancelled, 1);
/// assert_eq!(report.unfinished[0].name.as_deref(), Some("never-finishes"));
/// // "1 task(s) cancelled, ...", then one line per task with its spawn location.
/// println!("{report}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Tasks that were still alive and were cancelled (their futures dropped).
    pub cancelled: usize,
    /// Tasks that could not be cancelled because a worker was still polling them when the
    /// timeout ran out; they are left to their (detached) worker, which cancels them as it
    /// leaves, once their poll is over, however it ended: with the task queued again (woken,
    /// or yielding) or waiting. Their `JoinHandle`s then resolve to a cancellation (or to the
    /// output, if that poll finished the task). Such a worker may also cancel, as it leaves,
    /// queued tasks that were never polled and that the walk of the live tasks never saw
    /// (they were not listed yet): with workers left running, `cancelled` can miss a few.
    pub still_running: usize,
    /// Worker threads that had not stopped when the timeout ran out.
    pub workers_left_running: usize,
    /// The tasks counted in `cancelled` and `still_running`, with their state when shutdown
    /// found them (at most 1024 of them: a runtime with a million tasks left does not need a
    /// million-line report).
    pub unfinished: Vec<TaskSnapshot>,
    /// Why the runtime shut itself down, when it did (see
    /// [`UnhandledPanic`](super::UnhandledPanic)).
    pub cause: Option<ShutdownCause>,
}

impl ShutdownReport {
    /// This report (of a shutdown the runtime ran on its own) followed by `later`'s (of the
    /// `Runtime`'s own shutdown, which found less left to do).
    pub(crate) fn followed_by(mut self, later: ShutdownReport) -> ShutdownReport {
        self.cancelled += later.cancelled;
        self.still_running += later.still_running;
        self.workers_left_running = later.workers_left_running;
        let room = MAX_NAMED_TASKS.saturating_sub(self.unfinished.len());
        self.unfinished
            .extend(later.unfinished.into_iter().take(room));
        self.cause = self.cause.or(later.cause);
        self
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} task(s) cancelled, {} still running, {} worker(s) left running",
            self.cancelled, self.still_running, self.workers_left_running
        )?;
        if let Some(cause) = &self.cause {
            write!(f, "; cause: {cause}")?;
        }
        for task in &self.unfinished {
            write!(f, "\n  {task}")?;
        }
        Ok(())
    }
}

/// At most this many unfinished tasks are named in a report.
const MAX_NAMED_TASKS: usize = 1024;

/// Step 1 alone: nothing new runs, and every worker is woken to see it and leave its loop.
pub(crate) fn begin(shared: &Shared) {
    shared.shutdown.store(true, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    for unparker in shared.unparkers.iter() {
        unparker.unpark();
    }
    // The helpers may sleep (the monitor, every worker parked) or nap (between looks): each
    // ends once it sees the flag.
    #[cfg(not(loom))]
    {
        shared.idle.wake_monitor_for_shutdown();
        shared.watchdog_sleep.wake_for_shutdown();
    }
}

/// Shuts the runtime down:
///
/// 1. Set the shutdown flag (SeqCst, then a fence pairing with `push_remote`'s) and unpark
///    every worker. From here on, a task pushed to the injector is drained by its pusher.
/// 2. Wait (up to the timeout) for every worker to leave its loop. Each drops its own queue
///    entries on the way out, listing the tasks never polled (a task a worker spawns is
///    listed at its first wait, `owned.rs`), and drains the injector and the overflow batches
///    (a worker that leaves after step 4 may have overflowed into them); the tasks stay alive
///    through the list.
/// 3. Do the same with the entries still queued (as many as each queue held when this step
///    reached it: a worker that did not stop may still be filling its own): in the queues of
///    workers that did not stop, in the injector and in the overflow batches. Close the live-task list (a task
///    spawned or listed from now on is cancelled at once; during shutdown a worker's spawns
///    are listed at once too) and cancel every task in it that no worker is running: its
///    future is dropped on this thread, its `JoinHandle` wakes up to a cancelled error.
///    Destructors that panic are contained. A worker that did not stop may be in the first
///    poll of a task that is not listed: counted as still running. A listed task such a
///    worker runs is counted so too, and kept for that worker to cancel as it leaves
///    (`Shared::keep_for_its_worker`, `Shared::cancel_running_at_close`).
/// 4. Drain the injector, which may have received wakes from those destructors, and the
///    overflow batches.
/// 5. Shut the blocking pool down (queued blocking tasks are cancelled; running ones are
///    waited for within the remaining time).
/// 6. If every worker stopped, join the worker threads, and the task cells in the workers'
///    depot go back to the allocator (their caches went as they stopped). If one did not, all
///    are detached (the others are on their way out, but a join could still wait on one's
///    `on_thread_stop` hook past the deadline), and the depot stays, for the workers still
///    running.
/// 7. Join the monitor (`monitor.rs`). Step 1 woke it, and it ends at the flag within one
///    look, so this waits microseconds: it runs no user hook, only — in a look that straddles
///    the flag — the destructor of a task it moved to the injector (its pusher drains it).
///    If it is this very thread (that task owned the runtime), it is detached instead. (The
///    debug-mode watchdog is woken too but not joined: it may be inside the user's hook.)
///
/// `on_its_own`: the runtime shuts itself down (an unhandled panic, `Shared::shut_down_for`),
/// and `Runtime`'s own shutdown may run beside it. Steps 1 and 2 may overlap (both are
/// idempotent); steps 3 to 6 are serialised by `shutdown_sequence`, which is never held while
/// waiting for a thread that may never stop: that is why the runtime's own sequence waits for
/// no blocking thread in step 5 (the later one waits, within its timeout) — a
/// `shutdown_timeout` must not hang behind it.
pub(crate) fn run(
    shared: &Shared,
    threads: Vec<thread::JoinHandle<()>>,
    monitor: Option<thread::JoinHandle<()>>,
    timeout: Option<Duration>,
    on_its_own: bool,
) -> ShutdownReport {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));

    // 1.
    begin(shared);

    // 2.
    let mut running = lock(&shared.workers_running);
    while *running > 0 {
        running = match deadline {
            None => shared
                .workers_done
                .wait(running)
                .unwrap_or_else(|p| p.into_inner()),
            Some(deadline) => {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                shared
                    .workers_done
                    .wait_timeout(running, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
    }
    let workers_left_running = *running;
    drop(running);
    let _sequence = lock(&shared.shutdown_sequence);

    // 3.
    let mut report = ShutdownReport {
        workers_left_running,
        cause: lock(&shared.cause).clone(),
        ..ShutdownReport::default()
    };
    // Tasks never polled are listed first, so that they are cancelled and reported below.
    shared.drop_queued_at_shutdown();
    let running = running_tasks(shared);
    // The ids in `running` that are on the list; the others are tasks in their first poll,
    // not listed yet (`owned.rs`), counted below.
    let mut running_listed = Vec::new();
    for mut task in shared.owned.close_and_take_all() {
        let id = task.header().id.as_u64();
        if running.contains(&id) {
            running_listed.push(id);
        }
        // The state before cancelling, to say what the task was doing.
        let snapshot = (report.unfinished.len() < MAX_NAMED_TASKS)
            .then(|| TaskSnapshot::of(task.header(), &running, shared.workers_carry_yields()));
        let unfinished = loop {
            if task.shutdown() {
                report.cancelled += 1;
                break true;
            }
            if task.header().state.load().is_complete() {
                break false;
            }
            // A worker holds `RUNNING`: the task is left to it.
            match shared.keep_for_its_worker(task) {
                Ok(()) => {
                    report.still_running += 1;
                    break true;
                }
                // It let go meanwhile: try again.
                Err(back) => task = back,
            }
        };
        if let (true, Some(snapshot)) = (unfinished, snapshot) {
            report.unfinished.push(snapshot);
        }
    }
    // A worker still in the first poll of a task it spawned: that task is not on the list,
    // but it is still running all the same (with no snapshot: nothing here may read it).
    report.still_running += running
        .iter()
        .filter(|&&id| id != 0 && !running_listed.contains(&id))
        .count();
    report.unfinished.sort_by_key(|t| t.id);

    // 4.
    shared.drain_global_queue();

    // 5.
    let left = if on_its_own {
        Some(Duration::ZERO)
    } else {
        deadline.map(|d| d.saturating_duration_since(Instant::now()))
    };
    shared.blocking.shutdown(left);

    // 6.
    if workers_left_running == 0 {
        for thread in threads {
            // A worker's panics are caught per task; one escaping the loop is a bug, and
            // re-raising it here would abort a shutdown that is otherwise complete.
            let _ = thread.join();
        }
        if let Some(depot) = &shared.cell_depot {
            depot.release_all();
        }
    }

    // 7.
    if let Some(monitor) = monitor {
        if monitor.thread().id() != thread::current().id() {
            // A panic in its loop is a bug, reported by the thread itself.
            let _ = monitor.join();
        }
    }
    if on_its_own {
        // Stored before the sequence lock goes, so that `Runtime`'s shutdown, which runs its
        // steps 3 to 6 after ours, finds it and reports what we cancelled.
        *lock(&shared.early_report) = Some(report.clone());
    }
    report
}
