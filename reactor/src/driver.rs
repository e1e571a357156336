//! Driving the shared reactor from an idle thread: the fast path for executors.
//!
//! The process has one poller, and by default its `magpie-reactor` thread waits on it and wakes
//! tasks from there — a cross-thread handoff per event (an injector push, a futex wake, a
//! context switch). An executor worker with nothing to run can do better: take the **driving
//! turn** with [`DrivingTurn::try_take`], then wait on the poller itself with
//! [`DrivingTurn::drive`]. The tasks that the events it collects wake are woken *on that
//! thread*, so an executor that queues a task woken on one of its workers locally runs it
//! there at once. A busy executor collects I/O between its tasks with [`DrivingTurn::poll`].
//! The reactor thread stands by meanwhile and takes over when the turn is left vacant for a
//! while — every worker stuck in a long task — so I/O and timers are always delivered. See
//! `docs/reactor.md` for the protocol.
//!
//! magpie's runtime does this in its workers' park; any other executor may do the same.
//!
//! # Examples
//!
//! ```
//! use magpie_reactor::driver::{self, DrivingTurn};
//! use std::sync::Arc;
//! use std::task::{Wake, Waker};
//!
//! // Woken when the reactor thread hands over the turn we asked for; an executor passes a
//! // waker that unparks the worker.
//! struct Unpark(std::thread::Thread);
//! impl Wake for Unpark {
//!     fn wake(self: Arc<Self>) {
//!         self.0.unpark();
//!     }
//! }
//! let requester = Waker::from(Arc::new(Unpark(std::thread::current())));
//!
//! // A thread with nothing to do: drive the reactor for a round if nobody else does.
//! magpie_reactor::timer_hook::notify_reactor(); // starts the reactor (a socket would too)
//! if let Some(mut turn) = DrivingTurn::try_take(&requester) {
//!     driver::notify(); // whatever else happens, this round returns at once
//!     turn.drive(&|| false);
//! } // dropping the turn hands it back
//! ```

use crate::reactor::{self, Reactor, Round};
use crate::turn::Take;
use std::fmt;
use std::marker::PhantomData;
use std::task::Waker;

/// The driving turn, held by the calling thread: while it lives, this thread (and no other)
/// waits on the shared poller. Dropping it hands the turn back.
///
/// Hold it only while driving: while it is held, nobody else collects I/O events or fires
/// timers for the process (the reactor thread sleeps until it is dropped), so a turn kept
/// without calling [`drive`](Self::drive) or [`poll`](Self::poll) — or leaked with
/// `mem::forget` — stops every socket and timer of the process.
///
/// Not `Send`: it is taken and given back on one thread.
pub struct DrivingTurn {
    reactor: &'static Reactor,
    _not_send: PhantomData<*const ()>,
}

impl DrivingTurn {
    /// Takes the driving turn if the reactor is running and nobody drives it.
    ///
    /// Returns `None` when the reactor has not been started (nothing to drive: no socket and
    /// no timer ever used it), when another thread of this kind holds the turn, or when the
    /// reactor thread holds it. In that last case the reactor thread is asked to hand the
    /// turn over, and `requester` is woken once it has: try again then.
    pub fn try_take(requester: &Waker) -> Option<DrivingTurn> {
        let reactor = reactor::started()?;
        match reactor.turn.take(Some(requester), || reactor.notify()) {
            Take::Taken => Some(DrivingTurn {
                reactor,
                _not_send: PhantomData,
            }),
            Take::Requested | Take::HeldByWorker => None,
        }
    }

    /// Takes the driving turn if nobody holds it; unlike [`try_take`](Self::try_take), never
    /// asks the reactor thread to hand it over. For a thread that would only
    /// [`poll`](Self::poll) once and go back to its work: asking would push the reactor thread
    /// off the poller for a turn this thread may not come back for before the reactor thread
    /// takes it back (a busy executor whose tasks run long).
    pub fn try_take_vacant() -> Option<DrivingTurn> {
        let reactor = reactor::started()?;
        // `then`, not `then_some`: a `DrivingTurn` made and dropped unused would release a
        // turn this thread does not hold.
        reactor.turn.take_if_vacant().then(|| DrivingTurn {
            reactor,
            _not_send: PhantomData,
        })
    }

    /// One round of driving: fires the timers that are due; then, unless `has_work()` says
    /// this thread has tasks to run (a timer woke one of its own), waits for I/O until an
    /// event, the next timer's deadline or a [`notify`], and wakes the tasks of the reported
    /// sources — on this thread.
    pub fn drive(&mut self, has_work: &dyn Fn() -> bool) {
        self.reactor.drive_round(Round::Wait(has_work));
    }

    /// One round without waiting: fires the timers that are due and wakes the tasks of the
    /// sources that are ready now — on this thread. A busy executor calls this every so many
    /// tasks, so that I/O is collected in batches between its tasks (no thread has to wait
    /// in the poller and hand each event over).
    pub fn poll(&mut self) {
        self.reactor.drive_round(Round::Poll);
    }
}

impl Drop for DrivingTurn {
    fn drop(&mut self) {
        self.reactor.turn.release();
    }
}

impl fmt::Debug for DrivingTurn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrivingTurn").finish_non_exhaustive()
    }
}

/// Interrupts the wait of whichever thread drives the reactor now (a [`DrivingTurn`] holder or
/// the reactor thread); if none waits, the next wait returns at once. Does nothing when the
/// reactor has not been started.
///
/// An executor calls this to wake a worker that waits in [`DrivingTurn::drive`] (a task was
/// spawned or woken for it).
pub fn notify() {
    if let Some(reactor) = reactor::started() {
        reactor.notify();
    }
}
