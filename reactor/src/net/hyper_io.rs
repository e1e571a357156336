//! hyper's I/O traits on magpie's streams (feature `hyper`): `hyper::rt::Read` and
//! `hyper::rt::Write` for [`TcpStream`](super::TcpStream) and
//! [`UnixStream`](super::UnixStream), so a hyper connection takes them with no adapter.
//!
//! Reads go straight into hyper's uninitialised buffer (one `recv`, no zeroing, no copy) and
//! keep the streams' readiness rules (a short TCP read clears read readiness). Writes are
//! vectored: hyper hands a response's head and body as separate buffers, which go out in one
//! `writev`.

use crate::os::{self, BorrowedSource};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_lite::AsyncWrite;
use hyper::rt::ReadBufCursor;

use super::TcpStream;
#[cfg(unix)]
use super::UnixStream;

/// One `recv` of at most `len` bytes into `ptr`.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes for the duration of the call.
#[cfg(unix)]
unsafe fn recv_into(socket: BorrowedSource<'_>, ptr: *mut u8, len: usize) -> io::Result<usize> {
    // SAFETY: the caller guarantees `ptr..ptr + len` is writable; `recv` writes at most `len`
    // bytes there and nothing else; `socket` is borrowed, hence open.
    let n = unsafe { libc::recv(os::raw(socket), ptr.cast(), len, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One `recv` of at most `len` bytes into `ptr`.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes for the duration of the call.
#[cfg(windows)]
unsafe fn recv_into(socket: BorrowedSource<'_>, ptr: *mut u8, len: usize) -> io::Result<usize> {
    // SAFETY: the caller guarantees `ptr..ptr + len` is writable for this call; as
    // `MaybeUninit<u8>` the bytes need not be initialised, and `recv` only writes them.
    let spare = unsafe { std::slice::from_raw_parts_mut(ptr.cast(), len) };
    socket2::SockRef::from(&socket).recv(spare)
}

/// hyper's I/O traits for a stream whose `core` is a `StreamCore`: reads take the same path
/// as its `AsyncRead` (`StreamCore::poll_read_with`).
macro_rules! hyper_io {
    ($ty:ty) => {
        impl hyper::rt::Read for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                mut buf: ReadBufCursor<'_>,
            ) -> Poll<io::Result<()>> {
                // SAFETY: the slice is only written to (by `recv`), never de-initialised.
                let spare = unsafe { buf.as_mut() };
                let len = spare.len();
                if len == 0 {
                    // No room: report no bytes without a syscall (as tokio's adapter does;
                    // hyper only asks with room in its buffer).
                    return Poll::Ready(Ok(()));
                }
                let ptr = spare.as_mut_ptr().cast::<u8>();
                let n = ready!(self.core.poll_read_with(
                    cx,
                    len,
                    // SAFETY: `ptr..ptr + len` is the cursor's spare room, borrowed for this
                    // whole call.
                    |s| unsafe { recv_into(os::borrow(s), ptr, len) }
                ))?;
                // SAFETY: `recv` initialised the first `n` (≤ `len`) bytes of the spare room.
                unsafe { buf.advance(n) };
                Poll::Ready(Ok(()))
            }
        }

        impl hyper::rt::Write for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                AsyncWrite::poll_write(self, cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                AsyncWrite::poll_write_vectored(self, cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                AsyncWrite::poll_flush(self, cx)
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                AsyncWrite::poll_close(self, cx)
            }
        }
    };
}

hyper_io!(TcpStream);
#[cfg(unix)]
hyper_io!(UnixStream);
