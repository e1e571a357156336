//! Subprocesses on the shared reactor (asyncio's `create_subprocess_exec`).
//!
//! [`Command`] mirrors [`std::process::Command`]; [`Command::spawn`] gives a [`Child`] whose
//! piped stdin, stdout and stderr are `futures-io` streams on the reactor, and whose exit is
//! awaited with [`Child::wait`] — with no thread per child: on Linux 5.3+ the child's pidfd is
//! registered with the reactor and becomes readable when it exits; elsewhere (or on older
//! kernels) a `SIGCHLD` listener ([`crate::signal`]) wakes the waiters, which then check their
//! child without blocking.
//!
//! Zombies: [`Child::wait`] reaps the child. A `Child` dropped before its process exited
//! (killed first with [`Command::kill_on_drop`]) is handed to an orphan list, reaped without
//! blocking whenever a child is spawned or waited for — so an orphan that exits stays a zombie
//! until the process spawns or waits for another child (tokio's orphan queue has the same
//! shape, driven by `SIGCHLD`).
//!
//! # Examples
//!
//! ```
//! use magpie_reactor::process::Command;
//!
//! let output = futures_lite::future::block_on(
//!     Command::new("echo").arg("hello").output(),
//! )
//! .unwrap();
//! assert!(output.status.success());
//! assert_eq!(output.stdout, b"hello\n");
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::path::Path;
use std::pin::Pin;
use std::process::{ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, StreamExt};

use crate::signal::{self, SignalKind, Signals};
use crate::Async;

/// A process builder: [`std::process::Command`] with an async [`spawn`](Command::spawn).
///
/// As with std, a spawned child inherits stdin, stdout and stderr unless set otherwise,
/// except for [`output`](Command::output), which captures stdout and stderr.
pub struct Command {
    inner: std::process::Command,
    kill_on_drop: bool,
    /// Which of stdin, stdout, stderr the caller set: `output` supplies its own defaults
    /// (null, piped, piped) for the others, for that call only.
    stdio_set: [bool; 3],
}

impl Command {
    /// A command to run `program` (looked up in `PATH` when it has no slash).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            inner: std::process::Command::new(program),
            kill_on_drop: false,
            stdio_set: [false; 3],
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env(key, value);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Clears the child's environment.
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Sets the child's stdin (`Stdio::piped()` gives a [`ChildStdin`]).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.stdio_set[0] = true;
        self.inner.stdin(cfg);
        self
    }

    /// Sets the child's stdout (`Stdio::piped()` gives a [`ChildStdout`]).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.stdio_set[1] = true;
        self.inner.stdout(cfg);
        self
    }

    /// Sets the child's stderr (`Stdio::piped()` gives a [`ChildStderr`]).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.stdio_set[2] = true;
        self.inner.stderr(cfg);
        self
    }

    /// Kills the process (`SIGKILL`) when its [`Child`] is dropped before it exited.
    /// Default: `false` (the process runs on; it is reaped once it exits).
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Command {
        self.kill_on_drop = kill;
        self
    }

    /// Starts the process.
    ///
    /// Nothing is left behind when it fails: a failure after the process started (its pipes
    /// or its exit cannot be put on the reactor: no descriptor left, say) kills it, and it is
    /// reaped as an orphan (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// The OS's error: [`io::ErrorKind::NotFound`] for a program that does not exist,
    /// [`io::ErrorKind::PermissionDenied`] for one that cannot be executed, and so on;
    /// [`io::ErrorKind::Unsupported`] on a thread where real I/O is turned off
    /// ([`crate::real_io`]), checked before anything is started.
    pub fn spawn(&mut self) -> io::Result<Child> {
        // Refused before the fork: refused after it, the process would run unsupervised.
        crate::real_io::check()?;
        reap_orphans();
        let mut child = self.inner.spawn()?;
        let pid = child.id();
        let watched = (|| {
            let stdin = child.stdin.take().map(Async::new).transpose()?;
            let stdout = child.stdout.take().map(Async::new).transpose()?;
            let stderr = child.stderr.take().map(Async::new).transpose()?;
            let exit = ExitWatch::new(pid)?;
            Ok::<_, io::Error>((stdin, stdout, stderr, exit))
        })();
        let (stdin, stdout, stderr, exit) = match watched {
            Ok(parts) => parts,
            Err(e) => {
                // The caller gets an error and no `Child`: the process must not outlive it.
                let _ = child.kill();
                lock_orphans().push(child);
                reap_orphans();
                return Err(e);
            }
        };
        Ok(Child {
            pid,
            child: Some(child),
            status: None,
            exit,
            kill_on_drop: self.kill_on_drop,
            stdin: stdin.map(|inner| ChildStdin { inner: Some(inner) }),
            stdout: stdout.map(|inner| ChildStdout { inner }),
            stderr: stderr.map(|inner| ChildStderr { inner }),
        })
    }

    /// Runs the process to its end (stdio inherited unless set) and returns its exit status.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn), or an error waiting for the process.
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.spawn()?;
        // Like std: the child's stdin is not left open for it to wait on.
        drop(child.stdin.take());
        child.wait().await
    }

    /// Runs the process to its end with stdout and stderr captured and stdin empty (each
    /// unless set otherwise, as std's `output`) and returns its status and output (asyncio's
    /// `communicate()`). The command's own settings are left as they were.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn), or an error reading the output or waiting for the process.
    pub async fn output(&mut self) -> io::Result<Output> {
        self.output_defaults(true);
        let spawned = self.spawn();
        self.output_defaults(false);
        let mut child = spawned?;
        drop(child.stdin.take());
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let (out, err) =
            futures_lite::future::zip(read_all(stdout.as_mut()), read_all(stderr.as_mut())).await;
        let status = child.wait().await?;
        Ok(Output {
            status,
            stdout: out?,
            stderr: err?,
        })
    }
}

