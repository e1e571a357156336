//! `magpie_reactor::stats().pending_timers` counts the timers pending in magpie's store.
//!
//! A file of its own, so its process holds no other timers; its tests are serialized and
//! still compare against a baseline.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use magpie_timers::{sleep, Sleep};

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn pending() -> usize {
    magpie_reactor::stats().pending_timers
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// `n` sleeps an hour ahead, each polled once (a sleep registers on its first poll).
fn far_sleeps(n: usize) -> Vec<Sleep> {
    let waker = Waker::from(Arc::new(Noop));
    (0..n)
        .map(|_| {
            let mut s = sleep(Duration::from_secs(3600));
            let polled = Pin::new(&mut s).poll(&mut Context::from_waker(&waker));
            assert!(polled.is_pending());
            s
        })
        .collect()
}

#[test]
fn far_sleeps_are_pending_until_dropped() {
    const N: usize = 100;
    let _g = serial();
    let baseline = pending();
    let mut sleeps = far_sleeps(N);
    // Also from other threads, so that several shards of the store hold some.
    let others: Vec<Sleep> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| far_sleeps(N))).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(pending() >= N);
    assert_eq!(pending(), baseline + 4 * N);
    drop(others);
    assert_eq!(pending(), baseline + N);
    sleeps.truncate(N / 2);
    assert_eq!(pending(), baseline + N / 2);
    drop(sleeps);
    assert_eq!(pending(), baseline);
}

#[test]
fn fired_sleeps_are_no_longer_pending() {
    let _g = serial();
    let baseline = pending();
    // Far off at first, so that no stall of this thread lets it fire before it is counted.
    let mut s = sleep(Duration::from_secs(3600));
    let waker = Waker::from(Arc::new(Noop));
    assert_eq!(
        Pin::new(&mut s).poll(&mut Context::from_waker(&waker)),
        Poll::Pending
    );
    assert_eq!(pending(), baseline + 1);
    // Moved, still far off: counted once, not twice.
    s.reset(Instant::now() + Duration::from_secs(1800));
    assert_eq!(pending(), baseline + 1);
    // Then due soon: fired by the reactor (removed from the store before the wake), then
    // completed. (Not counted here: a stall of this thread could let it fire first.)
    s.reset(Instant::now() + Duration::from_millis(10));
    block_on(&mut s);
    assert_eq!(pending(), baseline);
}
