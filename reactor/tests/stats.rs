//! `magpie_reactor::stats()`: the events and sources counters move with real sockets.
//!
//! The counters are process-wide and the tests of one binary run in parallel, so every test
//! here takes `serial()` and compares against a baseline read after taking it. Whether
//! `stats()` leaves an unstarted reactor alone is checked in `stats_unstarted.rs`, a process of
//! its own.

// Unix only: the sources are Unix socket pairs. Not under loom: its executor, async-executor,
// is a dev-dependency only outside loom builds (see Cargo.toml).
#![cfg(all(unix, not(loom)))]

use async_executor::Executor;
use futures_lite::future;
use magpie_reactor::{stats, Async, ReactorStats};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn events_grow_when_an_awaited_socket_becomes_readable() {
    let _g = serial();
    let before = stats().events;
    let (a, mut b) = UnixStream::pair().unwrap();
    // Registered after `before` was read: every event reported for it counts after it.
    let a = Async::new(a).unwrap();
    let ex = Executor::new();
    let task = ex.spawn(async move {
        let mut buf = [0; 8];
        let n = a.read_with(|mut s| s.read(&mut buf)).await.unwrap();
        (n, buf[0])
    });
    // The task's first poll, here and now: nothing was written yet, so its read returns
    // `WouldBlock` and it waits for the reactor to report the socket readable. Only that
    // report (a dispatched event) wakes it again.
    assert!(ex.try_tick());
    assert!(!task.is_finished());
    b.write_all(b"x").unwrap();
    assert_eq!(future::block_on(ex.run(task)), (1, b'x'));
    // The readiness that woke the task was dispatched, and counted, before the wake.
    let after = stats().events;
    assert!(
        after > before,
        "events did not grow: {before} before, {after} after"
    );
}

#[test]
fn reactor_notifications_are_not_counted_as_events() {
    let _g = serial();
    // Start the reactor, with no source of this test left registered afterwards.
    drop(Async::new(UnixStream::pair().unwrap().0).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let before = stats().events;
    for _ in 0..10 {
        magpie_reactor::timer_hook::notify_reactor();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(
        stats().events,
        before,
        "the notifier's wake-ups were counted"
    );
}

#[test]
fn sources_count_follows_registration_and_drop() {
    let _g = serial();
    let baseline = stats().sources;
    let (a, b) = UnixStream::pair().unwrap();
    let a = Async::new(a).unwrap();
    assert_eq!(stats().sources, baseline + 1);
    let b = Async::new(b).unwrap();
    assert_eq!(stats().sources, baseline + 2);
    drop(a);
    assert_eq!(stats().sources, baseline + 1);
    drop(b);
    assert_eq!(stats().sources, baseline);
}

#[test]
fn stats_is_a_plain_copyable_value() {
    let _g = serial();
    let s: ReactorStats = stats();
    let copy = s;
    assert_eq!(s, copy);
    assert_eq!(ReactorStats::default().events, 0);
    // No timer driver is installed in this binary.
    assert_eq!(s.pending_timers, 0);
    assert!(format!("{s:?}").contains("pending_timers"));
}
