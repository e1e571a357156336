//! A first listener that cannot set signals up (no descriptor left for the wake-up socket)
//! gets the error, and the next one, once descriptors are free, sets them up: the failure is
//! not kept for the life of the process. (Its own test binary: it lowers the process's
//! descriptor limit, and needs to be the first user of signals in its process.)

// Unix only: signals and descriptor limits.
#![cfg(unix)]

#[path = "support/fd_limit.rs"]
mod fd_limit;

use std::sync::mpsc;
use std::time::Duration;

use fd_limit::{exhaust_fds, set_fd_limit};
use futures_lite::{future, StreamExt};
use magpie_reactor::signal::{signal, SignalError, SignalKind};

#[test]
fn a_failed_first_setup_is_tried_again_by_the_next_listener() {
    // The reactor itself is up before the descriptors run out (its poller and notifier).
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(magpie_reactor::Async::new(a).unwrap());

    let (old, fillers) = exhaust_fds(256);

    let kind = SignalKind::user_defined1();
    match signal(kind) {
        Err(err @ SignalError::Io(_)) => {
            assert!(err.to_string().contains("wake-up socket"), "{err}")
        }
        other => panic!("expected SignalError::Io with no descriptor left, got {other:?}"),
    }

    drop(fillers);
    set_fd_limit(old);
    let mut deliveries = signal(kind).expect("descriptors are free again");
    // SAFETY: `kill` on our own pid with a signal the listener above handles.
    assert_eq!(unsafe { libc::kill(libc::getpid(), kind.as_raw()) }, 0);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        future::block_on(deliveries.next());
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the listener hears the delivery");
}
