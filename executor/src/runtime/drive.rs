//! The worker's link to the shared reactor: an idle worker takes the reactor's driving turn
//! and sleeps in its poller instead of on a condvar, so the tasks its I/O events and timers
//! wake are queued on this worker and run here, with no cross-thread handoff (see
//! `docs/reactor.md`, "The driving turn").
//!
//! Under loom and Miri the workers never drive (loom cannot run epoll; Miri cannot run the
//! raw syscalls): there the reactor thread alone drives, as before. The parker's side of the
//! protocol (`park.rs`, `DRIVING`) is model-checked with a stand-in driver.

use std::task::Waker;

use super::park::DriverNotify;

#[cfg(not(any(loom, miri)))]
mod imp {
    use super::*;

    /// The driving turn while this worker holds it.
    pub(crate) struct Turn(magpie_reactor::driver::DrivingTurn);

    impl Turn {
        /// Takes the turn if the reactor runs and nobody drives it; when the reactor thread
        /// holds it, asks for it and `requester` is woken once it is handed over.
        pub(crate) fn try_take(requester: &Waker) -> Option<Turn> {
            magpie_reactor::driver::DrivingTurn::try_take(requester).map(Turn)
        }

        /// The turn if nobody holds it; never asks the reactor thread for it.
        pub(crate) fn try_take_vacant() -> Option<Turn> {
            magpie_reactor::driver::DrivingTurn::try_take_vacant().map(Turn)
        }

        /// One wait in the poller (see `DrivingTurn::drive`).
        pub(crate) fn drive(&mut self, has_work: &dyn Fn() -> bool) {
            self.0.drive(has_work);
        }

        /// Collects ready I/O and due timers without waiting (see `DrivingTurn::poll`).
        pub(crate) fn poll(&mut self) {
            self.0.poll();
        }
    }

    /// How a parker interrupts a worker's wait in the poller.
    pub(crate) fn notify_driver() -> Option<DriverNotify> {
        Some(std::sync::Arc::new(magpie_reactor::driver::notify))
    }
}

#[cfg(any(loom, miri))]
mod imp {
    use super::*;

    /// Never taken here.
    pub(crate) enum Turn {}

    impl Turn {
        pub(crate) fn try_take(_requester: &Waker) -> Option<Turn> {
            None
        }

        pub(crate) fn try_take_vacant() -> Option<Turn> {
            None
        }

        pub(crate) fn drive(&mut self, _has_work: &dyn Fn() -> bool) {
            match *self {}
        }

        pub(crate) fn poll(&mut self) {
            match *self {}
        }
    }

    pub(crate) fn notify_driver() -> Option<DriverNotify> {
        None
    }
}

pub(crate) use imp::{notify_driver, Turn};
