//! The state all workers of one runtime share: the injector, the stealers, the idle
//! coordination, the live-task list, and where every task goes when it is spawned or woken.

use std::future::Future;

use super::idle::Idle;
use super::owned::OwnedTasks;
use super::park::Unparker;
use super::queue::{Injector, Steal, Stealer};
use super::{context, Scheduler};
use crate::blocking::Pool;
use crate::loom::atomic::{fence, AtomicBool, Ordering};
use crate::loom::{Arc, Condvar, Mutex};
use crate::task::raw::Notified;
use crate::task::{new_task, JoinHandle, NewTask};

/// Tuning knobs fixed at build time.
pub(crate) struct Config {
    /// Every this many ticks a worker looks at the injector before its own queue.
    pub(crate) global_queue_interval: u32,
}

pub(crate) struct Shared {
    pub(crate) injector: Injector<Notified>,
    pub(crate) stealers: Box<[Stealer<Notified>]>,
    pub(crate) unparkers: Box<[Unparker]>,
    pub(crate) idle: Idle,
    pub(crate) owned: OwnedTasks,
    pub(crate) shutdown: AtomicBool,
    pub(crate) config: Config,
    pub(crate) blocking: Arc<Pool>,
    /// How many worker threads are still inside their loop; shutdown waits for zero.
    pub(crate) workers_running: Mutex<usize>,
    pub(crate) workers_done: Condvar,
}

impl Shared {
    /// This runtime's identity, as recorded in `context::owner`.
    pub(crate) fn addr(&self) -> usize {
        self as *const Shared as usize
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Spawns `future` as a task of this runtime.
    pub(crate) fn spawn<F>(
        this: &Arc<Shared>,
        future: F,
        name: Option<String>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let NewTask {
            notified,
            owned,
            join,
        } = new_task(future, Scheduler::new(this.clone()), name, false);
        let owned = owned.expect("runtime tasks are tracked");
        if let Err(owned) = this.owned.insert(owned) {
            // Shutting down: the task is cancelled before it ever runs.
            owned.shutdown();
            drop(notified);
            return join;
        }
        this.schedule(notified, false);
        join
    }

    /// Queues a task made runnable by a spawn or a wake (`is_yield`: by its own poll).
    ///
    /// On one of this runtime's workers the task goes to that worker: a woken or spawned task
    /// into the LIFO slot (it likely uses data that is hot in this core's cache), a task that
    /// yielded to the back of the local queue. Anywhere else it goes to the injector.
    pub(crate) fn schedule(&self, task: Notified, is_yield: bool) {
        let task = context::with_core(|core| match core {
            Some(core) if std::ptr::eq(core.shared(), self) => {
                if is_yield {
                    core.push_local(task);
                } else {
                    core.push_lifo(task);
                }
                None
            }
            _ => Some(task),
        });
        if let Some(task) = task {
            self.push_remote(task);
        }
    }

    fn push_remote(&self, task: Notified) {
        self.injector.push(task);
        // SeqCst fence: pairs with the one in `shutdown::begin`. Either shutdown's final drain
        // sees this task, or we see the flag and drain it ourselves; no reference is stranded
        // in the injector of a runtime that is gone.
        fence(Ordering::SeqCst);
        // (Mutant `push_remote_ignores_shutdown`: leave the entry to a shutdown that is over.)
        if self.is_shutdown() && !cfg!(magpie_mutant = "push_remote_ignores_shutdown") {
            self.drain_injector();
            return;
        }
        self.notify_parked();
    }

    /// Wakes one parked worker if new work needs one (see `idle.rs`).
    pub(crate) fn notify_parked(&self) {
        if let Some(index) = self.idle.worker_to_notify() {
            self.unparkers[index].unpark();
        }
    }

    /// `true` if any queue a parked worker could take from holds a task.
    pub(crate) fn has_visible_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }

    /// Drops every queued injector entry (the tasks themselves are cancelled through the
    /// live-task list).
    pub(crate) fn drain_injector(&self) {
        loop {
            match self.injector.steal() {
                Steal::Success(task) => drop(task),
                Steal::Empty => break,
                Steal::Retry => {}
            }
        }
    }
}
