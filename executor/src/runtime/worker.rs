//! A worker thread: runs tasks from its LIFO slot and local queue, takes from the injector,
//! steals from the other workers, and parks when there is nothing to do — in the shared
//! reactor's poller if it can take the driving turn (`drive.rs`), else on its condvar.

use std::task::Waker;

use super::context;
use super::credits;
use super::debug;
use super::drive::Turn;
use super::lifo::LifoSlot;
use super::metrics::WorkerStats;
use super::overflow;
use super::owned::{DeferredReleases, Place};
use super::park::Parker;
use super::queue::{Steal, Worker};
use super::shared::Shared;
use crate::loom::atomic::{fence, AtomicBool, Ordering};
use crate::loom::{lock, Arc};
use crate::task::cell::Header;
use crate::task::cell_cache;
use crate::task::raw::{Notified, OwnedTask};

/// At most this many tasks in a row are taken from the LIFO slot before the worker goes back
/// to its queue: two tasks waking each other would otherwise keep the slot to themselves and
/// starve everything queued behind them.
const MAX_LIFO_POLLS_IN_A_ROW: u32 = 3;

/// Beyond this many tasks in the local queue, half of them move out in overflow batches
/// (`overflow.rs`), where idle workers find them without stealing from us (not on a runtime
/// with one worker: there is no one to find them; see `Core::shares_overflow`). Small under
/// loom so that the models reach the overflow path.
#[cfg(not(loom))]
const LOCAL_QUEUE_CAPACITY: usize = 256;
#[cfg(loom)]
const LOCAL_QUEUE_CAPACITY: usize = 2;

/// A busy worker collects ready I/O and due timers itself (a non-blocking round of the
/// reactor, when it can take the driving turn) after this many tasks. While every worker is
/// busy this is how events get in: in batches between tasks, instead of one by one through the
/// reactor thread — measured on `tcp_echo` with one worker (strace): about one event per wait,
/// each handed across threads, before; 0.06 waits per round trip (two events each) after, at
/// N = 2 (docs/reactor.md). Prime, like
/// `global_queue_interval`, so it does not fall into step with a periodic task; small enough
/// that a busy worker delays a ready socket by at most a few dozen short tasks.
const IO_POLL_INTERVAL: u32 = 61;

/// The part of a worker that only its own thread touches.
pub(crate) struct Core {
    index: usize,
    local: Worker<Notified>,
    /// This worker's LIFO slot (`lifo.rs`), shared with the monitor through `Shared::lifo`.
    lifo: Arc<LifoSlot>,
    lifo_polls: u32,
    /// Tasks to take before the next look at the global queue first (`global_queue_interval`):
    /// a countdown rather than a tick count taken modulo the interval, which cost a division
    /// per task (`yield_many`: 332 → 324 instructions per yield; no change in CPU time that
    /// the noise of this machine lets one see).
    ticks_to_injector: u32,
    /// Whether the idle bookkeeping (`idle.rs`) counts this worker as searching, and whether
    /// as registered parked (from `Idle::transition_to_parked` until the worker takes itself
    /// off the list or sees that a producer did): what a worker whose loop unwinds gives up
    /// (`Idle::worker_died`), so each is kept exactly in step with the counters.
    searching: bool,
    parked: bool,
    /// Set for a whole park (which may drive the reactor) and for a busy worker's round of
    /// the reactor: the tasks the drive's events and timers wake are queued without waking
    /// anyone, and [`Core::end_driving`] wakes one worker for the whole batch (`notify_owed`
    /// records that a push skipped its notification).
    driving: bool,
    notify_owed: bool,
    rng: u32,
    /// Finished tasks this worker did not spawn, to take off the live-task list in a batch.
    released: DeferredReleases,
    /// Whether a full local queue moves half its tasks out: only where another worker may take
    /// them (measured with one worker, `spawn_join_local`: 1 422 → 1 349 instructions per task,
    /// docs/benchmarks.md). Always under loom, whose models reach the overflow path with one
    /// worker.
    shares_overflow: bool,
    /// Whether this worker's next look at the global queue tries an overflow batch before the
    /// injector's single entries (`Core::take_from_global_queue`); flipped at every look.
    batch_first: bool,
    shared: Arc<Shared>,
}

