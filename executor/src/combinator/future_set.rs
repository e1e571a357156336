//! A fixed set of child futures driven with per-child wake tracking: the engine shared
//! by `join_all`, `try_join_all`, `as_completed` and `wait_any`.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::ready::ReadyQueue;

/// Children indexed `0..len`, each polled only after its own waker fired.
pub(crate) struct FutureSet<F> {
    /// `None` once a child completed (it is dropped at once, not when the set is).
    futures: Pin<Box<[Option<F>]>>,
    ready: ReadyQueue,
    /// Children not yet completed (a child that panicked is no longer counted).
    pending: usize,
    /// A child panicked in a poll (its panic went on to the caller).
    panicked: bool,
}

/// Child `index` of a pinned slice, still pinned.
fn pinned_slot<T>(slots: Pin<&mut [T]>, index: usize) -> Pin<&mut T> {
    // Pinning a slice pins its elements in place (structural pinning): an element lives
    // inside the slice's allocation, which the `Pin` promises will not move or be freed
    // before being dropped in place. We never hand out an unpinned `&mut` to an element, and
    // elements are moved out only when they are `Unpin` (`FutureSet::take_remaining`).
    // SAFETY: by the above, the element is never moved while pinned.
    unsafe { slots.map_unchecked_mut(|slots| &mut slots[index]) }
}

impl<F: Future> FutureSet<F> {
    pub(crate) fn new(futures: impl IntoIterator<Item = F>) -> Self {
        let futures: Box<[Option<F>]> = futures.into_iter().map(Some).collect();
        let len = futures.len();
        FutureSet {
            futures: Box::into_pin(futures),
            ready: ReadyQueue::new(len),
            pending: len,
            panicked: false,
        }
    }

    /// How many children the set started with.
    pub(crate) fn len(&self) -> usize {
        self.futures.len()
    }

    /// How many children have not completed yet.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// Whether a child panicked in a poll: it was dropped, and its output will never come.
    pub(crate) fn panicked(&self) -> bool {
        self.panicked
    }

    /// Registers the parent's waker and collects the children woken since the last poll.
    /// Call once per poll of the parent, before [`next_completed`](Self::next_completed).
    pub(crate) fn begin_poll(&mut self, cx: &Context<'_>) {
        self.ready.begin_poll(cx.waker());
    }

    /// Polls the collected children, in wake order, until one completes; returns its
    /// index and output (the child is dropped first). `None` when no collected child is
    /// left: every child still pending has a wake registered.
    pub(crate) fn next_completed(&mut self) -> Option<(usize, F::Output)> {
        while let Some(index) = self.ready.pop() {
            // A stale wake: the child completed earlier, or the set was cleared.
            if index >= self.futures.len() {
                continue;
            }
            let mut slot = pinned_slot(self.futures.as_mut(), index);
            let Some(future) = slot.as_mut().as_pin_mut() else {
                continue;
            };
            let mut cx = Context::from_waker(self.ready.waker(index));
            match panic::catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))) {
                Ok(Poll::Ready(output)) => {
                    slot.set(None);
                    self.pending -= 1;
                    return Some((index, output));
                }
                Ok(Poll::Pending) => {}
                Err(payload) => {
                    // The child is done with, and its panic goes on to the caller. A caller
                    // that catches it and polls the set again (a stream of results that
                    // outlives one bad child) gets the others, then the end: left in its slot
                    // and still counted, the child would be waited for for ever, woken by
                    // nobody. Its destructor's own panic, if any, gives way to the first.
                    crate::task::harness::swallow_panic(|| slot.set(None));
                    self.pending -= 1;
                    self.panicked = true;
                    panic::resume_unwind(payload);
                }
            }
        }
        None
    }

    /// Drops every child still pending, at once.
    pub(crate) fn clear(&mut self) {
        self.futures = Box::into_pin(Box::default());
        self.pending = 0;
        self.ready.clear();
    }

    /// Takes the children still pending, in their original order, leaving the set empty.
    pub(crate) fn take_remaining(&mut self) -> Vec<F>
    where
        F: Unpin,
    {
        let futures = std::mem::replace(&mut self.futures, Box::into_pin(Box::default()));
        self.pending = 0;
        self.ready.clear();
        Pin::into_inner(futures)
            .into_vec()
            .into_iter()
            .flatten()
            .collect()
    }
}
