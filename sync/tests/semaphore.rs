//! `Semaphore`: permits, FIFO order with bounded barging, close, cancellation, stress.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use common::{poll_once, poll_with, WakeCounter};
use futures_lite::future::block_on;
use magpie_sync::{AcquireError, Semaphore, TryAcquireError};

#[test]
fn permits_are_taken_and_returned() {
    let sem = Semaphore::new(2);
    let a = sem.try_acquire().unwrap();
    let b = block_on(sem.acquire()).unwrap();
    assert_eq!(sem.available_permits(), 0);
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    drop(a);
    drop(b);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn acquire_many_takes_all_at_once_and_forget_keeps_them() {
    let sem = Semaphore::new(5);
    let permit = block_on(sem.acquire_many(4)).unwrap();
    assert_eq!(permit.num_permits(), 4);
    assert!(sem.try_acquire_many(2).is_err());
    permit.forget();
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn add_permits_wakes_waiters() {
    let sem = Semaphore::new(0);
    let wakes = WakeCounter::new();
    let mut waiting = sem.acquire_many(2);
    assert!(poll_with(&mut waiting, &wakes.waker()).is_pending());
    sem.add_permits(1);
    assert_eq!(wakes.count(), 0);
    sem.add_permits(1);
    assert_eq!(wakes.count(), 1);
    let Poll::Ready(Ok(permit)) = poll_once(&mut waiting) else {
        panic!("two permits were added");
    };
    assert_eq!(permit.num_permits(), 2);
}

#[test]
#[should_panic(expected = "permit count overflowed")]
fn add_permits_overflow_panics() {
    let sem = Semaphore::new(usize::MAX);
    sem.add_permits(1);
}

#[test]
fn permits_beyond_the_fast_path_range_still_work() {
    let sem = Semaphore::new(usize::MAX - 1);
    assert_eq!(sem.available_permits(), usize::MAX - 1);
    let all = sem.try_acquire_many(usize::MAX - 2).unwrap();
    let mut two = sem.acquire_many(2);
    assert!(poll_once(&mut two).is_pending());
    drop(all);
    let Poll::Ready(Ok(two)) = poll_once(&mut two) else {
        panic!("the permits came back");
    };
    assert_eq!(sem.available_permits(), usize::MAX - 3);
    drop(two);
    sem.add_permits(1);
    assert_eq!(sem.available_permits(), usize::MAX);
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let mut futures: Vec<_> = (0..4).map(|_| sem.acquire()).collect();
    let arrival = [2, 0, 3, 1];
    for &i in &arrival {
        assert!(poll_once(&mut futures[i]).is_pending());
    }
    drop(held);
    let mut done = [false; 4];
    for &expected in &arrival {
        let mut ready = Vec::new();
        let mut permit = None;
        for (i, future) in futures.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            if let Poll::Ready(result) = poll_once(future) {
                ready.push(i);
                done[i] = true;
                permit = Some(result.unwrap());
            }
        }
        assert_eq!(ready, vec![expected]);
        drop(permit);
    }
}

#[test]
fn a_freed_permit_may_be_taken_while_the_woken_waiter_retries() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let wakes = WakeCounter::new();
    let mut waiting = sem.acquire();
    assert!(poll_with(&mut waiting, &wakes.waker()).is_pending());
    drop(held);
    assert_eq!(wakes.count(), 1, "the front waiter is woken to retry");
    // The permit is free: a newcomer may take it before the woken waiter runs.
    let barger = sem
        .try_acquire()
        .expect("a freed permit is free for anyone");
    // The waiter misses, and stays on its way (it wakes itself to retry later).
    assert!(poll_with(&mut waiting, &wakes.waker()).is_pending());
    assert_eq!(wakes.count(), 2);
    drop(barger);
    assert!(matches!(poll_once(&mut waiting), Poll::Ready(Ok(_))));
}

