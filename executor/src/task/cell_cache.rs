//! The worker threads' caches of freed task cells.
//!
//! Every spawn allocates a task cell and every finished task frees one. Through the system
//! allocator that costs hundreds of instructions per task once thousands of tasks are alive at
//! once: glibc's per-thread cache holds 7 blocks of a size, and past it blocks go through the
//! arena's bins, which are consolidated whenever a large block is asked for (measured: ~400
//! instructions of `malloc` and `free` per task in `spawn_join_local`, docs/benchmarks.md). So
//! a worker keeps the cells freed on its thread, by size, up to a budget of bytes
//! ([`Builder::task_cache_bytes`](crate::Builder::task_cache_bytes)), and the spawns on its
//! thread take from them first: one pop or push of a list threaded through the free cells.
//!
//! Worker threads cache while their [`WorkerCache`] is alive. What a worker keeps is bounded by
//! its budget, and goes back to the global allocator when its thread stops, and when it parks
//! after a second or more in which it took no cell from its cache ([`on_park`]): a worker that
//! only finishes tasks spawned elsewhere (a consumer) would otherwise hold its budget's worth
//! for nothing, and a runtime that has gone quiet gives it back at its next wake-up. (Not
//! sooner: the bursts of spawns a cache is for come and go with parks in between.)
//!
//! A thread that runs `Runtime::block_on` caches too, from its first call on
//! ([`enable_for_block_on`]): the future it drives — the root of `run` and of
//! `#[magpie::main]` — spawns from outside the workers, and awaits the handles, so the cells of
//! those tasks are mostly allocated and freed on that thread (measured: malloc and free were
//! ~340 of the ~1 100 instructions per task that thread spent in `spawn_join_remote`,
//! docs/benchmarks.md). It keeps what it caches across calls — a burst spawned before
//! `block_on` and joined inside it reuses the last one's cells — and gives it back by the same
//! rules as a worker (its parks are `block_on`'s), when it drops a runtime
//! ([`release_for_block_on`]), and when it exits. Every other thread allocates and frees
//! through the global allocator.
//!
//! The workers of a runtime share a [`CellDepot`] (`depot.rs`): a worker that frees more cells of
//! a size than it allocates (it runs the tasks others spawn, stolen) leaves them there, 64 at a
//! time, for a worker that runs out (it spawns them), instead of giving them to the global
//! allocator while the other takes new ones from it.
//!
//! Which cells: sizes up to [`MAX_CACHED_SIZE`] bytes with an alignment of at most 8, in size
//! classes 8 bytes apart (on 64-bit targets a task's header is 8-aligned, so a cell's size is
//! a multiple of 8 and its class is its exact size: caching wastes no byte). A cell of a class
//! is always allocated from the global allocator with the class's layout, cached or not, so a
//! cached block fits any cell of its class and any block of the class can go back with that
//! layout. Larger or over-aligned cells bypass the cache. Loom builds have no cache: nothing
//! here is shared between threads, so there is no interleaving to check, and models stay small.
//! Under Miri the runtime's default budget is 0 (`Builder`), so that a use of a freed task is
//! not hidden by its cell's reuse.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use crate::loom::Arc;

mod depot;
pub(crate) use depot::CellDepot;

/// The largest cell that is cached: a task whose future is up to ~450 bytes, which covers the
/// small tasks spawned in bulk (a bigger future costs more to run than its allocation).
const MAX_CACHED_SIZE: usize = 512;
/// The distance between two size classes: the alignment of every cell.
const CLASS_STEP: usize = 8;
const CLASSES: usize = MAX_CACHED_SIZE / CLASS_STEP;

/// A cached block, as the lists see it: its first word points at the next one.
struct FreeBlock {
    next: Option<NonNull<FreeBlock>>,
}

// A free block holds its link: every class is at least as large and aligned as one.
const _: () = assert!(std::mem::size_of::<FreeBlock>() <= CLASS_STEP);
const _: () = assert!(std::mem::align_of::<FreeBlock>() <= CLASS_STEP);

/// The size class of a cell with `layout`, or `None` if such cells bypass the cache.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > CLASS_STEP || layout.size() == 0 || layout.size() > MAX_CACHED_SIZE {
        return None;
    }
    Some(layout.size().div_ceil(CLASS_STEP) - 1)
}

/// The layout every block of size class `class` is allocated and freed with.
#[inline]
fn class_layout(class: usize) -> Layout {
    match Layout::from_size_align((class + 1) * CLASS_STEP, CLASS_STEP) {
        Ok(layout) => layout,
        Err(_) => unreachable!("a size class is at most MAX_CACHED_SIZE bytes, aligned to 8"),
    }
}

