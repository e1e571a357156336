//! `join_all`: await many futures, collecting every output in input order.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::future_set::FutureSet;

/// Runs every future of `futures` concurrently and resolves to all their outputs, in
/// input order (asyncio's `gather`).
///
/// The futures run *concurrently within the task that awaits the `JoinAll`*: they take
/// turns on that one task, never in parallel. For parallel execution on many worker
/// threads, spawn each one first and pass the `JoinHandle`s (they are futures too).
///
/// Each child gets its own waker, so a wake polls just that child: with 100 000 children
/// of which one is woken at a time, each wake costs O(1), not a rescan of all of them.
/// A child is dropped as soon as it completes; its output is kept until the end.
///
/// # Panics
///
/// Polling the returned future again after it resolved panics. A panic of a child
/// propagates out of the poll of the `JoinAll` (the child is dropped first), and polling it
/// again after that panics too: its output will never come.
///
/// # Examples
///
/// ```
/// use futures_lite::future::block_on;
/// use magpie_executor::combinator::join_all;
///
/// async fn fetch(site: &str) -> String {
///     format!("data from {site}")
/// }
///
/// let pages = block_on(join_all(["a.com", "b.com"].map(fetch)));
/// assert_eq!(pages, ["data from a.com", "data from b.com"]);
/// ```
#[doc(alias = "gather")]
pub fn join_all<I>(futures: I) -> JoinAll<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    let set = FutureSet::new(futures.into_iter().map(IntoFuture::into_future));
    let outputs = std::iter::repeat_with(|| None).take(set.len()).collect();
    JoinAll {
        set,
        outputs,
        finished: false,
    }
}

/// The future returned by [`join_all`]; resolves to a `Vec` of the outputs in input
/// order.
#[must_use = "futures do nothing unless awaited"]
pub struct JoinAll<F: Future> {
    set: FutureSet<F>,
    /// `outputs[i]` is child `i`'s output once it completed.
    outputs: Vec<Option<F::Output>>,
    finished: bool,
}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is `Unpin` (the children live in their own pinned allocation).
        let this = self.get_mut();
        assert!(!this.finished, "`JoinAll` polled after completion");
        assert!(
            !this.set.panicked(),
            "`JoinAll` polled after one of its futures panicked"
        );
        this.set.begin_poll(cx);
        while let Some((index, output)) = this.set.next_completed() {
            this.outputs[index] = Some(output);
        }
        if this.set.pending() > 0 {
            return Poll::Pending;
        }
        this.finished = true;
        let outputs = std::mem::take(&mut this.outputs);
        Poll::Ready(
            outputs
                .into_iter()
                .map(|output| output.expect("every child of a finished `JoinAll` has an output"))
                .collect(),
        )
    }
}

// The outputs are never pinned (only the children are, in their own allocation), so
// moving a `JoinAll` is fine whatever the output type.
impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> fmt::Debug for JoinAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinAll")
            .field("len", &self.set.len())
            .field("pending", &self.set.pending())
            .finish()
    }
}