impl Command {
    /// For what the caller did not set: `output`'s defaults (stdin null, stdout and stderr
    /// piped) when `on`, else back to `spawn`'s (inherit).
    fn output_defaults(&mut self, on: bool) {
        let [stdin_set, stdout_set, stderr_set] = self.stdio_set;
        let pick = |output: fn() -> Stdio| if on { output() } else { Stdio::inherit() };
        if !stdin_set {
            self.inner.stdin(pick(Stdio::null));
        }
        if !stdout_set {
            self.inner.stdout(pick(Stdio::piped));
        }
        if !stderr_set {
            self.inner.stderr(pick(Stdio::piped));
        }
    }
}

/// Everything `stream` (if any) yields until its end.
async fn read_all<R: AsyncRead + Unpin>(stream: Option<&mut R>) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if let Some(stream) = stream {
        stream.read_to_end(&mut buf).await?;
    }
    Ok(buf)
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("command", &self.inner)
            .field("kill_on_drop", &self.kill_on_drop)
            .finish_non_exhaustive()
    }
}

/// How a child's exit is noticed.
enum ExitWatch {
    /// Linux 5.3+: the child's pidfd, readable once it exits.
    #[cfg(target_os = "linux")]
    Pidfd(Async<std::os::fd::OwnedFd>),
    /// Elsewhere: `SIGCHLD` deliveries; each waiter then checks its own child.
    SigChld(Signals),
}

impl ExitWatch {
    fn new(pid: u32) -> io::Result<ExitWatch> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: `pidfd_open(pid, 0)` takes plain integers and returns a new descriptor
            // (or -1); nothing else is touched.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
            if fd >= 0 {
                use std::os::fd::FromRawFd;
                // SAFETY: a fresh descriptor that nothing else owns.
                let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
                // If the reactor will not take it (its registration limit, say), the SIGCHLD
                // way below may still work: its one registration already exists.
                if let Ok(pidfd) = Async::new(owned) {
                    return Ok(ExitWatch::Pidfd(pidfd));
                }
            }
            // ENOSYS (kernel before 5.3) or a sandbox refusing it: the SIGCHLD way.
        }
        let _ = pid;
        signal::signal(SignalKind::child())
            .map(ExitWatch::SigChld)
            .map_err(|e| io::Error::other(format!("cannot watch for child exits: {e}")))
    }
}

/// A running (or finished) child process.
///
/// Dropping it does not kill the process unless [`Command::kill_on_drop`] was set; either
/// way the process is reaped after it exits, at the next spawn or wait of a child (see the
/// [module docs](self)).
pub struct Child {
    pid: u32,
    /// `None` once reaped.
    child: Option<std::process::Child>,
    status: Option<ExitStatus>,
    exit: ExitWatch,
    kill_on_drop: bool,
    /// The child's stdin, if piped.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if piped.
    pub stderr: Option<ChildStderr>,
}

