//! Parking a thread until it is unparked: the one place an idle worker or a `block_on`
//! thread sleeps.
//!
//! A token protocol: `unpark` before `park` makes the next `park` return at once, so an
//! unpark is never lost between a thread deciding to park and actually sleeping.

use crate::loom::atomic::{AtomicUsize, Ordering};
use crate::loom::{lock, Arc, Condvar, Mutex};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

struct Inner {
    state: AtomicUsize,
    lock: Mutex<()>,
    condvar: Condvar,
}

/// The sleeping side; one per thread.
pub(crate) struct Parker {
    inner: Arc<Inner>,
}

/// The waking side; cloneable, usable from any thread.
#[derive(Clone)]
pub(crate) struct Unparker {
    inner: Arc<Inner>,
}

impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            inner: Arc::new(Inner {
                state: AtomicUsize::new(EMPTY),
                lock: Mutex::new(()),
                condvar: Condvar::new(),
            }),
        }
    }

    pub(crate) fn unparker(&self) -> Unparker {
        Unparker {
            inner: self.inner.clone(),
        }
    }

    /// Blocks until a token is available, and consumes it.
    pub(crate) fn park(&self) {
        let inner = &*self.inner;
        // Fast path: a token is waiting. SeqCst pairs with the unparker's swap so that what
        // was published before `unpark` is visible after `park` returns.
        if inner
            .state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
        let mut guard = lock(&inner.lock);
        match inner
            .state
            .compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => {}
            Err(_) => {
                // NOTIFIED arrived between the fast path and the lock: consume it.
                inner.state.store(EMPTY, Ordering::SeqCst);
                return;
            }
        }
        loop {
            guard = inner
                .condvar
                .wait(guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if inner
                .state
                .compare_exchange(NOTIFIED, PARKED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                inner.state.store(EMPTY, Ordering::SeqCst);
                return;
            }
            // A spurious wakeup: the state is still PARKED; sleep again.
        }
    }
}

impl Unparker {
    /// Makes a token available, waking the parked thread if it sleeps.
    pub(crate) fn unpark(&self) {
        let inner = &*self.inner;
        match inner.state.swap(NOTIFIED, Ordering::SeqCst) {
            EMPTY | NOTIFIED => {}
            _ => {
                // PARKED: the sleeper holds or is about to wait on the lock. Taking the lock
                // orders our NOTIFIED before its re-check, so the notify cannot fall into the
                // gap between its CAS to PARKED and its `wait`.
                drop(lock(&inner.lock));
                inner.condvar.notify_one();
            }
        }
    }
}
