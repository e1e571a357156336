//! Which workers are parked, and how many are searching for work.
//!
//! The counters live in one atomic word so producers can read them without a lock:
//!
//! ```text
//!  [ unparked workers (high bits) | searching workers (low 16 bits) ]
//! ```
//!
//! They change only under the `sleepers` lock; producers read them lock-free and take the lock
//! only when they are about to wake someone.
//!
//! ## The no-lost-wakeup argument
//! A producer (1) pushes a task, (2) issues a SeqCst fence, (3) reads the counters. A worker
//! going to sleep (a) updates the counters under the lock, (b) issues a SeqCst fence, (c) looks
//! at every queue once more. Both fences are in one total order: either the producer's read
//! (3) sees the worker parked and wakes somebody, or the worker's re-check (c) sees the task.
//! A producer that sees a searching worker wakes nobody: that searcher, when it gives up, does
//! (a)–(c) itself and so finds the task.
//!
//! ## A worker that dies
//! A worker's loop unwinds only through a bug in the runtime (every poll catches its panic),
//! but then the counters must not keep describing it: a dead searcher would keep every
//! producer from waking anyone, and a dead sleeper on the list would take a producer's
//! wake-up with it. On its way out it gives up its place ([`Idle::worker_died`]) and is counted
//! as awake and not searching from then on, so that "fewer awake than workers" still means "a
//! live worker is parked"; the monitor, which sleeps while every worker is parked, counts the
//! dead apart (`dead`).

#[cfg(not(loom))]
use super::monitor::HelperSleep;
#[cfg(not(loom))]
use crate::loom::atomic::AtomicBool;
use crate::loom::atomic::{fence, AtomicUsize, Ordering};
use crate::loom::{lock, Mutex};
#[cfg(not(loom))]
use std::sync::Arc as StdArc;

const SEARCHING_MASK: usize = (1 << 16) - 1;
const UNPARKED_ONE: usize = 1 << 16;

pub(crate) struct Idle {
    state: AtomicUsize,
    /// Indices of the parked workers.
    sleepers: Mutex<Vec<usize>>,
    num_workers: usize,
    /// Workers whose loop unwound ([`Idle::worker_died`]), counted as awake for good. Written
    /// under the `sleepers` lock, after the state word.
    dead: AtomicUsize,
    /// Set while a worker spins before parking (`worker.rs`, `spin_for_work`): one at a time.
    #[cfg(not(loom))]
    spinning: AtomicBool,
    /// Where the monitor (`monitor.rs`) sleeps while every worker is parked; woken when one
    /// leaves the parked state. (No monitor under loom.)
    #[cfg(not(loom))]
    monitor: StdArc<HelperSleep>,
}

fn searching(state: usize) -> usize {
    state & SEARCHING_MASK
}

fn unparked(state: usize) -> usize {
    state >> 16
}

impl Idle {
    pub(crate) fn new(num_workers: usize) -> Idle {
        assert!(num_workers < SEARCHING_MASK, "too many worker threads");
        Idle {
            // Every worker starts awake and not searching.
            state: AtomicUsize::new(num_workers * UNPARKED_ONE),
            sleepers: Mutex::new(Vec::with_capacity(num_workers)),
            num_workers,
            dead: AtomicUsize::new(0),
            #[cfg(not(loom))]
            spinning: AtomicBool::new(false),
            #[cfg(not(loom))]
            monitor: StdArc::default(),
        }
    }

