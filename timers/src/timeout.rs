//! `timeout` and `timeout_at`: asyncio's `wait_for`.

use std::error::Error;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::timeout_clock::Clock;

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
#[inline]
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    Timeout::new(Clock::after(duration), future.into_future())
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
#[inline]
pub fn timeout_at<F: IntoFuture>(deadline: Instant, future: F) -> Timeout<F::IntoFuture> {
    Timeout::new(Clock::at(Some(deadline)), future.into_future())
}

/// The future returned by [`timeout`] and [`timeout_at`].
///
/// It is [`Unpin`] when the inner future is. Once it has returned `Ready`, polling it again is
/// a misuse (as for any future): after `Err(Elapsed)` it panics; after `Ok` it polls the
/// completed inner future again, which panics for an `async` block or `async fn`.
///
/// The inner future is dropped when the deadline passes, before `Err` is returned (asyncio's
/// `wait_for` cancels it then too); once it has completed it is dropped with the `Timeout` —
/// at once, for `.await`.
#[must_use = "futures do nothing unless polled"]
pub struct Timeout<F> {
    /// Structurally pinned. Live until `clock` has timed out, then dropped in place; dropped
    /// by `Drop` otherwise. (No `Option`: the ready path writes nothing back to the `Timeout`,
    /// one store fewer on the hot path of `timeout_ready`, which made it 20 % faster.)
    future: ManuallyDrop<F>,
    clock: Clock,
}

