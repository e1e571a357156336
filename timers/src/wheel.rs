//! A hierarchical timing wheel over integer ticks: O(1) insert and cancel, amortised O(1) fire.
//!
//! The wheel has [`LEVELS`] levels of 64 slots. Level `l` slots are `64^l` ticks wide. A timer
//! due at tick `t` lives on the level of the highest 6-bit digit in which `t` differs from the
//! wheel's current tick `elapsed`, in the slot named by `t`'s digit on that level. Eleven
//! levels cover all 64 bits of a tick, so every `u64` tick has a place and nothing overflows.
//!
//! Entries live in a slab (`Vec` plus free list) and each slot is an intrusive doubly linked
//! list of slab indices, so removal is an unlink. When time reaches a slot on a level above 0,
//! its entries are re-placed on lower levels ("cascade"); an entry cascades at most once per
//! level, which bounds the amortised firing cost.
//!
//! This module is single-threaded and self-contained (the store locks it per shard), so the
//! store micro-benchmark includes it directly.

use std::task::Waker;

/// Bits of a tick consumed per level.
const SLOT_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Enough levels for `LEVELS * SLOT_BITS >= 64`: every `u64` tick has a slot.
const LEVELS: usize = 11;
/// The "no entry" link.
const NIL: u32 = u32::MAX;

/// Names one registered timer: its slab index plus the allocation number that made it.
///
/// Allocation numbers are never reused within a wheel (nor across its `reset`), so a key whose timer already fired or
/// was removed can never match a later timer that reused the slab index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    allocation: u64,
}

/// One slab cell: a live timer while `waker` is `Some`, else a free cell.
#[derive(Debug)]
struct Entry {
    tick: u64,
    waker: Option<Waker>,
    allocation: u64,
    prev: u32,
    /// Next entry in the slot list, or the next free cell while free.
    next: u32,
    level: u8,
    slot: u8,
}

/// A hierarchical timing wheel of wakers keyed by tick.
#[derive(Debug)]
pub(crate) struct Wheel {
    /// Every timer due at or before this tick has been fired.
    elapsed: u64,
    /// Bit `s` of `occupied[l]` is set when slot `s` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    heads: [[u32; SLOTS]; LEVELS],
    entries: Vec<Entry>,
    free: u32,
    len: usize,
    allocations: u64,
}

/// The slab is released when the wheel empties with more than this many cells allocated, so a
/// burst of a million timers does not pin its memory forever. Smaller under Miri, so that its
/// test reaches it with few timers (Miri interprets every instruction).
const SHRINK_ABOVE: usize = if cfg!(miri) { 1 << 10 } else { 1 << 16 };

impl Default for Wheel {
    fn default() -> Self {
        Self::new()
    }
}

impl Wheel {
    /// An empty wheel whose current tick is 0.
    pub(crate) fn new() -> Self {
        Wheel {
            elapsed: 0,
            occupied: [0; LEVELS],
            heads: [[NIL; SLOTS]; LEVELS],
            entries: Vec::new(),
            free: NIL,
            len: 0,
            allocations: 0,
        }
    }

    /// Back to a new wheel's state (no timer, tick 0), keeping the allocation numbers going:
    /// a key from before the reset never matches a timer inserted after it.
    pub(crate) fn reset(&mut self) {
        let allocations = self.allocations;
        *self = Wheel::new();
        self.allocations = allocations;
    }

