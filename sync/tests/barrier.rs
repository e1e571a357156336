//! `Barrier`: one leader per generation, reuse, `new(0)`, cancellation.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;

use common::poll_once;
use futures_lite::future::block_on;
use magpie_sync::Barrier;

#[test]
fn releases_all_with_exactly_one_leader_per_generation() {
    const PARTIES: usize = 4;
    const GENERATIONS: usize = 50;
    let barrier = Barrier::new(PARTIES);
    let leaders = AtomicUsize::new(0);
    let arrived = AtomicUsize::new(0);
    let passed = AtomicUsize::new(0);
    // A failed check is recorded, not asserted in the thread: a party that panicked would
    // never arrive again and leave the others waiting at the barrier forever.
    let passed_early = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..PARTIES {
            s.spawn(|| {
                for generation in 0..GENERATIONS {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    let result = block_on(barrier.wait());
                    // Nobody passes generation g before all parties have arrived at it.
                    if arrived.load(Ordering::SeqCst) < (generation + 1) * PARTIES {
                        passed_early.store(true, Ordering::SeqCst);
                    }
                    passed.fetch_add(1, Ordering::SeqCst);
                    if result.is_leader() {
                        leaders.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert!(
        !passed_early.load(Ordering::SeqCst),
        "a party passed a generation before all parties arrived at it"
    );
    assert_eq!(leaders.load(Ordering::SeqCst), GENERATIONS);
    assert_eq!(passed.load(Ordering::SeqCst), GENERATIONS * PARTIES);
}

#[test]
fn the_last_arrival_leads_and_the_barrier_is_reusable() {
    let barrier = Barrier::new(2);
    for _ in 0..3 {
        let mut first = barrier.wait();
        assert!(poll_once(&mut first).is_pending());
        assert_eq!(barrier.n_waiting(), 1);
        let Poll::Ready(second) = poll_once(&mut barrier.wait()) else {
            panic!("second arrival completes the generation");
        };
        assert!(second.is_leader());
        let Poll::Ready(first) = poll_once(&mut first) else {
            panic!("first arrival is released");
        };
        assert!(!first.is_leader());
        assert_eq!(barrier.n_waiting(), 0);
    }
}

#[test]
fn new_zero_behaves_like_new_one() {
    let barrier = Barrier::new(0);
    assert_eq!(barrier.parties(), 1);
    assert!(block_on(barrier.wait()).is_leader());
    assert!(block_on(barrier.wait()).is_leader());
}

#[test]
fn a_cancelled_waiter_takes_its_arrival_back() {
    let barrier = Barrier::new(2);
    let mut leaving = barrier.wait();
    assert!(poll_once(&mut leaving).is_pending());
    drop(leaving);
    assert_eq!(barrier.n_waiting(), 0);
    // One arrival is not enough any more.
    let mut a = barrier.wait();
    assert!(poll_once(&mut a).is_pending());
    assert!(poll_once(&mut barrier.wait()).is_ready());
    assert!(poll_once(&mut a).is_ready());
}

#[test]
fn dropping_a_released_waiter_does_not_affect_the_next_generation() {
    let barrier = Barrier::new(2);
    let mut released = barrier.wait();
    assert!(poll_once(&mut released).is_pending());
    assert!(poll_once(&mut barrier.wait()).is_ready());
    drop(released); // released but never polled again
    assert_eq!(barrier.n_waiting(), 0);
    let mut next = barrier.wait();
    assert!(poll_once(&mut next).is_pending());
    assert_eq!(barrier.n_waiting(), 1);
}
