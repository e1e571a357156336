//! `JoinHandle` and `AbortHandle`: the spawner's side of a task.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use super::cell::Header;
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
/// # Panics
///
/// Polling it again after it returned `Ready` panics (the output was handed over). Dropping
/// it re-raises a panic of the task output's destructor when the handle is the one to drop
/// that output (a finished task whose output was never read), unless the thread is unwinding
/// already.
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
    /// The task's header, tagged ([`RawTask::tagged`]) once this handle has read the output: the
    /// handle records that itself rather than in the task's state word, which saves the join a
    /// read-modify-write (see `poll`). Only [`JoinHandle::raw`] and `has_read` read it.
    tagged: NonNull<Header>,
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
            tagged: raw.header_ptr(),
            _output: PhantomData,
        }
    }

    /// The task, without the tag.
    #[inline]
    fn raw(&self) -> RawTask {
        RawTask::untag(self.tagged)
    }

    /// Whether this handle has read the output (`poll` returned `Ready`).
    #[inline]
    fn has_read(&self) -> bool {
        RawTask::is_tagged(self.tagged)
    }

    fn header(&self) -> &Header {
        // SAFETY: the handle's reference keeps the task alive.
        unsafe { self.raw().header() }
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
        abort(self.raw());
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
        AbortHandle { raw: self.raw() }
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

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.has_read() {
            panic!("`JoinHandle` polled again after it returned `Ready`");
        }
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        let try_read = self.header().vtable.try_read_output;
        // SAFETY: a live task (our reference) whose output type is `T`, not read yet, and
        // `out` is a valid `Poll<Result<T, JoinError>>` holding `Pending`.
        unsafe {
            try_read(
                self.raw().header_ptr(),
                (&mut out as *mut Poll<Result<T, JoinError>>).cast(),
                cx.waker(),
            )
        };
        if out.is_ready() {
            // Mutant for the loom models: the read is not recorded, so the handle's drop takes
            // the output out of the stage a second time.
            if !cfg!(magpie_mutant = "join_read_not_recorded") {
                // The output is ours now; the stage no longer holds it (`try_read_output`).
                // Not tagged yet (checked above): `tagged` is the header's own address.
                self.tagged = self.raw().tagged();
            }
            // Only now, with the read recorded (so that an unwind from here cannot make the
            // drop take the output a second time), is the task done with.
            let header = self.header();
            // Nothing else looks at JOIN_INTEREST after COMPLETE but the task dump, which
            // shows only listed tasks: so only a listed task's word is told, for the time its
            // release may be deferred (`owned.rs`), when the dump must not show it as finished
            // and not joined. A task spawned and joined on the workers is spared the
            // read-modify-write.
            // (A task not on the list has nothing to take off it either: one look for both.)
            if header.is_listed() {
                header.state.output_taken();
                drop(header.scheduler.release(header));
            }
        }
        out
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let ptr = self.raw().header_ptr();
        if self.has_read() {
            // The output was read and the task released (`poll`): only our reference is left
            // to give up.
            // SAFETY: we own it and never use it again.
            unsafe { drop_reference(ptr) };
            return;
        }
        // The common case — a detached spawn, its task not complete — here, with no call
        // through the vtable (chained spawn: 15 instructions fewer per task, callgrind).
        let state = &self.header().state;
        if state.drop_join_handle_fast(state.load()) {
            return;
        }
        let drop_handle = self.header().vtable.drop_join_handle;
        // SAFETY: we are the task's JoinHandle, have not read the output, and give up our
        // reference.
        unsafe { drop_handle(ptr) }
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
