//! Tests of read-readiness clearing: a short TCP read clears the read direction's readiness
//! (so the next read waits without a failing syscall), and every case where clearing it would
//! lose a wake-up — and so hang — still completes.

use crate::net::{TcpStream, UnixStream};
use crate::source::{Direction, Source};
use crate::tests::{beside_others, wait_until, CountingWaker, SAFETY};
use futures_lite::{future, AsyncRead, AsyncReadExt, AsyncWriteExt};
use std::io::{self, Write};
use std::net::{Shutdown, TcpListener};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Runs `f` on its own thread and fails the test (instead of hanging it) if it has not
/// finished within the safety net — a lost wake-up shows up as that failure.
fn must_finish<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(SAFETY)
        .expect("the operation never completed: a wake-up was lost")
}

fn poll_read(s: &mut TcpStream, buf: &mut [u8], waker: &Waker) -> Poll<io::Result<usize>> {
    Pin::new(s).poll_read(&mut Context::from_waker(waker), buf)
}

/// A magpie stream and the blocking std peer it is connected to, with the registration-time
/// report already dispatched.
fn tcp_pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    peer.set_nodelay(true).unwrap();
    let stream = TcpStream::from_std(accepted).unwrap();
    // A fresh connected socket is writable, so epoll reports it once when it is added.
    wait_until(|| stream.source().tick(Direction::Write) != 0);
    (stream, peer)
}

/// Makes `s`'s read direction confirmed empty (a read that returns `WouldBlock` and registers
/// `waker`), which also clears the `suspect` mark a new source starts with.
fn drain_to_would_block(s: &mut TcpStream, waker: &Waker) {
    let mut buf = [0u8; 64];
    assert!(poll_read(s, &mut buf, waker).is_pending());
    assert!(!s.source().is_ready(Direction::Read));
    assert!(!s.source().is_suspect(Direction::Read));
}

/// Writes `data` from the peer and waits until the reactor has dispatched the read edge.
fn peer_sends(stream: &TcpStream, peer: &mut std::net::TcpStream, data: &[u8]) {
    let t = stream.source().tick(Direction::Read);
    peer.write_all(data).unwrap();
    wait_until(|| stream.source().tick(Direction::Read) != t);
}

/// A connected pair whose magpie side has a confirmed-empty read direction (not suspect), then
/// `data` from the peer with its read edge dispatched and its wake delivered; `wakes` counts
/// the wakes of `waker`, which is no longer registered (that edge took it).
struct PendingData {
    s: TcpStream,
    peer: std::net::TcpStream,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    wakes: Arc<CountingWaker>,
    waker: Waker,
}

fn pair_with_pending(data: &[u8]) -> PendingData {
    let (mut s, mut peer) = tcp_pair();
    let wakes = Arc::new(CountingWaker::default());
    let waker = Waker::from(wakes.clone());
    drain_to_would_block(&mut s, &waker);
    peer_sends(&s, &mut peer, data);
    // The reactor moves the tick under the source's lock but wakes the waiters it took after
    // releasing it: wait for that wake too, or it could land later and pass for the wake of an
    // edge a test is waiting for.
    wait_until(|| wakes.wakes.load(Ordering::SeqCst) >= 1);
    PendingData {
        s,
        peer,
        wakes,
        waker,
    }
}

// Linux only: elsewhere every read edge is `suspect` (the reactor cannot tell a pending
// end-of-stream from data there), so a short read never clears readiness.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_short_tcp_read_clears_read_readiness_and_the_next_edge_wakes_the_reader() {
    let _sources = beside_others();
    let PendingData {
        mut s,
        mut peer,
        wakes: c,
        waker,
    } = pair_with_pending(b"abc");
    let mut buf = [0u8; 16];
    assert!(matches!(
        poll_read(&mut s, &mut buf, &waker),
        Poll::Ready(Ok(3))
    ));
    assert_eq!(&buf[..3], b"abc");
    // Fewer bytes than asked for: the queue is empty, readiness is cleared ...
    assert!(!s.source().is_ready(Direction::Read));
    // ... so the next read registers its waker without trying.
    let wakes = c.wakes.load(Ordering::SeqCst);
    assert!(poll_read(&mut s, &mut buf, &waker).is_pending());
    assert_eq!(s.source().waiter_count(Direction::Read), 1);
    // New data is a new edge: the reader is woken and reads it.
    peer.write_all(b"d").unwrap();
    wait_until(|| c.wakes.load(Ordering::SeqCst) > wakes);
    assert!(matches!(
        poll_read(&mut s, &mut buf, &waker),
        Poll::Ready(Ok(1))
    ));
    assert_eq!(buf[0], b'd');
}

