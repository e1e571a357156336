//! The state all workers of one runtime share: the injector, the stealers, the idle
//! coordination, the live-task list, and where every task goes when it is spawned or woken.

use std::future::Future;
use std::panic::Location;
use std::task::Waker;

use super::debug::{report_error, stderr_line, DebugConfig};
use super::idle::Idle;
use super::lifo::LifoSlot;
use super::metrics::Stats;
use super::overflow::OverflowBatches;
use super::owned::{OwnedTasks, Place};
use super::panic_policy::{ShutdownCause, TaskPanic, TaskPanicHook, UnhandledPanic};
use super::park::Unparker;
use super::queue::{Injector, Steal, Stealer};
use super::{context, Scheduler};
use crate::blocking::Pool;
use crate::loom::atomic::{fence, AtomicBool, Ordering};
use crate::loom::{lock, Arc, Condvar, Mutex};
use crate::task::cell::Header;
use crate::task::cell_cache::CellDepot;
use crate::task::origin::Origin;
use crate::task::raw::{Notified, OwnedTask, TaskRef};
use crate::task::{new_task, Id, JoinError, JoinHandle, NewTask};

/// Tuning knobs fixed at build time.
pub(crate) struct Config {
    /// Every this many ticks a worker looks at the global queue (the injector, the overflow
    /// batches) before its own queue.
    pub(crate) global_queue_interval: u32,
    /// How long a searching worker watches the queues before it parks (`worker.rs`,
    /// `spin_for_work`; loom builds do not spin).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) spin_before_park: std::time::Duration,
    /// Debug mode: the slow-poll threshold and hook (`None`: off).
    pub(crate) debug: Option<DebugConfig>,
    pub(crate) unhandled_panic: UnhandledPanic,
    pub(crate) on_task_panic: Option<TaskPanicHook>,
    /// The deterministic runtime's (`crate::sim`): no workers, `spawn_blocking` as a task.
    pub(crate) deterministic: bool,
    /// Each worker's, and each `block_on` thread's, cache of freed task cells
    /// (`Builder::task_cache_bytes`, `task/cell_cache.rs`).
    pub(crate) task_cache_bytes: usize,
}

pub(crate) struct Shared {
    pub(crate) injector: Injector<Notified>,
    /// Tasks moved out of full local queues, in batches taken whole (`overflow.rs`).
    pub(crate) overflow: OverflowBatches,
    pub(crate) stealers: Box<[Stealer<Notified>]>,
    /// Each worker's LIFO slot, by worker index (`lifo.rs`).
    pub(crate) lifo: Box<[Arc<LifoSlot>]>,
    pub(crate) unparkers: Box<[Unparker]>,
    pub(crate) idle: Idle,
    /// Whether one of this runtime's workers holds the reactor's driving turn now. A
    /// searching worker spins only while it is set (`worker.rs`, `spin_for_work`). Relaxed
    /// throughout: a hint, read to choose between watching the queues a while and sleeping.
    pub(crate) worker_drives: AtomicBool,
    pub(crate) owned: OwnedTasks,
    pub(crate) shutdown: AtomicBool,
    pub(crate) config: Config,
    pub(crate) blocking: Arc<Pool>,
    /// The workers' exchange of freed task cells (`task/cell_cache/depot.rs`); none with one
    /// worker (nobody to pass cells to) or with the caches off.
    pub(crate) cell_depot: Option<Arc<CellDepot>>,
    /// How many worker threads are still inside their loop; shutdown waits for zero.
    pub(crate) workers_running: Mutex<usize>,
    /// The list's references to the listed tasks that the walk of the live-task list
    /// (shutdown step 3) found running on a worker the shutdown gave up on, kept for that
    /// worker to cancel as it leaves ([`Shared::cancel_running_at_close`]).
    pub(crate) running_at_close: Mutex<Vec<OwnedTask>>,
    pub(crate) workers_done: Condvar,
    /// Per-worker metrics.
    pub(crate) stats: Stats,
    /// Why the runtime shut itself down, if it did (`UnhandledPanic::ShutdownRuntime`).
    pub(crate) cause: Mutex<Option<ShutdownCause>>,
    /// `Runtime::block_on` calls to wake when the runtime shuts itself down.
    pub(crate) cause_waiters: Mutex<CauseWaiters>,
    /// The report of a shutdown the runtime ran on its own, for `Runtime`'s drop to return.
    pub(crate) early_report: Mutex<Option<super::ShutdownReport>>,
    /// Held through the shutdown sequence, so that a shutdown the runtime began itself and
    /// the one of `Runtime`'s drop run one after the other.
    pub(crate) shutdown_sequence: Mutex<()>,
    /// Where the debug-mode watchdog (`debug.rs`) naps between its looks; shutdown wakes it.
    #[cfg(not(loom))]
    pub(crate) watchdog_sleep: std::sync::Arc<super::monitor::HelperSleep>,
}

