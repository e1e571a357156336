//! `TaskGroup`: structured concurrency (asyncio's `TaskGroup`).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_lite::{FutureExt, StreamExt};

use super::{AbortHandle, JoinHandle};
use crate::combinator::as_completed;
use crate::loom::{lock, Arc, Mutex};

/// Why a [`TaskGroup`] failed: the first of its tasks to fail, and how.
pub enum GroupError<E> {
    /// A task returned `Err`.
    Failed(E),
    /// A task panicked; [`into_panic`](Self::into_panic) gives the payload.
    Panicked(PanicPayload),
    /// A task was cancelled from outside the group (aborted through its handle's abort
    /// handle, or dropped by runtime shutdown).
    Cancelled,
}

impl<E> GroupError<E> {
    /// The panic payload, when a task panicked.
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self {
            GroupError::Panicked(payload) => Some(payload.into_inner()),
            _ => None,
        }
    }

    /// The task's error, when a task returned `Err`.
    pub fn into_error(self) -> Option<E> {
        match self {
            GroupError::Failed(err) => Some(err),
            _ => None,
        }
    }
}

/// The payload of a panic in a task of a [`TaskGroup`], with its message when it had one.
///
/// It is `Send` and `Sync` (the payload itself is only `Send`), so a [`GroupError`] fits in
/// `Box<dyn Error + Send + Sync>`.
///
/// # Examples
///
/// ```
/// use magpie_executor::task::{GroupError, TaskGroup};
///
/// let err = magpie_executor::run(async {
///     let mut group = TaskGroup::<(), ()>::new();
///     group.spawn(async { panic!("boom") });
///     group.join().await.unwrap_err()
/// });
/// let GroupError::Panicked(payload) = err else { unreachable!() };
/// assert_eq!(payload.message(), Some("boom"));
/// // `into_inner` gives the payload back, e.g. for `std::panic::resume_unwind`.
/// assert_eq!(*payload.into_inner().downcast::<&str>().unwrap(), "boom");
/// ```
pub struct PanicPayload {
    message: Option<String>,
    // The Mutex makes the payload shareable (`Sync`); it is only ever unlocked by value.
    payload: std::sync::Mutex<Box<dyn Any + Send + 'static>>,
}

impl PanicPayload {
    fn new(payload: Box<dyn Any + Send + 'static>) -> PanicPayload {
        let message = payload
            .downcast_ref::<&'static str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        PanicPayload {
            message,
            payload: std::sync::Mutex::new(payload),
        }
    }

    /// The panic's message, when the payload was a `&str` or a `String` (as `panic!` makes).
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The payload, to inspect it or pass it to [`std::panic::resume_unwind`].
    pub fn into_inner(self) -> Box<dyn Any + Send + 'static> {
        self.payload.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for PanicPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PanicPayload")
            .field(&self.message().unwrap_or(".."))
            .finish()
    }
}

impl<E: fmt::Display> fmt::Display for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::Failed(err) => write!(f, "a task of the group failed: {err}"),
            GroupError::Panicked(payload) => match payload.message() {
                Some(msg) => write!(f, "a task of the group panicked with message {msg:?}"),
                None => f.write_str("a task of the group panicked"),
            },
            GroupError::Cancelled => f.write_str("a task of the group was cancelled"),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::Failed(err) => f.debug_tuple("Failed").field(err).finish(),
            GroupError::Panicked(payload) => f
                .debug_tuple("Panicked")
                .field(&payload.message().unwrap_or(".."))
                .finish(),
            GroupError::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for GroupError<E> {}

/// How a task of the group ended badly (what its wrapper hands to `join`).
enum Failure<E> {
    Error(E),
    Panic(Box<dyn Any + Send + 'static>),
}

/// The group's state shared with the wrappers of its tasks.
struct Shared {
    inner: Mutex<Inner>,
}

struct Inner {
    aborts: Vec<AbortHandle>,
    /// Index of the first task to fail, if any; later spawns are cancelled at once.
    first_failure: Option<usize>,
}

impl Shared {
    /// Records task `index` as failed; the first failure cancels every task of the group.
    fn fail(&self, index: usize) {
        let aborts = {
            let mut inner = lock(&self.inner);
            if inner.first_failure.is_some() {
                return;
            }
            inner.first_failure = Some(index);
            std::mem::take(&mut inner.aborts)
        };
        // Outside the lock: an abort may run the task's destructors on this thread.
        for abort in aborts {
            abort.abort();
        }
    }

