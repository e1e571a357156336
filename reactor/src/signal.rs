//! Unix signals as async streams, on the shared reactor (asyncio's `loop.add_signal_handler`).
//!
//! [`signal`] gives a [`Signals`] stream that yields once per delivery of a signal;
//! [`ctrl_c`] waits for one `SIGINT`. Every listener of a signal hears every delivery made
//! while it exists. The first listener of a signal installs magpie's handler and remembers the
//! disposition it replaced; dropping the last listener puts that disposition back (as asyncio's
//! `remove_signal_handler` does), so a `SIGTERM` with no listener left terminates the process
//! again.
//!
//! # How
//!
//! The handler does only what a signal handler may: it bumps the signal's delivery counter (an
//! atomic) and writes one byte to a non-blocking socket pair whose other end is registered with
//! the reactor. No thread of its own: the byte makes that socket readable, which wakes every
//! listener waiting on it; each compares the counter with the count it saw last. A burst of
//! deliveries between two polls of one listener may come out as one item (signals coalesce in
//! the kernel too); a delivery is never lost for a listener that exists when it arrives. A
//! listener dropped while it waits takes its waker off the socket's waiter list, so listeners
//! made and dropped in a loop (a `select` on [`ctrl_c`] per request) hold nothing.
//!
//! magpie's handler replaces the one it finds; it does not call it. If another library
//! installs its own handler for the signal afterwards, dropping magpie's last listener leaves
//! that handler in place (it puts the old disposition back only while its own handler is the
//! one installed).
//!
//! # Examples
//!
//! ```no_run
//! use futures_lite::StreamExt;
//! use magpie_reactor::signal::{signal, SignalKind};
//!
//! futures_lite::future::block_on(async {
//!     let mut hangups = signal(SignalKind::hangup())?;
//!     while hangups.next().await.is_some() {
//!         println!("reloading the configuration");
//!     }
//!     Ok::<(), magpie_reactor::signal::SignalError>(())
//! })
//! .unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

use futures_lite::Stream;

use crate::async_io::Readiness;
use crate::Async;

/// Signal numbers this module can hold a counter for (Linux's `_NSIG` is 65; other Unix
/// systems have fewer).
const MAX_SIGNAL: usize = 65;

/// A signal to listen for.
///
/// # Examples
///
/// ```
/// use magpie_reactor::signal::SignalKind;
///
/// assert_eq!(SignalKind::terminate().as_raw(), libc::SIGTERM);
/// assert_eq!(SignalKind::from_raw(libc::SIGUSR1), SignalKind::user_defined1());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(i32);

impl SignalKind {
    /// The signal with number `signum`. Whether it can be listened for is checked by
    /// [`signal`].
    pub const fn from_raw(signum: i32) -> SignalKind {
        SignalKind(signum)
    }

    /// The signal's number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// `SIGINT`: Ctrl-C in a terminal.
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }

    /// `SIGTERM`: the polite request to stop (what service managers and `kill` send).
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }

    /// `SIGHUP`: the terminal went away; by convention, "reload your configuration".
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }

    /// `SIGQUIT`: Ctrl-\ in a terminal.
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }

    /// `SIGUSR1`.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }

    /// `SIGUSR2`.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }

    /// `SIGALRM`.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }

    /// `SIGCHLD`: a child process stopped or exited.
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }

    /// `SIGPIPE`: a write to a pipe or socket with no reader.
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }

    /// `SIGWINCH`: the terminal's window changed size.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
}

/// Why a signal cannot be listened for.
#[derive(Debug)]
#[non_exhaustive]
pub enum SignalError {
    /// The signal cannot be caught (`SIGKILL`, `SIGSTOP`) or must not be (`SIGSEGV`, `SIGBUS`,
    /// `SIGILL`, `SIGFPE`: a handler that returns would run the faulting code again).
    Forbidden(i32),
    /// No such signal on this system (zero, negative, or past the highest signal number).
    Invalid(i32),
    /// The OS refused to set the handler up.
    Io(io::Error),
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalError::Forbidden(n) => write!(f, "signal {n} cannot be listened for"),
            SignalError::Invalid(n) => write!(f, "{n} is not a valid signal number"),
            SignalError::Io(e) => write!(f, "cannot install the signal handler: {e}"),
        }
    }
}

impl std::error::Error for SignalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SignalError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Deliveries per signal number, bumped by the handler.
static DELIVERED: [AtomicU64; MAX_SIGNAL] = [const { AtomicU64::new(0) }; MAX_SIGNAL];

/// The write end of the wake-up socket, for the handler (`-1` until it exists).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// What the process has installed: per signal, its listeners and the disposition it replaced.
struct Installed {
    listeners: usize,
    previous: libc::sigaction,
}

/// The handlers table and the wake-up socket's read end.
struct Registry {
    table: Mutex<Vec<Option<Installed>>>,
    wake: Async<UnixStream>,
    /// Kept open for the handler (its fd is in `WAKE_FD`).
    _write: UnixStream,
}

