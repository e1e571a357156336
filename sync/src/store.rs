//! Where a queue's items live (one job: storing items behind the one interface the waiting
//! protocol in `channel.rs` needs).
//!
//! Two stores, chosen when the queue is made:
//! - [`Ring`] (`ring.rs`): lock-free, for a bounded FIFO [`Queue`](crate::Queue) up to
//!   65 536 slots (its slots are allocated up front);
//! - [`LockedStore`]: a [`Buffer`] (FIFO or min-heap) under a mutex, for an unbounded queue,
//!   every [`PriorityQueue`](crate::PriorityQueue) and a huge bounded queue.
//!
//! Both give the protocol the same guarantees: a push and a pop are each one atomic step; a
//! push fails when the store is full, closed, or blocked for everyone but a starving putter;
//! a pop fails when the store is empty or blocked for everyone but a starving getter;
//! `has_item`/`has_room` returning `false` means empty/full at some instant during the call; and
//! `pushed` counts every push that has succeeded (the ring: claimed), for `task_done`/`join`.

use crate::buffer::Buffer;
use crate::loom::Mutex;
use crate::ring::{PopError, PushError, Ring, CLOSED};

/// The storage behind a queue's channel.
// One per queue, inside its `Arc`; the ring is large only because it keeps its hot words on
// cache lines of their own, which boxing would put behind another pointer.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Store<T> {
    /// Lock-free, bounded, FIFO.
    Ring(Ring<T>),
    /// Mutex-guarded, in any [`Buffer`] order, bounded or not.
    Locked(LockedStore<T>),
}

impl<T> Store<T> {
    /// Pushes `value` unless the store is full, closed, or (unless `ignore_block`) blocked.
    #[inline]
    pub(crate) fn push(&self, value: T, ignore_block: bool) -> Result<(), (T, PushError)> {
        match self {
            Store::Ring(ring) => ring.push(value, ignore_block),
            Store::Locked(store) => store.push(value, ignore_block),
        }
    }

    /// Pops the next item unless the store is empty or (unless `ignore_block`) blocked.
    #[inline]
    pub(crate) fn pop(&self, ignore_block: bool) -> Result<T, PopError> {
        match self {
            Store::Ring(ring) => ring.pop(ignore_block),
            Store::Locked(store) => store.pop(ignore_block),
        }
    }

    /// Whether there is an item to pop; `false` means none at some instant during the call.
    pub(crate) fn has_item(&self) -> bool {
        match self {
            Store::Ring(ring) => ring.has_item(),
            Store::Locked(store) => !store.inner.lock().buffer.is_empty(),
        }
    }

    /// Whether there is room to push; `false` means full at some instant during the call.
    pub(crate) fn has_room(&self) -> bool {
        match self {
            Store::Ring(ring) => ring.has_room(),
            Store::Locked(store) => store.has_room(&store.inner.lock()),
        }
    }

    /// Makes pops fail unless they ignore the block (a getter starves), or lets them through.
    pub(crate) fn set_get_blocked(&self, blocked: bool) {
        match self {
            Store::Ring(ring) => ring.set_get_blocked(blocked),
            Store::Locked(store) => store.inner.lock().get_blocked = blocked,
        }
    }

    /// Makes pushes fail unless they ignore the block (a putter starves), or lets them through.
    pub(crate) fn set_put_blocked(&self, blocked: bool) {
        match self {
            Store::Ring(ring) => ring.set_put_blocked(blocked),
            Store::Locked(store) => store.inner.lock().put_blocked = blocked,
        }
    }

    /// From now on every push fails with [`PushError::Closed`].
    pub(crate) fn close(&self) {
        match self {
            Store::Ring(ring) => ring.close(),
            Store::Locked(store) => store.inner.lock().closed = true,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Store::Ring(ring) => ring.tail().1 & CLOSED != 0,
            Store::Locked(store) => store.inner.lock().closed,
        }
    }

    /// Closed, and every item pushed (or, in the ring, being pushed) has been popped.
    pub(crate) fn drained(&self) -> bool {
        match self {
            Store::Ring(ring) => {
                let (tail, flags) = ring.tail();
                let (head, _) = ring.head();
                flags & CLOSED != 0 && tail.wrapping_sub(head) as isize <= 0
            }
            Store::Locked(store) => {
                let inner = store.inner.lock();
                inner.closed && inner.buffer.is_empty()
            }
        }
    }

    /// How many pushes have succeeded (in the ring: claimed their slot) since the store was
    /// made. Never decreases.
    pub(crate) fn pushed(&self) -> usize {
        match self {
            Store::Ring(ring) => ring.tail().0,
            Store::Locked(store) => store.inner.lock().pushed,
        }
    }

    /// The number of items: a snapshot.
    pub(crate) fn len(&self) -> usize {
        match self {
            Store::Ring(ring) => ring.len(),
            Store::Locked(store) => store.inner.lock().buffer.len(),
        }
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        match self {
            Store::Ring(ring) => Some(ring.capacity()),
            Store::Locked(store) => store.capacity,
        }
    }
}

/// A [`Buffer`] and the flags the protocol needs, under one mutex: every operation is one
/// short critical section that moves items and never calls user code, except the heap's
/// comparisons (`T: Ord`). A panicking `Ord` leaves the heap's order unspecified but every
/// item that was in it still there (as `std`'s `BinaryHeap` does), except the one a pop was
/// taking out, which is dropped with the unwinding; the mutex ignores the poisoning.
pub(crate) struct LockedStore<T> {
    inner: Mutex<Inner<T>>,
    capacity: Option<usize>,
}

struct Inner<T> {
    buffer: Buffer<T>,
    /// Successful pushes since the store was made (see [`Store::pushed`]).
    pushed: usize,
    get_blocked: bool,
    put_blocked: bool,
    closed: bool,
}

impl<T> LockedStore<T> {
    /// A store over `buffer` holding at most `capacity` items (`None`: no limit).
    pub(crate) fn new(buffer: Buffer<T>, capacity: Option<usize>) -> Self {
        LockedStore {
            inner: Mutex::new(Inner {
                buffer,
                pushed: 0,
                get_blocked: false,
                put_blocked: false,
                closed: false,
            }),
            capacity,
        }
    }

    fn has_room(&self, inner: &Inner<T>) -> bool {
        self.capacity
            .map_or(true, |capacity| inner.buffer.len() < capacity)
    }

    fn push(&self, value: T, ignore_block: bool) -> Result<(), (T, PushError)> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Err((value, PushError::Closed));
        }
        if inner.put_blocked && !ignore_block {
            return Err((value, PushError::Blocked));
        }
        if !self.has_room(&inner) {
            return Err((value, PushError::Full));
        }
        // (The heap's comparisons, a user's `Ord`, may panic: the buffer contains that, and
        // the value is placed whatever they do.)
        inner.pushed += 1;
        inner.buffer.push(value);
        Ok(())
    }

    fn pop(&self, ignore_block: bool) -> Result<T, PopError> {
        let mut inner = self.inner.lock();
        if inner.get_blocked && !ignore_block {
            return Err(PopError::Blocked);
        }
        inner.buffer.pop().ok_or(PopError::Empty)
    }
}
