//! Loom models of `magpie_sync::Event` (built on loom's types under `--cfg loom`).
#![cfg(loom)]

use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;
use magpie_loom_tests::model;
use magpie_sync::Event;

/// Two threads wait for the event while the main thread sets it: whether a waiter checks
/// before or after the `set`, or queues while it runs, none is left behind (a waiter left
/// behind would block forever, which loom reports as a deadlock).
#[test]
fn set_racing_wait_leaves_no_waiter_behind() {
    model(|| {
        let event = Arc::new(Event::new());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let event = event.clone();
                thread::spawn(move || block_on(event.wait()))
            })
            .collect();
        event.set();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert!(event.is_set());
    });
}