impl Shared {
    /// This runtime's identity, as recorded in `context::owner`.
    pub(crate) fn addr(&self) -> usize {
        self as *const Shared as usize
    }

    /// Whether a yielded task may wait in a queue holding its `RUNNING` bit (a carried entry,
    /// `raw.rs`): only the workers keep those, and not in debug mode (whose timed runs make
    /// them plain); the deterministic runtime runs its tasks on its driver, with plain ones.
    pub(crate) fn workers_carry_yields(&self) -> bool {
        self.config.debug.is_none() && !self.config.deterministic
    }

    #[inline]
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Spawns `future` as a task of this runtime.
    // Inlined into the public `spawn` functions, where the name is known to be `None` and the
    // branches of named and refused spawns fold away (measured: `chained_spawn` 610 → 543
    // instructions per task, `ping_pong` 2 600 → 2 458 per pair; docs/benchmarks.md).
    #[inline]
    pub(crate) fn spawn<F>(
        this: &Arc<Shared>,
        future: F,
        name: Option<String>,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let id = Id::next();
        #[cfg(feature = "tracing")]
        let future = super::trace::instrument(future, id, name.as_deref(), location);
        // A task that one of our workers spawns goes on the live-task list at its first
        // `Pending`, not here: most tasks spawned in bulk finish in their first poll and never
        // need it (`owned.rs`). Named tasks and every task in debug mode are listed from their
        // spawn, so that the task dump shows them from the start; so are the deterministic
        // runtime's, which no worker runs (a worker counts the first polls of unlisted tasks),
        // and, below, the tasks spawned off the workers.
        // And during shutdown, so that a spawn after the list closed is refused and cancelled
        // at once, as off the workers: a task that a worker stuck past the shutdown's timeout
        // spawned unlisted could sit in a queue that nobody takes from any more.
        let list_later = name.is_none()
            && this.config.debug.is_none()
            && !this.config.deterministic
            && !this.is_shutdown();
        let origin = Origin::new(location, name, this.config.debug.is_some());
        let NewTask {
            notified,
            owned,
            join,
        } = new_task(future, Scheduler::new(this), id, origin, false, !list_later);
        // On one of our workers: into its LIFO slot (and, when listed now, into its own shard
        // of the live-task list), in one borrow of its core (one thread-local lookup).
        // Anywhere else: into another shard, and the injector.
        let placed = context::with_core(|core| match core {
            Some(core) if std::ptr::eq(core.shared(), &**this) => match owned {
                None => {
                    this.stats.workers[core.index()].spawned_unlisted.incr();
                    core.push_lifo(notified);
                    Ok(None)
                }
                Some(owned) => match this.owned.insert(owned, Some(core.index())) {
                    Ok(()) => {
                        core.push_lifo(notified);
                        Ok(None)
                    }
                    Err(owned) => Err((owned, notified)),
                },
            },
            _ => Ok(Some((owned, notified))),
        });
        let refused = match placed {
            Ok(None) => return join,
            Ok(Some((owned, notified))) => {
                // Off the workers, a task is listed at its spawn all the same: listed at its
                // first wait, it would be listed by the worker that polls it, which is work
                // taken from the spawning thread and given to the workers (measured:
                // `timers_100k` a third slower with one worker, docs/benchmarks.md).
                let owned = owned.unwrap_or_else(|| OwnedTask::for_entry(&notified));
                match this.owned.insert(owned, None) {
                    Ok(()) => {
                        // The caller's `Arc` keeps us alive: no guard needed (`schedule_from`).
                        this.push_remote(notified);
                        return join;
                    }
                    Err(owned) => (owned, notified),
                }
            }
            Err(refused) => refused,
        };
        // Shutting down: the task is cancelled before it ever runs.
        let (owned, notified) = refused;
        owned.shutdown();
        drop(notified);
        join
    }

