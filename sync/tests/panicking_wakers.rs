//! A `Waker` whose `wake` panics, woken by a `Lock`, `Semaphore`, `Queue`, `Event` or oneshot:
//! the panic stops in the primitive (it is caught and reported once on stderr), every other
//! waiter is still woken, no permit, lock or item is lost — neither the one handed to the broken
//! waiter nor the one the caller was handing over or taking — and the primitive keeps working
//! (docs/reliability.md, "Injected faults").

mod common;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};

use common::{poll_with, WakeCounter};
use magpie_sync::{Event, Lock, Queue, Semaphore};

/// A waker whose `wake` panics, as a buggy executor's might.
struct Broken;

impl Wake for Broken {
    fn wake(self: Arc<Self>) {
        panic!("this waker is broken");
    }
}

fn broken() -> Waker {
    Waker::from(Arc::new(Broken))
}

/// Runs `release`, which wakes a broken waker, and checks the panic did not reach it.
fn survives_the_broken_waker<R>(release: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(release)).expect("the broken waker's panic reached the caller")
}

/// Two waiters made by `wait`, polled once in line: the first with a broken waker, the second
/// with a counting one. Both must still be pending.
fn broken_then_healthy<F: Future + Unpin>(mut wait: impl FnMut() -> F) -> (F, F, Arc<WakeCounter>) {
    let mut first = wait();
    assert!(poll_with(&mut first, &broken()).is_pending());
    let healthy = WakeCounter::new();
    let mut second = wait();
    assert!(poll_with(&mut second, &healthy.waker()).is_pending());
    (first, second, healthy)
}

#[test]
fn lock_handed_to_a_broken_waiter_is_not_lost() {
    let lock = Lock::new(0u32);
    let guard = futures_lite::future::block_on(lock.lock());
    let (mut first, mut second, healthy) = broken_then_healthy(|| Box::pin(lock.lock()));

    // The release hands the lock to the first waiter; waking it panics, caught.
    survives_the_broken_waker(|| drop(guard));
    // The first waiter still owns the handoff: polled again, it has the lock...
    let Poll::Ready(mut held) = poll_with(&mut first, &broken()) else {
        panic!("the handed-off lock was lost");
    };
    *held += 1;
    // ...and passing it on wakes the second.
    drop(held);
    assert_eq!(healthy.count(), 1);
    let Poll::Ready(held) = poll_with(&mut second, &healthy.waker()) else {
        panic!("the lock was not passed on");
    };
    assert_eq!(*held, 1);
    drop(held);
    assert!(lock.try_lock().is_some(), "the lock keeps working");
}

#[test]
fn lock_handed_to_a_broken_waiter_that_goes_away_passes_on() {
    let lock = Lock::new(());
    let guard = lock.try_lock().expect("free");
    let (first, mut second, healthy) = broken_then_healthy(|| Box::pin(lock.lock()));

    survives_the_broken_waker(|| drop(guard));
    // Its task never polls again (the waker that would have told it is broken): dropping the
    // future gives the lock to the next waiter.
    drop(first);
    assert_eq!(healthy.count(), 1);
    assert!(poll_with(&mut second, &healthy.waker()).is_ready());
}

#[test]
fn semaphore_permit_handed_to_a_broken_waiter_is_not_lost() {
    let semaphore = Semaphore::new(1);
    let permit = semaphore.try_acquire().unwrap();
    let (first, mut second, healthy) = broken_then_healthy(|| Box::pin(semaphore.acquire()));

    survives_the_broken_waker(|| drop(permit));
    drop(first);
    assert_eq!(healthy.count(), 1);
    let Poll::Ready(permit) = poll_with(&mut second, &healthy.waker()) else {
        panic!("the permit was lost");
    };
    drop(permit);
    assert_eq!(semaphore.available_permits(), 1, "every permit is back");
}

#[test]
fn queue_item_handed_to_a_broken_getter_is_not_lost() {
    let queue = Queue::bounded(4);
    let (first, mut second, healthy) = broken_then_healthy(|| Box::pin(queue.get()));

    // The item goes straight to the first getter; waking it panics, caught.
    survives_the_broken_waker(|| queue.try_put(7u32).unwrap());
    drop(first);
    let Poll::Ready(item) = poll_with(&mut second, &healthy.waker()) else {
        panic!("the item was lost");
    };
    assert_eq!(item.unwrap(), 7);
    queue.try_put(8).unwrap();
    assert_eq!(queue.try_get().unwrap(), 8, "the queue keeps working");
}

