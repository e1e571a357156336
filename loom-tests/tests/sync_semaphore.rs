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
