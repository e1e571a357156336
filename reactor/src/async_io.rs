//! [`Async<T>`]: a non-blocking I/O object registered with the reactor.

use crate::loom::Arc;
use crate::nonblocking;
use crate::os::{self, AsSource};
use crate::reactor;
use crate::source::{arm_error, Direction, Source, WaitPoll, WaitState};
use futures_lite::io::{AsyncRead, AsyncWrite};
use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

/// An I/O object in non-blocking mode, registered with magpie's reactor thread.
///
/// Operations that would block instead wait — asynchronously — for the reactor to report the
/// descriptor readable or writable, then retry. Works under any executor: the reactor only
/// wakes `Waker`s.
///
/// `AsyncWrite::poll_close` on an `Async<T>` flushes `T` and nothing more: it does not shut a
/// socket's write half down (the peer reads no end-of-stream until the descriptor is closed,
/// by dropping the `Async`). magpie's own socket types ([`net`](crate::net)) do shut it down
/// on `close`. Dropping an `Async` leaves the descriptor in non-blocking mode;
/// [`into_inner`](Async::into_inner) gives it back in the mode it had.
///
/// # Examples
///
/// ```
/// use magpie_reactor::Async;
/// use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
/// use std::os::unix::net::UnixStream;
///
/// future::block_on(async {
///     let (a, b) = UnixStream::pair()?;
///     let (mut a, mut b) = (Async::new(a)?, Async::new(b)?);
///     a.write_all(b"ping").await?;
///     let mut buf = [0; 4];
///     b.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"ping");
///     std::io::Result::Ok(())
/// })?;
/// # std::io::Result::Ok(())
/// ```
pub struct Async<T> {
    /// The reactor registration; deregistered before `io` is dropped.
    pub(crate) source: Arc<Source>,
    /// `None` only after `into_inner` took it.
    io: Option<T>,
    /// Whether `O_NONBLOCK` was already set before `new`, restored by `into_inner`.
    was_nonblocking: bool,
}

impl<T: AsSource> Async<T> {
    /// Puts `io` in non-blocking mode and registers it with the reactor (starting the reactor
    /// thread on first use).
    ///
    /// # Errors
    /// The OS's error if `fcntl` or the poller registration fails;
    /// [`io::ErrorKind::Unsupported`] on a thread that refuses real I/O (magpie's deterministic
    /// runtime, see [`real_io`](crate::real_io)).
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_reactor::Async;
    /// let listener = Async::new(std::net::TcpListener::bind("127.0.0.1:0")?)?;
    /// assert!(listener.get_ref().local_addr()?.port() != 0);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn new(io: T) -> io::Result<Async<T>> {
        // Before touching the descriptor: a refused `io` is handed back untouched (dropped).
        crate::real_io::check()?;
        let fd = os::borrow(&io);
        let was_nonblocking = nonblocking::set_nonblocking(fd)?;
        // A leaked `Async` of a borrowed descriptor (`T` a `BorrowedFd`, a `&File`) may see
        // its owner close it while registered: on Unix that breaks nothing, since the reactor
        // never touches a registered descriptor after this call (events come back by key,
        // with a generation, and the kernel drops a closed descriptor from the poller); on
        // Windows a source that still lists waiters could re-arm a reused socket handle — an
        // I/O-safety hazard, not a memory one, and a known limit (docs/reactor.md).
        // SAFETY: the descriptor is `io`'s, which the returned `Async` holds and drops only
        // after deregistering (see `Drop` and `into_inner`); a leaked owned one is never
        // closed. Both keep the contract; the borrowed case is above.
        match unsafe { reactor::get().register(fd) } {
            Ok(source) => Ok(Async {
                source,
                io: Some(io),
                was_nonblocking,
            }),
            Err(e) => {
                if !was_nonblocking {
                    let _ = nonblocking::set_blocking(os::borrow(&io));
                }
                Err(e)
            }
        }
    }

    /// Deregisters the source and returns the inner I/O object, restoring blocking mode if it
    /// was blocking when passed to [`Async::new`] (as std's types are by default). On Windows,
    /// whose sockets cannot report their mode, the object always comes back blocking.
    ///
    /// # Errors
    /// The OS's error if the poller deregistration or `fcntl` fails; the object is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_reactor::Async;
    /// let listener = Async::new(std::net::TcpListener::bind("127.0.0.1:0")?)?;
    /// let std_listener: std::net::TcpListener = listener.into_inner()?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn into_inner(mut self) -> io::Result<T> {
        let io = self.io.take().expect("io is present until into_inner");
        reactor::get().deregister(&self.source)?;
        if !self.was_nonblocking {
            nonblocking::set_blocking(os::borrow(&io))?;
        }
        Ok(io)
    }
}

