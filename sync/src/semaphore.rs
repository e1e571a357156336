//! [`Semaphore`]: a fair counting semaphore (asyncio's `Semaphore`).

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll};

use crate::loom::Mutex;
use crate::waiters::{WaitList, WaiterId, WakeList};

/// A queued request: how many permits it wants and, once notified, whether it got them
/// (`false` means the semaphore was closed).
#[derive(Debug)]
struct Request {
    permits: usize,
    granted: bool,
}

#[derive(Debug)]
struct State {
    permits: usize,
    closed: bool,
    waiters: WaitList<Request>,
}

impl State {
    /// Grants permits to front waiters while the front one can be satisfied. A large request at
    /// the front blocks smaller ones behind it: strict FIFO, so it cannot be starved.
    fn dispatch(&mut self) -> WakeList {
        let mut wakers = WakeList::new();
        while let Some(request) = self.waiters.front() {
            if request.permits > self.permits {
                break;
            }
            let (request, waker) = self.waiters.notify_front().expect("front exists");
            self.permits -= request.permits;
            request.granted = true;
            wakers.push(waker);
        }
        wakers
    }
}

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
    /// Not enough permits are available right now (or others are already waiting for them).
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
/// **Fairness:** requests are served in FIFO order. A request that cannot be satisfied yet
/// blocks the requests behind it, even smaller ones, so a large request is never starved;
/// `try_acquire` does not overtake waiters either.
///
/// **Cancellation:** dropping a pending `acquire` future removes its request; if the permits had
/// already been granted to it, they are returned and passed on to the next waiters.
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
    state: Mutex<State>,
}

impl Semaphore {
    /// Creates a semaphore with `permits` permits.
    pub fn new(permits: usize) -> Self {
        Semaphore {
            state: Mutex::new(State {
                permits,
                closed: false,
                waiters: WaitList::new(),
            }),
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
        }
    }

    /// Takes one permit if available now without overtaking a waiter.
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if available now without overtaking a waiter.
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

    /// Adds `n` permits, waking waiters they satisfy.
    ///
    /// # Panics
    ///
    /// Panics if the number of available permits would overflow `usize`.
    pub fn add_permits(&self, n: usize) {
        let mut state = self.state.lock();
        state.permits = state
            .permits
            .checked_add(n)
            .expect("Semaphore::add_permits: permit count overflowed usize");
        let wakers = state.dispatch();
        drop(state);
        wakers.wake_all();
    }

    /// The number of permits available right now.
    pub fn available_permits(&self) -> usize {
        self.state.lock().permits
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
        let mut state = self.state.lock();
        state.closed = true;
        let mut wakers = WakeList::new();
        // Notified with `granted == false`: they will report `AcquireError`.
        while let Some((_, waker)) = state.waiters.notify_front() {
            wakers.push(waker);
        }
        drop(state);
        wakers.wake_all();
    }

    /// Whether [`close`](Semaphore::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    fn try_take(&self, n: usize) -> Result<(), TryAcquireError> {
        let mut state = self.state.lock();
        if state.closed {
            Err(TryAcquireError::Closed)
        } else if state.waiters.is_empty() && state.permits >= n {
            state.permits -= n;
            Ok(())
        } else {
            Err(TryAcquireError::NoPermits)
        }
    }

    fn poll_acquire(
        &self,
        n: usize,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AcquireError>> {
        let mut state = self.state.lock();
        match waiter {
            None if state.closed => Poll::Ready(Err(AcquireError(()))),
            None if state.waiters.is_empty() && state.permits >= n => {
                state.permits -= n;
                Poll::Ready(Ok(()))
            }
            None => {
                let request = Request {
                    permits: n,
                    granted: false,
                };
                *waiter = Some(state.waiters.push_back(request, cx.waker()));
                Poll::Pending
            }
            Some(id) if state.waiters.is_queued(id) => {
                state.waiters.set_waker(id, cx.waker());
                Poll::Pending
            }
            Some(_) => {
                let removed = state
                    .waiters
                    .remove(waiter.take().expect("matched Some above"));
                if removed.value.granted {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Ready(Err(AcquireError(())))
                }
            }
        }
    }

    /// Called when an acquiring future is dropped. One that never queued has nothing to undo
    /// and returns here, inline, without touching the mutex.
    #[inline]
    fn cancel(&self, waiter: Option<WaiterId>) {
        if let Some(id) = waiter {
            self.cancel_queued(id);
        }
    }

    #[cold]
    fn cancel_queued(&self, id: WaiterId) {
        let mut state = self.state.lock();
        let removed = state.waiters.remove(id);
        // Mutant for the loom models (issue 7): permits granted to a cancelled waiter are lost.
        #[cfg(magpie_mutant = "semaphore_cancel_loses_permits")]
        let removed = crate::waiters::Removed {
            value: Request {
                permits: 0,
                ..removed.value
            },
            ..removed
        };
        if removed.value.granted {
            // Granted but never returned to the caller: give the permits back.
            state.permits += removed.value.permits;
        }
        // Even a plain removal may unblock the requests behind a large one.
        let wakers = state.dispatch();
        drop(state);
        wakers.wake_all();
    }

    fn release(&self, n: usize) {
        let mut state = self.state.lock();
        state.permits += n;
        if state.waiters.is_empty() {
            // The usual case: nobody to hand permits to or wake, so skip the dispatch.
            return;
        }
        let wakers = state.dispatch();
        drop(state);
        wakers.wake_all();
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Semaphore")
            .field("permits", &state.permits)
            .field("closed", &state.closed)
            .field("waiters", &state.waiters.len())
            .finish()
    }
}

/// The future returned by [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
#[must_use = "futures do nothing unless polled"]
pub struct Acquire<'a> {
    semaphore: &'a Semaphore,
    permits: usize,
    waiter: Option<WaiterId>,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<SemaphorePermit<'a>, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let semaphore = this.semaphore;
        let permits = this.permits;
        semaphore
            .poll_acquire(permits, &mut this.waiter, cx)
            .map(|result| result.map(|()| SemaphorePermit { semaphore, permits }))
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
