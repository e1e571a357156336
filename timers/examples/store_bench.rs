//! Micro-benchmark behind the timer store's design (see docs/timers.md): insert, cancel and
//! fire costs of the hierarchical timing wheel that `magpie-timers` uses, against a binary heap
//! with lazy cancellation, at 1 000, 100 000 and 1 000 000 pending timers.
//!
//! Run: `cargo run --release -p magpie-timers --example store_bench`
//!
//! Both structures are single-threaded and hold one `Waker` per timer, as a store shard does.
//! - insert: with N timers pending (deadlines uniform over 60 s of 100 µs ticks), time 10 000
//!   more inserts.
//! - cancel: then cancel those 10 000 timers.
//! - fire: fire all N timers the way the reactor does (jump to the next deadline the store
//!   reports, fire what is due, repeat); cost per timer fired. The wheel's includes cascading
//!   and its next-deadline scans; the heap's includes popping the cancelled entries.
//!
//! Each figure is the best of three runs (the machine is shared).

#[allow(dead_code)] // The store's wheel, compiled in as is; not all of it is benchmarked.
#[path = "../src/wheel.rs"]
mod wheel;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::Instant;

use wheel::{Key, Wheel};

/// Deadlines are spread over this many 100 µs ticks (60 s).
const SPAN: u64 = 600_000;
/// Timers inserted and cancelled per measurement.
const BATCH: usize = 10_000;

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The alternative: a min-heap of `(tick, slot)`; cancelling clears the slot's waker and leaves
/// the heap entry behind until its deadline pops it.
#[derive(Default)]
struct LazyHeap {
    heap: BinaryHeap<Reverse<(u64, u32, u64)>>,
    slots: Vec<(u64, Option<Waker>)>,
    free: Vec<u32>,
    allocations: u64,
}

impl LazyHeap {
    fn insert(&mut self, tick: u64, waker: Waker) -> (u32, u64) {
        self.allocations += 1;
        let allocation = self.allocations;
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = (allocation, Some(waker));
                i
            }
            None => {
                self.slots.push((allocation, Some(waker)));
                (self.slots.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((tick, index, allocation)));
        (index, allocation)
    }

    fn cancel(&mut self, (index, allocation): (u32, u64)) -> Option<Waker> {
        let slot = &mut self.slots[index as usize];
        if slot.0 != allocation {
            return None;
        }
        // The slot is freed only when its heap entry pops, so the index cannot be reused early.
        slot.1.take()
    }

    fn next(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((tick, _, _))| *tick)
    }

    fn advance(&mut self, now: u64, fired: &mut Vec<(u64, Waker)>) {
        while let Some(&Reverse((tick, index, allocation))) = self.heap.peek() {
            if tick > now {
                break;
            }
            self.heap.pop();
            let slot = &mut self.slots[index as usize];
            if slot.0 == allocation {
                if let Some(w) = slot.1.take() {
                    fired.push((tick, w));
                }
                self.free.push(index);
            }
        }
    }
}

/// One structure under test.
trait Store: Default {
    type Key: Copy;
    fn insert(&mut self, tick: u64, waker: Waker) -> Self::Key;
    fn cancel(&mut self, key: Self::Key) -> Option<Waker>;
    fn fire(&mut self, now: u64, fired: &mut Vec<(u64, Waker)>);
    fn next(&self) -> Option<u64>;
}

impl Store for Wheel {
    type Key = Key;
    fn insert(&mut self, tick: u64, waker: Waker) -> Key {
        Wheel::insert(self, tick, waker).expect("future tick")
    }
    fn cancel(&mut self, key: Key) -> Option<Waker> {
        self.remove(key)
    }
    fn fire(&mut self, now: u64, fired: &mut Vec<(u64, Waker)>) {
        self.advance(now, fired);
    }
    fn next(&self) -> Option<u64> {
        self.next_tick()
    }
}

impl Store for LazyHeap {
    type Key = (u32, u64);
    fn insert(&mut self, tick: u64, waker: Waker) -> Self::Key {
        LazyHeap::insert(self, tick, waker)
    }
    fn cancel(&mut self, key: Self::Key) -> Option<Waker> {
        LazyHeap::cancel(self, key)
    }
    fn fire(&mut self, now: u64, fired: &mut Vec<(u64, Waker)>) {
        self.advance(now, fired);
    }
    fn next(&self) -> Option<u64> {
        LazyHeap::next(self)
    }
}

/// Best of three runs of `measure_once`.
fn measure<S: Store>(pending: usize) -> (f64, f64, f64) {
    (0..3)
        .map(|_| measure_once::<S>(pending))
        .fold((f64::MAX, f64::MAX, f64::MAX), |a, b| {
            (a.0.min(b.0), a.1.min(b.1), a.2.min(b.2))
        })
}

/// Nanoseconds per operation for insert, cancel and fire with `pending` timers.
fn measure_once<S: Store>(pending: usize) -> (f64, f64, f64) {
    let waker = Waker::from(Arc::new(Noop));
    let mut seed = 0x2545_f491_4f6c_dd1d;
    let mut store = S::default();
    for _ in 0..pending {
        store.insert(1 + xorshift(&mut seed) % SPAN, waker.clone());
    }
    let ticks: Vec<u64> = (0..BATCH).map(|_| 1 + xorshift(&mut seed) % SPAN).collect();

    let t = Instant::now();
    let keys: Vec<S::Key> = ticks
        .iter()
        .map(|&tick| store.insert(tick, waker.clone()))
        .collect();
    let insert = t.elapsed().as_nanos() as f64 / BATCH as f64;

    let t = Instant::now();
    for key in keys {
        black_box(store.cancel(key));
    }
    let cancel = t.elapsed().as_nanos() as f64 / BATCH as f64;

    let mut fired = Vec::new();
    let mut count = 0;
    let t = Instant::now();
    while let Some(now) = store.next() {
        store.fire(now, &mut fired);
        count += fired.len();
        fired.clear();
    }
    let fire = t.elapsed().as_nanos() as f64 / count.max(1) as f64;
    assert_eq!(count, pending, "every pending timer fires exactly once");
    (insert, cancel, fire)
}

fn main() {
    println!("ns per operation (insert/cancel: {BATCH} ops at N pending; fire: per timer fired)");
    println!(
        "{:>10} | {:>13} {:>13} {:>13} | {:>13} {:>13} {:>13}",
        "N",
        "wheel insert",
        "wheel cancel",
        "wheel fire",
        "heap insert",
        "heap cancel",
        "heap fire"
    );
    for pending in [1_000, 100_000, 1_000_000] {
        let (wi, wc, wf) = measure::<Wheel>(pending);
        let (hi, hc, hf) = measure::<LazyHeap>(pending);
        println!(
            "{pending:>10} | {wi:>13.1} {wc:>13.1} {wf:>13.1} | {hi:>13.1} {hc:>13.1} {hf:>13.1}"
        );
    }
}