/// The registry, once made: only a success is kept, so a failure to make it (no descriptor
/// left, say) is reported to that caller and the next one tries again.
static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// Held while the registry is being made, so that two first listeners do not both make one
/// (the loser's socket would be left behind with its descriptor in `WAKE_FD`).
static MAKING_REGISTRY: Mutex<()> = Mutex::new(());

fn registry() -> Result<&'static Registry, SignalError> {
    if let Some(registry) = REGISTRY.get() {
        return Ok(registry);
    }
    let _making = MAKING_REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(registry) = REGISTRY.get() {
        return Ok(registry);
    }
    let made = (|| {
        let (read, write) = UnixStream::pair()?;
        write.set_nonblocking(true)?;
        let wake = Async::new(read)?;
        Ok::<_, io::Error>(Registry {
            table: Mutex::new((0..MAX_SIGNAL).map(|_| None).collect()),
            wake,
            _write: write,
        })
    })()
    .map_err(|e| {
        SignalError::Io(io::Error::new(
            e.kind(),
            format!("cannot create the signal wake-up socket: {e}"),
        ))
    })?;
    let registry = REGISTRY.get_or_init(|| made);
    // Published for the handler once the registry that keeps it open for good is in place.
    WAKE_FD.store(registry._write.as_raw_fd(), Ordering::SeqCst);
    Ok(registry)
}

/// Where this thread's `errno` lives.
fn errno_location() -> *mut libc::c_int {
    #[cfg(any(target_os = "linux", target_os = "emscripten", target_os = "redox"))]
    // SAFETY: libc's accessor for the calling thread's errno; no preconditions.
    return unsafe { libc::__errno_location() };
    #[cfg(any(target_os = "android", target_os = "openbsd", target_os = "netbsd"))]
    // SAFETY: libc's accessor for the calling thread's errno; no preconditions.
    return unsafe { libc::__errno() };
    #[cfg(any(target_os = "solaris", target_os = "illumos"))]
    // SAFETY: libc's accessor for the calling thread's errno; no preconditions.
    return unsafe { libc::___errno() };
    #[cfg(not(any(
        target_os = "linux",
        target_os = "emscripten",
        target_os = "redox",
        target_os = "android",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "solaris",
        target_os = "illumos"
    )))]
    // SAFETY: libc's accessor for the calling thread's errno; no preconditions.
    return unsafe { libc::__error() };
}

/// The signal handler: async-signal-safe operations only (an atomic add, a `write`).
extern "C" fn on_signal(signum: libc::c_int) {
    // SAFETY: reading errno is async-signal-safe; we restore it below, so the interrupted code
    // does not see our `write`'s errno.
    let errno = unsafe { *errno_location() };
    if let Some(counter) = usize::try_from(signum).ok().and_then(|i| DELIVERED.get(i)) {
        counter.fetch_add(1, Ordering::SeqCst);
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: `write` is async-signal-safe; one byte from a live local to a descriptor the
        // registry keeps open for the life of the process. It is non-blocking: when the
        // socket is full the wake-up is already pending, so losing this byte loses nothing.
        let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *errno_location() = errno };
}

/// `on_signal` as a `sigaction` handler value.
fn on_signal_handler() -> libc::sighandler_t {
    on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t
}

/// The handler installed for `signum` now (`None` if the OS will not say).
fn current_handler(signum: i32) -> Option<libc::sighandler_t> {
    // SAFETY: an all-zero `sigaction` is a valid value, overwritten by the kernel.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; the out-pointer is to a live `sigaction`.
    let rc = unsafe { libc::sigaction(signum, std::ptr::null(), &mut action) };
    (rc == 0).then_some(action.sa_sigaction)
}

/// Checks that `signum` may be listened for.
fn check(signum: i32) -> Result<usize, SignalError> {
    const FORBIDDEN: [i32; 6] = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ];
    if FORBIDDEN.contains(&signum) {
        return Err(SignalError::Forbidden(signum));
    }
    match usize::try_from(signum) {
        Ok(index) if index > 0 && index < MAX_SIGNAL => Ok(index),
        _ => Err(SignalError::Invalid(signum)),
    }
}

/// A stream of the deliveries of one signal; see the [module docs](self).
///
/// Dropping the last `Signals` of a signal restores the disposition it had before.
#[must_use = "streams do nothing unless polled"]
pub struct Signals {
    index: usize,
    /// The delivery count this listener has reported up to.
    seen: u64,
    registry: &'static Registry,
    /// This listener's wait for the wake-up socket's next readable edge: a waiter with an id
    /// of its own, taken off the socket's list when the listener is dropped.
    wake: Readiness<'static>,
}

