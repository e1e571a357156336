//! Loom models of `magpie_sync::Semaphore` (built on loom's types under `--cfg loom`).
#![cfg(loom)]

use futures_lite::future::poll_once;
use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;
use magpie_loom_tests::model;
use magpie_sync::Semaphore;

/// One permit, held by the main thread; one thread queues for it once and gives up (drops its
/// pending `acquire`), another waits for it. Permits handed to the waiter that gives up go to
/// the next one, and when everyone is done the permit is back: permits are conserved.
#[test]
fn permits_conserved_under_cancellation() {
    model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let held = semaphore.try_acquire().expect("the permit is free");
        let quitter = {
            let semaphore = semaphore.clone();
            thread::spawn(move || {
                let mut attempt = Box::pin(semaphore.acquire());
                if let Some(permit) = block_on(poll_once(&mut attempt)) {
                    drop(permit.expect("the semaphore is never closed"));
                }
            })
        };
        let waiter = {
            let semaphore = semaphore.clone();
            thread::spawn(move || {
                let permit = block_on(semaphore.acquire()).expect("never closed");
                assert_eq!(permit.num_permits(), 1);
            })
        };
        drop(held);
        quitter.join().unwrap();
        waiter.join().unwrap();
        assert_eq!(semaphore.available_permits(), 1);
    });
}

/// One permit, held by the main thread; a waiter polls for it up to 3 times and then gives up,
/// while the main thread releases it and keeps taking it back with `try_acquire`. In the
/// schedules where the waiter misses twice (the loom bound) it starves, is handed the permit
/// directly, and is dropped before it picks the permit up: the permit must come back
/// (the `Granted` branch of the cancellation path).
#[test]
fn starved_waiter_dropped_after_the_handoff_returns_the_permit() {
    model(|| {
        let semaphore = Arc::new(Semaphore::new(1));
        let held = semaphore.try_acquire().expect("the permit is free");
        let quitter = {
            let semaphore = semaphore.clone();
            thread::spawn(move || {
                let mut attempt = Box::pin(semaphore.acquire());
                for _ in 0..3 {
                    if let Some(permit) = block_on(poll_once(&mut attempt)) {
                        drop(permit.expect("the semaphore is never closed"));
                        return;
                    }
                    thread::yield_now();
                }
                // Dropped pending: possibly after it was handed the permit.
            })
        };
        drop(held);
        for _ in 0..2 {
            if let Ok(permit) = semaphore.try_acquire() {
                thread::yield_now();
                drop(permit);
            }
        }
        quitter.join().unwrap();
        assert_eq!(semaphore.available_permits(), 1);
    });
}
