//! The state of a `Timeout`'s time limit: not started yet, or the `Sleep` that ends it.
//!
//! Most timeouts wrap a future that is ready at once, so that path does as little as possible:
//! creating `timeout(d, f)`'s clock writes the duration and a tag, and neither the clock nor the
//! timer store is touched until the inner future has been found pending (the `Sleep` is
//! created then).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::clock;
use crate::sleep::Sleep;

/// A `Timeout`'s time limit, and whether it timed out.
///
/// Nothing here changes when the inner future completes (only a started clock's registration
/// is removed): the ready path of a `Timeout` writes nothing back, which is what made it as
/// fast as racing the future against a timer (the `timeout_ready` row of the comparison run;
/// docs/benchmarks.md).
#[derive(Debug)]
pub(crate) enum Clock {
    /// `timeout`: the deadline will be this long after the first poll that finds the inner
    /// future pending.
    After(Duration),
    /// `timeout_at`, not yet polled pending: this deadline (`None`: never).
    At(Option<Instant>),
    /// The sleep that ends the time limit (it registers on its first poll).
    Sleeping(Sleep),
    /// The deadline (`None`: never) passed and the inner future was dropped.
    TimedOut(Option<Instant>),
}

impl Clock {
    /// The clock of `timeout(duration, _)`: it starts at the first poll that finds the inner
    /// future pending.
    #[inline]
    pub(crate) fn after(duration: Duration) -> Clock {
        Clock::After(duration)
    }

    /// The clock of `timeout_at(deadline, _)` (`None`: never).
    #[inline]
    pub(crate) fn at(deadline: Option<Instant>) -> Clock {
        Clock::At(deadline)
    }

    /// A clock that is already `sleep` (for tests, with a sleep in a private store).
    #[cfg(test)]
    pub(crate) fn sleeping(sleep: Sleep) -> Clock {
        Clock::Sleeping(sleep)
    }

    /// The deadline, if it is known: `None` before a `timeout`'s clock started, or for no
    /// time limit.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Clock::After(_) => None,
            Clock::At(deadline) => *deadline,
            Clock::Sleeping(sleep) => sleep.deadline(),
            Clock::TimedOut(deadline) => *deadline,
        }
    }

    /// Did the time limit pass (so that the `Timeout` dropped its inner future)?
    #[inline]
    pub(crate) fn timed_out(&self) -> bool {
        matches!(self, Clock::TimedOut(_))
    }

    /// `timeout`'s duration if its clock has not started.
    pub(crate) fn unstarted_duration(&self) -> Option<Duration> {
        match self {
            Clock::After(duration) => Some(*duration),
            _ => None,
        }
    }

    /// Is the clock's sleep registered in its store?
    #[cfg(test)]
    pub(crate) fn is_registered(&self) -> bool {
        matches!(self, Clock::Sleeping(sleep) if sleep.is_registered())
    }

    /// The inner future is pending: starts the clock if it has not started, then polls the
    /// sleep. Ready once the deadline has passed (the sleep then holds no registration).
    ///
    /// Out of line and non-generic: only the ready path of `Timeout::poll` is inlined into
    /// its caller.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (store, deadline) = match *self {
            Clock::Sleeping(ref mut sleep) => return Pin::new(sleep).poll(cx),
            // The clock starts now, at the first poll that found the inner future pending.
            Clock::After(duration) => {
                let store = clock::store();
                (store, store.now().checked_add(duration))
            }
            Clock::At(deadline) => (clock::store(), deadline),
            Clock::TimedOut(_) => unreachable!("`Timeout` checks that it has not timed out"),
        };
        *self = Clock::Sleeping(Sleep::new_in(store, deadline));
        let Clock::Sleeping(sleep) = self else {
            unreachable!("set just above")
        };
        Pin::new(sleep).poll(cx)
    }

    /// The inner future completed: removes the sleep's registration (if any) now rather than
    /// when the `Timeout` is dropped. The deadline stays readable. For a clock that never
    /// started, this is one comparison and no store.
    #[inline]
    pub(crate) fn disarm(&mut self) {
        if let Clock::Sleeping(sleep) = self {
            sleep.deregister();
        }
    }

    /// The deadline passed (the sleep has already left its store): records it, keeping the
    /// deadline readable, and returns the clock it replaces for the caller to drop — after
    /// the inner future, so that nothing a clock's drop might do can come between marking the
    /// future dropped and dropping it. Out of line: the ready path does not need it.
    #[must_use = "drop the old clock after the inner future"]
    pub(crate) fn time_out(&mut self) -> Clock {
        let deadline = self.deadline();
        std::mem::replace(self, Clock::TimedOut(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::leaked_test_store;

    #[test]
    fn after_has_no_deadline_until_it_starts() {
        for duration in [Duration::ZERO, Duration::new(7, 999_999_999), Duration::MAX] {
            let mut clock = Clock::after(duration);
            assert_eq!(clock.unstarted_duration(), Some(duration));
            assert_eq!(clock.deadline(), None);
            clock.disarm();
            assert_eq!(clock.unstarted_duration(), Some(duration));
            assert_eq!(clock.deadline(), None);
            assert!(!clock.timed_out());
        }
    }

    #[test]
    fn disarm_removes_the_registration_and_keeps_the_deadline() {
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: std::sync::Arc<Self>) {}
        }
        let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
        let store = leaked_test_store();
        let deadline = Some(Instant::now() + Duration::from_secs(60));
        let mut clock = Clock::sleeping(Sleep::new_in(store, deadline));
        assert!(clock
            .poll_expired(&mut Context::from_waker(&waker))
            .is_pending());
        assert!(clock.is_registered());
        assert_eq!(store.len(), 1);
        clock.disarm();
        assert_eq!(store.len(), 0);
        assert!(!clock.is_registered());
        assert_eq!(clock.deadline(), deadline);
    }

    #[test]
    fn at_keeps_its_deadline() {
        let deadline = Some(Instant::now());
        let mut clock = Clock::at(deadline);
        assert_eq!(clock.deadline(), deadline);
        assert_eq!(clock.unstarted_duration(), None);
        clock.disarm();
        assert_eq!(clock.deadline(), deadline);
        drop(clock.time_out());
        assert!(clock.timed_out());
        assert_eq!(clock.deadline(), deadline);
    }
}
