//! Async networking on the reactor: TCP, UDP and (on Unix) Unix-domain sockets.
//!
//! Every type wraps the corresponding std socket in [`Async`](crate::Async). Errors are the
//! OS's, untouched: connecting to a closed port gives `ConnectionRefused`, binding a port in
//! use gives `AddrInUse`, and reading from a peer that closed gives `Ok(0)`.
//!
//! Addresses are anything [`ToSocketAddrs`] accepts — the same forms as
//! [`std::net::ToSocketAddrs`]. Literal addresses are parsed in place; a host name is resolved
//! on a short-lived helper thread so that no executor worker blocks on DNS.
//!
//! # Examples
//!
//! ```
//! use magpie_reactor::net::{TcpListener, TcpStream};
//! use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
//!
//! future::block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     let mut client = TcpStream::connect(addr).await?;
//!     let (mut server, _) = listener.accept().await?;
//!     client.write_all(b"hello").await?;
//!     let mut buf = [0; 5];
//!     server.read_exact(&mut buf).await?;
//!     assert_eq!(&buf, b"hello");
//!     std::io::Result::Ok(())
//! })?;
//! # std::io::Result::Ok(())
//! ```

mod addr;
#[cfg(feature = "hyper")]
mod hyper_io;
mod stream;
#[cfg(unix)]
pub(crate) mod sys;
mod tcp;
mod udp;
mod unblock;
#[cfg(unix)]
mod unix;

pub use addr::ToSocketAddrs;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
#[cfg(unix)]
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};
