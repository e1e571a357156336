//! The per-future-type functions behind a task's `Vtable`: run, cancel, complete, read the
//! output, drop the join handle, free.
//!
//! Every function takes a pointer to the header of a live `Cell<F>` and relies on the state
//! word (see `state.rs`) for exclusive access to the stage.

use std::alloc::Layout;
use std::future::Future;
use std::mem::{self, ManuallyDrop};
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

use super::cell::{Cell, Header, Vtable};
use super::raw::{Notified, RawTask};
use super::state::{DropJoin, Snapshot, ToIdle, ToRunning};
use super::{waker, JoinError};
use crate::runtime::metrics::Counter;

pub(crate) fn vtable<F>(blocking: bool) -> &'static Vtable
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if blocking {
        &VtableOf::<F>::BLOCKING
    } else {
        &VtableOf::<F>::WORKER
    }
}

/// The two vtables of a future type, as constants (a reference to one is promoted to a
/// `'static`).
struct VtableOf<F>(std::marker::PhantomData<F>);

impl<F> VtableOf<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    const WORKER: Vtable = Vtable {
        run: run::<F>,
        shutdown: shutdown::<F>,
        try_read_output: try_read_output::<F>,
        drop_join_handle: drop_join_handle::<F>,
        dealloc: dealloc::<F>,
        blocking: false,
    };
    const BLOCKING: Vtable = Vtable {
        blocking: true,
        ..Self::WORKER
    };
}

/// # Safety
/// `ptr` points to the header of a live `Cell<F>`.
unsafe fn cell<'a, F: Future>(ptr: NonNull<Header>) -> &'a Cell<F> {
    // SAFETY: the caller guarantees a live `Cell<F>`; `Header` is its first field under
    // `#[repr(C)]`, so the pointer to the header is a pointer to the cell.
    unsafe { ptr.cast::<Cell<F>>().as_ref() }
}

/// Runs `f`, swallowing a panic: used for user destructors that run on a worker or in
/// shutdown, where unwinding would kill the thread or abandon the remaining tasks — and where
/// the caller's state must be finished after `f` whatever it did (`finish` has dropped the
/// future and must record its output).
///
/// Nothing unwinds out of it: dropping a panic's payload runs user code too, so a payload whose
/// `Drop` panics is caught in turn, and the next payload dropped — a few times, then leaked
/// (regression: such a payload used to escape `finish` after the future was dropped, and the
/// future was dropped again when the task was freed). Returns whether `f` panicked (for the
/// callers that report it: a user's hook).
pub(crate) fn swallow_panic(f: impl FnOnce()) -> bool {
    /// Payloads of payloads dropped before the next one is leaked instead.
    const PAYLOAD_DROPS: usize = 4;
    let Err(mut payload) = panic::catch_unwind(AssertUnwindSafe(f)) else {
        return false;
    };
    for _ in 0..PAYLOAD_DROPS {
        match panic::catch_unwind(AssertUnwindSafe(|| drop(payload))) {
            Ok(()) => return true,
            Err(next) => payload = next,
        }
    }
    mem::forget(payload);
    true
}

