//! Every borrowed future of the crate panics when polled again after it returned `Ready`,
//! rather than start over — a second guard or permit its caller does not expect, a phantom
//! arrival at a barrier that would release the next generation one party short — as the owned
//! futures and `Queue`'s `Get` do; and the panic changes nothing.

mod common;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Poll;

use common::{poll_with, WakeCounter};
use magpie_sync::{Barrier, Event, Lock, RwLock, Semaphore};

/// Polls `future` (already `Ready` once) again: it must panic.
fn assert_polling_again_panics<F: Future + Unpin>(future: &mut F) {
    let waker = WakeCounter::new().waker();
    let again = catch_unwind(AssertUnwindSafe(|| {
        let _ = poll_with(future, &waker);
    }));
    assert!(again.is_err(), "polled again after Ready: no panic");
}

#[test]
fn a_lock_future_polled_after_ready_panics_and_takes_nothing() {
    let lock = Lock::new(0);
    let waker = WakeCounter::new().waker();
    let mut locking = lock.lock();
    let Poll::Ready(guard) = poll_with(&mut locking, &waker) else {
        panic!("the lock is free");
    };
    drop(guard);
    assert_polling_again_panics(&mut locking);
    drop(locking);
    assert!(lock.try_lock().is_some(), "the lock is free");
}

#[test]
fn an_acquire_polled_after_ready_panics_and_takes_nothing() {
    let semaphore = Semaphore::new(1);
    let waker = WakeCounter::new().waker();
    let mut acquire = semaphore.acquire();
    let Poll::Ready(Ok(permit)) = poll_with(&mut acquire, &waker) else {
        panic!("a permit is free");
    };
    assert_polling_again_panics(&mut acquire);
    drop(permit);
    drop(acquire);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn rwlock_futures_polled_after_ready_panic_and_take_nothing() {
    let lock = RwLock::new(0);
    let waker = WakeCounter::new().waker();
    let mut read = lock.read();
    let Poll::Ready(reading) = poll_with(&mut read, &waker) else {
        panic!("the lock is free");
    };
    assert_polling_again_panics(&mut read);
    drop(reading);
    drop(read);
    let mut write = lock.write();
    let Poll::Ready(writing) = poll_with(&mut write, &waker) else {
        panic!("the lock is free");
    };
    drop(writing);
    assert_polling_again_panics(&mut write);
    drop(write);
    assert!(
        lock.try_write().is_some(),
        "no reader or writer left behind"
    );
}

#[test]
fn an_event_wait_polled_after_ready_panics() {
    let event = Event::new();
    event.set();
    let waker = WakeCounter::new().waker();
    let mut wait = event.wait();
    assert!(poll_with(&mut wait, &waker).is_ready());
    assert_polling_again_panics(&mut wait);
}

#[test]
fn a_barrier_wait_polled_after_ready_panics_and_adds_no_arrival() {
    let barrier = Barrier::new(2);
    let waker = WakeCounter::new().waker();
    let mut first = barrier.wait();
    assert!(poll_with(&mut first, &waker).is_pending());
    let mut second = barrier.wait();
    assert!(poll_with(&mut second, &waker).is_ready(), "the last party");
    assert!(poll_with(&mut first, &waker).is_ready());
    assert_polling_again_panics(&mut second);
    assert_polling_again_panics(&mut first);
    // The next generation still needs two real parties.
    let mut third = barrier.wait();
    assert!(
        poll_with(&mut third, &waker).is_pending(),
        "a phantom arrival released the next generation"
    );
}