/// Listens for `kind`: a stream with one item per delivery (deliveries between two polls may
/// coalesce into one item). The stream does not end, unless the wake-up socket fails (an OS
/// error, reported on stderr).
///
/// # Errors
///
/// [`SignalError::Forbidden`] for `SIGKILL`, `SIGSTOP`, `SIGSEGV`, `SIGBUS`, `SIGILL` and
/// `SIGFPE`; [`SignalError::Invalid`] for a number that is no signal; [`SignalError::Io`] when
/// the OS refuses the handler or its wake-up socket (a later call tries again), or on a
/// thread where real I/O is turned off ([`crate::real_io`]).
pub fn signal(kind: SignalKind) -> Result<Signals, SignalError> {
    let index = check(kind.0)?;
    crate::real_io::check().map_err(SignalError::Io)?;
    let registry = registry()?;
    let mut table = registry
        .table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Read under the lock, after any install: deliveries from now on are this listener's.
    let seen = DELIVERED[index].load(Ordering::SeqCst);
    match &mut table[index] {
        Some(installed) => installed.listeners += 1,
        slot @ None => {
            // SAFETY: an all-zero `sigaction` is a valid value (no handler, empty mask, no
            // flags); it is overwritten field by field below or by the kernel.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_signal_handler();
            action.sa_flags = libc::SA_RESTART;
            // SAFETY: as above.
            let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: both pointers are to live `sigaction`s; `on_signal` is async-signal-safe.
            let rc = unsafe { libc::sigaction(kind.0, &action, &mut previous) };
            if rc != 0 {
                let err = io::Error::last_os_error();
                return Err(if err.raw_os_error() == Some(libc::EINVAL) {
                    SignalError::Invalid(kind.0)
                } else {
                    SignalError::Io(err)
                });
            }
            *slot = Some(Installed {
                listeners: 1,
                previous,
            });
        }
    }
    Ok(Signals {
        index,
        seen,
        registry,
        wake: registry.wake.readable(),
    })
}

/// Waits for one `SIGINT` (Ctrl-C). While it waits, Ctrl-C no longer ends the process.
///
/// # Errors
///
/// [`SignalError::Io`] when the handler cannot be installed.
///
/// # Examples
///
/// ```no_run
/// futures_lite::future::block_on(async {
///     magpie_reactor::signal::ctrl_c().await.unwrap();
///     println!("shutting down");
/// });
/// ```
pub async fn ctrl_c() -> Result<(), SignalError> {
    let mut interrupts = signal(SignalKind::interrupt())?;
    futures_lite::StreamExt::next(&mut interrupts).await;
    Ok(())
}

impl Signals {
    /// The signal this stream listens for.
    pub fn kind(&self) -> SignalKind {
        SignalKind(self.index as i32)
    }

    fn take_delivery(&mut self) -> bool {
        let now = DELIVERED[self.index].load(Ordering::SeqCst);
        if now == self.seen {
            return false;
        }
        self.seen = now;
        true
    }
}

impl Stream for Signals {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let this = self.get_mut();
        loop {
            if this.take_delivery() {
                return Poll::Ready(Some(()));
            }
            // Wait for the socket's next readable edge (registered in this listener's own
            // waiter), then drain the bytes and look at the counter again: the handler bumps
            // the counter before it writes its byte, so a delivery whose byte is drained here
            // is seen at the top of the loop. Another listener's drain does not starve this
            // one: the edge that brought the byte woke every waiter.
            match Pin::new(&mut this.wake).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return this.end_after(&e),
            }
            if let Err(e) = this.drain() {
                return this.end_after(&e);
            }
            this.wake = this.registry.wake.readable();
        }
    }
}

impl Signals {
    /// Reads the wake-up socket until it would block.
    fn drain(&self) -> io::Result<()> {
        let mut socket = self.registry.wake.get_ref();
        let mut sink = [0u8; 64];
        loop {
            match io::Read::read(&mut socket, &mut sink) {
                Ok(n) if n > 0 => continue,
                // End-of-stream: impossible, the registry holds the other end open.
                Ok(_) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// The wake-up socket failed (an OS error): nothing would ever wake this listener again,
    /// so its stream ends rather than wait forever.
    fn end_after(&mut self, error: &io::Error) -> Poll<Option<()>> {
        crate::report::report(format_args!(
            "magpie-reactor: the signal wake-up socket failed ({error}); ending this signal stream"
        ));
        Poll::Ready(self.take_delivery().then_some(()))
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let mut table = self
            .registry
            .table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = &mut table[self.index];
        let Some(installed) = slot else {
            return;
        };
        installed.listeners -= 1;
        if installed.listeners == 0 {
            let previous = installed.previous;
            *slot = None;
            // Put the old disposition back only over our own handler: one installed since by
            // someone else (another library, another copy of this crate) stays theirs.
            if current_handler(self.index as i32) == Some(on_signal_handler()) {
                // SAFETY: `previous` is the disposition the kernel gave us when we installed
                // ours.
                let _ =
                    unsafe { libc::sigaction(self.index as i32, &previous, std::ptr::null_mut()) };
            }
        }
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("signal", &self.index)
            .finish_non_exhaustive()
    }
}
