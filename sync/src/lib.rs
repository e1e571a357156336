//! magpie's executor-agnostic async synchronization primitives (re-exported as `magpie::sync`).
//!
//! These are asyncio's synchronization primitives, made for many threads:
//!
//! | magpie | asyncio |
//! |---|---|
//! | [`Lock`] | `asyncio.Lock` (owning its data, like a mutex) |
//! | [`RwLock`] | — (readers–writer lock) |
//! | [`Event`] | `asyncio.Event` |
//! | [`Condition`] | `asyncio.Condition` |
//! | [`Semaphore`] | `asyncio.Semaphore` (with RAII permits) |
//! | [`Barrier`] | `asyncio.Barrier` |
//! | [`Queue`] | `asyncio.Queue` |
//! | [`PriorityQueue`] | `asyncio.PriorityQueue` |
//! | [`oneshot()`] | `loop.create_future()` + `set_result` |
//!
//! They only use [`Waker`](std::task::Waker)s, so they work under any executor (magpie, tokio,
//! `futures_lite::future::block_on`, …). Waiters queue in FIFO order (`Lock`, `Semaphore` and
//! the queues let a newcomer take a free resource ahead of them, a bounded number of times: see
//! [`Semaphore`] and [`Queue`]), and dropping a pending future is always safe: it
//! leaves the queue, and anything already handed to it (a lock, permits, an item, a turn to
//! retry) passes on to the next waiter. Internally every primitive keeps its waiters in one
//! shared FIFO waiter list, touched only inside short critical sections (a bounded `Queue`'s
//! items live in a lock-free ring beside it); no OS lock is ever held across an `.await`, and
//! wakers run after those locks are released.
//!
//! With `RUSTFLAGS="--cfg loom"` the primitives are built on loom's types, so a loom model using
//! them explores their interleavings.

mod barrier;
mod buffer;
mod channel;
mod condition;
mod event;
mod lock;
mod loom;
pub mod oneshot;
mod queue;
mod queue_error;
mod raw_lock;
mod raw_semaphore;
mod ring;
mod rwlock;
mod semaphore;
mod store;
mod waiters;

pub use barrier::{Barrier, BarrierWait, BarrierWaitResult};
pub use condition::{Condition, ConditionWait};
pub use event::{Event, EventWait};
pub use lock::{Lock, LockFuture, LockGuard, OwnedLockFuture, OwnedLockGuard};
pub use queue::{Get, Join, PriorityQueue, Put, Queue};
pub use queue_error::{Closed, PutError, TryGetError, TryPutError};
pub use rwlock::{ReadFuture, RwLock, RwLockReadGuard, RwLockWriteGuard, WriteFuture};
pub use semaphore::{
    Acquire, AcquireError, AcquireOwned, OwnedSemaphorePermit, Semaphore, SemaphorePermit,
    TryAcquireError,
};

/// Creates a oneshot channel: a [`Sender`](oneshot::Sender) that sets a result once and a
/// [`Receiver`](oneshot::Receiver) future for it.
///
/// # Examples
///
/// ```
/// use magpie_sync::oneshot;
///
/// let (tx, rx) = oneshot();
/// std::thread::spawn(move || tx.send(40 + 2).unwrap());
/// assert_eq!(futures_lite::future::block_on(rx), Ok(42));
/// ```
pub fn oneshot<T>() -> (oneshot::Sender<T>, oneshot::Receiver<T>) {
    oneshot::channel()
}
