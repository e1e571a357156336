//! `block_on`: drive one future on the current thread, parking between polls.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::loom::thread_local;
use crate::runtime::park::Parker;

fn new_parker() -> (Parker, Waker) {
    let parker = Parker::new();
    let waker = parker.unparker().into_waker();
    (parker, waker)
}

thread_local! {
    /// One parker per thread, reused across `block_on` calls (no allocation per call).
    static CACHED: RefCell<(Parker, Waker)> = RefCell::new(new_parker());
}

/// Drives `future` to completion on the current thread, without a runtime: polls it, and
/// parks the thread until its waker is called. Tasks are not spawned anywhere by this; use
/// [`run`](crate::run) or a [`Runtime`](crate::Runtime) for that.
///
/// # Panics
///
/// When called from a magpie worker thread (inside a task): it would block that worker until
/// the future completes, stalling every task queued behind it — and, if the future waits for
/// one of those (a task it spawned, on a runtime with one worker), for ever. `.await` the
/// future there instead. ([`Runtime::block_on`](crate::Runtime::block_on) refuses the same.)
///
/// # Examples
///
/// ```
/// let value = magpie_executor::block_on(async { 40 + 2 });
/// assert_eq!(value, 42);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    if crate::runtime::context::with_core(|core| core.is_some()) {
        panic!(
            "`block_on` called from inside a magpie worker thread: blocking a worker can \
             deadlock the runtime; `.await` the future instead"
        );
    }
    let mut future = pin!(future);
    // A nested `block_on` (inside a future polled by an outer one) must not share the outer
    // parker: it would consume the outer future's wakeups. It gets a fresh one.
    CACHED.with(|cached| match cached.try_borrow_mut() {
        Ok(cached) => drive(future.as_mut(), &cached.0, &cached.1),
        Err(_) => {
            let (parker, waker) = new_parker();
            drive(future.as_mut(), &parker, &waker)
        }
    })
}

fn drive<F: Future>(
    mut future: std::pin::Pin<&mut F>,
    parker: &Parker,
    waker: &Waker,
) -> F::Output {
    let mut cx = Context::from_waker(waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A thread that ran `Runtime::block_on` may cache task cells: like a worker, it gives
        // them back at a park after a second without using them.
        crate::task::cell_cache::on_park();
        parker.park();
    }
}
