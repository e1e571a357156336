//! The runtime's list of live tasks, so that shutdown can cancel tasks that sit in no queue
//! (a task waiting on a socket or a timer is referenced only by its wakers).
//!
//! Sharded by task id so that spawns and completions on different workers rarely meet on one
//! lock; each shard is a slab, so insertion and removal are O(1).

use crate::loom::atomic::Ordering;
use crate::loom::{lock, Mutex};
use crate::task::cell::Header;
use crate::task::raw::OwnedTask;

pub(crate) struct OwnedTasks {
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Default)]
struct Shard {
    slots: Vec<Option<OwnedTask>>,
    free: Vec<usize>,
    closed: bool,
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

    /// How many tasks are alive.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = lock(shard);
                shard.slots.len() - shard.free.len()
            })
            .sum()
    }
}
