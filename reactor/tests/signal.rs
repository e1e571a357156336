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
