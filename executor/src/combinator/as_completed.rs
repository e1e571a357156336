//! `as_completed`: a stream of outputs in the order the futures finish.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::Stream;

use super::future_set::FutureSet;

/// Runs every future of `futures` concurrently and yields their outputs in completion
/// order (asyncio's `as_completed`); the stream ends after the last one.
///
/// Any future works, including the executor's `JoinHandle`s, whose tasks then run in
/// parallel while the stream reports them as they finish. Each child has its own waker,
/// so a wake polls only that child (no rescans); children that complete in the same
/// poll are yielded in the order they were woken. A child is dropped as soon as it
/// completes; dropping the stream drops (cancels) every child still pending.
///
/// # Panics
///
/// A panic of a child propagates out of the poll of the stream, and the child is dropped: a
/// caller that catches it and polls on gets the other children's outputs, then the end.
///
/// # Examples
///
/// ```
/// use futures_lite::{future, future::block_on, StreamExt};
/// use magpie_executor::combinator::as_completed;
///
/// async fn job(name: &str, turns: usize) -> &str {
///     for _ in 0..turns {
///         future::yield_now().await; // give the other children a turn
///     }
///     name
/// }
///
/// let jobs = [job("slow", 3), job("medium", 1), job("fast", 0)];
/// let order: Vec<&str> = block_on(as_completed(jobs).collect());
/// assert_eq!(order, ["fast", "medium", "slow"]);
/// ```
pub fn as_completed<I>(futures: I) -> AsCompleted<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    AsCompleted {
        set: FutureSet::new(futures.into_iter().map(IntoFuture::into_future)),
    }
}

/// The stream returned by [`as_completed`].
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<F> {
    set: FutureSet<F>,
}

impl<F: Future> Stream for AsCompleted<F> {
    type Item = F::Output;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        // `FutureSet` is `Unpin` (the children live in their own pinned allocation).
        let this = self.get_mut();
        if this.set.pending() == 0 {
            return Poll::Ready(None);
        }
        this.set.begin_poll(cx);
        match this.set.next_completed() {
            // Children collected but not yet polled stay queued for the next call.
            Some((_, output)) => Poll::Ready(Some(output)),
            None => Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.set.pending(), Some(self.set.pending()))
    }
}

impl<F: Future> fmt::Debug for AsCompleted<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("len", &self.set.len())
            .field("pending", &self.set.pending())
            .finish()
    }
}
