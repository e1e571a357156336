//! Socket addresses in every form std accepts, resolved without blocking the caller's thread.

use super::unblock::unblock;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// What an address argument turns into before any I/O.
#[doc(hidden)]
#[derive(Debug)]
pub enum Query {
    /// Already numeric.
    Ready(Vec<SocketAddr>),
    /// `"host:port"`, to be resolved.
    HostPort(String),
    /// `(host, port)`, to be resolved.
    Host(String, u16),
}

pub(crate) mod sealed {
    /// Turns an address argument into a [`Query`](super::Query).
    pub trait Sealed {
        /// The query for this address.
        fn query(&self) -> super::Query;
    }
}

/// Anything that names one or more socket addresses: the same forms as
/// [`std::net::ToSocketAddrs`] (`"127.0.0.1:8080"`, `"localhost:8080"`, a [`SocketAddr`],
/// `(IpAddr, u16)`, `("host", u16)`, `&[SocketAddr]`, …).
///
/// Numeric addresses are parsed in place; host names are resolved on a helper thread, so
/// awaiting a resolution never blocks an executor worker.
///
/// This trait is sealed: it cannot be implemented outside this crate.
pub trait ToSocketAddrs: sealed::Sealed {}

impl<T: sealed::Sealed + ?Sized> ToSocketAddrs for T {}

macro_rules! ready_impl {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {
            fn query(&self) -> Query {
                Query::Ready(vec![SocketAddr::from(*self)])
            }
        }
    )*};
}

ready_impl!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl sealed::Sealed for str {
    fn query(&self) -> Query {
        match self.parse::<SocketAddr>() {
            Ok(addr) => Query::Ready(vec![addr]),
            Err(_) => Query::HostPort(self.to_owned()),
        }
    }
}

impl sealed::Sealed for String {
    fn query(&self) -> Query {
        self.as_str().query()
    }
}

impl sealed::Sealed for (&str, u16) {
    fn query(&self) -> Query {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => Query::Ready(vec![SocketAddr::new(ip, self.1)]),
            Err(_) => Query::Host(self.0.to_owned(), self.1),
        }
    }
}

impl sealed::Sealed for (String, u16) {
    fn query(&self) -> Query {
        (self.0.as_str(), self.1).query()
    }
}

impl sealed::Sealed for [SocketAddr] {
    fn query(&self) -> Query {
        Query::Ready(self.to_vec())
    }
}

impl sealed::Sealed for Vec<SocketAddr> {
    fn query(&self) -> Query {
        Query::Ready(self.clone())
    }
}

impl<T: sealed::Sealed + ?Sized> sealed::Sealed for &T {
    fn query(&self) -> Query {
        (**self).query()
    }
}

/// The error std gives for an address list that resolved to nothing.
pub(crate) fn no_addresses() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "could not resolve to any addresses",
    )
}

/// Resolves a query; host names on a helper thread.
///
/// Every socket of this crate that takes an address (`bind`, `connect`) starts here, so this
/// is where a thread that refuses real I/O (`real_io`) refuses it: before a name lookup on a
/// helper thread (whose wake-up would come at a moment of the wall clock's choosing) and
/// before any syscall on a real socket.
pub(crate) async fn resolve(query: Query) -> io::Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs as _;
    crate::real_io::check()?;
    let addrs = match query {
        Query::Ready(addrs) => addrs,
        Query::HostPort(s) => unblock(move || s.to_socket_addrs().map(Iterator::collect))?.await?,
        Query::Host(h, p) => {
            unblock(move || (h.as_str(), p).to_socket_addrs().map(Iterator::collect))?.await?
        }
    };
    if addrs.is_empty() {
        return Err(no_addresses());
    }
    Ok(addrs)
}

/// Calls `f` on each address until one succeeds; returns the last error otherwise.
pub(crate) async fn try_each<R, F, Fut>(addrs: Vec<SocketAddr>, mut f: F) -> io::Result<R>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = io::Result<R>>,
{
    let mut last = None;
    for addr in addrs {
        match f(addr).await {
            Ok(r) => return Ok(r),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(no_addresses))
}

#[cfg(test)]
mod tests {
    use super::sealed::Sealed;
    use super::*;

    #[test]
    fn literals_are_parsed_without_lookup() {
        assert!(matches!("127.0.0.1:80".query(), Query::Ready(v) if v.len() == 1));
        assert!(matches!(("::1", 80).query(), Query::Ready(v) if v[0].is_ipv6()));
        assert!(matches!("localhost:80".query(), Query::HostPort(_)));
        assert!(matches!(("localhost", 80).query(), Query::Host(_, 80)));
    }

    #[test]
    fn host_names_resolve() {
        let addrs = futures_lite::future::block_on(resolve(("localhost", 7).query())).unwrap();
        assert!(addrs.iter().all(|a| a.port() == 7 && a.ip().is_loopback()));
    }
}