#[test]
fn a_woken_waiter_overtaken_4_times_is_handed_the_next_permit() {
    let sem = Semaphore::new(1);
    let mut held = sem.try_acquire().unwrap();
    let mut waiting = sem.acquire();
    assert!(poll_once(&mut waiting).is_pending());
    let mut overtaken = 0;
    loop {
        drop(held);
        match sem.try_acquire() {
            Ok(permit) => held = permit,
            // No barging any more: the permit was handed to the waiter.
            Err(err) => {
                assert_eq!(err, TryAcquireError::NoPermits);
                break;
            }
        }
        overtaken += 1;
        assert!(overtaken <= 10, "the waiter must not be overtaken forever");
        assert!(poll_once(&mut waiting).is_pending());
    }
    assert_eq!(overtaken, 4);
    assert_eq!(sem.available_permits(), 0);
    let Poll::Ready(Ok(permit)) = poll_once(&mut waiting) else {
        panic!("the permit was handed to the waiter");
    };
    drop(permit);
    assert!(sem.try_acquire().is_ok(), "barging is allowed again");
}

#[test]
fn a_large_request_at_the_front_is_not_overtaken() {
    let sem = Semaphore::new(1);
    let mut big = sem.acquire_many(3);
    assert!(poll_once(&mut big).is_pending());
    let mut small = sem.acquire();
    // A permit is available, but the large request arrived first and sleeps: it is owed it.
    assert!(poll_once(&mut small).is_pending());
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    sem.add_permits(2);
    let Poll::Ready(Ok(big_permit)) = poll_once(&mut big) else {
        panic!("three permits are available for the front request");
    };
    assert!(poll_once(&mut small).is_pending());
    drop(big_permit);
    assert!(matches!(poll_once(&mut small), Poll::Ready(Ok(_))));
}

#[test]
fn dropping_a_queued_large_request_lets_the_ones_behind_it_in() {
    let sem = Semaphore::new(1);
    let mut big = sem.acquire_many(3);
    let mut small = sem.acquire();
    assert!(poll_once(&mut big).is_pending());
    let wakes = WakeCounter::new();
    assert!(poll_with(&mut small, &wakes.waker()).is_pending());
    drop(big);
    assert_eq!(wakes.count(), 1);
    assert!(matches!(poll_once(&mut small), Poll::Ready(Ok(_))));
}

#[test]
fn waiter_dropped_right_after_being_woken_passes_the_turn_on() {
    let sem = Semaphore::new(0);
    let mut first = sem.acquire_many(2);
    let mut second = sem.acquire_many(2);
    assert!(poll_once(&mut first).is_pending());
    let wakes = WakeCounter::new();
    assert!(poll_with(&mut second, &wakes.waker()).is_pending());
    sem.add_permits(2); // `first` is woken to take them
    assert_eq!(wakes.count(), 0);
    drop(first); // cancelled before it ran
    assert_eq!(wakes.count(), 1, "`second` is woken instead");
    let Poll::Ready(Ok(permit)) = poll_once(&mut second) else {
        panic!("the permits were passed on");
    };
    drop(permit);
    drop(second);
    assert_eq!(sem.available_permits(), 2, "no permit lost");
}

#[test]
fn waiter_dropped_right_after_handoff_returns_its_permits_to_the_next() {
    let sem = Semaphore::new(0);
    let mut first = sem.acquire_many(2);
    assert!(poll_once(&mut first).is_pending());
    sem.add_permits(2); // `first` is woken to take them…
                        // …but a newcomer takes them first, 4 times: `first` starves, and the permits that newcomer
                        // returns are handed to it.
    for _ in 0..4 {
        let barger = sem
            .try_acquire_many(2)
            .expect("free while `first` is on its way");
        assert!(poll_once(&mut first).is_pending());
        drop(barger);
    }
    assert_eq!(sem.available_permits(), 0, "handed to `first`");
    let mut second = sem.acquire_many(2);
    let wakes = WakeCounter::new();
    assert!(poll_with(&mut second, &wakes.waker()).is_pending());
    drop(first); // cancelled before it ran
    assert_eq!(wakes.count(), 1);
    let Poll::Ready(Ok(permit)) = poll_once(&mut second) else {
        panic!("the permits were passed on");
    };
    drop(permit);
    drop(second);
    assert_eq!(sem.available_permits(), 2, "no permit lost");
}