impl<T> Async<T> {
    /// The inner I/O object.
    ///
    /// Reading or writing through it directly is fine (it is non-blocking: expect
    /// `WouldBlock`); replacing or closing its descriptor is not.
    pub fn get_ref(&self) -> &T {
        self.io.as_ref().expect("io is present until into_inner")
    }

    /// Mutable access to the inner I/O object, for operations that need `&mut T`.
    ///
    /// # Safety
    /// The caller must not close or replace the descriptor (for instance with
    /// `std::mem::swap` or `std::mem::replace`): it is still registered with the reactor.
    pub unsafe fn get_mut(&mut self) -> &mut T {
        self.io.as_mut().expect("io is present until into_inner")
    }

    /// Waits until the source is readable (or hung up / in error): completes at once if it is
    /// readable now, else when the reactor next reports it readable.
    ///
    /// Readiness may be spurious: the following operation can still return `WouldBlock`.
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_reactor::Async;
    /// use futures_lite::future;
    /// use std::io::Write;
    /// use std::os::unix::net::UnixStream;
    ///
    /// let (a, mut b) = UnixStream::pair()?;
    /// let a = Async::new(a)?;
    /// b.write_all(b"x")?;
    /// future::block_on(a.readable())?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn readable(&self) -> Readiness<'_> {
        Readiness::new(&self.source, Direction::Read)
    }

    /// Waits until the source is writable (or hung up / in error): completes at once if it is
    /// writable now, else when the reactor next reports it writable.
    ///
    /// Readiness may be spurious: the following operation can still return `WouldBlock`.
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_reactor::Async;
    /// use futures_lite::future;
    /// use std::os::unix::net::UnixStream;
    ///
    /// let (a, _b) = UnixStream::pair()?;
    /// let a = Async::new(a)?;
    /// future::block_on(a.writable())?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn writable(&self) -> Readiness<'_> {
        Readiness::new(&self.source, Direction::Write)
    }

    /// Runs the non-blocking read-side operation `op` until it stops returning `WouldBlock`,
    /// waiting for readability in between.
    ///
    /// # Errors
    /// Whatever `op` returns other than `WouldBlock`, or a poller error.
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_reactor::Async;
    /// use futures_lite::future;
    /// use std::net::{TcpListener, TcpStream};
    ///
    /// let listener = Async::new(TcpListener::bind("127.0.0.1:0")?)?;
    /// let addr = listener.get_ref().local_addr()?;
    /// let _client = TcpStream::connect(addr)?;
    /// let (_stream, peer) = future::block_on(listener.read_with(|l| l.accept()))?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn read_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.retry_with(Direction::Read, op).await
    }

    /// Runs the non-blocking write-side operation `op` until it stops returning `WouldBlock`,
    /// waiting for writability in between.
    ///
    /// # Errors
    /// Whatever `op` returns other than `WouldBlock`, or a poller error.
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_reactor::Async;
    /// use futures_lite::future;
    /// use std::net::UdpSocket;
    ///
    /// let a = Async::new(UdpSocket::bind("127.0.0.1:0")?)?;
    /// let b = UdpSocket::bind("127.0.0.1:0")?;
    /// let to = b.local_addr()?;
    /// let sent = future::block_on(a.write_with(|s| s.send_to(b"hi", to)))?;
    /// assert_eq!(sent, 2);
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn write_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.retry_with(Direction::Write, op).await
    }

    /// `read_with`/`write_with`: runs `op` until it stops returning `WouldBlock`, waiting in
    /// between for an edge reported after the tick read before the failed attempt.
    async fn retry_with<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            // Read before the attempt: an edge reported while `op` runs moves it, so the wait
            // below returns at once instead of missing that edge.
            let tick = self.source.tick(dir);
            match op(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    Readiness::not_ready_at(&self.source, dir, tick).await?
                }
                result => return result,
            }
        }
    }

    /// `poll_*`-style helper: runs `op`; on `WouldBlock` registers `cx`'s waker for `dir`.
    ///
    /// With [`Attempt::NeedsReadiness`], if `dir` is known not ready (no edge since a
    /// confirmed `WouldBlock`), `op` is not tried at all: it could only return `WouldBlock`, so
    /// the waker is registered directly.
    pub(crate) fn poll_op<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        attempt: Attempt,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let io = self.get_ref();
        poll_attempts(&self.source, cx, dir, attempt, || op(io)).map(|(result, _)| result)
    }

    /// Like [`Async::poll_op`] for a byte-stream read of `len` bytes: a read that returns
    /// fewer bytes than asked for (but some) drained the receive queue, so it clears the
    /// direction's readiness as a `WouldBlock` would, saving the next read's failing syscall
    /// (see [`Source::clear_after_short_read`]).
    ///
    /// Only for streams whose reads stop short solely because the queue ran dry (TCP).
    pub(crate) fn poll_stream_read(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        mut op: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let io = self.get_ref();
        let (result, tick) = std::task::ready!(poll_attempts(
            &self.source,
            cx,
            Direction::Read,
            Attempt::for_len(len),
            || op(io)
        ));
        if let Ok(n) = result {
            // Linux reads at most `MAX_READ_BYTES` per call, so a read of more is judged
            // against that.
            if n > 0 && n < len.min(MAX_READ_BYTES) {
                self.source.clear_after_short_read(Direction::Read, tick);
            }
        }
        Poll::Ready(result)
    }

    /// Like [`Async::poll_op`] with `&mut T`.
    fn poll_op_mut<R>(
        &mut self,
        cx: &mut Context<'_>,
        dir: Direction,
        attempt: Attempt,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let io = self.io.as_mut().expect("io is present until into_inner");
        poll_attempts(&self.source, cx, dir, attempt, || op(io)).map(|(result, _)| result)
    }
}

