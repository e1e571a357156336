//! The task cell: the one heap allocation behind every spawned task.
//!
//! ```text
//! Cell<F>  (#[repr(C)], so a pointer to it is a pointer to its Header)
//! +--------------------------------------------+
//! | Header  state word | vtable | scheduler    |  <- every Waker, queue entry and
//! |         join waker slot | id | origin | slot |     JoinHandle points here
//! +--------------------------------------------+
//! | stage   the future, or its output (a union)|
//! +--------------------------------------------+
//! ```
//!
//! The header is the same for every task, so queues and wakers handle tasks without knowing
//! their type; what depends on `F` is reached through the `Vtable`, whose functions (in
//! `harness.rs`) are instantiated per future type.
//!
//! The stage carries no tag of its own: the state word says what it holds (see [`Stage`]), and
//! a tag would cost every task 8 bytes — enough to push the allocation of a typical small task
//! into the next size class of the allocator (the idle-task memory row of the comparison run).

use std::alloc::Layout;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::task::Waker;

use super::harness::swallow_panic;
use super::origin::Origin;
use super::raw::Notified;
use super::state::State;
use super::{Id, JoinError};
use crate::loom::atomic::AtomicUsize;
use crate::loom::UnsafeCell;
use crate::runtime::metrics::Counter;
use crate::runtime::Scheduler;

/// The part of a task that does not depend on its future's type.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    pub(crate) vtable: &'static Vtable,
    /// Where the task goes when it is woken.
    pub(crate) scheduler: Scheduler,
    /// The `JoinHandle`'s waker. Written by the handle only while `JOIN_WAKER` is clear; read
    /// by the runtime only while it is set (see `state.rs`).
    pub(crate) join_waker: UnsafeCell<Option<Waker>>,
    pub(crate) id: Id,
    /// The spawn location, and the name and debug statistics when the task has them: one
    /// word (see `origin.rs`).
    pub(crate) origin: Origin,
    /// The task's place on the runtime's list of live tasks: its shard and its slot there
    /// (`owned.rs`, `Place`); [`NOT_LISTED`] until the task is listed.
    pub(crate) owned_slot: AtomicUsize,
}

/// `Header::owned_slot` of a task that is not on the live-task list (`Place::NONE`).
pub(crate) const NOT_LISTED: usize = usize::MAX;

// The header fits one cache line on 64-bit targets; every task pays for each of its words
// (the idle-task memory row of the comparison run). Loom's atomics are larger, hence the cfg.
#[cfg(all(target_pointer_width = "64", not(loom)))]
const _: () = assert!(std::mem::size_of::<Header>() <= 64);

/// What happens to a task, per future type.
pub(crate) struct Vtable {
    /// Runs the task once; consumes the caller's (queue entry's) reference, and when the
    /// third argument says the entry is carried, its `RUNNING` bit. Returns the task as a new
    /// queue entry when it is runnable again: carried when it woke itself during the poll,
    /// plain when another thread (or a wake by value) woke it (`Notified::run_on_worker`;
    /// `Notified::run` says what the counter is).
    pub(crate) run: unsafe fn(NonNull<Header>, &Counter, bool) -> Option<Notified>,
    /// Cancels the task at runtime shutdown if no thread runs it; returns `true` if it did.
    /// Does not consume a reference.
    pub(crate) shutdown: unsafe fn(NonNull<Header>) -> bool,
    /// `JoinHandle::poll`, until it has read the output: writes
    /// `Poll<Result<F::Output, JoinError>>` to `dst` (which holds `Pending`) when complete,
    /// registers the waker otherwise. The handle then records the read and releases the task.
    pub(crate) try_read_output: unsafe fn(NonNull<Header>, dst: *mut (), waker: &Waker),
    /// `JoinHandle::drop` of a handle that has not read the output, where the handle's own
    /// fast way (`State::drop_join_handle_fast`) declined: gives up join interest (dropping
    /// the output if it is there) and the handle's reference.
    pub(crate) drop_join_handle: unsafe fn(NonNull<Header>),
    /// Frees the allocation. Called once, when the last reference goes.
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// A `spawn_blocking` task: runs on the blocking pool, and is not on the runtime's list
    /// of live tasks.
    pub(crate) blocking: bool,
}

/// What the cell holds after the header.
pub(crate) union Stage<F: Future> {
    /// Live from the spawn until the task completes: while `COMPLETE` is clear.
    pub(crate) future: ManuallyDrop<F>,
    /// Written as the task completes (just before `COMPLETE` is set) and taken once: by the
    /// `JoinHandle` when it reads it (recording the read in itself) or goes away (clearing
    /// `JOIN_INTEREST`), or by the runtime when no `JoinHandle` is interested. So with
    /// `COMPLETE` set, the output is there exactly while `JOIN_INTEREST` is set and the handle
    /// has not read it, and at deallocation it is always gone.
    pub(crate) output: ManuallyDrop<Result<F::Output, JoinError>>,
}
/// The whole allocation.
#[repr(C)]
pub(crate) struct Cell<F: Future> {
    pub(crate) header: Header,
    /// Owned by whoever holds `RUNNING`, or by the `JoinHandle` once `COMPLETE` is set.
    pub(crate) stage: UnsafeCell<Stage<F>>,
}

