//! The runtime's list of live tasks, so that shutdown can cancel tasks that sit in no queue
//! (a task waiting on a socket or a timer is referenced only by its wakers).
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

use std::panic::Location;

use crate::loom::atomic::Ordering;
use crate::loom::{lock, Mutex};
use crate::task::cell::Header;
use crate::task::raw::OwnedTask;
use crate::task::Id;

/// A shard's slab is kept while it is this small, so a shard that keeps emptying and filling
/// does not reallocate each time; past it, an empty shard frees its slab.
const KEEP_SLOTS: usize = 1024;

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
    /// The place of a task that is not on the list (never inserted: spawned during shutdown).
    pub(crate) const NONE: Place = Place(usize::MAX);
}

/// A worker's removals from other shards than its own, given back in batches
/// ([`OwnedTasks::release_deferred`]).
pub(crate) struct DeferredReleases {
    /// Each task's place and address. The address is only compared, never followed: the task
    /// is alive while it is still in its slot (the list's reference), and a batch finds out
    /// whether it is under the shard's lock (shutdown may have taken it meanwhile).
    entries: Vec<(Place, usize)>,
}

impl DeferredReleases {
    pub(crate) fn new() -> DeferredReleases {
        DeferredReleases {
            entries: Vec::with_capacity(RELEASE_BATCH),
        }
    }

    /// Records that `header`, at `place`, is done with; `true` when the batch is full and due.
    pub(crate) fn push(&mut self, place: Place, header: &Header) -> bool {
        self.entries.push((place, address(header)));
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
    /// Takes the task at `index` out if it is the one at `addr` (it is not when shutdown took
    /// the shard's tasks first).
    #[inline]
    fn take(&mut self, index: usize, addr: usize) -> Option<OwnedTask> {
        let slot = self.slots.get_mut(index)?;
        match slot {
            Some(task) if address(task.header()) == addr => {}
            _ => return None,
        }
        let task = slot.take();
        self.free.push(index);
        if self.free.len() == self.slots.len() && self.slots.capacity() > KEEP_SLOTS {
            // The shard emptied after a burst: give its slab back rather than keep 16 bytes
            // per task of the burst for good (indices restart from 0; none is in use, and no
            // deferred removal can name one: its task would still be in its slot).
            self.slots = Vec::new();
            self.free = Vec::new();
        }
        task
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

    fn split(&self, place: Place) -> (usize, usize) {
        (
            place.0 & ((1 << self.shard_bits) - 1),
            place.0 >> self.shard_bits,
        )
    }

    /// Adds a task, to `worker`'s own shard when a worker of this runtime spawned it; hands it
    /// back when the runtime is shutting down.
    pub(crate) fn insert(&self, task: OwnedTask, worker: Option<usize>) -> Result<(), OwnedTask> {
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
        shard.spawned += 1;
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
    /// is the one thread that releases the task (see `insert` for the ordering).
    pub(crate) fn place_of(&self, header: &Header) -> Place {
        Place(header.owned_slot.load(Ordering::Relaxed))
    }

    /// Whether `place` is in worker `worker`'s own shard.
    pub(crate) fn is_in_shard_of(&self, place: Place, worker: usize) -> bool {
        self.split(place).0 == worker
    }

    /// Removes a finished task, at `place`; `None` when shutdown took it already (or it was
    /// never on the list).
    pub(crate) fn remove(&self, place: Place, header: &Header) -> Option<OwnedTask> {
        if place == Place::NONE {
            return None;
        }
        let (shard, index) = self.split(place);
        lock(&self.shards[shard]).take(index, address(header))
    }

    /// Gives back a worker's deferred removals: one lock per shard they name. Returns the
    /// list's references to the tasks taken off, for the caller to drop where it runs no
    /// code in a borrow (the last reference of a task frees it, and a freed task drops its
    /// join waker, which may be anyone's).
    #[must_use = "the references are dropped by the caller, outside the core's borrow"]
    pub(crate) fn release_deferred(&self, batch: &mut DeferredReleases) -> Vec<OwnedTask> {
        let mut taken = Vec::with_capacity(batch.entries.len());
        while let Some(&(first, _)) = batch.entries.first() {
            let shard_index = self.split(first).0;
            let mut shard = lock(&self.shards[shard_index]);
            batch.entries.retain(|&(place, addr)| {
                let (place_shard, index) = self.split(place);
                if place_shard != shard_index {
                    return true;
                }
                taken.extend(shard.take(index, addr));
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
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::panic::Location;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{DeferredReleases, OwnedTasks, Place, RELEASE_BATCH};
    use crate::runtime::{Runtime, Scheduler};
    use crate::task::origin::Origin;
    use crate::task::{self, new_task, Id, NewTask};

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
                } = new_task(
                    async {},
                    Scheduler::new(&rt.handle.shared),
                    Id::next(),
                    Origin::new(Location::caller(), None, false),
                    false,
                );
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
    /// what it holds.
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
                drop(crate::spawn(async move {
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
                }));
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
