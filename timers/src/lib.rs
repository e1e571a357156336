//! magpie's timers: [`sleep`], [`timeout`] (asyncio's `wait_for`) and [`interval`], driven by
//! the reactor thread.
//!
//! Timers need no particular executor: they are kept in a process-wide store that the
//! `magpie-reactor` thread fires once per turn of its loop, waking the tasks whose deadline
//! passed. The store is installed in the reactor (starting it) on the first registration.
//!
//! Timers have 100 µs granularity and are never early: a sleep completes only once
//! [`std::time::Instant::now`] has reached its deadline. Deadlines too far away to represent
//! (such as `sleep(Duration::MAX)`) never complete; none of these functions panic on overflow.
//!
//! # Panics
//! The first timer registration panics if some other timer driver was already installed in
//! the reactor (`magpie_reactor::timer_hook::set_timer_driver`), for example by a second copy
//! of this crate in the same program: its timers could never fire.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use magpie_timers::{sleep, timeout};
//!
//! futures_lite::future::block_on(async {
//!     sleep(Duration::from_millis(1)).await;
//!     let answer = timeout(Duration::from_secs(1), async { 42 }).await;
//!     assert_eq!(answer, Ok(42));
//! });
//! ```

mod clock;
#[cfg(feature = "hyper")]
mod hyper_timer;
mod interval;
mod loom;
mod sleep;
mod store;
mod timeout;
mod timeout_clock;
mod wheel;

pub use clock::{now, VirtualClockGuard};
#[cfg(feature = "hyper")]
pub use hyper_timer::HyperTimer;
pub use interval::{interval, interval_at, Interval, MissedTicks};
pub use sleep::{sleep, sleep_until, Sleep};
pub use timeout::{timeout, timeout_at, Elapsed, Timeout};
