//! `yield_now`: let other tasks run.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Gives the worker back to the scheduler once: the task goes to the back of the run queue,
/// behind every task that was waiting. asyncio's `await asyncio.sleep(0)`.
///
/// # Examples
///
/// ```
/// magpie_executor::run(async {
///     for _ in 0..3 {
///         magpie_executor::task::yield_now().await;
///     }
/// });
/// ```
#[inline]
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // Woken during its own poll, the task is re-queued behind the others once the poll ends
        // (with its own task's waker, the wake is only recorded: `context::note_self_wake`).
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
