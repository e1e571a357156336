//! Tasks: spawned futures, their handles, and the tools to work with them.

mod builder;
pub(crate) mod cell;
pub(crate) mod cell_cache;
mod current;
mod error;
mod group;
pub(crate) mod harness;
mod id;
mod join;
pub(crate) mod origin;
pub(crate) mod raw;
pub(crate) mod state;
mod waker;
mod yield_now;

use std::future::Future;

pub use builder::Builder;
pub use current::{current, CurrentTask};
pub use error::JoinError;
pub use group::{GroupError, PanicPayload, TaskGroup};
pub use id::Id;
pub use join::{AbortHandle, JoinHandle};
pub use yield_now::{yield_now, YieldNow};

pub use crate::blocking::spawn_blocking;
pub use crate::combinator::*;

use crate::runtime::Scheduler;
use cell::Cell;
use raw::{Notified, OwnedTask, RawTask};

/// The references a new task starts with.
pub(crate) struct NewTask<T> {
    /// The first run-queue entry.
    pub(crate) notified: Notified,
    /// The entry in the runtime's list of live tasks, if the task is listed from its spawn.
    pub(crate) owned: Option<OwnedTask>,
    pub(crate) join: JoinHandle<T>,
}

/// Allocates a task for `future`, queued once, with a `JoinHandle`; `listed`: with a
/// reference for the runtime's list of live tasks too (a blocking task is never listed; a task
/// a worker spawns is listed at its first `Pending`, see `owned.rs`).
// Always inlined: it is generic, so whether it is inlined into the spawn is decided in the
// user's crate, and that decision flipped with an unrelated change elsewhere in the bench binary
// (measured: `chained_spawn` 610 → 654 instructions per task as a call, 44 of them saving and
// restoring registers around it; docs/benchmarks.md).
#[inline(always)]
pub(crate) fn new_task<F>(
    future: F,
    scheduler: Scheduler,
    id: Id,
    origin: origin::Origin,
    blocking: bool,
    listed: bool,
) -> NewTask<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    debug_assert!(
        !(blocking && listed),
        "a blocking task is never on the live-task list"
    );
    let refs = if listed { 3 } else { 2 };
    let ptr = Cell::allocate(future, scheduler, id, origin, refs, blocking);
    let raw = RawTask::from_header(ptr);
    // SAFETY: the task was made with `refs` references and NOTIFIED | JOIN_INTEREST set: one
    // each for the queue entry, the JoinHandle (whose output type is `F::Output`) and, when
    // listed, the live-task list.
    unsafe {
        NewTask {
            notified: Notified::from_raw(raw),
            owned: listed.then(|| OwnedTask::from_raw(raw)),
            join: JoinHandle::from_raw(raw),
        }
    }
}

/// For unit tests: a task of `rt` that is never run — queued once (`NOTIFIED` set, so a wake
/// through the state word finds nothing to do), with its handle and the live-task list's
/// reference, for the caller to insert into a list or drop.
#[cfg(all(test, not(loom)))]
pub(crate) fn never_run_task(rt: &crate::Runtime) -> NewTask<()> {
    new_task(
        async {},
        Scheduler::new(&rt.handle().shared),
        Id::next(),
        origin::Origin::new(std::panic::Location::caller(), None, false),
        false,
        true,
    )
}
