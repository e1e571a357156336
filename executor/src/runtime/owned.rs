//! The runtime's list of live tasks, so that shutdown can cancel tasks that sit in no queue
//! (a task waiting on a socket or a timer is referenced only by its wakers).
//!
//! Only a task that waits needs the list: one that is queued is reached through its queue
//! entry, and one that is running is its worker's. So a task that one of the workers spawns
//! goes on the list at the end of its first poll, if that poll returned `Pending` (the harness
//! lists it while it still holds `RUNNING`, so nobody can run or release it meanwhile), and a
//! task that finishes in its first poll — most tasks spawned in bulk — never touches the list:
//! no lock, no slot, no removal (measured: a fifth of the instructions of a spawn, run and
//! join, docs/benchmarks.md). Named tasks, every task in debug mode and the deterministic
//! runtime's tasks go on the list at their spawn, so that the task dump shows them from the
//! start; so do the tasks spawned from other threads, whose listing at their first wait would
//! move that work from the spawning thread to the workers (measured: `timers_100k` a third
//! slower with one worker). What this asks of the others:
//! - shutdown drops no queue entry of an unlisted task without listing it first, so that
//!   step 3 of the sequence cancels and reports it, or, once the list is closed, cancelling
//!   it (`Shared::drop_entry_at_shutdown`: the workers' queues as they leave, the queues of
//!   workers that did not stop, the injector, the overflow batches);
//! - the counts that the list gave alone — alive tasks, tasks spawned — add the unlisted
//!   ones: spawns counted by the worker that spawned, first polls by the worker that ran them,
//!   in the harness before anyone can see the task complete (`Shared::alive_tasks`);
//! - `Header::owned_slot` holds `Place::NONE` until the task is listed, which is how the
//!   harness, the worker loop and the release path tell.
//!
//! A task that finishes while its `JoinHandle` is alive stays on the list until the handle
//! reads its output or is dropped (the handle takes it off), so the task dump can show it as
//! "finished, not joined"; a detached task leaves the list when it finishes.
//!
//! The list is sharded, and each shard is a slab, so insertion and removal are O(1). Each
//! worker has a shard of its own, where the tasks it spawns go: a spawn touches only lines
//! this worker wrote last. Tasks spawned from other threads go to the remaining shards, by
//! task id. A task often finishes on another worker than the one that spawned it (it was
//! stolen); taking it off its spawner's shard one task at a time would bring that shard's
//! lock and slots over to this core and back for every task (measured: the list was 22 % of
//! `spawn_many_local`'s time at 2 workers, nearly all of it cache misses). So a worker
//! collects such removals ([`DeferredReleases`]) and gives them back in batches, one lock
//! per shard per batch, and before it parks. A deferred task stays on the list — and
//! allocated — until its batch goes; shutdown takes it with the rest.
//!
//! A shard's slab grows with the most tasks it ever held at once. An emptied shard frees it;
//! one that still holds a few tasks after a burst (a long-lived task spawned before or during
//! it) is compacted once three quarters of its slots are free: its tasks move to the lowest
//! slots and the slab shrinks, so what a shard keeps is proportional to the tasks alive in it,
//! not to the largest burst it saw. A task's slot is in its header (`Header::owned_slot`),
//! rewritten when it moves, under the shard's lock; whoever takes a task off reads it again
//! under that lock (its shard never changes, only its slot).

use std::panic::Location;
use std::ptr::NonNull;

use crate::loom::atomic::Ordering;
use crate::loom::{lock, Mutex};
use crate::task::cell::{Header, NOT_LISTED};
use crate::task::raw::OwnedTask;
use crate::task::Id;

/// A shard's slab is kept while it is this small, so a shard that keeps emptying and filling
/// does not reallocate each time; past it, an empty shard frees its slab, and a sparse one is
/// compacted. Smaller under Miri, so that its tests reach both with a few tasks.
#[cfg(not(miri))]
const KEEP_SLOTS: usize = 1024;
#[cfg(miri)]
const KEEP_SLOTS: usize = 16;

/// How many removals a worker collects before it gives them back: enough that the lock and
/// the lines of the spawner's shard move once for many tasks, few enough that the finished
/// tasks it holds back (about a hundred bytes each) do not matter. Smaller under loom, so
/// that models reach a full batch.
#[cfg(not(loom))]
const RELEASE_BATCH: usize = 32;
#[cfg(loom)]
const RELEASE_BATCH: usize = 2;

