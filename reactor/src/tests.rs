//! Tests that need the reactor's internals (waiter lists, the source count).

use crate::reactor;
use crate::source::Direction;
use crate::Async;
use std::future::Future;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// The tests of this module (two of which count the reactor's sources) run one at a time,
/// holding this exclusively ([`alone`]); the other tests of this crate that register sources
/// hold it shared ([`beside_others`]), so that none of them runs while a count is taken,
/// whatever order the test harness picks.
static SOURCES: RwLock<()> = RwLock::new(());

fn alone() -> RwLockWriteGuard<'static, ()> {
    SOURCES.write().unwrap_or_else(PoisonError::into_inner)
}

/// For a test that registers sources and does not count them (see [`SOURCES`]).
pub(crate) fn beside_others() -> RwLockReadGuard<'static, ()> {
    SOURCES.read().unwrap_or_else(PoisonError::into_inner)
}

/// Safety net for waits that take microseconds when things work.
pub(crate) const SAFETY: Duration = Duration::from_secs(20);

/// A waker that counts its wakes.
#[derive(Default)]
pub(crate) struct CountingWaker {
    pub(crate) wakes: AtomicUsize,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits (polling every millisecond) until `cond` holds; fails the test after [`SAFETY`].
pub(crate) fn wait_until(mut cond: impl FnMut() -> bool) {
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
    let _g = alone();
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
    let _g = alone();
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
    let _g = alone();
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
    let _g = alone();
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
    let _g = alone();
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
    let _g = alone();
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

/// Waits until the reactor has reported `dir` of `a` at least once after tick `since`.
fn wait_for_edge<T>(a: &Async<T>, dir: Direction, since: u64) {
    wait_until(|| a.source.tick(dir) != since);
}

/// A registered socket pair end whose registration-time report (a fresh socket is writable,
/// so epoll reports it when it is added) has been dispatched: every later read report then
/// comes from something the test does.
fn settled_pair() -> (Async<UnixStream>, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    let a = Async::new(a).unwrap();
    wait_for_edge(&a, Direction::Write, 0);
    (a, b)
}

#[test]
fn edge_between_a_failed_attempt_and_the_registration_is_not_lost() {
    let _g = alone();
    let (a, mut b) = settled_pair();
    let mut buf = [0u8; 8];
    // `poll_read` path: the attempt fails at tick `t` ...
    let t = a.source.tick(Direction::Read);
    let err = std::io::Read::read(&mut a.get_ref(), &mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    // ... then data arrives and the reactor reports its (only) edge before any waiter exists.
    b.write_all(b"x").unwrap();
    wait_for_edge(&a, Direction::Read, t);
    // Registering for the failed attempt must refuse (so the caller retries) ...
    let c = Arc::new(CountingWaker::default());
    assert!(!a
        .source
        .register_poll_waker(Direction::Read, t, &Waker::from(c.clone()))
        .unwrap());
    assert_eq!(a.source.waiter_count(Direction::Read), 0);
    // ... and so must the `read_with` wait started from that same tick.
    let mut wait = crate::Readiness::not_ready_at(&a.source, Direction::Read, t);
    assert!(matches!(
        poll_once(&mut wait, &Waker::from(c.clone())),
        Poll::Ready(Ok(()))
    ));
    // The whole public path: the retried read gets the byte without waiting for another edge.
    let mut reader = &a;
    let n = futures_lite::future::block_on(futures_lite::AsyncReadExt::read(&mut reader, &mut buf))
        .unwrap();
    assert_eq!(&buf[..n], b"x");
}

#[test]
fn readable_after_an_unwatched_edge_completes() {
    let _g = alone();
    let (a, mut b) = settled_pair();
    let t = a.source.tick(Direction::Read);
    b.write_all(b"x").unwrap();
    // The edge is reported while nobody waits; it is not re-reported later.
    wait_for_edge(&a, Direction::Read, t);
    let c = Arc::new(CountingWaker::default());
    let mut f = a.readable();
    assert!(matches!(
        poll_once(&mut f, &Waker::from(c)),
        Poll::Ready(Ok(()))
    ));
}

#[test]
fn readable_on_a_drained_source_waits_despite_an_earlier_edge() {
    let _g = alone();
    let (a, mut b) = settled_pair();
    let t = a.source.tick(Direction::Read);
    b.write_all(b"xy").unwrap();
    wait_for_edge(&a, Direction::Read, t);
    // Drained behind the reactor's back (through `get_ref`): the flag says "an edge came",
    // but a manual read/readable loop must not see a stale Ready, or it would spin.
    let mut buf = [0u8; 8];
    assert_eq!(std::io::Read::read(&mut a.get_ref(), &mut buf).unwrap(), 2);
    let c = Arc::new(CountingWaker::default());
    let mut f = a.readable();
    assert!(poll_once(&mut f, &Waker::from(c.clone())).is_pending());
    assert_eq!(a.source.waiter_count(Direction::Read), 1);
    // The next edge wakes it.
    b.write_all(b"z").unwrap();
    wait_until(|| c.wakes.load(Ordering::SeqCst) == 1);
    assert!(matches!(
        poll_once(&mut f, &Waker::from(c)),
        Poll::Ready(Ok(()))
    ));
}

#[test]
fn a_source_that_stays_readable_is_reported_once_per_edge() {
    let _g = alone();
    let (a, mut b) = settled_pair();
    let t = a.source.tick(Direction::Read);
    b.write_all(b"x").unwrap();
    wait_for_edge(&a, Direction::Read, t);
    let after_edge = a.source.tick(Direction::Read);
    // Nobody reads: the data stays, the descriptor stays readable. A level-triggered
    // registration would be reported on every turn of the reactor loop; an edge-triggered one
    // is not reported again until new data arrives. (Sleep so a spinning loop would have had
    // thousands of turns; the assertion is on the count, not on the time.)
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(a.source.tick(Direction::Read), after_edge);
    b.write_all(b"y").unwrap();
    wait_for_edge(&a, Direction::Read, after_edge);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn the_reactor_thread_runs_in_the_batch_scheduling_policy() {
    // Where the OS refuses the policy (musl, some seccomp sandboxes) the reactor runs under the
    // default one by design; probe on a thread of our own and check only where it is allowed.
    let allowed = std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is valid for the call; pid 0 is this (throwaway) thread.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0 }
    })
    .join()
    .unwrap();
    if !allowed {
        eprintln!("SCHED_BATCH is refused here: nothing to check");
        return;
    }
    reactor::get();
    // The thread names itself at spawn and sets its policy first thing: find it by name.
    let mut policy = None;
    wait_until(|| {
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let task = task.unwrap();
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == "magpie-reactor" {
                let tid: libc::pid_t = task.file_name().to_str().unwrap().parse().unwrap();
                // SAFETY: `sched_getscheduler` only reads the scheduling policy of `tid`.
                policy = Some(unsafe { libc::sched_getscheduler(tid) });
                return policy == Some(libc::SCHED_BATCH);
            }
        }
        false
    });
    assert_eq!(policy, Some(libc::SCHED_BATCH));
}
