//! TCP listener and stream.

use super::addr::{resolve, try_each, ToSocketAddrs};
use super::sys::{self, Connect};
use crate::async_io::{attempt_for, Attempt};
use crate::loom::Arc;
use crate::source::Direction;
use crate::Async;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::Stream;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A TCP socket listening for connections.
///
/// # Examples
///
/// ```
/// use magpie_reactor::net::{TcpListener, TcpStream};
/// use futures_lite::future;
///
/// future::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (server, peer) = listener.accept().await?;
///     assert_eq!(peer, client.local_addr()?);
///     std::io::Result::Ok(())
/// })?;
/// # std::io::Result::Ok(())
/// ```
pub struct TcpListener {
    inner: Async<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds to the first address of `addr` that works.
    ///
    /// # Errors
    /// The OS's error for the last address tried (for example `AddrInUse`), or the resolver's.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let addrs = resolve(addr.query()).await?;
        let listener = std::net::TcpListener::bind(&addrs[..])?;
        Ok(TcpListener {
            inner: Async::new(listener)?,
        })
    }

    /// Waits for and accepts a connection; returns the stream and the peer's address.
    ///
    /// # Errors
    /// The OS's `accept` error.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.inner.read_with(|l| l.accept()).await?;
        Ok((TcpStream::from_std(stream)?, peer))
    }

    /// A never-ending stream of accepted connections.
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_reactor::net::{TcpListener, TcpStream};
    /// use futures_lite::{future, StreamExt};
    ///
    /// future::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let _client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let mut incoming = listener.incoming();
    ///     let stream = incoming.next().await.unwrap()?;
    ///     std::io::Result::Ok(())
    /// })?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address this listener is bound to.
    ///
    /// # Errors
    /// The OS's `getsockname` error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Wraps a bound std listener.
    ///
    /// # Errors
    /// The OS's error when registering it with the reactor.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: Async::new(listener)?,
        })
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.get_ref().fmt(f)
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

/// The stream returned by [`TcpListener::incoming`].
#[must_use = "streams do nothing unless polled"]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener
            .inner
            .poll_op(cx, Direction::Read, Attempt::NeedsReadiness, |l| l.accept())
            .map(|r| Some(r.and_then(|(s, _)| TcpStream::from_std(s))))
    }
}

impl fmt::Debug for Incoming<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("listener", self.listener)
            .finish()
    }
}

/// A TCP connection.
///
/// Cloning is cheap and shares the socket, so one task can read while another writes.
///
/// # Examples
///
/// ```
/// use magpie_reactor::net::{TcpListener, TcpStream};
/// use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
///
/// future::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (mut server, _) = listener.accept().await?;
///     // Write through one handle, read through a clone.
///     let (mut reader, mut writer) = (client.clone(), client);
///     writer.write_all(b"hi").await?;
///     let mut buf = [0; 2];
///     server.read_exact(&mut buf).await?;
///     server.write_all(&buf).await?;
///     reader.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
///     std::io::Result::Ok(())
/// })?;
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone)]
pub struct TcpStream {
    pub(super) inner: Arc<Async<std::net::TcpStream>>,
}

impl TcpStream {
    /// Connects to `addr`, trying each resolved address in turn.
    ///
    /// # Errors
    /// The OS's error for the last address tried (for example `ConnectionRefused`), or the
    /// resolver's.
    pub async fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        let addrs = resolve(addr.query()).await?;
        try_each(addrs, connect_one).await
    }

    /// Wraps a connected std stream.
    ///
    /// # Errors
    /// The OS's error when registering it with the reactor.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: Arc::new(Async::new(stream)?),
        })
    }

    /// The remote address.
    ///
    /// # Errors
    /// The OS's `getpeername` error.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's `getsockname` error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm when `true`).
    ///
    /// # Errors
    /// The OS's `setsockopt` error.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    /// The OS's `getsockopt` error.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.get_ref().nodelay()
    }

    /// Shuts down the read half, the write half or both (for every clone of this stream).
    ///
    /// # Errors
    /// The OS's `shutdown` error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)
    }

    /// Receives data without removing it from the queue.
    ///
    /// # Errors
    /// The OS's `recv` error.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_with(|s| s.peek(buf)).await
    }
}

#[cfg(all(test, not(loom)))]
impl TcpStream {
    /// The stream's reactor source (for the crate's tests).
    pub(crate) fn source(&self) -> &crate::source::Source {
        &self.inner.source
    }

