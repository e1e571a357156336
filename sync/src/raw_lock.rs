//! The fair acquire/release protocol behind [`Lock`](crate::Lock) (one job: who owns the lock).
//!
//! Releasing never sets the lock free while someone waits: ownership is *handed* to the front
//! waiter, so a newcomer (or `try_lock`) cannot barge ahead of it. A waiter dropped after the
//! handoff releases again, which hands the lock to the next waiter.

use std::task::{Context, Poll};

use crate::loom::Mutex;
use crate::waiters::{WaitList, WaiterId, WakeList};

#[derive(Debug)]
struct State {
    locked: bool,
    waiters: WaitList<()>,
}

#[derive(Debug)]
pub(crate) struct RawLock {
    state: Mutex<State>,
}

impl RawLock {
    pub(crate) fn new() -> Self {
        RawLock {
            state: Mutex::new(State {
                locked: false,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Takes the lock if it is free (it is never free while someone waits).
    pub(crate) fn try_acquire(&self) -> bool {
        let mut state = self.state.lock();
        if state.locked {
            false
        } else {
            state.locked = true;
            true
        }
    }

    /// One poll of an acquiring future whose queue entry lives in `waiter`.
    pub(crate) fn poll_acquire(
        &self,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let mut state = self.state.lock();
        match waiter {
            None if !state.locked => {
                state.locked = true;
                Poll::Ready(())
            }
            None => {
                *waiter = Some(state.waiters.push_back((), cx.waker()));
                Poll::Pending
            }
            Some(id) if state.waiters.is_queued(id) => {
                state.waiters.set_waker(id, cx.waker());
                Poll::Pending
            }
            Some(_) => {
                // Notified: the releaser handed us the lock (`locked` stayed true).
                let id = waiter.take().expect("matched Some above");
                state.waiters.remove(id);
                Poll::Ready(())
            }
        }
    }

    /// Called when an acquiring future is dropped before completing.
    pub(crate) fn cancel(&self, waiter: Option<WaiterId>) {
        let Some(id) = waiter else { return };
        let mut state = self.state.lock();
        let notified = state.waiters.remove(id).notified;
        // Mutant for the loom models (issue 7): forget to pass on a lock handed to us.
        #[cfg(magpie_mutant = "lock_cancel_keeps_handoff")]
        let notified = notified && false;
        if notified {
            // We own the lock without ever having returned it: pass it on.
            let wakers = Self::release_locked(&mut state);
            drop(state);
            wakers.wake_all();
        }
    }

    /// Releases the lock held by the caller.
    pub(crate) fn release(&self) {
        let mut state = self.state.lock();
        let wakers = Self::release_locked(&mut state);
        drop(state);
        wakers.wake_all();
    }

    fn release_locked(state: &mut State) -> WakeList {
        debug_assert!(state.locked);
        let mut wakers = WakeList::new();
        match state.waiters.notify_front() {
            // Handoff: the lock stays locked and now belongs to that waiter.
            Some(((), waker)) => wakers.push(waker),
            None => state.locked = false,
        }
        wakers
    }
}
