//! Turning real I/O off on a thread: magpie's deterministic runtime (`magpie::sim`) runs every
//! task on one thread, and a real socket there would let the OS, not the seed, decide the
//! schedule. While a [`RealIoDenied`] guard lives, [`Async::new`](crate::Async::new) on its
//! thread — every socket, pipe, signal and subprocess of this crate — fails with
//! [`io::ErrorKind::Unsupported`] and a message that says why; and the calls that would touch
//! the OS before that (a name lookup, a `bind` that makes a socket file, a `connect` that
//! reaches a real listener, a subprocess's fork, a signal handler) are refused before they
//! do.

use std::cell::Cell;
use std::io;

thread_local! {
    /// Why real I/O is refused on this thread, while a guard lives.
    static DENIED: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Refuses real I/O on the calling thread while it lives (see the module docs).
///
/// # Examples
/// ```
/// use magpie_reactor::real_io::RealIoDenied;
///
/// let guard = RealIoDenied::enter("this thread runs a simulation");
/// let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// let err = magpie_reactor::Async::new(socket).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
/// assert!(err.to_string().contains("this thread runs a simulation"));
/// drop(guard);
///
/// let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// assert!(magpie_reactor::Async::new(socket).is_ok());
/// ```
#[derive(Debug)]
pub struct RealIoDenied {
    previous: Option<&'static str>,
    /// Not `Send`: the refusal is the calling thread's.
    _thread: std::marker::PhantomData<*const ()>,
}

impl RealIoDenied {
    /// Refuses real I/O on this thread until the guard is dropped; `reason` ends up in the
    /// error message.
    pub fn enter(reason: &'static str) -> RealIoDenied {
        let previous = DENIED.with(|denied| denied.replace(Some(reason)));
        RealIoDenied {
            previous,
            _thread: std::marker::PhantomData,
        }
    }
}

impl Drop for RealIoDenied {
    fn drop(&mut self) {
        let _ = DENIED.try_with(|denied| denied.set(self.previous));
    }
}

/// `Err` when real I/O is refused on this thread.
pub(crate) fn check() -> io::Result<()> {
    match DENIED.try_with(Cell::get).ok().flatten() {
        None => Ok(()),
        Some(reason) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("real I/O is not available here: {reason}"),
        )),
    }
}
