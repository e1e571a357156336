//! Each task's header holds a strong count of its runtime's `Arc<Shared>` (its `Scheduler`):
//! one atomic increment per spawn and one decrement per task freed, all on the one cache line
//! of the `Arc`'s counts. With tasks spawned on one worker and freed on another (stolen), that
//! line crossed between cores twice per task (measured: about 6 % of `spawn_many_local` at 2
//! workers, the samples on the `lock dec` of the task's deallocation and the `lock xadd` of
//! the spawn). So a worker keeps *credits*: strong counts of its own runtime's `Arc` that its
//! thread holds for tasks to come.
//!
//! 1. A spawn on a worker takes a credit for the new task's `Scheduler`; with none left, it
//!    takes [`CREDIT_BATCH`] at once (increments in a burst, on a line now in this core).
//! 2. A task of this runtime freed on one of its workers hands its count back to that
//!    worker as a credit instead of decrementing; past [`MAX_CREDITS`], the worker gives
//!    [`CREDIT_BATCH`] back (decrements in a burst).
//! 3. The worker gives every credit back when it leaves its loop, or unwinds out of it
//!    ([`WorkerRegistration`]'s drop). The registration holds an `Arc` of its own for as long
//!    as the thread counts as a worker, so no burst of step 2 takes the count to zero.
//!
//! Everywhere else (threads that are not this runtime's workers) a task's count is the plain
//! `Arc` clone and drop.

use std::mem::ManuallyDrop;

use super::context;
use super::shared::Shared;
use crate::loom::Arc;

/// How many strong counts a worker takes or gives back at once: enough that the line of
/// counts moves once for many tasks. Smaller under loom, so that models take and give back.
#[cfg(not(loom))]
const CREDIT_BATCH: usize = 64;
#[cfg(loom)]
const CREDIT_BATCH: usize = 2;

/// A worker holding more credits than this gives [`CREDIT_BATCH`] back (a worker that frees
/// more tasks than it spawns would otherwise hoard them).
const MAX_CREDITS: usize = 2 * CREDIT_BATCH;

/// A strong count of `shared` for a new task (step 1).
#[inline]
pub(crate) fn take(shared: &Arc<Shared>) -> Arc<Shared> {
    let runtime = shared.addr();
    let took_credit = context::with_worker_thread(|worker| {
        if worker.runtime.get() != runtime {
            return false;
        }
        let mut credits = worker.credits.get();
        if credits == 0 {
            for _ in 0..CREDIT_BATCH {
                // SAFETY: `shared` is a live `Arc`, so its pointer came from `Arc` and the
                // count is at least 1; the new counts are this thread's credits.
                unsafe { Arc::increment_strong_count(Arc::as_ptr(shared)) };
            }
            credits = CREDIT_BATCH;
        }
        worker.credits.set(credits - 1);
        true
    });
    if took_credit == Some(true) {
        // SAFETY: the pointer of a live `Arc`, and this thread gave up one of the strong
        // counts it held as credits (there was at least one) to the `Arc` made here.
        unsafe { Arc::from_raw(Arc::as_ptr(shared)) }
    } else {
        shared.clone()
    }
}

/// What [`give_back`] does with a task's count, decided on this thread's worker record.
enum GiveBack {
    /// Kept as a credit.
    Kept,
    /// Kept as a credit, past [`MAX_CREDITS`]: a batch goes back.
    KeptOverMax,
    /// Not one of the runtime's workers: a plain drop.
    Drop,
}

/// Gives up a task's strong count (step 2): as a credit on one of `shared`'s own workers,
/// else as a plain drop.
///
/// # Safety
/// The caller gives `shared` up: it is a count the caller owns (made by [`take`] or a clone),
/// and the caller neither uses nor drops it afterwards (this is `Scheduler`'s `Drop`).
#[inline]
pub(crate) unsafe fn give_back(shared: &mut ManuallyDrop<Arc<Shared>>) {
    // SAFETY: the caller's contract, passed on.
    drop(unsafe { give_back_or_return(shared) });
}

/// [`give_back`], except that a count to drop (off the runtime's workers) is returned to the
/// caller instead, as an `Arc`: it may be the runtime's last.
///
/// # Safety
/// As [`give_back`]: the caller gives `shared` up, and neither uses nor drops it afterwards.
#[inline]
pub(crate) unsafe fn give_back_or_return(
    shared: &mut ManuallyDrop<Arc<Shared>>,
) -> Option<Arc<Shared>> {
    let runtime = shared.addr();
    let outcome = context::with_worker_thread(|worker| {
        if worker.runtime.get() != runtime {
            return GiveBack::Drop;
        }
        let credits = worker.credits.get() + 1;
        worker.credits.set(credits);
        if credits > MAX_CREDITS {
            GiveBack::KeptOverMax
        } else {
            GiveBack::Kept
        }
    });
    match outcome {
        // The task's count is now one of the credits, and `shared` is not dropped (the
        // caller's `Drop` does not touch it again).
        Some(GiveBack::Kept) => None,
        // SAFETY: `shared` is a live `Arc`, this thread is one of its workers (the record
        // said so), and it holds more than `MAX_CREDITS` = 2 × `CREDIT_BATCH` credits now.
        Some(GiveBack::KeptOverMax) => {
            // SAFETY: as just said.
            unsafe { give_back_batch(Arc::as_ptr(shared)) };
            None
        }
        // SAFETY: the caller gives `shared` up and does not use it again (this fn's contract):
        // the count moves out to be dropped by our caller.
        Some(GiveBack::Drop) | None => Some(unsafe { ManuallyDrop::take(shared) }),
    }
}