/// The most bytes one `read`/`readv` returns on Linux (`MAX_RW_COUNT`: `INT_MAX` rounded down
/// to a page): a read that returned this many stopped at the kernel's limit, not because the
/// receive queue ran dry.
const MAX_READ_BYTES: usize = 0x7fff_f000;

/// Whether a `poll_*` operation can be skipped while its direction is known not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// It can only succeed once the direction is ready (a non-empty read or write, an
    /// accept): while the direction is known not ready, skip it and wait.
    NeedsReadiness,
    /// It may succeed whatever the readiness (a flush, a zero-length read or write, which
    /// return at once): always try it.
    Always,
}

impl Attempt {
    /// For a read or write of `len` bytes.
    pub(crate) fn for_len(len: usize) -> Attempt {
        if len == 0 {
            Attempt::Always
        } else {
            Attempt::NeedsReadiness
        }
    }
}

/// The [`Attempt`] for a vectored read or write of `bufs`.
pub(crate) fn attempt_for<B: std::ops::Deref<Target = [u8]>>(bufs: &[B]) -> Attempt {
    Attempt::for_len(bufs.iter().map(|b| b.len()).sum())
}

/// The loop behind every `poll_*` operation: unless `dir` is known not ready and `kind` allows
/// skipping (then only the waker is registered), runs `attempt` until it returns something other than `WouldBlock`
/// or its `WouldBlock` is confirmed at an unchanged tick (then the waker is registered).
/// Returns the result with the tick read before the attempt that produced it.
fn poll_attempts<R>(
    source: &Source,
    cx: &mut Context<'_>,
    dir: Direction,
    kind: Attempt,
    mut attempt: impl FnMut() -> io::Result<R>,
) -> Poll<(io::Result<R>, u64)> {
    loop {
        // Read before the attempt; if an edge is reported while it runs, the registration
        // below refuses and the attempt is retried (each retry follows a genuine new edge, so
        // this cannot spin).
        let tick = match kind {
            Attempt::NeedsReadiness => match source.tick_or_wait(dir, cx.waker()) {
                Ok(Some(tick)) => tick,
                Ok(None) => return Poll::Pending,
                Err(e) => return Poll::Ready((Err(arm_error(e)), source.tick(dir))),
            },
            Attempt::Always => source.tick(dir),
        };
        match attempt() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match source.register_poll_waker(dir, tick, cx.waker()) {
                    Ok(true) => return Poll::Pending,
                    Ok(false) => {}
                    Err(e) => return Poll::Ready((Err(arm_error(e)), tick)),
                }
            }
            result => return Poll::Ready((result, tick)),
        }
    }
}

impl<T> Drop for Async<T> {
    fn drop(&mut self) {
        if self.io.is_some() {
            // The descriptor is still open here (`io` is dropped after this body), as
            // `deregister` requires. A failure leaves nothing to undo: the close that follows
            // removes the descriptor from the epoll set anyway.
            let _ = reactor::get().deregister(&self.source);
        }
    }
}

