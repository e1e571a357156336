//! The timer store: per-thread shards of timing wheels, driven by the reactor thread.
//!
//! Registration takes only the lock of the calling thread's shard (threads are spread over the
//! shards round-robin), so many threads creating timers at once do not serialize on one lock.
//! The reactor thread visits every shard once per turn through [`TimerDriver::fire_expired`].
//!
//! ## Waking the reactor only when needed
//!
//! `reactor_wake` holds the tick the reactor thread will wake up for (`u64::MAX`: none known).
//! A registration for tick `t` first reads it and stops there unless `t` is earlier; then it
//! does `fetch_min(t)` and calls `notify_reactor` (a syscall) only when `t` is earlier than what
//! it replaced. While the reactor scans the shards it sets the
//! value to `u64::MAX`, so a registration racing with the scan (possibly into a shard already
//! scanned) always notifies and the reactor takes another turn; after the scan it publishes its
//! result with `fetch_min`, keeping any earlier tick a racing registration stored.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::AtomicUsize;
use std::sync::OnceLock;
use std::task::Waker;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use magpie_reactor::timer_hook::{notify_reactor, set_timer_driver, TimerDriver};

use crate::loom::{lock, AtomicU64, Mutex, MutexGuard, Ordering};
use crate::wheel::{Key, Wheel};

/// One tick of the wheels (100 µs) in nanoseconds. Fine enough that rounding a deadline up to
/// its tick adds at most 0.1 ms of lateness; coarse enough that a `u64` of ticks spans about
/// 58 million years and that timers set a few microseconds apart share one reactor wake-up.
const NANOS_PER_TICK: u64 = 100_000;
/// Ticks per second.
pub(crate) const TICKS_PER_SEC: u64 = 1_000_000_000 / NANOS_PER_TICK;
/// No tick: no timer pending, or the reactor is scanning.
const NO_TICK: u64 = u64::MAX;

/// A registered timer: which shard holds it and its key there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Handle {
    shard: u32,
    key: Key,
}

/// The outcome of registering a deadline.
#[derive(Debug)]
pub(crate) enum Registration {
    /// Registered; the waker is woken once the deadline has passed.
    Pending(Handle),
    /// The store has already fired past the deadline; nothing was registered.
    Due,
    /// The deadline is beyond what the store can represent: it never fires; nothing was
    /// registered.
    Never,
}

/// The outcome of moving a registered timer to a new deadline.
#[derive(Debug)]
pub(crate) enum Rescheduled {
    /// The timer now fires at the new deadline.
    Moved,
    /// The timer had already fired (its waker was woken); nothing is registered now.
    Gone,
    /// The new deadline is already due or can never fire: the timer was removed and its waker
    /// is handed back.
    Removed(Waker, Registration),
}

/// A wheel on its own cache lines, so that shards locked by different threads do not share one.
#[repr(align(128))]
#[derive(Debug)]
struct Shard(Mutex<Wheel>);

/// A sharded set of timing wheels (see the module docs).
#[derive(Debug)]
pub(crate) struct TimerStore {
    /// Tick 0: ticks are whole 100 µs steps since this instant.
    origin: Instant,
    shards: Box<[Shard]>,
    /// The tick the reactor will wake for, or `NO_TICK` (see the module docs). On cache lines
    /// of its own: registrations and the reactor write it, while every `Sleep` poll reads the
    /// fields beside it (`origin`, `virtual_ticks`).
    reactor_wake: CachePadded<AtomicU64>,
    /// Wakes the reactor thread (`notify_reactor` for the process store).
    notify: fn(),
    /// Installs this store as the reactor's timer driver, once, on first registration.
    install: Option<fn(&'static TimerStore)>,
    installed: std::sync::Once,
    /// A virtual clock's store (`clock.rs`): its "now", in ticks since `origin` (virtual time
    /// only ever stands on a tick, which also gives it the wheels' whole range). `None` for a
    /// store on the real clock. Kept here so that a `Sleep` reads its store's time without a
    /// thread-local lookup.
    virtual_ticks: Option<AtomicU64>,
}

impl TimerStore {
    /// A store with `shards` shards whose registrations call `notify` when they make the
    /// earliest deadline earlier. It is not installed in the reactor.
    pub(crate) fn new(shards: usize, notify: fn()) -> Self {
        let shards = shards.clamp(1, 256);
        TimerStore {
            origin: Instant::now(),
            shards: (0..shards)
                .map(|_| Shard(Mutex::new(Wheel::new())))
                .collect(),
            reactor_wake: CachePadded::new(AtomicU64::new(NO_TICK)),
            notify,
            install: None,
            installed: std::sync::Once::new(),
            virtual_ticks: None,
        }
    }

