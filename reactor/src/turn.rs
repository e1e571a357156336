//! The driving turn: who waits on the shared poller right now.
//!
//! One poller serves the whole process, and only one thread may wait on it at a time. That
//! thread holds **the turn**. Two kinds of threads take it:
//!
//! - an **idle executor worker** (or any thread with nothing else to do), through
//!   [`crate::driver::DrivingTurn`]: it waits on the poller itself, with the timeout of the
//!   next timer, and the tasks its events wake are queued on that very thread — no
//!   cross-thread handoff, no futex wake, no context switch;
//! - the process's **reactor thread** (`magpie-reactor`), the fallback: it drives whenever no
//!   worker has done so for a while (every worker busy — or stuck in a long poll), so I/O and
//!   timers are always delivered.
//!
//! ## The state word
//!
//! ```text
//!  [ epoch (high bits) | ASLEEP | WANTED | holder (2 bits: VACANT, WORKER, REACTOR) ]
//! ```
//!
//! - `holder`: `VACANT` (nobody waits on the poller; events queue up in the kernel, where the
//!   next driver collects them), `WORKER` (a worker holds the turn), `REACTOR` (the reactor
//!   thread holds it).
//! - `WANTED`: while the reactor thread holds the turn, a worker asked for it.
//! - `ASLEEP`: while a worker holds the turn, the reactor thread sleeps without a timeout and
//!   must be woken when the turn is released.
//! - `epoch`: bumped by every change of holder, so that "the same word an interval later"
//!   means "nothing changed hands meanwhile".
//!
//! ## The protocol, in numbered steps
//!
//! A worker that has nothing to run:
//! 1. reads the word. `VACANT`: takes the turn by CAS (`WORKER`, epoch + 1) and drives.
//!    `WORKER`: another worker drives; it parks as usual. `REACTOR`: it registers its waker
//!    in `requesters`, then sets `WANTED` by CAS, then (only if it set the bit) interrupts the
//!    reactor thread's wait with `notify`; it parks as usual and is woken by step 5.
//! 2. drives: waits on the poller (until an event, a notification or the next timer), then
//!    dispatches on its own thread. It repeats while it has nothing else to do.
//! 3. releases the turn when it leaves (it found work, or it shuts down): CAS to `VACANT`
//!    (epoch + 1), clearing `ASLEEP`; if `ASLEEP` was set it wakes the reactor thread (sets
//!    `woken` under the standby lock and signals the condvar). No syscall otherwise: a worker
//!    that alternates between running one task and driving pays two CASes per round trip.
//!
//! The reactor thread, holding the turn:
//! 4. drives one round (as step 2), then reads the word.
//! 5. `WANTED` set: hands the turn over — CAS to `VACANT` (epoch + 1, `WANTED` cleared) — and
//!    only then drains `requesters` and wakes them (a requester that registered after the
//!    drain sees `VACANT` in its own step 1, so none waits for a wake that never comes). It
//!    then stands by (step 6). Otherwise back to step 4.
//!
//! The reactor thread, standing by (`stand_by`), once per watch interval:
//! 6. reads the word and compares it with the word it read one interval before.
//!    - `VACANT`, unchanged: nobody drove for a whole interval (every worker is busy): it
//!      takes the turn by CAS (`REACTOR`, epoch + 1) and goes to step 4.
//!    - `WORKER`, unchanged: a worker has sat in the poller for a whole interval (the process
//!      is idle): it sets `ASLEEP` by CAS on that exact word and sleeps without a timeout
//!      until step 3 wakes it. The CAS fails if anything changed since the read, so it never
//!      sleeps through a release it did not see.
//!    - anything else: remembers the word and sleeps one interval.
//!
//! ## Why nothing is lost
//!
//! - **An event that arrives while the turn changes hands** stays in the kernel's ready list
//!   until the next wait collects it; the poller reports it to whichever thread waits next.
//!   A turn is never left vacant for good: a vacant word is either taken by a worker (step 1)
//!   or, one to two intervals later, by the reactor thread (step 6) — which is awake whenever
//!   the word is vacant, because `ASLEEP` is set only on a `WORKER` word and every release
//!   (step 3) clears it and wakes the sleeper.
//! - **A worker's request** sets `WANTED` and *then* notifies; the reactor thread reads the
//!   word after every wait returns (step 4), so either it sees the bit, or its next wait
//!   returns at once on the notification and it sees it then.
//! - **A task woken or spawned while a worker waits in the poller**: the executor's unpark of a
//!   driving worker calls `notify` (see `magpie-executor`'s `park.rs`), which interrupts the
//!   wait; a notification sent while nobody waits makes the next wait return at once.
//!
//! The models at the bottom of this file check these claims with loom, through this code.

