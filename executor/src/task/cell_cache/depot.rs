//! A runtime's depot of freed task cells: where a worker that frees more cells of a size than
//! it allocates leaves them for a worker that allocates more than it frees.
//!
//! Work stealing makes cells travel one way: a task spawned on worker A and stolen by worker B
//! ends on B, so its cell is freed into B's cache, while A, which spawns, finds its own cache
//! empty. Without the depot, B's cache fills to its budget and then hands every further cell to
//! the global allocator, and A takes every new one from it (measured: 62 % of the spawns of
//! `spawn_many_local` at 2 workers missed their worker's cache, and glibc's `malloc` and `free`
//! were ~12 % of that row's time; docs/benchmarks.md).
//!
//! The protocol, per size class:
//!
//! 1. A worker whose list of the class is empty when it allocates asks the depot for a
//!    magazine ([`MAGAZINE_CELLS`] free cells, linked through their first words) if its budget
//!    has room for one. If the depot has none, the worker marks the class *wanted* and
//!    allocates from the global allocator. Taking the depot's last magazine of the class marks
//!    it wanted too: whoever took it will likely want more.
//! 2. A worker that frees a cell of a wanted class while its own list of the class holds at
//!    least [`MAGAZINE_CELLS`] cells cuts a magazine off the front of its list (the cells it
//!    freed last) and gives it to the depot. If the depot is at its limit, it refuses, and the
//!    class stops being wanted until the next miss: no worker takes the lock again for a
//!    magazine that cannot be kept.
//! 3. Step 1 on any worker takes the magazine: one lock for [`MAGAZINE_CELLS`] cells.
//!
//! So cells move between workers a magazine at a time, one lock per magazine on each side, and
//! only while some worker lacks them. A worker's own miss marks a class wanted too: a worker
//! that allocates a burst and then frees it may give magazines to the depot and take them back
//! at its next misses (the cells never leave the process's hands).
//!
//! The depot holds at most its limit in bytes (the runtime's per-worker cache budget). It
//! frees what it holds at shutdown once the workers have stopped ([`CellDepot::release_all`];
//! the runtime's `Shared` owns it), when it is dropped, and when a worker parks while it holds
//! cells that no worker has given or taken for a second ([`CellDepot::release_if_idle`]): a
//! runtime that has gone quiet gives them back.
//!
//! Loom builds have no cell cache (`super`) and their runtimes no depot; the type still compiles
//! there, on the loom shim's primitives, like the rest of the crate.

use std::ptr::NonNull;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use super::{class_layout, FreeBlock};
use crate::loom::atomic::{AtomicU64, Ordering};
use crate::loom::{lock, Mutex};

/// How many cells a magazine holds, and a worker's list of a class must hold before the worker
/// gives one to the depot: enough that the lock is taken once per many cells on both sides,
/// few enough that a worker lacking cells gets them soon after another starts to have spare
/// ones, and that a magazine is a small part of a budget (at most 32 KiB, for 512-byte cells).
#[cfg_attr(loom, allow(dead_code))]
pub(super) const MAGAZINE_CELLS: usize = 64;

// A class is a bit of a mask in a `u64`.
const _: () = assert!(super::CLASSES <= 64);

/// [`MAGAZINE_CELLS`] free cells of one class, linked through their first words (the last
/// one's link is `None`), owned by whoever holds the magazine.
pub(super) struct Magazine {
    pub(super) class: usize,
    pub(super) head: NonNull<FreeBlock>,
}

// SAFETY: a magazine is the only way to its cells: free memory, reached by nothing else, that
// any thread may link, use or free (they come from the global allocator, which is not tied to
// a thread).
unsafe impl Send for Magazine {}

/// The bytes of a magazine of `class`.
pub(super) fn magazine_bytes(class: usize) -> usize {
    MAGAZINE_CELLS * class_layout(class).size()
}

impl Magazine {
    fn bytes(&self) -> usize {
        magazine_bytes(self.class)
    }

    /// Gives every cell back to the global allocator.
    fn free(self) {
        let layout = class_layout(self.class);
        let mut next = Some(self.head);
        while let Some(block) = next {
            // The blocks of a magazine are free blocks of its class, linked through their first
            // words, reached by nothing but this magazine (which is consumed).
            // SAFETY: so the link is readable, and read before the block is freed.
            next = unsafe { block.as_ref().next };
            // SAFETY: as above, freed with its class's layout, the one every block of a class
            // is allocated with (`super::allocate`).
            unsafe { std::alloc::dealloc(block.as_ptr().cast(), layout) };
        }
    }
}

