//! [`Lock`]: an async mutex that owns its data (asyncio's `Lock`).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll};

use crate::loom::UnsafeCell;
use crate::raw_lock::RawLock;
use crate::waiters::WaiterId;

/// An async mutual-exclusion lock that owns the data it protects (asyncio's `Lock`, shaped like
/// `std::sync::Mutex`).
///
/// **Fairness (bounded barging):** waiters queue in the order they started waiting (FIFO) and
/// only the first is woken. Unlocking makes the lock free for anyone — a newcomer,
/// [`try_lock`](Lock::try_lock), or the task that just unlocked it — while the first waiter is
/// woken to retry; so a task that unlocks and relocks need not suspend. A woken waiter that
/// finds the lock taken retries at its next poll (it wakes itself at once); after 4 such failed
/// polls it is handed the lock directly at the next unlock, and nobody can take it in between:
/// no waiter starves.
///
/// **Cancellation:** dropping a pending [`lock`](Lock::lock) future removes it from the queue; if
/// it had been woken to retry or handed the lock, the next waiter gets the turn instead.
///
/// No OS lock is held while a [`LockGuard`] is alive; holding the guard across `.await` is fine.
///
/// # Examples
///
/// ```
/// use magpie_sync::Lock;
///
/// futures_lite::future::block_on(async {
///     let lock = Lock::new(0);
///     *lock.lock().await += 1;
///     assert_eq!(*lock.lock().await, 1);
/// });
/// ```
pub struct Lock<T> {
    raw: RawLock,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `T` to one guard at a time, so sharing a `Lock<T>` between
// threads only ever moves exclusive access to `T` from one thread to another: `T: Send` suffices
// (exactly as for `std::sync::Mutex`).
unsafe impl<T: Send> Sync for Lock<T> {}
// SAFETY: `Lock<T>` owns a `T`; sending it sends the `T`.
unsafe impl<T: Send> Send for Lock<T> {}

impl<T> Lock<T> {
    /// Creates an unlocked lock holding `value`.
    ///
    /// (Not `const`: under `cfg(loom)` the internals are loom types, which have no const
    /// constructors.)
    pub fn new(value: T) -> Self {
        Lock {
            raw: RawLock::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Waits for the lock and returns a guard giving access to the data.
    ///
    /// Waiters queue in FIFO order, with bounded barging (see [`Lock`]). Dropping the future
    /// before it completes gives up its place (and passes the turn on if it had just been woken
    /// or handed the lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_sync::Lock;
    ///
    /// futures_lite::future::block_on(async {
    ///     let lock = Lock::new(String::from("a"));
    ///     lock.lock().await.push('b');
    ///     assert_eq!(*lock.lock().await, "ab");
    /// });
    /// ```
    pub fn lock(&self) -> LockFuture<'_, T> {
        LockFuture {
            lock: self,
            waiter: None,
            done: false,
        }
    }

    /// Takes the lock if it is free right now, even if others wait, unless it is owed to a
    /// waiter (see [`Lock`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_sync::Lock;
    ///
    /// let lock = Lock::new(1);
    /// let guard = lock.try_lock().unwrap();
    /// assert!(lock.try_lock().is_none());
    /// drop(guard);
    /// assert!(lock.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<LockGuard<'_, T>> {
        self.raw.try_acquire().then(|| LockGuard::new(self))
    }

    /// Waits for the lock through an `Arc`, returning a guard that keeps the lock alive and is
    /// `'static` (handy to move into a spawned task).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use magpie_sync::Lock;
    ///
    /// futures_lite::future::block_on(async {
    ///     let lock = Arc::new(Lock::new(5));
    ///     let mut guard = lock.clone().lock_owned().await;
    ///     *guard += 1;
    ///     drop(guard);
    ///     assert_eq!(*lock.lock().await, 6);
    /// });
    /// ```
    pub fn lock_owned(self: StdArc<Self>) -> OwnedLockFuture<T> {
        OwnedLockFuture {
            lock: Some(self),
            waiter: None,
        }
    }

    /// Like [`try_lock`](Lock::try_lock), through an `Arc`.
    pub fn try_lock_owned(self: StdArc<Self>) -> Option<OwnedLockGuard<T>> {
        self.raw
            .try_acquire()
            .then(|| OwnedLockGuard { lock: self })
    }

    /// Consumes the lock and returns the data.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = magpie_sync::Lock::new(vec![1]);
    /// assert_eq!(lock.into_inner(), vec![1]);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }

    /// Mutable access to the data; no locking is needed since `&mut self` is exclusive.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut lock = magpie_sync::Lock::new(1);
    /// *lock.get_mut() = 2;
    /// assert_eq!(lock.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        // SAFETY: `&mut self` proves no guard exists (guards borrow the lock), so this is the
        // only access to the data for the returned lifetime.
        self.data.with_mut(|ptr| unsafe { &mut *ptr })
    }
}

