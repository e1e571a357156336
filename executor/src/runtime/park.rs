//! Parking a thread until it is unparked: the one place an idle worker or a `block_on`
//! thread sleeps — on a condvar, or in the shared reactor's poller while it holds the driving
//! turn (`park_driving`).
//!
//! A token protocol: `unpark` before `park` makes the next `park` return at once, so an
//! unpark is never lost between a thread deciding to park and actually sleeping.
//!
//! A thread that sleeps in the poller is in state `DRIVING`: an `unpark` then interrupts the
//! poller's wait through the driver's `notify` (the reactor's eventfd), and the same token
//! rules hold — whichever of the unparker's swap and the sleeper's final swap comes second
//! sees the other, so the token is consumed and the wait was (or is about to be) interrupted.
//! The one exception is an unpark from the driving thread itself (its own dispatch woke a task
//! of its own runtime): the thread is not waiting then, so no notification is sent.

use std::cell::Cell;
use std::sync::Arc as StdArc;
use std::task::{Wake, Waker};

use crate::loom::atomic::{AtomicUsize, Ordering};
use crate::loom::{lock, thread_local_const, Arc, Condvar, Mutex};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;
const DRIVING: usize = 3;

/// Interrupts the driver's wait (the reactor's `notify`, or a model's).
pub(crate) type DriverNotify = StdArc<dyn Fn() + Send + Sync>;

struct Inner {
    state: AtomicUsize,
    lock: Mutex<()>,
    condvar: Condvar,
    /// How to interrupt a `park_driving` sleeper's wait.
    notify_driver: Option<DriverNotify>,
}

thread_local_const! {
    /// The parker (its `Inner`'s address) this thread is driving with, 0 when none.
    static DRIVING_HERE: Cell<usize> = Cell::new(0);
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
    /// A parker that only sleeps on its condvar.
    pub(crate) fn new() -> Parker {
        Parker::with_driver(None)
    }

    /// A parker that may also sleep in a driver's wait ([`Parker::park_driving`]);
    /// `notify_driver` interrupts that wait.
    pub(crate) fn with_driver(notify_driver: Option<DriverNotify>) -> Parker {
        Parker {
            inner: Arc::new(Inner {
                state: AtomicUsize::new(EMPTY),
                lock: Mutex::new(()),
                condvar: Condvar::new(),
                notify_driver,
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

    /// Sleeps in `drive` (one wait of the driver this parker was built with) unless a token
    /// is waiting; consumes the token either way. `drive` may return without a token (an
    /// event, a timer, a notification meant for someone else): the caller looks around and
    /// parks again.
    ///
    /// # Panics
    /// If the parker was built without a driver (a bug: nobody could interrupt the wait).
    pub(crate) fn park_driving(&self, drive: impl FnOnce()) {
        let inner = &*self.inner;
        assert!(
            inner.notify_driver.is_some(),
            "park_driving on a parker without a driver"
        );
        match inner
            .state
            .compare_exchange(EMPTY, DRIVING, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => {}
            Err(_) => {
                // NOTIFIED: consume it instead of sleeping.
                inner.state.store(EMPTY, Ordering::SeqCst);
                return;
            }
        }
        let addr = inner as *const Inner as usize;
        DRIVING_HERE.with(|d| d.set(addr));
        // Cleared even if `drive` unwinds, so a later unpark from this thread still notifies.
        struct Clear;
        impl Drop for Clear {
            fn drop(&mut self) {
                let _ = DRIVING_HERE.try_with(|d| d.set(0));
            }
        }
        let clear = Clear;
        drive();
        drop(clear);
        // SeqCst swap: consumes a token that arrived while driving (its unparker saw DRIVING
        // and interrupted the wait, or is about to: a spurious wakeup for a later wait).
        inner.state.swap(EMPTY, Ordering::SeqCst);
    }
}

impl Unparker {
    /// Makes a token available, waking the parked thread if it sleeps.
    pub(crate) fn unpark(&self) {
        let inner = &*self.inner;
        match inner.state.swap(NOTIFIED, Ordering::SeqCst) {
            EMPTY | NOTIFIED => {}
            DRIVING => {
                // The sleeper waits in the driver (or is about to, or has just returned: then
                // the notification makes some later wait return early, which is harmless).
                // Not from the driving thread itself: it is not waiting, it is dispatching.
                // (Mutant `unpark_ignores_driving`: leave the driver's wait alone.)
                let here = DRIVING_HERE.with(Cell::get) == inner as *const Inner as usize;
                if !here && !cfg!(magpie_mutant = "unpark_ignores_driving") {
                    if let Some(notify) = &inner.notify_driver {
                        notify();
                    }
                }
            }
            _ => {
                // PARKED: the sleeper holds or is about to wait on the lock. Taking the lock
                // orders our NOTIFIED before its re-check, so the notify cannot fall into the
                // gap between its CAS to PARKED and its `wait`.
                drop(lock(&inner.lock));
                inner.condvar.notify_one();
            }
        }
    }

    /// A [`Waker`] that unparks this parker.
    pub(crate) fn into_waker(self) -> Waker {
        Waker::from(StdArc::new(ParkWaker(self)))
    }
}

/// Wakes a parked thread. (`std::task::Wake` needs std's `Arc`; the parker inside is the
/// loom-aware one.)
struct ParkWaker(Unparker);

impl Wake for ParkWaker {
    fn wake(self: StdArc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &StdArc<Self>) {
        self.0.unpark();
    }
}

/// Loom models of the `DRIVING` state, with a stand-in driver: its wait returns once
/// notified (as the reactor's eventfd interrupts `epoll_wait`).
#[cfg(all(test, loom))]
mod models {
    use super::*;
    use crate::loom::atomic::AtomicBool;
    use crate::loom::thread;

    /// The stand-in driver's wait.
    struct ModelPoller {
        notified: Mutex<bool>,
        wake: Condvar,
    }

    impl ModelPoller {
        fn notify(&self) {
            *lock(&self.notified) = true;
            self.wake.notify_all();
        }

        fn wait(&self) {
            let mut notified = lock(&self.notified);
            while !*notified {
                notified = self.wake.wait(notified).unwrap();
            }
            *notified = false;
        }
    }

    /// Shutdown (a flag, then an unpark, as `shutdown::run` does) while the worker sleeps in
    /// the poller ends the worker: the unpark of a `DRIVING` parker interrupts the driver's
    /// wait (mutant `unpark_ignores_driving`), or the worker sees the flag or the token before
    /// it waits. The same path wakes a driving worker for a spawned or woken task.
    #[test]
    fn shutdown_with_a_worker_in_the_poller_ends() {
        loom::model(|| {
            let poller = Arc::new(ModelPoller {
                notified: Mutex::new(false),
                wake: Condvar::new(),
            });
            let notify: DriverNotify = {
                let poller = poller.clone();
                StdArc::new(move || poller.notify())
            };
            let parker = Parker::with_driver(Some(notify));
            let unparker = parker.unparker();
            let shutdown = Arc::new(AtomicBool::new(false));
            let worker = {
                let shutdown = shutdown.clone();
                thread::spawn(move || {
                    while !shutdown.load(Ordering::SeqCst) {
                        parker.park_driving(|| poller.wait());
                    }
                })
            };
            shutdown.store(true, Ordering::SeqCst);
            unparker.unpark();
            worker.join().unwrap();
        });
    }
}
