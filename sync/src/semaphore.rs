//! [`Semaphore`]: a counting semaphore with bounded barging (asyncio's `Semaphore`).

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll};

use crate::raw_semaphore::{ClosedError, RawSemaphore, TakeError};
use crate::waiters::WaiterId;

/// The error of [`Semaphore::acquire`] and friends: the semaphore was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AcquireError(());

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore closed")
    }
}

impl Error for AcquireError {}

/// The error of [`Semaphore::try_acquire`] and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryAcquireError {
    /// The semaphore was closed.
    Closed,
    /// Not enough permits are available right now (or they are owed to a waiter).
    NoPermits,
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::Closed => f.write_str("semaphore closed"),
            TryAcquireError::NoPermits => f.write_str("no permits available"),
        }
    }
}

impl Error for TryAcquireError {}

/// A counting semaphore (asyncio's `Semaphore`), with RAII permits.
///
/// **Fairness (bounded barging):** waiters queue in FIFO order and only the front one is woken
/// or served. Returning permits that the front waiter can use wakes it to retry; until it has
/// run, the free permits may be taken by anyone — a newcomer, `try_acquire`, or the task that
/// just released them — so a task that releases and re-acquires need not suspend each time.
/// While waiters sleep and none has been woken, nobody can take permits past them (so a large
/// request at the front blocks smaller ones). A woken waiter that finds its permits taken retries
/// at its next poll (it wakes itself at once); after 4 such failed polls it is handed the next
/// permits directly, and nobody else may take permits until it has them: no waiter starves.
///
/// **Cancellation:** dropping a pending `acquire` future removes its request; if it had been
/// woken to retry, the next waiter is woken instead (when the free permits suffice for it), and if permits had already been handed
/// to it, they are returned and passed on.
///
/// **Closing:** after [`close`](Semaphore::close), pending and later acquires fail with
/// [`AcquireError`]; permits already held stay valid.
///
/// # Examples
///
/// ```
/// use magpie_sync::Semaphore;
///
/// futures_lite::future::block_on(async {
///     let sem = Semaphore::new(2);
///     let a = sem.acquire().await.unwrap();
///     let _b = sem.acquire().await.unwrap();
///     assert_eq!(sem.available_permits(), 0);
///     assert!(sem.try_acquire().is_err());
///     drop(a);
///     assert_eq!(sem.available_permits(), 1);
/// });
/// ```
pub struct Semaphore {
    raw: RawSemaphore,
}

impl Semaphore {
    /// Creates a semaphore with `permits` permits.
    pub fn new(permits: usize) -> Self {
        Semaphore {
            raw: RawSemaphore::new(permits),
        }
    }