/// Allocates a block for a cell with `layout`: one this thread cached if it has one of the
/// size, a new one from the global allocator otherwise. Aborts like `Box::new` when memory
/// runs out.
// Inlined into each task type's spawn, where `layout` is a constant: the class is worked out
// at compile time, and what is left is a thread-local load and a test.
#[inline]
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    // A task cell is never empty (its header alone is several words), and the global allocator
    // must not be asked for zero bytes. (A constant check once inlined.)
    assert!(layout.size() != 0, "a task cell has a header");
    let Some(class) = class_of(layout) else {
        return global_alloc(layout);
    };
    #[cfg(not(loom))]
    if let Some(block) = thread_cache::pop(class) {
        return block;
    }
    global_alloc(class_layout(class))
}

/// Frees a cell's block: into this thread's cache when it has one (a worker's, or a `block_on`
/// thread's) with room left, to the global allocator otherwise.
///
/// # Safety
///
/// `block` was returned by [`allocate`] with this same `layout`, whatever is in it has been
/// dropped, and nothing uses it again.
#[inline]
pub(crate) unsafe fn deallocate(block: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: `allocate` gave out a block of exactly `layout` for an uncached layout.
        unsafe { alloc::dealloc(block.as_ptr(), layout) };
        return;
    };
    // SAFETY: the block is of `class` (allocated for `layout`, whose class it is) and ours to
    // give away (the caller's contract).
    #[cfg(not(loom))]
    if unsafe { thread_cache::push(class, block) } {
        return;
    }
    // SAFETY: every block of a class comes from the global allocator with the class's layout
    // (`allocate`), whether it was cached in between or not.
    unsafe { alloc::dealloc(block.as_ptr(), class_layout(class)) };
}

fn global_alloc(layout: Layout) -> NonNull<u8> {
    // SAFETY: `layout` is a cell's, whose size `allocate` checked is not zero, or a class
    // layout, at least 8 bytes.
    let block = unsafe { alloc::alloc(layout) };
    match NonNull::new(block) {
        Some(block) => block,
        None => alloc::handle_alloc_error(layout),
    }
}

/// Turns the cache on for the worker thread that holds it; dropping it (when the worker stops,
/// or unwinds) frees every cached block and turns the cache off again. It keeps the runtime's
/// depot alive while the thread's cache points at it.
pub(crate) struct WorkerCache {
    _depot: Option<Arc<CellDepot>>,
}

/// The worker, or the `block_on`, on this thread goes to sleep: if it has taken no cell from
/// its cache for [`IDLE_RELEASE`] or more, the cache goes back to the global allocator (see the
/// module's documentation). Where nothing is cached, a thread-local load and a test.
pub(crate) fn on_park() {
    #[cfg(not(loom))]
    thread_cache::on_park(std::time::Instant::now);
}

/// The bytes of freed cells this thread's cache holds now (0 where it has none).
pub(crate) fn cached_bytes() -> usize {
    #[cfg(not(loom))]
    return thread_cache::cached_bytes();
    #[cfg(loom)]
    return 0;
}

/// How long a worker's cache may go unused before the worker gives it back at a park: long
/// against the gaps between bursts of spawns (microseconds to milliseconds), short against a
/// service's quiet periods.
#[cfg(not(loom))]
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(1);

impl WorkerCache {
    /// Caches up to `budget` bytes of freed cells on this thread (0: none), exchanging them
    /// with the runtime's other workers through `depot` when there is one. One at a time per
    /// thread.
    pub(crate) fn enable(budget: usize, depot: Option<Arc<CellDepot>>) -> WorkerCache {
        #[cfg(not(loom))]
        thread_cache::enable_worker(budget, depot.as_deref().map(NonNull::from));
        #[cfg(loom)]
        let _ = budget;
        WorkerCache { _depot: depot }
    }
}

impl Drop for WorkerCache {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        thread_cache::release_worker();
    }
}

/// This thread, which is not a worker, runs `Runtime::block_on` of a runtime whose workers
/// cache up to `budget` bytes: it caches up to as much, from now until it drops a runtime
/// ([`release_for_block_on`]) or exits. Called again, it takes the new budget (freeing what is
/// over it); `0` turns its cache off. Does nothing on a worker thread.
pub(crate) fn enable_for_block_on(budget: usize) {
    #[cfg(not(loom))]
    thread_cache::enable_block_on(budget);
    #[cfg(loom)]
    let _ = budget;
}

/// This thread dropped a runtime: the cache that `Runtime::block_on` turned on here (if any)
/// goes back to the global allocator and is off until its next call. A worker's cache is left
/// alone.
pub(crate) fn release_for_block_on() {
    #[cfg(not(loom))]
    thread_cache::release_block_on();
}

#[cfg(not(loom))]
mod thread_cache {
    use std::cell::Cell;
    use std::ptr::NonNull;
    use std::time::Instant;

    use super::depot::{magazine_bytes, Magazine, MAGAZINE_CELLS};
    use super::{class_layout, CellDepot, FreeBlock, CLASSES, IDLE_RELEASE};

