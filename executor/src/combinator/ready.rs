//! Per-child wake tracking: which children of a combinator were woken since it last
//! looked.
//!
//! Every child gets its own [`Waker`], created once when the combinator is built. Waking
//! it pushes the child's index onto a shared ready list (at most once until the parent
//! looks, thanks to a per-child `queued` flag) and wakes the parent. The parent then
//! polls exactly the children on that list, so one wake costs O(1), however many
//! children there are: no rescans.

use std::collections::VecDeque;
// `std::task::Wake` is implemented for `std::sync::Arc` only, so the waker's reference
// count is std's even under loom. All the state that threads race on (the flags and the
// ready list) goes through the loom-switchable types below.
use std::sync::Arc;
use std::task::{Wake, Waker};

use crate::loom::atomic::{AtomicBool, Ordering};
use crate::loom::{Mutex, MutexGuard};

/// The parent's side of the wake tracking for `len` children, indexed `0..len`.
pub(crate) struct ReadyQueue {
    shared: Arc<Shared>,
    /// One waker per child, allocated once (not per poll).
    wakers: Box<[Waker]>,
    /// Indices taken from the shared list and not yet handed out by [`pop`](Self::pop),
    /// in wake order. Kept across polls so a caller may stop early (e.g. after the first
    /// completion) without losing the rest.
    batch: VecDeque<usize>,
}

/// The state the child wakers share with the parent.
struct Shared {
    /// `queued[i]` is true while index `i` sits in `ready` or in the parent's batch.
    queued: Box<[AtomicBool]>,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Indices woken since the parent last collected them, in wake order.
    ready: Vec<usize>,
    /// The parent's waker, taken by the first child wake after the parent registered it:
    /// one parent wake per batch of child wakes is enough.
    parent: Option<Waker>,
}

/// The waker handed to child `index`.
struct ChildWaker {
    shared: Arc<Shared>,
    index: usize,
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.shared.mark_ready(self.index);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared.mark_ready(self.index);
    }
}

fn lock(mutex: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // The critical sections only push onto a Vec and move a Waker: a poisoned lock
    // (a panic from an allocation failure) leaves the data consistent, so carry on.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn mark_ready(&self, index: usize) {
        // AcqRel: the Release half publishes whatever the waker did before waking (e.g.
        // storing a value the child will read) to the parent's clearing swap in `pop`,
        // which is Acquire. If the flag was already set, the index is still waiting in
        // the list or the batch and its clearing swap is later in the flag's modification
        // order, so the child will be polled after this wake: nothing more to do.
        if self.queued[index].swap(true, Ordering::AcqRel) {
            return;
        }
        let parent = {
            let mut inner = lock(&self.inner);
            inner.ready.push(index);
            inner.parent.take()
        };
        // Woken outside the lock: the parent may run (and lock) at once on another thread.
        if let Some(parent) = parent {
            parent.wake();
        }
    }
}

impl ReadyQueue {
    /// Tracking for `len` children, all of them initially ready (they have never been
    /// polled).
    pub(crate) fn new(len: usize) -> Self {
        let queued: Box<[AtomicBool]> = (0..len).map(|_| AtomicBool::new(true)).collect();
        let shared = Arc::new(Shared {
            queued,
            inner: Mutex::new(Inner {
                ready: Vec::new(),
                parent: None,
            }),
        });
        let wakers = (0..len)
            .map(|index| {
                Waker::from(Arc::new(ChildWaker {
                    shared: Arc::clone(&shared),
                    index,
                }))
            })
            .collect();
        ReadyQueue {
            shared,
            wakers,
            batch: (0..len).collect(),
        }
    }

    /// Starts a poll of the parent: registers `parent` to be woken by the next child wake
    /// and appends the children woken since the last call to the batch.
    ///
    /// Children woken after this call are left for the next poll (after waking `parent`),
    /// so a child that wakes itself on every poll cannot keep the parent busy forever.
    pub(crate) fn begin_poll(&mut self, parent: &Waker) {
        let mut inner = lock(&self.shared.inner);
        let mut replaced = None;
        if !inner
            .parent
            .as_ref()
            .is_some_and(|registered| registered.will_wake(parent))
        {
            // The new waker is cloned, and the old one dropped, outside the lock: both run the
            // waker's own code, which may wake a child of this set (and so take the lock). A
            // child woken meanwhile, with the old waker still registered, is in `ready` below.
            drop(inner);
            let new = parent.clone();
            inner = lock(&self.shared.inner);
            replaced = inner.parent.replace(new);
        }
        self.batch.extend(inner.ready.drain(..));
        drop(inner);
        drop(replaced);
    }

