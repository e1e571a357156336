//! Injected faults (feature `fault-injection`), so that tests can show what users see when the
//! OS refuses a thread. Not for production builds: it adds a thread-local check to every
//! thread start.

use std::cell::Cell;
use std::io;

thread_local! {
    /// Thread starts requested from this thread: how many more succeed, then how many fail.
    static THREAD_STARTS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Makes thread starts requested from the calling thread fail as if the OS refused them
/// (`EAGAIN`): after `succeed` more successful starts, the next `fail` ones fail. Covers the
/// threads the executor starts — workers in [`Builder::build`](crate::Builder::build), the
/// blocking pool's threads (started by the thread that calls `spawn_blocking`), the shutdown
/// and debug-mode watchdog threads (the watchdog starts first in `build`, so with
/// `MAGPIE_DEBUG` set it takes one of the starts); not the reactor's threads.
/// `fail_thread_starts(0, 0)` turns it off.
///
/// # Examples
///
/// ```
/// use magpie_executor::{fault, Runtime};
///
/// fault::fail_thread_starts(1, 1); // the second worker cannot start
/// let err = Runtime::builder().worker_threads(2).build().unwrap_err();
/// assert!(err.to_string().contains("injected"));
/// assert!(Runtime::builder().worker_threads(2).build().is_ok()); // only one start failed
/// ```
pub fn fail_thread_starts(succeed: usize, fail: usize) {
    THREAD_STARTS.with(|starts| starts.set((succeed, fail)));
}

/// How many of the injected failures are still to come on the calling thread (0 once they have
/// all been used), so that a test can check its fault was hit.
pub fn pending_thread_start_failures() -> usize {
    THREAD_STARTS.with(|starts| starts.get().1)
}

/// `Err` when the thread start being requested is one to fail.
pub(crate) fn thread_start() -> io::Result<()> {
    let refuse = THREAD_STARTS
        .try_with(|starts| match starts.get() {
            (0, 0) => false,
            (0, fail) => {
                starts.set((0, fail - 1));
                true
            }
            (succeed, fail) => {
                starts.set((succeed - 1, fail));
                false
            }
        })
        .unwrap_or(false);
    if refuse {
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "injected fault: the OS refused to start a thread (magpie_executor::fault)",
        ))
    } else {
        Ok(())
    }
}
