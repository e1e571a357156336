//! The lock-free item storage of a bounded FIFO [`Queue`](crate::Queue) (one job: a fixed
//! number of slots that producers and consumers claim without a lock).
//!
//! A bounded MPMC array queue in the style of Dmitry Vyukov's: every slot has a sequence number
//! (`seq`) that says which position may use it next. Positions count up from 0; position `p`
//! lives in slot `p % capacity`. For that slot:
//!
//! - `seq == 2p`: empty, ready for the push at position `p`;
//! - `seq == 2p + 1`: filled by the push at `p`, ready for the pop at `p`;
//! - the pop at `p` sets `seq = 2(p + capacity)`: empty, ready for the push one lap later.
//!
//! (Doubling keeps "filled at `p`" and "empty for `p + 1`" apart even with one slot.)
//!
//! A push claims position `tail` with a CAS on `tail` after seeing the slot ready, then writes
//! the value and publishes it with a Release store of `seq`; a pop claims `head` the same way
//! after seeing the slot filled (Acquire load of `seq`), takes the value and frees the slot with
//! a Release store. So every slot is accessed by exactly one claimant at a time, and a value is
//! written before, and read after, the `seq` store that hands the slot over.
//!
//! A push that finds its slot not yet freed reports [`PushError::Full`] and a pop that finds its
//! slot not yet filled reports [`PopError::Empty`], even when the operation on the other side
//! has claimed the position but not finished: it has not happened yet. The channel's wakeup
//! protocol (see `channel.rs`) makes the finishing side wake whoever gave up meanwhile.
//!
//! Besides its position, each index word carries flags, so that a claim (a CAS of the word)
//! fails when a flag changes under it: `head` has [`GET_BLOCKED`] (fast pops must go through
//! the channel's mutex), `tail` has [`PUT_BLOCKED`] (the same for pushes) and [`CLOSED`] (no
//! push succeeds any more). The flags are changed only by the channel, under its mutex.
//!
//! Positions are `usize` shifted past the flags, so they wrap after 2⁶² operations (146 years at
//! one per nanosecond); that is not handled, and so the ring is used on 64-bit targets only
//! (on a 32-bit one, 2³⁰ operations: `Queue::bounded` takes the locked store there).

use crate::loom::{AtomicUsize, Ordering, UnsafeCell};

/// `head` flag: pops must take the slow path (the channel holds items for waiting getters).
pub(crate) const GET_BLOCKED: usize = 1 << 0;
/// The position's shift in `head`.
const HEAD_SHIFT: u32 = 1;
/// `tail` flag: pushes must take the slow path (putters are parked).
pub(crate) const PUT_BLOCKED: usize = 1 << 0;
/// `tail` flag: the queue is closed; no push succeeds.
pub(crate) const CLOSED: usize = 1 << 1;
/// The position's shift in `tail`.
const TAIL_SHIFT: u32 = 2;

/// Keeps `head` and `tail` on cache lines of their own, so that producers and consumers do
/// not slow each other down by writing to the same line.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

struct Slot<T> {
    seq: AtomicUsize,
    value: UnsafeCell<Option<T>>,
}

/// Why a push failed; the value comes back with it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The slot at `tail` is not free yet (the ring is full, or a pop there is unfinished).
    Full,
    /// `PUT_BLOCKED` is set and the caller did not ask to ignore it.
    Blocked,
    /// `CLOSED` is set.
    Closed,
}

/// Why a pop failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PopError {
    /// The slot at `head` is not filled yet (the ring is empty, or a push there is unfinished).
    Empty,
    /// `GET_BLOCKED` is set and the caller did not ask to ignore it.
    Blocked,
}

pub(crate) struct Ring<T> {
    head: Padded<AtomicUsize>,
    tail: Padded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
}

