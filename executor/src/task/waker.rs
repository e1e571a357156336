//! The waker vtable: a task's `Waker` is a pointer to its header, so waking never allocates.
//!
//! Each `Waker` owns one reference to the task; cloning adds one, dropping gives it back.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::cell::Header;
use super::harness::drop_reference;
use super::raw::{Notified, RawTask};
use super::state::ToNotified;

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// A waker for the poll in progress that borrows the poller's reference instead of owning one.
///
/// # Safety
/// The caller owns a reference to the live task at `ptr` for as long as the returned waker
/// (or anything borrowing it) is in use. Clones made from it own their own references.
pub(crate) unsafe fn borrowed(ptr: NonNull<Header>) -> ManuallyDrop<Waker> {
    let raw = RawWaker::new(ptr.as_ptr() as *const (), &VTABLE);
    // SAFETY: the vtable's functions uphold the `RawWaker` contract for a pointer to a live
    // header; `ManuallyDrop` keeps the borrowed reference from being given back.
    ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
}

/// Whether `waker` is `task`'s own (made by this vtable for its header): waking it would
/// notify `task` and nothing else.
///
/// # Safety
/// `task` is alive: the caller holds a reference to it (the poll in progress does).
#[inline]
pub(crate) unsafe fn is_waker_of(waker: &Waker, task: RawTask) -> bool {
    // SAFETY: alive per the caller; the borrowed waker is only compared, never used to wake,
    // cloned or dropped.
    let own = unsafe { borrowed(task.header_ptr()) };
    waker.will_wake(&own)
}

fn header_ptr(data: *const ()) -> NonNull<Header> {
    // SAFETY: `data` is always a header pointer made non-null by `borrowed` or `clone`.
    unsafe { NonNull::new_unchecked(data as *mut Header) }
}

/// # Safety
/// `data` is the header pointer of a waker that holds (or borrows) a reference.
unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned keeps the task alive.
    unsafe { header_ptr(data).as_ref() }.state.ref_inc();
    RawWaker::new(data, &VTABLE)
}

/// # Safety
/// As `clone`; consumes the waker's reference.
unsafe fn wake(data: *const ()) {
    let ptr = header_ptr(data);
    // SAFETY: the waker's reference keeps the task alive.
    let header = unsafe { ptr.as_ref() };
    // By value, the waker's reference becomes the queue entry's: no increment followed by a
    // decrement on the hot path of every `Waker::wake`.
    if header.state.transition_to_notified_by_val() == ToNotified::Submit {
        // SAFETY: NOTIFIED was set for this entry, which takes over the waker's reference.
        let task = unsafe { Notified::from_raw(RawTask::from_header(ptr)) };
        header.scheduler.schedule_last_ref(task);
    } else {
        // SAFETY: the waker's own reference, given up.
        unsafe { drop_waker(data) };
    }
}

/// # Safety
/// As `clone`.
unsafe fn wake_by_ref(data: *const ()) {
    let ptr = header_ptr(data);
    // SAFETY: the waker keeps the task alive.
    let header = unsafe { ptr.as_ref() };
    if header.state.transition_to_notified() == ToNotified::Submit {
        // SAFETY: the transition added a reference and set NOTIFIED for this entry.
        let task = unsafe { Notified::from_raw(RawTask::from_header(ptr)) };
        header.scheduler.schedule(task);
    }
}

/// # Safety
/// As `clone`; consumes the waker's reference.
unsafe fn drop_waker(data: *const ()) {
    // SAFETY: the waker's own reference, given up.
    unsafe { drop_reference(header_ptr(data)) };
}