/// Returns the task as a new queue entry when it woke itself during the poll (`yield_now`),
/// for the caller to queue behind the others (`Notified::run_on_worker`): a carried entry,
/// which keeps `RUNNING` (`Notified::run` makes it plain for the callers that are no
/// workers).
///
/// `first_polls`: see `Notified::run`.
///
/// # Safety
/// `ptr` is a live `Cell<F>`; the caller owns one reference (a queue entry's) and gives it up,
/// and with `carried` it owns `RUNNING` too (a carried entry's) and gives it up.
unsafe fn run<F: Future>(
    ptr: NonNull<Header>,
    first_polls: &Counter,
    carried: bool,
) -> Option<Notified> {
    // SAFETY: the caller's reference keeps the cell alive until `drop_reference` below.
    let cell = unsafe { cell::<F>(ptr) };
    let header = &cell.header;
    let to_running = if carried {
        // `RUNNING` is ours already: no read-modify-write unless a wake or an abort came.
        header.state.resume_carried()
    } else {
        header.state.transition_to_running()
    };
    match to_running {
        ToRunning::Complete => {
            // SAFETY: we own the queue entry's reference and are done with the task.
            unsafe { drop_reference(ptr) };
            return None;
        }
        ToRunning::Cancel => {
            if !header.is_listed() {
                // Aborted before its first poll: it ends unlisted, and is no longer counted
                // as such (`Shared::alive_tasks`) before anyone can see it complete.
                first_polls.incr();
            }
            // SAFETY: `RUNNING` is ours; we own a reference.
            unsafe { cancel_and_complete::<F>(ptr) };
            // SAFETY: as above.
            unsafe { drop_reference(ptr) };
            return None;
        }
        ToRunning::Poll => {}
    }

    // SAFETY: the queue entry's reference, which we hold, outlives the borrowed waker.
    let waker = unsafe { waker::borrowed(ptr) };
    let mut cx = Context::from_waker(&waker);
    let current = crate::runtime::context::enter_task(RawTask::from_header(ptr));
    let polled = panic::catch_unwind(AssertUnwindSafe(|| {
        cell.stage.with_mut(|stage| {
            // `RUNNING` is ours: taken with Acquire, or a carried entry's, whose queue handed
            // it over with release-acquire.
            // SAFETY: `RUNNING` gives us exclusive access to the stage, and `COMPLETE` is clear
            // (`transition_to_running` or `resume_carried` said `Poll`), so it holds the future.
            let future: &mut F = unsafe { &mut (*stage).future };
            // SAFETY: the future lives inside the heap cell, which never moves, and is dropped
            // in place (never moved out) when it finishes or is cancelled.
            unsafe { Pin::new_unchecked(future) }.poll(&mut cx)
        })
    }));
    // Mutant: forget a self-wake recorded during the poll (nothing queues the task again).
    let woke_itself = current.exit() && !cfg!(magpie_mutant = "self_wake_not_requeued");

    // The end of the first poll of a task spawned unlisted (`owned.rs`): it goes on the
    // live-task list if it waits, while `RUNNING` keeps anyone else from running or releasing
    // it, and stops being counted as unlisted before anyone can see it complete (after the
    // listing: meanwhile it is counted twice, never not at all).
    if !header.is_listed() {
        let waits = matches!(polled, Ok(Poll::Pending));
        // SAFETY: the task is this scheduler's, `RUNNING` is ours, and we own a reference.
        let refused = waits && !unsafe { header.scheduler.list(RawTask::from_header(ptr)) };
        first_polls.incr();
        if refused {
            // The runtime is shutting down, and nothing would cancel the task later.
            // SAFETY: `RUNNING` is ours; we own a reference.
            unsafe { cancel_and_complete::<F>(ptr) };
            // SAFETY: as above.
            unsafe { drop_reference(ptr) };
            return None;
        }
    }

    match polled {
        Ok(Poll::Pending) if woke_itself => {
            // A yield: the task goes back into the worker's queue keeping `RUNNING`
            // (`state.rs`), with no transition now and none when it runs again. An abort or a
            // wake that came during the poll is found by that next run (`resume_carried`).
            // SAFETY: our reference and `RUNNING` go to the carried entry, which the caller
            // pushes into a worker's run queue, or makes plain (`Notified::run`).
            return Some(unsafe { Notified::carrying(RawTask::from_header(ptr)) });
        }
        Ok(Poll::Pending) => match header.state.transition_to_idle() {
            // SAFETY: we own the queue entry's reference and are done with the task.
            ToIdle::Idle => unsafe { drop_reference(ptr) },
            ToIdle::Notified => {
                // Woken during its poll, from another thread or by value: our reference becomes
                // the new queue entry's, which the caller queues behind the tasks waiting.
                // SAFETY: the reference we own is handed to the new entry.
                return Some(unsafe { Notified::from_raw(RawTask::from_header(ptr)) });
            }
            ToIdle::Cancel => {
                // SAFETY: `RUNNING` is still ours; we own a reference.
                unsafe { cancel_and_complete::<F>(ptr) };
                // SAFETY: as above.
                unsafe { drop_reference(ptr) };
            }
        },
        Ok(Poll::Ready(output)) => {
            // SAFETY: `RUNNING` is ours; we own a reference.
            unsafe { finish::<F>(ptr, Ok(output)) };
            // SAFETY: as above.
            unsafe { drop_reference(ptr) };
        }
        Err(payload) => {
            let error = JoinError::panic(header.id, payload);
            header.scheduler.task_panicked(header, &error);
            // SAFETY: `RUNNING` is ours; we own a reference.
            unsafe { finish::<F>(ptr, Err(error)) };
            // SAFETY: as above.
            unsafe { drop_reference(ptr) };
        }
    }
    None
}