    /// The next child to poll, if any is left in the batch.
    ///
    /// Its `queued` flag is cleared before it is returned, so a wake from this point on
    /// (including one during the poll the caller is about to make) queues it again.
    pub(crate) fn pop(&mut self) -> Option<usize> {
        let index = self.batch.pop_front()?;
        // AcqRel: Acquire pairs with the Release of every `mark_ready` that set the flag
        // since it was last cleared (an RMW reads the latest value, so it synchronizes
        // with the whole release sequence), making the wakers' prior writes visible to
        // the poll that follows.
        let was_queued = self.shared.queued[index].swap(false, Ordering::AcqRel);
        debug_assert!(was_queued, "index {index} was in the batch but not queued");
        Some(index)
    }

    /// The waker for child `index`.
    pub(crate) fn waker(&self, index: usize) -> &Waker {
        &self.wakers[index]
    }

    /// Forgets every pending index (used once the children have all been dropped).
    pub(crate) fn clear(&mut self) {
        self.batch.clear();
        // Dropped outside the lock (see `begin_poll`).
        let parent = lock(&self.shared.inner).parent.take();
        drop(parent);
    }
}

impl Drop for ReadyQueue {
    fn drop(&mut self) {
        // Child wakers may outlive the combinator (stored in some channel); drop the
        // parent's waker now rather than keep the parent task alive through them.
        let parent = lock(&self.shared.inner).parent.take();
        drop(parent);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::ReadyQueue;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    /// A parent waker that records that it was woken.
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::Release);
        }
    }

    /// A child is woken on another thread while the parent is polling it: either the
    /// poll sees what the waker published, or the parent is woken and its next poll gets
    /// the child again. No interleaving loses the wake.
    #[test]
    fn a_wake_racing_the_childs_poll_is_never_lost() {
        loom::model(|| {
            let mut queue = ReadyQueue::new(2);
            let parent_flag = Arc::new(Flag(AtomicBool::new(false)));
            let parent = Waker::from(Arc::clone(&parent_flag));
            let published = Arc::new(AtomicBool::new(false));

            let child_waker = queue.waker(0).clone();
            let waker_thread = {
                let published = Arc::clone(&published);
                loom::thread::spawn(move || {
                    // What a channel does: publish the value, then wake the receiver.
                    published.store(true, Ordering::Relaxed);
                    child_waker.wake();
                })
            };

            queue.begin_poll(&parent);
            assert_eq!(queue.pop(), Some(0));
            // The child's poll: it sees the value or must be polled again later.
            let seen_in_first_poll = published.load(Ordering::Relaxed);
            assert_eq!(queue.pop(), Some(1));
            waker_thread.join().unwrap();

            if !seen_in_first_poll {
                assert!(parent_flag.0.load(Ordering::Acquire), "parent not woken");
                queue.begin_poll(&parent);
                assert_eq!(queue.pop(), Some(0), "woken child not queued again");
                assert!(published.load(Ordering::Relaxed));
            }
        });
    }

    /// A child is woken on another thread while the parent's next poll registers a new
    /// waker (which it clones outside the lock): the wake is collected by that poll, or it
    /// wakes the new waker, never only the old one.
    #[test]
    fn a_wake_racing_a_new_parent_waker_is_never_lost() {
        loom::model(|| {
            let mut queue = ReadyQueue::new(1);
            let old_flag = Arc::new(Flag(AtomicBool::new(false)));
            let new_flag = Arc::new(Flag(AtomicBool::new(false)));
            queue.begin_poll(&Waker::from(Arc::clone(&old_flag)));
            assert_eq!(queue.pop(), Some(0));

            let child_waker = queue.waker(0).clone();
            let waker_thread = loom::thread::spawn(move || child_waker.wake());
            queue.begin_poll(&Waker::from(Arc::clone(&new_flag)));
            let collected = queue.pop() == Some(0);
            waker_thread.join().unwrap();

            if !collected {
                assert!(
                    new_flag.0.load(Ordering::Acquire),
                    "the wake went to the old parent waker only"
                );
            }
        });
    }

    /// Two threads wake the same child at once: it is queued exactly once.
    #[test]
    fn concurrent_wakes_of_one_child_queue_it_once() {
        loom::model(|| {
            let mut queue = ReadyQueue::new(1);
            let parent = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
            queue.begin_poll(&parent);
            assert_eq!(queue.pop(), Some(0));

            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let waker = queue.waker(0).clone();
                    loom::thread::spawn(move || waker.wake())
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
            queue.begin_poll(&parent);
            assert_eq!(queue.pop(), Some(0));
            assert_eq!(queue.pop(), None);
        });
    }
}