impl<T: Default> Default for Lock<T> {
    fn default() -> Self {
        Lock::new(T::default())
    }
}

impl<T> From<T> for Lock<T> {
    fn from(value: T) -> Self {
        Lock::new(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Lock");
        match self.try_lock() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// The future returned by [`Lock::lock`].
///
/// # Panics
///
/// Polled again after it returned `Ready` (it would start over: a second acquisition, or
/// arrival, its caller does not expect).
#[must_use = "futures do nothing unless polled"]
pub struct LockFuture<'a, T> {
    lock: &'a Lock<T>,
    waiter: Option<WaiterId>,
    /// Returned `Ready`: polled again, it panics rather than start over.
    done: bool,
}

impl<'a, T> Future for LockFuture<'a, T> {
    type Output = LockGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(
            !this.done,
            "`LockFuture` polled again after it returned `Ready`"
        );
        let lock = this.lock;
        let polled = lock.raw.poll_acquire(&mut this.waiter, cx);
        this.done = polled.is_ready();
        polled.map(|()| LockGuard::new(lock))
    }
}

impl<T> Drop for LockFuture<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.cancel(self.waiter.take());
    }
}

impl<T> fmt::Debug for LockFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFuture")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

/// The future returned by [`Lock::lock_owned`].
#[must_use = "futures do nothing unless polled"]
pub struct OwnedLockFuture<T> {
    lock: Option<StdArc<Lock<T>>>,
    waiter: Option<WaiterId>,
}

impl<T> Future for OwnedLockFuture<T> {
    type Output = OwnedLockGuard<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let lock = this
            .lock
            .as_ref()
            .expect("OwnedLockFuture polled after completion");
        match lock.raw.poll_acquire(&mut this.waiter, cx) {
            Poll::Ready(()) => Poll::Ready(OwnedLockGuard {
                lock: this.lock.take().expect("checked above"),
            }),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Drop for OwnedLockFuture<T> {
    fn drop(&mut self) {
        if let Some(lock) = &self.lock {
            lock.raw.cancel(self.waiter.take());
        }
    }
}

impl<T> fmt::Debug for OwnedLockFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedLockFuture")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

/// Access to the data of a held [`Lock`]; unlocks (handing the lock to the next waiter) on drop.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, T> {
    lock: &'a Lock<T>,
    // Makes the guard `Send` only if `T: Send` and `Sync` only if `T: Sync`, like `&mut T`.
    _marker: PhantomData<&'a mut T>,
}

impl<'a, T> LockGuard<'a, T> {
    fn new(lock: &'a Lock<T>) -> Self {
        LockGuard {
            lock,
            _marker: PhantomData,
        }
    }

    pub(crate) fn lock(guard: &Self) -> &'a Lock<T> {
        guard.lock
    }
}

impl<T> Deref for LockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard is the lock's only owner until it is dropped, so no `&mut T` exists
        // elsewhere; the reference borrows the guard, so it cannot outlive the ownership.
        self.lock.data.with(|ptr| unsafe { &*ptr })
    }
}

impl<T> DerefMut for LockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference through the guard.
        self.lock.data.with_mut(|ptr| unsafe { &mut *ptr })
    }
}

impl<T> Drop for LockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.release();
    }
}

impl<T: fmt::Debug> fmt::Debug for LockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for LockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// An owned (`'static`) guard of a [`Lock`] held through an `Arc`, from
/// [`Lock::lock_owned`].
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct OwnedLockGuard<T> {
    lock: StdArc<Lock<T>>,
}

// SAFETY: the guard gives `&T` (shared across threads only if `T: Sync`) and `&mut T`; an
// `Arc<Lock<T>>` alone would make it `Sync` for `T: Send`, which would be too weak for `&T`.
unsafe impl<T: Send + Sync> Sync for OwnedLockGuard<T> {}

impl<T> OwnedLockGuard<T> {
    /// The lock this guard holds.
    pub fn lock(guard: &Self) -> &StdArc<Lock<T>> {
        &guard.lock
    }
}

impl<T> Deref for OwnedLockGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard owns the lock until dropped; see `LockGuard::deref`.
        self.lock.data.with(|ptr| unsafe { &*ptr })
    }
}

impl<T> DerefMut for OwnedLockGuard<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard owns the lock until dropped; see `LockGuard::deref_mut`.
        self.lock.data.with_mut(|ptr| unsafe { &mut *ptr })
    }
}

impl<T> Drop for OwnedLockGuard<T> {
    fn drop(&mut self) {
        self.lock.raw.release();
    }
}

impl<T: fmt::Debug> fmt::Debug for OwnedLockGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
