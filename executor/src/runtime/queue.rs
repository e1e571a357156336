//! The run queues: each worker's local deque, the stealers onto it, and the global injector.
//!
//! Normally these are crossbeam-deque's. crossbeam-deque is not loom-instrumented, so under
//! `cfg(loom)` this file swaps in a small lock-based model with the same interface (only the
//! parts the scheduler uses), which loom can explore. Keep the two in step.
//!
//! Miri uses the model too: crossbeam-epoch (under crossbeam-deque) casts integers to
//! pointers, which `-Zmiri-strict-provenance` rejects, and the point of running Miri is to
//! check *our* unsafe code under the strictest rules.

#[cfg(not(any(loom, miri)))]
pub(crate) use crossbeam_deque::{Injector, Steal, Stealer, Worker};

#[cfg(any(loom, miri))]
pub(crate) use model::{Injector, Steal, Stealer, Worker};

#[cfg(any(loom, miri))]
mod model {
    use std::collections::VecDeque;

    use crate::loom::{lock, Arc, Mutex};

    /// The result of a steal attempt (the model never asks to retry).
    pub(crate) enum Steal<T> {
        Empty,
        Success(T),
        #[allow(dead_code)]
        Retry,
    }

    /// A worker's FIFO queue.
    pub(crate) struct Worker<T>(Arc<Mutex<VecDeque<T>>>);

    /// Steals from the front of a worker's queue.
    pub(crate) struct Stealer<T>(Arc<Mutex<VecDeque<T>>>);

    /// The global queue.
    pub(crate) struct Injector<T>(Mutex<VecDeque<T>>);

    impl<T> Worker<T> {
        pub(crate) fn new_fifo() -> Self {
            Worker(Arc::new(Mutex::new(VecDeque::new())))
        }
        pub(crate) fn push(&self, task: T) {
            lock(&self.0).push_back(task);
        }
        pub(crate) fn pop(&self) -> Option<T> {
            lock(&self.0).pop_front()
        }
        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.0).is_empty()
        }
        pub(crate) fn len(&self) -> usize {
            lock(&self.0).len()
        }
        pub(crate) fn stealer(&self) -> Stealer<T> {
            Stealer(self.0.clone())
        }
    }

    /// Moves about half of `from` (at least one, at most `limit`) into `dest` and pops one.
    fn steal_half<T>(from: &mut VecDeque<T>, dest: &Worker<T>, limit: usize) -> Steal<T> {
        let Some(first) = from.pop_front() else {
            return Steal::Empty;
        };
        let more = (from.len() / 2).min(limit - 1);
        let mut dest = lock(&dest.0);
        for _ in 0..more {
            dest.extend(from.pop_front());
        }
        Steal::Success(first)
    }

    impl<T> Stealer<T> {
        pub(crate) fn steal_batch_and_pop(&self, dest: &Worker<T>) -> Steal<T> {
            steal_half(&mut lock(&self.0), dest, usize::MAX)
        }
        pub(crate) fn steal(&self) -> Steal<T> {
            match lock(&self.0).pop_front() {
                Some(task) => Steal::Success(task),
                None => Steal::Empty,
            }
        }
        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.0).is_empty()
        }
        pub(crate) fn len(&self) -> usize {
            lock(&self.0).len()
        }
    }

    impl<T> Injector<T> {
        pub(crate) fn new() -> Self {
            Injector(Mutex::new(VecDeque::new()))
        }
        pub(crate) fn push(&self, task: T) {
            lock(&self.0).push_back(task);
        }
        pub(crate) fn steal(&self) -> Steal<T> {
            match lock(&self.0).pop_front() {
                Some(task) => Steal::Success(task),
                None => Steal::Empty,
            }
        }
        pub(crate) fn steal_batch_with_limit_and_pop(
            &self,
            dest: &Worker<T>,
            limit: usize,
        ) -> Steal<T> {
            steal_half(&mut lock(&self.0), dest, limit)
        }
        pub(crate) fn steal_batch_with_limit(&self, dest: &Worker<T>, limit: usize) -> Steal<()> {
            match self.steal_batch_with_limit_and_pop(dest, limit) {
                Steal::Success(task) => {
                    dest.push(task);
                    Steal::Success(())
                }
                Steal::Empty => Steal::Empty,
                Steal::Retry => Steal::Retry,
            }
        }
        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.0).is_empty()
        }
        pub(crate) fn len(&self) -> usize {
            lock(&self.0).len()
        }
    }
}
