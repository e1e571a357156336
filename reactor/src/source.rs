//! One registered I/O source: its readiness counters and the wakers waiting on each direction.
//!
//! Interest is armed in the poller's oneshot mode: the poller reports a source at most once per
//! arming, and the source is re-armed (with `Poller::modify`) only while some task waits on it.
//! So a socket that stays ready never makes the reactor spin, and arming after a `WouldBlock` can
//! never miss readiness (epoll reports a level that is already true at arming time).
//!
//! All changes of the interest happen under the source's lock and only while `registered` is
//! true, so the reactor never touches a file descriptor after its owner deregistered it (and
//! may have closed it, letting the OS reuse the number).

use crate::loom::{lock, Mutex};
use polling::{Event, Poller};
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::task::Waker;

/// A direction of readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Readable (or hung up / in error).
    Read = 0,
    /// Writable (or hung up / in error).
    Write = 1,
}

/// One waiting task.
struct Waiter {
    /// `Some(id)` for a [`ReadyWaiter`] future (so re-polls replace its waker); `None` for a
    /// `poll_read`-style caller, which is matched by `Waker::will_wake` instead.
    id: Option<u64>,
    waker: Waker,
}

/// Readiness bookkeeping of one direction.
#[derive(Default)]
struct DirectionState {
    /// Bumped every time the reactor reports this direction ready; a waiter that registered at
    /// tick `t` is ready once the tick differs from `t`.
    tick: u64,
    /// Every task waiting for this direction; all are drained and woken by one event.
    waiters: Vec<Waiter>,
}

/// The mutable part of a source.
#[derive(Default)]
struct State {
    /// False once the owner deregistered the source: no more `modify` calls on its fd.
    registered: bool,
    dirs: [DirectionState; 2],
    /// Source of ids for [`ReadyWaiter`]s.
    next_id: u64,
}

impl State {
    fn interest(&self, key: usize) -> Event {
        Event::new(
            key,
            !self.dirs[Direction::Read as usize].waiters.is_empty(),
            !self.dirs[Direction::Write as usize].waiters.is_empty(),
        )
    }
}

/// A registered file descriptor.
pub(crate) struct Source {
    /// The poller key: slot index + generation (see `source_table`).
    key: usize,
    /// The file descriptor, owned by the `Async` that registered it.
    raw: RawFd,
    state: Mutex<State>,
}

/// How a future-style waiter remembers its registration between polls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadyWaiter {
    id: u64,
    tick: u64,
}

impl Source {
    /// A source for `raw`, registered under `key`.
    pub(crate) fn new(key: usize, raw: RawFd) -> Source {
        Source {
            key,
            raw,
            state: Mutex::new(State {
                registered: true,
                ..State::default()
            }),
        }
    }

    /// The poller key.
    pub(crate) fn key(&self) -> usize {
        self.key
    }

    /// Arms the poller with the current interest, if any task waits.
    fn arm(&self, state: &State, poller: &Poller) -> io::Result<()> {
        let interest = state.interest(self.key);
        if !state.registered || (!interest.readable && !interest.writable) {
            return Ok(());
        }
        // SAFETY: `registered` is true and we hold the state lock, and the owner clears
        // `registered` under this lock *before* it deletes and closes the descriptor, so `raw`
        // is an open descriptor for the whole duration of this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(self.raw) };
        poller.modify(fd, interest)
    }

    /// Registers `waker` for `dir` as a `poll_*`-style waiter and arms the poller.
    ///
    /// A waiter whose waker `will_wake` the same task is replaced, not duplicated.
    pub(crate) fn register_poll_waker(
        &self,
        poller: &Poller,
        dir: Direction,
        waker: &Waker,
    ) -> io::Result<()> {
        let mut state = lock(&self.state);
        let waiters = &mut state.dirs[dir as usize].waiters;
        let was_empty = waiters.is_empty();
        match waiters
            .iter_mut()
            .find(|w| w.id.is_none() && w.waker.will_wake(waker))
        {
            Some(existing) => existing.waker.clone_from(waker),
            None => waiters.push(Waiter {
                id: None,
                waker: waker.clone(),
            }),
        }
        self.arm_if_first(&mut state, poller, dir, was_empty)
    }

