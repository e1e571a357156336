//! The fair acquire/release protocol behind [`Lock`](crate::Lock) (one job: who owns the lock).
//!
//! Releasing never sets the lock free while someone waits: ownership is *handed* to the front
//! waiter, so a newcomer (or `try_lock`) cannot barge ahead of it. A waiter dropped after the
//! handoff releases again, which hands the lock to the next waiter.
//!
//! # Fast path
//!
//! Who owns the lock is one atomic word, [`RawLock::state`], with two bits:
//!
//! - [`LOCKED`]: someone owns the lock (a guard, or a waiter it was handed to).
//! - [`HAS_WAITERS`]: the waiter list is non-empty.
//!
//! Only three values occur: `0` (free), `LOCKED`, and `LOCKED | HAS_WAITERS` (waiters are only
//! queued while the lock is held, and a handoff keeps `LOCKED` set). Without waiters, acquiring
//! is one CAS `0 -> LOCKED` and releasing one CAS `LOCKED -> 0`; neither touches the internal
//! mutex nor the waiter list. Both CASes fail while `HAS_WAITERS` is set, which is what keeps
//! the lock FIFO: a fast-path acquire can never barge past a queued waiter, and a release that
//! sees waiters takes the slow path and hands the lock over.
//!
//! **Invariant:** `HAS_WAITERS` is set and cleared only while holding the internal mutex, and
//! whenever that mutex is free, `HAS_WAITERS` is set exactly when the list has a queued waiter.
//! So while `HAS_WAITERS` is set, nothing changes `state` without the mutex (both fast-path
//! CASes fail), and the slow paths below can rely on the word they read under the mutex.
//!
//! **No lost wakeup.** A registering waiter (under the mutex) sets `HAS_WAITERS` with a CAS
//! that expects `LOCKED`; a fast release is a CAS that expects `LOCKED`. Both are read-modify-
//! writes of the same word, so one of them comes first in its modification order:
//! - the release first: the waiter's CAS fails, it sees the lock free and takes it itself
//!   instead of queueing;
//! - the waiter first: the release's CAS fails on `HAS_WAITERS` and the releaser takes the slow
//!   path. Its mutex section must come *after* the waiter's: had it come before, the releaser's
//!   failed CAS (sequenced before its mutex section) would happen-before the waiter's CAS and
//!   could not have read its value. So the releaser finds the waiter queued and hands it the
//!   lock (or, if the waiter was cancelled meanwhile and `HAS_WAITERS` cleared, frees the lock).

use std::task::{Context, Poll};

use crate::loom::{AtomicUsize, Mutex, Ordering};
use crate::waiters::{WaitList, WaiterId, WakeList};

/// Someone owns the lock.
const LOCKED: usize = 0b01;
/// The waiter list has at least one queued (not yet notified) waiter. Implies `LOCKED`.
const HAS_WAITERS: usize = 0b10;

#[derive(Debug)]
pub(crate) struct RawLock {
    /// `LOCKED` / `HAS_WAITERS`; see the module docs for the protocol.
    state: AtomicUsize,
    /// The queued acquirers, in FIFO order. Only touched when `HAS_WAITERS` is (being) set.
    waiters: Mutex<WaitList<()>>,
}

impl RawLock {
    pub(crate) fn new() -> Self {
        RawLock {
            state: AtomicUsize::new(0),
            waiters: Mutex::new(WaitList::new()),
        }
    }

    /// Takes the lock if it is free (it is never free while someone waits).
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        // Acquire on success: synchronizes with the Release that freed the lock (a fast release,
        // or the slow release's store of 0), so the previous owner's writes to the data are
        // visible to us. Fails (never spuriously: strong CAS) if the lock is held or anyone
        // waits, so this never barges past a queued waiter. Relaxed on failure: we learn
        // nothing we act on.
        self.state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// One poll of an acquiring future whose queue entry lives in `waiter`.
    #[inline]
    pub(crate) fn poll_acquire(
        &self,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        if waiter.is_none() && self.try_acquire() {
            return Poll::Ready(());
        }
        self.poll_acquire_slow(waiter, cx)
    }