use crate::loom::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::loom::{lock, Condvar, Mutex};
use std::task::Waker;

/// Nobody holds the turn.
const VACANT: usize = 0;
/// A worker holds the turn.
const WORKER: usize = 1;
/// The reactor thread holds the turn.
const REACTOR: usize = 2;
/// The bits that say who holds the turn.
const HOLDER: usize = 0b11;
/// A worker asked the reactor thread for the turn.
const WANTED: usize = 0b100;
/// The reactor thread sleeps until a worker releases the turn.
const ASLEEP: usize = 0b1000;
/// One step of the epoch.
const EPOCH_ONE: usize = 0b1_0000;

/// The word after a change of holder to `holder`: flags cleared, epoch bumped.
fn handed_to(word: usize, holder: usize) -> usize {
    (word & !(HOLDER | WANTED | ASLEEP)).wrapping_add(EPOCH_ONE) | holder
}

/// What a worker's attempt to take the turn came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Take {
    /// The caller holds the turn: it drives, and must [`Turn::release`] it.
    Taken,
    /// The reactor thread holds it and was asked to hand it over; the requester's waker is
    /// woken once it has.
    Requested,
    /// Another worker holds it.
    HeldByWorker,
}

/// What the reactor thread's standby ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Standby {
    /// The reactor thread holds the turn again.
    Took,
    /// The watch callback asked to stop (loom models only).
    Stopped,
}

/// The turn: the state word, the reactor thread's standby sleep, the waiting requesters.
pub(crate) struct Turn {
    state: AtomicUsize,
    /// Set by a release that found `ASLEEP` (step 3); consumed by the sleeper.
    woken: Mutex<bool>,
    standby: Condvar,
    /// Wakers of workers that asked the reactor thread for the turn (step 1).
    requesters: Mutex<Vec<Waker>>,
    /// Hand-overs made (step 5), for the reactor's stats. Written by the reactor thread only.
    handovers: AtomicU64,
}

impl Turn {
    /// A turn held by the reactor thread, which starts driving at once.
    pub(crate) fn new() -> Turn {
        Turn {
            state: AtomicUsize::new(REACTOR),
            woken: Mutex::new(false),
            standby: Condvar::new(),
            requesters: Mutex::new(Vec::new()),
            handovers: AtomicU64::new(0),
        }
    }