    /// The std stream inside (for the crate's tests).
    pub(crate) fn inner_std(&self) -> &std::net::TcpStream {
        self.inner.get_ref()
    }
}

/// Connects to one address with a non-blocking `connect`.
async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let fd = sys::socket(domain, libc::SOCK_STREAM)?;
    let state = sys::connect_ip(fd.as_fd(), addr)?;
    let stream = TcpStream::from_std(std::net::TcpStream::from(fd))?;
    match state {
        Connect::Done => return Ok(stream),
        Connect::InProgress => {}
        // For TCP, `EAGAIN` means no local port is free; no readiness will ever come for it, so
        // it is returned as the OS gave it.
        Connect::WouldBlock => return Err(io::Error::from_raw_os_error(libc::EAGAIN)),
    }
    loop {
        stream.inner.writable().await?;
        if let Some(e) = stream.inner.get_ref().take_error()? {
            return Err(e);
        }
        match stream.peer_addr() {
            Ok(_) => return Ok(stream),
            // Spurious readiness: still connecting.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
            Err(e) => return Err(e),
        }
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.get_ref().fmt(f)
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

macro_rules! stream_io {
    ($ty:ty, $std:ty, $shutdown:path) => {
        $crate::net::tcp::stream_io!($ty, $std, $shutdown, poll_op);
    };
    // `$read` is the `Async` method reads go through: `poll_stream_read` (TCP: a short read
    // clears read readiness) or `poll_op` (always try the syscall; see `unix.rs` for why).
    ($ty:ty, $std:ty, $shutdown:path, $read:ident) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                let len = buf.len();
                $crate::net::tcp::stream_read!(self.inner, $read, cx, len, |mut s: &$std| s
                    .read(buf))
            }

            fn poll_read_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &mut [IoSliceMut<'_>],
            ) -> Poll<io::Result<usize>> {
                // Only the buffers one `readv` can fill count: std passes at most
                // `READV_MAX_BUFFERS` of them, and a read that filled those is not short.
                let len: usize = bufs
                    .iter()
                    .take($crate::net::tcp::READV_MAX_BUFFERS)
                    .map(|b| b.len())
                    .sum();
                $crate::net::tcp::stream_read!(self.inner, $read, cx, len, |mut s: &$std| s
                    .read_vectored(bufs))
            }
        }

        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.inner.poll_op(
                    cx,
                    Direction::Write,
                    Attempt::for_len(buf.len()),
                    |mut s: &$std| s.write(buf),
                )
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.inner
                    .poll_op(cx, Direction::Write, attempt_for(bufs), |mut s: &$std| {
                        s.write_vectored(bufs)
                    })
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                // Sockets have no user-space buffer.
                Poll::Ready(Ok(()))
            }

            /// Shuts down the write half (for every clone), so the peer reads end-of-stream.
            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.inner.get_ref().shutdown($shutdown))
            }
        }
    };
}
pub(crate) use stream_io;

/// One read through `$inner.$read`: `poll_op` takes a direction, `poll_stream_read` the
/// requested length.
/// The most buffers one `readv` is given: std's `read_vectored` passes at most `UIO_MAXIOV`
/// (1024 on Linux, the only platform where a short read clears readiness) and ignores the
/// rest, so a vectored read over more buffers fills at most these and must not be judged
/// short against the whole list (regression: `a_vectored_read_over_more_than_iov_max_buffers_keeps_readiness`).
pub(crate) const READV_MAX_BUFFERS: usize = 1024;

macro_rules! stream_read {
    ($inner:expr, poll_op, $cx:expr, $len:expr, $op:expr) => {
        $inner.poll_op($cx, Direction::Read, Attempt::for_len($len), $op)
    };
    ($inner:expr, poll_stream_read, $cx:expr, $len:expr, $op:expr) => {
        $inner.poll_stream_read($cx, $len, $op)
    };
}
pub(crate) use stream_read;

// A TCP read stops short only when the receive queue runs dry (or at a pending end-of-stream,
// error or urgent mark, which the reactor flags as `suspect`), so a short read may clear read
// readiness.
stream_io!(
    TcpStream,
    std::net::TcpStream,
    Shutdown::Write,
    poll_stream_read
);
stream_io!(
    &TcpStream,
    std::net::TcpStream,
    Shutdown::Write,
    poll_stream_read
);
