//! Switching any source between blocking and non-blocking mode: `fcntl` on a Unix file
//! descriptor, `ioctlsocket(FIONBIO)` (through socket2) on a Windows socket.

use std::io;
#[cfg(unix)]
use std::os::fd::{AsRawFd, BorrowedFd};

/// Puts `socket` in non-blocking mode. Windows cannot tell a socket's current mode, so this
/// returns `false` ("was blocking", std's default) and [`Async::into_inner`] hands the socket
/// back in blocking mode.
///
/// [`Async::into_inner`]: crate::Async::into_inner
#[cfg(windows)]
pub(crate) fn set_nonblocking(
    socket: std::os::windows::io::BorrowedSocket<'_>,
) -> io::Result<bool> {
    socket2::SockRef::from(&socket).set_nonblocking(true)?;
    Ok(false)
}

/// Puts `socket` back in blocking mode.
#[cfg(windows)]
pub(crate) fn set_blocking(socket: std::os::windows::io::BorrowedSocket<'_>) -> io::Result<()> {
    socket2::SockRef::from(&socket).set_nonblocking(false)
}

/// Sets `O_NONBLOCK` on `fd`; returns whether it was already set.
#[cfg(unix)]
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let flags = get_flags(fd)?;
    let was_nonblocking = flags & libc::O_NONBLOCK != 0;
    if !was_nonblocking {
        set_flags(fd, flags | libc::O_NONBLOCK)?;
    }
    Ok(was_nonblocking)
}

/// Clears `O_NONBLOCK` on `fd`.
#[cfg(unix)]
pub(crate) fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = get_flags(fd)?;
    if flags & libc::O_NONBLOCK != 0 {
        set_flags(fd, flags & !libc::O_NONBLOCK)?;
    }
    Ok(())
}

#[cfg(unix)]
fn get_flags(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: `fd` is a borrowed, hence open, descriptor; F_GETFL takes no pointer argument.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags)
}

#[cfg(unix)]
fn set_flags(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: `fd` is open (borrowed); F_SETFL takes an int argument, which we pass.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