    /// Number of pending timers (kept up to date by insert, remove and fire; summed over the
    /// shards by the store's `TimerDriver::pending_timers`).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The tick up to which every timer has been fired.
    #[cfg_attr(not(test), allow(dead_code))] // Used by tests.
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Registers `waker` to fire at `tick`.
    ///
    /// Returns the waker back as `Err` without registering when `tick` is already due
    /// (`tick <= elapsed`).
    pub(crate) fn insert(&mut self, tick: u64, waker: Waker) -> Result<Key, Waker> {
        if tick <= self.elapsed {
            return Err(waker);
        }
        let allocation = self.allocations;
        self.allocations += 1;
        let entry = Entry {
            tick,
            waker: Some(waker),
            allocation,
            prev: NIL,
            next: NIL,
            level: 0,
            slot: 0,
        };
        let index = if self.free != NIL {
            let index = self.free;
            self.free = self.entries[index as usize].next;
            self.entries[index as usize] = entry;
            index
        } else {
            let index = u32::try_from(self.entries.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("more than 4 294 967 294 timers pending in one shard");
            self.entries.push(entry);
            index
        };
        self.len += 1;
        self.link(index);
        Ok(Key { index, allocation })
    }

    /// Removes the timer named by `key`, returning its waker, or `None` if it already fired or
    /// was removed.
    pub(crate) fn remove(&mut self, key: Key) -> Option<Waker> {
        if !self.is_live(key) {
            return None;
        }
        self.unlink(key.index);
        let waker = self.release(key.index);
        self.shrink_if_idle();
        Some(waker)
    }

    /// The waker of the live timer named by `key`, or `None` if it already fired or was removed.
    pub(crate) fn waker_mut(&mut self, key: Key) -> Option<&mut Waker> {
        if !self.is_live(key) {
            return None;
        }
        self.entries[key.index as usize].waker.as_mut()
    }

    /// Moves the live timer named by `key` to `tick`.
    ///
    /// Returns `Ok(true)` when moved, `Ok(false)` when the timer is not live (fired or removed),
    /// and `Err(waker)` when `tick` is already due: the timer is then removed and its waker
    /// handed back for the caller to wake.
    pub(crate) fn reschedule(&mut self, key: Key, tick: u64) -> Result<bool, Waker> {
        if !self.is_live(key) {
            return Ok(false);
        }
        self.unlink(key.index);
        if tick <= self.elapsed {
            return Err(self.release(key.index));
        }
        self.entries[key.index as usize].tick = tick;
        self.link(key.index);
        Ok(true)
    }

    /// Fires every timer due at or before `now`, pushing them with their ticks to `fired` in
    /// tick order,
    /// and makes `now` the current tick (time never moves backwards: an earlier `now` fires
    /// nothing).
    pub(crate) fn advance(&mut self, now: u64, fired: &mut Vec<(u64, Waker)>) {
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now {
                break;
            }
            // Entering the slot: every entry in it is due at `start` or belongs lower down.
            self.elapsed = start;
            let mut cursor = self.heads[level][slot];
            self.heads[level][slot] = NIL;
            self.occupied[level] &= !(1u64 << slot);
            while cursor != NIL {
                let next = self.entries[cursor as usize].next;
                let tick = self.entries[cursor as usize].tick;
                if tick <= start {
                    fired.push((tick, self.release(cursor)));
                } else {
                    self.link(cursor);
                }
                cursor = next;
            }
        }
        // No slot starts at or before `now`, so every entry keeps its level relative to `now`
        // (the digits above its level are shared by `elapsed`, `now` and the slot start).
        self.elapsed = self.elapsed.max(now);
        self.shrink_if_idle();
    }

    /// The tick at which the next `advance` can do work: the earliest pending deadline, or the
    /// start of the slot that must be cascaded before it (never later than the earliest
    /// deadline). `None` when no timer is pending.
    pub(crate) fn next_tick(&self) -> Option<u64> {
        self.next_slot().map(|(_, _, start)| start)
    }