// SAFETY: a `Ring` hands each `T` from the thread that pushed it to the thread that pops it
// (hence `T: Send`); the slots' `UnsafeCell`s are only accessed by the one claimant of the slot
// (see the module docs), so sharing `&Ring` between threads is sound for `T: Send`.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// A ring of `capacity` slots (`capacity >= 1`).
    pub(crate) fn new(capacity: usize) -> Self {
        debug_assert!(capacity >= 1);
        let slots = (0..capacity)
            .map(|i| Slot {
                seq: AtomicUsize::new(2 * i),
                value: UnsafeCell::new(None),
            })
            .collect();
        Ring {
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            slots,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, pos: usize) -> &Slot<T> {
        &self.slots[pos % self.slots.len()]
    }

    /// Pushes `value` at the tail unless the ring is full, closed, or (unless `ignore_block`)
    /// blocked.
    pub(crate) fn push(&self, value: T, ignore_block: bool) -> Result<(), (T, PushError)> {
        // Relaxed: the word is only a claim ticket; the slot's `seq` orders the data.
        let mut tail = self.tail.0.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err((value, PushError::Closed));
            }
            if tail & PUT_BLOCKED != 0 && !ignore_block {
                return Err((value, PushError::Blocked));
            }
            let pos = tail >> TAIL_SHIFT;
            let slot = self.slot(pos);
            // Acquire: pairs with the Release store of the pop that freed this slot, so its
            // read of the old value happens before our write.
            let seq = slot.seq.load(Ordering::Acquire);
            let lag = seq.wrapping_sub(pos.wrapping_mul(2)) as isize;
            if lag == 0 {
                let next = tail + (1 << TAIL_SHIFT);
                // Relaxed: the CAS only decides who owns position `pos` (a read-modify-write,
                // so exactly one claimant wins); data is ordered by `seq`. It fails if a flag
                // changed meanwhile, and the loop re-checks them.
                match self.tail.0.compare_exchange_weak(
                    tail,
                    next,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: we won position `pos`, and `seq == 2 * pos` says the pop one lap
                        // earlier has finished with the slot: nobody else touches the cell
                        // until our store of `seq` below hands it to the pop at `pos`.
                        slot.value.with_mut(|cell| unsafe { *cell = Some(value) });
                        // Release: publishes the value to the pop that Acquire-loads `seq`.
                        slot.seq.store(pos.wrapping_mul(2) + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => tail = current,
                }
            } else if lag < 0 {
                // The slot still holds the item from one lap ago.
                return Err((value, PushError::Full));
            } else {
                // Another push claimed `pos` already; Relaxed as above.
                tail = self.tail.0.load(Ordering::Relaxed);
            }
        }
    }

    /// Pops the item at the head unless the ring is empty or (unless `ignore_block`) blocked.
    pub(crate) fn pop(&self, ignore_block: bool) -> Result<T, PopError> {
        // Relaxed: a claim ticket, as in `push`.
        let mut head = self.head.0.load(Ordering::Relaxed);
        loop {
            if head & GET_BLOCKED != 0 && !ignore_block {
                return Err(PopError::Blocked);
            }
            let pos = head >> HEAD_SHIFT;
            let slot = self.slot(pos);
            // Acquire: pairs with the Release store of the push that filled the slot, so we
            // read the value it wrote.
            let seq = slot.seq.load(Ordering::Acquire);
            let lag = seq.wrapping_sub(pos.wrapping_mul(2) + 1) as isize;
            if lag == 0 {
                // Relaxed: as in `push`, the CAS only assigns position `pos`.
                match self.head.0.compare_exchange_weak(
                    head,
                    head + (1 << HEAD_SHIFT),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: we won position `pos`, and `seq == 2 * pos + 1` says its push
                        // has finished writing: nobody else touches the cell until our store
                        // of `seq` below hands it to the push one lap later.
                        let value = slot.value.with_mut(|cell| unsafe { (*cell).take() });
                        // Release: our read of the cell happens before the next push's write.
                        slot.seq.store(
                            pos.wrapping_add(self.slots.len()).wrapping_mul(2),
                            Ordering::Release,
                        );
                        return Ok(value.expect("a filled ring slot holds a value"));
                    }
                    Err(current) => head = current,
                }
            } else if lag < 0 {
                return Err(PopError::Empty);
            } else {
                // Another pop took `pos` already; Relaxed as above.
                head = self.head.0.load(Ordering::Relaxed);
            }
        }
    }

    /// Whether the item at position `pos` has been pushed and not yet popped. Only meaningful
    /// for `head <= pos < head + capacity`.
    pub(crate) fn is_filled(&self, pos: usize) -> bool {
        // Acquire: as in `pop`, so a caller that then pops sees the value.
        self.slot(pos).seq.load(Ordering::Acquire) == pos.wrapping_mul(2) + 1
    }

    /// The head position (next pop) and its flags.
    pub(crate) fn head(&self) -> (usize, usize) {
        // Acquire: the index CASes are Relaxed, so this orders nothing by itself; it is a
        // snapshot, and callers that need more re-read (`has_item`) or work under the mutex.
        let head = self.head.0.load(Ordering::Acquire);
        (head >> HEAD_SHIFT, head & GET_BLOCKED)
    }

    /// The tail position (next push; claimed pushes included, finished or not) and its flags.
    pub(crate) fn tail(&self) -> (usize, usize) {
        // Acquire: a snapshot, as in `head`.
        let tail = self.tail.0.load(Ordering::Acquire);
        (tail >> TAIL_SHIFT, tail & (PUT_BLOCKED | CLOSED))
    }

    /// Whether the item at the head is there to pop (pushed and not popped). Looks again if the
    /// head moved while it looked, so `false` means the ring was empty at some instant during
    /// the call (a push at the head may have claimed its position but not finished).
    pub(crate) fn has_item(&self) -> bool {
        loop {
            let (head, _) = self.head();
            if self.is_filled(head) {
                return true;
            }
            if self.head().0 == head {
                return false;
            }
        }
    }

    /// Whether the slot at the tail is free to push into. Like [`has_item`](Self::has_item),
    /// `false` means the ring was full at some instant during the call.
    pub(crate) fn has_room(&self) -> bool {
        loop {
            let (tail, _) = self.tail();
            // Acquire: as in `push`.
            if self.slot(tail).seq.load(Ordering::Acquire) == tail.wrapping_mul(2) {
                return true;
            }
            if self.tail().0 == tail {
                return false;
            }
        }
    }

    /// The number of items (claimed pushes not yet claimed by pops), at most the capacity: a
    /// snapshot.
    pub(crate) fn len(&self) -> usize {
        let (head, _) = self.head();
        let (tail, _) = self.tail();
        // The two reads are not one instant, and (the index CASes being Relaxed) this thread
        // may see a head newer than the tail: that is an empty queue, not a wrapped count.
        // Positions never wrap (see the module docs), so `saturating_sub` is exact otherwise.
        tail.saturating_sub(head).min(self.capacity())
    }

    /// Sets or clears `GET_BLOCKED` (a no-op when it already is so).
    pub(crate) fn set_get_blocked(&self, blocked: bool) {
        // AcqRel read-modify-writes: a claim CAS racing one fails and re-reads the flag. The
        // flag protects no data of its own (the channel's mutex and `seq` do). Relaxed for
        // the look before: only the mutex holder changes the flag.
        let set = self.head.0.load(Ordering::Relaxed) & GET_BLOCKED != 0;
        if blocked && !set {
            self.head.0.fetch_or(GET_BLOCKED, Ordering::AcqRel);
        } else if !blocked && set {
            self.head.0.fetch_and(!GET_BLOCKED, Ordering::AcqRel);
        }
    }

    /// Sets or clears `PUT_BLOCKED` (a no-op when it already is so).
    pub(crate) fn set_put_blocked(&self, blocked: bool) {
        // As in `set_get_blocked`.
        let set = self.tail.0.load(Ordering::Relaxed) & PUT_BLOCKED != 0;
        if blocked && !set {
            self.tail.0.fetch_or(PUT_BLOCKED, Ordering::AcqRel);
        } else if !blocked && set {
            self.tail.0.fetch_and(!PUT_BLOCKED, Ordering::AcqRel);
        }
    }

    /// Sets `CLOSED`: from now on every push fails.
    pub(crate) fn close(&self) {
        // AcqRel: a push CAS racing this one fails and re-reads the flag; pushes that claimed
        // their position earlier stay counted in the tail position.
        self.tail.0.fetch_or(CLOSED, Ordering::AcqRel);
    }
}
