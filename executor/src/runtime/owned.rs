//! The runtime's list of live tasks, so that shutdown can cancel tasks that sit in no queue
//! (a task waiting on a socket or a timer is referenced only by its wakers).
//!
//! A task that finishes while its `JoinHandle` is alive stays on the list until the handle
//! reads its output or is dropped (the handle takes it off), so the task dump can show it as
//! "finished, not joined"; a detached task leaves the list when it finishes.
//!
//! Sharded by task id so that spawns and completions on different workers rarely meet on one
//! lock; each shard is a slab, so insertion and removal are O(1).

use std::panic::Location;

use crate::loom::atomic::Ordering;
use crate::loom::{lock, Mutex};
use crate::task::cell::Header;
use crate::task::raw::OwnedTask;
use crate::task::Id;

/// A shard's slab is kept while it is this small, so a shard that keeps emptying and filling
/// does not reallocate each time; past it, an empty shard frees its slab.
const KEEP_SLOTS: usize = 1024;

pub(crate) struct OwnedTasks {
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Default)]
struct Shard {
    slots: Vec<Option<OwnedTask>>,
    free: Vec<usize>,
    closed: bool,
    /// Tasks ever inserted in this shard (the `tasks_spawned` metric): counted under the
    /// lock the insertion takes anyway, so it costs no contended write of its own.
    spawned: u64,
}

impl OwnedTasks {
    pub(crate) fn new(num_workers: usize) -> OwnedTasks {
        // Several shards per worker: a spawn and a completion collide on a shard lock only
        // when their ids fall into the same shard at the same moment.
        let shards = (num_workers * 4).next_power_of_two();
        OwnedTasks {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    fn shard(&self, header: &Header) -> &Mutex<Shard> {
        let index = (header.id.as_u64() as usize) & (self.shards.len() - 1);
        &self.shards[index]
    }

    /// Adds a task; hands it back when the runtime is shutting down.
    pub(crate) fn insert(&self, task: OwnedTask) -> Result<(), OwnedTask> {
        let mut shard = lock(self.shard(task.header()));
        if shard.closed {
            return Err(task);
        }
        let index = match shard.free.pop() {
            Some(index) => index,
            None => {
                shard.slots.push(None);
                shard.slots.len() - 1
            }
        };
        shard.spawned += 1;
        // Relaxed: written and read only under this shard's lock.
        task.header().owned_slot.store(index, Ordering::Relaxed);
        shard.slots[index] = Some(task);
        Ok(())
    }

    /// Removes a completed task; `None` when shutdown took it already.
    pub(crate) fn remove(&self, header: &Header) -> Option<OwnedTask> {
        let mut shard = lock(self.shard(header));
        let index = header.owned_slot.load(Ordering::Relaxed);
        let slot = shard.slots.get_mut(index)?;
        if !slot
            .as_ref()
            .is_some_and(|task| std::ptr::eq(task.header(), header))
        {
            return None;
        }
        let task = slot.take();
        shard.free.push(index);
        if shard.free.len() == shard.slots.len() && shard.slots.capacity() > KEEP_SLOTS {
            // The shard emptied after a burst: give its slab back rather than keep 16 bytes
            // per task of the burst for good (indices restart from 0; none is in use).
            shard.slots = Vec::new();
            shard.free = Vec::new();
        }
        task
    }

    /// Refuses further tasks and takes every live one out.
    pub(crate) fn close_and_take_all(&self) -> Vec<OwnedTask> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            shard.closed = true;
            shard.free.clear();
            all.extend(shard.slots.drain(..).flatten());
        }
        all
    }

    /// How many tasks are alive (not finished).
    pub(crate) fn len(&self) -> usize {
        let mut alive = 0;
        self.visit(|header| {
            if !header.state.load().is_complete() {
                alive += 1;
            }
        });
        alive
    }

    /// Tasks inserted since the runtime started.
    pub(crate) fn spawned(&self) -> u64 {
        self.shards.iter().map(|shard| lock(shard).spawned).sum()
    }

    /// Calls `f` with every task on the list, one shard at a time: each shard's lock is held
    /// while its tasks are visited (so they stay alive), never two at once, so spawns and
    /// completions go on in the other shards.
    pub(crate) fn visit(&self, mut f: impl FnMut(&Header)) {
        for shard in self.shards.iter() {
            let shard = lock(shard);
            for task in shard.slots.iter().flatten() {
                f(task.header());
            }
        }
    }

    /// The id, name and spawn location of the task `id`, if it is on the list.
    // The watchdog's, which loom builds leave out.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn describe(
        &self,
        id: u64,
    ) -> Option<(Id, Option<String>, &'static Location<'static>)> {
        let shard = lock(&self.shards[(id as usize) & (self.shards.len() - 1)]);
        let task = shard
            .slots
            .iter()
            .flatten()
            .find(|task| task.header().id.as_u64() == id)?;
        let header = task.header();
        Some((
            header.id,
            header.name().map(str::to_owned),
            header.location(),
        ))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::runtime::Runtime;
    use crate::task;

    /// Tasks spawned by a task, on a worker: the watchdog's lookup by id finds each, and each
    /// leaves the list when its handle reads its end.
    #[test]
    fn tasks_spawned_on_a_worker_are_found_by_id_and_released() {
        const TASKS: usize = 32;
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let handles = rt
            .block_on(rt.spawn(async {
                (0..TASKS)
                    .map(|i| {
                        task::Builder::new()
                            .name(format!("inner-{i}"))
                            .spawn(std::future::pending::<()>())
                            .expect("spawn on a worker")
                    })
                    .collect::<Vec<_>>()
            }))
            .unwrap();
        let owned = &rt.handle.shared.owned;
        for (i, handle) in handles.iter().enumerate() {
            let (id, name, _) = owned
                .describe(handle.id().as_u64())
                .unwrap_or_else(|| panic!("task {i} ({:?}) is not on the list", handle.id()));
            assert_eq!(id, handle.id());
            assert_eq!(name.as_deref(), Some(format!("inner-{i}").as_str()));
        }
        assert_eq!(rt.handle().alive_tasks(), TASKS);
        for handle in handles {
            handle.abort();
            let id = handle.id();
            assert!(rt.block_on(handle).unwrap_err().is_cancelled());
            assert!(
                owned.describe(id.as_u64()).is_none(),
                "{id:?} is still on the list"
            );
        }
        assert_eq!(rt.handle().alive_tasks(), 0);
    }
}