/// Drops the future, stores the cancelled error and completes the task.
///
/// # Safety
/// `ptr` is a live `Cell<F>` whose `RUNNING` bit the caller holds.
unsafe fn cancel_and_complete<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: forwarded from the caller.
    let id = unsafe { cell::<F>(ptr) }.header.id;
    // SAFETY: forwarded from the caller.
    unsafe { finish::<F>(ptr, Err(JoinError::cancelled(id))) };
}

/// Replaces the future with its result and completes the task.
///
/// # Safety
/// `ptr` is a live `Cell<F>` whose `RUNNING` bit the caller holds.
unsafe fn finish<F: Future>(ptr: NonNull<Header>, result: Result<F::Output, JoinError>) {
    // SAFETY: the caller keeps the cell alive.
    let cell = unsafe { cell::<F>(ptr) };
    // The future is dropped in place (it is pinned); a panicking destructor must not unwind
    // through the worker. Its fields are dropped all the same: unwinding out of a destructor
    // still drops the rest.
    cell.stage.with_mut(|stage| {
        swallow_panic(|| {
            // The union then holds nothing until the output is written below, and nothing in
            // between can unwind (`swallow_panic` lets no panic out): no path sees the dropped
            // future as live.
            // SAFETY: `RUNNING` gives us the stage alone; `COMPLETE` is clear, so it holds the
            // future, dropped here once.
            unsafe { ManuallyDrop::drop(&mut (*stage).future) }
        });
        // SAFETY: as above; writing a `ManuallyDrop` union field drops nothing.
        unsafe { (*stage).output = ManuallyDrop::new(result) };
    });

    let header = &cell.header;
    let prev = header.state.transition_to_complete();
    if !prev.has_join_interest() {
        // Nobody will read the output: drop it here. With COMPLETE set and no JoinHandle, no
        // other thread can reach the stage.
        let output = cell.stage.with_mut(|stage| {
            // SAFETY: as just argued, the stage is ours, and it holds the output written
            // above, taken once (JOIN_INTEREST stays clear: nobody takes it again).
            unsafe { ManuallyDrop::take(&mut (*stage).output) }
        });
        if let Err(error) = &output {
            if error.is_panic() {
                header.scheduler.unhandled_panic(header, error);
            }
        }
        swallow_panic(|| drop(output));
        // Done with: leave the runtime's list of live tasks; the list's reference is dropped
        // with the return value (ours keeps the task alive meanwhile).
        drop(header.scheduler.release(header));
        return;
    }
    // The JoinHandle takes the task off the list once it has read the output or gone, so the
    // task dump can show the task as finished and not joined meanwhile.
    if prev.has_join_waker() {
        // SAFETY: JOIN_WAKER was set when we completed, and the handle can take the slot back
        // only before COMPLETE: the slot is ours to read, and nobody writes it any more.
        header.join_waker.with(|slot| {
            if let Some(waker) = unsafe { &*slot } {
                // `swallow_panic` inside, so that the flag is cleared whatever the waker does.
                crate::runtime::context::waking_joiner(|| {
                    swallow_panic(|| waker.wake_by_ref());
                });
            }
        });
    }
}

