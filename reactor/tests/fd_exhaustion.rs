//! `accept` when the process has no file descriptor left (EMFILE): the error reaches the caller
//! as an `io::Error`, nothing spins while nobody retries, and the listener serves the waiting
//! connections once descriptors are free again. (Its own test binary: it lowers the process's
//! descriptor limit.)

// Unix only: descriptor limits and counts (`setrlimit`, `/proc/self/fd`).
#![cfg(unix)]

use std::time::{Duration, Instant};

#[path = "support/fd_limit.rs"]
mod fd_limit;

use fd_limit::{exhaust_fds, set_fd_limit};
use futures_lite::future;
use magpie_reactor::net::TcpListener;

/// The process's CPU time (user + system).
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we own; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[test]
fn accept_under_fd_exhaustion_errors_without_spinning_and_recovers() {
    future::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Two clients whose connections wait in the listener's backlog.
        let clients: Vec<_> = (0..2)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();

        // Use up every descriptor under a low limit.
        let (old, fillers) = exhaust_fds(256);

        // 1. The caller gets the error.
        let err = listener.accept().await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");

        // 2. Nothing spins while nobody retries: the reactor thread and this thread idle.
        let (cpu, wall) = (cpu_time(), Instant::now());
        std::thread::sleep(Duration::from_millis(300));
        let used = cpu_time() - cpu;
        assert!(
            used < Duration::from_millis(60),
            "{used:?} of CPU in {:?} after the error",
            wall.elapsed()
        );

        // 3. Descriptors free again: both waiting connections are served.
        drop(fillers);
        set_fd_limit(old);
        for _ in &clients {
            let (stream, peer) = listener.accept().await.unwrap();
            assert!(peer.ip().is_loopback());
            drop(stream);
        }
    });
}