impl Child {
    /// The OS process id (once the process is reaped, the OS may give it to another).
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Waits for the process to exit and reaps it. Waiting again returns the same status.
    ///
    /// # Errors
    ///
    /// The OS's error from `waitpid`, or from watching for the exit.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait()? {
                reap_orphans();
                return Ok(status);
            }
            match &mut self.exit {
                #[cfg(target_os = "linux")]
                ExitWatch::Pidfd(fd) => fd.readable().await?,
                ExitWatch::SigChld(deliveries) => {
                    deliveries.next().await;
                }
            }
        }
    }

    /// The exit status if the process has exited (reaping it), without waiting.
    ///
    /// # Errors
    ///
    /// The OS's error from `waitpid`.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let Some(child) = self.child.as_mut() else {
            return Ok(self.status);
        };
        let status = child.try_wait()?;
        if let Some(status) = status {
            self.status = Some(status);
            self.child = None;
        }
        Ok(status)
    }

    /// Kills the process (`SIGKILL`) if it is still running, then waits for it to exit.
    /// Killing a process that has already exited is not an error: it returns its status.
    ///
    /// # Errors
    ///
    /// The OS's error from `kill` or `waitpid`.
    pub async fn kill(&mut self) -> io::Result<ExitStatus> {
        self.start_kill()?;
        self.wait().await
    }

    /// Sends `SIGKILL` without waiting (no-op once the process was reaped).
    ///
    /// # Errors
    ///
    /// The OS's error from `kill`.
    pub fn start_kill(&mut self) -> io::Result<()> {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        match self.child.as_mut() {
            Some(child) => child.kill(),
            None => Ok(()),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let Ok(None) = self.try_wait() else {
            return;
        };
        if let Some(mut child) = self.child.take() {
            if self.kill_on_drop {
                let _ = child.kill();
            }
            lock_orphans().push(child);
        }
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("id", &self.id())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Children dropped before they exited, reaped without blocking whenever a child is spawned
/// or waited for.
static ORPHANS: Mutex<Vec<std::process::Child>> = Mutex::new(Vec::new());

fn lock_orphans() -> std::sync::MutexGuard<'static, Vec<std::process::Child>> {
    ORPHANS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reaps the orphans that have exited.
fn reap_orphans() {
    lock_orphans().retain_mut(|child| matches!(child.try_wait(), Ok(None)));
}

macro_rules! pipe_type {
    ($(#[$doc:meta])* $name:ident, $std:ty) => {
        $(#[$doc])*
        pub struct $name {
            inner: Async<$std>,
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

/// The child's stdin: an `AsyncWrite`. Drop it, or `close` it, to send end-of-file: `close`
/// closes the pipe's write end (a write after it fails with
/// [`io::ErrorKind::BrokenPipe`]).
pub struct ChildStdin {
    /// `None` once closed.
    inner: Option<Async<std::process::ChildStdin>>,
}

impl fmt::Debug for ChildStdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildStdin")
            .field("closed", &self.inner.is_none())
            .finish_non_exhaustive()
    }
}

impl ChildStdin {
    /// The open pipe, or the error a write to a closed one gets.
    fn open(&mut self) -> io::Result<Pin<&mut Async<std::process::ChildStdin>>> {
        match &mut self.inner {
            Some(inner) => Ok(Pin::new(inner)),
            None => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the child's stdin was closed",
            )),
        }
    }
}
pipe_type!(
    /// The child's stdout: an `AsyncRead`.
    ChildStdout,
    std::process::ChildStdout
);
pipe_type!(
    /// The child's stderr: an `AsyncRead`.
    ChildStderr,
    std::process::ChildStderr
);

impl AsyncWrite for ChildStdin {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.open() {
            Ok(inner) => inner.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.open() {
            Ok(inner) => inner.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Nothing to flush: a pipe write is in the pipe when it returns.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Closes the pipe's write end (taken off the reactor, then closed): the child reads
    /// end-of-file. Closing again does nothing.
    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        drop(self.inner.take());
        Poll::Ready(Ok(()))
    }
}

macro_rules! read_impl {
    ($name:ident) => {
        impl AsyncRead for $name {
            fn poll_read(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_read(cx, buf)
            }

            fn poll_read_vectored(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &mut [IoSliceMut<'_>],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.inner).poll_read_vectored(cx, bufs)
            }
        }
    };
}

read_impl!(ChildStdout);
read_impl!(ChildStderr);