    fn cancel_all(&self) {
        let aborts = std::mem::take(&mut lock(&self.inner).aborts);
        for abort in aborts {
            abort.abort();
        }
    }
}

/// A group of tasks that succeed or fail together: asyncio's `TaskGroup`.
///
/// Tasks spawned into the group run in parallel on the runtime's workers. When one returns
/// `Err` or panics, every other task of the group is cancelled at once, and
/// [`join`](Self::join) returns that first failure (after the cancelled tasks are gone). If all
/// succeed, `join` returns their outputs in spawn order. Dropping the group (for example when
/// the task holding it is cancelled) cancels every task still in it: no task outlives its
/// group.
///
/// A group keeps every task spawned into it, finished or not, with its output, until
/// [`join`](Self::join): it is for a batch of work that ends together, not a long-lived
/// nursery for a server's connections (which would grow with every connection ever made).
///
/// # Examples
///
/// ```
/// use magpie_executor::task::{GroupError, TaskGroup};
///
/// magpie_executor::run(async {
///     let mut group = TaskGroup::new();
///     for i in 0..3u32 {
///         group.spawn(async move { Ok::<_, String>(i * 10) });
///     }
///     assert_eq!(group.join().await.unwrap(), vec![0, 10, 20]);
///
///     let mut group = TaskGroup::new();
///     group.spawn(async { Err::<u32, _>("bad input".to_string()) });
///     group.spawn(std::future::pending::<Result<u32, String>>()); // cancelled
///     match group.join().await {
///         Err(GroupError::Failed(e)) => assert_eq!(e, "bad input"),
///         other => panic!("{other:?}"),
///     }
/// });
/// ```
pub struct TaskGroup<T, E> {
    handles: Vec<JoinHandle<Result<T, Failure<E>>>>,
    shared: Arc<Shared>,
}

impl<T, E> Default for TaskGroup<T, E> {
    fn default() -> Self {
        TaskGroup {
            handles: Vec::new(),
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    aborts: Vec::new(),
                    first_failure: None,
                }),
            }),
        }
    }
}

impl<T, E> TaskGroup<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `future` into the group, on the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a runtime, like [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let index = self.handles.len();
        let shared = self.shared.clone();
        let handle = crate::spawn(async move {
            // The future is dropped inside the caught poll (in the inner block, as it
            // completes): a destructor that panics is the task's panic, not the wrapper's.
            // (Not redundant, whatever clippy says: `future` alone would be dropped with the
            // `CatchUnwind`, after the catch.)
            #[allow(clippy::redundant_async_block)]
            let result = match AssertUnwindSafe(async move { future.await })
                .catch_unwind()
                .await
            {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(err)) => Failure::Error(err),
                Err(payload) => Failure::Panic(payload),
            };
            shared.fail(index);
            Err(result)
        });
        let mut inner = lock(&self.shared.inner);
        if inner.first_failure.is_some() {
            handle.abort();
        } else {
            inner.aborts.push(handle.abort_handle());
        }
        drop(inner);
        self.handles.push(handle);
    }

    /// How many tasks were spawned into the group.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// `true` when no task was spawned into the group.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Waits for every task of the group. Returns their outputs in spawn order, or the first
    /// failure; in that case every other task has been cancelled and has finished by the time
    /// this returns.
    ///
    /// # Errors
    ///
    /// [`GroupError::Failed`] with the first task's error, [`GroupError::Panicked`] with the
    /// first panic's payload, or [`GroupError::Cancelled`] when a task was cancelled from
    /// outside the group.
    pub async fn join(mut self) -> Result<Vec<T>, GroupError<E>> {
        let handles = std::mem::take(&mut self.handles);
        let mut outputs: Vec<Option<T>> = handles.iter().map(|_| None).collect();
        let mut failures: Vec<Option<Failure<E>>> = handles.iter().map(|_| None).collect();
        let mut cancelled_from_outside = false;
        let mut done = as_completed(
            handles
                .into_iter()
                .enumerate()
                .map(|(i, handle)| async move { (i, handle.await) }),
        );
        while let Some((index, result)) = done.next().await {
            match result {
                Ok(Ok(value)) => outputs[index] = Some(value),
                Ok(Err(failure)) => failures[index] = Some(failure),
                // The wrapper catches the task's panics; one that escapes it anyway (a
                // sibling's destructor run by the wrapper's abort of it, say) is a failure
                // of that task all the same.
                Err(err) if err.is_panic() => {
                    failures[index] = Some(Failure::Panic(err.into_panic()));
                    self.shared.fail(index);
                }
                Err(_) => {
                    // A sibling we cancelled after a failure is expected; any other
                    // cancellation came from outside the group.
                    if lock(&self.shared.inner).first_failure.is_none() {
                        cancelled_from_outside = true;
                        self.shared.cancel_all();
                    }
                }
            }
        }
        let first_failure = lock(&self.shared.inner).first_failure;
        if let Some(index) = first_failure {
            return Err(match failures[index].take() {
                Some(Failure::Error(err)) => GroupError::Failed(err),
                Some(Failure::Panic(payload)) => GroupError::Panicked(PanicPayload::new(payload)),
                // The failed task was itself cancelled from outside while failing.
                None => GroupError::Cancelled,
            });
        }
        if cancelled_from_outside {
            return Err(GroupError::Cancelled);
        }
        Ok(outputs
            .into_iter()
            .map(|o| o.expect("every task of a successful group has an output"))
            .collect())
    }
}

impl<T, E> Drop for TaskGroup<T, E> {
    fn drop(&mut self) {
        // The group's tasks must not outlive it: abandoned before `join`, or with a `join`
        // dropped before it completed (a timeout around it, a `select` that took the other
        // branch). After a completed `join` every task has finished and this aborts nothing.
        self.shared.cancel_all();
    }
}

impl<T, E> fmt::Debug for TaskGroup<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("tasks", &self.handles.len())
            .finish_non_exhaustive()
    }
}