impl<F: Future> Cell<F> {
    /// Allocates a task holding `future`, with `refs` references and `NOTIFIED` set.
    pub(crate) fn allocate(
        future: F,
        scheduler: Scheduler,
        id: Id,
        origin: Origin,
        refs: usize,
        blocking: bool,
    ) -> NonNull<Header>
    where
        F: Send + 'static,
        F::Output: Send + 'static,
    {
        let cell = Cell {
            header: Header {
                state: State::new(refs),
                vtable: super::harness::vtable::<F>(blocking),
                scheduler,
                join_waker: UnsafeCell::new(None),
                id,
                origin,
                owned_slot: AtomicUsize::new(NOT_LISTED),
            },
            stage: UnsafeCell::new(Stage {
                future: ManuallyDrop::new(future),
            }),
        };
        // From this worker's cache of freed cells when it has one of the size (`cell_cache.rs`).
        let ptr = super::cell_cache::allocate(Layout::new::<Cell<F>>()).cast::<Cell<F>>();
        // SAFETY: a fresh block for a `Cell<F>` (its layout's size and alignment), ours alone.
        unsafe { ptr.as_ptr().write(cell) };
        // `Header` is the first field of a `#[repr(C)]` struct, so the cast keeps pointing at
        // it (and keeps the provenance of the whole block, for `dealloc`).
        ptr.cast::<Header>()
    }
}

// What `Header::drop_plain` leaves undropped besides the fields it looks at.
const _: () = assert!(
    !std::mem::needs_drop::<State>()
        && !std::mem::needs_drop::<&'static Vtable>()
        && !std::mem::needs_drop::<Id>()
        && !std::mem::needs_drop::<AtomicUsize>()
);

impl Header {
    /// Frees the header's fields where the only one that owns something is the task's count
    /// of the runtime: the origin owns nothing (no name, not debug mode) and the join-waker
    /// slot is empty. That count goes back as its drop would (`Scheduler::give_back_count`:
    /// a credit on a worker of the runtime), inline, with none of the drop glue's calls
    /// (`harness::dealloc`). Returns whether it did; otherwise nothing changed, and the caller
    /// drops the header the ordinary way.
    ///
    /// # Safety
    /// Nobody else uses the header any more; the caller drops it once (this, or the drop
    /// glue after a `false`), and does not use it after a `true`.
    #[inline(always)]
    pub(crate) unsafe fn drop_plain(&self) -> bool {
        // Every field by name: a new one does not compile here until this says whether it
        // needs dropping (the others are checked to need none, above).
        let Header {
            state: _,
            vtable: _,
            scheduler,
            join_waker,
            id: _,
            origin,
            owned_slot: _,
        } = self;
        // SAFETY: nobody else uses the header (the contract), so nobody writes the slot.
        let no_waker = join_waker.with(|slot| unsafe { (*slot).is_none() })
            // Mutant: a join waker left in the slot is taken for an empty slot, and leaks.
            || cfg!(magpie_mutant = "plain_free_keeps_join_waker");
        if !(origin.owns_nothing() && no_waker) {
            return false;
        }
        // SAFETY: the caller does not drop the header (the contract), nor with it the
        // scheduler, whose count is given back here, once.
        if let Some(count) = unsafe { scheduler.give_back_count() } {
            // Off the workers: the count may be the runtime's last, whose drop runs the user's
            // code (hooks, wakers): a panic there goes no further, as in the drop glue's path
            // (`harness::dealloc_slow`).
            swallow_panic(|| drop(count));
        }
        true
    }

    /// The task's name, if it was given one.
    pub(crate) fn name(&self) -> Option<&str> {
        self.origin.name()
    }

    /// Where the task was spawned.
    pub(crate) fn location(&self) -> &'static std::panic::Location<'static> {
        self.origin.location()
    }

    /// Whether the task is on the runtime's list of live tasks, or was. `false` for a task
    /// that a worker spawned until its first wait, which lists it (`owned.rs`); for a task
    /// refused at its spawn (shutdown); and for a blocking task.
    ///
    /// Read by whoever runs or releases the task. The slot is written before the task reaches
    /// them: at the spawn, before the task is queued, or by an earlier poll, before it let go
    /// of `RUNNING`, so release-acquire edges order it and Relaxed is enough.
    #[inline]
    pub(crate) fn is_listed(&self) -> bool {
        self.owned_slot.load(crate::loom::atomic::Ordering::Relaxed) != NOT_LISTED
    }
}