/// # Safety
/// `ptr` is a live `Cell<F>` and the caller owns a reference to it.
unsafe fn shutdown<F: Future>(ptr: NonNull<Header>) -> bool {
    // SAFETY: the caller's reference keeps the cell alive.
    let header = unsafe { &cell::<F>(ptr).header };
    if !header.state.transition_to_running_for_shutdown() {
        return false;
    }
    // SAFETY: `RUNNING` is ours; the caller owns a reference.
    unsafe { cancel_and_complete::<F>(ptr) };
    true
}

/// # Safety
/// `ptr` is a live `Cell<F>`, the caller is its `JoinHandle`, which has not read the output
/// yet (it records a read itself, when `dst` comes back `Ready`), and `dst` points to a
/// `Poll<Result<F::Output, JoinError>>` that holds `Poll::Pending` (overwritten, not dropped).
unsafe fn try_read_output<F: Future>(ptr: NonNull<Header>, dst: *mut (), waker: &Waker) {
    // SAFETY: the JoinHandle's reference keeps the cell alive.
    let header = unsafe { &cell::<F>(ptr).header };
    // The common case, the task complete, with no call but a tail call: then it saves no
    // registers (`spawn_join_local`: 7-10 instructions fewer per join, callgrind).
    if header.state.load().is_complete() {
        // SAFETY: this fn's contract, and the task is complete.
        unsafe { read_output::<F>(ptr, dst) };
    } else {
        // SAFETY: this fn's contract.
        unsafe { try_read_output_after_all::<F>(ptr, dst, waker) };
    }
}

/// [`try_read_output`] for a task that was not complete at its look: registers `waker`, unless
/// the task completed meanwhile, in which case the output is read now.
///
/// # Safety
/// As [`try_read_output`].
#[inline(never)]
unsafe fn try_read_output_after_all<F: Future>(ptr: NonNull<Header>, dst: *mut (), waker: &Waker) {
    // SAFETY: the JoinHandle's reference keeps the cell alive.
    let header = unsafe { &cell::<F>(ptr).header };
    let snapshot = header.state.load();
    // SAFETY: the caller is the handle (this fn's contract), and `snapshot` is our own load,
    // not complete when the second operand runs.
    if snapshot.is_complete() || unsafe { register_join_waker(header, snapshot, waker) } {
        // SAFETY: this fn's contract, and the task is complete (seen, or said by
        // `register_join_waker`).
        unsafe { read_output::<F>(ptr, dst) };
    }
}

/// Moves the output of a complete task into `dst`.
///
/// # Safety
/// As [`try_read_output`], and the task is complete.
#[inline(always)]
unsafe fn read_output<F: Future>(ptr: NonNull<Header>, dst: *mut ()) {
    // SAFETY: the JoinHandle's reference keeps the cell alive.
    let cell = unsafe { cell::<F>(ptr) };
    // The stage holds the output: `finish` left it there (JOIN_INTEREST was set when it
    // completed), and this handle has not read it (the caller's contract). It is taken once:
    // nothing below can unwind before the caller records the read, and it never calls this
    // again.
    let result = cell.stage.with_mut(|stage| {
        // SAFETY: COMPLETE is set and we are the JoinHandle, so the stage is ours; it holds
        // the output, taken once (both argued just above).
        unsafe { ManuallyDrop::take(&mut (*stage).output) }
    });
    // Written, not assigned: what `dst` holds is `Pending`, with nothing to drop, and an
    // assignment would call the drop glue of the whole `Poll` to find that out. The caller
    // guarantees that `dst` is a valid, aligned `Poll<Result<F::Output, JoinError>>`.
    let dst = dst.cast::<Poll<Result<F::Output, JoinError>>>();
    // SAFETY: by the above, in bounds and aligned; it holds `Pending`, so nothing leaks.
    unsafe { dst.write(Poll::Ready(result)) };
}

