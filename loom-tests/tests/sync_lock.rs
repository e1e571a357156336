//! Loom models of `magpie_sync::Lock` (built on loom's types under `--cfg loom`).
#![cfg(loom)]

use futures_lite::future::poll_once;
use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;
use magpie_loom_tests::model;
use magpie_sync::Lock;

/// Two threads increment the protected value with a plain read-then-write under the lock: the
/// lock's data lives in a loom `UnsafeCell`, so two guards at once would be reported as a data
/// race; both increments land.
#[test]
fn lock_is_mutually_exclusive() {
    model(|| {
        let lock = Arc::new(Lock::new(0u32));
        let other = {
            let lock = lock.clone();
            thread::spawn(move || {
                let mut guard = block_on(lock.lock());
                let seen = *guard;
                *guard = seen + 1;
            })
        };
        {
            let mut guard = block_on(lock.lock());
            let seen = *guard;
            *guard = seen + 1;
        }
        other.join().unwrap();
        assert_eq!(*block_on(lock.lock()), 2);
    });
}

/// The main thread holds the lock; one thread queues for it once and then gives up (drops its
/// pending future), another waits for it. The release may hand the lock to the waiter that is
/// about to give up: dropping that future must pass the lock on, or the second waiter would
/// wait forever (a deadlock, which loom reports).
#[test]
fn cancelled_waiter_passes_the_lock_on() {
    model(|| {
        let lock = Arc::new(Lock::new(0u32));
        let guard = lock.try_lock().expect("nobody else has the lock yet");
        let quitter = {
            let lock = lock.clone();
            thread::spawn(move || {
                let mut attempt = Box::pin(lock.lock());
                if let Some(mut guard) = block_on(poll_once(&mut attempt)) {
                    *guard += 1;
                }
                // Dropped pending (or after its guard): cancelled.
            })
        };
        let waiter = {
            let lock = lock.clone();
            thread::spawn(move || {
                *block_on(lock.lock()) += 10;
            })
        };
        drop(guard);
        quitter.join().unwrap();
        waiter.join().unwrap();
        let value = lock.try_lock().map(|guard| *guard);
        assert!(
            matches!(value, Some(10) | Some(11)),
            "lock state: {value:?}"
        );
    });
}
