//! `interval`, `interval_at`, `Interval` and the missed-tick policies.

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::Stream;

use crate::clock;
use crate::sleep::Sleep;

/// What an [`Interval`] does when ticks were missed: when a tick is taken a whole period or
/// more after it was scheduled (the task was blocked, busy or not polled).
///
/// Ticks that are merely late by less than a period are unaffected: the next tick stays on
/// the original schedule under every policy.
///
/// The default is [`MissedTicks::Skip`]: after a stall the interval neither fires a burst of
/// catch-up ticks at a task that is probably already overloaded (as `Burst` does) nor drifts
/// away from its start time for good (as `Delay` does); it resumes on the original grid.
///
/// # Examples
/// ```
/// use magpie_timers::MissedTicks;
///
/// assert_eq!(MissedTicks::default(), MissedTicks::Skip);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MissedTicks {
    /// Catch up: the missed ticks complete back to back, immediately, each returning its own
    /// scheduled instant, until the interval is back on schedule. Use it when every tick counts.
    Burst,
    /// Start over: the next tick is one period after the late tick was taken; the schedule
    /// shifts by the delay.
    Delay,
    /// Drop the missed ticks: the next tick is the first one on the original schedule
    /// (`start + k * period`) that is still in the future.
    #[default]
    Skip,
}

/// Ticks every `period`, the first tick completing at once.
///
/// # Panics
/// If `period` is zero.
///
/// # Examples
/// ```
/// use std::time::Duration;
///
/// futures_lite::future::block_on(async {
///     let mut every = magpie_timers::interval(Duration::from_millis(2));
///     let first = every.tick().await;
///     let second = every.tick().await;
///     assert!(second >= first + Duration::from_millis(2));
/// });
/// ```
pub fn interval(period: Duration) -> Interval {
    interval_at(clock::store().now(), period)
}

/// Ticks every `period`, the first tick completing at `start`.
///
/// # Panics
/// If `period` is zero.
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
///
/// futures_lite::future::block_on(async {
///     let start = Instant::now() + Duration::from_millis(1);
///     let mut every = magpie_timers::interval_at(start, Duration::from_millis(1));
///     assert_eq!(every.tick().await, start);
/// });
/// ```
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "`interval` period must be non-zero (got Duration::ZERO)"
    );
    Interval {
        period,
        missed: MissedTicks::default(),
        sleep: Sleep::new_in(clock::store(), Some(start)),
    }
}

/// A stream of ticks at a fixed period, made by [`interval`] or [`interval_at`].
///
/// Each tick yields the instant it was scheduled for (never later than when it completes). A
/// tick that would fall beyond what [`Instant`] can represent never comes. `Interval` is
/// [`Unpin`] and implements [`Stream`] (it never ends).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use futures_lite::StreamExt;
///
/// futures_lite::future::block_on(async {
///     let ticks: Vec<_> = magpie_timers::interval(Duration::from_millis(1)).take(3).collect().await;
///     assert!(ticks[2] >= ticks[0] + Duration::from_millis(2));
/// });
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct Interval {
    period: Duration,
    missed: MissedTicks,
    /// Sleeps until the next scheduled tick.
    sleep: Sleep,
}

impl Interval {
    /// Waits for the next tick and returns the instant it was scheduled for.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick; see [`Interval::tick`].
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let scheduled = self
            .sleep
            .deadline()
            .expect("a sleep without a deadline never completes");
        let next = self.next_after(scheduled, self.sleep.now());
        self.sleep.set_deadline(next);
        Poll::Ready(scheduled)
    }

    /// The tick after `scheduled`, taken at `now`, under the missed-tick policy.
    fn next_after(&self, scheduled: Instant, now: Instant) -> Option<Instant> {
        let on_schedule = scheduled.checked_add(self.period)?;
        if now < on_schedule {
            return Some(on_schedule);
        }
        match self.missed {
            MissedTicks::Burst => Some(on_schedule),
            MissedTicks::Delay => now.checked_add(self.period),
            MissedTicks::Skip => {
                // The first `scheduled + k * period` strictly after `now`.
                let period = self.period.as_nanos();
                let k = (now - scheduled).as_nanos() / period + 1;
                let offset = k.checked_mul(period)?;
                let offset = Duration::new(
                    u64::try_from(offset / 1_000_000_000).ok()?,
                    (offset % 1_000_000_000) as u32,
                );
                scheduled.checked_add(offset)
            }
        }
    }

    /// Restarts the schedule: the next tick comes one period from now.
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// futures_lite::future::block_on(async {
    ///     let mut every = magpie_timers::interval(Duration::from_millis(2));
    ///     every.tick().await;
    ///     let before = Instant::now();
    ///     every.reset();
    ///     assert!(every.tick().await >= before + Duration::from_millis(2));
    /// });
    /// ```
    pub fn reset(&mut self) {
        self.sleep
            .set_deadline(self.sleep.now().checked_add(self.period));
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The missed-tick policy (default [`MissedTicks::Skip`]).
    pub fn missed_ticks(&self) -> MissedTicks {
        self.missed
    }

    /// Sets the missed-tick policy.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use magpie_timers::MissedTicks;
    ///
    /// let mut every = magpie_timers::interval(Duration::from_secs(1));
    /// every.set_missed_ticks(MissedTicks::Burst);
    /// assert_eq!(every.missed_ticks(), MissedTicks::Burst);
    /// ```
    pub fn set_missed_ticks(&mut self, policy: MissedTicks) {
        self.missed = policy;
    }
}

impl Stream for Interval {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }
}

impl fmt::Debug for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interval")
            .field("period", &self.period)
            .field("missed", &self.missed)
            .field("next", &self.sleep.deadline())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval_with(policy: MissedTicks) -> Interval {
        let mut i = interval(Duration::from_millis(10));
        i.set_missed_ticks(policy);
        i
    }

    #[test]
    fn late_but_not_missed_stays_on_schedule() {
        let s = Instant::now();
        let ms = Duration::from_millis;
        for policy in [MissedTicks::Burst, MissedTicks::Delay, MissedTicks::Skip] {
            let i = interval_with(policy);
            assert_eq!(i.next_after(s, s + ms(9)), Some(s + ms(10)));
        }
    }

    #[test]
    fn missed_ticks_follow_the_policy() {
        let s = Instant::now();
        let ms = Duration::from_millis;
        let now = s + ms(35);
        assert_eq!(
            interval_with(MissedTicks::Burst).next_after(s, now),
            Some(s + ms(10))
        );
        assert_eq!(
            interval_with(MissedTicks::Delay).next_after(s, now),
            Some(now + ms(10))
        );
        assert_eq!(
            interval_with(MissedTicks::Skip).next_after(s, now),
            Some(s + ms(40))
        );
        // Exactly on a grid point: that point is not in the future, so skip past it.
        assert_eq!(
            interval_with(MissedTicks::Skip).next_after(s, s + ms(40)),
            Some(s + ms(50))
        );
    }

    #[test]
    fn overflowing_next_tick_is_never() {
        let mut i = interval(Duration::MAX);
        i.set_missed_ticks(MissedTicks::Skip);
        assert_eq!(i.next_after(Instant::now(), Instant::now()), None);
    }
}
