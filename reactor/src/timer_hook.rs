//! The hook through which the timers crate lets the reactor thread drive its timers.
//!
//! The reactor knows nothing of timers; it only asks, once per turn of its loop, "fire what
//! has expired and tell me the next deadline", and sleeps in `Poller::wait` no longer than
//! that. A timer registered from another thread with an earlier deadline than the one the
//! reactor is sleeping towards calls [`notify_reactor`] so the wait is recomputed.

use std::sync::OnceLock;
use std::time::Instant;

/// A timer store the reactor thread drives.
///
/// Implemented by `magpie-timers`; installed once per process with [`set_timer_driver`].
pub trait TimerDriver: Send + Sync + 'static {
    /// Wakes every timer whose deadline is at or before `now` and returns the earliest deadline
    /// still pending, or `None` when no timer is pending.
    ///
    /// Called on the reactor thread once per turn of its loop, after `Poller::wait` returns.
    fn fire_expired(&self, now: Instant) -> Option<Instant>;

    /// The number of timers currently pending in this driver: registered and neither fired
    /// nor cancelled yet. Reported as `pending_timers` by [`crate::stats`].
    ///
    /// Called from any thread, at any time, for statistics only: it should be cheap and must
    /// not fire timers. A snapshot — timers may be added or fire while it is counted. The
    /// default returns 0, for drivers that do not count.
    fn pending_timers(&self) -> usize {
        0
    }
}

/// The error returned by [`set_timer_driver`] when a driver is already installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverAlreadySet;

impl std::fmt::Display for DriverAlreadySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a timer driver is already installed in the reactor")
    }
}

impl std::error::Error for DriverAlreadySet {}

static DRIVER: OnceLock<&'static dyn TimerDriver> = OnceLock::new();

/// Installs the process-wide timer driver that the reactor thread calls each turn.
///
/// Starts the reactor thread if it is not running yet.
///
/// # Errors
/// [`DriverAlreadySet`] when a driver was installed before.
pub fn set_timer_driver(driver: &'static dyn TimerDriver) -> Result<(), DriverAlreadySet> {
    DRIVER.set(driver).map_err(|_| DriverAlreadySet)?;
    notify_reactor();
    Ok(())
}

/// The installed timer driver, if any.
pub(crate) fn timer_driver() -> Option<&'static dyn TimerDriver> {
    DRIVER.get().copied()
}

/// Wakes the reactor thread out of `Poller::wait` so that it fires expired timers and
/// recomputes its wait timeout. Starts the reactor thread if it is not running yet.
///
/// Cheap and safe to call from any thread.
pub fn notify_reactor() {
    crate::reactor_notify();
}
