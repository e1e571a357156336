//! A worker's LIFO slot: the task that worker runs next, which the monitor can take away.
//!
//! A task spawned or woken on a worker goes here rather than to the back of its queue, so it
//! runs right after the current poll, on data still hot in this core's cache. The slot is not
//! in the stealable queue — thieves taking it would undo exactly that — so if the current poll
//! then runs long (a blocking call, a long computation), the task would wait for it while other
//! workers idle. The slot is therefore an atomic pointer: its worker fills it (only when empty)
//! with a plain store and empties it with a swap, and the monitor (`monitor.rs`) takes the task
//! with a swap of its own when the worker has been inside one poll for too long. A swap hands
//! the pointer to exactly one side: the task is never run twice nor lost.

use crossbeam_utils::CachePadded;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use crate::loom::atomic::{AtomicPtr, Ordering};
use crate::task::raw::Notified;

/// What a slot holds: an owned entry that can travel as a raw pointer.
///
/// # Safety
/// `from_ptr(into_ptr(x))` must give back `x` (same ownership), and `into_ptr` never returns a
/// pointer that another live entry also returned.
pub(crate) unsafe trait SlotEntry: Send {
    /// Gives up the entry as a pointer.
    fn into_ptr(self) -> NonNull<()>;
    /// Takes an entry back from its pointer.
    ///
    /// # Safety
    /// `ptr` came from `into_ptr` and is taken back once.
    unsafe fn from_ptr(ptr: NonNull<()>) -> Self;
}

// SAFETY: `into_entry_ptr`/`from_entry_ptr` move the entry's one reference (and its tag)
// through the header pointer, which is unique to the task; a task has at most one `Notified`
// (its NOTIFIED bit, or a carried entry's RUNNING).
unsafe impl SlotEntry for Notified {
    fn into_ptr(self) -> NonNull<()> {
        self.into_entry_ptr()
    }

    unsafe fn from_ptr(ptr: NonNull<()>) -> Notified {
        // SAFETY: `ptr` is an entry given up by `into_ptr`, taken back once (the caller's
        // contract), so its reference comes back with it.
        unsafe { Notified::from_entry_ptr(ptr) }
    }
}

/// One worker's LIFO slot; null while empty. On a cache line of its own: only its worker
/// writes it on the hot path, and the monitor reads every worker's.
pub(crate) struct LifoSlot<T: SlotEntry = Notified> {
    ptr: CachePadded<AtomicPtr<()>>,
    _owns: PhantomData<T>,
}

// SAFETY: the slot never lends its entry out: entries are only moved in and out whole, each by
// an atomic swap that hands the pointer to exactly one thread, and entries are `Send`
// (`SlotEntry: Send`). So sharing the slot between threads only ever moves an entry across.
unsafe impl<T: SlotEntry> Sync for LifoSlot<T> {}

impl<T: SlotEntry> LifoSlot<T> {
    pub(crate) fn new() -> LifoSlot<T> {
        LifoSlot {
            ptr: CachePadded::new(AtomicPtr::new(ptr::null_mut())),
            _owns: PhantomData,
        }
    }

    /// The worker: puts `entry` in the slot if it is empty, else hands it back (the caller
    /// queues it behind the others: the task already in the slot keeps its turn).
    ///
    /// No read-modify-write: an empty slot stays empty until its worker fills it (the monitor
    /// only ever swaps an entry *out*), so a load and a plain store suffice. The monitor's
    /// swap reads either the null before the store (and takes nothing) or the stored pointer:
    /// a read-modify-write always reads the last value in the location's modification order.
    /// (Measured, docs/benchmarks.md: a first version that displaced the slot's task with a
    /// swap here took 1.08× as long on `spawn_many_local` and 1.045× on `spawn_join_local`.)
    #[inline]
    pub(crate) fn put_if_empty(&self, entry: T) -> Result<(), T> {
        if !self.ptr.load(Ordering::Relaxed).is_null() {
            return Err(entry);
        }
        let new = entry.into_ptr().as_ptr();
        // Release: the monitor's Acquire swap that takes `entry` sees everything this worker
        // did before handing it over.
        //
        // Under loom, a swap instead: loom lets a plain store slip between the read and the
        // write of another thread's concurrent swap (tokio-rs/loom#254, open), so the store
        // would be "lost" in models although the memory model forbids it. The model (below)
        // checks the same protocol with the store made a swap, which returns null here.
        #[cfg(not(loom))]
        self.ptr.store(new, Ordering::Release);
        #[cfg(loom)]
        {
            let old = self.ptr.swap(new, Ordering::Release);
            assert!(old.is_null(), "only the worker fills its slot");
        }
        Ok(())
    }

