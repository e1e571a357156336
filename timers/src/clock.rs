//! magpie's clock: the real one, or — on a thread that runs magpie's deterministic runtime —
//! a virtual one that stands still while tasks run and jumps to the next deadline when none
//! can.
//!
//! Every timer reads the time through [`now`] and registers through [`store`], so the same
//! `sleep`, `timeout` and `interval` run on either clock. On the real path the cost is one
//! thread-local read per timer created (the thread-local holds `None`); a timer then reads the
//! time through its store, with no thread-local.
//!
//! The virtual clock of a thread is a timer store on virtual time (`TimerStore::now` reads
//! it), created once and reused by every deterministic run on that thread: it is leaked, as
//! the process store is, because a `Sleep` holds a `&'static` store. Each run starts it at a
//! whole second past the store's origin, so that deadlines fall on the same 100 µs ticks in
//! every run: the same seed, the same schedule.

use std::cell::Cell;
use std::time::Instant;

use magpie_reactor::timer_hook::TimerDriver;

use crate::loom::Ordering;
use crate::store::{self, TimerStore};

thread_local! {
    /// The virtual clock's store this thread runs on, while a [`VirtualClockGuard`] lives.
    static ENTERED: Cell<Option<&'static TimerStore>> = const { Cell::new(None) };
    /// This thread's virtual clock, kept between runs.
    static CACHED: Cell<Option<&'static TimerStore>> = const { Cell::new(None) };
}

/// The current instant on magpie's clock: [`Instant::now`], or the virtual time of the
/// deterministic runtime when called from inside one (`magpie::sim`).
///
/// Use it instead of [`Instant::now`] in code that should run unchanged in the deterministic
/// runtime: there, `Instant::now` keeps reading the machine's clock while `sleep` and
/// `timeout` follow the virtual one.
///
/// # Examples
/// ```
/// use std::time::Duration;
///
/// let before = magpie_timers::now();
/// futures_lite::future::block_on(magpie_timers::sleep(Duration::from_millis(2)));
/// assert!(magpie_timers::now() >= before + Duration::from_millis(2));
/// ```
#[inline]
pub fn now() -> Instant {
    match entered() {
        None => Instant::now(),
        Some(clock) => clock.now(),
    }
}

/// The store that timers created on this thread register in — the virtual clock's, or the
/// process-wide one — whose [`now`](TimerStore::now) they read from then on.
#[inline]
pub(crate) fn store() -> &'static TimerStore {
    match entered() {
        None => store::global(),
        Some(clock) => clock,
    }
}

/// The entered virtual clock; `None` also while thread-locals are being destroyed.
#[inline]
fn entered() -> Option<&'static TimerStore> {
    ENTERED.try_with(Cell::get).ok().flatten()
}

/// The calling thread runs on a virtual clock while this guard lives: [`now`], `sleep`,
/// `timeout` and `interval` created on it use virtual time, and their timers fire only when
/// the guard's owner advances the time ([`advance_to_next_timer`](Self::advance_to_next_timer),
/// [`advance_to`](Self::advance_to)) — the reactor thread never sees them.
///
/// This is the building block of magpie's deterministic runtime (`magpie::sim`), which is
/// what applications use; the guard is public for runtimes that drive their own schedule.
///
/// # Examples
/// ```
/// use futures_lite::future::{block_on, poll_once};
/// use std::time::Duration;
///
/// let clock = magpie_timers::VirtualClockGuard::enter();
/// let start = clock.now();
/// let mut sleep = magpie_timers::sleep(Duration::from_secs(3600));
/// assert_eq!(block_on(poll_once(&mut sleep)), None); // pending
///
/// // Nothing else to do: jump to the next deadline, an hour later, at once.
/// let next = clock.advance_to_next_timer().unwrap();
/// assert_eq!(next, start + Duration::from_secs(3600));
/// assert_eq!(block_on(poll_once(&mut sleep)), Some(()));
/// assert_eq!(clock.advance_to_next_timer(), None); // no timer left
/// assert_eq!(magpie_timers::now(), next);
/// ```
#[derive(Debug)]
pub struct VirtualClockGuard {
    clock: &'static TimerStore,
    /// Not `Send`: the clock is the calling thread's.
    _thread: std::marker::PhantomData<*const ()>,
}

impl VirtualClockGuard {
    /// Puts the calling thread on its virtual clock, starting at a whole second later than
    /// any earlier run on this thread ended, with no timer pending.
    ///
    /// # Panics
    /// If the thread is already on its virtual clock (deterministic runs do not nest).
    pub fn enter() -> VirtualClockGuard {
        assert!(
            entered().is_none(),
            "this thread already runs on a virtual clock: deterministic runs do not nest"
        );
        let clock = CACHED.with(|cached| match cached.get() {
            Some(clock) => clock,
            None => {
                let clock: &'static TimerStore = Box::leak(Box::new(TimerStore::new_virtual()));
                cached.set(Some(clock));
                clock
            }
        });
        // Start at the next whole second, so that every run's deadlines fall on the same
        // ticks. Timers a previous run leaked (a `Sleep` kept in a static, say) stay pending
        // and may fire in a later run: only a leak can leave one behind.
        let elapsed = Self::elapsed(clock);
        let next_second = (elapsed.load(Ordering::Relaxed) / 1_000_000_000 + 1) * 1_000_000_000;
        elapsed.store(next_second, Ordering::Relaxed);
        ENTERED.with(|entered| entered.set(Some(clock)));
        VirtualClockGuard {
            clock,
            _thread: std::marker::PhantomData,
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    fn elapsed(clock: &TimerStore) -> &crate::loom::AtomicU64 {
        clock
            .virtual_elapsed()
            .expect("a virtual clock's store is on virtual time")
    }

    /// Jumps to the earliest pending deadline and fires every timer due then, in deadline order
    /// (their tasks are woken). Returns the new time, or `None` — time unchanged — when no timer
    /// is pending.
    pub fn advance_to_next_timer(&self) -> Option<Instant> {
        let pending = self.pending_timers();
        loop {
            // The wheel reports the next instant at which it has work: the earliest deadline,
            // or earlier, where a far timer moves down a level. Step through those (no task can
            // run in between, so none observes them) until a timer has fired.
            let now = self.now();
            let next = self.clock.fire_expired(now)?;
            if next <= now {
                // Cannot happen (everything due by `now` has fired); never spin on it.
                return Some(now);
            }
            self.set_time(next);
            self.clock.fire_expired(next);
            if self.pending_timers() < pending {
                return Some(next);
            }
        }
    }

    /// Moves the virtual time forward to `instant` (never back: an earlier instant leaves it
    /// where it is) and fires every timer due by then, in deadline order, waking their tasks.
    pub fn advance_to(&self, instant: Instant) {
        self.set_time(instant);
        self.clock.fire_expired(self.now());
    }

    /// Sets the virtual time to `instant` unless that is earlier than now.
    fn set_time(&self, instant: Instant) {
        let target = instant
            .saturating_duration_since(self.clock.origin())
            .as_nanos();
        let target = u64::try_from(target).unwrap_or(u64::MAX);
        let elapsed = Self::elapsed(self.clock);
        if target > elapsed.load(Ordering::Relaxed) {
            elapsed.store(target, Ordering::Relaxed);
        }
    }

    /// Timers pending on this clock.
    pub fn pending_timers(&self) -> usize {
        self.clock.len()
    }
}

impl Drop for VirtualClockGuard {
    fn drop(&mut self) {
        let _ = ENTERED.try_with(|entered| entered.set(None));
    }
}
