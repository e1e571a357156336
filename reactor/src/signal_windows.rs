//! Ctrl-C on Windows (asyncio's `loop.add_signal_handler(signal.SIGINT, …)`).
//!
//! Windows has no Unix signals: its console hands control events to handlers that the system
//! runs on a thread of its own. [`ctrl_c`] waits for one Ctrl-C or Ctrl-Break. The handler is
//! installed once, on first use (`SetConsoleCtrlHandler`), and stays; it takes an event (the
//! process goes on) only while at least one [`ctrl_c`] future waits, and otherwise leaves it
//! to the next handler — by default the one that ends the process, as before. The other Unix
//! signals, and [`signal`](../signal/fn.signal.html) streams, are Unix-only.
//!
//! No reactor is involved: the handler's thread wakes the waiting tasks itself.
//!
//! # Examples
//!
//! ```no_run
//! futures_lite::future::block_on(async {
//!     magpie_reactor::signal::ctrl_c().await.unwrap();
//!     println!("shutting down");
//! });
//! ```

use std::fmt;
use std::io;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::task::{Poll, Waker};

use windows_sys::core::BOOL;
use windows_sys::Win32::System::Console::{SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_C_EVENT};

/// Why Ctrl-C cannot be listened for.
#[derive(Debug)]
#[non_exhaustive]
pub enum SignalError {
    /// The OS refused to set the handler up.
    Io(io::Error),
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalError::Io(e) => write!(f, "cannot install the console control handler: {e}"),
        }
    }
}

impl std::error::Error for SignalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SignalError::Io(e) => Some(e),
        }
    }
}

/// What the handler and the waiting futures share.
struct Listeners {
    /// Ctrl-C and Ctrl-Break events taken so far.
    deliveries: u64,
    /// `ctrl_c` futures alive that have been polled: while non-zero, the handler takes events.
    waiting: usize,
    /// Source of the waiting futures' ids.
    next_id: u64,
    /// The wakers of the waiting futures that have been polled, by id; each future removes its
    /// own when it is dropped, so the list never holds more than the futures alive.
    wakers: Vec<(u64, Waker)>,
}

static LISTENERS: Mutex<Listeners> = Mutex::new(Listeners {
    deliveries: 0,
    waiting: 0,
    next_id: 0,
    wakers: Vec::new(),
});

/// Whether the handler is installed (or why it could not be), decided once.
static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();

fn listeners() -> MutexGuard<'static, Listeners> {
    // Nothing panics while holding the lock but a waker's clone: the data stays consistent.
    LISTENERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The console control handler. Runs on a thread the system creates for the event.
unsafe extern "system" fn handler(event: u32) -> BOOL {
    if event != CTRL_C_EVENT && event != CTRL_BREAK_EVENT {
        return 0; // not ours: the next handler decides
    }
    let wakers = {
        let mut l = listeners();
        if l.waiting == 0 {
            return 0; // nobody waits: the default handler ends the process
        }
        l.deliveries += 1;
        std::mem::take(&mut l.wakers)
    };
    for (_, waker) in wakers {
        // A panicking waker must not unwind into the system's thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()));
    }
    1
}

fn install() -> Result<(), SignalError> {
    let installed = INSTALLED.get_or_init(|| {
        // SAFETY: `handler` is a valid `PHANDLER_ROUTINE` that lives for the whole program.
        if unsafe { SetConsoleCtrlHandler(Some(handler), 1) } == 0 {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(())
        }
    });
    installed.map_err(|code| SignalError::Io(io::Error::from_raw_os_error(code)))
}

/// One waiting `ctrl_c`; stops counting as a listener, and forgets its waker, when dropped.
struct Waiting {
    id: u64,
    seen: u64,
}

impl Waiting {
    fn new() -> Waiting {
        let mut l = listeners();
        l.waiting += 1;
        let id = l.next_id;
        l.next_id += 1;
        Waiting {
            id,
            seen: l.deliveries,
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let removed = {
            let mut l = listeners();
            l.waiting -= 1;
            let at = l.wakers.iter().position(|(id, _)| *id == self.id);
            at.map(|at| l.wakers.swap_remove(at))
        };
        // Dropped outside the lock: a waker's drop may run executor code.
        drop(removed);
    }
}

/// Waits for one Ctrl-C (or Ctrl-Break). While it waits, Ctrl-C no longer ends the process.
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
    install()?;
    let waiting = Waiting::new();
    std::future::poll_fn(|cx| {
        let mut l = listeners();
        if l.deliveries != waiting.seen {
            return Poll::Ready(Ok(()));
        }
        match l.wakers.iter_mut().find(|(id, _)| *id == waiting.id) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => l.wakers.push((waiting.id, cx.waker().clone())),
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future;
    use std::future::Future;

    /// The listeners are process-wide: one test at a time.
    fn serial() -> MutexGuard<'static, ()> {
        static SERIAL: Mutex<()> = Mutex::new(());
        SERIAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A wait dropped while another goes on leaves no waker behind.
    #[test]
    fn a_dropped_wait_forgets_its_waker() {
        let _serial = serial();
        let mut first = Box::pin(ctrl_c());
        let mut second = Box::pin(ctrl_c());
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert_eq!(listeners().wakers.len(), 2);
        drop(first);
        assert_eq!(listeners().wakers.len(), 1);
        drop(second);
        assert!(listeners().wakers.is_empty());
        assert_eq!(listeners().waiting, 0);
    }

    /// The handler as the console calls it: taken (TRUE) only while a `ctrl_c` waits, and
    /// then it completes that wait. (Raising a real console event is not possible where the
    /// tests run without a console, under Wine in CI.)
    #[test]
    fn the_handler_completes_a_waiting_ctrl_c_and_takes_the_event_only_then() {
        let _serial = serial();
        // SAFETY: a plain call of our own handler.
        assert_eq!(unsafe { handler(CTRL_C_EVENT) }, 0, "nobody waits yet");
        let waiter = std::thread::spawn(|| future::block_on(ctrl_c()));
        while listeners().waiting == 0 {
            std::thread::yield_now();
        }
        // SAFETY: as above.
        assert_eq!(unsafe { handler(CTRL_BREAK_EVENT) }, 1, "a waiter takes it");
        waiter.join().unwrap().unwrap();
        assert_eq!(listeners().waiting, 0);
        assert!(
            listeners().wakers.is_empty(),
            "the finished wait took its waker along"
        );
        // SAFETY: as above.
        assert_eq!(unsafe { handler(CTRL_C_EVENT) }, 0, "nobody waits any more");
        // Not Ctrl-C or Ctrl-Break (CTRL_CLOSE_EVENT): never ours.
        assert_eq!(unsafe { handler(2) }, 0);
    }
}
