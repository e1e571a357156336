//! `timeout` and `timeout_at`: asyncio's `wait_for`.

use std::error::Error;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::sleep::Sleep;
use crate::store::{self, TimerStore};

/// The error of [`timeout`] and [`timeout_at`]: the deadline passed before the future completed.
///
/// # Examples
/// ```
/// assert_eq!(format!("{}", magpie_timers::Elapsed::new()), "deadline has elapsed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Elapsed(());

impl Elapsed {
    /// An `Elapsed` error (for code that adapts other timeouts to this one).
    pub fn new() -> Self {
        Elapsed(())
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl Error for Elapsed {}

/// Runs `future` with a time limit of `duration`, like asyncio's `wait_for`.
///
/// Resolves to `Ok(output)` if `future` completes first and to `Err(Elapsed)` once the deadline
/// passes, in which case `future` is dropped (cancelled) before `Err` is returned. The inner
/// future is polled before the deadline is checked, so a future that is ready wins even when
/// the deadline has passed, and one that is ready on its first poll never touches the timer
/// store. A duration too long to represent means no time limit.
///
/// As with `wait_for`, the clock starts when the timeout is awaited, not when it is created:
/// the deadline is `duration` after the first poll that finds `future` pending. A future that
/// is ready at once therefore never even reads the clock (reading it costs more than the rest
/// of the call).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use magpie_timers::{sleep, timeout, Elapsed};
///
/// futures_lite::future::block_on(async {
///     assert_eq!(timeout(Duration::from_secs(1), async { 7 }).await, Ok(7));
///     let slow = sleep(Duration::from_secs(3600));
///     assert_eq!(timeout(Duration::from_millis(1), slow).await, Err(Elapsed::new()));
/// });
/// ```
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    Timeout::new(
        store::global(),
        Limit::After(duration),
        future.into_future(),
    )
}

/// Runs `future` until `deadline`; see [`timeout`].
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
/// use magpie_timers::{sleep, timeout_at};
///
/// futures_lite::future::block_on(async {
///     let deadline = Instant::now() + Duration::from_millis(1);
///     assert!(timeout_at(deadline, sleep(Duration::from_secs(3600))).await.is_err());
///     assert!(Instant::now() >= deadline);
/// });
/// ```
pub fn timeout_at<F: IntoFuture>(deadline: Instant, future: F) -> Timeout<F::IntoFuture> {
    Timeout::new(
        store::global(),
        Limit::At(Some(deadline)),
        future.into_future(),
    )
}

/// When a [`Timeout`] expires.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// At this instant (`None`: never).
    At(Option<Instant>),
    /// This long after the first poll that finds the inner future pending.
    After(Duration),
}

/// The future returned by [`timeout`] and [`timeout_at`].
///
/// It is [`Unpin`] when the inner future is. Polling it again after it completed panics.
#[must_use = "futures do nothing unless polled"]
pub struct Timeout<F> {
    /// Structurally pinned; `None` once completed (the inner future has been dropped).
    future: Option<F>,
    limit: Limit,
    /// Created on the first poll that finds the inner future pending.
    sleep: Option<Sleep>,
    store: &'static TimerStore,
}

impl<F: Future> Timeout<F> {
    fn new(store: &'static TimerStore, limit: Limit, future: F) -> Self {
        Timeout {
            future: Some(future),
            limit,
            sleep: None,
            store,
        }
    }

    /// The deadline, or `None` for no time limit — and, for [`timeout`], `None` until the
    /// first poll that found the inner future pending started the clock.
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let deadline = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(magpie_timers::timeout_at(deadline, async {}).deadline(), Some(deadline));
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        match self.limit {
            Limit::At(deadline) => deadline,
            Limit::After(_) => None,
        }
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    /// # Panics
    /// When polled again after it completed.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `future` is the only structurally pinned field: it is never moved out of `self`,
        // only polled through a `Pin` and dropped in place with `Pin::set`, and `Timeout` has
        // no `Drop` impl and is `Unpin` only when `F` is. The other fields are not pinned.
        // SAFETY: by the above, nothing pinned is moved through this `&mut`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this.future` stays where it is until it is dropped.
        let mut future = unsafe { Pin::new_unchecked(&mut this.future) };
        let inner = future
            .as_mut()
            .as_pin_mut()
            .expect("`Timeout` polled after it completed");
        if let Poll::Ready(output) = inner.poll(cx) {
            future.set(None);
            this.sleep = None;
            return Poll::Ready(Ok(output));
        }
        if let Limit::After(duration) = this.limit {
            // The first time the inner future is pending: start the clock.
            this.limit = Limit::At(Instant::now().checked_add(duration));
        }
        let (store, limit) = (this.store, this.limit);
        let sleep = this.sleep.get_or_insert_with(|| {
            let Limit::At(deadline) = limit else {
                unreachable!("the clock was started above")
            };
            Sleep::new_in(store, deadline)
        });
        if Pin::new(sleep).poll(cx).is_ready() {
            // Cancel the inner future now, as `wait_for` does, not when `Timeout` is dropped.
            future.set(None);
            this.sleep = None;
            return Poll::Ready(Err(Elapsed(())));
        }
        Poll::Pending
    }
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("limit", &self.limit)
            .field("completed", &self.future.is_none())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::leaked_test_store;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    fn poll<F: Future>(t: Pin<&mut Timeout<F>>) -> Poll<Result<F::Output, Elapsed>> {
        let waker = Waker::from(Arc::new(Noop));
        t.poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn timeout_starts_its_clock_at_the_first_pending_poll() {
        let store = leaked_test_store();
        let mut t = Box::pin(Timeout::new(
            store,
            Limit::After(Duration::from_secs(60)),
            std::future::pending::<()>(),
        ));
        assert_eq!(t.deadline(), None, "not started before the first poll");
        std::thread::sleep(Duration::from_millis(20));
        let before = Instant::now();
        assert!(poll(t.as_mut()).is_pending());
        let deadline = t.deadline().expect("started by the pending poll");
        assert!(deadline >= before + Duration::from_secs(60));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn ready_future_never_registers_a_timer() {
        let store = leaked_test_store();
        let deadline = Some(Instant::now() + Duration::from_secs(1));
        for _ in 0..1000 {
            let mut t = std::pin::pin!(Timeout::new(store, Limit::At(deadline), async { 5 }));
            assert_eq!(poll(t.as_mut()), Poll::Ready(Ok(5)));
        }
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn pending_future_registers_once_and_drop_removes() {
        let store = leaked_test_store();
        let deadline = Some(Instant::now() + Duration::from_secs(60));
        let mut t = Box::pin(Timeout::new(
            store,
            Limit::At(deadline),
            std::future::pending::<()>(),
        ));
        assert!(poll(t.as_mut()).is_pending());
        assert!(poll(t.as_mut()).is_pending());
        assert_eq!(store.len(), 1);
        drop(t);
        assert_eq!(store.len(), 0);
    }

    #[test]
    #[should_panic(expected = "`Timeout` polled after it completed")]
    fn polling_after_completion_panics() {
        let store = leaked_test_store();
        let mut t = std::pin::pin!(Timeout::new(store, Limit::At(None), async {}));
        assert!(poll(t.as_mut()).is_ready());
        let _ = poll(t.as_mut());
    }
}
