//! The core that TCP and Unix-domain streams and listeners share (one job: a connected stream
//! socket's I/O, and a listener's accepts, on the reactor, written once for both families).
//!
//! [`StreamCore`] is a stream socket in an [`Async`] behind an `Arc` (so that clones share it):
//! reads, vectored reads, writes, vectored writes and `close`. [`ListenerCore`] accepts into
//! it. The public types (`TcpStream`, `UnixStream`, `TcpListener`, `UnixListener`) hold a core
//! and add what only their family has (connecting, `TCP_NODELAY`, `peek`, socket pairs); the
//! [`stream_traits!`] macro gives them the I/O traits, each a one-line call into the core.
//!
//! What differs between the families is in [`StreamSocket`] and [`ListenerSocket`], implemented
//! once for each std type at the end of this file: the address type, and whether a short read
//! proves the receive queue empty ([`StreamSocket::SHORT_READ_DRAINS`]).

use crate::async_io::{attempt_for, Attempt};
use crate::loom::Arc;
use crate::os::{self, AsSource, BorrowedSource};
use crate::source::Direction;
use crate::Async;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
#[cfg(unix)]
use std::os::unix::net as std_unix;
use std::task::{Context, Poll};

/// A std stream socket type the core can drive.
pub(crate) trait StreamSocket:
    AsSource + fmt::Debug + Sized + Send + Sync + 'static
{
    /// The family's socket address.
    type Addr;

    /// Whether a read that returns fewer bytes than asked proves the receive queue empty, so
    /// that it may clear read readiness without one more (`EAGAIN`) call. True for TCP: its
    /// reads stop short only when the queue runs dry (or at a pending end-of-stream, error or
    /// urgent mark, which the reactor flags as `suspect`). False for Unix streams: a Unix read
    /// can also stop short with data still queued — at a message carrying file descriptors, or
    /// between writers with different credentials when `SO_PASSCRED` is set — and no new edge
    /// would report those bytes.
    const SHORT_READ_DRAINS: bool;

    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize>;
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    fn local_addr(&self) -> io::Result<Self::Addr>;
    fn peer_addr(&self) -> io::Result<Self::Addr>;
}

/// A std listener type the core can drive.
pub(crate) trait ListenerSocket: AsSource + fmt::Debug + Send + Sync + 'static {
    /// The streams it accepts.
    type Stream: StreamSocket;

    fn accept(&self) -> io::Result<(Self::Stream, <Self::Stream as StreamSocket>::Addr)>;
    fn local_addr(&self) -> io::Result<<Self::Stream as StreamSocket>::Addr>;
}

/// The most buffers one `readv` is given: std's `read_vectored` passes at most `UIO_MAXIOV`
/// (1024 on Linux, the only platform where a short read clears readiness) and ignores the
/// rest, so a vectored read over more buffers fills at most these and must not be judged
/// short against the whole list (regression: `a_vectored_read_over_more_than_iov_max_buffers_keeps_readiness`).
const READV_MAX_BUFFERS: usize = 1024;

/// A connected stream socket on the reactor; clones share it.
pub(crate) struct StreamCore<S> {
    io: Arc<Async<S>>,
}

impl<S> Clone for StreamCore<S> {
    fn clone(&self) -> Self {
        StreamCore {
            io: self.io.clone(),
        }
    }
}

impl<S: StreamSocket> StreamCore<S> {
    /// Registers a connected std stream with the reactor.
    pub(crate) fn new(stream: S) -> io::Result<Self> {
        Ok(StreamCore {
            io: Arc::new(Async::new(stream)?),
        })
    }

    /// The socket on the reactor (for what only one family does: connecting, `peek`).
    pub(crate) fn io(&self) -> &Async<S> {
        &self.io
    }

    pub(crate) fn get_ref(&self) -> &S {
        self.io.get_ref()
    }

    pub(crate) fn local_addr(&self) -> io::Result<S::Addr> {
        self.get_ref().local_addr()
    }

    pub(crate) fn peer_addr(&self) -> io::Result<S::Addr> {
        self.get_ref().peer_addr()
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.get_ref().shutdown(how)
    }

    /// One read of at most `len` bytes by `op`, waiting for readiness as the family's reads
    /// must (see [`StreamSocket::SHORT_READ_DRAINS`]). Also what hyper's reads go through.
    #[inline]
    pub(crate) fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        op: impl FnMut(&S) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        if S::SHORT_READ_DRAINS {
            self.io.poll_stream_read(cx, len, op)
        } else {
            self.io
                .poll_op(cx, Direction::Read, Attempt::for_len(len), op)
        }
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.poll_read_with(cx, len, |s| s.read(buf))
    }

    pub(crate) fn poll_read_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        // Only the buffers one `readv` can fill count: a read that filled those is not short.
        let len = bufs.iter().take(READV_MAX_BUFFERS).map(|b| b.len()).sum();
        self.poll_read_with(cx, len, |s| s.read_vectored(bufs))
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io
            .poll_op(cx, Direction::Write, Attempt::for_len(buf.len()), |s| {
                s.write(buf)
            })
    }

    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io
            .poll_op(cx, Direction::Write, attempt_for(bufs), |s| {
                s.write_vectored(bufs)
            })
    }

    /// Shuts down the write half (for every clone), so the peer reads end-of-stream.
    pub(crate) fn close(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl<S: StreamSocket> fmt::Debug for StreamCore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get_ref().fmt(f)
    }
}