    /// A store on a virtual clock that starts at its origin (see `clock.rs`).
    pub(crate) fn new_virtual() -> Self {
        fn no_notify() {}
        TimerStore {
            virtual_ticks: Some(AtomicU64::new(0)),
            ..TimerStore::new(1, no_notify)
        }
    }

    /// The time on this store's clock: [`Instant::now`], or the virtual time.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        match &self.virtual_ticks {
            None => Instant::now(),
            // Relaxed: one thread moves a virtual clock; no other memory hangs on it.
            Some(ticks) => self
                .tick_instant(ticks.load(Ordering::Relaxed))
                .expect("virtual time stays within the wheels' range"),
        }
    }

    /// A virtual clock's time in ticks (`None`: a real clock).
    pub(crate) fn virtual_ticks(&self) -> Option<&AtomicU64> {
        self.virtual_ticks.as_ref()
    }

    /// The first tick at or after `instant` (the wheels' last tick if it is beyond them).
    pub(crate) fn tick_at_or_after(&self, instant: Instant) -> u64 {
        self.deadline_tick(instant).unwrap_or(NO_TICK - 1)
    }

    /// Empties a store with no timer pending back to its state when new: wheels at tick 0,
    /// nothing announced — but for the wheels' allocation numbers, which go on, so that a
    /// `Sleep` kept from an earlier run (its timer fired, its key held) matches no timer of
    /// the next. `false` (and nothing changed) when a timer is pending.
    pub(crate) fn reset_if_empty(&self) -> bool {
        let mut wheels: Vec<_> = self.shards.iter().map(|s| lock(&s.0)).collect();
        if wheels.iter().any(|wheel| wheel.len() > 0) {
            return false;
        }
        for wheel in wheels.iter_mut() {
            wheel.reset();
        }
        self.reactor_wake.store(NO_TICK, Ordering::Release);
        true
    }

    /// Number of pending timers over all shards.
    ///
    /// Each wheel already counts its timers under its shard's lock (insert, remove, fire), so
    /// this only takes each shard's lock for a moment, one after the other — no counter shared
    /// by the shards is written on the timer path. A snapshot: shards visited earlier may have
    /// changed by the time the last one is read.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.0).len()).sum()
    }

    /// The tick at which `deadline` is due: the first whole tick at or after it, so that firing
    /// at that tick is never early. `None` when it does not fit in a `u64` of ticks ("never").
    fn deadline_tick(&self, deadline: Instant) -> Option<u64> {
        let since = deadline.saturating_duration_since(self.origin);
        // A second is a whole number of ticks, so rounding only the sub-second part up equals
        // rounding the total up (and avoids a 128-bit division on the registration path).
        let sub = u64::from(since.subsec_nanos()).div_ceil(NANOS_PER_TICK);
        since
            .as_secs()
            .checked_mul(TICKS_PER_SEC)?
            .checked_add(sub)
            .filter(|&t| t != NO_TICK)
    }

    /// The last whole tick at or before `now`.
    fn now_tick(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin);
        let sub = u64::from(since.subsec_nanos()) / NANOS_PER_TICK;
        since
            .as_secs()
            .saturating_mul(TICKS_PER_SEC)
            .saturating_add(sub)
            .min(NO_TICK - 1)
    }

    fn shard(&self, index: u32) -> MutexGuard<'_, Wheel> {
        lock(&self.shards[index as usize].0)
    }

    /// Registers `waker` to be woken once `deadline` has passed.
    ///
    /// # Panics
    /// For the process store, if another timer driver was installed in the reactor; when a
    /// virtual clock's timer is registered off that clock, or a real one on a virtual clock
    /// (`clock::check_polled_on_its_clock`).
    pub(crate) fn register(&'static self, deadline: Instant, waker: &Waker) -> Registration {
        crate::clock::check_polled_on_its_clock(self);
        if let Some(install) = self.install {
            self.installed.call_once(|| install(self));
        }
        self.insert(deadline, waker)
    }

    /// [`TimerStore::register`] without installing the store in the reactor.
    fn insert(&self, deadline: Instant, waker: &Waker) -> Registration {
        let Some(tick) = self.deadline_tick(deadline) else {
            return Registration::Never;
        };
        let shard = current_shard(self.shards.len());
        // Clone before locking: the critical section runs no user code.
        let waker = waker.clone();
        let inserted = self.shard(shard).insert(tick, waker);
        match inserted {
            Ok(key) => {
                self.announce(tick);
                Registration::Pending(Handle { shard, key })
            }
            // Dropped here, after the lock.
            Err(_waker) => Registration::Due,
        }
    }

    /// Replaces the waker of a registered timer unless it would wake the same task.
    /// Returns `false` when the timer has already fired.
    pub(crate) fn update_waker(&self, handle: Handle, waker: &Waker) -> bool {
        let mut fresh = waker.clone();
        let live = {
            let mut wheel = self.shard(handle.shard);
            match wheel.waker_mut(handle.key) {
                Some(stored) => {
                    if !stored.will_wake(&fresh) {
                        std::mem::swap(stored, &mut fresh);
                    }
                    true
                }
                None => false,
            }
        };
        // `fresh` (now the old or the unused waker) is dropped after the lock.
        drop(fresh);
        live
    }

    /// Moves a registered timer to `deadline`.
    pub(crate) fn reschedule(&self, handle: Handle, deadline: Instant) -> Rescheduled {
        let tick = self.deadline_tick(deadline);
        let outcome = {
            let mut wheel = self.shard(handle.shard);
            match tick {
                Some(tick) => wheel
                    .reschedule(handle.key, tick)
                    .map_err(|waker| (waker, Registration::Due)),
                None => match wheel.remove(handle.key) {
                    Some(waker) => Err((waker, Registration::Never)),
                    None => Ok(false),
                },
            }
        };
        match (outcome, tick) {
            (Ok(true), Some(tick)) => {
                self.announce(tick);
                Rescheduled::Moved
            }
            (Ok(_), _) => Rescheduled::Gone,
            (Err((waker, why)), _) => Rescheduled::Removed(waker, why),
        }
    }

    /// Removes a registered timer (no effect if it already fired).
    pub(crate) fn cancel(&self, handle: Handle) {
        // Dropped after the lock: dropping a waker may run arbitrary code.
        drop(self.take(handle));
    }

    /// Removes a registered timer and returns its waker, or `None` if it already fired.
    pub(crate) fn take(&self, handle: Handle) -> Option<Waker> {
        self.shard(handle.shard).remove(handle.key)
    }

    /// Wakes the reactor if `tick` is earlier than the tick it will wake up for.
    fn announce(&self, tick: u64) {
        // Fast path, a plain read so that threads registering later-than-earliest timers do
        // not all write one shared cache line. Skipping is safe: if the reactor's scan missed
        // our insert, it locked our shard before we did, so its `swap` happens-before this
        // load, which therefore reads `NO_TICK` or the scan's result (coherence); only a value
        // at or before `tick` is skipped, and the reactor wakes up by then and scans again.
        if tick >= self.reactor_wake.load(Ordering::Acquire) {
            return;
        }
        // AcqRel: pairs with the reactor's `swap` and `fetch_min` so that, whichever RMW comes
        // first on `reactor_wake`, either the reactor's later shard lock sees our insert
        // (our unlock happens-before its lock), or we read the reactor's value and notify.
        let previous = self.reactor_wake.fetch_min(tick, Ordering::AcqRel);
        if tick < previous {
            (self.notify)();
        }
    }

    /// Fires every expired timer and returns the earliest pending tick (see `TimerDriver`).
    fn fire(&self, now: Instant) -> Option<u64> {
        // AcqRel: see `announce`. From here until the `fetch_min` below, every registration
        // sees `NO_TICK` and notifies, so none can be missed by this scan.
        #[cfg(not(magpie_mutant = "timers_no_scan_reset"))]
        self.reactor_wake.swap(NO_TICK, Ordering::AcqRel);
        let now_tick = self.now_tick(now);
        let mut fired = Vec::new();
        let mut earliest = NO_TICK;
        for shard in self.shards.iter() {
            let mut wheel = lock(&shard.0);
            wheel.advance(now_tick, &mut fired);
            if let Some(next) = wheel.next_tick() {
                earliest = earliest.min(next);
            }
        }
        // Published before waking, so that woken tasks re-registering later timers (an
        // `Interval`, a sleep in a loop) see the new value and do not notify needlessly.
        self.reactor_wake.fetch_min(earliest, Ordering::AcqRel);
        // Each shard's batch is in tick order; merge them (a stable sort of sorted runs) so
        // that timers fire in deadline order across shards too. Woken with every shard unlocked.
        fired.sort_by_key(|&(tick, _)| tick);
        // Every fired timer is already off its wheel: a `wake` that panics (a buggy waker)
        // must not unwind past the wakers after it, whose tasks would then wait for ever.
        for (_, waker) in fired {
            if panic::catch_unwind(AssertUnwindSafe(|| waker.wake())).is_err() {
                // `writeln!`, not `eprintln!`, which panics when stderr is gone (a closed pipe).
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "magpie-timers: a Waker panicked in wake(); firing the other timers"
                );
            }
        }
        (earliest != NO_TICK).then_some(earliest)
    }

    /// The instant at which `tick` begins. Never `None` in practice: `u64::MAX` ticks (58
    /// million years) past `origin` fit in an `Instant`.
    fn tick_instant(&self, tick: u64) -> Option<Instant> {
        let since = Duration::new(
            tick / TICKS_PER_SEC,
            ((tick % TICKS_PER_SEC) * NANOS_PER_TICK) as u32,
        );
        self.origin.checked_add(since)
    }
}

