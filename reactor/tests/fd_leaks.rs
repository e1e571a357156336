//! Opening and closing many sources leaves the process's open descriptors where they were.
//! (Its own test binary: the count is process-wide, so nothing else may run alongside.)

// Unix only: descriptor limits and counts (`setrlimit`, `/proc/self/fd`).
#![cfg(unix)]

use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use magpie_reactor::net::{TcpListener, TcpStream};
use magpie_reactor::Async;
use std::io::Write;
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd is readable on Linux")
        .count()
}

/// Starts the reactor (its poller, eventfd and timerfd are opened once, on first use).
fn warm_up() {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(Async::new(a).unwrap());
}

#[test]
fn thousand_connections_opened_and_closed_leave_fd_count_unchanged() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    warm_up();
    future::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let before = open_fds();
        for i in 0..1_000u32 {
            let (client, accepted) = future::zip(TcpStream::connect(addr), listener.accept()).await;
            let (mut client, (mut server, _)) = (client.unwrap(), accepted.unwrap());
            if i % 10 == 0 {
                // Some connections carry data and are waited on, so their sources get armed.
                client.write_all(&i.to_le_bytes()).await.unwrap();
                let mut buf = [0; 4];
                server.read_exact(&mut buf).await.unwrap();
                assert_eq!(u32::from_le_bytes(buf), i);
            }
        }
        assert_eq!(open_fds(), before);
    });
}

#[test]
fn sources_dropped_while_readiness_is_delivered_leave_fd_count_unchanged() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    warm_up();
    let before = open_fds();
    let (tx, rx) = std::sync::mpsc::channel::<std::os::unix::net::UnixStream>();
    let writer = std::thread::spawn(move || {
        for mut peer in rx {
            let _ = peer.write_all(b"x");
        }
    });
    for _ in 0..1_000 {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = Async::new(a).unwrap();
        // Arm read interest (the poll registers and arms; the future is then dropped).
        let mut f = Box::pin(a.readable());
        assert!(future::block_on(future::poll_once(&mut f)).is_none());
        tx.send(b).unwrap();
        drop(f);
        drop(a);
    }
    drop(tx);
    writer.join().unwrap();
    assert_eq!(open_fds(), before);
}