/// For a task that was not complete at `snapshot`: registers `waker` to be woken when it is,
/// and returns `false`; or returns `true` if it completed meanwhile.
///
/// # Safety
/// The caller is the task's `JoinHandle`, which has not read the output, and `snapshot` is a
/// load of the task's state word, made by the caller, that was not complete: the join-waker
/// slot is written only under those terms (`state.rs`, `JOIN_WAKER`).
#[inline(never)]
unsafe fn register_join_waker(header: &Header, snapshot: Snapshot, waker: &Waker) -> bool {
    if snapshot.has_join_waker() {
        // The slot is the runtime's, but it only ever reads it: reading it too is fine.
        // SAFETY: nobody writes the slot while JOIN_WAKER is set.
        let same = header.join_waker.with(|slot| {
            unsafe { &*slot }
                .as_ref()
                .is_some_and(|stored| stored.will_wake(waker))
        });
        if same {
            return false;
        }
        if header.state.unset_join_waker().is_err() {
            return true;
        }
    }
    // JOIN_WAKER is clear: the slot is ours to write.
    // SAFETY: the runtime reads the slot only while JOIN_WAKER is set.
    header
        .join_waker
        .with_mut(|slot| unsafe { *slot = Some(waker.clone()) });
    // Completed meanwhile: the runtime never saw the waker, so read the output now.
    header.state.set_join_waker().is_err()
}

/// # Safety
/// `ptr` is a live `Cell<F>`, the caller is its `JoinHandle`, which has not read the output
/// (after a read it only drops its reference), and gives up its reference. Any state is
/// handled here; the handle tries `State::drop_join_handle_fast` first.
unsafe fn drop_join_handle<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: the JoinHandle's reference keeps the cell alive until `drop_reference`.
    let cell = unsafe { cell::<F>(ptr) };
    let mut panicked = None;
    let mut waker = None;
    // Give up the interest, and drop the output if the task completed first, or take back
    // the waker if it did not.
    match cell.header.state.drop_join_interest() {
        DropJoin::Pending => {}
        DropJoin::WakerTaken => {
            let slot = &cell.header.join_waker;
            // SAFETY: JOIN_WAKER was set and is now clear while COMPLETE is not set, so the
            // completion will not read the slot, and nobody else writes it: the slot is ours.
            waker = slot.with_mut(|slot| unsafe { (*slot).take() });
        }
        DropJoin::Complete => {
            // Complete before the handle went away, never read: the output is ours to drop.
            let output = cell.stage.with_mut(|stage| {
                // SAFETY: COMPLETE is set and we are the JoinHandle: the stage is ours. It holds
                // the output: `finish` saw JOIN_INTEREST and left it there, and this handle never
                // read it (this fn's contract). Taken once here: JOIN_INTEREST is clear now.
                unsafe { ManuallyDrop::take(&mut (*stage).output) }
            });
            if let Err(error) = &output {
                if error.is_panic() {
                    // The task panicked, and its handle goes without anyone having looked.
                    cell.header.scheduler.unhandled_panic(&cell.header, error);
                }
            }
            // The task is done with now (see `finish`).
            drop(cell.header.scheduler.release(&cell.header));
            panicked = panic::catch_unwind(AssertUnwindSafe(|| drop(output))).err();
        }
    }
    // SAFETY: the handle's reference, given up here.
    unsafe { drop_reference(ptr) };
    // Dropped after the task is let go of: it may be a reference to anything, the task
    // included (a task that polled its own handle). Its destructor is the user's: its panic
    // unwinds from the handle's drop, unless that drop runs in an unwinding already (a second
    // panic would abort).
    if std::thread::panicking() {
        swallow_panic(|| drop(waker));
    } else {
        drop(waker);
    }
    if let Some(payload) = panicked {
        // The output's destructor panicked on the user's thread: let them see it — unless the
        // handle is being dropped by an unwinding already (a second panic would abort).
        if !std::thread::panicking() {
            panic::resume_unwind(payload);
        }
    }
}

