//! TCP listener and stream.

use super::addr::{resolve, try_each, ToSocketAddrs};
use super::stream::{stream_traits, ListenerCore, StreamCore};
#[cfg(unix)]
use super::sys::{self, Connect};
use futures_lite::Stream;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
#[cfg(windows)]
use std::time::Duration;

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
    core: ListenerCore<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds to the first address of `addr` that works.
    ///
    /// # Errors
    /// The OS's error for the last address tried (for example `AddrInUse`), or the resolver's.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let addrs = resolve(addr.query()).await?;
        TcpListener::from_std(std::net::TcpListener::bind(&addrs[..])?)
    }

    /// Waits for and accepts a connection; returns the stream and the peer's address.
    ///
    /// # Errors
    /// The OS's `accept` error.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (core, peer) = self.core.accept().await?;
        Ok((TcpStream { core }, peer))
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
        self.core.local_addr()
    }

    /// Wraps a bound std listener.
    ///
    /// # Errors
    /// The OS's error when registering it with the reactor.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            core: ListenerCore::new(listener)?,
        })
    }
}

stream_traits!(listener TcpListener);

/// The stream returned by [`TcpListener::incoming`].
#[must_use = "streams do nothing unless polled"]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener
            .core
            .poll_accept(cx)
            .map(|accepted| Some(accepted.map(|core| TcpStream { core })))
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
    pub(super) core: StreamCore<std::net::TcpStream>,
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
            core: StreamCore::new(stream)?,
        })
    }

    /// The remote address.
    ///
    /// # Errors
    /// The OS's `getpeername` error.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.core.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's `getsockname` error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.core.local_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm when `true`).
    ///
    /// # Errors
    /// The OS's `setsockopt` error.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.core.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    /// The OS's `getsockopt` error.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.core.get_ref().nodelay()
    }

    /// Shuts down the read half, the write half or both (for every clone of this stream).
    ///
    /// # Errors
    /// The OS's `shutdown` error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.core.shutdown(how)
    }

    /// Makes closing the socket (dropping its last clone) **reset** the connection instead of
    /// ending it: unsent data is dropped and the peer gets an RST, not a FIN, so its next read
    /// fails with `ConnectionReset` (`SO_LINGER` on with a zero time). `false` restores the
    /// default: the close returns at once and the OS sends what is left, then a FIN.
    ///
    /// For aborting a connection on purpose (a server shedding a client, a test of resets).
    /// Non-zero linger times are not offered: with one, closing blocks the thread that drops
    /// the socket (an executor worker) on Linux, and fails on a non-blocking socket on Windows.
    ///
    /// # Errors
    /// The OS's `setsockopt` error.
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_reactor::net::{TcpListener, TcpStream};
    /// use futures_lite::{future, AsyncReadExt};
    ///
    /// future::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (mut server, _) = listener.accept().await?;
    ///     client.set_reset_on_close(true)?;
    ///     assert!(client.reset_on_close()?);
    ///     drop(client); // an RST, not a FIN
    ///     let err = server.read(&mut [0; 8]).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    ///     std::io::Result::Ok(())
    /// })?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn set_reset_on_close(&self, reset: bool) -> io::Result<()> {
        #[cfg(unix)]
        return sys::set_reset_on_close(self.core.as_source(), reset);
        #[cfg(windows)]
        return socket2::SockRef::from(&self.core.as_source())
            .set_linger(reset.then_some(Duration::ZERO));
    }

    /// Whether closing resets the connection (see [`TcpStream::set_reset_on_close`]).
    ///
    /// # Errors
    /// The OS's `getsockopt` error.
    pub fn reset_on_close(&self) -> io::Result<bool> {
        #[cfg(unix)]
        return sys::reset_on_close(self.core.as_source());
        #[cfg(windows)]
        return Ok(socket2::SockRef::from(&self.core.as_source()).linger()? == Some(Duration::ZERO));
    }

    /// Receives data without removing it from the queue.
    ///
    /// # Errors
    /// The OS's `recv` error.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.core.io().read_with(|s| s.peek(buf)).await
    }
}

#[cfg(all(test, not(loom), unix))]
impl TcpStream {
    /// The stream's reactor source (for the crate's tests).
    pub(crate) fn source(&self) -> &crate::source::Source {
        &self.core.io().source
    }

    /// The std stream inside (for the crate's tests).
    pub(crate) fn inner_std(&self) -> &std::net::TcpStream {
        self.core.get_ref()
    }
}

/// Connects to one address with a non-blocking `connect`.
#[cfg(unix)]
async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let fd = sys::socket(domain, libc::SOCK_STREAM)?;
    let state = sys::connect_ip(std::os::fd::AsFd::as_fd(&fd), addr)?;
    let stream = TcpStream::from_std(std::net::TcpStream::from(fd))?;
    match state {
        Connect::Done => return Ok(stream),
        Connect::InProgress => {}
        // For TCP, `EAGAIN` means no local port is free; no readiness will ever come for it, so
        // it is returned as the OS gave it.
        Connect::WouldBlock => return Err(io::Error::from_raw_os_error(libc::EAGAIN)),
    }
    wait_connected(stream).await
}

/// Connects to one address with a non-blocking `connect` (Windows: through socket2, which
/// also makes sure Winsock is started).
#[cfg(windows)]
async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    let in_progress = match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => false,
        // `WSAEWOULDBLOCK`: the connect goes on in the background.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
        Err(e) => return Err(e),
    };
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    if !in_progress {
        return Ok(stream);
    }
    wait_connected(stream).await
}

/// Waits until a connect in progress on `stream` ends; its error if it failed.
async fn wait_connected(stream: TcpStream) -> io::Result<TcpStream> {
    loop {
        stream.core.io().writable().await?;
        if let Some(e) = stream.core.get_ref().take_error()? {
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

stream_traits!(stream TcpStream);
