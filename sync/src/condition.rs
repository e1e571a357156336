//! [`Condition`]: a condition variable over a [`Lock`] (asyncio's `Condition`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::lock::{Lock, LockFuture, LockGuard};
use crate::loom::Mutex;
use crate::waiters::{WaitList, WaiterId, WakeList};

/// A condition variable that owns its [`Lock`] (asyncio's `Condition`).
///
/// Lock it with [`lock`](Condition::lock), then [`wait`](Condition::wait) with the guard: the
/// lock is released while waiting and re-acquired before `wait` returns. A task is registered
/// as a waiter *before* the lock is released, so a notification sent by whoever takes the lock
/// next cannot be missed. Notifications are not stored: with no waiter, they do nothing.
///
/// **Fairness:** notifications wake waiters in the order they started waiting; re-acquiring the
/// lock afterwards follows [`Lock`]'s rules (FIFO queue, bounded barging).
///
/// **Cancellation:** dropping a `wait` future after it was notified, but before it returned,
/// passes that notification on to the next waiter, so no notification is lost.
///
/// # Examples
///
/// ```
/// use magpie_sync::Condition;
///
/// let cond = Condition::new(false);
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         futures_lite::future::block_on(async {
///             let ready = cond.wait_while(cond.lock().await, |ready| !*ready).await;
///             assert!(*ready);
///         })
///     });
///     futures_lite::future::block_on(async {
///         *cond.lock().await = true;
///         cond.notify_all();
///     });
/// });
/// ```
pub struct Condition<T> {
    lock: Lock<T>,
    waiters: Mutex<WaitList<()>>,
}

impl<T> Condition<T> {
    /// Creates a condition whose lock holds `value`.
    pub fn new(value: T) -> Self {
        Condition {
            lock: Lock::new(value),
            waiters: Mutex::new(WaitList::new()),
        }
    }

    /// Waits for the condition's lock (as [`Lock::lock`] does).
    pub fn lock(&self) -> LockFuture<'_, T> {
        self.lock.lock()
    }

    /// Takes the condition's lock if it is free right now.
    pub fn try_lock(&self) -> Option<LockGuard<'_, T>> {
        self.lock.try_lock()
    }

    /// Releases `guard`, waits for a notification, re-acquires the lock and returns the new guard.
    ///
    /// Like every condition variable, check your predicate in a loop (or use
    /// [`wait_while`](Condition::wait_while)): another task may have changed the data between the
    /// notification and the re-acquisition.
    ///
    /// # Panics
    ///
    /// Panics if `guard` is not a guard of this condition's own lock.
    pub fn wait<'a>(&'a self, guard: LockGuard<'a, T>) -> ConditionWait<'a, T> {
        assert!(
            std::ptr::eq(LockGuard::lock(&guard), &self.lock),
            "Condition::wait: the guard belongs to a different lock than this condition's"
        );
        ConditionWait {
            condition: self,
            phase: Phase::Start(Some(guard)),
        }
    }

    /// Waits until `condition` returns `false`, checking it under the lock before every wait.
    ///
    /// # Panics
    ///
    /// Panics if `guard` is not a guard of this condition's own lock.
    pub async fn wait_while<'a, F>(
        &'a self,
        mut guard: LockGuard<'a, T>,
        mut condition: F,
    ) -> LockGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut guard) {
            guard = self.wait(guard).await;
        }
        guard
    }

    /// Wakes the longest-waiting waiter, if any.
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes up to `n` waiters, longest-waiting first.
    pub fn notify(&self, n: usize) {
        let mut wakers = WakeList::new();
        let mut waiters = self.waiters.lock();
        for _ in 0..n {
            match waiters.notify_front() {
                Some(((), waker)) => wakers.push(waker),
                None => break,
            }
        }
        drop(waiters);
        wakers.wake_all();
    }

    /// Wakes every current waiter.
    pub fn notify_all(&self) {
        self.notify(usize::MAX);
    }

    /// Consumes the condition and returns the data.
    pub fn into_inner(self) -> T {
        self.lock.into_inner()
    }

    /// Mutable access to the data; `&mut self` proves nobody holds the lock.
    pub fn get_mut(&mut self) -> &mut T {
        self.lock.get_mut()
    }
}

impl<T: Default> Default for Condition<T> {
    fn default() -> Self {
        Condition::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Condition<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("lock", &self.lock)
            .field("waiters", &self.waiters.lock().len())
            .finish()
    }
}

enum Phase<'a, T> {
    /// Not polled yet: still holding the caller's guard.
    Start(Option<LockGuard<'a, T>>),
    /// Registered, lock released, waiting for a notification.
    Waiting(WaiterId),
    /// Notified; re-acquiring the lock.
    Relocking(LockFuture<'a, T>),
    Done,
}

/// The future returned by [`Condition::wait`].
#[must_use = "futures do nothing unless polled"]
pub struct ConditionWait<'a, T> {
    condition: &'a Condition<T>,
    phase: Phase<'a, T>,
}

impl<'a, T> Future for ConditionWait<'a, T> {
    type Output = LockGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.phase {
                Phase::Start(guard) => {
                    // Register first, then unlock: a notify after the unlock finds us queued.
                    let id = this.condition.waiters.lock().push_back((), cx.waker());
                    drop(guard.take());
                    this.phase = Phase::Waiting(id);
                    return Poll::Pending;
                }
                Phase::Waiting(id) => {
                    let mut waiters = this.condition.waiters.lock();
                    if waiters.is_queued(id) {
                        waiters.set_waker(id, cx.waker());
                        return Poll::Pending;
                    }
                    drop(waiters);
                    let Phase::Waiting(id) = std::mem::replace(
                        &mut this.phase,
                        Phase::Relocking(this.condition.lock.lock()),
                    ) else {
                        unreachable!("matched Waiting above")
                    };
                    this.condition.waiters.lock().remove(id);
                }
                Phase::Relocking(lock) => {
                    let guard = std::task::ready!(Pin::new(lock).poll(cx));
                    this.phase = Phase::Done;
                    return Poll::Ready(guard);
                }
                Phase::Done => panic!("ConditionWait polled after completion"),
            }
        }
    }
}

impl<T> Drop for ConditionWait<'_, T> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Waiting(id) => {
                let notified = self.condition.waiters.lock().remove(id).notified;
                if notified {
                    self.condition.notify_one();
                }
            }
            Phase::Relocking(lock) => {
                // Notified, but the caller never saw it: give it to the next waiter.
                drop(lock);
                self.condition.notify_one();
            }
            Phase::Start(_) | Phase::Done => {}
        }
    }
}

impl<T> fmt::Debug for ConditionWait<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Start(_) => "start",
            Phase::Waiting(_) => "waiting",
            Phase::Relocking(_) => "relocking",
            Phase::Done => "done",
        };
        f.debug_struct("ConditionWait")
            .field("phase", &phase)
            .finish()
    }
}
