//! Unix-domain stream and datagram sockets.

use super::stream::{stream_traits, ListenerCore, StreamCore};
use super::sys::{self, Connect};
use super::unblock::unblock;
use crate::loom::Arc;
use crate::Async;
use futures_lite::Stream;
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::{self as std_unix, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A Unix-domain socket listening for connections.
///
/// # Examples
///
/// ```
/// use magpie_reactor::net::{UnixListener, UnixStream};
/// use futures_lite::future;
///
/// let dir = std::env::temp_dir().join(format!("magpie-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("listener.sock");
/// # let _ = std::fs::remove_file(&path);
/// future::block_on(async {
///     let listener = UnixListener::bind(&path)?;
///     let _client = UnixStream::connect(&path).await?;
///     let (_server, _addr) = listener.accept().await?;
///     std::io::Result::Ok(())
/// })?;
/// std::fs::remove_dir_all(&dir)?;
/// # std::io::Result::Ok(())
/// ```
pub struct UnixListener {
    core: ListenerCore<std_unix::UnixListener>,
}

impl UnixListener {
    /// Binds to `path` (which must not exist yet).
    ///
    /// # Errors
    /// The OS's `bind`/`listen` error (for example `AddrInUse` when the path exists).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        // Refused before the socket file is made (see `real_io`).
        crate::real_io::check()?;
        UnixListener::from_std(std_unix::UnixListener::bind(path)?)
    }

    /// Wraps a bound std listener.
    ///
    /// # Errors
    /// The OS's error when registering it with the reactor.
    pub fn from_std(listener: std_unix::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            core: ListenerCore::new(listener)?,
        })
    }

    /// Waits for and accepts a connection.
    ///
    /// # Errors
    /// The OS's `accept` error.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (core, addr) = self.core.accept().await?;
        Ok((UnixStream { core }, addr))
    }

    /// A never-ending stream of accepted connections.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The address this listener is bound to.
    ///
    /// # Errors
    /// The OS's `getsockname` error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.core.local_addr()
    }
}

stream_traits!(listener UnixListener);

/// The stream returned by [`UnixListener::incoming`].
#[must_use = "streams do nothing unless polled"]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Stream for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener
            .core
            .poll_accept(cx)
            .map(|accepted| Some(accepted.map(|core| UnixStream { core })))
    }
}

impl fmt::Debug for UnixIncoming<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixIncoming")
            .field("listener", self.listener)
            .finish()
    }
}

/// A Unix-domain stream connection.
///
/// Cloning is cheap and shares the socket, so one task can read while another writes.
///
/// # Examples
///
/// ```
/// use magpie_reactor::net::UnixStream;
/// use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
///
/// future::block_on(async {
///     let (mut a, mut b) = UnixStream::pair()?;
///     a.write_all(b"hi").await?;
///     let mut buf = [0; 2];
///     b.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
///     std::io::Result::Ok(())
/// })?;
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone)]
pub struct UnixStream {
    pub(super) core: StreamCore<std_unix::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// # Errors
    /// The OS's `connect` error (for example `NotFound` or `ConnectionRefused`).
    pub async fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        // Refused before the connect reaches a real listener (see `real_io`).
        crate::real_io::check()?;
        let path = path.as_ref();
        let fd = sys::socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
        match sys::connect_unix(fd.as_fd(), path)? {
            Connect::Done => UnixStream::from_std(std_unix::UnixStream::from(fd)),
            Connect::InProgress => {
                let stream = UnixStream::from_std(std_unix::UnixStream::from(fd))?;
                stream.core.io().writable().await?;
                match stream.core.get_ref().take_error()? {
                    Some(e) => Err(e),
                    None => Ok(stream),
                }
            }
            Connect::WouldBlock => {
                // The listener's backlog is full and Linux gives no readiness event for when
                // it drains: do a blocking connect on a helper thread instead.
                let path: PathBuf = path.to_owned();
                let stream = unblock(move || std_unix::UnixStream::connect(path))?.await?;
                UnixStream::from_std(stream)
            }
        }
    }

    /// A connected pair of anonymous sockets.
    ///
    /// # Errors
    /// The OS's `socketpair` error.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std_unix::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Wraps a connected std stream.
    ///
    /// # Errors
    /// The OS's error when registering it with the reactor.
    pub fn from_std(stream: std_unix::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            core: StreamCore::new(stream)?,
        })
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's `getsockname` error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.core.local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    /// The OS's `getpeername` error.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.core.peer_addr()
    }

    /// Shuts down the read half, the write half or both (for every clone of this stream).
    ///
    /// # Errors
    /// The OS's `shutdown` error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.core.shutdown(how)
    }
}

#[cfg(all(test, not(loom)))]
impl UnixStream {
    /// The stream's reactor source (for the crate's tests).
    pub(crate) fn source(&self) -> &crate::source::Source {
        &self.core.io().source
    }
}

// Unix stream reads always try the syscall (no short-read clearing as for TCP: see
// `StreamSocket::SHORT_READ_DRAINS`).
stream_traits!(stream UnixStream);

/// A Unix-domain datagram socket.
///
/// Cloning is cheap and shares the socket.
///
/// # Examples
///
/// ```
/// use magpie_reactor::net::UnixDatagram;
/// use futures_lite::future;
///
/// future::block_on(async {
///     let (a, b) = UnixDatagram::pair()?;
///     a.send(b"ping").await?;
///     let mut buf = [0; 8];
///     let n = b.recv(&mut buf).await?;
///     assert_eq!(&buf[..n], b"ping");
///     std::io::Result::Ok(())
/// })?;
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone)]
pub struct UnixDatagram {
    inner: Arc<Async<std_unix::UnixDatagram>>,
}

impl UnixDatagram {
    /// Binds to `path` (which must not exist yet).
    ///
    /// # Errors
    /// The OS's `bind` error.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        // Refused before the socket file is made (see `real_io`).
        crate::real_io::check()?;
        UnixDatagram::from_std(std_unix::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no address.
    ///
    /// # Errors
    /// The OS's `socket` error.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std_unix::UnixDatagram::unbound()?)
    }

    /// A connected pair of anonymous sockets.
    ///
    /// # Errors
    /// The OS's `socketpair` error.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std_unix::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Wraps a std datagram socket.
    ///
    /// # Errors
    /// The OS's error when registering it with the reactor.
    pub fn from_std(socket: std_unix::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: Arc::new(Async::new(socket)?),
        })
    }

    /// Sets the default peer for [`send`](UnixDatagram::send) / [`recv`](UnixDatagram::recv).
    ///
    /// # Errors
    /// The OS's `connect` error.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.inner.get_ref().connect(path)
    }

    /// Sends a datagram to the socket at `path`.
    ///
    /// # Errors
    /// The OS's `sendto` error.
    pub async fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.inner.write_with(|s| s.send_to(buf, path)).await
    }

    /// Receives a datagram; returns its length and sender.
    ///
    /// # Errors
    /// The OS's `recvfrom` error.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read_with(|s| s.recv_from(buf)).await
    }

    /// Sends a datagram to the connected peer.
    ///
    /// # Errors
    /// The OS's `send` error.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write_with(|s| s.send(buf)).await
    }

    /// Receives a datagram from the connected peer.
    ///
    /// # Errors
    /// The OS's `recv` error.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_with(|s| s.recv(buf)).await
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's `getsockname` error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    /// The OS's `getpeername` error.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// Shuts down the read half, the write half or both.
    ///
    /// # Errors
    /// The OS's `shutdown` error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.get_ref().fmt(f)
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}
