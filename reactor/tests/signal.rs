//! Signals as streams: every listener hears each delivery, the last listener's drop restores
//! the previous disposition, bad signals are typed errors. Each test uses signals of its own:
//! the tests of this binary run in parallel threads of one process.

// Unix only: signals are (`magpie::signal` is `cfg(unix)`).
#![cfg(unix)]

use futures_lite::{future, StreamExt};
use magpie_reactor::signal::{ctrl_c, signal, SignalError, SignalKind};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` on a thread of its own and waits at most 10 s for it (a hang fails the test).
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what}: no result within 10 s"))
}

fn send_to_self(kind: SignalKind) {
    // SAFETY: `kill` on our own pid with a signal a listener of the test handles.
    let rc = unsafe { libc::kill(libc::getpid(), kind.as_raw()) };
    assert_eq!(rc, 0);
}

/// The handler the process has for `signum` now.
fn current_handler(signum: i32) -> libc::sighandler_t {
    // SAFETY: all-zero is a valid `sigaction`; a null new action only queries.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a live out-pointer and a null in-pointer.
    let rc = unsafe { libc::sigaction(signum, std::ptr::null(), &mut action) };
    assert_eq!(rc, 0);
    action.sa_sigaction
}

#[test]
fn every_listener_hears_each_delivery() {
    let kind = SignalKind::user_defined1();
    let mut first = signal(kind).unwrap();
    let mut second = signal(kind).unwrap();
    assert_eq!(first.kind(), kind);
    for round in 0..3 {
        send_to_self(kind);
        let (first_back, second_back) = bounded("both listeners hear it", move || {
            future::block_on(async {
                first
                    .next()
                    .await
                    .expect("a stream of deliveries never ends");
                second
                    .next()
                    .await
                    .expect("a stream of deliveries never ends");
            });
            (first, second)
        });
        first = first_back;
        second = second_back;
        let _ = round;
    }
}

#[test]
fn a_listener_does_not_see_deliveries_from_before_it_existed() {
    let kind = SignalKind::window_change();
    let early = signal(kind).unwrap();
    send_to_self(kind);
    let mut early = bounded("the early listener hears it", move || {
        future::block_on(async {
            let mut early = early;
            early.next().await;
            early
        })
    });
    let mut late = signal(kind).unwrap();
    assert!(
        future::block_on(future::poll_once(late.next())).is_none(),
        "nothing delivered since the late listener exists"
    );
    assert!(future::block_on(future::poll_once(early.next())).is_none());
}

#[test]
fn dropping_the_last_listener_restores_the_previous_disposition() {
    let kind = SignalKind::user_defined2();
    // The disposition before: ignore.
    // SAFETY: setting SIG_IGN for SIGUSR2, which only this test uses.
    unsafe { libc::signal(kind.as_raw(), libc::SIG_IGN) };
    let first = signal(kind).unwrap();
    let second = signal(kind).unwrap();
    assert_ne!(
        current_handler(kind.as_raw()),
        libc::SIG_IGN,
        "ours is installed"
    );
    drop(first);
    assert_ne!(
        current_handler(kind.as_raw()),
        libc::SIG_IGN,
        "a listener is left: ours stays"
    );
    drop(second);
    assert_eq!(
        current_handler(kind.as_raw()),
        libc::SIG_IGN,
        "the last drop restores what was there"
    );
    // A listener again installs ours again, and hears deliveries.
    let mut again = signal(kind).unwrap();
    send_to_self(kind);
    bounded("a new listener hears it", move || {
        future::block_on(again.next());
    });
}

#[test]
fn uncatchable_and_invalid_signals_are_typed_errors() {
    for forbidden in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, libc::SIGILL] {
        match signal(SignalKind::from_raw(forbidden)) {
            Err(SignalError::Forbidden(n)) => assert_eq!(n, forbidden),
            other => panic!("signal {forbidden}: expected Forbidden, got {other:?}"),
        }
    }
    for invalid in [0, -1, 65, 1000] {
        match signal(SignalKind::from_raw(invalid)) {
            Err(err @ SignalError::Invalid(n)) => {
                assert_eq!(n, invalid);
                assert!(err.to_string().contains("not a valid signal"), "{err}");
            }
            other => panic!("signal {invalid}: expected Invalid, got {other:?}"),
        }
    }
}

#[test]
fn ctrl_c_completes_on_sigint() {
    // Only this test touches SIGINT. Poll once so the handler is installed before sending.
    let mut wait = Box::pin(ctrl_c());
    assert!(future::block_on(future::poll_once(wait.as_mut())).is_none());
    send_to_self(SignalKind::interrupt());
    bounded("ctrl_c completes", move || future::block_on(wait)).expect("the handler was installed");
}

#[test]
fn a_listener_inside_a_runtime_task_hears_it() {
    let kind = SignalKind::hangup();
    let rt = magpie_executor::Runtime::builder()
        .worker_threads(2)
        .build()
        .unwrap();
    let mut hangups = signal(kind).unwrap();
    let task = rt.spawn(async move {
        hangups.next().await;
    });
    send_to_self(kind);
    bounded("the task hears it", move || {
        magpie_executor::block_on(task).unwrap();
        drop(rt);
    });
}

/// Counts its wakes; the test reads its `Arc`'s strong count to see who still holds it.
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_listener_dropped_while_it_waits_leaves_no_waker_behind() {
    use std::sync::Arc;
    use std::task::{Context, Waker};

    let kind = SignalKind::alarm();
    let counting = Arc::new(CountingWaker(std::sync::atomic::AtomicUsize::new(0)));
    for _ in 0..3 {
        let mut alarms = signal(kind).unwrap();
        let waker = Waker::from(counting.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(
            futures_lite::Stream::poll_next(std::pin::Pin::new(&mut alarms), &mut cx).is_pending(),
            "nothing delivered yet"
        );
        drop(waker);
        drop(alarms);
        assert_eq!(
            Arc::strong_count(&counting),
            1,
            "the dropped listener's waker is still held (by the wake-up socket's waiters)"
        );
    }
}

extern "C" fn foreign_handler(_signum: libc::c_int) {}

#[test]
fn dropping_the_last_listener_leaves_a_handler_installed_since_in_place() {
    let kind = SignalKind::from_raw(libc::SIGURG);
    let listener = signal(kind).unwrap();
    // Another library installs its handler over ours.
    let foreign = foreign_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: all-zero is a valid `sigaction`; the handler does nothing, and only this test
    // uses SIGURG.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = foreign;
        assert_eq!(
            libc::sigaction(kind.as_raw(), &action, std::ptr::null_mut()),
            0
        );
    }
    drop(listener);
    assert_eq!(
        current_handler(kind.as_raw()),
        foreign,
        "the other library's handler was replaced by the disposition from before ours"
    );
    // SAFETY: SIGURG's default (ignore) back, as it was before the test.
    unsafe { libc::signal(kind.as_raw(), libc::SIG_DFL) };
}

#[test]
fn signals_are_refused_where_real_io_is_off_and_work_again_after() {
    let kind = SignalKind::quit();
    let guard = magpie_reactor::real_io::RealIoDenied::enter("a simulation runs here");
    match signal(kind) {
        Err(err @ SignalError::Io(_)) => {
            assert!(err.to_string().contains("a simulation runs here"), "{err}")
        }
        other => panic!("expected SignalError::Io, got {other:?}"),
    }
    drop(guard);
    let mut quits = signal(kind).expect("real I/O is on again");
    send_to_self(kind);
    bounded("the listener hears it", move || {
        future::block_on(quits.next());
    });
}