    /// Lets the caller search other workers' queues unless about half of the workers do
    /// already: more searchers than that only contend on the same victims.
    pub(crate) fn try_begin_searching(&self) -> bool {
        // Relaxed: an estimate; a worker that is refused parks and re-checks the queues
        // (with the fences of the protocol above) before it sleeps.
        let state = self.state.load(Ordering::Relaxed);
        if 2 * searching(state) >= self.num_workers.max(2) {
            return false;
        }
        self.state.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// The caller found work and stops searching. Returns `true` if it was the last searcher,
    /// in which case it must wake another worker (the rest of the work may need hands).
    pub(crate) fn end_searching(&self) -> bool {
        let prev = self.state.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(searching(prev) > 0);
        searching(prev) == 1
    }

    /// Claims the one spinner's place, held until the returned guard drops; `None` if another
    /// worker spins.
    #[cfg(not(loom))]
    pub(crate) fn try_begin_spinning(&self) -> Option<Spinning<'_>> {
        // Relaxed: the flag only rations the spinning; nothing is published through it, and a
        // spinner's looks at the queues are ordinary reads of their own atomics. The load
        // first keeps a refused worker from writing the line.
        let claimed = !self.spinning.load(Ordering::Relaxed)
            && self
                .spinning
                .compare_exchange(false, true, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        claimed.then_some(Spinning(self))
    }

    /// A producer published a task: the index of the worker it must wake, if any, and whether
    /// every worker was parked until then (the caller then wakes the monitor, after the
    /// worker: `wake_monitor`).
    ///
    /// Inlined up to the first look at the counters, which on a busy runtime (a worker
    /// searching already) is where nearly every push stops; the locked part is a call.
    #[inline]
    pub(crate) fn worker_to_notify(&self) -> Option<(usize, bool)> {
        // Step (2) of the protocol: order the push before the read of the counters.
        fence(Ordering::SeqCst);
        if !self.should_notify(self.state.load(Ordering::SeqCst)) {
            return None;
        }
        self.pick_sleeper()
    }

    /// [`Idle::worker_to_notify`] past its first look: a worker is to be woken, unless another
    /// producer woke one meanwhile.
    fn pick_sleeper(&self) -> Option<(usize, bool)> {
        let mut sleepers = lock(&self.sleepers);
        // Re-check under the lock: another producer may have woken a worker meanwhile.
        if !self.should_notify(self.state.load(Ordering::SeqCst)) {
            return None;
        }
        let index = sleepers.pop()?;
        // The woken worker starts out searching, so that further producers do not wake
        // another one for work it is about to find.
        let prev = self.state.fetch_add(UNPARKED_ONE + 1, Ordering::SeqCst);
        Some((index, self.was_all_parked(prev)))
    }

    /// Whether `prev`, a state word read or replaced under the `sleepers` lock, had every
    /// live worker parked: none awake but the dead (Relaxed: `dead` is written under the
    /// same lock).
    fn was_all_parked(&self, prev: usize) -> bool {
        unparked(prev) == self.dead.load(Ordering::Relaxed)
    }

    #[inline]
    fn should_notify(&self, state: usize) -> bool {
        searching(state) == 0 && unparked(state) < self.num_workers
    }

    /// Steps (a) and (b): the worker is about to park. A worker that will sleep in the
    /// reactor's poller (`driving`) goes to the far end of the list, so producers wake the
    /// workers sleeping on their condvars first and leave the poller's wait alone while they
    /// can: the driver keeps delivering I/O.
    pub(crate) fn transition_to_parked(&self, index: usize, was_searching: bool, driving: bool) {
        let mut sleepers = lock(&self.sleepers);
        let dec = UNPARKED_ONE + usize::from(was_searching);
        // Mutant: register as a sleeper without counting ourselves out of the awake workers,
        // so producers believe every worker is awake and wake nobody.
        #[cfg(magpie_mutant = "parked_not_counted")]
        let dec = dec - UNPARKED_ONE;
        self.state.fetch_sub(dec, Ordering::SeqCst);
        if driving {
            sleepers.insert(0, index);
        } else {
            sleepers.push(index);
        }
        drop(sleepers);
        // Step (b).
        fence(Ordering::SeqCst);
    }

    /// A parked worker got the driving turn after it registered (the reactor thread handed
    /// over the turn it had asked for): it moves to the far end of the list, where a worker
    /// that sleeps in the poller belongs (see [`Idle::transition_to_parked`]), so that
    /// producers wake the condvar sleepers first. Does nothing if a producer took it off.
    pub(crate) fn parked_worker_drives(&self, index: usize) {
        let mut sleepers = lock(&self.sleepers);
        if let Some(pos) = sleepers.iter().position(|&i| i == index) {
            sleepers.remove(pos);
            sleepers.insert(0, index);
        }
    }

    /// The worker saw work after registering as parked: takes itself off the list, as a
    /// searcher (`searching`: it saw work in other queues) or not (the work is in its own
    /// queue: its drive of the reactor woke tasks of its own). Returns `false` if a producer
    /// had already taken it off (and counted it as a searcher).
    pub(crate) fn unpark_self(&self, index: usize, searching: bool) -> bool {
        let mut sleepers = lock(&self.sleepers);
        let Some(pos) = sleepers.iter().position(|&i| i == index) else {
            return false;
        };
        sleepers.remove(pos);
        let prev = self
            .state
            .fetch_add(UNPARKED_ONE + usize::from(searching), Ordering::SeqCst);
        let was_all_parked = self.was_all_parked(prev);
        drop(sleepers);
        if was_all_parked {
            // The first to wake in a runtime where every worker was parked.
            self.wake_monitor();
        }
        true
    }

    /// A worker's loop unwound (a bug: see "A worker that dies" above) while it was `parked`
    /// (registered by [`Idle::transition_to_parked`] and not yet off the list by its own
    /// hand: still on it, or taken off by a producer, which counted it as searching) or
    /// searching (`was_searching`). Gives its place up: off the list, counted as awake and not
    /// searching for good. Returns `true` if the caller must wake another worker in its
    /// stead: it was the last searcher (as with [`Idle::end_searching`]: the work that made
    /// it search, or that a producer woke it for, needs hands), or it was still on the list —
    /// it may not have made its last look at the queues yet (step (c)), on which the producers
    /// that saw it searching before it parked relied. (A wake-up with nothing to find only
    /// costs that worker a look.)
    pub(crate) fn worker_died(&self, index: usize, parked: bool, was_searching: bool) -> bool {
        // Mutant: the dead worker keeps its place: left on the list for a producer to wake, or
        // counted as a searcher for ever, so that producers wake nobody.
        if cfg!(magpie_mutant = "dead_worker_keeps_its_place") {
            return false;
        }
        let mut sleepers = lock(&self.sleepers);
        let on_list = parked
            .then(|| sleepers.iter().position(|&i| i == index))
            .flatten();
        let wake_another = if let Some(pos) = on_list {
            sleepers.remove(pos);
            // Counted as parked: now as awake, for good.
            self.state.fetch_add(UNPARKED_ONE, Ordering::SeqCst);
            // Mutant: a worker that dies on the list wakes nobody, as if it had made its last
            // look.
            !cfg!(magpie_mutant = "dead_sleeper_skips_its_look")
        } else if parked || was_searching {
            // Counted as awake and searching (by a producer, or by its own search). Never
            // below zero: a panic between a counter's change and the flags' (`Core::searching`,
            // nothing there can panic today) would make this a second decrement, which must
            // not borrow from the awake workers' bits.
            let prev = self
                .state
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |state| {
                    (searching(state) > 0).then(|| state - 1)
                });
            prev.is_ok_and(|prev| searching(prev) == 1)
        } else {
            false
        };
        // After the state word (the order `all_parked` reads them in the other way round): a
        // reader that sees the new count sees the worker counted as awake.
        self.dead.fetch_add(1, Ordering::SeqCst);
        drop(sleepers);
        wake_another
    }

