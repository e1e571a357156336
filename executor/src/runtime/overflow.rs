//! The overflow batches: tasks a worker moved out of its full local queue, in batches that any
//! worker takes whole.
//!
//! A worker whose local queue passes `LOCAL_QUEUE_CAPACITY` moves the oldest half of it out,
//! for idle workers to find without stealing from it (`Core::overflow_into_batches`). Pushed
//! one by one into the injector (the takes were already batched), every task cost a
//! compare-and-swap on the injector's tail, a line that the remote spawns and the other
//! workers' takes move too: about 90 instructions per task in `spawn_many_local`. Here a batch
//! of up to [`BATCH`] tasks is one push and one take, which took 17–19 % off
//! `spawn_join_local`'s time at 2 workers (docs/benchmarks.md).
//!
//! Separate from the injector, which keeps its single entries (remote spawns and wakes). A
//! worker's look at the global queue (`Core::take_from_global_queue`) takes either its share of
//! those or a whole batch, alternating which it tries first, so that neither waits behind the
//! other.

use super::queue::{Injector, Steal};
use crate::loom::atomic::{AtomicUsize, Ordering};
use crate::task::raw::Notified;

/// The most tasks in one batch: half a local queue moves as two batches. 64, so that a batch's
/// buffer (512 bytes) is a small request for the allocator: glibc answers a request of 1 KiB or
/// more by first consolidating its fastbins, where the freed task cells sit (measured: batches
/// of 128 cost `spawn_join_local` more instructions than they saved, docs/benchmarks.md).
pub(crate) const BATCH: usize = 64;

/// The batches, and how many tasks they hold.
pub(crate) struct OverflowBatches {
    batches: Injector<Vec<Notified>>,
    /// Tasks in `batches`, for the metrics (`RuntimeMetrics::injector_depth`): one
    /// read-modify-write per batch. Relaxed: a count read on its own, ordered with nothing.
    tasks: AtomicUsize,
}

impl OverflowBatches {
    pub(crate) fn new() -> OverflowBatches {
        OverflowBatches {
            batches: Injector::new(),
            tasks: AtomicUsize::new(0),
        }
    }

    /// Queues a batch (never empty). The caller then wakes a worker for it, as for any push.
    pub(crate) fn push(&self, batch: Vec<Notified>) {
        debug_assert!(!batch.is_empty() && batch.len() <= BATCH);
        // Counted before it can be taken, so the count never goes below zero.
        self.tasks.fetch_add(batch.len(), Ordering::Relaxed);
        self.batches.push(batch);
    }

    /// Takes the oldest batch, if any.
    pub(crate) fn take(&self) -> Option<Vec<Notified>> {
        loop {
            match self.batches.steal() {
                Steal::Success(batch) => {
                    self.tasks.fetch_sub(batch.len(), Ordering::Relaxed);
                    return Some(batch);
                }
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }

    /// `true` when no batch is queued (a snapshot).
    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// How many batches are queued (a snapshot).
    pub(crate) fn batches(&self) -> usize {
        self.batches.len()
    }

    /// How many tasks the queued batches hold (a snapshot).
    pub(crate) fn tasks(&self) -> usize {
        self.tasks.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::runtime::Runtime;
    use crate::task::never_run_task;

    /// A queue entry of a task that is never run (its handle and list reference are dropped
    /// at once).
    fn entry(rt: &Runtime) -> Notified {
        never_run_task(rt).notified
    }

    #[test]
    fn batches_come_out_whole_in_order_and_are_counted() {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let overflow = OverflowBatches::new();
        assert!(overflow.is_empty());
        let first: Vec<_> = (0..3).map(|_| entry(&rt)).collect();
        let first_ids: Vec<_> = first.iter().map(|t| t.header().id).collect();
        overflow.push(first);
        overflow.push(vec![entry(&rt)]);
        assert!(!overflow.is_empty());
        assert_eq!((overflow.batches(), overflow.tasks()), (2, 4));

        let taken = overflow.take().expect("a batch");
        assert_eq!(
            taken.iter().map(|t| t.header().id).collect::<Vec<_>>(),
            first_ids
        );
        assert_eq!((overflow.batches(), overflow.tasks()), (1, 1));
        assert_eq!(overflow.take().expect("a batch").len(), 1);
        assert!(overflow.take().is_none());
        assert!(overflow.is_empty());
        assert_eq!(overflow.tasks(), 0);
    }
}
