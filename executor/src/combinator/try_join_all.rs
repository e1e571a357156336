//! `try_join_all`: await many fallible futures, stopping at the first error.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::future_set::FutureSet;

/// Runs every future of `futures` concurrently; resolves to `Ok` with all their values in
/// input order, or to the first `Err` that completes.
///
/// On the first error every other child is dropped at once, which cancels it (it stops
/// at its current `.await` point and its destructors run). Like [`join_all`], the
/// children run concurrently within the awaiting task, each wake costs O(1), and a
/// child is dropped as soon as it completes.
///
/// [`join_all`]: fn@super::join_all
///
/// # Panics
///
/// Polling the returned future again after it resolved panics. A panic of a child
/// propagates out of the poll of the `TryJoinAll` (the child is dropped first), and polling it
/// again after that panics too: its output will never come.
///
/// # Examples
///
/// ```
/// use futures_lite::future::block_on;
/// use magpie_executor::combinator::try_join_all;
///
/// async fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
///     text.parse()
/// }
///
/// assert_eq!(block_on(try_join_all(["1", "2"].map(parse))), Ok(vec![1, 2]));
/// assert!(block_on(try_join_all(["1", "x"].map(parse))).is_err());
/// ```
pub fn try_join_all<I, T, E>(futures: I) -> TryJoinAll<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture<Output = Result<T, E>>,
{
    let set = FutureSet::new(futures.into_iter().map(IntoFuture::into_future));
    let values = std::iter::repeat_with(|| None).take(set.len()).collect();
    TryJoinAll {
        set,
        values,
        finished: false,
    }
}

/// The future returned by [`try_join_all`]; resolves to `Ok(values in input order)` or
/// to the first error.
#[must_use = "futures do nothing unless awaited"]
pub struct TryJoinAll<F: Future> {
    set: FutureSet<F>,
    /// `values[i]` is child `i`'s result once it completed; only `Ok`s are ever stored.
    values: Vec<Option<F::Output>>,
    finished: bool,
}

impl<F, T, E> Future for TryJoinAll<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<Vec<T>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is `Unpin` (the children live in their own pinned allocation).
        let this = self.get_mut();
        assert!(!this.finished, "`TryJoinAll` polled after completion");
        assert!(
            !this.set.panicked(),
            "`TryJoinAll` polled after one of its futures panicked"
        );
        this.set.begin_poll(cx);
        while let Some((index, result)) = this.set.next_completed() {
            if let Err(error) = result {
                this.finished = true;
                // Cancel every sibling now, not when the `TryJoinAll` is dropped.
                this.set.clear();
                this.values = Vec::new();
                return Poll::Ready(Err(error));
            }
            this.values[index] = Some(result);
        }
        if this.set.pending() > 0 {
            return Poll::Pending;
        }
        this.finished = true;
        let values = std::mem::take(&mut this.values);
        Poll::Ready(Ok(values
            .into_iter()
            .map(|value| match value {
                Some(Ok(value)) => value,
                _ => unreachable!("a finished `TryJoinAll` holds an `Ok` for every child"),
            })
            .collect()))
    }
}

// The outputs are never pinned (only the children are, in their own allocation), so
// moving a `TryJoinAll` is fine whatever the output type.
impl<F: Future> Unpin for TryJoinAll<F> {}

impl<F: Future> fmt::Debug for TryJoinAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryJoinAll")
            .field("len", &self.set.len())
            .field("pending", &self.set.pending())
            .finish()
    }
}