pub(crate) struct OwnedTasks {
    shards: Box<[Mutex<Shard>]>,
    /// `log2(shards.len())`: a [`Place`] keeps the shard in its low bits.
    shard_bits: u32,
    /// Shards `0..workers` are the workers' own; tasks spawned elsewhere go to the rest.
    workers: usize,
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

/// Where a task is on the list: its slot's index, shifted left past its shard's, in one word
/// (`Header::owned_slot`), so that removal needs neither the id nor a search.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Place(usize);

impl Place {
    /// The place of a task that is not on the list: not listed yet (it has not waited),
    /// refused at its spawn (shutdown), or a blocking task.
    pub(crate) const NONE: Place = Place(NOT_LISTED);
}

/// A worker's removals from other shards than its own, given back in batches
/// ([`OwnedTasks::release_deferred`]).
pub(crate) struct DeferredReleases {
    /// Each task's place when it was deferred, and its header. The header is read only under
    /// its shard's lock, and only while the shard is open: then the task is still in its slot
    /// (nobody else takes a deferred task off; shutdown closes the shard when it takes them
    /// all), and the list's reference keeps it alive. Its slot may have changed since (a
    /// compaction), so it is read again there.
    entries: Vec<(Place, NonNull<Header>)>,
}

// The pointers are what makes this type not `Send` by itself. Through them this type reads
// nothing but each header's address and its `owned_slot`, an atomic, and only under the
// conditions above, none of which depends on the thread that holds the batch (a worker's core
// is built on the thread that starts the runtime, and moved to the worker's thread empty).
// SAFETY: what it reads through its pointers is thread-independent (argued just above).
unsafe impl Send for DeferredReleases {}

impl DeferredReleases {
    pub(crate) fn new() -> DeferredReleases {
        DeferredReleases {
            entries: Vec::with_capacity(RELEASE_BATCH),
        }
    }

