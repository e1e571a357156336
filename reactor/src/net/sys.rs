//! The few socket calls std has no (stable or non-blocking) form of: creating a socket,
//! starting a `connect` without waiting for it, and `SO_LINGER`.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A new non-blocking, close-on-exec socket.
pub(crate) fn socket(domain: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let flags = 0;
    // SAFETY: `socket` takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::socket(domain, ty | flags, 0) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by `socket`, is open and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        crate::nonblocking::set_nonblocking(std::os::fd::AsFd::as_fd(&fd))?;
        // SAFETY: `fd` is open; F_SETFD takes an int argument.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fd)
}

/// Outcome of starting a connect on a non-blocking socket.
pub(crate) enum Connect {
    /// Connected already.
    Done,
    /// In progress: wait for writability, then read `SO_ERROR`.
    InProgress,
    /// The OS would not even start it (a full Unix-socket backlog).
    WouldBlock,
}

/// Starts connecting `fd` to the address in `storage[..len]`.
///
/// # Safety
/// `storage` must hold a valid socket address of the socket's family in its first `len` bytes.
unsafe fn connect_raw(
    fd: BorrowedFd<'_>,
    storage: *const libc::sockaddr,
    len: libc::socklen_t,
) -> io::Result<Connect> {
    // SAFETY: `fd` is open (borrowed) and the caller guarantees `storage`/`len`.
    if unsafe { libc::connect(fd.as_raw_fd(), storage, len) } == 0 {
        return Ok(Connect::Done);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // An interrupted connect goes on in the background (POSIX): calling again would get
        // EALREADY, so it is waited for as one in progress.
        Some(libc::EINTR | libc::EINPROGRESS) => Ok(Connect::InProgress),
        Some(code) if code == libc::EAGAIN => Ok(Connect::WouldBlock),
        _ => Err(e),
    }
}

/// Starts connecting `fd` to an IP socket address.
pub(crate) fn connect_ip(fd: BorrowedFd<'_>, addr: SocketAddr) -> io::Result<Connect> {
    // SAFETY: an all-zero `sockaddr_storage` is a valid (unspecified-family) value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: all-zero is a valid `sockaddr_in`.
            let mut sin: libc::sockaddr_in = unsafe { mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for every sockaddr type.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: all-zero is a valid `sockaddr_in6`.
            let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: `sockaddr_storage` is larger than and aligned for every sockaddr type.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: `storage` holds the address of the family matching `addr` in its first `len`
    // bytes, written just above; IP sockets are created with that same family.
    unsafe { connect_raw(fd, &storage as *const _ as *const libc::sockaddr, len as _) }
}

/// Starts connecting `fd` to a Unix socket path.
pub(crate) fn connect_unix(fd: BorrowedFd<'_>, path: &Path) -> io::Result<Connect> {
    // SAFETY: all-zero is a valid `sockaddr_un` (empty path).
    let mut sun: libc::sockaddr_un = unsafe { mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    // An empty path would give a `sun_path` that starts with its NUL: Linux's abstract name
    // "", a different socket altogether. std refuses it too.
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the socket path is empty",
        ));
    }
    if bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "paths must not contain interior null bytes",
        ));
    }
    // Keep a terminating NUL, as std does.
    if bytes.len() >= sun.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path must be shorter than SUN_LEN",
        ));
    }
    for (dst, src) in sun.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // The path's offset, not the family's size: on the BSDs and macOS a length byte comes
    // first (`sun_len`), so the two differ.
    let path_offset = sun.sun_path.as_ptr() as usize - std::ptr::addr_of!(sun) as usize;
    let len = path_offset + bytes.len() + 1;
    // SAFETY: `sun` is a valid `sockaddr_un` whose first `len` bytes are the header up to
    // the path and the NUL-terminated path.
    unsafe { connect_raw(fd, &sun as *const _ as *const libc::sockaddr, len as _) }
}

/// Sets `SO_LINGER` on `fd` to "on, zero seconds" (`reset`: closing resets the connection)
/// or to "off" (the default). Zero is zero in every unit, so this is right also where the
/// option counts clock ticks (Apple's `SO_LINGER`).
pub(crate) fn set_reset_on_close(fd: BorrowedFd<'_>, reset: bool) -> io::Result<()> {
    let value = libc::linger {
        l_onoff: libc::c_int::from(reset),
        l_linger: 0,
    };
    // SAFETY: `fd` is open (borrowed); `value` is a valid `struct linger` of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&value as *const libc::linger).cast(),
            mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `SO_LINGER` on `fd` is "on, zero": closing resets the connection.
pub(crate) fn reset_on_close(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: all-zero is a valid `struct linger`.
    let mut value: libc::linger = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: `fd` is open (borrowed); `value` and `len` are valid for writes, and `len` says
    // how much room `value` has.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&mut value as *mut libc::linger).cast(),
            &mut len,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(value.l_onoff != 0 && value.l_linger == 0)
}
