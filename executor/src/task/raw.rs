//! Typed pointers to a task: a plain borrowed pointer, and the two kinds of owned reference
//! the runtime keeps (a run-queue entry, and the list of live tasks).

use std::ptr::NonNull;

use super::cell::Header;
use super::harness::drop_reference;
use crate::runtime::metrics::Counter;

/// A pointer to a task's header. Does not own a reference by itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct RawTask(NonNull<Header>);

impl RawTask {
    pub(crate) fn from_header(ptr: NonNull<Header>) -> RawTask {
        RawTask(ptr)
    }

    pub(crate) fn header_ptr(self) -> NonNull<Header> {
        self.0
    }

    /// # Safety
    /// The task must be alive for `'a` (the caller holds a reference to it).
    pub(crate) unsafe fn header<'a>(self) -> &'a Header {
        // SAFETY: alive per the caller's contract.
        unsafe { self.0.as_ref() }
    }
}

/// A run-queue entry: owns one reference, and the task's `NOTIFIED` bit is set for it.
pub(crate) struct Notified(RawTask);

// SAFETY: a task is `Send` (its future and output are `Send`, enforced at spawn) and all shared
// access to it goes through the atomic state word, so its reference may move between threads.
unsafe impl Send for Notified {}

impl Notified {
    /// # Safety
    /// The caller hands over one reference to the live task, for which `NOTIFIED` is set.
    pub(crate) unsafe fn from_raw(raw: RawTask) -> Notified {
        Notified(raw)
    }

    /// Gives up the entry without dropping its reference: the caller now holds it (and hands
    /// it back with [`Notified::from_raw`]).
    pub(crate) fn into_raw(self) -> RawTask {
        let raw = self.0;
        std::mem::forget(self);
        raw
    }

    /// Runs the task once (poll, or cancel if aborted), giving up this entry's reference.
    ///
    /// Returns the task again when it woke itself during the poll (`yield_now`): the new
    /// entry goes to the back of the caller's run queue, behind the tasks already waiting. A
    /// worker pushes it there itself, with no thread-local lookup; other callers use
    /// [`Notified::requeue`].
    ///
    /// `first_polls` counts the task when this is the end of its first poll and it was
    /// spawned unlisted (`owned.rs`): a worker's own counter, which only its thread writes
    /// (callers that are no workers run only tasks that are listed or blocking, and pass any).
    #[must_use = "a task returned by `run` must be queued again (`requeue`), or it is lost"]
    pub(crate) fn run(self, first_polls: &Counter) -> Option<Notified> {
        let ptr = self.0.header_ptr();
        std::mem::forget(self);
        // SAFETY: the entry owns a reference, handed to `run`.
        let run = unsafe { ptr.as_ref() }.vtable.run;
        // SAFETY: a live task of the vtable's own type; the reference is given up to `run`.
        unsafe { run(ptr, first_polls) }
    }

    /// Queues a task that [`run`](Self::run) returned behind the others, through its
    /// scheduler (what a caller that is not a worker does with it).
    pub(crate) fn requeue(self) {
        // A reference of our own: once queued, the entry may be run to completion and freed
        // by another thread while the scheduler (borrowed from its header) is still in use.
        // Only callers that are not workers come here (the deterministic runtime's loop, the
        // blocking pool), so the two extra atomic operations are off the hot path.
        let keep_alive = TaskRef::new(&self);
        keep_alive.header().scheduler.reschedule(self);
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: our reference keeps the task alive while we are borrowed.
        unsafe { self.0.header() }
    }

    /// Cancels a task that will never run (its scheduler is shutting down), then drops the
    /// entry. Returns `true` if this call cancelled it.
    pub(crate) fn cancel(self) -> bool {
        let shutdown = self.header().vtable.shutdown;
        // SAFETY: a live task (our reference) of the vtable's own type.
        unsafe { shutdown(self.0.header_ptr()) }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        // An entry dropped without running (runtime shut down): the task itself is cancelled
        // through the list of live tasks; here only the reference goes.
        // SAFETY: we own one reference and never use it again.
        unsafe { drop_reference(self.0.header_ptr()) }
    }
}

/// The live-task list's reference to a task, so shutdown can reach tasks that sit in no queue.
pub(crate) struct OwnedTask(RawTask);

// SAFETY: as for `Notified`.
unsafe impl Send for OwnedTask {}

impl OwnedTask {
    /// # Safety
    /// The caller hands over one reference to the live task.
    pub(crate) unsafe fn from_raw(raw: RawTask) -> OwnedTask {
        OwnedTask(raw)
    }

    /// A new reference for the list to the task of the queue entry `task` (whose own
    /// reference keeps it alive meanwhile).
    pub(crate) fn for_entry(task: &Notified) -> OwnedTask {
        // SAFETY: the entry's reference keeps the task alive.
        unsafe { OwnedTask::new_ref(task.0) }
    }

    /// A new reference for the list to the task at `raw`.
    ///
    /// # Safety
    /// The caller holds a reference to the task, which keeps it alive meanwhile.
    pub(crate) unsafe fn new_ref(raw: RawTask) -> OwnedTask {
        // SAFETY: alive per the caller's contract.
        unsafe { raw.header() }.state.ref_inc();
        OwnedTask(raw)
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: our reference keeps the task alive while we are borrowed.
        unsafe { self.0.header() }
    }

    /// Cancels the task unless it is complete or running; returns `true` if it did.
    pub(crate) fn shutdown(&self) -> bool {
        let ptr = self.0.header_ptr();
        let shutdown = self.header().vtable.shutdown;
        // SAFETY: a live task (our reference) of the vtable's own type.
        unsafe { shutdown(ptr) }
    }
}

impl Drop for OwnedTask {
    fn drop(&mut self) {
        // SAFETY: we own one reference and never use it again.
        unsafe { drop_reference(self.0.header_ptr()) }
    }
}

/// A counted reference to a task that only reads its header (debug reports) or keeps the task
/// — and its scheduler — alive (`Shared::schedule_last_ref`, `Notified::requeue`), on the
/// thread that made it. Its drop may be the task's last reference and free it — dropping the
/// future or the output on this thread, which their `Send` bound (enforced at spawn) allows.
pub(crate) struct TaskRef(RawTask);

impl TaskRef {
    /// Takes a new reference to the task of the queue entry `task` (whose own reference keeps
    /// it alive meanwhile).
    pub(crate) fn new(task: &Notified) -> TaskRef {
        task.header().state.ref_inc();
        TaskRef(task.0)
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: our reference keeps the task alive while we are borrowed.
        unsafe { self.0.header() }
    }
}

impl Drop for TaskRef {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own one reference and never use it again.
        unsafe { drop_reference(self.0.header_ptr()) }
    }
}
