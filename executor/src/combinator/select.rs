//! First-to-finish combinators: `select` and `race` of two futures, `wait_any` of many.

use std::cell::Cell;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::either::Either;
use super::future_set::FutureSet;

/// Waits for the first of two futures to complete; resolves to its output, tagged
/// [`Either::Left`] for `left` and [`Either::Right`] for `right`. The loser is dropped
/// (cancelled) at once.
///
/// Fairness: on every poll the side polled first is chosen at random (a fast
/// thread-local generator, not a cryptographic one). If both are ready, each wins half
/// the time. A fixed order would let an always-ready `left` starve `right` forever in
/// the common loop `loop { match select(a.recv(), b.recv()).await { .. } }`, since that
/// builds a fresh `Select` each turn (so alternating per `Select` would not help either).
/// For more than two futures, nest (`select(a, select(b, c))`; the nested side then wins
/// a tie less often) or use [`wait_any`].
///
/// # Panics
///
/// Polling the returned future again after it resolved panics.
///
/// # Examples
///
/// ```
/// use futures_lite::future::{self, block_on};
/// use magpie_executor::combinator::{select, Either};
///
/// let never = future::pending::<u32>();
/// let ready = async { "done" };
/// assert_eq!(block_on(select(never, ready)), Either::Right("done"));
/// ```
pub fn select<A, B>(left: A, right: B) -> Select<A::IntoFuture, B::IntoFuture>
where
    A: IntoFuture,
    B: IntoFuture,
{
    Select {
        left: Some(left.into_future()),
        right: Some(right.into_future()),
    }
}

/// Waits for the first of two futures with the same output type to complete and
/// resolves to that output; the loser is dropped (cancelled) at once.
///
/// Same fairness as [`select`] (the side polled first is random on every poll), which
/// it wraps.
///
/// # Panics
///
/// Polling the returned future again after it resolved panics.
///
/// # Examples
///
/// ```
/// use futures_lite::future::{self, block_on};
/// use magpie_executor::combinator::race;
///
/// let winner = block_on(race(future::pending(), async { 7 }));
/// assert_eq!(winner, 7);
/// ```
pub fn race<A, B>(left: A, right: B) -> Race<A::IntoFuture, B::IntoFuture>
where
    A: IntoFuture,
    B: IntoFuture<Output = A::Output>,
{
    Race {
        select: select(left, right),
    }
}

pin_project! {
    /// The future returned by [`select`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Select<A, B> {
        // `None` once dropped: both sides are dropped as soon as one completes.
        #[pin]
        left: Option<A>,
        #[pin]
        right: Option<B>,
    }
}

pin_project! {
    /// The future returned by [`race`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Race<A, B> {
        #[pin]
        select: Select<A, B>,
    }
}

/// Polls the future in `slot`; once it completes, drops it.
fn poll_slot<F: Future>(mut slot: Pin<&mut Option<F>>, cx: &mut Context<'_>) -> Poll<F::Output> {
    let future = slot
        .as_mut()
        .as_pin_mut()
        .expect("`Select` polled after completion");
    let output = std::task::ready!(future.poll(cx));
    slot.set(None);
    Poll::Ready(output)
}

impl<A: Future, B: Future> Future for Select<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let won = if coin_flip() {
            match poll_slot(this.left.as_mut(), cx) {
                Poll::Ready(output) => Poll::Ready(Either::Left(output)),
                Poll::Pending => poll_slot(this.right.as_mut(), cx).map(Either::Right),
            }
        } else {
            match poll_slot(this.right.as_mut(), cx) {
                Poll::Ready(output) => Poll::Ready(Either::Right(output)),
                Poll::Pending => poll_slot(this.left.as_mut(), cx).map(Either::Left),
            }
        };
        if won.is_ready() {
            // Cancel the loser now, not whenever the `Select` itself is dropped.
            this.left.set(None);
            this.right.set(None);
        }
        won
    }
}

impl<A, B> Future for Race<A, B>
where
    A: Future,
    B: Future<Output = A::Output>,
{
    type Output = A::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<A::Output> {
        self.project().select.poll(cx).map(Either::into_inner)
    }
}

impl<A, B> fmt::Debug for Select<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("left_pending", &self.left.is_some())
            .field("right_pending", &self.right.is_some())
            .finish()
    }
}

impl<A, B> fmt::Debug for Race<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Race")
            .field("left_pending", &self.select.left.is_some())
            .field("right_pending", &self.select.right.is_some())
            .finish()
    }
}

