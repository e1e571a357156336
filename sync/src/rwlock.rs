//! [`RwLock`]: an async readers–writer lock with FIFO fairness.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::loom::{Mutex, UnsafeCell};
use crate::waiters::{WaitList, WaiterId, WakeList};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

#[derive(Debug)]
struct State {
    readers: usize,
    writer: bool,
    waiters: WaitList<Access>,
}

impl State {
    fn can_grant(&self, access: Access) -> bool {
        match access {
            // The count never wraps: past `usize::MAX` readers (guards leaked with
            // `mem::forget`, say) a reader waits, as a wrapped count would let a writer in
            // beside live readers.
            Access::Read => !self.writer && self.readers < usize::MAX,
            Access::Write => !self.writer && self.readers == 0,
        }
    }

    fn grant(&mut self, access: Access) {
        match access {
            Access::Read => self.readers += 1,
            Access::Write => self.writer = true,
        }
    }

    fn release(&mut self, access: Access) {
        match access {
            Access::Read => self.readers -= 1,
            Access::Write => self.writer = false,
        }
    }

    /// Hands the lock to as many front waiters as it can: one writer, or a run of readers.
    /// Stops at the first waiter that cannot be served, so nobody overtakes it.
    fn dispatch(&mut self) -> WakeList {
        let mut wakers = WakeList::new();
        while let Some(&access) = self.waiters.front() {
            if !self.can_grant(access) {
                break;
            }
            self.grant(access);
            let (_, waker) = self.waiters.notify_front().expect("front exists");
            wakers.push(waker);
        }
        wakers
    }
}

/// An async readers–writer lock owning its data: many readers or one writer at a time.
///
/// **Fairness:** requests are served in FIFO order. A reader arriving while a writer waits queues
/// behind that writer, so a stream of readers cannot starve writers; when a writer releases, the
/// whole run of readers at the front of the queue is admitted together.
///
/// **Cancellation:** dropping a pending [`read`](RwLock::read) or [`write`](RwLock::write) future
/// removes it from the queue (possibly letting the waiters behind it in); if access had already
/// been granted to it, that access is released again.
///
/// # Examples
///
/// ```
/// use magpie_sync::RwLock;
///
/// futures_lite::future::block_on(async {
///     let lock = RwLock::new(1);
///     {
///         let a = lock.read().await;
///         let b = lock.read().await;
///         assert_eq!(*a + *b, 2);
///     }
///     *lock.write().await += 1;
///     assert_eq!(*lock.read().await, 2);
/// });
/// ```
pub struct RwLock<T> {
    state: Mutex<State>,
    data: UnsafeCell<T>,
}

// SAFETY: readers on several threads share `&T` (needs `T: Sync`); a writer on any thread gets
// `&mut T`, moving exclusive access between threads (needs `T: Send`).
unsafe impl<T: Send + Sync> Sync for RwLock<T> {}
// SAFETY: `RwLock<T>` owns a `T`; sending it sends the `T`.
unsafe impl<T: Send> Send for RwLock<T> {}

impl<T> RwLock<T> {
    /// Creates an unlocked `RwLock` holding `value`.
    pub fn new(value: T) -> Self {
        RwLock {
            state: Mutex::new(State {
                readers: 0,
                writer: false,
                waiters: WaitList::new(),
            }),
            data: UnsafeCell::new(value),
        }
    }

    /// Waits for shared read access.
    pub fn read(&self) -> ReadFuture<'_, T> {
        ReadFuture {
            inner: Acquire {
                lock: self,
                access: Access::Read,
                waiter: None,
                done: false,
            },
        }
    }

    /// Waits for exclusive write access.
    pub fn write(&self) -> WriteFuture<'_, T> {
        WriteFuture {
            inner: Acquire {
                lock: self,
                access: Access::Write,
                waiter: None,
                done: false,
            },
        }
    }

    fn try_acquire(&self, access: Access) -> bool {
        let mut state = self.state.lock();
        // Nobody may overtake a queued waiter.
        if state.waiters.is_empty() && state.can_grant(access) {
            state.grant(access);
            true
        } else {
            false
        }
    }

    /// Takes read access if available now without overtaking a waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = magpie_sync::RwLock::new(0);
    /// let r = lock.try_read().unwrap();
    /// assert!(lock.try_write().is_none());
    /// assert!(lock.try_read().is_some());
    /// drop(r);
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.try_acquire(Access::Read).then(|| RwLockReadGuard {
            lock: self,
            _marker: PhantomData,
        })
    }

    /// Takes write access if available now without overtaking a waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = magpie_sync::RwLock::new(0);
    /// let mut w = lock.try_write().unwrap();
    /// *w = 3;
    /// assert!(lock.try_read().is_none());
    /// drop(w);
    /// assert_eq!(*lock.try_read().unwrap(), 3);
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.try_acquire(Access::Write).then(|| RwLockWriteGuard {
            lock: self,
            _marker: PhantomData,
        })
    }

    /// Consumes the lock and returns the data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }

    /// Mutable access to the data; `&mut self` proves no guard exists.
    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: guards borrow the lock, so `&mut self` means none exists.
        self.data.with_mut(|ptr| unsafe { &mut *ptr })
    }

    fn release(&self, access: Access) {
        let mut state = self.state.lock();
        state.release(access);
        let wakers = state.dispatch();
        drop(state);
        wakers.wake_all();
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> Self {
        RwLock::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// The shared acquire state machine of the read and write futures.
struct Acquire<'a, T> {
    lock: &'a RwLock<T>,
    access: Access,
    waiter: Option<WaiterId>,
    /// Returned `Ready`: polled again, it panics rather than start over.
    done: bool,
}

impl<T> Acquire<'_, T> {
    fn poll_acquire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        assert!(
            !self.done,
            "an `RwLock` read or write future polled again after it returned `Ready`"
        );
        let polled = self.poll_state(cx);
        self.done = polled.is_ready();
        polled
    }

    fn poll_state(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock.state.lock();
        match &self.waiter {
            None if state.waiters.is_empty() && state.can_grant(self.access) => {
                state.grant(self.access);
                Poll::Ready(())
            }
            None => {
                self.waiter = Some(state.waiters.push_back(self.access, cx.waker()));
                Poll::Pending
            }
            Some(id) if state.waiters.is_queued(id) => {
                state.waiters.set_waker(id, cx.waker());
                Poll::Pending
            }
            Some(_) => {
                // Notified: `dispatch` already granted our access.
                let id = self.waiter.take().expect("matched Some above");
                state.waiters.remove(id);
                Poll::Ready(())
            }
        }
    }
}