impl TimerDriver for TimerStore {
    fn fire_expired(&self, now: Instant) -> Option<Instant> {
        let tick = self.fire(now)?;
        self.tick_instant(tick)
    }

    fn pending_timers(&self) -> usize {
        self.len()
    }
}

/// The process-wide store behind `sleep`, `timeout` and `interval`.
///
/// Created on first use; installed in the reactor on its first registration.
pub(crate) fn global() -> &'static TimerStore {
    static GLOBAL: OnceLock<TimerStore> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // A few shards per core: threads are assigned round-robin, and runtimes usually run
        // about one worker per core plus some blocking threads.
        let mut store = TimerStore::new((cores * 4).next_power_of_two().min(64), notify_reactor);
        store.install = Some(install_driver);
        store
    })
}

fn install_driver(store: &'static TimerStore) {
    if set_timer_driver(store).is_err() {
        panic!("magpie-timers: another timer driver is already installed in the reactor");
    }
}

/// The shard of the calling thread: threads are numbered round-robin on their first timer.
fn current_shard(shards: usize) -> u32 {
    // A plain std atomic: it only spreads threads over shards, so any interleaving is correct
    // (Relaxed), and loom's atomics cannot live in a static.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static THREAD: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    // During thread-local destruction the index is gone; any shard is correct, only slower.
    (THREAD.try_with(|t| *t).unwrap_or(0) % shards) as u32
}

