//! The acquire/release protocol behind [`Lock`](crate::Lock) (one job: who owns the lock).
//!
//! A lock is a semaphore with one permit: [`RawSemaphore`]'s protocol (see its module docs)
//! gives the lock its fast path (one CAS to lock, one to unlock, neither touching the internal
//! mutex while nobody sleeps or while a woken waiter is already on its way), its bounded
//! barging (an unlocked lock is free for anyone; the front waiter is woken to retry and, after
//! a few misses, is handed the lock directly), and its cancellation (a dropped waiter that was
//! woken or handed the lock passes it on).

use std::task::{Context, Poll};

use crate::raw_semaphore::{RawSemaphore, TakeError};
use crate::waiters::WaiterId;

#[derive(Debug)]
pub(crate) struct RawLock {
    /// One permit: held means locked.
    permit: RawSemaphore,
}

impl RawLock {
    pub(crate) fn new() -> Self {
        RawLock {
            permit: RawSemaphore::new(1),
        }
    }

    /// Takes the lock if it is free (and no starving waiter is owed it).
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        match self.permit.try_acquire_one_of_one() {
            Ok(()) => true,
            Err(TakeError::NoPermits) => false,
            Err(TakeError::Closed) => unreachable!("a lock's semaphore is never closed"),
        }
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
        self.permit
            .poll_acquire_slow(1, waiter, cx)
            .map(|result| result.expect("a lock's semaphore is never closed"))
    }

    /// Called when an acquiring future is dropped before completing. A future that never
    /// queued (`None`) has nothing to undo, and returns without touching the mutex.
    #[inline]
    pub(crate) fn cancel(&self, waiter: Option<WaiterId>) {
        self.permit.cancel(waiter);
    }

    /// Releases the lock held by the caller.
    #[inline]
    pub(crate) fn release(&self) {
        self.permit.release_one_of_one();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        (count, waker)
    }

    #[test]
    fn uncontended_lock_and_unlock_leave_no_waiter() {
        let lock = RawLock::new();
        assert!(lock.try_acquire());
        assert!(!lock.try_acquire());
        lock.release();
        assert_eq!(lock.permit.available_permits(), 1);
        assert_eq!(lock.permit.queued(), 0);
        assert!(lock.try_acquire());
    }

    #[test]
    fn unlock_wakes_the_front_waiter_once_and_a_releaser_may_relock() {
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let lock = RawLock::new();
        assert!(lock.try_acquire());
        let (mut a, mut b) = (None, None);
        assert!(lock.poll_acquire(&mut a, &mut cx).is_pending());
        assert!(lock.poll_acquire(&mut b, &mut cx).is_pending());
        // Unlocking wakes `a` (only `a`) to retry; the lock is free meanwhile.
        lock.release();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(lock.try_acquire(), "a free lock may be taken by a newcomer");
        // While `a` is on its way, unlocking again wakes nobody else.
        lock.release();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(lock.poll_acquire(&mut a, &mut cx).is_ready());
        // `a` held it while `b` slept: unlocking now wakes `b`.
        lock.release();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert!(lock.poll_acquire(&mut b, &mut cx).is_ready());
        lock.release();
        assert!(lock.try_acquire());
    }

    #[test]
    fn a_waiter_overtaken_too_often_is_handed_the_lock() {
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let lock = RawLock::new();
        assert!(lock.try_acquire());
        let mut a = None;
        assert!(lock.poll_acquire(&mut a, &mut cx).is_pending());
        // Each round: unlock (waking `a`), a newcomer takes the lock first, `a` misses.
        let mut misses = 0;
        loop {
            lock.release();
            if !lock.try_acquire() {
                // No barging any more: the lock was handed to `a`.
                break;
            }
            assert!(lock.poll_acquire(&mut a, &mut cx).is_pending());
            misses += 1;
            assert!(misses <= 10, "the waiter must not be overtaken forever");
        }
        assert_eq!(misses, 4, "MAX_MISSES misses, then a handoff");
        assert!(lock.poll_acquire(&mut a, &mut cx).is_ready());
        assert!(count.0.load(Ordering::SeqCst) >= 1);
        lock.release();
        assert!(lock.try_acquire(), "barging is allowed again");
    }

    #[test]
    fn a_dropped_woken_waiter_passes_the_lock_on() {
        let (count, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let lock = RawLock::new();
        assert!(lock.try_acquire());
        let (mut a, mut b) = (None, None);
        assert!(lock.poll_acquire(&mut a, &mut cx).is_pending());
        assert!(lock.poll_acquire(&mut b, &mut cx).is_pending());
        lock.release();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        lock.cancel(a.take());
        assert_eq!(count.0.load(Ordering::SeqCst), 2, "`b` is woken instead");
        assert!(lock.poll_acquire(&mut b, &mut cx).is_ready());
        lock.release();
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