/// # Safety
/// `ptr` is a `Cell<F>` with no references left.
unsafe fn dealloc<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: the cell was written by `Cell::allocate` with this `F`, and nothing else refers
    // to it any more.
    let cell = unsafe { &*ptr.cast::<Cell<F>>().as_ptr() };
    // Every field of the cell by name: the stage is a union of `ManuallyDrop`s, with no drop
    // glue, and the header is dropped below; a new field does not compile here until this
    // says how it goes.
    let Cell { header, stage: _ } = cell;
    // The common case — complete (the stage holds nothing: see `dealloc_slow`), a header that
    // needs none of its drop glue — with no call but the cache's slow paths, so that it saves
    // no registers (chained spawn: 10 instructions fewer per task, callgrind).
    // SAFETY: nothing else refers to the header any more; it is dropped once, by `drop_plain`
    // or, after a `false` that changed nothing, by `dealloc_slow`.
    if header.state.load().is_complete() && unsafe { header.drop_plain() } {
        // SAFETY: the block came from `cell_cache::allocate` with this layout
        // (`Cell::allocate`), its contents are dropped, and nothing refers to it.
        unsafe { super::cell_cache::deallocate(ptr.cast(), Layout::new::<Cell<F>>()) };
    } else {
        // SAFETY: this fn's contract, and the header is still whole (see above).
        unsafe { dealloc_slow::<F>(ptr) };
    }
}

/// [`dealloc`] for the rest: a task never completed, or a header with something to drop.
///
/// # Safety
/// As [`dealloc`]; nothing of the cell has been dropped yet.
#[cold]
#[inline(never)]
unsafe fn dealloc_slow<F: Future>(ptr: NonNull<Header>) {
    let cell_ptr = ptr.cast::<Cell<F>>().as_ptr();
    // SAFETY: the cell was written by `Cell::allocate` with this `F`, and nothing else refers
    // to it any more. Shared is enough: the stage is reached through its `UnsafeCell`.
    let cell = unsafe { &*cell_ptr };
    if !cell.header.state.load().is_complete() {
        // Never completed — rare: a blocking job's queue entry dropped without being cancelled,
        // or a failed hand-off of the shutdown to its thread — so the stage still holds the
        // future (normal shutdown cancels every task through `finish`). Once complete, the
        // output is always gone by now: read or dropped by the handle, or dropped by `finish`
        // when no handle was interested.
        cell.stage.with_mut(|stage| {
            swallow_panic(|| {
                // SAFETY: the last reference is gone, so the stage is ours, and COMPLETE is
                // clear, so it holds the future: dropped in place, once.
                unsafe { ManuallyDrop::drop(&mut (*stage).future) }
            })
        });
    }
    // SAFETY: the cell is initialized (the stage's future was dropped above if it was still
    // there; `Stage` is a union, so dropping the cell drops only the header's fields), and it
    // is dropped once; `cell` is not used after this.
    swallow_panic(|| unsafe { std::ptr::drop_in_place(cell_ptr) });
    // SAFETY: the block came from `cell_cache::allocate` with this layout (`Cell::allocate`),
    // its contents are dropped, and nothing refers to it.
    unsafe { super::cell_cache::deallocate(ptr.cast(), Layout::new::<Cell<F>>()) };
}

/// Drops one reference, freeing the task when it was the last.
///
/// # Safety
/// The caller owns a reference to the live task at `ptr`, and does not use it afterwards.
#[inline]
pub(crate) unsafe fn drop_reference(ptr: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the header alive for this read.
    let header = unsafe { ptr.as_ref() };
    if header.state.ref_dec() {
        let dealloc = header.vtable.dealloc;
        // SAFETY: that was the last reference.
        unsafe { dealloc(ptr) };
    }
}
