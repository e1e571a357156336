//! hyper's timer on magpie's timers (feature `hyper`): HTTP/1's header-read timeout, HTTP/2's
//! keep-alive pings.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep as HyperSleep, Timer};

use crate::Sleep;

/// A [`hyper::rt::Timer`] on magpie's timer store, so hyper's timeouts (HTTP/1's header-read
/// timeout, HTTP/2's keep-alive pings) work on magpie (pass it to `http1::Builder::timer`). It works under any
/// executor, like every magpie timer.
///
/// # Examples
///
/// ```
/// use hyper::rt::Timer;
/// use magpie_timers::HyperTimer;
/// use std::time::{Duration, Instant};
///
/// let start = Instant::now();
/// futures_lite::future::block_on(HyperTimer.sleep(Duration::from_millis(5)));
/// assert!(start.elapsed() >= Duration::from_millis(5));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HyperTimer;

/// A magpie [`Sleep`] as hyper's `Sleep` (`Send + Sync`, which ours is).
struct MagpieSleep(Sleep);

impl Future for MagpieSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // `Sleep` is `Unpin`.
        Pin::new(&mut self.0).poll(cx)
    }
}

impl HyperSleep for MagpieSleep {}

impl Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn HyperSleep>> {
        Box::pin(MagpieSleep(crate::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn HyperSleep>> {
        Box::pin(MagpieSleep(crate::sleep_until(deadline)))
    }

    /// magpie's clock: the virtual one inside the deterministic runtime, so that hyper's
    /// deadlines agree with its sleeps there.
    fn now(&self) -> Instant {
        crate::now()
    }

    /// Moves a sleep of ours to the new deadline in place (no new allocation, the timer
    /// keeps its slot); replaces any other kind of sleep.
    fn reset(&self, sleep: &mut Pin<Box<dyn HyperSleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<MagpieSleep>() {
            Some(mut ours) => ours.0.reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_moves_our_sleep_to_an_earlier_deadline_in_place() {
        let timer = HyperTimer;
        let mut sleep = timer.sleep(Duration::from_secs(3600));
        let soon = Instant::now() + Duration::from_millis(10);
        timer.reset(&mut sleep, soon);
        assert!(
            sleep.as_mut().downcast_mut_pin::<MagpieSleep>().is_some(),
            "still our sleep, moved rather than replaced"
        );
        futures_lite::future::block_on(sleep.as_mut());
        assert!(Instant::now() >= soon, "never early");
    }
}