// `Async` never pins `T` structurally (it is only reached through `&`/`&mut`), so moving an
// `Async` is always fine.
impl<T> Unpin for Async<T> {}

#[cfg(unix)]
impl<T: std::os::fd::AsFd> std::os::fd::AsFd for Async<T> {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

#[cfg(unix)]
impl<T: std::os::fd::AsRawFd> std::os::fd::AsRawFd for Async<T> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.get_ref().as_raw_fd()
    }
}

#[cfg(windows)]
impl<T: std::os::windows::io::AsSocket> std::os::windows::io::AsSocket for Async<T> {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        self.get_ref().as_socket()
    }
}

#[cfg(windows)]
impl<T: std::os::windows::io::AsRawSocket> std::os::windows::io::AsRawSocket for Async<T> {
    fn as_raw_socket(&self) -> std::os::windows::io::RawSocket {
        self.get_ref().as_raw_socket()
    }
}

impl<T: fmt::Debug> fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async").field("io", &self.io).finish()
    }
}

/// The future returned by [`Async::readable`] and [`Async::writable`].
///
/// Several of these may wait on one source at once; each is woken once per readiness event.
#[must_use = "futures do nothing unless polled"]
pub struct Readiness<'a> {
    /// Borrowed from an `Async`, which keeps the descriptor open while this future lives.
    source: &'a Source,
    dir: Direction,
    wait: WaitState,
}

impl<'a> Readiness<'a> {
    fn new(source: &'a Source, dir: Direction) -> Self {
        Readiness {
            source,
            dir,
            wait: WaitState::Start,
        }
    }

    /// A wait that starts from a `WouldBlock` seen by an attempt begun at `tick`.
    pub(crate) fn not_ready_at(source: &'a Source, dir: Direction, tick: u64) -> Self {
        Readiness {
            source,
            dir,
            wait: WaitState::NotReadyAt(tick),
        }
    }
}

impl Future for Readiness<'_> {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this
                .source
                .poll_waiter(this.dir, &mut this.wait, cx.waker())
            {
                Ok(WaitPoll::Ready) => return Poll::Ready(Ok(())),
                Ok(WaitPoll::Pending) => return Poll::Pending,
                Err(e) => {
                    this.wait = WaitState::Done;
                    return Poll::Ready(Err(arm_error(e)));
                }
                Ok(WaitPoll::Probe { tick }) => match this.source.probe(this.dir) {
                    Ok(true) => {
                        this.wait = WaitState::Done;
                        return Poll::Ready(Ok(()));
                    }
                    // Not ready at `tick`: the next round registers, unless an edge came in
                    // since (then it completes).
                    Ok(false) => this.wait = WaitState::NotReadyAt(tick),
                    Err(e) => {
                        this.wait = WaitState::Done;
                        return Poll::Ready(Err(e));
                    }
                },
            }
        }
    }
}

impl Drop for Readiness<'_> {
    fn drop(&mut self) {
        self.source.remove_waiter(self.dir, self.wait);
    }
}

impl fmt::Debug for Readiness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("direction", &self.dir)
            .finish_non_exhaustive()
    }
}

impl<T: Read> AsyncRead for Async<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_op_mut(cx, Direction::Read, Attempt::for_len(buf.len()), |io| {
                io.read(buf)
            })
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_op_mut(cx, Direction::Read, attempt_for(bufs), |io| {
                io.read_vectored(bufs)
            })
    }
}

impl<T> AsyncRead for &Async<T>
where
    for<'a> &'a T: Read,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_op(
            cx,
            Direction::Read,
            Attempt::for_len(buf.len()),
            |mut io| io.read(buf),
        )
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_op(cx, Direction::Read, attempt_for(bufs), |mut io| {
            io.read_vectored(bufs)
        })
    }
}

impl<T: Write> AsyncWrite for Async<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_op_mut(cx, Direction::Write, Attempt::for_len(buf.len()), |io| {
                io.write(buf)
            })
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_op_mut(cx, Direction::Write, attempt_for(bufs), |io| {
                io.write_vectored(bufs)
            })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_op_mut(cx, Direction::Write, Attempt::Always, |io| io.flush())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl<T> AsyncWrite for &Async<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_op(
            cx,
            Direction::Write,
            Attempt::for_len(buf.len()),
            |mut io| io.write(buf),
        )
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_op(cx, Direction::Write, attempt_for(bufs), |mut io| {
            io.write_vectored(bufs)
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_op(cx, Direction::Write, Attempt::Always, |mut io| io.flush())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}