impl<S: StreamSocket> StreamCore<S> {
    /// The socket's descriptor (Windows: socket), for the public types' `AsFd`/`AsSocket`.
    pub(crate) fn as_source(&self) -> BorrowedSource<'_> {
        os::borrow(self.io.get_ref())
    }
}

/// A listening socket on the reactor.
pub(crate) struct ListenerCore<L> {
    io: Async<L>,
}

impl<L: ListenerSocket> ListenerCore<L> {
    /// Registers a bound std listener with the reactor.
    pub(crate) fn new(listener: L) -> io::Result<Self> {
        Ok(ListenerCore {
            io: Async::new(listener)?,
        })
    }

    /// Waits for and accepts a connection.
    pub(crate) async fn accept(
        &self,
    ) -> io::Result<(StreamCore<L::Stream>, <L::Stream as StreamSocket>::Addr)> {
        let (stream, addr) = self.io.read_with(|l| l.accept()).await?;
        Ok((StreamCore::new(stream)?, addr))
    }

    /// One poll of an accept, for the `Incoming` streams.
    pub(crate) fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<StreamCore<L::Stream>>> {
        self.io
            .poll_op(cx, Direction::Read, Attempt::NeedsReadiness, |l| l.accept())
            .map(|accepted| accepted.and_then(|(stream, _)| StreamCore::new(stream)))
    }

    pub(crate) fn local_addr(&self) -> io::Result<<L::Stream as StreamSocket>::Addr> {
        self.io.get_ref().local_addr()
    }
}

impl<L: ListenerSocket> fmt::Debug for ListenerCore<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.get_ref().fmt(f)
    }
}

impl<L: ListenerSocket> ListenerCore<L> {
    /// The socket's descriptor (Windows: socket), for the public types' `AsFd`/`AsSocket`.
    pub(crate) fn as_source(&self) -> BorrowedSource<'_> {
        os::borrow(self.io.get_ref())
    }
}

/// `AsyncRead`, `AsyncWrite` (for the type and for a shared reference to it, so that one task
/// can read while another writes), `Debug`, `AsFd` and `AsRawFd` (Windows: `AsSocket` and
/// `AsRawSocket`) for a public stream or
/// listener type whose `core` field is a [`StreamCore`] or [`ListenerCore`].
macro_rules! stream_traits {
    (stream $ty:ty) => {
        $crate::net::stream::stream_traits!(io $ty);
        $crate::net::stream::stream_traits!(io &$ty);
        $crate::net::stream::stream_traits!(fd $ty);
    };
    (listener $ty:ty) => {
        $crate::net::stream::stream_traits!(fd $ty);
    };
    (io $ty:ty) => {
        impl futures_lite::io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.core.poll_read(cx, buf)
            }

            fn poll_read_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.core.poll_read_vectored(cx, bufs)
            }
        }

        impl futures_lite::io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.core.poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.core.poll_write_vectored(cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                // Sockets have no user-space buffer.
                std::task::Poll::Ready(Ok(()))
            }

            /// Shuts down the write half (for every clone), so the peer reads end-of-stream.
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.core.close())
            }
        }
    };
    (fd $ty:ty) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.core.fmt(f)
            }
        }

        #[cfg(unix)]
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.core.as_source()
            }
        }

        #[cfg(unix)]
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.core.as_source())
            }
        }

        #[cfg(windows)]
        impl std::os::windows::io::AsSocket for $ty {
            fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
                self.core.as_source()
            }
        }

        #[cfg(windows)]
        impl std::os::windows::io::AsRawSocket for $ty {
            fn as_raw_socket(&self) -> std::os::windows::io::RawSocket {
                std::os::windows::io::AsRawSocket::as_raw_socket(&self.core.as_source())
            }
        }
    };
}
pub(crate) use stream_traits;

/// [`StreamSocket`] and [`ListenerSocket`] for a std stream and listener of one family.
macro_rules! socket_family {
    ($stream:ty, $listener:ty, $addr:ty, short_read_drains: $drains:literal) => {
        impl StreamSocket for $stream {
            type Addr = $addr;
            const SHORT_READ_DRAINS: bool = $drains;

            fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
                (&mut &*self).read(buf)
            }
            fn read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                (&mut &*self).read_vectored(bufs)
            }
            fn write(&self, buf: &[u8]) -> io::Result<usize> {
                (&mut &*self).write(buf)
            }
            fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                (&mut &*self).write_vectored(bufs)
            }
            fn shutdown(&self, how: Shutdown) -> io::Result<()> {
                <$stream>::shutdown(self, how)
            }
            fn local_addr(&self) -> io::Result<$addr> {
                <$stream>::local_addr(self)
            }
            fn peer_addr(&self) -> io::Result<$addr> {
                <$stream>::peer_addr(self)
            }
        }

        impl ListenerSocket for $listener {
            type Stream = $stream;

            fn accept(&self) -> io::Result<($stream, $addr)> {
                <$listener>::accept(self)
            }
            fn local_addr(&self) -> io::Result<$addr> {
                <$listener>::local_addr(self)
            }
        }
    };
}

socket_family!(
    std::net::TcpStream,
    std::net::TcpListener,
    std::net::SocketAddr,
    short_read_drains: true
);
#[cfg(unix)]
socket_family!(
    std_unix::UnixStream,
    std_unix::UnixListener,
    std_unix::SocketAddr,
    short_read_drains: false
);
