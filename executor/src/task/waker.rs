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
    // A task waking itself during its own poll (`yield_now`, a combinator handing down the
    // task's waker) is recorded on the thread instead: the harness's transition out of
    // RUNNING sets NOTIFIED in its one CAS, which is what this wake's CAS would have done.
    if crate::runtime::context::note_self_wake(ptr) {
        return;
    }
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

#[cfg(all(test, not(loom)))]
mod tests {
    use std::ptr::NonNull;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use super::borrowed;
    use crate::runtime::context::{current_task, enter_task};
    use crate::runtime::Runtime;
    use crate::task::raw::RawTask;
    use crate::task::{never_run_task, NewTask};

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    /// A wake by reference is recorded for the harness only when it wakes the task being
    /// polled on this thread, and each poll of a nested pair gets back its own record: the
    /// inner poll neither sees nor clears the outer one's.
    #[test]
    fn a_self_wake_is_recorded_for_the_polled_task_only_and_polls_nest() {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let (outer, inner) = (never_run_task(&rt), never_run_task(&rt));
        let raw = |task: &NewTask<()>| RawTask::from_header(NonNull::from(task.notified.header()));
        let (outer_raw, inner_raw) = (raw(&outer), raw(&inner));
        // SAFETY: both tasks are alive (their queue entries and handles are held above).
        let (outer_waker, inner_waker) = unsafe {
            (
                borrowed(outer_raw.header_ptr()),
                borrowed(inner_raw.header_ptr()),
            )
        };
        let foreign = Waker::from(Arc::new(Noop));
        // No task is being polled: a plain wake (the task is queued already: nothing to do).
        outer_waker.wake_by_ref();
        assert!(current_task().is_none());

        let outer_poll = enter_task(outer_raw);
        foreign.wake_by_ref();
        inner_waker.wake_by_ref();
        assert!(
            !outer_poll.exit(),
            "not the polled task's waker, nor another task's"
        );

        let outer_poll = enter_task(outer_raw);
        outer_waker.wake_by_ref();
        let inner_poll = enter_task(inner_raw);
        assert_eq!(
            current_task().map(RawTask::header_ptr),
            Some(inner_raw.header_ptr())
        );
        assert!(!inner_poll.exit(), "the inner poll did not wake its task");
        assert_eq!(
            current_task().map(RawTask::header_ptr),
            Some(outer_raw.header_ptr())
        );
        assert!(
            outer_poll.exit(),
            "the outer poll's self-wake survives the inner poll"
        );
        assert!(current_task().is_none());

        // A guard dropped (not exited) restores the previous task too.
        let outer_poll = enter_task(outer_raw);
        drop(enter_task(inner_raw));
        assert_eq!(
            current_task().map(RawTask::header_ptr),
            Some(outer_raw.header_ptr())
        );
        assert!(!outer_poll.exit());
    }
}