#[test]
fn close_fails_pending_and_later_acquires() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let wakes = WakeCounter::new();
    let mut pending = sem.acquire();
    assert!(poll_with(&mut pending, &wakes.waker()).is_pending());
    sem.close();
    assert!(sem.is_closed());
    assert_eq!(wakes.count(), 1);
    assert!(matches!(
        poll_once(&mut pending),
        Poll::Ready(Err(AcquireError { .. }))
    ));
    assert!(block_on(sem.acquire()).is_err());
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
    // Held permits stay valid and still come back.
    drop(held);
    assert_eq!(sem.available_permits(), 1);
    assert_eq!(AcquireError::default().to_string(), "semaphore closed");
}

#[test]
fn owned_permits_through_arc() {
    let sem = Arc::new(Semaphore::new(2));
    let permit = block_on(sem.clone().acquire_many_owned(2)).unwrap();
    assert!(sem.clone().try_acquire_owned().is_err());
    let handle = std::thread::spawn(move || drop(permit));
    handle.join().unwrap();
    assert_eq!(sem.clone().try_acquire_owned().unwrap().num_permits(), 1);
}

#[test]
fn owned_waiter_dropped_after_being_woken_leaves_the_permit() {
    let sem = Arc::new(Semaphore::new(0));
    let mut waiting = sem.clone().acquire_owned();
    assert!(poll_once(&mut waiting).is_pending());
    sem.add_permits(1);
    drop(waiting);
    assert_eq!(sem.available_permits(), 1);
}

/// Semaphore(3) under many threads: never a fourth holder, and every acquisition happens.
#[test]
fn stress_never_admits_a_fourth_holder() {
    const THREADS: usize = 6;
    // Scaled down under Miri, which interprets every instruction (still contended).
    const ROUNDS: usize = if cfg!(miri) { 40 } else { 5_000 };
    let sem = Semaphore::new(3);
    let holders = AtomicUsize::new(0);
    let max_seen = AtomicUsize::new(0);
    let total = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for i in 0..ROUNDS {
                    let permit = block_on(sem.acquire()).unwrap();
                    // SeqCst: the counter is a test oracle; ordering cost is irrelevant.
                    let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                    max_seen.fetch_max(now, Ordering::SeqCst);
                    assert!(now <= 3, "{now} holders of a 3-permit semaphore");
                    if i % 64 == 0 {
                        std::thread::yield_now();
                    }
                    holders.fetch_sub(1, Ordering::SeqCst);
                    total.fetch_add(1, Ordering::SeqCst);
                    drop(permit);
                }
            });
        }
    });
    assert!(max_seen.load(Ordering::SeqCst) <= 3);
    assert_eq!(total.load(Ordering::SeqCst), THREADS * ROUNDS);
    assert_eq!(sem.available_permits(), 3);
}

/// Threads acquire and cancel requests of various sizes at random points (sometimes right
/// after a grant): at the end every permit is back.
#[test]
fn stress_permits_are_conserved_under_cancellation() {
    const THREADS: usize = 4;
    // Scaled down under Miri, which interprets every instruction (still contended).
    const ROUNDS: usize = if cfg!(miri) { 60 } else { 3_000 };
    let sem = Semaphore::new(4);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let sem = &sem;
            s.spawn(move || {
                for i in 0..ROUNDS {
                    let n = 1 + (i + t) % 3;
                    let mut acquire = sem.acquire_many(n);
                    if i % 2 == 0 {
                        // Poll once and drop, whatever happened.
                        if let Poll::Ready(permit) = poll_once(&mut acquire) {
                            drop(permit.unwrap());
                        } else {
                            // Widen the window in which permits get granted to `acquire`.
                            std::thread::yield_now();
                        }
                        drop(acquire);
                    } else {
                        let permit = block_on(acquire).unwrap();
                        // Hold it for a moment so that others queue up behind it.
                        std::thread::yield_now();
                        drop(permit);
                    }
                }
            });
        }
    });
    assert_eq!(sem.available_permits(), 4);
    assert!(sem.try_acquire_many(4).is_ok());
}