    /// The first non-empty slot ahead of `elapsed` and its start tick.
    ///
    /// Lower levels always come first: a lower-level slot lies inside the current slot of every
    /// higher level, and higher-level entries lie in slots after the current one.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for level in 0..LEVELS {
            let shift = level as u32 * SLOT_BITS;
            let current = ((self.elapsed >> shift) as usize) & (SLOTS - 1);
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            debug_assert_eq!(
                occupied & !(u64::MAX << current),
                0,
                "a slot behind the current tick is occupied"
            );
            let slot = (occupied & (u64::MAX << current)).trailing_zeros() as usize;
            let upper = shift + SLOT_BITS;
            let prefix = if upper >= 64 {
                0
            } else {
                (self.elapsed >> upper) << upper
            };
            return Some((level, slot, prefix | ((slot as u64) << shift)));
        }
        None
    }

    fn is_live(&self, key: Key) -> bool {
        self.entries
            .get(key.index as usize)
            .is_some_and(|e| e.waker.is_some() && e.allocation == key.allocation)
    }

    /// Links the entry at `index` into the slot its tick belongs to relative to `elapsed`.
    fn link(&mut self, index: u32) {
        let tick = self.entries[index as usize].tick;
        debug_assert!(tick > self.elapsed);
        // Highest bit in which `tick` differs from `elapsed` picks the level.
        let highest = 63 - (self.elapsed ^ tick).leading_zeros();
        let level = (highest / SLOT_BITS) as usize;
        let slot = ((tick >> (level as u32 * SLOT_BITS)) as usize) & (SLOTS - 1);
        let head = self.heads[level][slot];
        {
            let entry = &mut self.entries[index as usize];
            entry.level = level as u8;
            entry.slot = slot as u8;
            entry.prev = NIL;
            entry.next = head;
        }
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        self.heads[level][slot] = index;
        self.occupied[level] |= 1u64 << slot;
    }

    /// Unlinks the live entry at `index` from its slot list.
    fn unlink(&mut self, index: u32) {
        let (prev, next, level, slot) = {
            let e = &self.entries[index as usize];
            (e.prev, e.next, e.level as usize, e.slot as usize)
        };
        if prev == NIL {
            self.heads[level][slot] = next;
            if next == NIL {
                self.occupied[level] &= !(1u64 << slot);
            }
        } else {
            self.entries[prev as usize].next = next;
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
    }

    /// Frees the (already unlinked) entry at `index` and returns its waker.
    fn release(&mut self, index: u32) -> Waker {
        let entry = &mut self.entries[index as usize];
        let waker = entry.waker.take().expect("released a free timer cell");
        entry.next = self.free;
        self.free = index;
        self.len -= 1;
        waker
    }

    /// Releases the slab once the wheel is empty and the slab is large (see [`SHRINK_ABOVE`]).
    /// Safe for stale keys: allocation numbers keep counting, so none can match a new cell.
    fn shrink_if_idle(&mut self) {
        if self.len == 0 && self.entries.len() > SHRINK_ABOVE {
            self.entries = Vec::new();
            self.free = NIL;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::task::Wake;

    /// A waker that appends its id to a shared log when woken.
    struct Logger {
        id: u64,
        log: Arc<Mutex<Vec<u64>>>,
    }

    impl Wake for Logger {
        fn wake(self: Arc<Self>) {
            self.log.lock().unwrap().push(self.id);
        }
    }

    fn logger(id: u64, log: &Arc<Mutex<Vec<u64>>>) -> Waker {
        Waker::from(Arc::new(Logger {
            id,
            log: log.clone(),
        }))
    }

    fn fire(wheel: &mut Wheel, now: u64) {
        let mut fired = Vec::new();
        wheel.advance(now, &mut fired);
        fired.into_iter().for_each(|(_, w)| w.wake());
    }

    /// A deterministic pseudo-random sequence (xorshift) for shuffled deadlines.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn fires_in_deadline_order_across_levels() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut wheel = Wheel::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let mut ticks: Vec<u64> = (0..2000)
            .map(|_| 1 + xorshift(&mut seed) % 5_000_000)
            .collect();
        ticks.sort_unstable();
        ticks.dedup();
        let mut shuffled = ticks.clone();
        for i in (1..shuffled.len()).rev() {
            let j = (xorshift(&mut seed) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        for &t in &shuffled {
            wheel.insert(t, logger(t, &log)).unwrap();
        }
        // Advance in uneven steps so firing happens both in single ticks and in large jumps.
        let mut now = 0;
        while wheel.len() > 0 {
            now += 1 + xorshift(&mut seed) % 40_000;
            fire(&mut wheel, now);
            assert!(log.lock().unwrap().iter().all(|&t| t <= now), "fired early");
        }
        assert_eq!(*log.lock().unwrap(), ticks);
    }

    #[test]
    fn never_fires_before_its_tick() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut wheel = Wheel::new();
        for t in [1, 63, 64, 65, 4095, 4096, 4097, 262_144] {
            wheel.insert(t, logger(t, &log)).unwrap();
        }
        // Every tick under the native test; under Miri (which interprets every instruction)
        // every tick around each deadline.
        let nows: Vec<u64> = if cfg!(miri) {
            [1u64, 63, 64, 65, 4095, 4096, 4097, 262_144]
                .iter()
                .flat_map(|&t| t.saturating_sub(2)..=t + 2)
                .collect::<std::collections::BTreeSet<u64>>()
                .into_iter()
                .collect()
        } else {
            (0..=262_144u64).collect()
        };
        for now in nows {
            fire(&mut wheel, now);
            let fired = log.lock().unwrap();
            assert!(fired.iter().all(|&t| t <= now), "fired early at {now}");
            // Everything due has fired by the end of the pass.
            let due = [1, 63, 64, 65, 4095, 4096, 4097, 262_144]
                .iter()
                .filter(|&&t| t <= now)
                .count();
            assert_eq!(fired.len(), due);
        }
    }

    #[test]
    fn next_tick_never_after_earliest_deadline() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut wheel = Wheel::new();
        assert_eq!(wheel.next_tick(), None);
        let mut seed = 7;
        let n = if cfg!(miri) { 100 } else { 500 };
        for _ in 0..n {
            let t = wheel.elapsed() + 1 + xorshift(&mut seed) % 1_000_000;
            wheel.insert(t, logger(t, &log)).unwrap();
        }
        let mut fired = 0;
        while wheel.len() > 0 {
            let next = wheel.next_tick().unwrap();
            assert!(next > wheel.elapsed());
            // Advancing to just before `next` fires nothing; advancing to `next` makes progress
            // (fires or cascades) without skipping a deadline.
            fire(&mut wheel, next - 1);
            assert_eq!(log.lock().unwrap().len(), fired);
            fire(&mut wheel, next);
            let now_fired = log.lock().unwrap().len();
            assert!(log.lock().unwrap().iter().all(|&t| t <= next));
            fired = now_fired;
        }
        assert_eq!(fired, n);
        assert_eq!(wheel.next_tick(), None);
    }

    #[test]
    fn remove_and_reschedule() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut wheel = Wheel::new();
        let a = wheel.insert(10, logger(10, &log)).unwrap();
        let b = wheel.insert(20, logger(20, &log)).unwrap();
        let c = wheel.insert(5000, logger(5000, &log)).unwrap();
        assert!(wheel.remove(a).is_some());
        assert!(wheel.remove(a).is_none(), "double remove");
        assert!(matches!(wheel.reschedule(c, 15), Ok(true)));
        fire(&mut wheel, 16);
        assert_eq!(*log.lock().unwrap(), vec![5000]);
        assert!(
            matches!(wheel.reschedule(c, 30), Ok(false)),
            "fired timer is gone"
        );
        // Rescheduling into the past hands the waker back.
        assert!(wheel.reschedule(b, 3).is_err());
        assert_eq!(wheel.len(), 0);
        // Inserting at or before the current tick is refused.
        assert!(wheel.insert(16, logger(0, &log)).is_err());
    }

    #[test]
    fn stale_key_never_matches_reused_cell() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut wheel = Wheel::new();
        let old = wheel.insert(10, logger(1, &log)).unwrap();
        assert!(wheel.remove(old).is_some());
        let new = wheel.insert(10, logger(2, &log)).unwrap();
        assert_eq!(new.index, old.index, "the cell is reused");
        assert!(wheel.remove(old).is_none());
        assert!(wheel.waker_mut(old).is_none());
        assert_eq!(wheel.len(), 1);
        assert!(wheel.remove(new).is_some());
    }

    #[test]
    fn extreme_ticks_have_a_place() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut wheel = Wheel::new();
        wheel.insert(u64::MAX - 1, logger(1, &log)).unwrap();
        wheel.insert(1 << 63, logger(2, &log)).unwrap();
        assert_eq!(wheel.next_tick(), Some(1 << 63));
        fire(&mut wheel, (1 << 63) - 1);
        assert!(log.lock().unwrap().is_empty());
        fire(&mut wheel, u64::MAX);
        assert_eq!(*log.lock().unwrap(), vec![2, 1]);
    }

    #[test]
    fn empties_and_releases_memory() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut wheel = Wheel::new();
        // Past `SHRINK_ABOVE` either way.
        let n: u64 = if cfg!(miri) { 2_000 } else { 100_000 };
        let keys: Vec<Key> = (0..n)
            .map(|i| wheel.insert(1 + i % 7000, logger(i, &log)).unwrap())
            .collect();
        assert_eq!(wheel.len(), n as usize);
        for key in keys {
            assert!(wheel.remove(key).is_some());
        }
        assert_eq!(wheel.len(), 0);
        assert_eq!(wheel.next_tick(), None);
        assert!(wheel.entries.is_empty());
        assert!(log.lock().unwrap().is_empty(), "removal must not wake");
    }
}