impl<T> Drop for Acquire<'_, T> {
    fn drop(&mut self) {
        let Some(id) = self.waiter.take() else { return };
        let mut state = self.lock.state.lock();
        if state.waiters.remove(id).notified {
            state.release(self.access);
        }
        // Either way the queue changed (a blocked front writer may be gone): re-dispatch.
        let wakers = state.dispatch();
        drop(state);
        wakers.wake_all();
    }
}

/// The future returned by [`RwLock::read`].
///
/// # Panics
///
/// Polled again after it returned `Ready` (it would start over: a second acquisition, or
/// arrival, its caller does not expect).
#[must_use = "futures do nothing unless polled"]
pub struct ReadFuture<'a, T> {
    inner: Acquire<'a, T>,
}

impl<'a, T> Future for ReadFuture<'a, T> {
    type Output = RwLockReadGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let lock = this.inner.lock;
        this.inner.poll_acquire(cx).map(|()| RwLockReadGuard {
            lock,
            _marker: PhantomData,
        })
    }
}

impl<T> fmt::Debug for ReadFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadFuture")
            .field("waiting", &self.inner.waiter.is_some())
            .finish()
    }
}

/// The future returned by [`RwLock::write`].
///
/// # Panics
///
/// Polled again after it returned `Ready` (it would start over: a second acquisition, or
/// arrival, its caller does not expect).
#[must_use = "futures do nothing unless polled"]
pub struct WriteFuture<'a, T> {
    inner: Acquire<'a, T>,
}

impl<'a, T> Future for WriteFuture<'a, T> {
    type Output = RwLockWriteGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let lock = this.inner.lock;
        this.inner.poll_acquire(cx).map(|()| RwLockWriteGuard {
            lock,
            _marker: PhantomData,
        })
    }
}

impl<T> fmt::Debug for WriteFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteFuture")
            .field("waiting", &self.inner.waiter.is_some())
            .finish()
    }
}

/// Shared read access to an [`RwLock`]'s data; released on drop.
#[must_use = "the read access is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T> {
    lock: &'a RwLock<T>,
    // `Send`/`Sync` like `&T`.
    _marker: PhantomData<&'a T>,
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: while any read guard lives, no writer is granted, so only shared references
        // to the data exist; the reference borrows the guard.
        self.lock.data.with(|ptr| unsafe { &*ptr })
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release(Access::Read);
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Exclusive write access to an [`RwLock`]'s data; released on drop.
#[must_use = "the write access is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T> {
    lock: &'a RwLock<T>,
    // `Send`/`Sync` like `&mut T`.
    _marker: PhantomData<&'a mut T>,
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard is the only holder (writer excludes readers and other writers).
        self.lock.data.with(|ptr| unsafe { &*ptr })
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the only holder, and `&mut self` is the only path through the guard.
        self.lock.data.with_mut(|ptr| unsafe { &mut *ptr })
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release(Access::Write);
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At `usize::MAX` readers (reachable only by leaking guards) no more are let in: the
    /// count would wrap to 0 and let a writer in beside them.
    #[test]
    fn the_reader_count_never_wraps() {
        let mut state = State {
            readers: usize::MAX - 1,
            writer: false,
            waiters: WaitList::new(),
        };
        assert!(state.can_grant(Access::Read));
        state.grant(Access::Read);
        assert!(
            !state.can_grant(Access::Read),
            "a reader past the count's end"
        );
        assert!(!state.can_grant(Access::Write));
        state.release(Access::Read);
        assert!(state.can_grant(Access::Read));
    }
}