    #[inline(never)]
    fn poll_acquire_slow(&self, waiter: &mut Option<WaiterId>, cx: &mut Context<'_>) -> Poll<()> {
        let mut waiters = self.waiters.lock();
        let Some(id) = waiter else {
            // First poll and the fast path failed: queue up, unless the lock was freed
            // meanwhile. `HAS_WAITERS` cannot change under us (we hold the mutex), but `0 <->
            // LOCKED` can (fast acquire/release), hence the loop.
            // Relaxed: this load only picks the CAS to try; each CAS re-checks the value.
            let mut current = self.state.load(Ordering::Relaxed);
            loop {
                debug_assert!(
                    current == 0 || current & LOCKED != 0,
                    "waiters imply LOCKED"
                );
                if current & HAS_WAITERS != 0 {
                    // Others already queue (and the invariant holds: the list is non-empty).
                    break;
                }
                let (new, success) = if current == 0 {
                    // Free and nobody queued (invariant), so taking it is fair. Acquire: as in
                    // `try_acquire`, pairs with the Release that freed it.
                    (LOCKED, Ordering::Acquire)
                } else {
                    // Held, nobody queued: announce ourselves so that the owner's fast release
                    // fails and it hands the lock over (the no-lost-wakeup race, module docs).
                    // Relaxed suffices: the handoff itself is published through the mutex, and
                    // the releaser's slow path is ordered after this section by coherence.
                    (LOCKED | HAS_WAITERS, Ordering::Relaxed)
                };
                match self
                    .state
                    .compare_exchange(current, new, success, Ordering::Relaxed)
                {
                    Ok(_) if new == LOCKED => return Poll::Ready(()),
                    Ok(_) => break,
                    // The owner released (or someone took the free lock): look again.
                    Err(actual) => current = actual,
                }
            }
            *waiter = Some(waiters.push_back((), cx.waker()));
            return Poll::Pending;
        };
        if waiters.is_queued(id) {
            waiters.set_waker(id, cx.waker());
            return Poll::Pending;
        }
        // Notified: the releaser handed us the lock (`LOCKED` stayed set). The releaser's writes
        // to the data happened before it unlocked the mutex we now hold, so they are visible.
        let id = waiter.take().expect("matched Some above");
        waiters.remove(id);
        Poll::Ready(())
    }

    /// Called when an acquiring future is dropped before completing. A future that never
    /// queued (`None`) has nothing to undo, and returns without touching the mutex.
    #[inline]
    pub(crate) fn cancel(&self, waiter: Option<WaiterId>) {
        if let Some(id) = waiter {
            self.cancel_queued(id);
        }
    }

    #[cold]
    fn cancel_queued(&self, id: WaiterId) {
        let mut waiters = self.waiters.lock();
        let notified = waiters.remove(id).notified;
        // Mutant for the loom models (issue 7): forget to pass on a lock handed to us.
        #[cfg(magpie_mutant = "lock_cancel_keeps_handoff")]
        let notified = notified && false;
        let wakers = if notified {
            // We own the lock without ever having returned it: pass it on.
            self.release_locked(&mut waiters)
        } else {
            // Still queued: we just left. If we were the last one queued, clear `HAS_WAITERS`
            // (keeps the invariant; the owner's release can take the fast path again).
            // Relaxed: nothing else can change `state` while `HAS_WAITERS` is set and we hold
            // the mutex; an owner whose fast release already failed will find the list empty
            // under the mutex and free the lock there.
            if waiters.is_empty() {
                self.state.fetch_and(!HAS_WAITERS, Ordering::Relaxed);
            }
            WakeList::new()
        };
        drop(waiters);
        wakers.wake_all();
    }