/// The depot: see the module's documentation.
pub(crate) struct CellDepot {
    /// On a line of its own: every lock writes it, while the masks below are read on frees.
    shelf: CachePadded<Mutex<Shelf>>,
    /// Bit `c`: the depot holds a magazine of class `c`. Written under the lock, read without
    /// it as a hint (Relaxed everywhere: a stale bit costs one lock that finds nothing, or one
    /// miss that goes to the global allocator; the cells themselves pass through the lock).
    stocked: AtomicU64,
    /// Bit `c`: a worker missed class `c` and the depot had none. Set without the lock (a
    /// hint: a stale bit costs a magazine that waits here, within the limit, or a cell that
    /// goes to the global allocator as it would without the depot); cleared under the lock
    /// when a magazine of the class comes in.
    wanted: AtomicU64,
    /// When a magazine was last given or taken, in nanoseconds since `epoch` (the clock is
    /// read once per magazine, and at a park while the depot holds cells).
    used_ns: AtomicU64,
    epoch: Instant,
    /// The most bytes the shelf holds.
    limit: usize,
}

#[derive(Default)]
struct Shelf {
    magazines: Vec<Magazine>,
    bytes: usize,
}

impl CellDepot {
    /// A depot that holds up to `limit` bytes of cells.
    pub(crate) fn new(limit: usize) -> CellDepot {
        CellDepot {
            shelf: CachePadded::new(Mutex::new(Shelf::default())),
            stocked: AtomicU64::new(0),
            wanted: AtomicU64::new(0),
            used_ns: AtomicU64::new(0),
            epoch: Instant::now(),
            limit,
        }
    }

    /// Whether a worker lacks cells of `class` (step 2's test, on every free of a worker whose
    /// list is long enough: one load of a line that changes once per magazine).
    #[cfg_attr(loom, allow(dead_code))]
    #[inline]
    pub(super) fn wants(&self, class: usize) -> bool {
        self.wanted.load(Ordering::Relaxed) & 1 << class != 0
    }

    /// Records a use (a magazine given or taken) at the time of the call.
    fn used_now(&self) {
        let ns = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.used_ns.store(ns, Ordering::Relaxed);
    }

    /// Marks the class of `bit` wanted. Loaded first, so that a class already wanted costs no
    /// write to the shared line.
    fn want(&self, bit: u64) {
        if self.wanted.load(Ordering::Relaxed) & bit == 0 {
            self.wanted.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Step 1: a magazine of `class`, if the depot has one; otherwise marks the class wanted.
    #[cfg_attr(loom, allow(dead_code))]
    pub(super) fn take(&self, class: usize) -> Option<Magazine> {
        let bit = 1 << class;
        if self.stocked.load(Ordering::Relaxed) & bit != 0 {
            let mut shelf = lock(&self.shelf);
            if let Some(at) = shelf.magazines.iter().position(|m| m.class == class) {
                let magazine = shelf.magazines.swap_remove(at);
                shelf.bytes -= magazine.bytes();
                if !shelf.magazines.iter().any(|m| m.class == class) {
                    self.stocked.fetch_and(!bit, Ordering::Relaxed);
                    self.want(bit);
                }
                drop(shelf);
                self.used_now();
                return Some(magazine);
            }
        }
        self.want(bit);
        None
    }

    /// Step 2: keeps `magazine` unless that would take the depot over its limit; then hands it
    /// back, and the class is no longer wanted.
    #[cfg_attr(loom, allow(dead_code))]
    pub(super) fn put(&self, magazine: Magazine) -> Result<(), Magazine> {
        let bit = 1 << magazine.class;
        let mut shelf = lock(&self.shelf);
        let bytes = shelf.bytes + magazine.bytes();
        if bytes > self.limit {
            self.wanted.fetch_and(!bit, Ordering::Relaxed);
            return Err(magazine);
        }
        shelf.bytes = bytes;
        shelf.magazines.push(magazine);
        self.stocked.fetch_or(bit, Ordering::Relaxed);
        self.wanted.fetch_and(!bit, Ordering::Relaxed);
        drop(shelf);
        self.used_now();
        Ok(())
    }

    /// A worker parks: if the depot holds cells and no magazine was given or taken for `idle`
    /// or longer (`now` reads the clock, only then), they go back to the global allocator.
    /// Where the depot is empty, one load.
    #[cfg_attr(loom, allow(dead_code))]
    pub(super) fn release_if_idle(&self, now: impl FnOnce() -> Instant, idle: Duration) {
        if self.stocked.load(Ordering::Relaxed) == 0 {
            return;
        }
        let used = self.epoch + Duration::from_nanos(self.used_ns.load(Ordering::Relaxed));
        if now().saturating_duration_since(used) < idle {
            return;
        }
        self.release_all();
    }

    /// Gives every cell the depot holds back to the global allocator (also when the runtime's
    /// workers have stopped: shutdown's step 6).
    pub(crate) fn release_all(&self) {
        let magazines = {
            let mut shelf = lock(&self.shelf);
            shelf.bytes = 0;
            self.stocked.store(0, Ordering::Relaxed);
            std::mem::take(&mut shelf.magazines)
        };
        // Outside the lock: freeing many cells takes a while.
        magazines.into_iter().for_each(Magazine::free);
    }

    /// Bytes held now.
    pub(crate) fn bytes(&self) -> usize {
        lock(&self.shelf).bytes
    }
}

impl Drop for CellDepot {
    fn drop(&mut self) {
        self.release_all();
    }
}
