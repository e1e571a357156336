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

    /// The header pointer with bit 0 set: a tag of its owner's (a `JoinHandle` that read its
    /// output, a carried queue entry). Bit 0 of a header's address is always clear.
    #[inline]
    pub(crate) fn tagged(self) -> NonNull<Header> {
        debug_assert!(!RawTask::is_tagged(self.0), "tagged twice");
        // `wrapping_byte_add` keeps the pointer's provenance (strict provenance, for Miri).
        let tagged = self.0.as_ptr().wrapping_byte_add(TAG);
        // SAFETY: a header's address plus 1: not null.
        unsafe { NonNull::new_unchecked(tagged) }
    }

    /// The task of a header pointer that may carry the tag ([`RawTask::tagged`]).
    #[inline]
    pub(crate) fn untag(ptr: NonNull<Header>) -> RawTask {
        let ptr = ptr.as_ptr();
        // `wrapping_byte_sub` keeps the pointer's provenance (strict provenance, for Miri).
        let untagged = ptr.wrapping_byte_sub(ptr as usize & TAG);
        // SAFETY: a header's address, or one plus 1: never null once bit 0 is cleared.
        RawTask(unsafe { NonNull::new_unchecked(untagged) })
    }

    /// Whether `ptr` carries the tag ([`RawTask::tagged`]).
    #[inline]
    pub(crate) fn is_tagged(ptr: NonNull<Header>) -> bool {
        ptr.as_ptr() as usize & TAG != 0
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

/// A run-queue entry: owns one reference, and either the task's `NOTIFIED` bit is set for it
/// (a *plain* entry), or it owns the task's `RUNNING` bit (a *carried* entry: a task that woke
/// itself during its poll on a worker, queued again without giving up `RUNNING`; see
/// `state.rs`). The pointer's tag ([`RawTask::tagged`]) tells which.
///
/// Every run of a task that yields makes a carried entry; only the workers keep it
/// ([`Notified::run_on_worker`]: it goes into their queues — local, stolen, overflow batches —
/// and a worker runs it, skipping both transitions of the state word), and the other callers
/// get it plain ([`Notified::run`]). The queues hand it over with release-acquire
/// (crossbeam-deque's push and steal, the overflow batches' injector, or the owner's own
/// thread), which orders the stage as taking and releasing `RUNNING` would. Everything else
/// sees a plain entry: dropping a carried one, or cancelling it, first makes it plain
/// ([`State::release_carried`]).
///
/// [`State::release_carried`]: super::state::State::release_carried
pub(crate) struct Notified(RawTask);

/// The tag bit of a header pointer ([`RawTask::tagged`]). A header is aligned to at least 2
/// bytes (checked below), so bit 0 of its address is free.
const TAG: usize = 1;
const _: () = assert!(std::mem::align_of::<Header>() >= 2);

// SAFETY: a task is `Send` (its future and output are `Send`, enforced at spawn) and all shared
// access to it goes through the atomic state word, so its reference may move between threads.
unsafe impl Send for Notified {}

impl Notified {
    /// # Safety
    /// The caller hands over one reference to the live task, for which `NOTIFIED` is set.
    pub(crate) unsafe fn from_raw(raw: RawTask) -> Notified {
        Notified(raw)
    }

    /// A carried entry: the caller hands over one reference and the task's `RUNNING` bit.
    ///
    /// # Safety
    /// As [`Notified::from_raw`], with `RUNNING` (held by the caller) instead of `NOTIFIED`;
    /// the entry must go into a worker's run queue, where only workers run it, or be made
    /// plain ([`Notified::into_plain`]).
    pub(crate) unsafe fn carrying(raw: RawTask) -> Notified {
        Notified(RawTask(raw.tagged()))
    }

    /// Whether this entry is carried (owns the task's `RUNNING` bit).
    #[inline]
    fn is_carried(&self) -> bool {
        RawTask::is_tagged(self.0 .0)
    }

    /// The task, without the tag.
    #[inline]
    pub(crate) fn raw(&self) -> RawTask {
        RawTask::untag(self.0 .0)
    }

    /// The same entry, plain: a carried one gives up `RUNNING` for `NOTIFIED`
    /// (`State::release_carried`).
    pub(crate) fn into_plain(self) -> Notified {
        if self.is_carried() {
            self.header().state.release_carried();
            let raw = self.raw();
            std::mem::forget(self);
            // SAFETY: our reference, now with `NOTIFIED` set for it.
            return unsafe { Notified::from_raw(raw) };
        }
        self
    }

    /// Gives up the entry as a pointer, tag included, without dropping its reference (nor a
    /// carried entry's `RUNNING`): the caller now holds them, and hands them back with
    /// [`Notified::from_entry_ptr`].
    #[inline]
    pub(crate) fn into_entry_ptr(self) -> NonNull<()> {
        let ptr = self.0.header_ptr().cast();
        std::mem::forget(self);
        ptr
    }

    /// Takes back an entry given up by [`Notified::into_entry_ptr`].
    ///
    /// # Safety
    /// `ptr` came from `into_entry_ptr`, and is taken back once.
    #[inline]
    pub(crate) unsafe fn from_entry_ptr(ptr: NonNull<()>) -> Notified {
        Notified(RawTask::from_header(ptr.cast()))
    }

    /// Runs the task once (poll, or cancel if aborted), giving up this entry's reference.
    ///
    /// Returns the task again when it woke itself during the poll (`yield_now`): the new
    /// entry goes to the back of the caller's run queue, behind the tasks already waiting,
    /// through [`Notified::requeue`]. It is a plain entry (the carried one the harness
    /// returns, made plain): callers other than the workers (the deterministic runtime, the
    /// blocking pool, debug mode's timed runs) do not queue carried ones.
    ///
    /// `first_polls` counts the task when this is the end of its first poll and it was
    /// spawned unlisted (`owned.rs`): a worker's own counter, which only its thread writes
    /// (callers that are no workers run only tasks that are listed or blocking, and pass any).
    #[must_use = "a task returned by `run` must be queued again (`requeue`), or it is lost"]
    pub(crate) fn run(self, first_polls: &Counter) -> Option<Notified> {
        self.run_on_worker(first_polls).map(Notified::into_plain)
    }

    /// [`Notified::run`] on a worker's own loop, which pushes a returned entry into its local
    /// queue itself (no thread-local lookup) — a carried one when the task yielded, so that
    /// neither this run nor the next one touches the state word for it.
    #[inline]
    #[must_use = "a task returned by `run_on_worker` must be queued again, or it is lost"]
    pub(crate) fn run_on_worker(self, first_polls: &Counter) -> Option<Notified> {
        let carried = self.is_carried();
        let ptr = self.raw().header_ptr();
        std::mem::forget(self);
        // SAFETY: the entry owns a reference, handed to `run`.
        let run = unsafe { ptr.as_ref() }.vtable.run;
        // SAFETY: a live task of the vtable's own type; the reference (and with `carried`,
        // `RUNNING`) is given up to `run`.
        unsafe { run(ptr, first_polls, carried) }
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
        unsafe { self.raw().header() }
    }

    /// Cancels a task that will never run (its scheduler is shutting down), then drops the
    /// entry. Returns `true` if this call cancelled it.
    pub(crate) fn cancel(self) -> bool {
        let plain = self.into_plain();
        let shutdown = plain.header().vtable.shutdown;
        // SAFETY: a live task (our reference) of the vtable's own type.
        unsafe { shutdown(plain.raw().header_ptr()) }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        // An entry dropped without running (runtime shut down): the task itself is cancelled
        // through the list of live tasks; here only the reference goes — and a carried
        // entry's `RUNNING`, without which nothing could cancel the task (a yielded task is
        // always listed: its first poll returned `Pending`).
        if self.is_carried() {
            self.header().state.release_carried();
        }
        // SAFETY: we own one reference and never use it again.
        unsafe { drop_reference(self.raw().header_ptr()) }
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
        unsafe { OwnedTask::new_ref(task.raw()) }
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
        TaskRef(task.raw())
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