    /// The task, on the live-task list, is done with (see `Scheduler::release`, which calls
    /// this only for a listed task): takes it off the list. On
    /// one of our workers, a task it did not spawn itself (another worker did, or a thread off
    /// the workers) is taken off with others in a batch (`owned.rs`), and `None` is returned:
    /// the list keeps its reference meanwhile.
    ///
    /// Out of line: `Scheduler::release` keeps the look for a task that is not listed inline
    /// in its callers.
    #[inline(never)]
    pub(crate) fn release(&self, header: &Header) -> Option<OwnedTask> {
        let place = self.owned.place_of(header);
        debug_assert!(
            place != Place::NONE,
            "released a task that is not on the list"
        );
        // The cheap look first: most tasks finish on the worker that spawned them, and those
        // are taken off at once, with no borrow of the core.
        let on_other_worker = context::worker_index(self.addr())
            .is_some_and(|worker| !self.owned.is_in_shard_of(place, worker));
        if on_other_worker {
            let deferred = context::with_core(|core| match core {
                Some(core) if std::ptr::eq(core.shared(), self) => {
                    Some(core.defer_release(place, header))
                }
                _ => None,
            });
            if let Some(released) = deferred {
                // Outside the core's borrow: these may be the tasks' last references.
                drop(released);
                return None;
            }
        }
        self.owned.remove(place, header)
    }

    /// Queues a task made runnable by a spawn or a wake (`is_yield`: by its own poll).
    ///
    /// On one of this runtime's workers the task goes to that worker: a woken or spawned task
    /// into the LIFO slot (it likely uses data that is hot in this core's cache), a task that
    /// yielded to the back of the local queue. Anywhere else it goes to the injector.
    ///
    /// The caller keeps `self` alive: it holds an `Arc`, or a reference to the task other than
    /// `task`'s (whose header holds one). A caller that hands over its only reference uses
    /// [`Shared::schedule_last_ref`].
    pub(crate) fn schedule(&self, task: Notified, is_yield: bool) {
        self.schedule_from(task, is_yield, false);
    }

    /// [`Shared::schedule`] for a wake by value, whose `task` carries the waker's only
    /// reference while `self` is borrowed from that task's header (its scheduler's `Arc`).
    /// Once the task is in the injector a worker may run it to completion and free it — and
    /// with it what may be the last `Arc<Shared>` — while this thread still reads `self` (the
    /// fence and the idle counters of `push_remote`): a use after free, caught by
    /// ThreadSanitizer in a runtime dropped while its reactor thread woke one of its tasks. So
    /// a remote push holds a reference of its own to the task until it is done with `self`; a
    /// local push needs none (the worker's core holds an `Arc`).
    pub(crate) fn schedule_last_ref(&self, task: Notified) {
        self.schedule_from(task, false, true);
    }

    /// [`Shared::schedule`]; `borrowed_from_task`: `self` may live only as long as `task`.
    fn schedule_from(&self, task: Notified, is_yield: bool, borrowed_from_task: bool) {
        let task = context::with_core(|core| match core {
            Some(core) if std::ptr::eq(core.shared(), self) => {
                if is_yield {
                    core.push_yielded(task);
                } else if context::is_join_wake() {
                    // A joiner queues behind the tasks waiting (`context::waking_joiner`).
                    core.push_local(task);
                } else {
                    core.push_lifo(task);
                }
                None
            }
            _ => Some(task),
        });
        if let Some(task) = task {
            let keep_alive = borrowed_from_task.then(|| TaskRef::new(&task));
            self.push_remote(task);
            // Last: this may free the task, its scheduler and `self`.
            drop(keep_alive);
        }
    }