/// Step 2 past [`MAX_CREDITS`]: gives [`CREDIT_BATCH`] of this worker's credits back. Out of
/// line, so that the common case inlined into its callers needs no registers for it.
///
/// # Safety
/// `ptr` is the runtime's `Arc<Shared>`, and this thread is one of its workers holding more
/// than [`CREDIT_BATCH`] credits.
#[cold]
#[inline(never)]
unsafe fn give_back_batch(ptr: *const Shared) {
    context::with_worker_thread(|worker| {
        for _ in 0..CREDIT_BATCH {
            // Why no decrement reaches zero: this thread holds more than `CREDIT_BATCH`
            // strong counts as credits, and its `WorkerRegistration` one more.
            // SAFETY: so the count stays above zero and `ptr` stays valid throughout.
            unsafe { Arc::decrement_strong_count(ptr) };
        }
        worker.credits.set(worker.credits.get() - CREDIT_BATCH);
    });
}

/// This thread counts as worker `index` of `shared` (`context::worker_index`) while this
/// lives; when it goes — the loop's end, or an unwind — the thread stops counting as one and
/// gives every credit back (step 3). Holds an `Arc` of its own meanwhile, which keeps the
/// count above the credits.
pub(crate) struct WorkerRegistration {
    shared: Arc<Shared>,
}

impl WorkerRegistration {
    pub(crate) fn new(shared: &Arc<Shared>, index: usize) -> WorkerRegistration {
        context::with_worker_thread(|worker| {
            debug_assert!(
                worker.runtime.get() == 0 && worker.credits.get() == 0,
                "a thread registered as a worker twice"
            );
            worker.runtime.set(shared.addr());
            worker.index.set(index);
            worker.credits.set(0);
        });
        WorkerRegistration {
            shared: shared.clone(),
        }
    }
}

impl Drop for WorkerRegistration {
    fn drop(&mut self) {
        // First: a task freed from here on gives its count back as a plain drop.
        let credits = context::with_worker_thread(|worker| {
            worker.runtime.set(0);
            worker.credits.replace(0)
        })
        .unwrap_or(0);
        // Mutant: a worker that leaves keeps its credits (they leak, and the runtime with them).
        let credits = if cfg!(magpie_mutant = "leaving_worker_keeps_credits") {
            0
        } else {
            credits
        };
        let ptr = Arc::as_ptr(&self.shared);
        for _ in 0..credits {
            // SAFETY: the thread holds `credits` strong counts of `shared`, and `self.shared`
            // one more, so the count stays above zero and the pointer valid.
            unsafe { Arc::decrement_strong_count(ptr) };
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::CREDIT_BATCH;
    use crate::loom::Arc;
    use crate::runtime::Runtime;

    /// A spawn on a worker takes a batch of strong counts (one for its task, the rest as the
    /// worker's credits); when the workers leave, every credit goes back, and so does every
    /// task's count: only the test's own `Arc` is left.
    #[test]
    fn credits_are_taken_in_batches_and_all_go_back_when_the_workers_leave() {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let shared = rt.handle.shared.clone();
        let observed = Arc::clone(&shared);
        let (before, during) = rt
            .block_on(rt.spawn(async move {
                let before = Arc::strong_count(&observed);
                let task = crate::spawn(std::future::pending::<()>());
                let during = Arc::strong_count(&observed);
                task.abort();
                let _ = task.await;
                // Many spawned here, freed here and on the other worker.
                // (Fewer under Miri, which interprets every step.)
                let (rounds, per_round) = if cfg!(miri) { (2, 100) } else { (10, 300) };
                for _ in 0..rounds {
                    let tasks: Vec<_> = (0..per_round)
                        .map(|i| crate::spawn(async move { i }))
                        .collect();
                    for (i, task) in tasks.into_iter().enumerate() {
                        assert_eq!(task.await.unwrap(), i);
                    }
                }
                (before, during)
            }))
            .unwrap();
        // This worker had no credits before its first spawn (the root task came from outside),
        // so that spawn took a batch. (Give or take a count or two: another thread may hold a
        // clone of its own for a moment, the monitor for one.)
        assert!(
            during >= before + CREDIT_BATCH - 2,
            "a spawn took one count, not a batch ({before} -> {during})"
        );
        drop(rt);
        // (A helper thread that is not joined, the debug-mode watchdog, may hold a clone for a
        // moment after the drop: wait for it, boundedly.)
        let start = std::time::Instant::now();
        while Arc::strong_count(&shared) > 1 && start.elapsed() < std::time::Duration::from_secs(5)
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(Arc::strong_count(&shared), 1, "counts left behind");
    }
}
