//! What the current thread is: a worker (with its core), inside a runtime (with its handle),
//! polling a task. All thread-locals of the crate are here.

use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use super::handle::Handle;
use super::worker::Core;
use crate::loom::thread_local_const;
use crate::task::cell::Header;
use crate::task::raw::RawTask;

thread_local_const! {
    /// The worker's core, while this thread is a worker. Borrowed only briefly: never across
    /// a poll, so a task can spawn and wake (which borrow it) from inside its poll.
    ///
    /// In a `ManuallyDrop`, so that the thread-local has no destructor: one that does is
    /// reached through a look at whether its destructor is registered, a call into std on
    /// every access (callgrind: 8 instructions, and there is an access per task run, spawn
    /// and yield). The worker's loop takes its core back itself, also when it unwinds
    /// (`worker::run`).
    static CORE: RefCell<Option<ManuallyDrop<Box<Core>>>> = RefCell::new(None);
    /// The runtime `spawn` uses on this thread.
    ///
    /// In a `ManuallyDrop`, as the core, for a thread-local with no destructor (one look
    /// fewer per `spawn`): every handle put here is taken out again by the guard that put it
    /// (`HandleGuard`).
    static HANDLE: RefCell<Option<ManuallyDrop<Handle>>> = RefCell::new(None);
    /// The address of the runtime's shared state whose worker or blocking thread this is.
    static OWNER: Cell<usize> = Cell::new(0);
    /// While this thread runs a worker's loop: which worker, and its credits. A plain copy,
    /// cheaper to read than a borrow of the core, for decisions that need no more
    /// (`Shared::release`, `credits.rs`).
    static WORKER: WorkerThread = WorkerThread::new();
    /// The address of the runtime whose own shutdown sequence this thread runs (see
    /// `Shared::shut_down_for`).
    static SHUTTING_DOWN: Cell<usize> = Cell::new(0);
    /// The task being polled, and whether it has woken itself during this poll
    /// (`note_self_wake`).
    static TASK: Cell<(Option<RawTask>, bool)> = Cell::new((None, false));
    /// Set while a finishing task wakes the task that awaits its `JoinHandle` (see
    /// [`waking_joiner`]).
    static JOIN_WAKE: Cell<bool> = Cell::new(false);
}

/// Runs `wake`, the waking of the task that awaits a finished task's `JoinHandle`: a joiner
/// this worker wakes goes to the back of its queue, not to the LIFO slot
/// (`Shared::schedule_from`).
///
/// Why: the LIFO slot is for a task that a message just made runnable, to run while what it
/// reads is hot. A joiner is different: it usually awaits many handles in turn (gather), and
/// run at once it finds the next one not finished, registers its waker again, and waits —
/// one more poll for every task it joins (measured: 2 polls per spawned task in
/// `spawn_join_local` at 1 worker). Behind the queued tasks, it runs when they are done, and
/// reads their outputs in one poll.
///
/// The flag is restored, not cleared, afterwards: a join waker may run anything, a nested
/// `waking_joiner` included. (`try_with`: never fails for this destructor-less thread-local
/// outside loom; under loom's it could during a thread's teardown, where it is then skipped.)
pub(crate) fn waking_joiner(wake: impl FnOnce()) {
    let outer = JOIN_WAKE
        .try_with(|flag| flag.replace(true))
        .unwrap_or(false);
    wake();
    let _ = JOIN_WAKE.try_with(|flag| flag.set(outer));
}

/// Whether this thread is inside [`waking_joiner`].
#[inline]
pub(crate) fn is_join_wake() -> bool {
    JOIN_WAKE.try_with(Cell::get).unwrap_or(false)
}

/// Installs a worker's core on this thread, until [`take_core`].
///
/// # Panics
/// If the thread has a core already.
pub(crate) fn set_core(core: Box<Core>) {
    CORE.with(|c| {
        let mut slot = c.borrow_mut();
        assert!(slot.is_none(), "a thread got a second worker core");
        *slot = Some(ManuallyDrop::new(core));
    });
}

/// Removes the worker's core from this thread.
pub(crate) fn take_core() -> Option<Box<Core>> {
    CORE.with(|c| c.borrow_mut().take().map(ManuallyDrop::into_inner))
}

/// Runs `f` with this thread's worker core (`None` when not a worker, or when the core is
/// borrowed already, which the scheduler treats like "not a worker": the task goes to the
/// injector, which is always correct).
pub(crate) fn with_core<R>(f: impl FnOnce(Option<&mut Core>) -> R) -> R {
    CORE.with(|c| match c.try_borrow_mut() {
        Ok(mut slot) => f(slot.as_deref_mut().map(|core| &mut **core)),
        Err(_) => f(None),
    })
}

/// Restores the previous handle when dropped.
pub(crate) struct HandleGuard {
    prev: Option<Handle>,
}

