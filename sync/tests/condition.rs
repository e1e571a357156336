//! `Condition`: wait/notify semantics, FIFO order, no lost notification, cancellation.

mod common;

use std::sync::Arc;
use std::task::Poll;

use common::{poll_once, poll_with, tokio_rt, WakeCounter};
use futures_lite::future::block_on;
use magpie_sync::{Condition, Lock};

#[test]
fn wait_releases_the_lock_and_reacquires_it() {
    let cond = Condition::new(0);
    let guard = cond.try_lock().unwrap();
    let mut waiting = cond.wait(guard);
    assert!(poll_once(&mut waiting).is_pending());
    // The lock was released while waiting.
    let mut guard = cond.try_lock().expect("wait released the lock");
    *guard = 5;
    cond.notify_one();
    // Notified, but the lock is still held: the waiter must wait for it.
    assert!(poll_once(&mut waiting).is_pending());
    drop(guard);
    let Poll::Ready(guard) = poll_once(&mut waiting) else {
        panic!("notified and the lock is free");
    };
    assert_eq!(*guard, 5);
}

#[test]
fn notify_one_wakes_waiters_in_arrival_order() {
    let cond = Condition::new(());
    let mut futures = Vec::new();
    for _ in 0..3 {
        let mut wait = cond.wait(cond.try_lock().unwrap());
        assert!(poll_once(&mut wait).is_pending());
        futures.push(wait);
    }
    for expected in 0..3 {
        cond.notify_one();
        let mut ready = Vec::new();
        for (i, future) in futures.iter_mut().enumerate() {
            if i >= expected {
                if let Poll::Ready(guard) = poll_once(future) {
                    ready.push(i);
                    drop(guard);
                }
            }
        }
        assert_eq!(ready, vec![expected]);
    }
}

#[test]
fn notify_n_and_notify_all_wake_that_many() {
    let cond = Condition::new(());
    let wakes = WakeCounter::new();
    let mut futures: Vec<_> = (0..5)
        .map(|_| {
            let mut wait = cond.wait(cond.try_lock().unwrap());
            assert!(poll_with(&mut wait, &wakes.waker()).is_pending());
            wait
        })
        .collect();
    cond.notify(2);
    assert_eq!(wakes.count(), 2);
    cond.notify_all();
    assert_eq!(wakes.count(), 5);
    for future in &mut futures {
        let Poll::Ready(guard) = poll_once(future) else {
            panic!("all were notified");
        };
        drop(guard);
    }
}

#[test]
fn notify_without_waiters_is_not_stored() {
    let cond = Condition::new(());
    cond.notify_all();
    let mut wait = cond.wait(cond.try_lock().unwrap());
    assert!(poll_once(&mut wait).is_pending());
}

#[test]
fn waiter_dropped_after_notification_passes_it_on() {
    let cond = Condition::new(());
    let mut first = cond.wait(cond.try_lock().unwrap());
    assert!(poll_once(&mut first).is_pending());
    let wakes = WakeCounter::new();
    let mut second = cond.wait(cond.try_lock().unwrap());
    assert!(poll_with(&mut second, &wakes.waker()).is_pending());
    cond.notify_one(); // to `first`
    assert_eq!(wakes.count(), 0);
    drop(first);
    assert_eq!(wakes.count(), 1, "the notification went to the next waiter");
    assert!(poll_once(&mut second).is_ready());
}

#[test]
fn waiter_dropped_while_relocking_passes_the_notification_on() {
    let cond = Condition::new(());
    let mut first = cond.wait(cond.try_lock().unwrap());
    assert!(poll_once(&mut first).is_pending());
    let mut second = cond.wait(cond.try_lock().unwrap());
    assert!(poll_once(&mut second).is_pending());
    let held = cond.try_lock().unwrap();
    cond.notify_one();
    // `first` saw its notification and now queues for the lock.
    assert!(poll_once(&mut first).is_pending());
    drop(first);
    drop(held);
    assert!(poll_once(&mut second).is_ready());
}

#[test]
fn a_waiter_dropped_before_notification_takes_none() {
    let cond = Condition::new(());
    let mut gone = cond.wait(cond.try_lock().unwrap());
    assert!(poll_once(&mut gone).is_pending());
    drop(gone);
    let mut kept = cond.wait(cond.try_lock().unwrap());
    assert!(poll_once(&mut kept).is_pending());
    cond.notify_one();
    assert!(poll_once(&mut kept).is_ready());
}

#[test]
#[should_panic(expected = "different lock")]
fn wait_with_a_foreign_guard_panics() {
    let cond = Condition::new(0);
    let other = Lock::new(0);
    drop(cond.wait(other.try_lock().unwrap()));
}

/// A producer sets the flag and notifies right after the waiter releases the lock: the waiter
/// registered before releasing, so it cannot miss the notification.
#[test]
fn wait_while_sees_the_update_across_threads() {
    let cond = Arc::new(Condition::new(0u32));
    tokio_rt(2).block_on(async {
        let waiter = {
            let cond = cond.clone();
            tokio::spawn(async move {
                let guard = cond.wait_while(cond.lock().await, |n| *n < 100).await;
                *guard
            })
        };
        for _ in 0..100 {
            *cond.lock().await += 1;
            cond.notify_all();
            tokio::task::yield_now().await;
        }
        assert_eq!(waiter.await.unwrap(), 100);
    });
}

#[test]
fn wait_while_returns_at_once_when_the_predicate_is_false() {
    let cond = Condition::new(true);
    let guard = block_on(cond.wait_while(cond.try_lock().unwrap(), |flag| !*flag));
    assert!(*guard);
}
