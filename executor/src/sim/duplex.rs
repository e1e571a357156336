//! In-memory byte streams for the deterministic runtime: a connected pair whose reads and
//! writes are cut short at points drawn from the run's seed, so that code which assumes one
//! `read` returns one whole message is caught the way a real network would catch it.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures_lite::io::{AsyncRead, AsyncWrite};

use super::rng;

/// One direction of a [`duplex`] pair: a bounded byte buffer.
#[derive(Debug)]
struct Pipe {
    bytes: VecDeque<u8>,
    capacity: usize,
    /// The writing end closed (or was dropped): reads drain what is left, then see the end.
    write_closed: bool,
    /// The reading end was dropped: writes fail with `BrokenPipe`.
    read_closed: bool,
    /// The task waiting to read (for bytes or the end).
    reader: Option<Waker>,
    /// The task waiting to write (for room).
    writer: Option<Waker>,
}

impl Pipe {
    fn new(capacity: usize) -> Arc<Mutex<Pipe>> {
        Arc::new(Mutex::new(Pipe {
            bytes: VecDeque::new(),
            capacity,
            write_closed: false,
            read_closed: false,
            reader: None,
            writer: None,
        }))
    }
}

fn lock(pipe: &Mutex<Pipe>) -> MutexGuard<'_, Pipe> {
    // A panic while holding the lock cannot leave a pipe half-updated (each critical section
    // below completes its updates before anything that can panic), so a poisoned lock is fine.
    pipe.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How many of `available` bytes one read or write moves: inside a simulation, a seeded number
/// from 1 to `available`; outside, all of them.
fn cut(available: usize) -> usize {
    rng::with(|rng| 1 + rng.below(available)).unwrap_or(available)
}

/// A connected pair of in-memory byte streams (`AsyncRead` + `AsyncWrite`): what one writes,
/// the other reads. Each direction buffers up to `capacity` bytes; a writer waits while its
/// direction is full.
///
/// Inside [`sim::run`](super::run) each read and write moves a seeded number of bytes — from
/// one to all that could move — as a socket may. Outside a simulation they move all they can.
/// Closing ([`AsyncWriteExt::close`](futures_lite::AsyncWriteExt::close)) or dropping one end
/// lets the other read what is left, then the end of the stream; writing to an end whose peer
/// was dropped fails with [`io::ErrorKind::BrokenPipe`].
///
/// # Panics
///
/// If `capacity` is zero.
///
/// # Examples
///
/// ```
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
///
/// magpie_executor::sim::run(1, async {
///     let (mut client, mut server) = magpie_executor::sim::duplex(64);
///     let echo = magpie_executor::spawn(async move {
///         let mut request = Vec::new();
///         server.read_to_end(&mut request).await.unwrap(); // however the bytes were cut
///         request
///     });
///     client.write_all(b"hello, server").await.unwrap();
///     client.close().await.unwrap();
///     assert_eq!(echo.await.unwrap(), b"hello, server");
/// });
/// ```
pub fn duplex(capacity: usize) -> (SimStream, SimStream) {
    assert!(
        capacity > 0,
        "magpie::sim::duplex: capacity must be at least 1 byte"
    );
    let (a_to_b, b_to_a) = (Pipe::new(capacity), Pipe::new(capacity));
    (
        SimStream {
            read: b_to_a.clone(),
            write: a_to_b.clone(),
        },
        SimStream {
            read: a_to_b,
            write: b_to_a,
        },
    )
}

/// One end of a [`duplex`] pair.
#[derive(Debug)]
pub struct SimStream {
    read: Arc<Mutex<Pipe>>,
    write: Arc<Mutex<Pipe>>,
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut pipe = lock(&self.read);
        if pipe.bytes.is_empty() {
            if pipe.write_closed {
                return Poll::Ready(Ok(0));
            }
            pipe.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = cut(pipe.bytes.len().min(buf.len()));
        for (slot, byte) in buf.iter_mut().zip(pipe.bytes.drain(..n)) {
            *slot = byte;
        }
        let writer = pipe.writer.take();
        drop(pipe);
        if let Some(writer) = writer {
            writer.wake();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.write);
        if pipe.read_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the other end of the duplex stream was dropped",
            )));
        }
        if pipe.write_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "this duplex stream was closed for writing",
            )));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = pipe.capacity - pipe.bytes.len();
        if room == 0 {
            pipe.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = cut(room.min(data.len()));
        pipe.bytes.extend(&data[..n]);
        let reader = pipe.reader.take();
        drop(pipe);
        if let Some(reader) = reader {
            reader.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is held back: written bytes are readable at once.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        close_write(&self.write);
        Poll::Ready(Ok(()))
    }
}

/// Marks the writing end of `pipe` closed and wakes its reader.
fn close_write(pipe: &Mutex<Pipe>) {
    let mut pipe = lock(pipe);
    pipe.write_closed = true;
    let reader = pipe.reader.take();
    drop(pipe);
    if let Some(reader) = reader {
        reader.wake();
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        close_write(&self.write);
        let mut pipe = lock(&self.read);
        pipe.read_closed = true;
        pipe.bytes.clear();
        let writer = pipe.writer.take();
        drop(pipe);
        if let Some(writer) = writer {
            writer.wake();
        }
    }
}
