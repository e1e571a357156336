//! Tests that need the reactor's internals (waiter lists, the source count).

use crate::loom::{lock, Mutex};
use crate::reactor;
use crate::source::Direction;
use crate::Async;
use std::future::Future;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// Tests that count sources run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Safety net for waits that take microseconds when things work.
const SAFETY: Duration = Duration::from_secs(20);

#[derive(Default)]
struct CountingWaker {
    wakes: AtomicUsize,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

fn wait_until(mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < SAFETY, "condition never became true");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn poll_once<F: Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

#[test]
fn several_waiters_on_one_socket_are_all_woken_exactly_once() {
    let _g = lock(&SERIAL);
    const WAITERS: usize = 16;
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = Async::new(a).unwrap();
    let counters: Vec<Arc<CountingWaker>> = (0..WAITERS).map(|_| Arc::default()).collect();
    let mut futures: Vec<_> = (0..WAITERS).map(|_| a.readable()).collect();
    for (f, c) in futures.iter_mut().zip(&counters) {
        // Poll twice with the same task's waker: the second poll replaces, not duplicates.
        let waker = Waker::from(c.clone());
        assert!(poll_once(f, &waker).is_pending());
        assert!(poll_once(f, &waker).is_pending());
    }
    assert_eq!(a.source.waiter_count(Direction::Read), WAITERS);

    b.write_all(b"x").unwrap();
    wait_until(|| counters.iter().all(|c| c.wakes.load(Ordering::SeqCst) >= 1));
    for (f, c) in futures.iter_mut().zip(&counters) {
        let waker = Waker::from(c.clone());
        assert!(matches!(poll_once(f, &waker), Poll::Ready(Ok(()))));
    }
    assert_eq!(a.source.waiter_count(Direction::Read), 0);
    // One event, one wake per waiter (checked after every future completed, so no later
    // event could add a wake for them).
    for c in &counters {
        assert_eq!(c.wakes.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn repoll_with_a_new_waker_wakes_only_the_new_one() {
    let _g = lock(&SERIAL);
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = Async::new(a).unwrap();
    let (old, new) = (
        Arc::new(CountingWaker::default()),
        Arc::new(CountingWaker::default()),
    );
    let mut f = a.readable();
    assert!(poll_once(&mut f, &Waker::from(old.clone())).is_pending());
    assert!(poll_once(&mut f, &Waker::from(new.clone())).is_pending());
    assert_eq!(a.source.waiter_count(Direction::Read), 1);
    b.write_all(b"x").unwrap();
    wait_until(|| new.wakes.load(Ordering::SeqCst) == 1);
    assert_eq!(old.wakes.load(Ordering::SeqCst), 0);
}

#[test]
fn dropped_readiness_future_unregisters_its_waiter() {
    let _g = lock(&SERIAL);
    let (a, _b) = UnixStream::pair().unwrap();
    let a = Async::new(a).unwrap();
    let c = Arc::new(CountingWaker::default());
    {
        let mut f = a.readable();
        assert!(poll_once(&mut f, &Waker::from(c.clone())).is_pending());
        assert_eq!(a.source.waiter_count(Direction::Read), 1);
    }
    assert_eq!(a.source.waiter_count(Direction::Read), 0);
    // The waker clone held by the waiter list was released.
    assert_eq!(Arc::strong_count(&c), 1);
}

#[test]
fn drop_racing_readiness_neither_crashes_nor_leaks() {
    let _g = lock(&SERIAL);
    const ITERATIONS: usize = 2_000;
    let baseline = reactor::get().source_count();
    let counter = Arc::new(CountingWaker::default());
    // A writer thread makes each socket readable while the main thread drops it, so the
    // reactor thread delivers readiness for sources that are being (or have been) removed.
    let (tx, rx) = mpsc::channel::<UnixStream>();
    let writer = std::thread::spawn(move || {
        for mut peer in rx {
            let _ = peer.write_all(b"x");
        }
    });
    for i in 0..ITERATIONS {
        let (a, b) = UnixStream::pair().unwrap();
        let a = Async::new(a).unwrap();
        let mut f = a.readable();
        // Arm interest with a live waiter, so the event is delivered and dispatched.
        assert!(poll_once(&mut f, &Waker::from(counter.clone())).is_pending());
        tx.send(b).unwrap();
        if i % 2 == 0 {
            // Give the event a chance to arrive first on half the iterations.
            std::thread::yield_now();
        }
        drop(f);
        drop(a);
    }
    drop(tx);
    writer.join().unwrap();
    assert_eq!(reactor::get().source_count(), baseline);
    // Every waker clone handed to a waiter list was dropped or consumed by a wake.
    wait_until(|| Arc::strong_count(&counter) == 1);
}

#[test]
fn into_inner_restores_blocking_mode_and_deregisters() {
    let _g = lock(&SERIAL);
    let baseline = reactor::get().source_count();
    let (a, _b) = UnixStream::pair().unwrap();
    let a = Async::new(a).unwrap();
    assert_eq!(reactor::get().source_count(), baseline + 1);
    let a = a.into_inner().unwrap();
    assert_eq!(reactor::get().source_count(), baseline);
    use std::os::fd::AsFd;
    // Blocking again: setting non-blocking reports it was not set.
    assert!(!crate::nonblocking::set_nonblocking(a.as_fd()).unwrap());
}

struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics on purpose");
    }
}

#[test]
fn a_panicking_waker_does_not_stop_the_reactor() {
    let _g = lock(&SERIAL);
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = Async::new(a).unwrap();
    let mut bad = a.readable();
    assert!(poll_once(&mut bad, &Waker::from(Arc::new(PanickingWaker))).is_pending());
    b.write_all(b"x").unwrap();
    wait_until(|| a.source.waiter_count(Direction::Read) == 0);

    // The reactor thread survived: another source still gets its wake-up.
    let (c, mut d) = UnixStream::pair().unwrap();
    let c = Async::new(c).unwrap();
    let counter = Arc::new(CountingWaker::default());
    let mut good = c.readable();
    assert!(poll_once(&mut good, &Waker::from(counter.clone())).is_pending());
    d.write_all(b"y").unwrap();
    wait_until(|| counter.wakes.load(Ordering::SeqCst) == 1);
}