impl<F> Timeout<F> {
    #[inline]
    fn new(clock: Clock, future: F) -> Self {
        Timeout {
            future: ManuallyDrop::new(future),
            clock,
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
        self.clock.deadline()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    /// # Panics
    /// When polled again after it returned `Err(Elapsed)`.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `future` is the only structurally pinned field: it is never moved out of `self`,
        // only polled through a `Pin` and dropped in place (here on time-out, or in `Drop`),
        // and `Timeout` is `Unpin` only when `F` is. `clock` is not pinned.
        // SAFETY: by the above, nothing pinned is moved through this `&mut`.
        let this = unsafe { self.get_unchecked_mut() };
        if this.clock.timed_out() {
            polled_after_completion()
        }
        // SAFETY: not timed out (checked above), so the future is live; it stays where it is
        // until it is dropped in place.
        let inner = unsafe { Pin::new_unchecked(&mut *this.future) };
        if let Poll::Ready(output) = inner.poll(cx) {
            this.clock.disarm();
            return Poll::Ready(Ok(output));
        }
        if this.clock.poll_expired(cx).is_ready() {
            // Cancel the inner future now, as `wait_for` does, not when `Timeout` is dropped.
            // Marked first: if the future's destructor panics, `Drop` does not drop it again.
            // The old clock goes after the future: nothing comes between the two.
            let started = this.clock.time_out();
            // SAFETY: it was live (checked above) and is never used again (the clock says
            // timed out); dropped in place, not moved, as its pin requires.
            unsafe { ManuallyDrop::drop(&mut this.future) };
            drop(started);
            return Poll::Ready(Err(Elapsed(())));
        }
        Poll::Pending
    }
}

impl<F> Drop for Timeout<F> {
    #[inline]
    fn drop(&mut self) {
        if !self.clock.timed_out() {
            // SAFETY: not timed out, so the future is live; it is dropped in place (not moved,
            // as its pin requires) and `self` is gone after this.
            unsafe { ManuallyDrop::drop(&mut self.future) }
        }
    }
}

/// The panic of polling a [`Timeout`] that timed out, out of line to keep `poll` small.
#[cold]
#[inline(never)]
#[track_caller]
fn polled_after_completion() -> ! {
    panic!("`Timeout` polled after it completed")
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Timeout");
        match self.clock.unstarted_duration() {
            Some(duration) => s.field("after", &duration),
            None => s.field("deadline", &self.clock.deadline()),
        };
        s.field("timed_out", &self.clock.timed_out()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sleep::Sleep;
    use crate::store::{leaked_test_store, TimerStore};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

    /// A clock already holding its (unregistered) sleep in a private store, so that tests can
    /// count registrations; `timeout_at` behaves the same with the process store.
    fn sleeping_in(store: &'static TimerStore, deadline: Option<Instant>) -> Clock {
        Clock::sleeping(Sleep::new_in(store, deadline))
    }

    /// Pending on its first poll, ready on its second.
    struct ReadyOnSecondPoll(bool);
    impl Future for ReadyOnSecondPoll {
        type Output = u8;
        fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
            if std::mem::replace(&mut self.0, true) {
                Poll::Ready(9)
            } else {
                Poll::Pending
            }
        }
    }

    /// Sets its flag when dropped.
    struct DropFlag(Arc<AtomicBool>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn is_registered<F>(t: &Timeout<F>) -> bool {
        t.clock.is_registered()
    }

    #[test]
    fn timeout_starts_its_clock_at_the_first_pending_poll() {
        let mut t = Box::pin(timeout(
            Duration::from_secs(60),
            std::future::pending::<()>(),
        ));
        assert_eq!(t.deadline(), None, "not started before the first poll");
        std::thread::sleep(Duration::from_millis(20));
        let before = Instant::now();
        assert!(poll(t.as_mut()).is_pending());
        let deadline = t.deadline().expect("started by the pending poll");
        assert!(deadline >= before + Duration::from_secs(60));
        assert!(is_registered(&t));
        assert!(poll(t.as_mut()).is_pending());
        assert_eq!(t.deadline(), Some(deadline), "started only once");
    }

    #[test]
    fn ready_future_never_reads_the_clock_nor_registers() {
        let mut t = std::pin::pin!(timeout(Duration::from_secs(60), async { 5 }));
        assert_eq!(poll(t.as_mut()), Poll::Ready(Ok(5)));
        assert_eq!(t.clock.unstarted_duration(), Some(Duration::from_secs(60)));
        assert_eq!(t.deadline(), None);

        let store = leaked_test_store();
        let deadline = Some(Instant::now() + Duration::from_secs(1));
        for _ in 0..1000 {
            let mut t = std::pin::pin!(Timeout::new(sleeping_in(store, deadline), async { 5 }));
            assert_eq!(poll(t.as_mut()), Poll::Ready(Ok(5)));
            assert_eq!(t.deadline(), deadline);
        }
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn pending_future_registers_once_and_drop_removes() {
        let store = leaked_test_store();
        let deadline = Some(Instant::now() + Duration::from_secs(60));
        let mut t = Box::pin(Timeout::new(
            sleeping_in(store, deadline),
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
    fn polling_after_a_time_out_panics() {
        let mut t = std::pin::pin!(timeout_at(Instant::now(), std::future::pending::<()>()));
        assert_eq!(poll(t.as_mut()), Poll::Ready(Err(Elapsed::new())));
        let _ = poll(t.as_mut());
    }

    #[test]
    fn polling_after_ok_polls_the_completed_future_again() {
        /// Ready every time, counting its polls.
        struct Count(u32);
        impl Future for Count {
            type Output = u32;
            fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
                self.0 += 1;
                Poll::Ready(self.0)
            }
        }
        let store = leaked_test_store();
        let deadline = Some(Instant::now() + Duration::from_secs(60));
        let mut t = std::pin::pin!(Timeout::new(sleeping_in(store, deadline), Count(0)));
        assert_eq!(poll(t.as_mut()), Poll::Ready(Ok(1)));
        assert_eq!(poll(t.as_mut()), Poll::Ready(Ok(2)));
        assert_eq!(store.len(), 0, "a ready future never registers");
    }

    #[test]
    fn completion_removes_the_timer_before_drop_and_keeps_the_deadline() {
        let store = leaked_test_store();
        let deadline = Some(Instant::now() + Duration::from_secs(60));
        let mut t = Box::pin(Timeout::new(
            sleeping_in(store, deadline),
            ReadyOnSecondPoll(false),
        ));
        assert!(poll(t.as_mut()).is_pending());
        assert_eq!(store.len(), 1);
        assert_eq!(poll(t.as_mut()), Poll::Ready(Ok(9)));
        assert_eq!(store.len(), 0, "removed when the future completed");
        assert_eq!(t.deadline(), deadline);

        let mut t = Box::pin(timeout(Duration::from_secs(60), ReadyOnSecondPoll(false)));
        assert!(poll(t.as_mut()).is_pending());
        assert!(is_registered(&t));
        let started = t.deadline().expect("started by the pending poll");
        assert_eq!(poll(t.as_mut()), Poll::Ready(Ok(9)));
        assert!(!is_registered(&t), "its registration was removed");
        assert_eq!(t.deadline(), Some(started));
    }

    #[test]
    fn a_completed_inner_future_is_dropped_with_the_timeout() {
        /// Ready at once, holding a drop flag.
        struct ReadyHolding(#[allow(dead_code)] DropFlag);
        impl Future for ReadyHolding {
            type Output = u8;
            fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
                Poll::Ready(3)
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let mut t = Box::pin(timeout(
            Duration::from_secs(60),
            ReadyHolding(DropFlag(dropped.clone())),
        ));
        assert_eq!(poll(t.as_mut()), Poll::Ready(Ok(3)));
        assert!(
            !dropped.load(Ordering::SeqCst),
            "kept until the `Timeout` goes"
        );
        drop(t);
        assert!(dropped.load(Ordering::SeqCst));

        // Never polled: dropped with the `Timeout`.
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let t = timeout(Duration::from_secs(60), async move {
            let _flag = flag;
        });
        assert!(!dropped.load(Ordering::SeqCst));
        drop(t);
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[test]
    fn an_inner_future_whose_destructor_panics_at_the_deadline_is_dropped_once() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct PanicOnDrop;
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::SeqCst);
                panic!("inner future's destructor");
            }
        }
        let inner = async move {
            let _bomb = PanicOnDrop;
            std::future::pending::<()>().await
        };
        let store = leaked_test_store();
        let past = Some(Instant::now());
        let mut t = Box::pin(Timeout::new(sleeping_in(store, past), inner));
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = poll(t.as_mut());
        }));
        assert!(
            unwound.is_err(),
            "the destructor's panic reaches the poller"
        );
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
        drop(t);
        assert_eq!(DROPS.load(Ordering::SeqCst), 1, "not dropped a second time");
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn expiry_drops_the_inner_future_before_returning() {
        let store = leaked_test_store();
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = DropFlag(dropped.clone());
        let inner = async move {
            let _flag = flag;
            std::future::pending::<()>().await
        };
        let past = Some(Instant::now());
        let mut t = Box::pin(Timeout::new(sleeping_in(store, past), inner));
        assert_eq!(poll(t.as_mut()), Poll::Ready(Err(Elapsed::new())));
        assert!(dropped.load(Ordering::SeqCst));
        assert_eq!(store.len(), 0);
        assert_eq!(t.deadline(), past);
    }
}