    /// Who turned this thread's cache on.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Owner {
        /// Nobody: the budget is 0.
        Off,
        /// The worker loop, while its `WorkerCache` lives.
        Worker,
        /// `Runtime::block_on`, until the thread drops a runtime or exits.
        BlockOn,
    }

    struct ThreadCache {
        owner: Cell<Owner>,
        /// How many bytes this thread may keep: 0 while `owner` is `Off`.
        budget: Cell<usize>,
        /// How many it keeps now.
        cached: Cell<usize>,
        /// Each class's list of free blocks.
        heads: [Cell<Option<NonNull<FreeBlock>>>; CLASSES],
        /// How many blocks each list holds.
        lens: [Cell<usize>; CLASSES],
        /// A worker's runtime's depot. Valid while set: the `WorkerCache` that set it holds
        /// the depot's `Arc`, and clears it (`release_worker`) before that `Arc` goes.
        depot: Cell<Option<NonNull<CellDepot>>>,
        /// Whether a cell was taken from the cache since the worker last parked.
        drawn: Cell<bool>,
        /// When the cache was last known in use: the last park that found `drawn` set, or
        /// the worker's start. (The clock is read at parks only, not at each cell.)
        used_at: Cell<Option<Instant>>,
    }

    std::thread_local! {
        // No destructor: a worker empties its lists when its `WorkerCache` goes, a `block_on`
        // thread when `AT_EXIT` goes. (A `Drop` here would cost every access a registration
        // check.)
        static CACHE: ThreadCache = const {
            ThreadCache {
                owner: Cell::new(Owner::Off),
                budget: Cell::new(0),
                cached: Cell::new(0),
                heads: [const { Cell::new(None) }; CLASSES],
                lens: [const { Cell::new(0) }; CLASSES],
                depot: Cell::new(None),
                drawn: Cell::new(false),
                used_at: Cell::new(None),
            }
        };
    }

    impl ThreadCache {
        /// The runtime's depot, if this is a worker's cache.
        fn depot(&self) -> Option<&CellDepot> {
            // SAFETY: a set pointer is valid (see the field): the `WorkerCache` that set it
            // keeps the depot alive until it clears it, and the reference does not outlive
            // this borrow of the thread's cache, within which nothing clears it.
            self.depot.get().map(|depot| unsafe { depot.as_ref() })
        }

        /// This thread's list of `class` is empty: takes a magazine from the depot as the new
        /// list if the budget has room for it (step 1 of `depot.rs`), and returns its first
        /// block, still listed.
        #[cold]
        fn refill(&self, class: usize) -> Option<NonNull<FreeBlock>> {
            let depot = self.depot()?;
            let bytes = magazine_bytes(class);
            if self.cached.get() + bytes > self.budget.get() {
                return None;
            }
            let magazine = depot.take(class)?;
            debug_assert!(self.heads[class].get().is_none());
            self.heads[class].set(Some(magazine.head));
            self.lens[class].set(MAGAZINE_CELLS);
            self.cached.set(self.cached.get() + bytes);
            Some(magazine.head)
        }

        /// A worker lacks cells of `class`, and this thread's list of it holds at least a
        /// magazine's worth: gives the depot the first [`MAGAZINE_CELLS`] (step 2).
        #[cold]
        fn give_to_depot(&self, class: usize, depot: &CellDepot) {
            let Some(head) = self.heads[class].get() else {
                return;
            };
            debug_assert!(self.lens[class].get() >= MAGAZINE_CELLS);
            let mut last = head;
            for _ in 1..MAGAZINE_CELLS {
                // SAFETY: a listed block of ours (see `pop`): its link is readable.
                match unsafe { last.as_ref().next } {
                    Some(next) => last = next,
                    None => {
                        // Not reached: the list holds `lens` blocks. Were it, nothing is given.
                        debug_assert!(false, "a list shorter than its count");
                        return;
                    }
                }
            }
            // SAFETY: `last` is a listed block of ours (above); nothing else refers to it.
            let rest = unsafe { (*last.as_ptr()).next.take() };
            // The list goes on from the rest before the magazine leaves: no list of this thread
            // reaches a cell the depot may hand to another thread.
            self.heads[class].set(rest);
            self.lens[class].set(self.lens[class].get() - MAGAZINE_CELLS);
            self.cached.set(self.cached.get() - magazine_bytes(class));
            if let Err(magazine) = depot.put(Magazine { class, head }) {
                // At the depot's limit: the cells come back to the front of the list.
                // SAFETY: the refused magazine is ours again, `last` its last block.
                unsafe { (*last.as_ptr()).next = self.heads[class].get() };
                self.heads[class].set(Some(magazine.head));
                self.lens[class].set(self.lens[class].get() + MAGAZINE_CELLS);
                self.cached.set(self.cached.get() + magazine_bytes(class));
            }
        }
    }

    /// A cached block of `class`, if this thread has one.
    #[inline]
    pub(super) fn pop(class: usize) -> Option<NonNull<u8>> {
        CACHE
            .try_with(|cache| {
                let block = match cache.heads[class].get() {
                    Some(block) => block,
                    None => cache.refill(class)?,
                };
                // SAFETY: a listed block is a free block of this class that `push` linked (or
                // a worker's `push` on another thread, whose list came through the depot's
                // lock) and that only this thread's lists reach; its first word is the link.
                let next = unsafe { block.as_ref().next };
                cache.heads[class].set(next);
                cache.lens[class].set(cache.lens[class].get() - 1);
                cache
                    .cached
                    .set(cache.cached.get() - class_layout(class).size());
                cache.drawn.set(true);
                Some(block.cast::<u8>())
            })
            .ok()
            .flatten()
    }

    /// Keeps `block` if this thread caches and has room for it; returns whether it did.
    ///
    /// # Safety
    ///
    /// `block` is an unused block of size class `class`, allocated with `class_layout(class)`,
    /// and the caller gives it away.
    #[inline]
    pub(super) unsafe fn push(class: usize, block: NonNull<u8>) -> bool {
        CACHE
            .try_with(|cache| {
                if cache.lens[class].get() >= MAGAZINE_CELLS {
                    if let Some(depot) = cache.depot() {
                        if depot.wants(class) {
                            cache.give_to_depot(class, depot);
                        }
                    }
                }
                let cached = cache.cached.get() + class_layout(class).size();
                if cached > cache.budget.get() {
                    return false;
                }
                let block = block.cast::<FreeBlock>();
                // SAFETY: the block is ours (the caller's contract), and at least as large and
                // aligned as a `FreeBlock` (checked at compile time above).
                unsafe {
                    block.as_ptr().write(FreeBlock {
                        next: cache.heads[class].get(),
                    })
                };
                cache.heads[class].set(Some(block));
                cache.lens[class].set(cache.lens[class].get() + 1);
                cache.cached.set(cached);
                true
            })
            // The thread is going away (its thread-locals are being destroyed): not kept.
            .unwrap_or(false)
    }

    /// Gives the cache to `owner` with `budget` (`Off` and 0 to turn it off), counting its
    /// idle time from now.
    fn set_owner(owner: Owner, budget: usize) {
        // (`try_with` fails only where thread-locals are OS keys, during the thread's
        // teardown: then nothing is cached.)
        let _ = CACHE.try_with(|cache| {
            cache.owner.set(owner);
            cache.budget.set(budget);
            cache.drawn.set(false);
            cache.used_at.set((budget > 0).then(Instant::now));
        });
    }

    fn owner() -> Owner {
        CACHE
            .try_with(|cache| cache.owner.get())
            .unwrap_or(Owner::Off)
    }

    /// See [`super::WorkerCache::enable`]; `depot` stays valid until `release_worker`.
    pub(super) fn enable_worker(budget: usize, depot: Option<NonNull<CellDepot>>) {
        // A worker thread is started by its runtime and runs no `block_on` (which refuses to
        // run on a worker) — but its `on_thread_start` hook, which runs before this, may have
        // run another runtime's `block_on`, which turned the cache on for itself: what that
        // kept goes back first, and the cache is the worker's from now on.
        debug_assert_ne!(owner(), Owner::Worker, "one WorkerCache per thread");
        release_block_on();
        set_owner(Owner::Worker, budget);
        let _ = CACHE.try_with(|cache| cache.depot.set(depot));
    }

    /// Frees every cached block and keeps nothing from now on; forgets the depot.
    pub(super) fn release_worker() {
        set_owner(Owner::Off, 0);
        let _ = CACHE.try_with(|cache| cache.depot.set(None));
        free_all();
    }

    /// See [`super::enable_for_block_on`].
    pub(super) fn enable_block_on(budget: usize) {
        match owner() {
            Owner::Worker => {}
            Owner::Off if budget == 0 => {}
            Owner::Off => {
                // First: so that the thread's exit frees what it will cache. During the
                // thread's teardown (a `block_on` in a thread-local's destructor) it may be gone
                // already: then nothing would free the cache, so it stays off.
                if AT_EXIT.try_with(|_| {}).is_ok() {
                    set_owner(Owner::BlockOn, budget);
                }
            }
            Owner::BlockOn => {
                let _ = CACHE.try_with(|cache| {
                    if budget == 0 {
                        cache.owner.set(Owner::Off);
                    }
                    cache.budget.set(budget);
                    if cache.cached.get() > budget {
                        free_all();
                    }
                });
            }
        }
    }

    /// See [`super::release_for_block_on`].
    pub(super) fn release_block_on() {
        if owner() == Owner::BlockOn {
            set_owner(Owner::Off, 0);
            free_all();
        }
    }

    /// Frees a `block_on` thread's cache when the thread exits.
    struct ReleaseAtExit;

    impl Drop for ReleaseAtExit {
        fn drop(&mut self) {
            // Where thread-locals are native (Linux, macOS, Windows), `CACHE`, which has no
            // destructor, is still there while this one runs, and a cell freed by a later
            // destructor finds the cache off and goes to the allocator. Where they are OS keys,
            // whose destructors run in no set order, `CACHE` may be gone first: then what it
            // held (at most the budget) cannot be reached, and stays allocated.
            release_block_on();
        }
    }

    std::thread_local! {
        /// Touched once per thread, when `block_on` turns the cache on, which registers its
        /// destructor; never on the hot path.
        static AT_EXIT: ReleaseAtExit = const { ReleaseAtExit };
    }

    /// See [`super::on_park`]; `now` reads the clock (a parameter for the tests).
    pub(super) fn on_park(now: impl FnOnce() -> Instant) {
        // The clock, read at most once, and only where something may be given back.
        let mut now = Some(now);
        let mut read = None;
        let mut now =
            move || *read.get_or_insert_with(|| now.take().map_or_else(Instant::now, |f| f()));
        let idle = CACHE.try_with(|cache| {
            let drawn = cache.drawn.replace(false);
            if cache.cached.get() == 0 {
                // Nothing to give back.
                return false;
            }
            let now = now();
            if drawn {
                cache.used_at.set(Some(now));
                return false;
            }
            cache.used_at.get().map_or(true, |used| {
                now.saturating_duration_since(used) >= IDLE_RELEASE
            })
        });
        if idle == Ok(true) {
            free_all();
        }
        // The depot's own rule, whatever this worker holds (`depot.rs`).
        let _ = CACHE.try_with(|cache| {
            if let Some(depot) = cache.depot() {
                depot.release_if_idle(&mut now, IDLE_RELEASE);
            }
        });
    }

    /// Frees every cached block; the budget stays.
    fn free_all() {
        let _ = CACHE.try_with(|cache| {
            for (class, head) in cache.heads.iter().enumerate() {
                cache.lens[class].set(0);
                let mut next = head.take();
                while let Some(block) = next {
                    // SAFETY: a listed block (see `pop`): its link is readable, and nothing
                    // else refers to the block, which is freed right after with the layout it
                    // was allocated with (`super::allocate`).
                    unsafe {
                        next = block.as_ref().next;
                        std::alloc::dealloc(block.as_ptr().cast(), class_layout(class));
                    }
                }
            }
            // Last: the lists are empty now.
            cache.cached.set(0);
        });
    }

    /// Bytes cached on this thread now.
    #[cfg(test)]
    pub(super) fn cached() -> usize {
        CACHE.with(|cache| cache.cached.get())
    }

    /// See [`super::cached_bytes`].
    pub(super) fn cached_bytes() -> usize {
        CACHE.try_with(|cache| cache.cached.get()).unwrap_or(0)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Instant;

    use super::*;

    fn cell_layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn classes_are_exact_sizes_up_to_the_limit() {
        assert_eq!(
            class_layout(class_of(cell_layout(104)).unwrap()).size(),
            104
        );
        assert_eq!(class_layout(class_of(cell_layout(8)).unwrap()).size(), 8);
        assert_eq!(
            class_layout(class_of(cell_layout(512)).unwrap()).size(),
            512
        );
        assert_eq!(class_of(cell_layout(520)), None);
        assert_eq!(class_of(Layout::from_size_align(128, 16).unwrap()), None);
        // Smaller alignments round up to the step.
        assert_eq!(
            class_layout(class_of(Layout::from_size_align(13, 1).unwrap()).unwrap()).size(),
            16
        );
    }

    #[test]
    fn a_workers_freed_cell_is_reused_by_its_next_allocation_of_that_size() {
        let _worker = WorkerCache::enable(1 << 20, None);
        let layout = cell_layout(104);
        let first = allocate(layout);
        // SAFETY: from `allocate` with this layout, unused.
        unsafe { deallocate(first, layout) };
        assert_eq!(thread_cache::cached(), 104);
        let other_size = allocate(cell_layout(112));
        assert_ne!(other_size, first, "classes do not share blocks");
        let again = allocate(layout);
        assert_eq!(again, first, "the cached block comes back");
        assert_eq!(thread_cache::cached(), 0);
        // SAFETY: as above.
        unsafe {
            deallocate(again, layout);
            deallocate(other_size, cell_layout(112));
        }
        assert_eq!(thread_cache::cached(), 216);
    }

    #[test]
    fn the_budget_bounds_what_a_worker_keeps() {
        let _worker = WorkerCache::enable(2 * 104, None);
        let layout = cell_layout(104);
        let blocks: Vec<_> = (0..3).map(|_| allocate(layout)).collect();
        for block in blocks {
            // SAFETY: from `allocate` with this layout, unused.
            unsafe { deallocate(block, layout) };
        }
        assert_eq!(thread_cache::cached(), 2 * 104, "the third block went back");
    }

    /// Allocates and frees `count` cells of `size` bytes, all allocated before any is freed.
    fn churn(size: usize, count: usize) {
        let layout = cell_layout(size);
        let blocks: Vec<_> = (0..count).map(|_| allocate(layout)).collect();
        for block in blocks {
            // SAFETY: from `allocate` with this layout, unused.
            unsafe { deallocate(block, layout) };
        }
    }

    /// Runs `f` on a thread of its own, so that what it turns on dies with it (a test thread
    /// may run other tests after this one).
    fn on_new_thread(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(f).join().unwrap();
    }

    #[test]
    fn threads_that_are_neither_workers_nor_in_block_on_keep_nothing() {
        on_new_thread(|| {
            churn(104, 1);
            assert_eq!(thread_cache::cached(), 0);
        });
    }

    #[test]
    fn a_block_on_thread_keeps_cells_until_it_drops_a_runtime() {
        on_new_thread(|| {
            enable_for_block_on(1 << 20);
            churn(104, 3);
            assert_eq!(thread_cache::cached(), 312);
            // A second `block_on` of the same budget keeps what is there.
            enable_for_block_on(1 << 20);
            assert_eq!(thread_cache::cached(), 312);
            release_for_block_on();
            assert_eq!(thread_cache::cached(), 0);
            churn(104, 1);
            assert_eq!(
                thread_cache::cached(),
                0,
                "off once the runtime was dropped"
            );
            enable_for_block_on(1 << 20);
            churn(104, 1);
            assert_eq!(thread_cache::cached(), 104, "on again at the next block_on");
        });
    }

    #[test]
    fn a_block_on_thread_takes_the_budget_of_its_latest_runtime() {
        on_new_thread(|| {
            enable_for_block_on(1 << 20);
            churn(104, 3);
            enable_for_block_on(2 * 104);
            assert!(
                thread_cache::cached() <= 2 * 104,
                "over the new budget: trimmed"
            );
            churn(104, 3);
            assert_eq!(thread_cache::cached(), 2 * 104, "and kept within it");
            enable_for_block_on(0);
            assert_eq!(thread_cache::cached(), 0);
            churn(104, 1);
            assert_eq!(thread_cache::cached(), 0, "a budget of 0 turns it off");
        });
    }

    #[test]
    fn a_workers_cache_is_not_the_block_on_cache() {
        on_new_thread(|| {
            let worker = WorkerCache::enable(2 * 104, None);
            // Neither a block_on (which a worker refuses) nor a runtime's drop on a worker
            // thread touches the worker's budget or cells.
            enable_for_block_on(1 << 20);
            churn(104, 3);
            assert_eq!(thread_cache::cached(), 2 * 104);
            release_for_block_on();
            assert_eq!(thread_cache::cached(), 2 * 104);
            drop(worker);
            assert_eq!(thread_cache::cached(), 0);
        });
    }

    #[test]
    fn a_block_on_thread_gives_its_cache_back_at_a_park_after_a_second_without_drawing() {
        on_new_thread(|| {
            enable_for_block_on(1 << 20);
            churn(64, 1);
            let later = Instant::now() + IDLE_RELEASE;
            thread_cache::on_park(move || later);
            assert_eq!(thread_cache::cached(), 0);
            churn(64, 1);
            assert_eq!(thread_cache::cached(), 64, "still on: it keeps cells again");
        });
    }

    #[test]
    fn a_stopping_worker_frees_its_cache_and_keeps_nothing_after() {
        let layout = cell_layout(64);
        let worker = WorkerCache::enable(1 << 20, None);
        let blocks: Vec<_> = (0..10).map(|_| allocate(layout)).collect();
        for block in blocks {
            // SAFETY: from `allocate` with this layout, unused.
            unsafe { deallocate(block, layout) };
        }
        assert_eq!(thread_cache::cached(), 640);
        drop(worker);
        assert_eq!(thread_cache::cached(), 0);
        let block = allocate(layout);
        // SAFETY: as above.
        unsafe { deallocate(block, layout) };
        assert_eq!(thread_cache::cached(), 0, "off once the worker stopped");
    }

    #[test]
    fn large_and_over_aligned_cells_bypass_the_cache() {
        let _worker = WorkerCache::enable(1 << 20, None);
        for layout in [cell_layout(4096), Layout::from_size_align(128, 16).unwrap()] {
            let block = allocate(layout);
            assert_eq!(block.as_ptr().align_offset(layout.align()), 0);
            // SAFETY: from `allocate` with this layout, unused.
            unsafe { deallocate(block, layout) };
        }
        assert_eq!(thread_cache::cached(), 0);
    }

    #[test]
    fn a_small_alignment_goes_through_its_rounded_class_and_back() {
        let _worker = WorkerCache::enable(1 << 20, None);
        let layout = Layout::from_size_align(13, 1).unwrap();
        let block = allocate(layout);
        // SAFETY: the 13 bytes of a fresh block are ours to write.
        unsafe { block.as_ptr().write_bytes(0xa5, 13) };
        // SAFETY: from `allocate` with this layout, unused.
        unsafe { deallocate(block, layout) };
        assert_eq!(thread_cache::cached(), 16, "kept in the 16-byte class");
        assert_eq!(allocate(layout), block);
        // SAFETY: as above.
        unsafe { deallocate(block, layout) };
    }

    /// A block moved to another thread.
    struct SendBlock(NonNull<u8>);
    // SAFETY: a block is plain memory that no one else refers to.
    unsafe impl Send for SendBlock {}

    #[test]
    fn blocks_from_other_threads_and_from_before_the_cache_are_kept_and_freed() {
        let layout = cell_layout(104);
        // Allocated with no cache on: by this thread before it has one, and by another thread.
        let before = allocate(layout);
        let elsewhere = std::thread::spawn(move || SendBlock(allocate(layout)))
            .join()
            .unwrap()
            .0;
        let worker = WorkerCache::enable(1 << 20, None);
        // SAFETY: both from `allocate` with this layout, unused.
        unsafe {
            deallocate(before, layout);
            deallocate(elsewhere, layout);
        }
        assert_eq!(thread_cache::cached(), 208);
        // Last in, first out.
        assert_eq!(allocate(layout), elsewhere);
        // SAFETY: as above.
        unsafe { deallocate(elsewhere, layout) };
        // The worker stops: both go back to the global allocator (Miri checks the layouts).
        drop(worker);
        assert_eq!(thread_cache::cached(), 0);
    }

    #[test]
    fn a_worker_gives_its_cache_back_at_a_park_after_a_second_without_drawing() {
        let _worker = WorkerCache::enable(1 << 20, None);
        let layout = cell_layout(64);
        let free_one = || {
            let block = allocate(layout);
            // SAFETY: from `allocate` with this layout, unused.
            unsafe { deallocate(block, layout) };
        };
        let start = Instant::now();
        let at = |ms: u64| move || start + std::time::Duration::from_millis(ms);
        free_one();
        assert_eq!(thread_cache::cached(), 64);
        // The block comes from the cache this time: drawn since the last park.
        free_one();
        thread_cache::on_park(at(500));
        assert_eq!(thread_cache::cached(), 64, "drawn before this park: kept");
        thread_cache::on_park(at(1400));
        assert_eq!(thread_cache::cached(), 64, "0.9 s without drawing: kept");
        thread_cache::on_park(at(1500));
        assert_eq!(thread_cache::cached(), 0, "1 s without drawing: given back");
        // Still a worker's cache: it keeps blocks again.
        free_one();
        assert_eq!(thread_cache::cached(), 64);
    }

    /// Allocates `count` cells of `size` bytes on a worker thread of its own with `depot`, then
    /// frees them all; returns their addresses and what the thread cached after the frees.
    fn free_many_on_a_worker(depot: &Arc<CellDepot>, size: usize, count: usize) -> Vec<usize> {
        let depot = depot.clone();
        std::thread::spawn(move || {
            let _worker = WorkerCache::enable(1 << 20, Some(depot));
            let layout = cell_layout(size);
            let blocks: Vec<_> = (0..count).map(|_| allocate(layout)).collect();
            for &block in &blocks {
                // SAFETY: from `allocate` with this layout, unused.
                unsafe { deallocate(block, layout) };
            }
            blocks.iter().map(|block| block.as_ptr() as usize).collect()
        })
        .join()
        .unwrap()
    }

    /// A worker that allocates one cell of `size` on a thread of its own with `depot` (its list
    /// is empty: it asks the depot), frees it, and runs `then` before it stops.
    fn allocate_once_on_a_worker(
        depot: &Arc<CellDepot>,
        size: usize,
        then: impl FnOnce(NonNull<u8>) + Send + 'static,
    ) {
        let depot = depot.clone();
        on_new_thread(move || {
            let _worker = WorkerCache::enable(1 << 20, Some(depot));
            let layout = cell_layout(size);
            let block = allocate(layout);
            then(block);
            // SAFETY: from `allocate` with this layout, unused.
            unsafe { deallocate(block, layout) };
        });
    }

    #[test]
    fn a_worker_short_of_cells_takes_the_list_another_worker_freed() {
        let depot = Arc::new(CellDepot::new(1 << 20));
        let class = class_of(cell_layout(104)).unwrap();
        // A worker finds no cell of the size: it asks the depot, which has none yet.
        allocate_once_on_a_worker(&depot, 104, |_| {});
        assert!(depot.wants(class));
        // Another worker frees a magazine's worth and one more: at the last free its list is
        // long enough and the class wanted, so the list goes to the depot.
        let freed = free_many_on_a_worker(&depot, 104, depot::MAGAZINE_CELLS + 1);
        assert_eq!(depot.bytes(), depot::MAGAZINE_CELLS * 104);
        assert!(!depot.wants(class), "no longer wanted once stocked");
        // The first worker's next miss takes the whole list: one of those cells, the rest
        // cached, nothing left in the depot.
        let depot_after = depot.clone();
        allocate_once_on_a_worker(&depot, 104, move |block| {
            assert!(
                freed.contains(&(block.as_ptr() as usize)),
                "a cell the other worker freed"
            );
            assert_eq!(thread_cache::cached(), (depot::MAGAZINE_CELLS - 1) * 104);
            assert_eq!(depot_after.bytes(), 0);
        });
        // Cells of a size no worker missed stay with the worker that frees them. (Allocated
        // here, on a thread with no cache, so that no worker's miss asks for the size.)
        let layout = cell_layout(64);
        let blocks: Vec<_> = (0..2 * depot::MAGAZINE_CELLS)
            .map(|_| SendBlock(allocate(layout)))
            .collect();
        let depot_in = depot.clone();
        on_new_thread(move || {
            let _worker = WorkerCache::enable(1 << 20, Some(depot_in.clone()));
            for block in blocks {
                // SAFETY: from `allocate` with this layout, unused.
                unsafe { deallocate(block.0, layout) };
            }
            assert_eq!(thread_cache::cached(), 2 * depot::MAGAZINE_CELLS * 64);
            assert_eq!(depot_in.bytes(), 0);
        });
    }

    #[test]
    fn the_depot_refuses_lists_over_its_limit_and_the_worker_keeps_them() {
        let depot = Arc::new(CellDepot::new(depot::MAGAZINE_CELLS * 104 - 1));
        allocate_once_on_a_worker(&depot, 104, |_| {});
        let depot_in = depot.clone();
        on_new_thread(move || {
            let _worker = WorkerCache::enable(1 << 20, Some(depot_in.clone()));
            churn(104, depot::MAGAZINE_CELLS + 1);
            assert_eq!(depot_in.bytes(), 0);
            assert_eq!(
                thread_cache::cached(),
                (depot::MAGAZINE_CELLS + 1) * 104,
                "kept by the worker"
            );
            // Refused once, the size is no longer wanted: later frees do not try again.
            assert!(!depot_in.wants(class_of(cell_layout(104)).unwrap()));
            churn(104, 1);
            assert_eq!(thread_cache::cached(), (depot::MAGAZINE_CELLS + 1) * 104);
        });
    }

    #[test]
    fn a_parking_worker_frees_the_depot_once_no_worker_gave_or_took_for_a_second() {
        let depot = Arc::new(CellDepot::new(1 << 20));
        let stock = |depot: &Arc<CellDepot>| {
            allocate_once_on_a_worker(depot, 104, |_| {});
            free_many_on_a_worker(depot, 104, depot::MAGAZINE_CELLS + 1);
            assert_eq!(depot.bytes(), depot::MAGAZINE_CELLS * 104);
        };
        // A worker parks at `at` (its clock's reading; `None`: a whole `IDLE_RELEASE` after
        // its own now), holding a cell of its own or nothing. The times of the parks that keep
        // the depot are taken around `stock`, so that no stall of this thread (a thread start
        // or join, under load) moves them past the release.
        let park = |depot: &Arc<CellDepot>, at: Option<Instant>, holding: bool| {
            let depot = depot.clone();
            on_new_thread(move || {
                let _worker = WorkerCache::enable(1 << 20, Some(depot));
                if holding {
                    churn(64, 1);
                }
                let at = at.unwrap_or_else(|| Instant::now() + IDLE_RELEASE);
                thread_cache::on_park(move || at);
            });
        };
        let before_use = Instant::now();
        stock(&depot);
        let after_use = Instant::now();
        park(&depot, Some(after_use), true);
        assert_eq!(
            depot.bytes(),
            depot::MAGAZINE_CELLS * 104,
            "just used: kept"
        );
        park(&depot, Some(before_use + IDLE_RELEASE / 2), true);
        assert_eq!(
            depot.bytes(),
            depot::MAGAZINE_CELLS * 104,
            "half a second: kept"
        );
        park(&depot, None, true);
        assert_eq!(depot.bytes(), 0, "a second without use: freed");
        // Also by a worker that holds nothing itself.
        stock(&depot);
        park(&depot, None, false);
        assert_eq!(depot.bytes(), 0);
        // Dropped with cells in it, it frees them (Miri checks that nothing leaks).
        stock(&depot);
        drop(depot);
    }

    #[test]
    fn a_worker_takes_no_magazine_its_budget_has_no_room_for() {
        let depot = Arc::new(CellDepot::new(1 << 20));
        allocate_once_on_a_worker(&depot, 104, |_| {});
        free_many_on_a_worker(&depot, 104, depot::MAGAZINE_CELLS + 1);
        let depot_in = depot.clone();
        on_new_thread(move || {
            // Room for less than a magazine: the miss goes to the global allocator.
            let _worker =
                WorkerCache::enable(depot::MAGAZINE_CELLS * 104 - 1, Some(depot_in.clone()));
            churn(104, 1);
            assert_eq!(
                depot_in.bytes(),
                depot::MAGAZINE_CELLS * 104,
                "left in the depot"
            );
            assert_eq!(thread_cache::cached(), 104);
        });
    }

    #[test]
    fn a_worker_that_never_draws_gives_its_cache_back_a_second_after_it_started() {
        let _worker = WorkerCache::enable(1 << 20, None);
        let layout = cell_layout(64);
        let block = allocate(layout);
        // SAFETY: from `allocate` with this layout, unused.
        unsafe { deallocate(block, layout) };
        let later = Instant::now() + IDLE_RELEASE;
        thread_cache::on_park(move || later);
        assert_eq!(thread_cache::cached(), 0);
    }
}