    /// Waits for one permit.
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits for `n` permits, taken all at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = magpie_sync::Semaphore::new(5);
    /// let permit = futures_lite::future::block_on(sem.acquire_many(3)).unwrap();
    /// assert_eq!(permit.num_permits(), 3);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn acquire_many(&self, n: usize) -> Acquire<'_> {
        Acquire {
            semaphore: self,
            permits: n,
            waiter: None,
            done: false,
        }
    }

    /// Takes one permit if one is free now and not owed to a waiter (see **Fairness**).
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free now and not owed to a waiter (see **Fairness**).
    pub fn try_acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_take(n).map(|()| SemaphorePermit {
            semaphore: self,
            permits: n,
        })
    }

    /// Waits for one permit through an `Arc`; the permit is `'static`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(magpie_sync::Semaphore::new(1));
    /// let permit = futures_lite::future::block_on(sem.clone().acquire_owned()).unwrap();
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire_owned(self: StdArc<Self>) -> AcquireOwned {
        self.acquire_many_owned(1)
    }

    /// Waits for `n` permits through an `Arc`.
    pub fn acquire_many_owned(self: StdArc<Self>, n: usize) -> AcquireOwned {
        AcquireOwned {
            semaphore: Some(self),
            permits: n,
            waiter: None,
        }
    }

    /// Takes one permit through an `Arc` if available now.
    pub fn try_acquire_owned(self: StdArc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        self.try_take(1)?;
        Ok(OwnedSemaphorePermit {
            semaphore: self,
            permits: 1,
        })
    }

    /// Adds `n` permits, waking a waiter they may satisfy.
    ///
    /// # Panics
    ///
    /// Panics if the number of available permits would overflow `usize`, with the message
    /// `"Semaphore: the free permit count overflowed usize (more than usize::MAX permits in
    /// all)"`. Returning permits panics the same way if this made more than `usize::MAX`
    /// permits exist in all (held plus free).
    pub fn add_permits(&self, n: usize) {
        self.raw.add_permits(n);
    }

    /// The number of permits available right now.
    pub fn available_permits(&self) -> usize {
        self.raw.available_permits()
    }

    /// Closes the semaphore: pending and later acquires fail with [`AcquireError`]. Permits
    /// already held remain valid and are still returned when dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = magpie_sync::Semaphore::new(0);
    /// sem.close();
    /// assert!(futures_lite::future::block_on(sem.acquire()).is_err());
    /// ```
    pub fn close(&self) {
        self.raw.close();
    }

    /// Whether [`close`](Semaphore::close) was called.
    pub fn is_closed(&self) -> bool {
        self.raw.is_closed()
    }

    fn try_take(&self, n: usize) -> Result<(), TryAcquireError> {
        self.raw.try_acquire(n).map_err(|err| match err {
            TakeError::Closed => TryAcquireError::Closed,
            TakeError::NoPermits => TryAcquireError::NoPermits,
        })
    }

    fn poll_acquire(
        &self,
        n: usize,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        self.raw
            .poll_acquire(n, waiter, cx)
            .map(|result| result.map_err(|ClosedError| AcquireError(())))
    }

    #[inline]
    fn cancel(&self, waiter: Option<WaiterId>) {
        self.raw.cancel(waiter);
    }

    fn release(&self, n: usize) {
        self.raw.release(n);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.raw.available_permits())
            .field("closed", &self.raw.is_closed())
            .field("waiters", &self.raw.queued())
            .finish()
    }
}

/// The future returned by [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
///
/// # Panics
///
/// Polled again after it returned `Ready` (it would start over: a second acquisition, or
/// arrival, its caller does not expect).
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a> {
    semaphore: &'a Semaphore,
    permits: usize,
    waiter: Option<WaiterId>,
    /// Returned `Ready`: polled again, it panics rather than start over.
    done: bool,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<SemaphorePermit<'a>, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(
            !this.done,
            "`Acquire` polled again after it returned `Ready`"
        );
        let semaphore = this.semaphore;
        let permits = this.permits;
        let polled = semaphore.poll_acquire(permits, &mut this.waiter, cx);
        this.done = polled.is_ready();
        polled.map(|result| result.map(|()| SemaphorePermit { semaphore, permits }))
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.semaphore.cancel(self.waiter.take());
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("permits", &self.permits)
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

/// The future returned by [`Semaphore::acquire_owned`] and [`Semaphore::acquire_many_owned`].
#[must_use = "futures do nothing unless polled"]
pub struct AcquireOwned {
    semaphore: Option<StdArc<Semaphore>>,
    permits: usize,
    waiter: Option<WaiterId>,
}

impl Future for AcquireOwned {
    type Output = Result<OwnedSemaphorePermit, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let semaphore = this
            .semaphore
            .as_ref()
            .expect("AcquireOwned polled after completion");
        match semaphore.poll_acquire(this.permits, &mut this.waiter, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                let semaphore = this.semaphore.take().expect("checked above");
                Poll::Ready(result.map(|()| OwnedSemaphorePermit {
                    semaphore,
                    permits: this.permits,
                }))
            }
        }
    }
}

impl Drop for AcquireOwned {
    fn drop(&mut self) {
        if let Some(semaphore) = &self.semaphore {
            semaphore.cancel(self.waiter.take());
        }
    }
}

impl fmt::Debug for AcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireOwned")
            .field("permits", &self.permits)
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

/// Permits held from a [`Semaphore`]; returned to it on drop.
#[must_use = "the permits are returned as soon as this is dropped"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
    permits: usize,
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Drops the permits without returning them to the semaphore.
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.semaphore.release(self.permits);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}

/// Permits held from an `Arc<Semaphore>`; returned to it on drop.
#[must_use = "the permits are returned as soon as this is dropped"]
pub struct OwnedSemaphorePermit {
    semaphore: StdArc<Semaphore>,
    permits: usize,
}

impl OwnedSemaphorePermit {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Drops the permits without returning them to the semaphore.
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.semaphore.release(self.permits);
        }
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.permits)
            .finish()
    }
}
