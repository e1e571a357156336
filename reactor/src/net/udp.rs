//! UDP socket.

use super::addr::{no_addresses, resolve, ToSocketAddrs};
use crate::loom::Arc;
use crate::Async;
use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A UDP socket.
///
/// Cloning is cheap and shares the socket, so several tasks can send and receive at once.
///
/// # Examples
///
/// ```
/// use magpie_reactor::net::UdpSocket;
/// use futures_lite::future;
///
/// future::block_on(async {
///     let a = UdpSocket::bind("127.0.0.1:0").await?;
///     let b = UdpSocket::bind("127.0.0.1:0").await?;
///     a.send_to(b"ping", b.local_addr()?).await?;
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     std::io::Result::Ok(())
/// })?;
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone)]
pub struct UdpSocket {
    inner: Arc<Async<std::net::UdpSocket>>,
}

impl UdpSocket {
    /// Binds to the first address of `addr` that works.
    ///
    /// # Errors
    /// The OS's error for the last address tried (for example `AddrInUse`), or the resolver's.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let addrs = resolve(addr.query()).await?;
        UdpSocket::from_std(std::net::UdpSocket::bind(&addrs[..])?)
    }

    /// Wraps a bound std socket.
    ///
    /// # Errors
    /// The OS's error when registering it with the reactor.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: Arc::new(Async::new(socket)?),
        })
    }

    /// The local address.
    ///
    /// # Errors
    /// The OS's `getsockname` error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// The address of the connected peer.
    ///
    /// # Errors
    /// `NotConnected` if [`UdpSocket::connect`] was not called, or another OS error.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// Sets the default peer for [`send`](UdpSocket::send) / [`recv`](UdpSocket::recv) and
    /// filters incoming datagrams to it.
    ///
    /// # Errors
    /// The OS's `connect` error, or the resolver's.
    pub async fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let addrs = resolve(addr.query()).await?;
        self.inner.get_ref().connect(&addrs[..])
    }

    /// Sends a datagram to the first resolved address of `addr`; returns the bytes sent.
    ///
    /// # Errors
    /// The OS's `sendto` error, or the resolver's.
    pub async fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let addrs = resolve(addr.query()).await?;
        let to = *addrs.first().ok_or_else(no_addresses)?;
        self.inner.write_with(|s| s.send_to(buf, to)).await
    }

    /// Receives a datagram; returns its length and sender.
    ///
    /// # Errors
    /// The OS's `recvfrom` error.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read_with(|s| s.recv_from(buf)).await
    }

    /// Like [`recv_from`](UdpSocket::recv_from) but leaves the datagram queued.
    ///
    /// # Errors
    /// The OS's `recvfrom` error.
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read_with(|s| s.peek_from(buf)).await
    }

    /// Sends a datagram to the connected peer.
    ///
    /// # Errors
    /// The OS's `send` error (`NotConnected` without [`connect`](UdpSocket::connect)).
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

    /// Like [`recv`](UdpSocket::recv) but leaves the datagram queued.
    ///
    /// # Errors
    /// The OS's `recv` error.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_with(|s| s.peek(buf)).await
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    /// The OS's `setsockopt` error.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.inner.get_ref().set_broadcast(on)
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.get_ref().fmt(f)
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for UdpSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.get_ref().as_fd()
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.inner.get_ref().as_raw_fd()
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsSocket for UdpSocket {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        self.inner.get_ref().as_socket()
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsRawSocket for UdpSocket {
    fn as_raw_socket(&self) -> std::os::windows::io::RawSocket {
        self.inner.get_ref().as_raw_socket()
    }
}