    /// How many workers are searching now (for the I/O test in `worker.rs`, Unix only).
    #[cfg(all(test, not(loom), unix, not(miri)))]
    pub(crate) fn searching_now(&self) -> usize {
        searching(self.state.load(Ordering::SeqCst))
    }

    /// Whether every live worker is parked (the monitor's reason to sleep).
    #[cfg(not(loom))]
    pub(crate) fn all_parked(&self) -> bool {
        // `dead` first: a death writes it after the state word (`worker_died`), so a reader
        // that sees a worker's death sees it counted as awake — never a live worker's wake-up
        // taken for the dead one's.
        let dead = self.dead.load(Ordering::SeqCst);
        unparked(self.state.load(Ordering::SeqCst)) == dead
    }

    /// The monitor's sleeping place.
    #[cfg(not(loom))]
    pub(crate) fn monitor_sleep(&self) -> StdArc<HelperSleep> {
        self.monitor.clone()
    }

    /// Wakes the monitor from its sleep (a producer woke the first worker of an all-parked
    /// runtime). (Its SeqCst read of the state, made after it marked itself asleep under its
    /// lock, sees the producer's SeqCst update unless it comes after it — and then this finds
    /// it marked asleep.)
    pub(crate) fn wake_monitor(&self) {
        #[cfg(not(loom))]
        self.monitor.wake();
    }

    /// Wakes the monitor from its sleep or its nap between two looks: shutdown began.
    #[cfg(not(loom))]
    pub(crate) fn wake_monitor_for_shutdown(&self) {
        self.monitor.wake_for_shutdown();
    }

    /// `true` while the worker is on the list (a wakeup without a producer is spurious).
    pub(crate) fn is_parked(&self, index: usize) -> bool {
        lock(&self.sleepers).contains(&index)
    }
}

/// The spinner's place, given back when dropped (also by a spin that unwinds, which would
/// otherwise keep every other worker from spinning for good).
#[cfg(not(loom))]
pub(crate) struct Spinning<'a>(&'a Idle);

