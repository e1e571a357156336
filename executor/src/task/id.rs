//! Task identifiers.

use std::num::NonZeroU64;
// A plain counter, not part of any protocol: std's atomic is fine even under loom.
use std::sync::atomic::{AtomicU64, Ordering};

/// A task's identifier, unique among all tasks of the process for its lifetime.
///
/// Shown in `JoinError` messages and in the `Debug` output of `JoinHandle`. Ids are not in
/// spawn order across threads: each thread hands out ids from a block of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(NonZeroU64);

/// How many ids a thread takes from the process-wide counter at once. Every spawn on every
/// worker would otherwise move that one counter, whose cache line then travels between all
/// the cores that spawn; with blocks it moves once per `ID_BLOCK` spawns of a thread. Under
/// loom one id at a time (see `Id::next`).
#[cfg(not(loom))]
const ID_BLOCK: u64 = 1024;

impl Id {
    #[inline]
    pub(crate) fn next() -> Id {
        #[cfg(not(loom))]
        let id = Self::next_from_block();
        // Under loom the counter restarts with every explored execution: a loom model must do
        // the same thing in every execution, and a thread-local block would outlive one.
        // `loom::lazy_static` is per execution; the counter inside stays a plain std atomic,
        // so it adds no interleavings.
        #[cfg(loom)]
        let id = {
            loom::lazy_static! {
                static ref NEXT: AtomicU64 = AtomicU64::new(1);
            }
            // Relaxed: uniqueness needs only the atomicity of the increment.
            NEXT.fetch_add(1, Ordering::Relaxed)
        };
        Id(NonZeroU64::new(id).expect("task id counter wrapped around"))
    }

    /// The next id of this thread's block, taking a new block when it is used up.
    #[cfg(not(loom))]
    #[inline]
    fn next_from_block() -> u64 {
        use std::cell::Cell;

        static NEXT: AtomicU64 = AtomicU64::new(1);
        std::thread_local! {
            /// The rest of this thread's block: the next id, and the end (exclusive).
            static BLOCK: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }
        // Relaxed: uniqueness needs only the atomicity of the increment; blocks never overlap.
        let take_block = || NEXT.fetch_add(ID_BLOCK, Ordering::Relaxed);
        BLOCK
            .try_with(|block| {
                let (next, end) = block.get();
                if next < end {
                    block.set((next + 1, end));
                    next
                } else {
                    let start = take_block();
                    block.set((start + 1, start + ID_BLOCK));
                    start
                }
            })
            // The thread-local is gone only while this thread exits (a task spawned from a
            // thread-local's destructor): an id from a block of its own, the rest unused.
            .unwrap_or_else(|_| take_block())
    }

    /// The identifier as a number.
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Id, ID_BLOCK};
    use std::collections::HashSet;

    /// Ids drawn on several threads at once, more than a block each, never repeat.
    #[test]
    fn ids_from_many_threads_are_unique() {
        // Under Miri just past one block, on two threads: it interprets every call.
        let (threads, per_thread) = if cfg!(miri) {
            (2, ID_BLOCK as usize + 3)
        } else {
            (4, (ID_BLOCK * 3 + 7) as usize)
        };
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::spawn(move || (0..per_thread).map(|_| Id::next()).collect::<Vec<_>>())
            })
            .collect();
        let mut seen = HashSet::new();
        for handle in handles {
            for id in handle.join().unwrap() {
                assert!(seen.insert(id), "{id} handed out twice");
            }
        }
        assert_eq!(seen.len(), per_thread * threads);
    }

    /// One thread's ids increase: a task spawned later on the same thread has a larger id.
    #[test]
    fn one_threads_ids_increase() {
        let ids: Vec<Id> = (0..ID_BLOCK as usize + 2).map(|_| Id::next()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