#[test]
fn a_read_that_fills_the_buffer_exactly_keeps_readiness() {
    let _sources = beside_others();
    let PendingData {
        mut s,
        peer: _peer, // kept open: closing it would end the stream
        waker,
        wakes: _,
    } = pair_with_pending(&[7u8; 16]);
    // Exactly 8 of the 16 bytes: more may be queued, so readiness must stay set and the next
    // read must get the rest without any further edge (the peer sends nothing more).
    let mut buf = [0u8; 8];
    assert!(matches!(
        poll_read(&mut s, &mut buf, &waker),
        Poll::Ready(Ok(8))
    ));
    assert!(s.source().is_ready(Direction::Read));
    assert!(matches!(
        poll_read(&mut s, &mut buf, &waker),
        Poll::Ready(Ok(8))
    ));
    assert_eq!(buf, [7u8; 8]);
    // Now genuinely empty: the third read waits.
    assert!(poll_read(&mut s, &mut buf, &waker).is_pending());
}

#[test]
fn end_of_stream_behind_a_short_read_is_still_seen() {
    let _sources = beside_others();
    let (mut s, mut peer) = tcp_pair();
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    drain_to_would_block(&mut s, &waker);
    // Data and the end-of-stream, both reported before the read: the read returns the data
    // short and leaves the end-of-stream queued, with no edge to come for it.
    peer.write_all(b"last").unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    wait_until(|| s.source().is_suspect(Direction::Read));
    let mut buf = [0u8; 16];
    assert!(matches!(
        poll_read(&mut s, &mut buf, &waker),
        Poll::Ready(Ok(4))
    ));
    // The edge came with the hang-up: the short read must not clear readiness ...
    assert!(s.source().is_ready(Direction::Read));
    // ... and the next read returns end-of-stream at once.
    assert!(matches!(
        poll_read(&mut s, &mut buf, &waker),
        Poll::Ready(Ok(0))
    ));
    assert!(matches!(
        poll_read(&mut s, &mut buf, &waker),
        Poll::Ready(Ok(0))
    ));
}

// Linux only: elsewhere every read edge is `suspect` (the reactor cannot tell a pending
// end-of-stream from data there), so a short read never clears readiness.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn end_of_stream_after_a_cleared_short_read_wakes_the_reader() {
    let _sources = beside_others();
    let PendingData {
        mut s,
        peer,
        wakes: c,
        waker,
    } = pair_with_pending(b"abc");
    let mut buf = [0u8; 16];
    assert!(matches!(
        poll_read(&mut s, &mut buf, &waker),
        Poll::Ready(Ok(3))
    ));
    assert!(!s.source().is_ready(Direction::Read));
    assert!(poll_read(&mut s, &mut buf, &waker).is_pending());
    let wakes = c.wakes.load(Ordering::SeqCst);
    peer.shutdown(Shutdown::Write).unwrap();
    wait_until(|| c.wakes.load(Ordering::SeqCst) > wakes);
    assert!(matches!(
        poll_read(&mut s, &mut buf, &waker),
        Poll::Ready(Ok(0))
    ));
}

#[test]
fn a_reset_behind_a_short_read_is_still_seen() {
    let _sources = beside_others();
    let (mut s, peer) = tcp_pair();
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    drain_to_would_block(&mut s, &waker);
    // Linger 0: closing with data unsent to us aborts with a reset instead of a FIN.
    let mut peer = peer;
    peer.write_all(b"xy").unwrap();
    set_linger_zero(&peer);
    drop(peer);
    wait_until(|| s.source().is_suspect(Direction::Read));
    // Whatever the kernel kept, reading ends (data, then the reset or end-of-stream) without
    // ever waiting.
    let mut buf = [0u8; 16];
    for _ in 0..3 {
        match poll_read(&mut s, &mut buf, &waker) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return,
            Poll::Ready(Ok(_)) => {}
            Poll::Pending => panic!("the reset was lost behind a short read"),
        }
    }
    panic!("reading never reached the reset");
}

fn set_linger_zero(s: &std::net::TcpStream) {
    use std::os::fd::AsFd;
    crate::net::sys::set_reset_on_close(s.as_fd(), true).expect("setsockopt(SO_LINGER)");
}