#[cfg(not(loom))]
impl Drop for Spinning<'_> {
    fn drop(&mut self) {
        self.0.spinning.store(false, Ordering::Relaxed);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Idle;

    #[test]
    fn one_worker_spins_at_a_time() {
        let idle = Idle::new(4);
        let first = idle.try_begin_spinning().expect("the first claim");
        assert!(
            idle.try_begin_spinning().is_none(),
            "a second spinner while one spins"
        );
        drop(first);
        assert!(
            idle.try_begin_spinning().is_some(),
            "a claim after the spinner ended"
        );
    }

    #[test]
    fn a_parked_worker_that_gets_the_turn_is_woken_last() {
        let idle = Idle::new(3);
        idle.transition_to_parked(0, false, false);
        idle.transition_to_parked(1, false, false);
        idle.transition_to_parked(2, false, false);
        // Worker 2 parked last (first in line to be woken), then got the turn it had asked
        // the reactor thread for: it drives, so the others are woken before it.
        idle.parked_worker_drives(2);
        assert_eq!(idle.worker_to_notify().map(|(i, _)| i), Some(1));
        // Without the move, the driver would have been the one woken.
        let unmoved = Idle::new(3);
        for i in 0..3 {
            unmoved.transition_to_parked(i, false, false);
        }
        assert_eq!(unmoved.worker_to_notify().map(|(i, _)| i), Some(2));
        // Off the list (woken): nothing to move.
        unmoved.parked_worker_drives(2);
        assert!(!unmoved.is_parked(2));
    }

    #[test]
    fn with_a_dead_worker_the_live_ones_parked_are_all_parked() {
        let idle = Idle::new(3);
        idle.transition_to_parked(0, false, false);
        assert!(
            !idle.worker_died(1, false, false),
            "an awake worker owes no wake-up"
        );
        assert!(
            idle.worker_died(0, true, false),
            "it died before its last look"
        );
        assert!(
            !idle.is_parked(0),
            "the dead worker is off the list of sleepers"
        );
        assert!(!idle.all_parked(), "worker 2 is awake");
        idle.transition_to_parked(2, false, false);
        // The monitor's reason to sleep, with both dead workers counted apart.
        assert!(idle.all_parked());
        // A producer wakes the live sleeper, and is told that it woke the first of an
        // all-parked runtime (it then wakes the monitor).
        assert_eq!(idle.worker_to_notify(), Some((2, true)));
        assert!(!idle.all_parked());
    }

    #[test]
    fn a_spin_that_unwinds_gives_its_place_back() {
        let idle = Idle::new(2);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _spinning = idle.try_begin_spinning().expect("the claim");
            panic!("a look panicked");
        }));
        assert!(unwound.is_err());
        assert!(idle.try_begin_spinning().is_some(), "the place was kept");
    }
}

#[cfg(all(test, loom))]
mod models {
    //! A worker that dies (its loop unwinds: a bug) while parked or searching, racing a
    //! producer's push: the live worker, parked since before the push, is still woken — by the
    //! producer, or by the dying worker in its stead (it gave up the last searcher's place, or
    //! died on the list before its last look).

    use super::*;
    use crate::loom::{thread, Arc};

    /// In every interleaving of worker 0's death (`dies`, after `before`) with a producer's
    /// push, worker 1, parked since before both, is woken: by the producer, or by the dying
    /// worker in its stead.
    fn live_worker_is_woken_while_worker_0_dies(before: fn(&Idle), dies: fn(&Idle) -> bool) {
        loom::model(move || {
            let idle = Arc::new(Idle::new(2));
            idle.transition_to_parked(1, false, false);
            before(&idle);
            let woken = Arc::new(Mutex::new(Vec::new()));
            let dying = {
                let (idle, woken) = (idle.clone(), woken.clone());
                thread::spawn(move || {
                    if dies(&idle) {
                        // It owes a wake-up (`worker_died`): it wakes another worker, as
                        // `LeavingWorker` does.
                        if let Some((index, _)) = idle.worker_to_notify() {
                            lock(&woken).push(index);
                        }
                    }
                })
            };
            // The producer (its push stands before the fence inside `worker_to_notify`).
            if let Some((index, _)) = idle.worker_to_notify() {
                lock(&woken).push(index);
            }
            dying.join().unwrap();
            let woken = lock(&woken).clone();
            assert!(
                woken.contains(&1),
                "the parked live worker was not woken: {woken:?}"
            );
        });
    }

    #[test]
    fn a_worker_that_dies_parked_leaves_the_wake_up_to_the_live_one() {
        live_worker_is_woken_while_worker_0_dies(
            |_| {},
            |idle| {
                idle.transition_to_parked(0, false, false);
                idle.worker_died(0, true, false)
            },
        );
    }

    #[test]
    fn a_searcher_that_dies_parked_before_its_last_look_leaves_the_wake_up_to_the_live_one() {
        // The producer may see worker 0 searching and wake nobody, counting on its last look
        // (step (c)) — which it dies before making.
        live_worker_is_woken_while_worker_0_dies(
            |idle| assert!(idle.try_begin_searching()),
            |idle| {
                idle.transition_to_parked(0, true, false);
                idle.worker_died(0, true, false)
            },
        );
    }

    #[test]
    fn a_worker_that_dies_searching_leaves_the_wake_up_to_the_live_one() {
        live_worker_is_woken_while_worker_0_dies(
            |idle| assert!(idle.try_begin_searching()),
            |idle| idle.worker_died(0, false, true),
        );
    }
}