impl Core {
    pub(crate) fn new(index: usize, local: Worker<Notified>, shared: Arc<Shared>) -> Core {
        Core {
            index,
            local,
            lifo: shared.lifo[index].clone(),
            lifo_polls: 0,
            ticks_to_injector: shared.config.global_queue_interval,
            searching: false,
            parked: false,
            driving: false,
            notify_owed: false,
            // Any non-zero seed will do; distinct per worker so they pick different victims.
            rng: 0x9E37_79B9u32.wrapping_mul(index as u32 + 1) | 1,
            released: DeferredReleases::new(),
            shares_overflow: cfg!(loom) || shared.stealers.len() > 1,
            batch_first: false,
            shared,
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// This worker's index in its runtime.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Takes the finished task `header` off the live-task list with the next batch
    /// (`Shared::release`). When that fills the batch, gives it back and returns the list's
    /// references, for the caller to drop once it no longer borrows the core.
    #[must_use = "the references are to be dropped outside the core's borrow"]
    pub(crate) fn defer_release(&mut self, place: Place, header: &Header) -> Vec<OwnedTask> {
        if self.released.push(place, header) {
            self.release_deferred()
        } else {
            Vec::new()
        }
    }

    /// Gives back the removals collected so far; returns the list's references, which the
    /// caller drops outside the core's borrow (a task's last reference frees it, and with it
    /// its join waker, whose drop may run anyone's code).
    #[must_use = "the references are to be dropped outside the core's borrow"]
    fn release_deferred(&mut self) -> Vec<OwnedTask> {
        if self.released.is_empty() {
            Vec::new()
        } else {
            self.shared.owned.release_deferred(&mut self.released)
        }
    }

    /// A worker that dies (its loop unwinds: a bug) while the runtime runs on: the tasks in its
    /// LIFO slot and queue go to the global queue, made plain (a carried entry may go only to
    /// a run queue), to run on the workers left rather than wait for the shutdown to cancel
    /// them. A shutdown that begins meanwhile drains them (`Shared::push_remote`).
    fn hand_over_queued(&mut self) {
        if let Some(task) = self.lifo.take() {
            self.shared.push_remote(task.into_plain());
        }
        while let Some(task) = self.local.pop() {
            self.shared.push_remote(task.into_plain());
        }
    }

    /// Whether this worker's own LIFO slot or queue holds a task.
    fn has_local_work(&self) -> bool {
        self.lifo.is_full() || !self.local.is_empty()
    }

    /// A task spawned or woken on this worker takes the LIFO slot if it is free, to run right
    /// after the current poll; while the slot is taken, it goes to the back of the local
    /// queue, where other workers can steal it. (The task already in the slot keeps it: a
    /// slot that displaced it would need a read-modify-write on every spawn, `lifo.rs`.)
    #[inline]
    pub(crate) fn push_lifo(&mut self, task: Notified) {
        if let Err(task) = self.lifo.put_if_empty(task) {
            self.push_local(task);
        }
    }

    /// This worker's metrics (written only by this thread).
    fn stats(&self) -> &WorkerStats {
        &self.shared.stats.workers[self.index]
    }

    /// Queues a task at the back of the local queue and wakes a parked worker to share it.
    #[inline]
    pub(crate) fn push_local(&mut self, task: Notified) {
        self.push_back(task);
        self.notify_for_push();
    }

    /// Queues a task at the back of the local queue, first moving half of a full queue out in
    /// overflow batches; returns whether it did (the moved tasks carry no notification of their
    /// own: the caller's covers them).
    #[inline]
    fn push_back(&mut self, task: Notified) -> bool {
        let overflowed = self.local.len() >= LOCAL_QUEUE_CAPACITY && self.shares_overflow;
        if overflowed {
            self.overflow_into_batches();
        }
        self.local.push(task);
        overflowed
    }

    /// Wakes a parked worker for a task just pushed (`Shared::notify_parked`), or, during a
    /// drive, records that one is owed ([`Core::end_driving`]).
    fn notify_for_push(&mut self) {
        if self.driving {
            self.notify_owed = true;
        } else {
            self.shared.notify_parked();
        }
    }

    /// Starts a drive of the reactor on this worker: until [`Core::end_driving`], pushes
    /// defer their notification.
    ///
    /// Why: one wait in the poller usually returns several events, and their tasks were each
    /// pushed with a notification. The first woke a parked worker while the batch was still
    /// being dispatched; that worker found the one task queued so far and, stopping its search
    /// as the last searcher, woke the only worker left parked — the driver, through the
    /// poller's notifier. Measured on `tcp_echo` at N = 2 (docs/benchmarks.md).
    fn begin_driving(&mut self) {
        self.driving = true;
    }

    /// Ends a drive: returns whether a push skipped its notification, which the caller then
    /// issues once (`Shared::notify_parked`) — after it has taken itself off the parked list,
    /// so that the notification cannot pick this worker. No task waits for it longer than
    /// the drive: this worker runs its own queue meanwhile.
    #[must_use]
    fn end_driving(&mut self) -> bool {
        self.driving = false;
        std::mem::take(&mut self.notify_owed)
    }

    /// Queues a task that woke itself during its poll (`yield_now`) at the back of the local
    /// queue. Unlike [`Core::push_local`], it wakes nobody when that adds no work another
    /// worker could take: the task was runnable a moment ago and is again, and this worker,
    /// awake, runs it. Every other task in the queue woke a worker (or found one searching)
    /// when it was pushed, so a parked worker misses nothing it was not already told of.
    /// Two cases do need the notification: a push that moved tasks out in overflow batches,
    /// and a full LIFO slot — this worker runs the slot's task first, so the yielded task now
    /// waits behind it, where another worker could run it at once.
    #[inline]
    pub(crate) fn push_yielded(&mut self, task: Notified) {
        let overflowed = self.push_back(task);
        // Mutant: never wake anyone for a yield, so the yielded task can wait behind the LIFO
        // slot's while another worker sleeps.
        let owes_notice = (overflowed || self.lifo.is_full())
            && !cfg!(magpie_mutant = "yield_push_never_notifies");
        if owes_notice {
            self.notify_for_push();
        }
    }

    /// Moves the oldest half of the local queue out, in overflow batches (`overflow.rs`).
    fn overflow_into_batches(&mut self) {
        self.stats().local_overflows.incr();
        let mut left = LOCAL_QUEUE_CAPACITY / 2;
        while left > 0 {
            let size = left.min(overflow::BATCH);
            let mut batch = Vec::with_capacity(size);
            while batch.len() < size {
                match self.local.pop() {
                    Some(task) => batch.push(task),
                    None => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            left -= batch.len();
            self.shared.overflow.push(batch);
        }
    }

    /// Takes a whole overflow batch: its first task to run now, the rest into the local queue
    /// (where other workers may steal them in turn).
    fn take_overflow_batch(&mut self) -> Option<Notified> {
        let mut tasks = self.shared.overflow.take()?.into_iter();
        self.stats().injector_takes.incr();
        let first = tasks.next();
        for task in tasks {
            self.local.push(task);
        }
        first
    }

    fn next_random(&mut self) -> u32 {
        // xorshift32: cheap, and only spreads victims.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }

    /// The next task from this worker's own sources, in priority order.
    #[inline]
    fn next_local_task(&mut self) -> Option<Notified> {
        self.ticks_to_injector -= 1;
        if self.ticks_to_injector == 0 {
            self.ticks_to_injector = self.shared.config.global_queue_interval;
            // Fairness: a busy local queue must not starve tasks spawned from outside.
            if let Some(task) = self.take_from_global_queue() {
                return Some(task);
            }
        }
        if let Some(task) = self.lifo.take() {
            if self.lifo_polls < MAX_LIFO_POLLS_IN_A_ROW {
                self.lifo_polls += 1;
                self.stats().lifo_hits.incr();
                return Some(task);
            }
            if self.local.is_empty() {
                // Run next (the queue's front) all the same: no one to tell.
                self.local.push(task);
            } else {
                // Behind the queued tasks, where another worker could run it now: announced,
                // as the slot announced nothing when it took the task (`push_yielded` counts
                // on every queued task having been announced).
                self.push_local(task);
            }
        }
        self.lifo_polls = 0;
        self.local.pop().or_else(|| self.take_from_global_queue())
    }

    /// Takes from the global queue: the injector's single entries or an overflow batch
    /// (`overflow.rs`), one to run now and the rest into the local queue. Which comes first
    /// alternates from one look to the next, so that neither starves the other: busy workers
    /// take from the global queue only every `global_queue_interval` ticks, and a steady stream
    /// of remote spawns would otherwise keep every look on the injector while a batch waited.
    fn take_from_global_queue(&mut self) -> Option<Notified> {
        // The common case, no batch queued: one look (two loads), not a take (a fence).
        if self.shared.overflow.is_empty() {
            return self.take_injector_share();
        }
        self.batch_first = !self.batch_first;
        if self.batch_first {
            self.take_overflow_batch()
                .or_else(|| self.take_injector_share())
        } else {
            self.take_injector_share()
                .or_else(|| self.take_overflow_batch())
        }
    }

    /// Takes this worker's share of the injector: about `len / workers + 1` tasks (at most
    /// half a local queue), one to run now and the rest into the local queue. One crossbeam
    /// batch holds at most one block (63 tasks) and at most half the queue, so it may take
    /// several; a worker that took only a fixed small batch every `global_queue_interval` ticks
    /// would leave remote spawns waiting behind its busy local tasks (measured: 20x slower on
    /// `spawn_many_remote_busy` with one worker).
    fn take_injector_share(&mut self) -> Option<Notified> {
        let injector = &self.shared.injector;
        let share = (injector.len() / self.shared.stealers.len() + 1).min(LOCAL_QUEUE_CAPACITY / 2);
        let first = loop {
            match injector.steal_batch_with_limit_and_pop(&self.local, share) {
                Steal::Success(task) => break task,
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        };
        self.stats().injector_takes.incr();
        loop {
            let have = self.local.len() + 1;
            if have >= share {
                break;
            }
            match injector.steal_batch_with_limit(&self.local, share - have) {
                Steal::Success(()) | Steal::Retry => {}
                Steal::Empty => break,
            }
        }
        Some(first)
    }

    /// Steals a batch from another worker (starting at a random one), then from the injector.
    fn steal(&mut self) -> Option<Notified> {
        if !self.searching {
            if !self.shared.idle.try_begin_searching() {
                return None;
            }
            self.searching = true;
        }
        #[cfg(all(feature = "fault-injection", not(loom)))]
        crate::fault::worker_loop(crate::fault::WorkerLoopPoint::Searching);
        let n = self.shared.stealers.len();
        let start = self.next_random() as usize % n;
        for i in 0..n {
            let victim = (start + i) % n;
            if victim == self.index {
                continue;
            }
            loop {
                // Borrowed, not cloned: a clone of the `Arc` would move its counts' line,
                // which every other worker's spawns and frees may touch, at every steal.
                match self.shared.stealers[victim].steal_batch_and_pop(&self.local) {
                    Steal::Success(task) => {
                        // A thief steals only with its own queue empty: what is in it now came
                        // with this batch.
                        let stats = self.stats();
                        stats.steal_operations.incr();
                        stats.tasks_stolen.add(self.local.len() as u64 + 1);
                        return Some(task);
                    }
                    Steal::Empty => break,
                    Steal::Retry => {}
                }
            }
        }
        self.take_from_global_queue()
    }

    /// Called before running a found task: a searcher that found work stops searching, and
    /// the last one to stop wakes another worker for the rest.
    #[inline]
    fn found_work(&mut self) {
        if self.searching {
            self.searching = false;
            if self.shared.idle.end_searching() {
                self.shared.notify_parked();
            }
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // The worker's queue entries, as it leaves (or its loop unwinds): their tasks will not
        // run here, and those not on the live-task list yet are listed, for the shutdown to
        // cancel — or cancelled here once the list is closed (`drop_entry_at_shutdown`). A
        // carried entry gives its task's `RUNNING` up as it goes: if the walk of the list
        // found the task running meanwhile (this worker outlasted a shutdown timeout), the
        // worker cancels it after this, as it leaves (`Shared::cancel_running_at_close`). The
        // slot outlives the core (the monitor shares it): a task left in it would keep the
        // runtime alive through its scheduler (`Shared` → slot → task → `Shared`).
        if let Some(task) = self.lifo.take() {
            self.shared.drop_entry_at_shutdown(task);
        }
        while let Some(task) = self.local.pop() {
            self.shared.drop_entry_at_shutdown(task);
        }
    }
}

/// What the loop does next.
enum Step {
    Run(Notified),
    Park,
    Exit,
}

/// `requeue`: the task the last poll returned (it woke itself), queued first, behind the
/// tasks already waiting — in the same borrow of the core as the look for the next task.
///
/// Two functions, so that the push (inlined in the second, with crossbeam's) does not crowd
/// the registers of the first, which every other poll goes through (measured with callgrind:
/// inlined into one, it cost the ping-pong pair 75 instructions; out of line, a yield 16).
#[inline]
fn next_step(requeue: Option<Notified>) -> Step {
    match requeue {
        None => with_own_core(Core::next_step),
        Some(task) => next_step_after_yield(task),
    }
}

#[inline(never)]
fn next_step_after_yield(task: Notified) -> Step {
    with_own_core(|core| {
        core.push_yielded(task);
        core.next_step_inlined()
    })
}

impl Core {
    /// Whether to run a task (and which), park or leave.
    #[inline(never)]
    fn next_step(&mut self) -> Step {
        self.next_step_inlined()
    }

    /// [`Core::next_step`], inlined into the caller.
    #[inline(always)]
    fn next_step_inlined(&mut self) -> Step {
        if self.shared.is_shutdown() {
            return Step::Exit;
        }
        let task = self.next_local_task().or_else(|| self.steal());
        match task {
            Some(task) => {
                self.found_work();
                Step::Run(task)
            }
            None => Step::Park,
        }
    }
}

/// The end of a worker thread's way out, whether its loop returned or unwound (a bug: every
/// poll catches its panic). Its credits went back first (`registration`, dropped before this).
/// 1. Its core goes: the deferred removals from the live-task list are made, then the queue
///    entries dropped (`Core`'s drop); the tasks are cancelled by shutdown through the
///    live-task list, which still holds a reference to each or gets one then (tasks never
///    polled) — or, once the list is closed (a shutdown timeout left this worker running), by
///    the core's drop itself (tasks never polled) and by the drain of step 2 (the tasks the
///    walk of the list found it running). A worker that unwinds while the runtime runs on
///    first (a) gives up its place in the idle bookkeeping (`Idle::worker_died`: a dead
///    searcher would keep producers from waking anyone, a dead sleeper would take a wake-up
///    with it), waking another worker if it was the last searcher, then (b) hands the task its
///    loop was about to queue again (`requeue`) and its queued tasks to the global queue, to
///    run on the workers left (`Core::hand_over_queued`) — after (a), so that those pushes
///    wake the workers left. On either way out, (c) its busy period in the metrics closes.
/// 2. During shutdown, it drains the global queue: a worker that shutdown gave up on may have
///    moved tasks out in overflow batches (its local queue's overflow) after shutdown's last
///    drain of them, and the drain also cancels the tasks the walk of the list kept for this
///    worker (`Shared::cancel_running_at_close`): its polls are over. Without it, those tasks
///    would keep the runtime alive through their schedulers.
/// 3. It counts itself out of `workers_running`, last, and wakes the shutdown when it was the
///    last worker: a worker that unwound without this would leave the shutdown waiting for it
///    for ever (or, with a timeout, reported as still running).
struct LeavingWorker<'a> {
    shared: &'a Shared,
    /// A task the last poll returned (it woke itself), held by the loop until the next
    /// `next_step` queues it: here, so that a loop that unwinds meanwhile does not strand it
    /// (its entry would be dropped, and the task, still marked as queued, never run again).
    requeue: Option<Notified>,
}

impl Drop for LeavingWorker<'_> {
    fn drop(&mut self) {
        let shared = self.shared;
        let mut requeue = self.requeue.take();
        // 1.
        if let Some(mut core) = context::take_core() {
            if std::thread::panicking() && !shared.is_shutdown() {
                // (a)
                if shared
                    .idle
                    .worker_died(core.index, core.parked, core.searching)
                {
                    shared.notify_parked();
                }
                // (b)
                if let Some(task) = requeue.take() {
                    shared.push_remote(task.into_plain());
                }
                core.hand_over_queued();
            }
            // (c)
            let stats = &shared.stats.workers[core.index];
            stats.busy_ends(shared.stats.now_ns());
            // Its cache goes when the thread's `WorkerCache` does, right after the loop.
            stats.task_cache_bytes.store(0, Ordering::Relaxed);
            drop(core.release_deferred());
            drop(core);
        }
        // A task left to queue again by a loop that unwound during shutdown goes as the
        // core's entries did (none is left by a loop that returned: it queued it first).
        if let Some(task) = requeue {
            shared.drop_entry_at_shutdown(task);
        }
        // 2.
        if shared.is_shutdown() {
            shared.drain_global_queue();
        }
        // 3.
        let mut running = lock(&shared.workers_running);
        *running -= 1;
        if *running == 0 {
            shared.workers_done.notify_all();
        }
    }
}

/// The body of a worker thread.
pub(crate) fn run(core: Box<Core>, parker: Parker) {
    let shared = core.shared.clone();
    let index = core.index;
    // Woken when the reactor thread hands this worker the driving turn it asked for.
    let requester = parker.unparker().into_waker();
    context::set_core(core);
    // The way out, which takes the core back from the thread-local (a `ManuallyDrop` there,
    // `context.rs`, which no destructor of its own frees), also if the loop unwinds. Declared
    // before `registration`, so dropped after it. It also holds the task the last poll
    // returned to be queued again (`requeue`): pushed by this loop, which reaches the core
    // through the one thread-local lookup it makes anyway, instead of by the harness through
    // one more.
    let mut leaving = LeavingWorker {
        shared: &shared,
        requeue: None,
    };
    let registration = credits::WorkerRegistration::new(&shared, index);
    let stats = &shared.stats.workers[index];
    let debug_mode = shared.config.debug.as_ref();
    stats.busy_begins(shared.stats.now_ns());
    let mut tasks_since_io = 0;
    // Whether the next busy round may ask the reactor thread for the turn (see below).
    let mut ask_on_busy_round = true;
    loop {
        match next_step(leaving.requeue.take()) {
            // The core is not borrowed while the task runs, so the task may spawn and wake.
            Step::Run(task) => {
                leaving.requeue = match debug_mode {
                    None => {
                        stats.poll_begins(task.header().id.as_u64(), None);
                        let requeue = task.run_on_worker(&stats.unlisted_polled);
                        stats.poll_ends();
                        requeue
                    }
                    Some(debug) => {
                        debug::run_timed(&shared, debug, index, task);
                        None
                    }
                };
                #[cfg(all(feature = "fault-injection", not(loom)))]
                crate::fault::worker_loop(crate::fault::WorkerLoopPoint::AfterPoll);
                tasks_since_io += 1;
                if tasks_since_io == IO_POLL_INTERVAL {
                    tasks_since_io = 0;
                    // The yielded task first: what the round wakes queues behind it.
                    if let Some(task) = leaving.requeue.take() {
                        with_own_core(|core| core.push_yielded(task));
                    }
                    // Outside the core's borrow, so what the round wakes lands in our queues.
                    // Asks the reactor thread for the turn once per busy period, and again only
                    // after a round that had it: a request the next round does not come back
                    // for in time (long tasks) pushed a driving reactor thread off the poller
                    // for nothing, until it took the turn back a watch interval later — I/O
                    // and timers late by up to a millisecond every `IO_POLL_INTERVAL` polls.
                    let turn = if ask_on_busy_round {
                        HeldTurn::try_take(&shared, &requester)
                    } else {
                        HeldTurn::try_take_vacant(&shared)
                    };
                    ask_on_busy_round = turn.is_some();
                    if let Some(mut turn) = turn {
                        with_own_core(Core::begin_driving);
                        turn.turn.poll();
                        if with_own_core(Core::end_driving) {
                            shared.notify_parked();
                        }
                    }
                }
            }
            Step::Park => {
                tasks_since_io = 0;
                ask_on_busy_round = true;
                let parked = park(&shared, index, &parker, &requester);
                stats.busy_begins(shared.stats.now_ns());
                if !parked {
                    break;
                }
            }
            Step::Exit => break,
        }
    }
    // No longer a worker: its credits go back (also if the loop unwinds). The rest of the way
    // out is `leaving`'s drop, right after.
    drop(registration);
}

/// Parks the worker until there may be work (`park_until_work`). Returns `false` when the
/// runtime shuts down.
///
/// A drive of the reactor during the park defers the notifications of the tasks it queues
/// (`Core::begin_driving`); the one it owes is issued here, once the worker is off the parked
/// list.
fn park(shared: &Shared, index: usize, parker: &Parker, requester: &Waker) -> bool {
    // Nothing held back while parked: the finished tasks go before the sleep (dropped here,
    // outside the core's borrow).
    drop(with_own_core(Core::release_deferred));
    // Those drops may have run anyone's code (a freed task's join waker), which may have
    // spawned or woken a task onto this worker: into its LIFO slot, which announces nothing
    // and which the recheck of step (c) does not look at. Run it rather than sleep beside it.
    if has_local_work() {
        return true;
    }
    // A cache of freed task cells this worker does not draw from goes back (`cell_cache.rs`);
    // what it keeps is published for the metrics, here rather than on every cell.
    cell_cache::on_park();
    shared.stats.workers[index]
        .task_cache_bytes
        .store(cell_cache::cached_bytes() as u64, Ordering::Relaxed);
    with_own_core(Core::begin_driving);
    let more = park_until_work(shared, index, parker, requester);
    if with_own_core(Core::end_driving) && more {
        shared.notify_parked();
    }
    more
}

/// Parks the worker until there may be work. Returns `false` when the runtime shuts down.
///
/// While it can hold the reactor's driving turn it sleeps in the poller, and the tasks its
/// events and timers wake land in its own LIFO slot and queue: then it leaves the park to run
/// them, not counted as a searcher (the work is its own).
fn park_until_work(shared: &Shared, index: usize, parker: &Parker, requester: &Waker) -> bool {
    // Still counted as a searcher until `transition_to_parked` counts it out: the core's flag
    // stays set until then (`Core::searching`).
    let was_searching = with_own_core(|core| core.searching);
    // The turn first: a driving worker registers at the far end of the sleepers (`idle.rs`).
    let mut turn = HeldTurn::try_take(shared, requester);
    // Another of our workers drives: what it finds comes to its queue shortly (`spin_for_work`).
    if turn.is_none() && was_searching && shared.worker_drives.load(Ordering::Relaxed) {
        if spin_for_work(shared) {
            // Still counted as a searcher: it goes back to steal what it saw (or to exit).
            return !shared.is_shutdown();
        }
        // The driver may have left meanwhile: then the turn is ours to take now, rather than
        // the reactor thread's after one of its intervals.
        turn = HeldTurn::try_take(shared, requester);
    }
    // Protocol steps (a) and (b) of `idle.rs`.
    shared
        .idle
        .transition_to_parked(index, was_searching, turn.is_some());
    set_idle_role(false, true);
    #[cfg(all(feature = "fault-injection", not(loom)))]
    crate::fault::worker_loop(crate::fault::WorkerLoopPoint::Parked);
    // Step (c): look again. This also covers the producers that woke nobody because we were
    // searching when they looked. (Mutant `park_skips_recheck`: sleep without looking.)
    if !cfg!(magpie_mutant = "park_skips_recheck")
        && (shared.has_visible_work() || shared.is_shutdown())
    {
        // Released before we leave.
        drop(turn);
        // Either we take ourselves off the list, or a producer did already; both count us as
        // searching.
        let _ = shared.idle.unpark_self(index, true);
        set_idle_role(true, false);
        return !shared.is_shutdown();
    }
    let stats = &shared.stats.workers[index];
    stats.parks.incr();
    stats.busy_ends(shared.stats.now_ns());
    loop {
        match turn.as_mut() {
            Some(held) => parker.park_driving(|| held.turn.drive(&has_local_work)),
            None => parker.park(),
        }
        // SeqCst: read the flag after the unpark that shutdown issues after setting it.
        fence(Ordering::SeqCst);
        if shared.is_shutdown() {
            return false;
        }
        if has_local_work() {
            // Our own drive woke tasks of ours: off the list, not searching — unless a
            // producer took us off already, counting us as a searcher. (One lock, where
            // `is_parked` first would take it twice.)
            let searching = !shared.idle.unpark_self(index, false);
            set_idle_role(searching, false);
            return true;
        }
        if !shared.idle.is_parked(index) {
            // A producer took us off the list and counted us as searching.
            set_idle_role(true, false);
            return true;
        }
        if turn.is_none() {
            // Woken with nothing to do: by the reactor thread handing over the turn we asked
            // for, or a stale token.
            turn = HeldTurn::try_take(shared, requester);
            if turn.is_some() {
                // Registered near the front as a condvar sleeper: a driver goes to the far
                // end, or producers would interrupt the poller while others sleep idle.
                shared.idle.parked_worker_drives(index);
            }
        }
    }
}

/// The reactor's driving turn while this worker holds it, flagged in `Shared::worker_drives`
/// (the other workers' reason to spin, `spin_for_work`) until it is released.
struct HeldTurn<'a> {
    turn: Turn,
    flag: &'a AtomicBool,
}

impl<'a> HeldTurn<'a> {
    /// `Turn::try_take`, flagged.
    fn try_take(shared: &'a Shared, requester: &Waker) -> Option<HeldTurn<'a>> {
        Turn::try_take(requester).map(|turn| HeldTurn::flagged(shared, turn))
    }

    /// `Turn::try_take_vacant`, flagged.
    fn try_take_vacant(shared: &'a Shared) -> Option<HeldTurn<'a>> {
        Turn::try_take_vacant().map(|turn| HeldTurn::flagged(shared, turn))
    }

    fn flagged(shared: &'a Shared, turn: Turn) -> HeldTurn<'a> {
        // Plain stores suffice: one thread in the process holds the turn at a time, and the
        // turn's own SeqCst hand-over orders one holder's clearing before the next holder's
        // setting. Relaxed: a hint (see `Shared::worker_drives`).
        shared.worker_drives.store(true, Ordering::Relaxed);
        HeldTurn {
            turn,
            flag: &shared.worker_drives,
        }
    }
}

impl Drop for HeldTurn<'_> {
    fn drop(&mut self) {
        // Before the turn itself is released (fields drop after this body).
        self.flag.store(false, Ordering::Relaxed);
    }
}

/// Watches the queues for a little while before a searching worker parks on its condvar,
/// called when another worker of this runtime holds the reactor's driving turn (in its park,
/// or for a busy worker's round between tasks): returns `true` as soon as a
/// queue holds a task (or the runtime shuts down), `false` after the runtime's
/// `spin_before_park` (at once when that is zero, or when another worker spins already).
///
/// Why: when a batch of I/O runs out, the workers run out together; one takes the driving
/// turn, finds the next batch in the poller and dispatches it into its own queue, and the
/// others, finding the turn taken, used to park on their condvars — to be woken by a futex
/// call a few microseconds later, when the dispatch queued the batch. On `tcp_echo` at N = 2
/// that was one sleep and one wake-up per batch of about 30 events (two per round trip of a
/// connection), about a fifth of the CPUs' time idle in between (docs/benchmarks.md, "The
/// spin before parking"). Only then: with none of our workers driving (the reactor thread
/// does, or another runtime's worker, whose wakes reach us through the injector with a
/// notification, or nothing started the reactor), nothing says work is coming, and a
/// spinning worker only takes CPU time from the threads that might produce it (measured:
/// remote spawns from a plain thread got slower).
///
/// The spinner stays counted as a searcher, so producers skip waking anyone for it while it
/// watches (it sees their tasks). One worker spins at a time (`Idle::try_begin_spinning`):
/// the looks read every worker's queue, and many spinners would keep those cache lines moving
/// between cores on a large machine. Between two looks it yields its CPU to any thread that
/// waits for one there (a producer of the very work it watches for, a client on the same
/// machine). Afterwards it parks through the protocol's steps (a)–(c) as before: the spin
/// changes no state a producer reads but the searcher count, which it holds as any searcher
/// does. Under loom it does not spin (workers never drive there, and a spin only repeats the
/// loop's look at the queues, which the models already take).
fn spin_for_work(shared: &Shared) -> bool {
    #[cfg(not(loom))]
    {
        let spin = shared.config.spin_before_park;
        if spin.is_zero() {
            return false;
        }
        // `Builder::build` bounds the spin (`MAX_SPIN_BEFORE_PARK`): no overflow here.
        let deadline = std::time::Instant::now() + spin;
        let Some(_spinning) = shared.idle.try_begin_spinning() else {
            return false;
        };
        loop {
            if shared.has_visible_work() || shared.is_shutdown() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        }
    }
    #[cfg(loom)]
    {
        let _ = shared;
        false
    }
}

/// Runs `f` on this worker's core.
fn with_own_core<R>(f: impl FnOnce(&mut Core) -> R) -> R {
    context::with_core(|core| f(core.expect("a worker thread has its core")))
}

/// Whether this worker's own queues hold a task (`false` off a worker).
fn has_local_work() -> bool {
    context::with_core(|core| core.is_some_and(|core| core.has_local_work()))
}

/// Records what the idle bookkeeping counts this worker as, right after the call that changed
/// it (`Core::searching`, `Core::parked`).
fn set_idle_role(searching: bool, parked: bool) {
    with_own_core(|core| {
        core.searching = searching;
        core.parked = parked;
    });
}

#[cfg(all(test, not(loom)))]
mod spin_tests {
    use super::spin_for_work;
    use crate::runtime::{Builder, Runtime};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// The longest spin accepted (1 s), far longer than these tests need: a spin that runs
    /// past half of it fails them.
    const LONG_SPIN: Duration = Builder::MAX_SPIN_BEFORE_PARK;

    /// One worker: it never spins itself (a spin needs another worker of its runtime holding
    /// the driving turn), so the test thread's calls have the spinner's place to themselves.
    fn runtime(spin: Duration) -> Runtime {
        Builder::new()
            .worker_threads(1)
            .spin_before_park(spin)
            .build()
            .expect("build the runtime")
    }

    /// Holds the runtime's only worker in a poll until the returned sender sends (or goes),
    /// so that tasks spawned meanwhile stay queued; returns once the worker is held.
    fn hold_the_only_worker(rt: &Runtime) -> (mpsc::Sender<()>, crate::JoinHandle<()>) {
        let (release, held) = mpsc::channel::<()>();
        let (entered, started) = mpsc::channel();
        let blocker = rt.spawn(async move {
            entered.send(()).unwrap();
            let _ = held.recv();
        });
        started.recv().unwrap();
        (release, blocker)
    }

    #[test]
    fn a_spin_with_nothing_to_find_watches_until_its_bound_then_gives_up() {
        let rt = runtime(Duration::from_millis(30));
        let start = Instant::now();
        assert!(
            !spin_for_work(&rt.handle.shared),
            "found work in an idle runtime"
        );
        assert!(
            start.elapsed() >= Duration::from_millis(30),
            "gave up after {:?}, before its 30 ms",
            start.elapsed()
        );
    }

    #[test]
    fn a_spin_returns_once_a_task_is_queued() {
        let rt = runtime(LONG_SPIN);
        // The only worker is held in a poll, so the task spawned below stays queued.
        let (release, blocker) = hold_the_only_worker(&rt);
        let handle = rt.handle();
        let spawner = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            // Taken by the spawner itself, so that no stall of either thread moves it.
            let spawning = Instant::now();
            (spawning, handle.spawn(async { 7 }))
        });
        let found = spin_for_work(&rt.handle.shared);
        let returned = Instant::now();
        let (spawning, task) = spawner.join().unwrap();
        release.send(()).unwrap();
        assert!(found, "the spin ended without seeing the queued task");
        assert!(
            returned >= spawning,
            "the spin returned before the task was spawned"
        );
        let waited = returned - spawning;
        assert!(
            waited < LONG_SPIN / 2,
            "the spin ran {waited:?} with a task queued"
        );
        assert_eq!(crate::block_on(task).unwrap(), 7);
        crate::block_on(blocker).unwrap();
    }

    #[test]
    fn a_second_spinner_is_refused_at_once() {
        let rt = runtime(LONG_SPIN);
        let shared = &rt.handle.shared;
        let first = shared.idle.try_begin_spinning().expect("the first spinner");
        let start = Instant::now();
        assert!(
            !spin_for_work(shared),
            "a second spinner found work in an idle runtime"
        );
        assert!(
            start.elapsed() < LONG_SPIN / 2,
            "a second spinner watched for {:?}",
            start.elapsed()
        );
        drop(first);
    }

    #[test]
    fn a_spin_off_returns_at_once_and_leaves_the_place_free() {
        let rt = runtime(Duration::ZERO);
        // A task waits in the global queue (the only worker is held in a poll): a spin that
        // took even one look would see it and say so.
        let (release, blocker) = hold_the_only_worker(&rt);
        let queued = rt.spawn(async { 7 });
        let shared = &rt.handle.shared;
        let looked = spin_for_work(shared);
        let place_free = shared.idle.try_begin_spinning().is_some();
        release.send(()).unwrap();
        assert!(!looked, "a spin that is off looked at the queues");
        assert!(place_free, "a spin that is off took the spinner's place");
        assert_eq!(crate::block_on(queued).unwrap(), 7);
        crate::block_on(blocker).unwrap();
    }

    #[test]
    fn shutdown_ends_a_spin() {
        let rt = runtime(LONG_SPIN);
        let shared = rt.handle.shared.clone();
        let dropper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(rt);
        });
        let start = Instant::now();
        assert!(
            spin_for_work(&shared),
            "the spin ended without seeing the shutdown"
        );
        assert!(
            start.elapsed() < LONG_SPIN / 2,
            "the spin ran {:?} after shutdown",
            start.elapsed()
        );
        dropper.join().unwrap();
    }

    /// Echo round trips over Unix socket pairs on three workers: the workers take the driving
    /// turn, spin while another drives, and return from the spin as searchers. Afterwards the
    /// runtime settles: every worker parked, nobody counted as searching, the spinner's place
    /// free — the searcher count is given back once for each time it was taken (planting a
    /// leak on the spin's return path fails it). Run alone, spins find work thousands of
    /// times; beside the other tests of this binary there may be none, since the driving turn
    /// is the process's and another test's idle runtime may hold it all along (the settling is
    /// checked all the same).
    #[cfg(all(unix, not(miri)))]
    #[test]
    fn after_io_load_with_spins_every_worker_parks_and_nobody_searches() {
        use futures_lite::{AsyncReadExt, AsyncWriteExt};
        use magpie_reactor::Async;
        use std::os::unix::net::UnixStream;

        const PAIRS: usize = 16;
        const ROUNDS: usize = 200;
        let rt = Builder::new()
            .worker_threads(3)
            .build()
            .expect("build the runtime");
        rt.block_on(async {
            let mut tasks = Vec::new();
            for pair in 0..PAIRS {
                let (a, b) = UnixStream::pair().expect("socket pair");
                let (mut client, mut server) = (
                    Async::new(a).expect("register"),
                    Async::new(b).expect("register"),
                );
                tasks.push(crate::spawn(async move {
                    let mut buf = [0u8; 8];
                    for _ in 0..ROUNDS {
                        server.read_exact(&mut buf).await.expect("server read");
                        server.write_all(&buf).await.expect("server write");
                    }
                }));
                tasks.push(crate::spawn(async move {
                    let mut buf = [0u8; 8];
                    for round in 0..ROUNDS {
                        let msg = [(pair * 7 + round) as u8; 8];
                        client.write_all(&msg).await.expect("client write");
                        client.read_exact(&mut buf).await.expect("client read");
                        assert_eq!(buf, msg, "pair {pair}, round {round}");
                    }
                }));
            }
            for task in tasks {
                task.await.expect("an echo task failed");
            }
        });
        let shared = &rt.handle.shared;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let parked = shared.idle.all_parked();
            let searching = shared.idle.searching_now();
            let place_free = shared.idle.try_begin_spinning().is_some();
            if parked && searching == 0 && place_free {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "10 s after the load: all parked {parked}, searching {searching}, spinner's \
                 place free {place_free}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