    /// Step 1 without the request: takes the turn if it is `VACANT`, and otherwise changes
    /// nothing — no `WANTED`, no notification (a busy worker's round between tasks, after a
    /// request of its busy period went unused: see `magpie-executor`'s `worker.rs`).
    pub(crate) fn take_if_vacant(&self) -> bool {
        // SeqCst: as in `take`.
        let word = self.state.load(Ordering::SeqCst);
        word & HOLDER == VACANT
            && self
                .state
                .compare_exchange(
                    word,
                    handed_to(word, WORKER),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
    }

    /// Hand-overs the reactor thread made to workers that asked (step 5).
    pub(crate) fn handovers(&self) -> u64 {
        // Relaxed: a statistic.
        self.handovers.load(Ordering::Relaxed)
    }

    /// Step 1: a worker tries to take the turn. When the reactor thread holds it, `requester`
    /// (if any) is registered to be woken once it is handed over, and `notify` is called to
    /// interrupt the reactor thread's wait.
    pub(crate) fn take(&self, requester: Option<&Waker>, notify: impl FnOnce()) -> Take {
        let mut registered = false;
        // SeqCst throughout: the word is the one place the holders meet, and the argument
        // above orders its reads against the poller's notifications; a handful of CASes per
        // turn change is not worth weaker reasoning.
        let mut word = self.state.load(Ordering::SeqCst);
        loop {
            match word & HOLDER {
                VACANT => match self.state.compare_exchange(
                    word,
                    handed_to(word, WORKER),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ) {
                    Ok(_) => return Take::Taken,
                    Err(now) => word = now,
                },
                WORKER => return Take::HeldByWorker,
                _ => {
                    if !registered {
                        // Registered before `WANTED` is set, so the handover's drain, which
                        // follows the bit's clearing, finds it.
                        if let Some(waker) = requester {
                            let mut list = lock(&self.requesters);
                            if !list.iter().any(|w| w.will_wake(waker)) {
                                list.push(waker.clone());
                            }
                        }
                        registered = true;
                        word = self.state.load(Ordering::SeqCst);
                        continue;
                    }
                    if word & WANTED != 0 {
                        // Asked already, and that asker notified.
                        return Take::Requested;
                    }
                    match self.state.compare_exchange(
                        word,
                        word | WANTED,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    ) {
                        Ok(_) => {
                            // (Mutant `request_skips_notify`: ask without interrupting the
                            // reactor thread's wait.)
                            if !cfg!(magpie_mutant = "request_skips_notify") {
                                notify();
                            }
                            return Take::Requested;
                        }
                        Err(now) => word = now,
                    }
                }
            }
        }
    }

    /// Step 3: the worker holding the turn gives it up.
    pub(crate) fn release(&self) {
        let mut word = self.state.load(Ordering::SeqCst);
        loop {
            debug_assert_eq!(word & HOLDER, WORKER, "release by a non-holder");
            match self.state.compare_exchange(
                word,
                handed_to(word, VACANT),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        // (Mutant `release_skips_standby_wake`: leave the sleeping reactor thread asleep.)
        if word & ASLEEP != 0 && !cfg!(magpie_mutant = "release_skips_standby_wake") {
            *lock(&self.woken) = true;
            self.standby.notify_one();
        }
    }

    /// Step 5: the reactor thread, holding the turn, hands it over if a worker asked.
    /// Returns `true` if it did (the caller then stands by).
    pub(crate) fn hand_over_if_wanted(&self) -> bool {
        let word = self.state.load(Ordering::SeqCst);
        debug_assert_eq!(word & HOLDER, REACTOR, "hand-over by a non-holder");
        if word & WANTED == 0 {
            return false;
        }
        // Only the reactor thread changes a `REACTOR` word other than by setting `WANTED`,
        // which is set already: the CAS cannot fail, but a plain store would hide a bug.
        let handed = self.state.compare_exchange(
            word,
            handed_to(word, VACANT),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        debug_assert!(handed.is_ok(), "the reactor's word changed under it");
        // Relaxed: a statistic; only this thread writes it.
        self.handovers.store(
            self.handovers.load(Ordering::Relaxed) + 1,
            Ordering::Relaxed,
        );
        let requesters = std::mem::take(&mut *lock(&self.requesters));
        // Woken outside the lock: a waker may run executor code. A panicking one (a bug in
        // whoever passed it) must not take the reactor thread down, nor keep the others asleep.
        for waker in requesters {
            if crate::report::caught(|| waker.wake()).is_none() {
                crate::report::report(format_args!(
                    "magpie-reactor: a driving-turn requester's Waker panicked; continuing"
                ));
            }
        }
        true
    }

    /// Step 6: the reactor thread stands by until it takes the turn back. `watch` sleeps one
    /// interval and returns `true`, or returns `false` to stop (loom models bound the loop
    /// that way).
    pub(crate) fn stand_by(&self, mut watch: impl FnMut() -> bool) -> Standby {
        let mut seen = None;
        loop {
            let word = self.state.load(Ordering::SeqCst);
            if seen == Some(word) {
                match word & HOLDER {
                    VACANT => {
                        if self
                            .state
                            .compare_exchange(
                                word,
                                handed_to(word, REACTOR),
                                Ordering::SeqCst,
                                Ordering::SeqCst,
                            )
                            .is_ok()
                        {
                            return Standby::Took;
                        }
                        seen = None;
                        continue;
                    }
                    WORKER => {
                        if self
                            .state
                            .compare_exchange(
                                word,
                                word | ASLEEP,
                                Ordering::SeqCst,
                                Ordering::SeqCst,
                            )
                            .is_ok()
                        {
                            self.sleep_until_released();
                        }
                        seen = None;
                        continue;
                    }
                    _ => unreachable!("only the reactor thread takes the turn as REACTOR"),
                }
            }
            seen = Some(word);
            if !watch() {
                return Standby::Stopped;
            }
        }
    }

    /// The reactor thread's sleep while a worker drives: until the release wakes it.
    fn sleep_until_released(&self) {
        let mut woken = lock(&self.woken);
        while !*woken {
            woken = self
                .standby
                .wait(woken)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        *woken = false;
    }

    /// Whether a worker holds the turn (for tests).
    #[cfg(test)]
    pub(crate) fn held_by_worker(&self) -> bool {
        self.state.load(Ordering::SeqCst) & HOLDER == WORKER
    }
}

/// A turn the reactor thread handed over (as it does when a worker asks), for the tests and
/// the models.
#[cfg(test)]
fn vacant_turn() -> Turn {
    let turn = Turn::new();
    assert_eq!(turn.take(None, || {}), Take::Requested);
    assert!(turn.hand_over_if_wanted());
    turn
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::Arc as StdArc;
    use std::task::Wake;

    struct CountingWaker(StdAtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: StdArc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting_waker() -> (StdArc<CountingWaker>, Waker) {
        let inner = StdArc::new(CountingWaker(StdAtomicUsize::new(0)));
        (inner.clone(), Waker::from(inner))
    }

    #[test]
    fn a_request_is_handed_over_and_its_requester_woken() {
        let turn = Turn::new();
        let (count, waker) = counting_waker();
        let mut notified = 0;
        assert_eq!(turn.take(Some(&waker), || notified += 1), Take::Requested);
        // A second ask does not notify again.
        assert_eq!(turn.take(Some(&waker), || notified += 1), Take::Requested);
        assert_eq!(notified, 1);
        assert!(turn.hand_over_if_wanted());
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "the requester is woken once"
        );
        assert_eq!(turn.take(None, || unreachable!()), Take::Taken);
        assert_eq!(turn.take(None, || unreachable!()), Take::HeldByWorker);
        turn.release();
        assert_eq!(turn.take(None, || unreachable!()), Take::Taken);
    }

    struct PanickingWaker;

    impl Wake for PanickingWaker {
        fn wake(self: StdArc<Self>) {
            panic!("a requester's waker panicked");
        }
    }

    #[test]
    fn a_panicking_requester_does_not_stop_the_hand_over_nor_the_others() {
        let turn = Turn::new();
        let bad = Waker::from(StdArc::new(PanickingWaker));
        let (count, good) = counting_waker();
        assert_eq!(turn.take(Some(&bad), || {}), Take::Requested);
        assert_eq!(turn.take(Some(&good), || {}), Take::Requested);
        assert!(
            turn.hand_over_if_wanted(),
            "handed over, no panic out of it"
        );
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "the other requester is woken"
        );
        assert_eq!(turn.take(None, || {}), Take::Taken);
    }

    #[test]
    fn a_vacant_only_take_takes_a_vacant_turn_and_never_asks_for_a_held_one() {
        let turn = Turn::new();
        assert!(!turn.take_if_vacant(), "the reactor thread holds it");
        assert!(!turn.hand_over_if_wanted(), "and nobody asked for it");
        assert_eq!(turn.handovers(), 0);
        let turn = vacant_turn();
        assert_eq!(turn.handovers(), 1, "the hand-over that made it vacant");
        assert!(turn.take_if_vacant());
        assert!(turn.held_by_worker());
        assert!(!turn.take_if_vacant(), "held by a worker now");
        turn.release();
        assert!(turn.take_if_vacant());
        turn.release();
    }

    #[test]
    fn the_reactor_keeps_the_turn_nobody_asked_for() {
        let turn = Turn::new();
        assert!(!turn.hand_over_if_wanted());
    }

    #[test]
    fn standby_takes_a_turn_left_vacant_for_a_whole_interval() {
        let turn = vacant_turn();
        let mut intervals = 0;
        let outcome = turn.stand_by(|| {
            intervals += 1;
            true
        });
        assert_eq!(outcome, Standby::Took);
        assert_eq!(intervals, 1, "one interval of vacancy, then taken");
        assert!(!turn.held_by_worker());
    }

    #[test]
    fn standby_does_not_take_a_turn_that_keeps_changing_hands() {
        let turn = vacant_turn();
        let mut intervals = 0;
        let outcome = turn.stand_by(|| {
            intervals += 1;
            if intervals > 5 {
                return false;
            }
            // A worker drives and leaves within every interval.
            assert_eq!(turn.take(None, || {}), Take::Taken);
            turn.release();
            true
        });
        assert_eq!(outcome, Standby::Stopped);
    }

    #[test]
    fn standby_sleeps_while_a_worker_drives_and_wakes_on_release() {
        let turn = StdArc::new(vacant_turn());
        assert_eq!(turn.take(None, || {}), Take::Taken);
        let releaser = {
            let turn = turn.clone();
            std::thread::spawn(move || {
                // Wait until the standby sleeps, then release.
                while turn.state.load(Ordering::SeqCst) & ASLEEP == 0 {
                    std::thread::yield_now();
                }
                turn.release();
            })
        };
        let mut intervals = 0;
        let outcome = turn.stand_by(|| {
            intervals += 1;
            true
        });
        releaser.join().unwrap();
        assert_eq!(outcome, Standby::Took);
        // One interval to see the worker sit, the sleep, then two to see the vacancy last.
        assert_eq!(intervals, 2);
    }
}

/// Loom models of the protocol, through this code. A stand-in poller replaces epoll: events
/// posted by a producer wait in it until a driver collects them, and `notify` interrupts a
/// wait, as the reactor's eventfd does.
#[cfg(all(test, loom))]
mod models {
    use super::*;
    use crate::loom::atomic::AtomicUsize;
    use crate::loom::Arc;
    use loom::thread;
    use std::sync::Arc as StdArc;
    use std::task::Wake;

    #[derive(Default)]
    struct Pending {
        events: usize,
        notified: bool,
    }

    /// The stand-in poller.
    struct ModelPoller {
        pending: Mutex<Pending>,
        ready: Condvar,
        /// Events collected by any driver.
        delivered: AtomicUsize,
    }

    impl ModelPoller {
        fn new() -> ModelPoller {
            ModelPoller {
                pending: Mutex::new(Pending::default()),
                ready: Condvar::new(),
                delivered: AtomicUsize::new(0),
            }
        }

        /// An event arrives (a packet, a hang-up).
        fn post(&self) {
            lock(&self.pending).events += 1;
            self.ready.notify_all();
        }

        /// Interrupts the current wait, or makes the next one return at once.
        fn notify(&self) {
            lock(&self.pending).notified = true;
            self.ready.notify_all();
        }

        /// A round that waits: until an event or a notification; collects every event.
        fn wait(&self) {
            let mut pending = lock(&self.pending);
            while pending.events == 0 && !pending.notified {
                pending = self.ready.wait(pending).unwrap();
            }
            self.collect(&mut pending);
        }

        /// A round that does not wait.
        fn poll(&self) {
            self.collect(&mut lock(&self.pending));
        }

        fn collect(&self, pending: &mut Pending) {
            self.delivered.fetch_add(pending.events, Ordering::SeqCst);
            pending.events = 0;
            pending.notified = false;
        }

        fn delivered(&self) -> usize {
            self.delivered.load(Ordering::SeqCst)
        }
    }

    /// A worker's condvar park, woken through a `Waker`.
    struct ModelParker {
        woken: Mutex<bool>,
        wake: Condvar,
    }

    impl ModelParker {
        fn park(&self) {
            let mut woken = lock(&self.woken);
            while !*woken {
                woken = self.wake.wait(woken).unwrap();
            }
            *woken = false;
        }
    }

    impl Wake for ModelParker {
        fn wake(self: StdArc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &StdArc<Self>) {
            *lock(&self.woken) = true;
            self.wake.notify_one();
        }
    }

    /// An event that arrives while a worker takes the turn, collects what is ready and hands
    /// the turn back is collected exactly once: by that worker, or by the reactor thread, which
    /// takes over the vacant turn — also when it had gone to sleep while the worker drove
    /// (the release must wake it: mutant `release_skips_standby_wake`).
    #[test]
    fn event_racing_the_hand_back_is_collected() {
        event_racing_the_hand_back(|turn, poller| {
            turn.take(None, || poller.notify()) == Take::Taken
        });
    }

    /// The same, with the worker's take that never asks (a busy worker's round).
    #[test]
    fn event_racing_a_vacant_only_take_is_collected() {
        event_racing_the_hand_back(|turn, _| turn.take_if_vacant());
    }

    /// The model of the two above: a worker that takes the turn with `take` (and, if it got
    /// it, polls once and releases it) against the reactor thread standing by.
    fn event_racing_the_hand_back(take: fn(&Turn, &ModelPoller) -> bool) {
        loom::model(move || {
            let turn = Arc::new(vacant_turn());
            let poller = Arc::new(ModelPoller::new());
            let producer = {
                let poller = poller.clone();
                thread::spawn(move || poller.post())
            };
            let worker = {
                let (turn, poller) = (turn.clone(), poller.clone());
                thread::spawn(move || {
                    if take(&turn, &poller) {
                        poller.poll();
                        turn.release();
                    }
                })
            };
            // This thread is the reactor thread.
            let standby = turn.stand_by(|| {
                if poller.delivered() == 1 {
                    return false;
                }
                thread::yield_now();
                true
            });
            if standby == Standby::Took {
                while poller.delivered() == 0 {
                    poller.wait();
                }
            }
            producer.join().unwrap();
            worker.join().unwrap();
            assert_eq!(poller.delivered(), 1);
        });
    }

    /// A worker that asks the reactor thread for the turn while that thread waits in the
    /// poller with nothing to collect gets it: the request interrupts the wait (mutant
    /// `request_skips_notify`), the thread hands the turn over and wakes the requester.
    #[test]
    fn a_request_interrupts_the_reactor_and_is_granted() {
        loom::model(|| {
            let turn = Arc::new(Turn::new());
            let poller = Arc::new(ModelPoller::new());
            let parker = StdArc::new(ModelParker {
                woken: Mutex::new(false),
                wake: Condvar::new(),
            });
            let worker = {
                let (turn, poller) = (turn.clone(), poller.clone());
                thread::spawn(move || {
                    let waker = Waker::from(parker.clone());
                    loop {
                        match turn.take(Some(&waker), || poller.notify()) {
                            Take::Taken => {
                                poller.poll();
                                turn.release();
                                return;
                            }
                            Take::Requested => parker.park(),
                            Take::HeldByWorker => unreachable!("no other worker"),
                        }
                    }
                })
            };
            // The reactor thread: drives until asked, then hands over.
            loop {
                poller.wait();
                if turn.hand_over_if_wanted() {
                    break;
                }
            }
            worker.join().unwrap();
        });
    }
}
