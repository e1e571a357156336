//! magpie's clock: the real one, or — on a thread that runs magpie's deterministic runtime —
//! a virtual one that stands still while tasks run and jumps to the next deadline when none
//! can.
//!
//! Every timer picks its store through [`store`] when it is created, so the same `sleep`,
//! `timeout` and `interval` run on either clock. On the real path the cost is one
//! thread-local read per timer created (the thread-local holds `None`) and one per registration
//! (`check_polled_on_its_clock`); a timer reads the time through its store, with none.
//!
//! A virtual clock is a timer store on virtual time (`TimerStore::now` reads it), leaked as
//! the process store is, because a `Sleep` holds a `&'static` store. A run takes one from a
//! process-wide pool of idle clocks (or makes one) and gives it back when it ends, unless a
//! timer of its is still registered (a `Sleep` kept in a static, say): so the clocks made are
//! as many as the most runs at once, however many threads come and go (each thread used to
//! keep one of its own, for good). Each run resets its clock — new wheels, time one second
//! past its origin — so that a seed gives the same schedule whatever ran on it before. Virtual time moves in the wheels' 100 µs ticks: a deadline between
//! two ticks is reached at the next one (a `sleep(150 µs)` ends 200 µs later).

use std::cell::Cell;
use std::time::Instant;

use magpie_reactor::timer_hook::TimerDriver;

use crate::loom::Ordering;
use crate::store::{self, TimerStore, TICKS_PER_SEC};

thread_local! {
    /// The virtual clock's store this thread runs on, while a [`VirtualClockGuard`] lives.
    static ENTERED: Cell<Option<&'static TimerStore>> = const { Cell::new(None) };
}

/// Virtual clocks no run uses now, each with no timer registered (see the module docs). std's
/// mutex, not the loom shim's: a pool of leaked stores, part of no protocol a model checks.
static IDLE_CLOCKS: std::sync::Mutex<Vec<&'static TimerStore>> = std::sync::Mutex::new(Vec::new());

fn idle_clocks() -> std::sync::MutexGuard<'static, Vec<&'static TimerStore>> {
    IDLE_CLOCKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// Refuses to register a timer on a clock other than the calling thread's: a timer made inside
/// a simulation and polled outside it (or in a later run) would never fire, and a real timer
/// polled inside one would make its schedule depend on the machine's clock.
///
/// # Panics
/// In those two cases, with a message that says which.
#[inline]
pub(crate) fn check_polled_on_its_clock(store: &TimerStore) {
    let current = entered();
    let on_its_clock = match current {
        None => store.virtual_ticks().is_none(),
        Some(current) => std::ptr::eq(store, current),
    };
    if !on_its_clock {
        clock_mismatch(current.is_some());
    }
}

/// The cold half of `check_polled_on_its_clock`: a timer polled off its clock.
#[cold]
#[inline(never)]
fn clock_mismatch(inside_a_simulation: bool) -> ! {
    if inside_a_simulation {
        panic!(
            "a timer created outside magpie's deterministic runtime (magpie::sim) was polled \
             inside it (or it was made in an earlier run): create it inside the simulation, \
             whose virtual clock it must follow"
        )
    } else {
        panic!(
            "a timer created inside magpie's deterministic runtime (magpie::sim) was polled \
             outside it: it can only fire on the virtual clock it was made on"
        )
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
    /// Puts the calling thread on its virtual clock, reset to the same start for every run —
    /// one second past the clock's origin, no timer pending, its wheels new — so that a seed
    /// replays the same schedule whatever ran on this thread before.
    ///
    /// # Panics
    /// If the thread is already on its virtual clock (deterministic runs do not nest).
    pub fn enter() -> VirtualClockGuard {
        assert!(
            entered().is_none(),
            "this thread already runs on a virtual clock: deterministic runs do not nest"
        );
        let pooled = idle_clocks().pop();
        // A pooled clock had no timer when it was given back, and none since: nothing can
        // register on a clock no run has entered.
        let clock = match pooled {
            Some(clock) if clock.reset_if_empty() => clock,
            _ => Box::leak(Box::new(TimerStore::new_virtual())),
        };
        Self::ticks(clock).store(TICKS_PER_SEC, Ordering::Relaxed);
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

    fn ticks(clock: &TimerStore) -> &crate::loom::AtomicU64 {
        clock
            .virtual_ticks()
            .expect("a virtual clock's store is on virtual time")
    }

    /// Jumps to the earliest pending deadline and fires every timer due then, in deadline order
    /// (their tasks are woken). Returns the new time, or `None` — time unchanged — when no timer
    /// is pending.
    pub fn advance_to_next_timer(&self) -> Option<Instant> {
        let pending = self.pending_timers();
        // Timers already due fire first, at the time now; if any did, time stays here.
        let first = self.clock.fire_expired(self.now());
        if self.pending_timers() < pending {
            return Some(self.now());
        }
        // The wheel reports the next instant at which it has work: the earliest deadline, or
        // earlier, where a far timer moves down a level. Step through those (no task can run in
        // between, so none observes them) until a timer has fired.
        let mut next = first?;
        loop {
            let tick = self.clock.tick_at_or_after(next);
            assert!(
                self.move_to(tick),
                "magpie's virtual clock: the timer store reported work at or before now \
                 (a bug in magpie)"
            );
            let after = self.clock.fire_expired(self.now());
            if self.pending_timers() < pending {
                return Some(self.now());
            }
            next = after.expect("a timer is pending: it did not fire");
        }
    }

    /// Moves the virtual time forward to `instant`, rounded up to the clock's 100 µs tick
    /// (never back: an earlier instant leaves it where it is), and fires every timer due by
    /// then, in deadline order, waking their tasks.
    pub fn advance_to(&self, instant: Instant) {
        self.move_to(self.clock.tick_at_or_after(instant));
        self.clock.fire_expired(self.now());
    }

    /// Sets the time to `tick` if that is later than now; `false` (time unchanged) otherwise.
    fn move_to(&self, tick: u64) -> bool {
        let ticks = Self::ticks(self.clock);
        let later = tick > ticks.load(Ordering::Relaxed);
        if later {
            ticks.store(tick, Ordering::Relaxed);
        }
        later
    }

    /// Timers pending on this clock.
    pub fn pending_timers(&self) -> usize {
        self.clock.len()
    }
}

impl Drop for VirtualClockGuard {
    fn drop(&mut self) {
        let _ = ENTERED.try_with(|entered| entered.set(None));
        // Back to the pool, unless a timer of this run is still registered (it would fire on
        // the next run's clock): that clock stays with the timer, leaked.
        if self.clock.reset_if_empty() {
            idle_clocks().push(self.clock);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Threads that each run a simulation once, one after the other, share the idle clocks:
    /// the stores made stay as few as the runs at once (a few more here, where the other
    /// tests of this binary may hold one meanwhile), not one per thread (regression: each
    /// thread kept its own for good, 3 KB and its wheels' slab).
    #[test]
    fn threads_that_come_and_go_reuse_the_idle_clocks() {
        let mut stores = std::collections::HashSet::new();
        for _ in 0..50 {
            let store = std::thread::spawn(|| {
                let guard = VirtualClockGuard::enter();
                guard.clock as *const TimerStore as usize
            })
            .join()
            .unwrap();
            stores.insert(store);
        }
        assert!(stores.len() <= 10, "{} stores for 50 runs", stores.len());
    }
}