    /// Releases the lock held by the caller.
    #[inline]
    pub(crate) fn release(&self) {
        // Release on success: publishes our writes to the data to the next owner, whose acquire
        // CAS reads this value. Fails if `HAS_WAITERS` is set (then the lock is handed over
        // below, not freed). Relaxed on failure: the slow path re-reads under the mutex.
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.release_slow();
        }
    }

    #[inline(never)]
    fn release_slow(&self) {
        let mut waiters = self.waiters.lock();
        let wakers = self.release_locked(&mut waiters);
        drop(waiters);
        wakers.wake_all();
    }

    /// Hands the lock to the front waiter, or frees it if none is queued. The caller owns the
    /// lock and holds the mutex (`waiters` is its guard).
    fn release_locked(&self, waiters: &mut WaitList<()>) -> WakeList {
        // Under the mutex only we (the owner) change `state`: fast acquires fail while it is
        // `LOCKED`, and the fast release is ours. Relaxed: a plain read of that stable word.
        debug_assert!(self.state.load(Ordering::Relaxed) & LOCKED != 0);
        let mut wakers = WakeList::new();
        match waiters.notify_front() {
            // Handoff: the lock stays locked and now belongs to that waiter, which will see
            // this (and our writes to the data) through the mutex.
            Some(((), waker)) => {
                wakers.push(waker);
                if waiters.is_empty() {
                    // Keep the invariant. Relaxed: no one else writes `state` now (above), and
                    // the new owner reads it only after taking the mutex we hold.
                    self.state.store(LOCKED, Ordering::Relaxed);
                }
            }
            // Nobody queued (the last waiter may have left since our fast release failed;
            // `HAS_WAITERS` is then already clear): free the lock. Release: publishes our writes
            // to the data to the next acquirer's Acquire CAS.
            None => self.state.store(0, Ordering::Release),
        }
        wakers
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Count(StdAtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn state(lock: &RawLock) -> usize {
        lock.state.load(Ordering::SeqCst)
    }

    #[test]
    fn uncontended_lock_uses_only_the_state_word() {
        let lock = RawLock::new();
        assert!(lock.try_acquire());
        assert_eq!(state(&lock), LOCKED);
        assert!(!lock.try_acquire());
        lock.release();
        assert_eq!(state(&lock), 0);
        assert!(lock.waiters.lock().is_empty());
    }

    #[test]
    fn waiters_set_the_flag_and_handoff_keeps_the_lock_locked() {
        let count = Arc::new(Count(StdAtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let lock = RawLock::new();
        assert!(lock.try_acquire());
        let (mut a, mut b) = (None, None);
        assert!(lock.poll_acquire(&mut a, &mut cx).is_pending());
        assert!(lock.poll_acquire(&mut b, &mut cx).is_pending());
        assert_eq!(state(&lock), LOCKED | HAS_WAITERS);
        // Handoff to `a`; `b` still queued, so the flag stays.
        lock.release();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(state(&lock), LOCKED | HAS_WAITERS);
        assert!(!lock.try_acquire(), "no barging past the handoff");
        assert!(lock.poll_acquire(&mut a, &mut cx).is_ready());
        // Handoff to `b`, the last one queued: the flag is cleared, the lock stays held.
        lock.release();
        assert_eq!(state(&lock), LOCKED);
        assert!(lock.poll_acquire(&mut b, &mut cx).is_ready());
        // No waiters left: the fast release frees it.
        lock.release();
        assert_eq!(state(&lock), 0);
    }

    #[test]
    fn last_waiter_leaving_clears_the_flag_and_a_handed_waiter_passes_it_on() {
        let count = Arc::new(Count(StdAtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let lock = RawLock::new();
        assert!(lock.try_acquire());
        let mut a = None;
        assert!(lock.poll_acquire(&mut a, &mut cx).is_pending());
        lock.cancel(a.take());
        assert_eq!(state(&lock), LOCKED);
        lock.release();
        assert_eq!(state(&lock), 0);

        // Handed the lock, then dropped: it is passed to the next waiter.
        assert!(lock.try_acquire());
        let (mut a, mut b) = (None, None);
        assert!(lock.poll_acquire(&mut a, &mut cx).is_pending());
        assert!(lock.poll_acquire(&mut b, &mut cx).is_pending());
        lock.release();
        lock.cancel(a.take());
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert_eq!(state(&lock), LOCKED);
        assert!(lock.poll_acquire(&mut b, &mut cx).is_ready());
        lock.release();
        // Handed the lock with nobody behind: dropping it frees the lock.
        assert!(lock.try_acquire());
        let mut c = None;
        assert!(lock.poll_acquire(&mut c, &mut cx).is_pending());
        lock.release();
        lock.cancel(c.take());
        assert_eq!(state(&lock), 0);
        assert!(lock.try_acquire());
    }
}

/// Loom models of the fast path's races (run with `RUSTFLAGS="--cfg loom" cargo test -p
/// magpie-sync --lib --release raw_lock`).
#[cfg(all(test, loom))]
mod loom_models {
    use crate::Lock;
    use loom::future::block_on;
    use loom::sync::Arc;
    use loom::thread;

    /// A fast release racing a waiter's registration: the waiter is never left asleep, and
    /// no increment is lost.
    #[test]
    fn release_racing_registration_loses_no_wakeup() {
        loom::model(|| {
            let lock = Arc::new(Lock::new(0));
            let guard = lock.try_lock().expect("fresh lock is free");
            let others: Vec<_> = (0..2)
                .map(|_| {
                    let lock = lock.clone();
                    thread::spawn(move || *block_on(lock.lock()) += 1)
                })
                .collect();
            drop(guard);
            for other in others {
                other.join().unwrap();
            }
            assert_eq!(*lock.try_lock().expect("everyone released"), 2);
        });
    }

    /// A waiter dropped after the lock may have been handed to it passes the lock on.
    #[test]
    fn cancelled_waiter_passes_a_handoff_on() {
        loom::model(|| {
            let lock = Arc::new(Lock::new(0));
            let guard = lock.try_lock().expect("fresh lock is free");
            let other = {
                let lock = lock.clone();
                thread::spawn(move || *block_on(lock.lock()) += 1)
            };
            let mut dropped = lock.lock();
            // One poll: queued behind (or ahead of) `other`.
            let polled = block_on(futures_lite::future::poll_once(&mut dropped));
            assert!(polled.is_none(), "the lock is held");
            drop(guard);
            drop(dropped);
            other.join().unwrap();
            assert_eq!(*lock.try_lock().expect("everyone released"), 1);
        });
    }
}
