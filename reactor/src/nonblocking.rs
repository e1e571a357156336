//! Switching any file descriptor between blocking and non-blocking mode with `fcntl`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Sets `O_NONBLOCK` on `fd`; returns whether it was already set.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let flags = get_flags(fd)?;
    let was_nonblocking = flags & libc::O_NONBLOCK != 0;
    if !was_nonblocking {
        set_flags(fd, flags | libc::O_NONBLOCK)?;
    }
    Ok(was_nonblocking)
}

/// Clears `O_NONBLOCK` on `fd`.
pub(crate) fn set_blocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = get_flags(fd)?;
    if flags & libc::O_NONBLOCK != 0 {
        set_flags(fd, flags & !libc::O_NONBLOCK)?;
    }
    Ok(())
}

fn get_flags(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: `fd` is a borrowed, hence open, descriptor; F_GETFL takes no pointer argument.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags)
}

fn set_flags(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: `fd` is open (borrowed); F_SETFL takes an int argument, which we pass.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