    /// The worker: takes the entry, if the monitor has not.
    #[inline]
    pub(crate) fn take(&self) -> Option<T> {
        // An empty slot is the common case between spawns: one load, no read-modify-write.
        if self.ptr.load(Ordering::Relaxed).is_null() {
            return None;
        }
        // Relaxed: whatever is here, this worker put here itself. A swap, not a store of null
        // after the load: the monitor may have taken the entry in between. (Mutant
        // `lifo_take_not_atomic`: load, then store — the entry comes out twice.)
        #[cfg(magpie_mutant = "lifo_take_not_atomic")]
        let old = {
            let old = self.ptr.load(Ordering::Relaxed);
            self.ptr.store(ptr::null_mut(), Ordering::Relaxed);
            old
        };
        #[cfg(not(magpie_mutant = "lifo_take_not_atomic"))]
        let old = self.ptr.swap(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: `old` is null or a pointer `put_if_empty` stored, and our swap removed it
        // from the slot: `entry`'s contract.
        unsafe { Self::entry(old) }
    }

    /// The monitor, and shutdown: takes the entry away from a worker stuck in a poll.
    pub(crate) fn steal(&self) -> Option<T> {
        // Acquire: pairs with the Release of the `put_if_empty` that put the entry here.
        let old = self.ptr.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: `old` is null or a pointer `put_if_empty` stored, and our swap removed it
        // from the slot: `entry`'s contract.
        unsafe { Self::entry(old) }
    }

    /// Whether an entry is in the slot (a snapshot, for its worker and the diagnostics).
    pub(crate) fn is_full(&self) -> bool {
        !self.ptr.load(Ordering::Relaxed).is_null()
    }

    /// Whether an entry is in the slot, for the monitor. Acquire, paired with the Release of
    /// the `put_if_empty` that filled it: what the worker did before (counting the poll that
    /// spawned the entry) is seen by the monitor's loads that follow this one.
    // The monitor's, which loom builds leave out.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn is_full_acquire(&self) -> bool {
        !self.ptr.load(Ordering::Acquire).is_null()
    }

    /// The entry behind a pointer swapped out of the slot.
    ///
    /// # Safety
    /// `ptr` is null or a pointer that `put_if_empty` stored and the caller's swap took out (so
    /// nobody else owns it).
    unsafe fn entry(ptr: *mut ()) -> Option<T> {
        let ptr = NonNull::new(ptr)?;
        // SAFETY: from `into_ptr` (stored by `put_if_empty`), taken back once: the caller's swap
        // removed it from the slot.
        Some(unsafe { T::from_ptr(ptr) })
    }
}

impl<T: SlotEntry> Drop for LifoSlot<T> {
    fn drop(&mut self) {
        // An entry left in the slot (a runtime dropped mid-way) is dropped: for a task, its
        // reference goes back; the task itself is cancelled through the live-task list.
        drop(self.take());
    }
}

#[cfg(all(test, loom))]
mod models {
    //! The worker and the monitor racing for the slot: every entry put in comes out exactly
    //! once — through the worker's take or the monitor's steal — and one refused (the slot
    //! was full) comes back to the worker.

    use super::*;
    use crate::loom::{thread, Arc};

    // SAFETY: `Box::into_raw`/`from_raw` move the one owner of a unique allocation.
    unsafe impl SlotEntry for Box<u32> {
        fn into_ptr(self) -> NonNull<()> {
            NonNull::from(Box::leak(self)).cast()
        }

        unsafe fn from_ptr(ptr: NonNull<()>) -> Box<u32> {
            // SAFETY: from `into_ptr`, taken back once (the caller's contract).
            unsafe { Box::from_raw(ptr.cast::<u32>().as_ptr()) }
        }
    }

    #[test]
    fn every_entry_comes_out_once_whoever_takes_it() {
        loom::model(|| {
            let slot = Arc::new(LifoSlot::<Box<u32>>::new());
            let monitor = {
                let slot = slot.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..2 {
                        got.extend(slot.steal().map(|b| *b));
                    }
                    got
                })
            };
            // The worker: two puts (the second is refused unless the monitor took the first)
            // and a take.
            let mut got = Vec::new();
            got.extend(slot.put_if_empty(Box::new(1)).err().map(|b| *b));
            got.extend(slot.put_if_empty(Box::new(2)).err().map(|b| *b));
            got.extend(slot.take().map(|b| *b));
            got.extend(monitor.join().unwrap());
            got.sort_unstable();
            // Nothing left behind, nothing twice (a leak or a double free would also be
            // reported by loom).
            assert!(!slot.is_full());
            assert_eq!(got, vec![1, 2]);
        });
    }
}