    /// Arms the poller when a direction just got its first waiter.
    ///
    /// Invariant: a direction with waiters is armed, or an event that disarmed it is on its
    /// way to `on_event`, which re-arms every direction that still has waiters. So a waiter
    /// joining a non-empty list needs no `modify` syscall.
    ///
    /// If arming fails, the direction's list (which holds only the new waiter) is emptied
    /// again, so the invariant keeps holding and the next waiter retries the `modify`.
    fn arm_if_first(
        &self,
        state: &mut State,
        poller: &Poller,
        dir: Direction,
        was_empty: bool,
    ) -> io::Result<()> {
        if !was_empty {
            return Ok(());
        }
        let result = self.arm(state, poller);
        if result.is_err() {
            state.dirs[dir as usize].waiters.clear();
        }
        result
    }

    /// Polls a future-style waiter: registers it on the first call, reports ready once the
    /// reactor has reported `dir` since the registration, else refreshes its waker.
    pub(crate) fn poll_waiter(
        &self,
        poller: &Poller,
        dir: Direction,
        slot: &mut Option<ReadyWaiter>,
        waker: &Waker,
    ) -> io::Result<bool> {
        let mut state = lock(&self.state);
        if let Some(registered) = *slot {
            let d = &mut state.dirs[dir as usize];
            if d.tick != registered.tick {
                // The event that bumped the tick drained (and woke) this waiter.
                *slot = None;
                return Ok(true);
            }
            if let Some(w) = d.waiters.iter_mut().find(|w| w.id == Some(registered.id)) {
                w.waker.clone_from(waker);
                return Ok(false);
            }
        }
        let id = state.next_id;
        state.next_id = state.next_id.wrapping_add(1);
        let d = &mut state.dirs[dir as usize];
        let was_empty = d.waiters.is_empty();
        d.waiters.push(Waiter {
            id: Some(id),
            waker: waker.clone(),
        });
        *slot = Some(ReadyWaiter { id, tick: d.tick });
        if let Err(e) = self.arm_if_first(&mut state, poller, dir, was_empty) {
            *slot = None;
            return Err(e);
        }
        Ok(false)
    }

    /// Forgets a future-style waiter that is dropped before it became ready.
    pub(crate) fn remove_waiter(&self, dir: Direction, waiter: ReadyWaiter) {
        let removed = {
            let mut state = lock(&self.state);
            let d = &mut state.dirs[dir as usize];
            if d.tick != waiter.tick {
                return;
            }
            d.waiters
                .iter()
                .position(|w| w.id == Some(waiter.id))
                .map(|i| d.waiters.swap_remove(i))
        };
        // Dropped outside the lock: a waker's drop may run executor code.
        drop(removed);
    }

    /// Called by the reactor for an event on this source: bumps the tick of each ready
    /// direction, moves its waiters into `wake`, and re-arms whatever interest remains.
    pub(crate) fn on_event(
        &self,
        poller: &Poller,
        readable: bool,
        writable: bool,
        wake: &mut Vec<Waker>,
    ) {
        let mut state = lock(&self.state);
        if !state.registered {
            return;
        }
        for (dir, ready) in [(Direction::Read, readable), (Direction::Write, writable)] {
            if ready {
                let d = &mut state.dirs[dir as usize];
                d.tick = d.tick.wrapping_add(1);
                wake.extend(d.waiters.drain(..).map(|w| w.waker));
            }
        }
        // The oneshot registration is now disarmed; waiters of the other direction need it back.
        if self.arm(&state, poller).is_err() {
            // Cannot arm: wake everyone so they retry their operation (and meet the error, or
            // re-arm) instead of sleeping forever.
            for d in &mut state.dirs {
                d.tick = d.tick.wrapping_add(1);
                wake.extend(d.waiters.drain(..).map(|w| w.waker));
            }
        }
    }

    /// Stops all interest in the descriptor and removes it from the poller. Must be called
    /// while the descriptor is still open; afterwards the reactor never touches it again.
    pub(crate) fn deregister(&self, poller: &Poller) -> io::Result<()> {
        let (result, waiters) = {
            let mut state = lock(&self.state);
            state.registered = false;
            // SAFETY: the owner calls this before closing the descriptor, so it is open.
            let fd = unsafe { BorrowedFd::borrow_raw(self.raw) };
            let result = poller.delete(fd);
            let waiters: Vec<Waiter> = state
                .dirs
                .iter_mut()
                .flat_map(|d| d.waiters.drain(..))
                .collect();
            (result, waiters)
        };
        // Dropped outside the lock: a waker's drop may run executor code.
        drop(waiters);
        result
    }

    /// Number of tasks waiting on `dir` (for tests).
    #[cfg(test)]
    pub(crate) fn waiter_count(&self, dir: Direction) -> usize {
        lock(&self.state).dirs[dir as usize].waiters.len()
    }
}