#[test]
fn a_broadcast_still_wakes_every_other_waiter() {
    let event = Event::new();
    let mut first = Box::pin(event.wait());
    assert!(poll_with(&mut first, &broken()).is_pending());
    let healthy: Vec<_> = (0..3).map(|_| WakeCounter::new()).collect();
    let mut others: Vec<_> = healthy
        .iter()
        .map(|counter| {
            let mut wait = Box::pin(event.wait());
            assert!(poll_with(&mut wait, &counter.waker()).is_pending());
            wait
        })
        .collect();

    survives_the_broken_waker(|| event.set());
    for (counter, wait) in healthy.iter().zip(&mut others) {
        assert_eq!(
            counter.count(),
            1,
            "a waiter behind the broken one was not woken"
        );
        assert!(poll_with(wait, &counter.waker()).is_ready());
    }
    assert!(poll_with(&mut first, &broken()).is_ready());
}

#[test]
fn taking_an_item_keeps_it_when_waking_a_broken_putter_panics() {
    let queue = Queue::bounded(1);
    queue.try_put(1u32).unwrap();
    // A putter waits for room; its waker is broken.
    let mut putter = Box::pin(queue.put(2));
    assert!(poll_with(&mut putter, &broken()).is_pending());
    // Taking the item makes room and wakes the putter: the panic must not drop the item taken.
    let taken = survives_the_broken_waker(|| queue.try_get());
    assert_eq!(taken.unwrap(), 1);
    // The putter still puts its item when polled again.
    assert!(poll_with(&mut putter, &broken()).is_ready());
    assert_eq!(queue.try_get().unwrap(), 2);
}

#[test]
fn a_value_sent_to_a_broken_receiver_waker_is_still_received() {
    let (tx, mut rx) = magpie_sync::oneshot();
    assert!(poll_with(&mut rx, &broken()).is_pending());
    // The send wakes the broken waker; the panic stops there and the send succeeds.
    assert_eq!(survives_the_broken_waker(|| tx.send(7)), Ok(()));
    assert_eq!(poll_with(&mut rx, &broken()), Poll::Ready(Ok(7)));
}

#[test]
fn a_receiver_dropped_while_closed_waits_on_a_broken_waker_still_closes() {
    let (mut tx, rx) = magpie_sync::oneshot::<u8>();
    assert!(poll_with(&mut tx.closed(), &broken()).is_pending());
    survives_the_broken_waker(|| drop(rx));
    assert!(tx.is_closed());
    assert_eq!(tx.send(1), Err(1));
}

/// A waker whose `clone` panics (a buggy executor's).
fn clone_panics() -> Waker {
    const VTABLE: std::task::RawWakerVTable = std::task::RawWakerVTable::new(
        |_| panic!("a waker whose clone panics (planted by the test)"),
        |_| {},
        |_| {},
        |_| {},
    );
    // SAFETY: no function of the vtable reads the (null) data pointer or frees anything.
    unsafe { Waker::from_raw(std::task::RawWaker::new(std::ptr::null(), &VTABLE)) }
}

/// A lock waiter that missed its turn three times (a barging `try_lock` took the lock each
/// time) and is polled the fourth time — when it goes back to the front as starving — with a
/// waker whose `clone` panics: the panic leaves the lock as it was, and every waiter still gets
/// it (regression: the state word already asked for a handoff when the relink panicked, and
/// the lock was gone for good).
#[test]
fn a_panicking_waker_clone_at_a_starving_waiters_relink_loses_no_lock() {
    let lock = Lock::new(0u32);
    let waker = WakeCounter::new().waker();
    let mut guard = lock.try_lock();
    let mut first = Box::pin(lock.lock());
    assert!(poll_with(&mut first, &waker).is_pending());
    let mut second = Box::pin(lock.lock());
    assert!(poll_with(&mut second, &waker).is_pending());
    for _ in 0..3 {
        drop(guard.take()); // wakes `first`...
        guard = lock.try_lock(); // ...but a newcomer takes the lock first
        assert!(guard.is_some());
        assert!(poll_with(&mut first, &waker).is_pending(), "a miss");
    }
    drop(guard.take());
    guard = lock.try_lock();
    assert!(guard.is_some());
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        let _ = poll_with(&mut first, &clone_panics());
    }));
    assert!(unwound.is_err(), "the clone panicked");
    drop(guard.take());
    let Poll::Ready(held) = poll_with(&mut first, &waker) else {
        panic!("the first waiter never gets the lock");
    };
    drop(held);
    let Poll::Ready(held) = poll_with(&mut second, &waker) else {
        panic!("the second waiter never gets the lock");
    };
    drop(held);
    assert!(lock.try_lock().is_some(), "the lock is free at the end");
}