    /// Queues a task in the injector and wakes a parked worker for it (or, during shutdown,
    /// drains the injector).
    pub(crate) fn push_remote(&self, task: Notified) {
        self.injector.push(task);
        // SeqCst fence: pairs with the one in `shutdown::begin`. Either shutdown's final drain
        // sees this task, or we see the flag and drain it ourselves; no reference is stranded
        // in the injector of a runtime that is gone.
        fence(Ordering::SeqCst);
        // (Mutant `push_remote_ignores_shutdown`: leave the entry to a shutdown that is over.)
        if self.is_shutdown() && !cfg!(magpie_mutant = "push_remote_ignores_shutdown") {
            self.drain_global_queue();
            return;
        }
        self.notify_parked();
    }

    /// Wakes one parked worker if new work needs one (see `idle.rs`).
    #[inline]
    pub(crate) fn notify_parked(&self) {
        if let Some((index, was_all_parked)) = self.idle.worker_to_notify() {
            self.unparkers[index].unpark();
            // After the worker's wake-up, not before: the monitor is no hurry.
            if was_all_parked {
                self.idle.wake_monitor();
            }
        }
    }

    /// `true` if any queue a parked worker could take from holds a task.
    pub(crate) fn has_visible_work(&self) -> bool {
        !self.injector.is_empty()
            || !self.overflow.is_empty()
            || self.stealers.iter().any(|s| !s.is_empty())
    }

    /// A task panicked (called on the thread that polled it): the `on_task_panic` hook, or,
    /// without one, the task's name under the panic hook's report when it has one.
    pub(crate) fn task_panicked(&self, header: &Header, error: &JoinError) {
        match &self.config.on_task_panic {
            Some(hook) => {
                let panic = TaskPanic::new(header, error);
                // Its payload's destructor is the hook's code too: caught as well.
                if crate::task::harness::swallow_panic(|| hook(&panic)) {
                    report_error(format_args!("magpie: the on_task_panic hook panicked"));
                }
            }
            None => {
                if let Some(name) = header.name() {
                    // On stderr whatever the features: it completes the panic hook's message,
                    // which is written there.
                    stderr_line(format_args!(
                        "(the panic above was in task {} named {name:?})",
                        header.id
                    ));
                }
            }
        }
    }

    /// A task's panic will never be looked at: it finished with its `JoinHandle` gone, or the
    /// handle was dropped unread. Reported in debug mode; acted on per `unhandled_panic`.
    pub(crate) fn unhandled_panic(this: &Arc<Shared>, header: &Header, error: &JoinError) {
        let policy = this.config.unhandled_panic;
        if this.config.debug.is_none() && policy == UnhandledPanic::Ignore {
            return;
        }
        let panic = TaskPanic::new(header, error);
        if this.config.debug.is_some() {
            report_error(format_args!(
                "magpie: {panic}, and its JoinError was never retrieved"
            ));
        }
        if policy == UnhandledPanic::ShutdownRuntime {
            Shared::shut_down_for(this, ShutdownCause::UnhandledPanic(panic));
        }
    }

    /// The runtime shuts itself down for `cause`: records it (the first cause wins), wakes
    /// the `block_on` calls so they can say why, and runs the shutdown sequence on a thread of
    /// its own (the caller may be a worker, which the sequence waits for).
    pub(crate) fn shut_down_for(this: &Arc<Shared>, cause: ShutdownCause) {
        {
            let mut recorded = lock(&this.cause);
            if recorded.is_some() || this.is_shutdown() {
                return;
            }
            report_error(format_args!("magpie: shutting the runtime down: {cause}"));
            *recorded = Some(cause);
        }
        // Step 1 of the shutdown sequence at once, so that nothing spawned from now on runs;
        // the thread below repeats it (it is idempotent) and does the rest.
        super::shutdown::begin(this);
        if this.config.deterministic {
            // No thread in a simulation: its driver sees the cause after the poll that made
            // it, stops the run, and drops the runtime, which does the rest on its thread.
            return;
        }
        // Taken out first: the wakers run with the lock released.
        let waiters = std::mem::take(&mut lock(&this.cause_waiters).list);
        for (_, waker) in waiters {
            waker.wake();
        }
        let shared = this.clone();
        let spawned = crate::loom::spawn_named("magpie-shutdown".into(), move || {
            // A task it cancels may own the `Runtime`: its drop must not wait for us.
            super::context::set_shutting_down(shared.addr());
            // Its report is kept for `Runtime`'s shutdown (see `shutdown::run`).
            let _ = super::shutdown::run(&shared, Vec::new(), None, None, true);
        });
        if let Err(err) = spawned {
            // The workers are stopping; `Runtime`'s drop does the rest.
            report_error(format_args!(
                "magpie: cannot start the shutdown thread ({err}); the runtime's drop will \
                 finish the shutdown"
            ));
        }
    }

