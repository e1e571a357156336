//! `task::current()`: which task is running on this thread (asyncio's `current_task`).

use std::fmt;

use super::harness::drop_reference;
use super::raw::RawTask;
use super::Id;

/// The task running on the calling thread, as returned by [`current`].
///
/// Holds a reference to the task, so it stays valid after the task finishes.
pub struct CurrentTask {
    raw: RawTask,
}

// SAFETY: only the immutable id and name are read through it, and the reference count is
// atomic.
unsafe impl Send for CurrentTask {}
// SAFETY: as above.
unsafe impl Sync for CurrentTask {}

impl CurrentTask {
    /// The task's id.
    pub fn id(&self) -> Id {
        // SAFETY: our reference keeps the task alive.
        unsafe { self.raw.header() }.id
    }

    /// The task's name, if it was spawned with one through [`Builder`](super::Builder).
    pub fn name(&self) -> Option<&str> {
        // SAFETY: our reference keeps the task alive.
        unsafe { self.raw.header() }.name()
    }

    /// Where the task was spawned.
    pub fn spawn_location(&self) -> &'static std::panic::Location<'static> {
        // SAFETY: our reference keeps the task alive.
        unsafe { self.raw.header() }.location()
    }
}

impl Drop for CurrentTask {
    fn drop(&mut self) {
        // SAFETY: we own one reference and never use it again.
        unsafe { drop_reference(self.raw.header_ptr()) }
    }
}

impl fmt::Debug for CurrentTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentTask")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish()
    }
}

/// The task being polled on this thread, or `None` outside of a spawned task (for example in
/// the future given to `block_on` on a thread of your own). asyncio's `current_task()`.
///
/// A [`spawn_blocking`](crate::spawn_blocking) job is a task too: inside its closure, and in a
/// `block_on` there, this is that job (its id is its `JoinHandle`'s).
///
/// # Examples
///
/// ```
/// use magpie_executor::task;
///
/// magpie_executor::run(async {
///     let handle = task::Builder::new()
///         .name("fetch")
///         .spawn(async { task::current().unwrap().name().map(str::to_owned) })
///         .unwrap();
///     assert_eq!(handle.await.unwrap().as_deref(), Some("fetch"));
/// });
/// ```
pub fn current() -> Option<CurrentTask> {
    let raw = crate::runtime::context::current_task()?;
    // SAFETY: the task is being polled on this thread, so the poller's reference keeps it
    // alive while we add ours.
    unsafe { raw.header() }.state.ref_inc();
    Some(CurrentTask { raw })
}
