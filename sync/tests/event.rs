//! `Event`: set/clear/wait semantics and cancellation.

mod common;

use std::task::Poll;

use common::{poll_once, poll_with, WakeCounter};
use futures_lite::future::block_on;
use magpie_sync::Event;

#[test]
fn set_wakes_every_current_waiter() {
    let event = Event::new();
    let wakes = WakeCounter::new();
    let mut waiters: Vec<_> = (0..3).map(|_| event.wait()).collect();
    for waiter in &mut waiters {
        assert!(poll_with(waiter, &wakes.waker()).is_pending());
    }
    event.set();
    assert_eq!(wakes.count(), 3);
    for waiter in &mut waiters {
        assert_eq!(poll_once(waiter), Poll::Ready(()));
    }
}

#[test]
fn wait_after_set_returns_at_once_and_clear_resets() {
    let event = Event::new();
    assert!(!event.is_set());
    event.set();
    assert!(event.is_set());
    assert_eq!(poll_once(&mut event.wait()), Poll::Ready(()));
    event.clear();
    assert!(!event.is_set());
    assert!(poll_once(&mut event.wait()).is_pending());
}

#[test]
fn a_woken_waiter_returns_even_if_cleared_before_it_runs() {
    let event = Event::new();
    let mut waiter = event.wait();
    assert!(poll_once(&mut waiter).is_pending());
    event.set();
    event.clear();
    assert_eq!(poll_once(&mut waiter), Poll::Ready(()));
}

#[test]
fn dropped_waiters_are_removed_and_others_still_woken() {
    let event = Event::new();
    let mut gone = event.wait();
    assert!(poll_once(&mut gone).is_pending());
    let wakes = WakeCounter::new();
    let mut kept = event.wait();
    assert!(poll_with(&mut kept, &wakes.waker()).is_pending());
    drop(gone);
    event.set();
    assert_eq!(wakes.count(), 1);
    assert!(poll_once(&mut kept).is_ready());
}

#[test]
fn set_from_another_thread_releases_blocked_threads() {
    let event = Event::new();
    std::thread::scope(|s| {
        let waiters: Vec<_> = (0..4).map(|_| s.spawn(|| block_on(event.wait()))).collect();
        event.set();
        for waiter in waiters {
            waiter.join().unwrap();
        }
    });
}