    /// Drops every entry of the global queue — the injector's and the overflow batches' (the
    /// tasks themselves are cancelled through the live-task list: see
    /// [`Shared::drop_entry_at_shutdown`]). Called during shutdown only.
    pub(crate) fn drain_global_queue(&self) {
        self.drop_entries_at_shutdown(usize::MAX, || self.injector.steal());
        self.drop_batches_at_shutdown(usize::MAX);
        // A carried entry dropped here (moved into an overflow batch by a worker that a
        // shutdown timeout left running, or into the injector by the monitor) gave up the
        // `RUNNING` of a task the walk of the list may have kept for its worker, which may
        // have left already.
        self.cancel_running_at_close();
    }

    /// Takes up to `count` overflow batches, until it finds none, and drops their entries
    /// through [`Shared::drop_entry_at_shutdown`].
    fn drop_batches_at_shutdown(&self, count: usize) {
        // (Mutant `overflow_batches_left_at_shutdown`: leave them, so that the tasks in them
        // that were never polled are never cancelled.)
        if cfg!(magpie_mutant = "overflow_batches_left_at_shutdown") {
            return;
        }
        for _ in 0..count {
            let Some(batch) = self.overflow.take() else {
                break;
            };
            for task in batch {
                self.drop_entry_at_shutdown(task);
            }
        }
    }

    /// Takes up to `count` entries with `steal`, until it finds none, through
    /// [`Shared::drop_entry_at_shutdown`].
    fn drop_entries_at_shutdown(&self, mut count: usize, steal: impl Fn() -> Steal<Notified>) {
        while count > 0 {
            match steal() {
                Steal::Success(task) => {
                    count -= 1;
                    self.drop_entry_at_shutdown(task);
                }
                Steal::Empty => break,
                Steal::Retry => {}
            }
        }
    }

    /// Shutdown step 3, for a listed task that it cannot cancel because a worker holds its
    /// `RUNNING` (a worker the shutdown gave up on is polling it, or holds it between a yield
    /// and its queue): keeps the list's reference to it for that worker, which cancels the
    /// task as it leaves ([`Shared::cancel_running_at_close`]). Gives the reference back if
    /// the task is no longer running by the time the lock is held: the caller then tries to
    /// cancel it again.
    pub(crate) fn keep_for_its_worker(&self, task: OwnedTask) -> Result<(), OwnedTask> {
        let mut kept = lock(&self.running_at_close);
        // Read under the lock, as the leaving worker reads it (why that leaves nobody out:
        // `cancel_running_at_close`).
        if task.header().state.load().is_running() {
            kept.push(task);
            Ok(())
        } else {
            Err(task)
        }
    }