    /// Records that `header`, at `place`, is done with; `true` when the batch is full and due.
    pub(crate) fn push(&mut self, place: Place, header: &Header) -> bool {
        self.entries.push((place, NonNull::from(header)));
        self.entries.len() >= RELEASE_BATCH
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn address(header: &Header) -> usize {
    header as *const Header as usize
}

impl Shard {
    /// Takes `header`'s task out of slot `index` if it is there (it is not when shutdown took
    /// the shard's tasks first); `shard` is this shard's index and `shard_bits` the list's, to
    /// write the places of the tasks a compaction moves.
    #[inline]
    fn take(
        &mut self,
        index: usize,
        header: &Header,
        shard: usize,
        shard_bits: u32,
    ) -> Option<OwnedTask> {
        let slot = self.slots.get_mut(index)?;
        match slot {
            Some(task) if address(task.header()) == address(header) => {}
            _ => return None,
        }
        let task = slot.take();
        self.free.push(index);
        if self.slots.len() > KEEP_SLOTS {
            if self.free.len() == self.slots.len() {
                // The shard emptied after a burst: give its slab back rather than keep 16
                // bytes per task of the burst for good (indices restart from 0; none is in
                // use, and no deferred removal can name one: its task would still be in its
                // slot).
                self.slots = Vec::new();
                self.free = Vec::new();
            } else if self.free.len() >= self.slots.len() / 4 * 3 {
                self.compact(shard, shard_bits);
            }
        }
        task
    }

    /// Moves every task to the lowest slots, in order, and shrinks the slab to twice what is
    /// left (room for the next tasks without a reallocation at once). O(slots), after at least
    /// three quarters of them were freed since the slab last had no free slot: O(1) per
    /// removal.
    #[cold]
    fn compact(&mut self, shard: usize, shard_bits: u32) {
        let mut live = 0;
        for from in 0..self.slots.len() {
            let Some(task) = self.slots[from].take() else {
                continue;
            };
            if from != live {
                // Relaxed: read under this shard's lock only, by whoever takes the task off
                // (`remove`, `release_deferred`); the lock orders this store before it.
                task.header()
                    .owned_slot
                    .store(live << shard_bits | shard, Ordering::Relaxed);
            }
            self.slots[live] = Some(task);
            live += 1;
        }
        self.slots.truncate(live);
        self.slots.shrink_to(live * 2);
        self.free = Vec::new();
    }
}

impl OwnedTasks {
    pub(crate) fn new(num_workers: usize) -> OwnedTasks {
        // One shard per worker, and at least as many again per worker for spawns from other
        // threads (several, so that those rarely meet on one lock); a power of two, so that
        // a place splits with a shift and a mask. (A runtime without workers gets one.)
        let shards = (num_workers * 4).next_power_of_two();
        OwnedTasks {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            shard_bits: shards.trailing_zeros(),
            workers: num_workers,
        }
    }

    #[inline]
    fn split(&self, place: Place) -> (usize, usize) {
        (
            place.0 & ((1 << self.shard_bits) - 1),
            place.0 >> self.shard_bits,
        )
    }

    /// Adds a task at its spawn, to `worker`'s own shard when a worker of this runtime spawned
    /// it; hands it back when the runtime is shutting down.
    #[inline]
    pub(crate) fn insert(&self, task: OwnedTask, worker: Option<usize>) -> Result<(), OwnedTask> {
        self.put(task, worker, 1)
    }

    /// Adds a task spawned earlier, unlisted (its first wait, or its queue entry's drop during
    /// shutdown), to `worker`'s own shard when a worker of this runtime lists it; hands it
    /// back when the runtime is shutting down. Not counted as a spawn: its spawn was.
    pub(crate) fn insert_later(
        &self,
        task: OwnedTask,
        worker: Option<usize>,
    ) -> Result<(), OwnedTask> {
        self.put(task, worker, 0)
    }

    /// `insert` and `insert_later`: `spawns` is what the shard's spawn count grows by.
    #[inline]
    fn put(&self, task: OwnedTask, worker: Option<usize>, spawns: u64) -> Result<(), OwnedTask> {
        let shard_index = match worker {
            Some(worker) => worker,
            None => {
                let others = self.shards.len() - self.workers;
                self.workers + (task.header().id.as_u64() % others as u64) as usize
            }
        };
        let mut shard = lock(&self.shards[shard_index]);
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
        shard.spawned += spawns;
        // Relaxed: read by `place_of` on the thread that releases the task, which the
        // insertion happens-before: the task reaches that thread only after this (through a
        // run queue, or the `JoinHandle` this spawn returns), by release-acquire edges.
        task.header()
            .owned_slot
            .store(index << self.shard_bits | shard_index, Ordering::Relaxed);
        shard.slots[index] = Some(task);
        Ok(())
    }

    /// Where `header` is on the list ([`Place::NONE`] if it was never put there). The caller
    /// is the one thread that releases the task (see `insert` for the ordering). Its shard
    /// never changes; its slot may (a compaction), and is read again under the shard's lock
    /// before it is used.
    #[inline]
    pub(crate) fn place_of(&self, header: &Header) -> Place {
        Place(header.owned_slot.load(Ordering::Relaxed))
    }

    /// Takes `header`'s task out of `shard` (locked by the caller, who keeps the task alive:
    /// see `remove` and `release_deferred`), reading its slot now.
    #[inline]
    fn take_locked(
        &self,
        shard: &mut Shard,
        shard_index: usize,
        header: &Header,
    ) -> Option<OwnedTask> {
        let (_, index) = self.split(self.place_of(header));
        shard.take(index, header, shard_index, self.shard_bits)
    }

    /// Whether `place` is in worker `worker`'s own shard.
    #[inline]
    pub(crate) fn is_in_shard_of(&self, place: Place, worker: usize) -> bool {
        self.split(place).0 == worker
    }

    /// Removes a finished task, at `place`; `None` when shutdown took it already (or it was
    /// never on the list).
    #[inline]
    pub(crate) fn remove(&self, place: Place, header: &Header) -> Option<OwnedTask> {
        if place == Place::NONE {
            return None;
        }
        let shard = self.split(place).0;
        self.take_locked(&mut lock(&self.shards[shard]), shard, header)
    }

    /// Gives back a worker's deferred removals: one lock per shard they name. Returns the
    /// list's references to the tasks taken off, for the caller to drop where it runs no
    /// code in a borrow (the last reference of a task frees it, and a freed task drops its
    /// join waker, which may be anyone's).
    #[must_use = "the references are dropped by the caller, outside the core's borrow"]
    pub(crate) fn release_deferred(&self, batch: &mut DeferredReleases) -> Vec<OwnedTask> {
        let mut taken = Vec::with_capacity(batch.entries.len());
        // A task never put on the list has nothing to take off (`Shared::release` defers none).
        batch.entries.retain(|&(place, _)| place != Place::NONE);
        while let Some(&(first, _)) = batch.entries.first() {
            let shard_index = self.split(first).0;
            let mut shard = lock(&self.shards[shard_index]);
            batch.entries.retain(|&(place, header)| {
                if self.split(place).0 != shard_index {
                    return true;
                }
                if !shard.closed {
                    // The shard is open, so shutdown has not taken its tasks, and nobody but
                    // this batch takes a deferred task off (`Shared::release` runs once per
                    // task): the task is still in its slot.
                    // SAFETY: by the above, the list's reference keeps it alive while we hold
                    // the shard's lock.
                    let header = unsafe { header.as_ref() };
                    taken.extend(self.take_locked(&mut shard, shard_index, header));
                }
                false
            });
        }
        taken
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
    /// completions go on in the other shards. Finished tasks whose removal a worker has
    /// deferred are visited too (`TaskSnapshot::of` leaves them out).
    pub(crate) fn visit(&self, mut f: impl FnMut(&Header)) {
        for shard in self.shards.iter() {
            let shard = lock(shard);
            for task in shard.slots.iter().flatten() {
                f(task.header());
            }
        }
    }

    /// The id, name and spawn location of the task `id`, if it is on the list. Searches every
    /// shard (a task's shard depends on where it was spawned, not on its id): this is the
    /// watchdog's, once per report.
    // The watchdog's, which loom builds leave out.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn describe(
        &self,
        id: u64,
    ) -> Option<(Id, Option<String>, &'static Location<'static>)> {
        self.shards.iter().find_map(|shard| {
            let shard = lock(shard);
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
        })
    }
}

#[cfg(all(test, not(loom)))]
impl OwnedTasks {
    /// Every task on the list, finished ones whose removal is deferred included.
    fn entries(&self) -> usize {
        let mut entries = 0;
        self.visit(|_| entries += 1);
        entries
    }

    /// The slots shard `shard`'s slab has room for: what it holds in memory.
    fn capacity_of(&self, shard: usize) -> usize {
        lock(&self.shards[shard]).slots.capacity()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{DeferredReleases, OwnedTasks, Place, KEEP_SLOTS, RELEASE_BATCH};
    use crate::runtime::Runtime;
    use crate::task::raw::OwnedTask;
    use crate::task::{self, NewTask};

    /// `count` tasks that are never run, each with its list reference inserted into `list`
    /// (in `worker`'s shard), and the queue entries and handles that keep them alive.
    fn tasks_on(
        list: &OwnedTasks,
        rt: &Runtime,
        worker: Option<usize>,
        count: usize,
    ) -> Vec<NewTask<()>> {
        (0..count)
            .map(|_| {
                let NewTask {
                    notified,
                    owned,
                    join,
                } = task::never_run_task(rt);
                assert!(list.insert(owned.unwrap(), worker).is_ok());
                NewTask {
                    notified,
                    owned: None,
                    join,
                }
            })
            .collect()
    }

    /// Removals deferred into a batch leave the list only when the batch is given back: a
    /// full batch says so, and the list's references are dropped then (each task is down to
    /// its queue entry and handle).
    #[test]
    fn deferred_removals_leave_the_list_when_their_batch_is_given_back() {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let list = OwnedTasks::new(2);
        let tasks = tasks_on(&list, &rt, Some(0), RELEASE_BATCH + 3);
        let mut batch = DeferredReleases::new();
        for (i, task) in tasks.iter().take(RELEASE_BATCH).enumerate() {
            let header = task.notified.header();
            let place = list.place_of(header);
            assert!(list.is_in_shard_of(place, 0) && !list.is_in_shard_of(place, 1));
            assert_eq!(batch.push(place, header), i + 1 == RELEASE_BATCH);
        }
        assert_eq!(
            list.entries(),
            RELEASE_BATCH + 3,
            "nothing leaves before the batch"
        );
        assert_eq!(list.release_deferred(&mut batch).len(), RELEASE_BATCH);
        assert!(batch.is_empty());
        assert_eq!(list.entries(), 3);
        for task in &tasks[..RELEASE_BATCH] {
            assert_eq!(task.notified.header().state.load().ref_count(), 2);
        }
        for task in &tasks[RELEASE_BATCH..] {
            assert_eq!(task.notified.header().state.load().ref_count(), 3);
        }
        // Tasks spawned off the workers go to the other shards, never a worker's.
        let remote = tasks_on(&list, &rt, None, 16);
        for task in &remote {
            let place = list.place_of(task.notified.header());
            assert!(!list.is_in_shard_of(place, 0) && !list.is_in_shard_of(place, 1));
        }
        assert_eq!(list.close_and_take_all().len(), 3 + 16);
    }

    /// A shard that a burst left with a few long-lived tasks shrinks to about what they need
    /// (it used to keep a slot for every task of the burst for as long as one of them lived),
    /// and the tasks that moved still leave: by `remove` with the place read before they
    /// moved, and through a deferred batch recorded before they moved.
    #[test]
    fn a_shard_left_sparse_after_a_burst_shrinks_and_its_tasks_still_leave() {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let list = OwnedTasks::new(2);
        let burst = 8 * KEEP_SLOTS;
        let tasks = tasks_on(&list, &rt, Some(0), burst);
        assert!(list.capacity_of(0) >= burst);
        // The first, one from the middle and the last stay: a slab that could only shrink
        // from its end would keep every slot up to the last.
        let (middle, last) = (burst / 2, burst - 1);
        let header = |i: usize| tasks[i].notified.header();
        let (middle_before, last_before) =
            (list.place_of(header(middle)), list.place_of(header(last)));
        let mut middle_batch = DeferredReleases::new();
        assert!(!middle_batch.push(middle_before, header(middle)));
        // The first half by `remove`, the rest in deferred batches (given back when full), so
        // that compactions happen in both, some in the middle of a batch.
        let mut batch = DeferredReleases::new();
        for i in (0..burst).filter(|i| ![0, middle, last].contains(i)) {
            if i < burst / 2 {
                let removed = list.remove(list.place_of(header(i)), header(i));
                assert!(removed.is_some(), "task {i} was not found");
            } else if batch.push(list.place_of(header(i)), header(i)) {
                assert_eq!(list.release_deferred(&mut batch).len(), RELEASE_BATCH);
            }
        }
        let rest = batch.entries.len();
        assert_eq!(list.release_deferred(&mut batch).len(), rest);
        assert_eq!(list.entries(), 3);
        assert!(
            list.capacity_of(0) <= 2 * KEEP_SLOTS,
            "{} slots kept for 3 tasks after a burst of {burst}",
            list.capacity_of(0)
        );
        assert_ne!(
            list.place_of(header(last)),
            last_before,
            "the last task moved"
        );
        assert!(
            list.is_in_shard_of(list.place_of(header(last)), 0),
            "in its shard still"
        );
        assert!(list.remove(last_before, header(last)).is_some());
        assert_eq!(list.release_deferred(&mut middle_batch).len(), 1);
        // A task inserted after the compactions takes a slot of its own and leaves again.
        let later = tasks_on(&list, &rt, Some(0), 1);
        let later_header = later[0].notified.header();
        assert!(list
            .remove(list.place_of(later_header), later_header)
            .is_some());
        assert!(list.remove(list.place_of(header(0)), header(0)).is_some());
        assert_eq!(list.entries(), 0);
        for task in &tasks {
            assert_eq!(
                task.notified.header().state.load().ref_count(),
                2,
                "one list reference dropped, once"
            );
        }
    }

    /// An entry for a task that was never on the list names no shard: giving its batch back
    /// reads nothing of it, even after the task is gone and with every shard open (Miri
    /// checks that nothing reads the freed task).
    #[test]
    fn a_batch_entry_of_a_task_never_listed_is_skipped_unread() {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let list = OwnedTasks::new(2);
        let stray = tasks_on(&OwnedTasks::new(2), &rt, Some(0), 1);
        let mut batch = DeferredReleases::new();
        assert!(!batch.push(Place::NONE, stray[0].notified.header()));
        drop(stray);
        assert!(list.release_deferred(&mut batch).is_empty());
        assert!(batch.is_empty());
    }

    /// A batch whose tasks shutdown took first takes nothing again when it is given back (no
    /// reference dropped twice, no task read after it was freed: Miri checks both), and one
    /// entry of a task that was never on the list is skipped too.
    #[test]
    fn a_batch_given_back_after_shutdown_took_its_tasks_is_a_no_op() {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let list = OwnedTasks::new(2);
        let tasks = tasks_on(&list, &rt, Some(1), 3);
        let mut batch = DeferredReleases::new();
        for task in &tasks[..2] {
            let header = task.notified.header();
            assert!(!batch.push(list.place_of(header), header));
        }
        let stray = tasks_on(&OwnedTasks::new(2), &rt, Some(0), 1);
        assert!(!batch.push(Place::NONE, stray[0].notified.header()));
        let all = list.close_and_take_all();
        assert_eq!(all.len(), 3);
        // The list's references go, and with the handles and entries, the tasks.
        drop(all);
        drop(tasks);
        assert!(list.release_deferred(&mut batch).is_empty());
        assert!(batch.is_empty());
        assert_eq!(list.entries(), 0);
    }

    /// Tasks one worker spawned and another ran to completion leave the list by the time the
    /// workers park, although fewer finished than fill a batch: a parking worker gives back
    /// what it holds. (Named, so that they are listed at their spawn, in the spawner's shard:
    /// unnamed, they would finish in their first poll and never be listed.)
    #[test]
    fn tasks_finished_on_another_worker_leave_the_list_before_it_parks() {
        const TASKS: usize = 6;
        const { assert!(TASKS < RELEASE_BATCH) };
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let finished = Arc::new(AtomicUsize::new(0));
        let stolen = Arc::new(AtomicUsize::new(0));
        let (finished2, stolen2) = (finished.clone(), stolen.clone());
        rt.block_on(rt.spawn(async move {
            let spawner = std::thread::current().id();
            for _ in 0..TASKS {
                let (finished, stolen) = (finished2.clone(), stolen2.clone());
                let named = task::Builder::new().name("stealable");
                drop(
                    named
                        .spawn(async move {
                            if std::thread::current().id() != spawner {
                                stolen.fetch_add(1, Ordering::SeqCst);
                            }
                            // Each task holds its worker until one of them has run on the other
                            // worker (woken for the queued tasks, it takes some), boundedly.
                            let start = Instant::now();
                            while stolen.load(Ordering::SeqCst) == 0
                                && start.elapsed() < Duration::from_secs(5)
                            {
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            finished.fetch_add(1, Ordering::SeqCst);
                        })
                        .expect("spawn on a worker"),
                );
            }
        }))
        .unwrap();
        let shared = &rt.handle.shared;
        let start = Instant::now();
        while !(finished.load(Ordering::SeqCst) == TASKS && shared.idle.all_parked()) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the runtime never idled"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            stolen.load(Ordering::SeqCst) > 0,
            "no task ran on the other worker"
        );
        assert_eq!(shared.owned.entries(), 0, "finished tasks left on the list");
    }

    /// A task listed after its spawn (`insert_later`) is on the list like any other, and is
    /// not counted as a spawn a second time.
    #[test]
    fn a_task_listed_after_its_spawn_is_not_counted_as_spawned_again() {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let list = OwnedTasks::new(2);
        let spawned = tasks_on(&list, &rt, Some(1), 3);
        assert_eq!(list.spawned(), 3);
        let later = tasks_on(&OwnedTasks::new(2), &rt, None, 2);
        for task in &later {
            let owned = OwnedTask::for_entry(&task.notified);
            assert!(list.insert_later(owned, Some(0)).is_ok());
            let place = list.place_of(task.notified.header());
            assert!(list.is_in_shard_of(place, 0));
        }
        assert_eq!(list.entries(), 5);
        assert_eq!(list.spawned(), 3, "listing is no spawn");
        assert_eq!(list.close_and_take_all().len(), 5);
        let refused = OwnedTask::for_entry(&later[0].notified);
        assert!(list.insert_later(refused, None).is_err(), "closed");
        drop((spawned, later));
    }

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
