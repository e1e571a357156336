//! `sleep`, `sleep_until` and the `Sleep` future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::clock;
use crate::store::{Handle, Registration, Rescheduled, TimerStore};

/// Waits until `duration` has elapsed.
///
/// The deadline is computed now; the timer is registered on the first poll. A zero duration
/// completes on the first poll without registering anything. A duration too long to represent
/// (such as [`Duration::MAX`]) never completes.
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// futures_lite::future::block_on(magpie_timers::sleep(Duration::from_millis(5)));
/// assert!(start.elapsed() >= Duration::from_millis(5));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let store = clock::store();
    Sleep::new_in(store, store.now().checked_add(duration))
}

/// Waits until `deadline`.
///
/// A deadline in the past completes on the first poll without registering anything. A
/// deadline too far away to represent (more than about 58 million years) never completes.
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
///
/// let deadline = Instant::now() + Duration::from_millis(5);
/// futures_lite::future::block_on(magpie_timers::sleep_until(deadline));
/// assert!(Instant::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::new_in(clock::store(), Some(deadline))
}

/// Where a `Sleep` stands with the store.
#[derive(Debug)]
enum State {
    /// Not registered: not polled yet, completed, or its timer fired.
    Idle,
    /// Registered in the store.
    Registered(Handle),
    /// Polled with a deadline that never comes; the waker is kept for [`Sleep::reset`].
    Parked(Waker),
}

/// The future returned by [`sleep`] and [`sleep_until`]: completes once its deadline has passed.
///
/// `Sleep` is [`Unpin`], so it can be awaited by `&mut` and kept across loop iterations. It
/// registers with the timer store on its first poll (not at creation), replaces its waker when
/// polled from another task, and removes its timer when dropped. It never completes before its
/// deadline: completion is decided by comparing [`Instant::now`] with the deadline.
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
///
/// futures_lite::future::block_on(async {
///     let mut sleep = magpie_timers::sleep(Duration::from_secs(3600));
///     let soon = Instant::now() + Duration::from_millis(2);
///     sleep.reset(soon);
///     (&mut sleep).await;
///     assert!(Instant::now() >= soon);
///     assert_eq!(sleep.deadline(), Some(soon));
/// });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    /// `None`: the deadline does not fit in an `Instant`, so it never comes.
    deadline: Option<Instant>,
    state: State,
    store: &'static TimerStore,
}

impl Sleep {
    /// A sleep until `deadline` (`None`: never) in `store`.
    pub(crate) fn new_in(store: &'static TimerStore, deadline: Option<Instant>) -> Self {
        Sleep {
            deadline,
            state: State::Idle,
            store,
        }
    }

    /// The instant at which this sleep completes, or `None` when it was created with a duration
    /// that overflows [`Instant`] (it never completes).
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let deadline = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(magpie_timers::sleep_until(deadline).deadline(), Some(deadline));
    /// assert_eq!(magpie_timers::sleep(Duration::MAX).deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Has the deadline passed?
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    ///
    /// assert!(magpie_timers::sleep(Duration::ZERO).is_elapsed());
    /// assert!(!magpie_timers::sleep(Duration::from_secs(60)).is_elapsed());
    /// ```
    pub fn is_elapsed(&self) -> bool {
        self.deadline.is_some_and(|d| self.store.now() >= d)
    }

    /// Changes the deadline to `deadline`, also after the sleep completed.
    ///
    /// If the sleep has been polled, the task that polled it is woken at the new deadline (at
    /// once if it has passed), so a sleep being awaited can be moved earlier or later.
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// futures_lite::future::block_on(async {
    ///     let mut sleep = magpie_timers::sleep(Duration::ZERO);
    ///     (&mut sleep).await;
    ///     let again = Instant::now() + Duration::from_millis(1);
    ///     sleep.reset(again);
    ///     sleep.await;
    ///     assert!(Instant::now() >= again);
    /// });
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        self.set_deadline(Some(deadline));
    }

    /// Changes the deadline (`None`: never); see [`Sleep::reset`].
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => {}
            State::Parked(waker) => self.register_or_wake(waker),
            State::Registered(handle) => match deadline {
                // Due already: the task is woken now, not when the driver next fires (which a
                // virtual clock would not do before moving time on).
                Some(deadline) if self.store.now() >= deadline => {
                    if let Some(waker) = self.store.take(handle) {
                        waker.wake();
                    }
                }
                Some(deadline) => match self.store.reschedule(handle, deadline) {
                    Rescheduled::Moved => self.state = State::Registered(handle),
                    // Fired: its task was woken and registers the new deadline when it polls.
                    Rescheduled::Gone => {}
                    Rescheduled::Removed(waker, Registration::Never) => {
                        self.state = State::Parked(waker)
                    }
                    Rescheduled::Removed(waker, _) => waker.wake(),
                },
                // Never: keep the waker so that a later `reset` still wakes the task.
                None => {
                    if let Some(waker) = self.store.take(handle) {
                        self.state = State::Parked(waker);
                    }
                }
            },
        }
    }

    /// Registers `waker` for the current deadline; wakes it at once if that is already due.
    fn register_or_wake(&mut self, waker: Waker) {
        let Some(deadline) = self.deadline else {
            self.state = State::Parked(waker);
            return;
        };
        if self.store.now() >= deadline {
            waker.wake();
            return;
        }
        match self.store.register(deadline, &waker) {
            Registration::Pending(handle) => self.state = State::Registered(handle),
            Registration::Due => waker.wake(),
            Registration::Never => self.state = State::Parked(waker),
        }
    }

    /// The time on this sleep's clock (real, or the virtual clock it was created on).
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        self.store.now()
    }

    /// Removes any registration and drops any parked waker (the sleep completed, is being
    /// dropped, or its `Timeout` completed). Inlined so that a sleep that holds nothing costs
    /// one comparison; the store is called only for a registered one.
    #[inline]
    pub(crate) fn deregister(&mut self) {
        if let State::Registered(handle) = std::mem::replace(&mut self.state, State::Idle) {
            self.store.cancel(handle);
        }
    }
}

#[cfg(test)]
impl Sleep {
    /// Is this sleep registered in its store?
    pub(crate) fn is_registered(&self) -> bool {
        matches!(self.state, State::Registered(_))
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(deadline) = this.deadline else {
            // Never completes; keep the waker so that `reset` can wake this task.
            match &mut this.state {
                State::Parked(waker) => waker.clone_from(cx.waker()),
                _ => this.state = State::Parked(cx.waker().clone()),
            }
            return Poll::Pending;
        };
        if this.store.now() >= deadline {
            this.deregister();
            return Poll::Ready(());
        }
        match &mut this.state {
            State::Registered(handle) => {
                if !this.store.update_waker(*handle, cx.waker()) {
                    // Fired although `now` said not yet due (another thread's clock reading
                    // was later): poll again rather than complete on this thread's reading.
                    this.state = State::Idle;
                    cx.waker().wake_by_ref();
                }
            }
            State::Parked(waker) => waker.clone_from(cx.waker()),
            State::Idle => match this.store.register(deadline, cx.waker()) {
                Registration::Pending(handle) => this.state = State::Registered(handle),
                Registration::Due => cx.waker().wake_by_ref(),
                Registration::Never => this.state = State::Parked(cx.waker().clone()),
            },
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    #[inline]
    fn drop(&mut self) {
        self.deregister();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &matches!(self.state, State::Registered(_)))
            .finish()
    }
}