thread_local! {
    /// This thread's coin: a xorshift64 state, seeded from std's per-process random hash keys,
    /// or from the run's seed while the thread runs the deterministic runtime.
    static COIN: Cell<u64> = Cell::new(seed());
}

/// A fair coin: which side `Select` polls first. The top bit of the thread's xorshift64 state
/// (the best-mixed one of xorshift).
fn coin_flip() -> bool {
    COIN.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x >> 63 == 1
    })
}

/// Sets this thread's coin to `state` (made non-zero, as xorshift needs) and returns the one
/// it replaces: the deterministic runtime seeds it from its run's seed, so that `select` and
/// `race` replay with the seed too, and puts the old one back afterwards.
#[cfg(not(loom))]
pub(crate) fn replace_coin(state: u64) -> u64 {
    COIN.with(|coin| coin.replace(state | 1))
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    // Distinct per thread even if two threads got the same keys.
    hasher.write_usize(&hasher as *const _ as usize);
    // xorshift must not start at zero.
    hasher.finish() | 1
}

/// Waits for the first of many futures to complete (asyncio's `wait` with
/// `FIRST_COMPLETED`); resolves to `(output, index, remaining)`: the winner's output,
/// its index in the input, and every other future, unfinished and in input order (so
/// the one at input index `i > index` is at `remaining[i - 1]`).
///
/// The unfinished futures are handed back rather than dropped, so the caller can keep
/// awaiting them (e.g. call `wait_any(remaining)` again). That requires moving them out,
/// hence the `Unpin` bound: pass `Box::pin(fut)` for futures that are not `Unpin` (as
/// `async` blocks are not); `JoinHandle`s and most hand-written futures are `Unpin`.
///
/// Like [`join_all`](fn@super::join_all), each child has its own waker and a wake costs
/// O(1). Fairness: the children polled in one turn are taken in the order they were
/// woken (input order on the first poll); the first one found complete wins.
///
/// Each call polls every future it is given once more, to register its own wakers: calling
/// it again on what it hands back, to take every future as it finishes, costs O(n²) polls
/// for n futures. To go through all of them as they finish, use
/// [`as_completed`](fn@super::as_completed), which polls each only when woken.
///
/// # Panics
///
/// Panics at once if `futures` is empty (there would be nothing to wait for: the
/// future could never resolve). Polling the returned future again after it resolved
/// panics.
///
/// # Examples
///
/// ```
/// use futures_lite::future::{self, block_on};
/// use magpie_executor::combinator::wait_any;
///
/// let futures = vec![
///     Box::pin(future::pending::<&str>()) as std::pin::Pin<Box<dyn std::future::Future<Output = &str>>>,
///     Box::pin(async { "second" }),
/// ];
/// let (output, index, remaining) = block_on(wait_any(futures));
/// assert_eq!((output, index, remaining.len()), ("second", 1, 1));
/// ```
pub fn wait_any<I>(futures: I) -> WaitAny<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
    <I::Item as IntoFuture>::IntoFuture: Unpin,
{
    let set = FutureSet::new(futures.into_iter().map(IntoFuture::into_future));
    assert!(set.len() > 0, "`wait_any` needs at least one future");
    WaitAny {
        set,
        finished: false,
    }
}

/// The future returned by [`wait_any`].
#[must_use = "futures do nothing unless awaited"]
pub struct WaitAny<F> {
    set: FutureSet<F>,
    finished: bool,
}

impl<F: Future + Unpin> Future for WaitAny<F> {
    type Output = (F::Output, usize, Vec<F>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `FutureSet` is `Unpin` (the children live in their own pinned allocation).
        let this = self.get_mut();
        assert!(!this.finished, "`WaitAny` polled after completion");
        // Only a child's panic takes the last one away without completing the `WaitAny`.
        assert!(
            this.set.pending() > 0,
            "`WaitAny` polled after its futures panicked: none is left to wait for"
        );
        this.set.begin_poll(cx);
        match this.set.next_completed() {
            Some((index, output)) => {
                this.finished = true;
                Poll::Ready((output, index, this.set.take_remaining()))
            }
            None => Poll::Pending,
        }
    }
}

impl<F: Future> fmt::Debug for WaitAny<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitAny")
            .field("len", &self.set.len())
            .field("finished", &self.finished)
            .finish()
    }
}