#[test]
fn a_peer_writing_in_bursts_is_read_completely() {
    let _sources = beside_others();
    // The peer writes bursts of varying sizes with pauses of varying length in between, so
    // some bursts arrive while the reader is between its short read and its next wait, and
    // some while it waits: every byte must arrive.
    const BURSTS: usize = 300;
    let (mut s, mut peer) = tcp_pair();
    let writer = std::thread::spawn(move || {
        let mut sent = Vec::new();
        for i in 0..BURSTS {
            let burst: Vec<u8> = (0..1 + i % 37).map(|j| (i * 31 + j) as u8).collect();
            peer.write_all(&burst).unwrap();
            sent.extend_from_slice(&burst);
            if i % 3 == 0 {
                std::thread::yield_now();
            }
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        peer.shutdown(Shutdown::Write).unwrap();
        sent
    });
    let received = must_finish(move || {
        future::block_on(async move {
            let mut all = Vec::new();
            let mut buf = [0u8; 64];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return all;
                }
                all.extend_from_slice(&buf[..n]);
            }
        })
    });
    assert_eq!(received, writer.join().unwrap());
}

#[test]
fn a_concurrent_reader_and_writer_on_one_socket_keep_going() {
    let _sources = beside_others();
    // One socket, a reader task and a writer task (through clones) on two executor threads,
    // against an echo peer: the writer's edges (write direction) and the reader's short reads
    // (read direction) interleave on the same source.
    const ROUNDS: usize = 2_000;
    let (s, peer) = tcp_pair();
    let echo = std::thread::spawn(move || {
        let mut peer = peer;
        let mut buf = [0u8; 256];
        loop {
            let n = io::Read::read(&mut peer, &mut buf).unwrap();
            if n == 0 {
                return;
            }
            peer.write_all(&buf[..n]).unwrap();
        }
    });
    let total = must_finish(move || {
        let ex = Arc::new(async_executor::Executor::new());
        let (stop, stopped) = async_channel_stop();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (ex, stopped) = (ex.clone(), stopped.clone());
                std::thread::spawn(move || future::block_on(ex.run(stopped.wait())))
            })
            .collect();
        let (mut reader, mut writer) = (s.clone(), s);
        let w = ex.spawn(async move {
            for i in 0..ROUNDS {
                writer.write_all(&[(i % 251) as u8; 3]).await.unwrap();
                if i % 64 == 0 {
                    future::yield_now().await;
                }
            }
            writer.close().await.unwrap();
        });
        let r = ex.spawn(async move {
            let mut got = 0usize;
            let mut buf = [0u8; 128];
            loop {
                let n = reader.read(&mut buf).await.unwrap();
                if n == 0 {
                    return got;
                }
                got += n;
            }
        });
        let total = future::block_on(async {
            w.await;
            r.await
        });
        stop.stop();
        for t in threads {
            t.join().unwrap();
        }
        total
    });
    assert_eq!(total, 3 * ROUNDS);
    echo.join().unwrap();
}

/// A one-shot stop signal for the executor threads.
fn async_channel_stop() -> (Stop, Stopped) {
    let flag = Arc::new(std::sync::Mutex::new((false, Vec::<Waker>::new())));
    (Stop(flag.clone()), Stopped(flag))
}

struct Stop(Arc<std::sync::Mutex<(bool, Vec<Waker>)>>);