/// Makes `handle` the current runtime of this thread until the guard drops.
pub(crate) fn enter_handle(handle: Handle) -> HandleGuard {
    let prev = HANDLE.with(|h| h.borrow_mut().replace(ManuallyDrop::new(handle)));
    HandleGuard {
        prev: prev.map(ManuallyDrop::into_inner),
    }
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        let mut prev = self.prev.take();
        // The error is ignored: the thread-local is gone only while the thread itself exits
        // (then `prev`, not handed over, is dropped below).
        let ours = HANDLE.try_with(|h| {
            std::mem::replace(&mut *h.borrow_mut(), prev.take().map(ManuallyDrop::new))
        });
        // Dropped outside the borrow: either may be the runtime's last handle.
        drop(ours.ok().flatten().map(ManuallyDrop::into_inner));
        drop(prev);
    }
}

/// Runs `f` with the current runtime's handle, if any.
pub(crate) fn with_handle<R>(f: impl FnOnce(Option<&Handle>) -> R) -> R {
    HANDLE.with(|h| f(h.borrow().as_deref()))
}

/// Marks this thread as one of a runtime's own threads (`owner` = its shared state's address).
pub(crate) fn set_owner(owner: usize) {
    OWNER.with(|o| o.set(owner));
}

/// What a worker thread records of itself (`WORKER`): cells of their own, so that each use
/// reads and writes only the word it needs.
pub(crate) struct WorkerThread {
    /// The address of the runtime's shared state (0: not a worker).
    pub(crate) runtime: Cell<usize>,
    pub(crate) index: Cell<usize>,
    /// Strong counts of the runtime's `Arc<Shared>` this thread holds for tasks to come
    /// (`credits.rs`).
    pub(crate) credits: Cell<usize>,
}

impl WorkerThread {
    /// Not a worker.
    const fn new() -> WorkerThread {
        WorkerThread {
            runtime: Cell::new(0),
            index: Cell::new(0),
            credits: Cell::new(0),
        }
    }
}

/// Runs `f` with this thread's worker record; `None` once the thread-local is gone (the
/// thread exits).
#[inline]
pub(crate) fn with_worker_thread<R>(f: impl FnOnce(&WorkerThread) -> R) -> Option<R> {
    WORKER.try_with(f).ok()
}

/// The index of the worker this thread is, if it is one of the runtime at `runtime`.
#[inline]
pub(crate) fn worker_index(runtime: usize) -> Option<usize> {
    with_worker_thread(|worker| (worker.runtime.get() == runtime).then(|| worker.index.get()))
        .flatten()
}

/// Marks this thread as the one running the own shutdown sequence of the runtime at `runtime`.
pub(crate) fn set_shutting_down(runtime: usize) {
    SHUTTING_DOWN.with(|s| s.set(runtime));
}

/// The runtime whose own shutdown sequence this thread runs (0: none).
pub(crate) fn shutting_down() -> usize {
    SHUTTING_DOWN.try_with(Cell::get).unwrap_or(0)
}

/// The address of the runtime whose thread this is (0 for none).
pub(crate) fn owner() -> usize {
    OWNER.try_with(Cell::get).unwrap_or(0)
}

/// Restores the previously polled task when dropped or [exited](TaskGuard::exit) (polls nest
/// under `block_on`).
pub(crate) struct TaskGuard {
    prev: (Option<RawTask>, bool),
}

/// Records `task` as the one being polled, not woken yet, until the guard goes.
#[inline]
pub(crate) fn enter_task(task: RawTask) -> TaskGuard {
    TaskGuard {
        prev: TASK.with(|t| t.replace((Some(task), false))),
    }
}

impl TaskGuard {
    /// The poll is over: restores the previous task (and its own flag, when polls nest), and
    /// returns whether this poll woke its task ([`note_self_wake`]).
    #[inline]
    pub(crate) fn exit(self) -> bool {
        let this = std::mem::ManuallyDrop::new(self);
        TASK.with(|t| t.replace(this.prev)).1
    }
}

impl Drop for TaskGuard {
    #[inline]
    fn drop(&mut self) {
        TASK.with(|t| t.set(self.prev));
    }
}

/// The task being polled on this thread.
pub(crate) fn current_task() -> Option<RawTask> {
    TASK.with(Cell::get).0
}

/// A wake by reference of the task at `header` (`waker::wake_by_ref`): when that is the task
/// being polled on this thread, records the wake for the harness, which queues the task again
/// when the poll ends — the same outcome as the wake's own transition, without its
/// read-modify-write of the task's state (the harness's transition out of `RUNNING` sets
/// `NOTIFIED` in the same step). Returns `false`, recording nothing, for any other task: the
/// caller then wakes it as usual.
#[inline]
pub(crate) fn note_self_wake(header: NonNull<Header>) -> bool {
    TASK.with(|t| match t.get() {
        (Some(task), _) if task.header_ptr() == header => {
            t.set((Some(task), true));
            true
        }
        _ => false,
    })
}