/// A private store for unit tests: never installed in the reactor, fired by calling
/// `fire_expired` by hand.
#[cfg(test)]
pub(crate) fn leaked_test_store() -> &'static TimerStore {
    fn no_notify() {}
    Box::leak(Box::new(TimerStore::new(4, no_notify)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sleep::Sleep;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex as StdMutex};
    use std::task::{Context, Poll, Wake};

    /// A waker that counts its wakes and logs its id.
    struct Probe {
        id: usize,
        wakes: AtomicUsize,
        log: Arc<StdMutex<Vec<usize>>>,
    }

    impl Wake for Probe {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.wakes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.log.lock().unwrap().push(self.id);
        }
    }

    fn probe(id: usize, log: &Arc<StdMutex<Vec<usize>>>) -> (Arc<Probe>, Waker) {
        let p = Arc::new(Probe {
            id,
            wakes: AtomicUsize::new(0),
            log: log.clone(),
        });
        (p.clone(), Waker::from(p))
    }

    fn wakes(p: &Probe) -> usize {
        p.wakes.load(std::sync::atomic::Ordering::SeqCst)
    }

    use super::leaked_test_store as test_store;

    fn poll(sleep: &mut Sleep, waker: &Waker) -> Poll<()> {
        Pin::new(sleep).poll(&mut Context::from_waker(waker))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn million_sleeps_polled_once_and_dropped_leave_store_empty() {
        let store = test_store();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let (probe, waker) = probe(0, &log);
        let now = Instant::now();
        // Under Miri, which interprets every instruction, a few thousand make the same point.
        let n: u64 = if cfg!(miri) { 3_000 } else { 1_000_000 };
        let mut sleeps: Vec<Sleep> = (0..n)
            // An hour ahead: all million polls finish long before the first is due, however
            // slow the machine.
            .map(|i| Sleep::new_in(store, Some(now + ms(3_600_000 + i % 100_000))))
            .collect();
        assert_eq!(
            store.len(),
            0,
            "a sleep registers on its first poll, not at creation"
        );
        for sleep in &mut sleeps {
            assert!(poll(sleep, &waker).is_pending());
        }
        assert_eq!(store.len(), n as usize);
        drop(sleeps);
        assert_eq!(store.len(), 0);
        assert_eq!(store.fire_expired(Instant::now()), None);
        assert_eq!(wakes(&probe), 0);
    }

    #[test]
    fn pending_timers_counts_registered_timers_until_cancelled_or_fired() {
        let store = test_store();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let (_, waker) = probe(0, &log);
        let now = Instant::now();
        assert_eq!(store.pending_timers(), 0);
        let handles: Vec<Handle> = (0..10)
            .map(|i| match store.register(now + secs(10 + i), &waker) {
                Registration::Pending(handle) => handle,
                other => panic!("not registered: {other:?}"),
            })
            .collect();
        assert_eq!(store.pending_timers(), 10);
        store.cancel(handles[0]);
        assert_eq!(store.pending_timers(), 9);
        // Cancelling twice, or rescheduling, changes nothing.
        store.cancel(handles[0]);
        let _ = store.reschedule(handles[1], now + secs(100));
        assert_eq!(store.pending_timers(), 9);
        // +10 s was cancelled; +11 s moved to +100 s: fires +12 s to +14 s.
        store.fire_expired(now + secs(15));
        assert_eq!(store.pending_timers(), 6);
        store.fire_expired(now + secs(101));
        assert_eq!(store.pending_timers(), 0);
    }

    #[test]
    fn fires_in_deadline_order_across_shards_never_early() {
        let store = test_store();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let start = Instant::now();
        // Registered from several threads (so several shards), in scrambled order.
        let ids: Vec<usize> = (0..200).map(|i| (i * 7919) % 200).collect();
        std::thread::scope(|s| {
            for chunk in ids.chunks(50) {
                let log = &log;
                s.spawn(move || {
                    for &id in chunk {
                        let (_, waker) = probe(id, log);
                        let deadline = start + ms(5 * id as u64 + 1);
                        assert!(matches!(
                            store.register(deadline, &waker),
                            Registration::Pending(_)
                        ));
                    }
                });
            }
        });
        // Fire in three late passes: each wakes everything due, in deadline order. (`now` is
        // 2 ms past the last due deadline: a deadline inside the current tick is not due yet.)
        for (pass, upto) in [(0, 50), (1, 120), (2, 200)] {
            let now = start + ms(5 * upto as u64 - 2);
            let next = store.fire_expired(now);
            let fired = log.lock().unwrap().clone();
            assert_eq!(fired, (0..upto).collect::<Vec<_>>(), "pass {pass}");
            if upto < 200 {
                let next = next.expect("timers remain");
                assert!(next > now && next <= start + ms(5 * upto as u64 + 2));
            } else {
                assert_eq!(next, None);
            }
        }
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn never_fires_before_the_deadline() {
        let store = test_store();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let (probe, waker) = probe(0, &log);
        let deadline = store.origin + Duration::from_micros(10_300);
        assert!(matches!(
            store.register(deadline, &waker),
            Registration::Pending(_)
        ));
        // Within the deadline's 100 µs tick but before it: not fired.
        store.fire_expired(store.origin + Duration::from_micros(10_299));
        assert_eq!(wakes(&probe), 0);
        let next = store.fire_expired(store.origin + ms(10)).unwrap();
        assert!(
            next >= deadline,
            "the reactor is not asked to wake before the deadline"
        );
        store.fire_expired(next);
        assert_eq!(wakes(&probe), 1);
    }

    #[test]
    fn repoll_with_new_waker_replaces_it() {
        let store = test_store();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let (first, first_waker) = probe(1, &log);
        let (second, second_waker) = probe(2, &log);
        let mut sleep = Sleep::new_in(store, Some(Instant::now() + secs(50)));
        assert!(poll(&mut sleep, &first_waker).is_pending());
        assert!(poll(&mut sleep, &second_waker).is_pending());
        assert_eq!(store.len(), 1);
        store.fire_expired(Instant::now() + secs(60));
        assert_eq!((wakes(&first), wakes(&second)), (0, 1));
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn reset_moves_the_registration() {
        let store = test_store();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let (probe, waker) = probe(0, &log);
        let now = Instant::now();
        let mut sleep = Sleep::new_in(store, Some(now + secs(50)));
        assert!(poll(&mut sleep, &waker).is_pending());
        sleep.reset(now + secs(500));
        assert_eq!(store.len(), 1);
        store.fire_expired(now + secs(100));
        assert_eq!(
            wakes(&probe),
            0,
            "moved later: not fired at the old deadline"
        );
        sleep.reset(now + secs(200));
        store.fire_expired(now + secs(201));
        assert_eq!(wakes(&probe), 1, "moved earlier: fired at the new deadline");
        assert_eq!(store.len(), 0);
        // After firing, a reset registers again on the next poll.
        sleep.reset(Instant::now() + secs(10_000));
        assert!(poll(&mut sleep, &waker).is_pending());
        assert_eq!(store.len(), 1);
        // Reset to the past while registered: woken at once, nothing left registered.
        sleep.reset(now);
        assert_eq!(wakes(&probe), 2);
        assert_eq!(store.len(), 0);
        assert!(poll(&mut sleep, &waker).is_ready());
    }

    #[test]
    fn unrepresentable_deadlines_are_never_and_zero_is_immediate() {
        let store = test_store();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let (probe, waker) = probe(0, &log);
        // `Duration::MAX` overflows `Instant`: no deadline at all.
        let mut never = Sleep::new_in(store, Instant::now().checked_add(Duration::MAX));
        assert!(poll(&mut never, &waker).is_pending());
        // Representable as an `Instant` but not as a tick (beyond `u64::MAX` ticks).
        let far = Instant::now().checked_add(Duration::from_secs(u64::MAX / TICKS_PER_SEC + 1));
        let mut far = Sleep::new_in(store, Some(far.expect("fits in an Instant")));
        assert!(poll(&mut far, &waker).is_pending());
        assert_eq!(store.len(), 0);
        assert_eq!(store.fire_expired(Instant::now()), None);
        // A parked sleep registers when reset to a real deadline, with the parked waker.
        far.reset(Instant::now() + secs(5));
        assert_eq!(store.len(), 1);
        store.fire_expired(Instant::now() + secs(10));
        assert_eq!(wakes(&probe), 1);
        // Zero: completes on the first poll without registering.
        let mut zero = Sleep::new_in(store, Some(Instant::now()));
        assert!(poll(&mut zero, &waker).is_ready());
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn notifies_only_when_the_earliest_deadline_moves_earlier() {
        static NOTIFIED: AtomicUsize = AtomicUsize::new(0);
        fn count() {
            NOTIFIED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let notified = || NOTIFIED.load(std::sync::atomic::Ordering::SeqCst);
        let store: &'static TimerStore = Box::leak(Box::new(TimerStore::new(2, count)));
        let log = Arc::new(StdMutex::new(Vec::new()));
        let (_, waker) = probe(0, &log);
        let now = Instant::now();
        let register = |offset| match store.register(now + ms(offset), &waker) {
            Registration::Pending(handle) => handle,
            other => panic!("not registered: {other:?}"),
        };
        register(100);
        assert_eq!(notified(), 1);
        register(200);
        assert_eq!(notified(), 1, "later than the earliest: no syscall");
        let h = register(50);
        assert_eq!(notified(), 2);
        // The reactor scans and sleeps towards +50 ms.
        store.fire_expired(now);
        register(60);
        assert_eq!(notified(), 2);
        let _ = store.reschedule(h, now + ms(70));
        assert_eq!(
            notified(),
            2,
            "moved later: the reactor wakes early, harmlessly"
        );
        register(10);
        assert_eq!(notified(), 3);
    }

    #[test]
    fn concurrent_registration_from_many_threads() {
        let store = test_store();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let start = Instant::now();
        let probes: Vec<Arc<Probe>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let log = &log;
                    s.spawn(move || {
                        let mut probes = Vec::new();
                        // Fewer under Miri, which interprets every instruction.
                        let per_thread = if cfg!(miri) { 50 } else { 5_000 };
                        for i in 0..per_thread {
                            let (p, waker) = probe(t * per_thread + i, log);
                            let deadline = start + ms(1 + (i as u64 * 13) % 3_000);
                            let handle = match store.register(deadline, &waker) {
                                Registration::Pending(handle) => handle,
                                other => panic!("not registered: {other:?}"),
                            };
                            if i % 4 == 0 {
                                store.cancel(handle);
                            } else {
                                probes.push(p);
                            }
                        }
                        probes
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(store.len(), probes.len());
        assert_eq!(store.fire_expired(start + ms(3_001)), None);
        assert!(probes.iter().all(|p| wakes(p) == 1));
        assert_eq!(log.lock().unwrap().len(), probes.len());
        assert_eq!(store.len(), 0);
    }
}

/// Loom model of the "notify only when earlier" protocol between a registering thread and the
/// reactor's scan. Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p magpie-timers --lib --release loom`; with
/// `--cfg magpie_mutant=\"timers_no_scan_reset\"` added (the reactor no longer resets the
/// value before scanning) the model finds the lost wake-up.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc as StdArc;
    use std::task::Wake;

    // A std atomic on purpose: it only records that the reactor was notified, for the final
    // assertion, and is not part of the protocol under test.
    static NOTIFIED: AtomicUsize = AtomicUsize::new(0);

    fn count() {
        NOTIFIED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    struct Noop;
    impl Wake for Noop {
        fn wake(self: StdArc<Self>) {}
    }

    #[test]
    fn registration_racing_a_scan_is_never_lost() {
        loom::model(|| {
            NOTIFIED.store(0, std::sync::atomic::Ordering::SeqCst);
            let store = loom::sync::Arc::new(TimerStore::new(1, count));
            let waker = Waker::from(StdArc::new(Noop));
            let now = store.origin;
            let earliest = now + Duration::from_secs(5);
            let sooner = now + Duration::from_secs(10);
            let later = now + Duration::from_secs(20);
            // The reactor last slept towards +5 s; that timer has since been cancelled, so its
            // next scan finds +20 s. A registration for +10 s races with that scan.
            let Registration::Pending(first) = store.insert(earliest, &waker) else {
                panic!("not registered");
            };
            assert!(matches!(
                store.insert(later, &waker),
                Registration::Pending(_)
            ));
            assert!(store.fire_expired(now).is_some());
            store.cancel(first);
            let baseline = NOTIFIED.load(std::sync::atomic::Ordering::SeqCst);

            let registering = {
                let store = store.clone();
                let waker = waker.clone();
                loom::thread::spawn(move || {
                    assert!(matches!(
                        store.insert(sooner, &waker),
                        Registration::Pending(_)
                    ));
                })
            };
            // The reactor takes another turn concurrently.
            let next = store.fire_expired(now);
            registering.join().unwrap();

            let notified = NOTIFIED.load(std::sync::atomic::Ordering::SeqCst) > baseline;
            // Either the registration woke the reactor (it takes another turn and sees the
            // timer), or the turn it raced with already reported the earlier deadline.
            assert!(
                notified || next.is_some_and(|n| n <= sooner),
                "lost wake-up: reactor sleeps towards {next:?} past {sooner:?}"
            );
        });
    }
}