impl Stop {
    fn stop(self) {
        let wakers = {
            let mut g = self.0.lock().unwrap();
            g.0 = true;
            std::mem::take(&mut g.1)
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

#[derive(Clone)]
struct Stopped(Arc<std::sync::Mutex<(bool, Vec<Waker>)>>);

impl Stopped {
    async fn wait(self) {
        future::poll_fn(|cx| {
            let mut g = self.0.lock().unwrap();
            if g.0 {
                Poll::Ready(())
            } else {
                g.1.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

#[test]
fn a_short_unix_stream_read_keeps_readiness() {
    let _sources = beside_others();
    // Unix stream reads can stop short with data still queued, so they never clear it.
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut a = UnixStream::from_std(a).unwrap();
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    let source: &Source = a.source();
    wait_until(|| source.tick(Direction::Write) != 0);
    let mut buf = [0u8; 16];
    assert!(Pin::new(&mut a)
        .poll_read(&mut Context::from_waker(&waker), &mut buf)
        .is_pending());
    let t = a.source().tick(Direction::Read);
    b.write_all(b"abc").unwrap();
    wait_until(|| a.source().tick(Direction::Read) != t);
    assert!(matches!(
        Pin::new(&mut a).poll_read(&mut Context::from_waker(&waker), &mut buf),
        Poll::Ready(Ok(3))
    ));
    assert!(a.source().is_ready(Direction::Read));
}

#[test]
fn an_edge_between_a_short_read_and_the_clearing_keeps_readiness() {
    let _sources = beside_others();
    let PendingData {
        mut s,
        mut peer,
        waker,
        wakes: _,
    } = pair_with_pending(b"abc");
    // The `poll_stream_read` steps, with new data arriving — and its edge dispatched — after
    // the short read and before the clearing.
    let t = s.source().tick(Direction::Read);
    let mut buf = [0u8; 16];
    assert_eq!(io::Read::read(&mut s.inner_std(), &mut buf).unwrap(), 3);
    peer_sends(&s, &mut peer, b"d");
    s.source().clear_after_short_read(Direction::Read, t);
    // That edge is the only report of "d": readiness must stay, and the next read gets it.
    assert!(s.source().is_ready(Direction::Read));
    assert!(matches!(
        poll_read(&mut s, &mut buf, &waker),
        Poll::Ready(Ok(1))
    ));
    assert_eq!(buf[0], b'd');
}

#[test]
fn operations_that_need_no_readiness_still_complete_while_not_ready() {
    let _sources = beside_others();
    use futures_lite::AsyncWrite;
    let (mut s, _peer) = tcp_pair();
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    let mut cx = Context::from_waker(&waker);
    drain_to_would_block(&mut s, &waker);
    // Fill the send path until a write blocks: the write direction is then known not ready.
    let chunk = [0u8; 64 * 1024];
    let mut filled = false;
    for _ in 0..10_000 {
        if Pin::new(&mut s).poll_write(&mut cx, &chunk).is_pending() {
            filled = true;
            break;
        }
    }
    assert!(filled, "the socket never filled up");
    assert!(!s.source().is_ready(Direction::Write));
    // Flushing and a zero-length write still complete at once.
    assert!(matches!(
        Pin::new(&mut s).poll_flush(&mut cx),
        Poll::Ready(Ok(()))
    ));
    assert!(matches!(
        Pin::new(&mut s).poll_write(&mut cx, &[]),
        Poll::Ready(Ok(0))
    ));
}

#[test]
fn flushing_an_async_whose_write_direction_is_not_ready_completes() {
    let _sources = beside_others();
    use futures_lite::AsyncWrite;
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut a = crate::Async::new(a).unwrap();
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    let mut cx = Context::from_waker(&waker);
    let chunk = [0u8; 64 * 1024];
    let mut filled = false;
    for _ in 0..10_000 {
        if Pin::new(&mut a).poll_write(&mut cx, &chunk).is_pending() {
            filled = true;
            break;
        }
    }
    assert!(filled, "the socket never filled up");
    assert!(!a.source.is_ready(Direction::Write));
    // `flush` on a socket never blocks: it must not be skipped to wait for writability.
    assert!(matches!(
        Pin::new(&mut a).poll_flush(&mut cx),
        Poll::Ready(Ok(()))
    ));
    assert!(matches!(
        Pin::new(&mut &a).poll_flush(&mut cx),
        Poll::Ready(Ok(()))
    ));
}

/// Regression: a vectored read over more buffers than one `readv` takes (std passes at most
/// 1024) was judged short against all of them, cleared readiness with bytes still queued, and
/// the next read waited for an edge that never came.
#[test]
fn a_vectored_read_over_more_than_iov_max_buffers_keeps_readiness() {
    let _sources = beside_others();
    use std::io::IoSliceMut;
    let PendingData {
        mut s,
        peer: _peer, // kept open: closing it would end the stream
        waker,
        wakes: _,
    } = pair_with_pending(&[9u8; 1500]);
    let mut store = vec![[0u8; 1]; 2000];
    let mut bufs: Vec<IoSliceMut<'_>> = store.iter_mut().map(|b| IoSliceMut::new(b)).collect();
    let r = Pin::new(&mut s).poll_read_vectored(&mut Context::from_waker(&waker), &mut bufs);
    assert!(matches!(r, Poll::Ready(Ok(1024))), "{r:?}");
    assert!(s.source().is_ready(Direction::Read));
    let mut buf = [0u8; 1024];
    let r = poll_read(&mut s, &mut buf, &waker);
    assert!(
        matches!(r, Poll::Ready(Ok(476))),
        "476 bytes are queued, yet the read waits: {r:?}"
    );
}
