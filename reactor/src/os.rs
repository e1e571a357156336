//! The platform's name for what the reactor registers: a file descriptor on Unix, a socket on
//! Windows. The rest of the crate speaks of "sources" through these aliases and helpers, so
//! one code path serves both (std's traits differ only in their names).

#[cfg(unix)]
pub(crate) use std::os::fd::{
    AsFd as AsSource, AsRawFd as AsRawSource, BorrowedFd as BorrowedSource, RawFd as RawSource,
};
#[cfg(windows)]
pub(crate) use std::os::windows::io::{
    AsRawSocket as AsRawSource, AsSocket as AsSource, BorrowedSocket as BorrowedSource,
    RawSocket as RawSource,
};

/// Borrows `io`'s descriptor (Unix) or socket (Windows).
pub(crate) fn borrow<T: AsSource + ?Sized>(io: &T) -> BorrowedSource<'_> {
    #[cfg(unix)]
    return io.as_fd();
    #[cfg(windows)]
    return io.as_socket();
}

/// The raw descriptor or socket behind a borrowed one.
pub(crate) fn raw(source: BorrowedSource<'_>) -> RawSource {
    #[cfg(unix)]
    return source.as_raw_fd();
    #[cfg(windows)]
    return source.as_raw_socket();
}

/// Borrows a raw descriptor or socket.
///
/// # Safety
/// `raw` must be an open descriptor or socket (so not `-1` or `INVALID_SOCKET`) for the
/// returned borrow's whole lifetime.
pub(crate) unsafe fn borrow_raw<'a>(raw: RawSource) -> BorrowedSource<'a> {
    // SAFETY: forwarded from the caller (both std constructors have exactly this contract).
    unsafe { BorrowedSource::borrow_raw(raw) }
}

/// A raw value that names no descriptor or socket, for sources in unit tests that never reach
/// the poller.
#[cfg(all(test, unix))]
pub(crate) const NO_SOURCE: RawSource = -1;
/// A raw value that names no descriptor or socket (`INVALID_SOCKET`), for sources in unit
/// tests that never reach the poller.
#[cfg(all(test, windows))]
pub(crate) const NO_SOURCE: RawSource = RawSource::MAX;