    /// Cancels the tasks that step 3 kept for their workers ([`Shared::keep_for_its_worker`])
    /// and that nobody runs now. Called at the end of every drain of the global queue
    /// (`drain_global_queue`), which whoever may have let go of such a task's `RUNNING` during
    /// shutdown runs after it did: a worker leaving its loop, after its core is gone (it runs
    /// no task and holds no `RUNNING` any more), and whoever drops the carried entries that a
    /// worker left running moved into the global queue (step 4, a pusher after shutdown, a
    /// leaving worker: the drain itself). Without this, a task whose
    /// poll outlasted the shutdown timeout and left it waiting was cancelled by nobody: its
    /// `JoinHandle` never resolved.
    ///
    /// Why no kept task is left behind. Take a task that thread T held `RUNNING` of when the
    /// walk found it so (the worker polling it, or holding it as a carried entry; or a thread
    /// that drops that carried entry, from a queue the worker moved it to):
    /// 1. T lets go of `RUNNING` (the poll ends, or a carried entry is made plain as it is
    ///    dropped) before it comes here: program order.
    /// 2. The walk reads the task's state under `running_at_close`'s lock, and keeps the task
    ///    only if it is still running; this reads each kept task's state under the same lock.
    /// 3. If the walk holds the lock first, T, coming later, finds the task kept, and its own
    ///    release of `RUNNING` (1) is before its read: it takes the task and cancels it.
    /// 4. If T holds the lock first, its release of `RUNNING` happened before T unlocked,
    ///    hence before the walk's read: the walk finds the task not running, does not keep
    ///    it, and cancels it itself.
    ///
    /// A kept task that another worker still runs stays for that worker. One that completed
    /// meanwhile (its poll ended `Ready`) is only let go of: `shutdown` declines it.
    pub(crate) fn cancel_running_at_close(&self) {
        // Mutant: the kept tasks are left to nobody, as before.
        if cfg!(magpie_mutant = "running_at_close_left") {
            return;
        }
        let ours = {
            let mut kept = lock(&self.running_at_close);
            if kept.is_empty() {
                return;
            }
            let (still_running, ours): (Vec<_>, Vec<_>) = std::mem::take(&mut *kept)
                .into_iter()
                .partition(|task| task.header().state.load().is_running());
            *kept = still_running;
            ours
        };
        // Outside the lock: the cancellations drop futures and wake join wakers.
        for task in ours {
            task.shutdown();
        }
    }

    /// Drops a queue entry whose task will not run: the runtime is shutting down. A task on
    /// the live-task list is cancelled through it (step 3 of the shutdown sequence), so only
    /// the reference goes (and a carried entry's `RUNNING`: its drop makes it plain). A task
    /// that a worker spawned and nobody polled yet is not on the list (`owned.rs`): it is
    /// listed here, for step 3 to cancel and report with the others, or, once the list is
    /// closed (step 3 is over), cancelled here.
    pub(crate) fn drop_entry_at_shutdown(&self, task: Notified) {
        let header = task.header();
        // (Mutant `unpolled_entry_dropped_unlisted`: the task is left unlisted, so nothing
        // cancels it.)
        if header.is_listed()
            || header.vtable.blocking
            || cfg!(magpie_mutant = "unpolled_entry_dropped_unlisted")
        {
            drop(task);
            return;
        }
        // Its entry is the only one and we hold it, so nobody runs or lists the task meanwhile.
        let listed = self.owned.insert_later(OwnedTask::for_entry(&task), None);
        // No longer counted as unlisted (`Shared::alive_tasks`), before it can be seen
        // cancelled.
        self.stats.unlisted_ended_at_shutdown();
        match listed {
            Ok(()) => drop(task),
            Err(owned) => {
                drop(owned);
                task.cancel();
            }
        }
    }

    /// Every queue entry still queued — in the workers' queues and LIFO slots (those of workers
    /// that did not stop: the others emptied theirs as they left), in the injector and in the
    /// overflow batches — goes through [`Shared::drop_entry_at_shutdown`]. Step 3 of the
    /// shutdown sequence, before the list closes, so that tasks never polled are cancelled and
    /// reported with the rest.
    pub(crate) fn drop_queued_at_shutdown(&self) {
        // Each queue as long as it was when we came: a worker that did not stop may still be
        // filling it, and this must end.
        for (stealer, lifo) in self.stealers.iter().zip(self.lifo.iter()) {
            if let Some(task) = lifo.steal() {
                self.drop_entry_at_shutdown(task);
            }
            self.drop_entries_at_shutdown(stealer.len(), || stealer.steal());
        }
        self.drop_entries_at_shutdown(self.injector.len(), || self.injector.steal());
        self.drop_batches_at_shutdown(self.overflow.batches());
    }

