//! `JoinHandle` and `AbortHandle`: the spawner's side of a task.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::harness::drop_reference;
use super::raw::{Notified, RawTask};
use super::state::ToCancelled;
use super::{Id, JoinError};

/// An owned permission to await a spawned task's output: asyncio's `Task`.
///
/// A `JoinHandle` is a future resolving to `Ok(output)`, or to a [`JoinError`] when the task was
/// cancelled or panicked. Dropping it *detaches* the task: it keeps running, and its output is
/// dropped when it finishes. [`abort`](Self::abort) cancels it.
///
/// # Examples
///
/// ```
/// magpie_executor::run(async {
///     let handle = magpie_executor::spawn(async { 6 * 7 });
///     assert_eq!(handle.await.unwrap(), 42);
/// });
/// ```
pub struct JoinHandle<T> {
    raw: RawTask,
    _output: PhantomData<T>,
}

// SAFETY: the handle only reaches the task through its atomic state word and moves the output
// (`T: Send`) out to whichever thread polls it.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: the `&self` methods (`abort`, `is_finished`, `id`) only do atomic operations; reading
// the output needs `&mut self` (`poll`).
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// # Safety
    /// The caller hands over one reference to a live task whose output type is `T` and which
    /// has `JOIN_INTEREST` set for this handle.
    pub(crate) unsafe fn from_raw(raw: RawTask) -> JoinHandle<T> {
        JoinHandle {
            raw,
            _output: PhantomData,
        }
    }

    fn header(&self) -> &super::cell::Header {
        // SAFETY: the handle's reference keeps the task alive.
        unsafe { self.raw.header() }
    }

    /// Cancels the task: its future is dropped at its next `.await` point (at once if it is not
    /// running), and this handle resolves to a cancelled [`JoinError`]. Does nothing if the task
    /// has finished already (the handle then still yields the output).
    ///
    /// # Examples
    ///
    /// ```
    /// magpie_executor::run(async {
    ///     let handle = magpie_executor::spawn(std::future::pending::<()>());
    ///     handle.abort();
    ///     assert!(handle.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort(&self) {
        abort(self.raw);
    }

    /// `true` once the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.header().state.load().is_complete()
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.header().id
    }

    /// The task's name, if it was given one with [`task::Builder`](crate::task::Builder).
    pub fn name(&self) -> Option<&str> {
        self.header().name()
    }

    /// Where the task was spawned (the caller of `spawn`, through `#[track_caller]`).
    ///
    /// # Examples
    ///
    /// ```
    /// magpie_executor::run(async {
    ///     let handle = magpie_executor::spawn(async {});
    ///     assert_eq!(handle.spawn_location().line(), line!() - 1);
    ///     handle.await.unwrap();
    /// });
    /// ```
    pub fn spawn_location(&self) -> &'static std::panic::Location<'static> {
        self.header().location()
    }

    /// A handle that can cancel the task from elsewhere, without awaiting it.
    pub fn abort_handle(&self) -> AbortHandle {
        self.header().state.ref_inc();
        AbortHandle { raw: self.raw }
    }
}

fn abort(raw: RawTask) {
    // SAFETY: every caller holds a reference.
    let header = unsafe { raw.header() };
    if header.state.transition_to_cancelled() == ToCancelled::Submit {
        // SAFETY: the transition added a reference and set NOTIFIED for the entry.
        let task = unsafe { Notified::from_raw(raw) };
        header.scheduler.schedule(task);
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        let try_read = self.header().vtable.try_read_output;
        // SAFETY: a live task (our reference) whose output type is `T`, and `out` is a valid
        // `Poll<Result<T, JoinError>>` holding `Pending`.
        unsafe {
            try_read(
                self.raw.header_ptr(),
                (&mut out as *mut Poll<Result<T, JoinError>>).cast(),
                cx.waker(),
            )
        };
        out
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let drop_handle = self.header().vtable.drop_join_handle;
        // SAFETY: we are the task's JoinHandle and give up our reference.
        unsafe { drop_handle(self.raw.header_ptr()) }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("spawned_at", &format_args!("{}", self.spawn_location()))
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Cancels a task from anywhere, without owning its output. Made by
/// [`JoinHandle::abort_handle`]; `Clone + Send + Sync`.
///
/// # Examples
///
/// ```
/// magpie_executor::run(async {
///     let handle = magpie_executor::spawn(std::future::pending::<()>());
///     let aborter = handle.abort_handle();
///     std::thread::spawn(move || aborter.abort()).join().unwrap();
///     assert!(handle.await.unwrap_err().is_cancelled());
/// });
/// ```
pub struct AbortHandle {
    raw: RawTask,
}

// SAFETY: only atomic operations on the task's state word are done through it.
unsafe impl Send for AbortHandle {}
// SAFETY: as above.
unsafe impl Sync for AbortHandle {}

impl AbortHandle {
    /// Cancels the task, as [`JoinHandle::abort`].
    pub fn abort(&self) {
        abort(self.raw);
    }

    /// `true` once the task has finished.
    pub fn is_finished(&self) -> bool {
        // SAFETY: our reference keeps the task alive.
        unsafe { self.raw.header() }.state.load().is_complete()
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        // SAFETY: our reference keeps the task alive.
        unsafe { self.raw.header() }.id
    }
}

impl Clone for AbortHandle {
    fn clone(&self) -> AbortHandle {
        // SAFETY: our reference keeps the task alive.
        unsafe { self.raw.header() }.state.ref_inc();
        AbortHandle { raw: self.raw }
    }
}

impl Drop for AbortHandle {
    fn drop(&mut self) {
        // SAFETY: we own one reference and never use it again.
        unsafe { drop_reference(self.raw.header_ptr()) }
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.id())
            .finish()
    }
}