    /// How many tasks are alive: those on the live-task list that have not finished, and those
    /// spawned unlisted that have not ended their first poll (`owned.rs`). A snapshot: tasks
    /// that move meanwhile may be counted twice or not at all; exact when nothing moves.
    pub(crate) fn alive_tasks(&self) -> usize {
        // Read one by one (Relaxed), hence the clamp; once nothing moves, every increment
        // happened before whatever the caller saw of the task.
        let ended = self.stats.unlisted_ends();
        let spawned = self.stats.spawned_unlisted();
        let unlisted = usize::try_from(spawned.saturating_sub(ended)).unwrap_or(usize::MAX);
        self.owned.len().saturating_add(unlisted)
    }

    /// How many tasks were spawned since the runtime started.
    pub(crate) fn tasks_spawned(&self) -> u64 {
        self.owned.spawned() + self.stats.spawned_unlisted()
    }
}

/// The `Runtime::block_on` calls waiting for a shutdown cause, each under an id of its own
/// so that its `CauseWatch` takes its waker out when it ends.
#[derive(Default)]
pub(crate) struct CauseWaiters {
    next_id: u64,
    list: Vec<(u64, Waker)>,
}

/// Resolves to the runtime's shutdown cause once it shut itself down (`Runtime::block_on`
/// under `UnhandledPanic::ShutdownRuntime`). Dropped, it takes its waker off the list: each
/// thread that ever called `block_on` used to leave one there (with its parker), for the
/// runtime's life.
pub(crate) struct CauseWatch<'a> {
    shared: &'a Shared,
    /// Its entry in `cause_waiters`, once polled.
    id: Option<u64>,
}

impl<'a> CauseWatch<'a> {
    pub(crate) fn new(shared: &'a Shared) -> CauseWatch<'a> {
        CauseWatch { shared, id: None }
    }
}

impl Drop for CauseWatch<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let removed = {
            let mut waiters = lock(&self.shared.cause_waiters);
            let at = waiters.list.iter().position(|(i, _)| *i == id);
            at.map(|at| waiters.list.swap_remove(at))
        };
        // Dropped outside the lock: a waker's drop may run anyone's code.
        drop(removed);
    }
}

impl Future for CauseWatch<'_> {
    type Output = ShutdownCause;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<ShutdownCause> {
        // The waiters' lock first, then the cause: `shut_down_for` sets the cause before it
        // takes the waiters, so either we see the cause or it sees our waker.
        let this = self.get_mut();
        let mut waiters = lock(&this.shared.cause_waiters);
        if let Some(cause) = lock(&this.shared.cause).clone() {
            return std::task::Poll::Ready(cause);
        }
        let registered = this
            .id
            .and_then(|id| waiters.list.iter_mut().find(|(i, _)| *i == id));
        match registered {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => {
                let id = waiters.next_id;
                waiters.next_id += 1;
                waiters.list.push((id, cx.waker().clone()));
                this.id = Some(id);
            }
        }
        std::task::Poll::Pending
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::{Builder, UnhandledPanic};

    /// Every `Runtime::block_on` under `ShutdownRuntime` registers its waker for the cause;
    /// none is left once the calls have returned, whichever threads made them (regression:
    /// each thread's waker stayed, with its parker, for the runtime's life).
    #[test]
    fn block_on_calls_leave_no_cause_waiter_behind() {
        let rt = std::sync::Arc::new(
            Builder::new()
                .worker_threads(1)
                .unhandled_panic(UnhandledPanic::ShutdownRuntime)
                .build()
                .unwrap(),
        );
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let rt = rt.clone();
                std::thread::spawn(move || {
                    // Pending once at least, so that the watch registers.
                    rt.block_on(rt.spawn(async { crate::task::yield_now().await }))
                        .unwrap();
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        for _ in 0..20 {
            rt.block_on(async { crate::task::yield_now().await });
        }
        let handle = rt.handle();
        let waiters = crate::loom::lock(&handle.shared.cause_waiters);
        assert_eq!(waiters.list.len(), 0);
    }
}
