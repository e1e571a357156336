//! `Queue` and `PriorityQueue`: semantics, close, task_done/join, Stream, cancellation, stress.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use common::{poll_once, poll_with, tokio_rt, DropCounter, WakeCounter};
use futures_lite::future::block_on;
use futures_lite::StreamExt;
use magpie_sync::{Closed, PriorityQueue, PutError, Queue, TryGetError, TryPutError};

#[test]
fn items_come_out_in_fifo_order() {
    let queue = Queue::unbounded();
    for i in 0..10 {
        block_on(queue.put(i)).unwrap();
    }
    assert_eq!(queue.len(), 10);
    assert_eq!(queue.capacity(), None);
    let out: Vec<_> = (0..10).map(|_| block_on(queue.get()).unwrap()).collect();
    assert_eq!(out, (0..10).collect::<Vec<_>>());
    assert!(queue.is_empty());
    assert_eq!(queue.try_get(), Err(TryGetError::Empty));
}

#[test]
fn clones_are_handles_to_the_same_queue() {
    let a = Queue::unbounded();
    let b = a.clone();
    a.try_put(1).unwrap();
    assert_eq!(b.try_get(), Ok(1));
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn bounded_zero_panics() {
    let _ = Queue::<u8>::bounded(0);
}

/// Runs a test body once per kind of queue given, each as a test of its own in module `$name`.
/// Every queue waits on one protocol (`sync/src/channel.rs`) over one of two stores (the
/// lock-free ring of `Queue::bounded`, or the mutex-guarded buffer of an unbounded queue and of
/// every `PriorityQueue`), so the fairness and cancellation tests run over both. Items put in
/// increasing order come out in that order from every kind.
macro_rules! each_queue {
    ($(#[$doc:meta])* fn $name:ident($queue:ident) in [$($kind:ident: $make:expr),+ $(,)?] $body:block) => {
        $(#[$doc])*
        mod $name {
            use super::*;
            $(
                #[test]
                fn $kind() {
                    let $queue = $make;
                    $body
                }
            )+
        }
    };
}

each_queue! {
    fn put_waits_while_full_and_completes_when_room_appears(queue) in [
        ring: Queue::bounded(1),
        heap: PriorityQueue::bounded(1),
    ] {
        queue.try_put(1).unwrap();
        assert_eq!(queue.try_put(2), Err(TryPutError::Full(2)));
        let wakes = WakeCounter::new();
        let mut put = queue.put(2);
        assert!(poll_with(&mut put, &wakes.waker()).is_pending());
        assert_eq!(queue.try_get(), Ok(1));
        // Taking made room: the putter was woken to retry (bounded barging).
        assert_eq!(wakes.count(), 1);
        assert_eq!(poll_once(&mut put), Poll::Ready(Ok(())));
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.try_get(), Ok(2));
    }
}

/// The documented bound (`docs/sync.md`): a woken waiter misses at most this many times.
const MAX_MISSES: usize = 4;

each_queue! {
    /// Parked putters are woken in order, one at a time; a newcomer may take the room first (a
    /// miss), but at its 4th miss the front putter is handed the next room directly.
    fn a_putter_overtaken_4_times_is_handed_the_room(queue) in [
        ring: Queue::bounded(1),
        heap: PriorityQueue::bounded(1),
    ] {
        queue.try_put(0).unwrap();
        let (w1, w2) = (WakeCounter::new(), WakeCounter::new());
        let mut p1 = queue.put(1);
        let mut p2 = queue.put(2);
        assert!(poll_with(&mut p1, &w1.waker()).is_pending());
        assert!(poll_with(&mut p2, &w2.waker()).is_pending());
        for miss in 1..=MAX_MISSES {
            assert_eq!(
                queue.try_get(),
                Ok(if miss == 1 { 0 } else { 100 + miss - 1 })
            );
            assert_eq!(w1.count(), miss, "the front putter is woken");
            assert_eq!(w2.count(), 0, "only the front putter is woken");
            // A newcomer barges into the room before the woken putter runs.
            queue.try_put(100 + miss).unwrap();
            assert!(poll_with(&mut p1, &w1.waker()).is_pending(), "miss {miss}");
        }
        // Starving: the next room goes to p1's value directly; newcomers cannot take it.
        assert_eq!(queue.try_get(), Ok(100 + MAX_MISSES));
        assert_eq!(w1.count(), MAX_MISSES + 1);
        assert!(queue.try_put(9).unwrap_err().is_full());
        assert_eq!(queue.len(), 1);
        assert_eq!(poll_once(&mut p1), Poll::Ready(Ok(())));
        // p2 kept its place behind p1.
        assert_eq!(queue.try_get(), Ok(1));
        assert_eq!(w2.count(), 1);
        assert_eq!(poll_once(&mut p2), Poll::Ready(Ok(())));
        assert_eq!(queue.try_get(), Ok(2));
    }
}

each_queue! {
    /// A getter woken for an item may be overtaken (by `try_get` here) at most 4 times; then
    /// the next item is kept for it.
    fn a_getter_overtaken_4_times_is_handed_the_next_item(queue) in [
        ring: Queue::bounded(4),
        heap: PriorityQueue::bounded(4),
        unbounded_fifo: Queue::unbounded(),
        unbounded_heap: PriorityQueue::unbounded(),
    ] {
        let wakes = WakeCounter::new();
        let mut getter = queue.get();
        assert!(poll_with(&mut getter, &wakes.waker()).is_pending());
        for miss in 1..=MAX_MISSES {
            queue.try_put(miss).unwrap();
            assert_eq!(wakes.count(), miss, "the waiting getter is woken");
            assert_eq!(queue.try_get(), Ok(miss), "a newcomer barges");
            assert!(
                poll_with(&mut getter, &wakes.waker()).is_pending(),
                "miss {miss}"
            );
        }
        queue.try_put(7).unwrap();
        assert_eq!(
            queue.try_get(),
            Err(TryGetError::Empty),
            "kept for the starving getter"
        );
        let mut newcomer = queue.get();
        assert!(
            poll_once(&mut newcomer).is_pending(),
            "newcomers queue behind it"
        );
        assert_eq!(poll_once(&mut getter), Poll::Ready(Ok(7)));
        // Barging is allowed again.
        queue.try_put(8).unwrap();
        assert_eq!(queue.try_get(), Ok(8));
        drop(newcomer);
    }
}

each_queue! {
    /// Only one waiting getter is woken at a time; when it has taken its item, it wakes the
    /// next one if more items are there.
    fn woken_getters_pass_the_turn_on(queue) in [
        ring: Queue::bounded(4),
        heap: PriorityQueue::bounded(4),
        unbounded_fifo: Queue::unbounded(),
        unbounded_heap: PriorityQueue::unbounded(),
    ] {
        let (w1, w2) = (WakeCounter::new(), WakeCounter::new());
        let mut g1 = queue.get();
        let mut g2 = queue.get();
        assert!(poll_with(&mut g1, &w1.waker()).is_pending());
        assert!(poll_with(&mut g2, &w2.waker()).is_pending());
        queue.try_put("a").unwrap();
        queue.try_put("b").unwrap();
        assert_eq!((w1.count(), w2.count()), (1, 0));
        assert_eq!(poll_once(&mut g1), Poll::Ready(Ok("a")));
        assert_eq!(w2.count(), 1);
        assert_eq!(poll_once(&mut g2), Poll::Ready(Ok("b")));
    }
}

each_queue! {
    fn get_waits_for_an_item_and_getters_are_served_in_order(queue) in [
        ring: Queue::bounded(4),
        heap: PriorityQueue::bounded(4),
        unbounded_fifo: Queue::unbounded(),
        unbounded_heap: PriorityQueue::unbounded(),
    ] {
        let mut getters: Vec<_> = (0..3).map(|_| queue.get()).collect();
        for getter in getters.iter_mut().rev() {
            assert!(poll_once(getter).is_pending());
        }
        for item in ["a", "b", "c"] {
            queue.try_put(item).unwrap();
        }
        // Arrival order was 2, 1, 0.
        assert_eq!(poll_once(&mut getters[2]), Poll::Ready(Ok("a")));
        assert_eq!(poll_once(&mut getters[1]), Poll::Ready(Ok("b")));
        assert_eq!(poll_once(&mut getters[0]), Poll::Ready(Ok("c")));
    }
}

each_queue! {
    /// An item never leaves the queue for a getter that has not run, so a woken getter dropped
    /// before running loses nothing, and its turn passes to the next getter.
    fn a_getter_dropped_after_being_woken_passes_the_turn_on(queue) in [
        ring: Queue::bounded(2),
        heap: PriorityQueue::bounded(2),
    ] {
        let wakes = WakeCounter::new();
        let mut first = queue.get();
        let mut second = queue.get();
        assert!(poll_once(&mut first).is_pending());
        assert!(poll_with(&mut second, &wakes.waker()).is_pending());
        queue.try_put(1).unwrap(); // `first` is woken for it
        assert_eq!(queue.len(), 1, "the item stays in the queue");
        queue.try_put(2).unwrap();
        assert!(queue.try_put(3).unwrap_err().is_full());
        drop(first);
        assert_eq!(wakes.count(), 1);
        assert_eq!(poll_once(&mut second), Poll::Ready(Ok(1)));
        assert_eq!(queue.try_get(), Ok(2));
    }
}

each_queue! {
    /// Getters still waiting after `close` are woken (and see `Closed`) when the last item is
    /// taken, even though nothing more is ever put.
    fn getters_left_waiting_after_close_see_closed_once_drained(queue) in [
        ring: Queue::bounded(2),
        heap: PriorityQueue::bounded(2),
        unbounded_fifo: Queue::unbounded(),
        unbounded_heap: PriorityQueue::unbounded(),
    ] {
        let mut g1 = queue.get();
        let mut g2 = queue.get();
        assert!(poll_once(&mut g1).is_pending());
        assert!(poll_once(&mut g2).is_pending());
        queue.try_put(5).unwrap(); // `g1` is woken for it
        queue.close(); // `g2` is woken by the close
        let wakes = WakeCounter::new();
        // The item is still there, and `g1` is on its way for it: `g2` waits again.
        assert!(poll_with(&mut g2, &wakes.waker()).is_pending());
        assert_eq!(poll_once(&mut g1), Poll::Ready(Ok(5)));
        assert_eq!(wakes.count(), 1);
        assert_eq!(poll_once(&mut g2), Poll::Ready(Err(Closed)));
    }
}

each_queue! {
    /// A getter woken by `close` while another was woken for the last item, and that other
    /// dropped before running: the item is still taken (by the getter woken by `close`).
    fn a_getter_closed_out_still_takes_an_item_left_by_a_dropped_getter(queue) in [
        ring: Queue::bounded(2),
        heap: PriorityQueue::bounded(2),
        unbounded_fifo: Queue::unbounded(),
        unbounded_heap: PriorityQueue::unbounded(),
    ] {
        let mut holder = queue.get();
        let mut other = queue.get();
        assert!(poll_once(&mut holder).is_pending());
        assert!(poll_once(&mut other).is_pending());
        queue.try_put(5).unwrap(); // `holder` is woken for it
        queue.close(); // `other` is woken by the close
        drop(holder); // its turn passes on
        assert_eq!(poll_once(&mut other), Poll::Ready(Ok(5)));
        assert_eq!(queue.try_get(), Err(TryGetError::Closed));
    }
}

#[test]
fn putter_dropped_while_waiting_withdraws_its_value() {
    let drops = Arc::new(AtomicUsize::new(0));
    let queue = Queue::bounded(1);
    queue.try_put(DropCounter(drops.clone())).unwrap();
    let mut put = queue.put(DropCounter(drops.clone()));
    assert!(poll_once(&mut put).is_pending());
    drop(put);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the withdrawn value was dropped"
    );
    drop(queue.try_get().unwrap());
    assert!(queue.is_empty());
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

/// An item that counts its drops and compares by its number, so that it fits every queue.
struct Counted(usize, #[allow(dead_code)] DropCounter);

impl PartialEq for Counted {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Counted {}
impl PartialOrd for Counted {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Counted {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

each_queue! {
    /// A putter woken to retry and dropped first withdraws its value and passes the turn on.
    fn a_putter_dropped_after_being_woken_passes_the_turn_on(queue) in [
        ring: Queue::bounded(1),
        heap: PriorityQueue::bounded(1),
    ] {
        let drops = Arc::new(AtomicUsize::new(0));
        let counted = |n| Counted(n, DropCounter(drops.clone()));
        queue.try_put(counted(0)).unwrap();
        let wakes = WakeCounter::new();
        let mut p1 = queue.put(counted(1));
        let mut p2 = queue.put(counted(2));
        assert!(poll_once(&mut p1).is_pending());
        assert!(poll_with(&mut p2, &wakes.waker()).is_pending());
        drop(queue.try_get().unwrap()); // `p1` is woken to retry
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(p1);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            2,
            "the withdrawn value was dropped"
        );
        assert_eq!(wakes.count(), 1, "the turn passed to p2");
        assert!(poll_once(&mut p2).is_ready());
        assert_eq!(queue.len(), 1);
    }
}

/// Starves a putter of `queue` (bounded(1), holding one item), leaving its value accepted by
/// the starvation handoff; returns the put, which completes when polled.
fn starve_putter<'q, Q, P: std::future::Future + Unpin>(
    queue: &'q Q,
    put: fn(&'q Q, usize) -> P,
    try_get: fn(&Q) -> usize,
    try_put: fn(&Q, usize),
) -> P {
    let mut parked = put(queue, 1);
    assert!(poll_once(&mut parked).is_pending());
    for miss in 1..=MAX_MISSES {
        try_get(queue);
        try_put(queue, 10 + miss);
        assert!(poll_once(&mut parked).is_pending());
    }
    try_get(queue); // the handoff accepts the parked 1
    parked
}

each_queue! {
    /// A putter dropped after its value was handed the room (after starving) leaves it queued.
    fn a_putter_dropped_after_its_value_was_accepted_leaves_it_queued(queue) in [
        ring: Queue::bounded(1),
        heap: PriorityQueue::bounded(1),
    ] {
        queue.try_put(0).unwrap();
        let put = starve_putter(&queue, |q, v| q.put(v), |q| q.try_get().unwrap(), |q, v| q.try_put(v).unwrap());
        drop(put);
        assert_eq!(queue.try_get(), Ok(1));
        assert_eq!(queue.try_get(), Err(TryGetError::Empty));
    }
}

#[test]
fn close_drains_then_reports_closed() {
    let queue = Queue::unbounded();
    queue.try_put(1).unwrap();
    queue.close();
    assert!(queue.is_closed());
    assert_eq!(queue.try_put(2), Err(TryPutError::Closed(2)));
    assert_eq!(block_on(queue.put(3)).unwrap_err().into_inner(), 3);
    assert_eq!(block_on(queue.get()), Ok(1));
    assert_eq!(block_on(queue.get()), Err(Closed));
    assert_eq!(queue.try_get(), Err(TryGetError::Closed));
}

#[test]
fn close_wakes_pending_getters_with_closed() {
    let queue = Queue::<u8>::unbounded();
    let wakes = WakeCounter::new();
    let mut getter = queue.get();
    assert!(poll_with(&mut getter, &wakes.waker()).is_pending());
    queue.close();
    assert_eq!(wakes.count(), 1);
    assert_eq!(poll_once(&mut getter), Poll::Ready(Err(Closed)));
}

#[test]
fn close_hands_values_back_to_pending_putters() {
    let queue = Queue::bounded(1);
    queue.try_put(1).unwrap();
    let wakes = WakeCounter::new();
    let mut put = queue.put(2);
    assert!(poll_with(&mut put, &wakes.waker()).is_pending());
    queue.close();
    assert_eq!(wakes.count(), 1);
    let Poll::Ready(Err(PutError(value))) = poll_once(&mut put) else {
        panic!("the put fails with its value");
    };
    assert_eq!(value, 2);
    assert_eq!(queue.try_get(), Ok(1));
}

#[test]
fn join_waits_for_every_task_done() {
    let queue = Queue::unbounded();
    assert_eq!(poll_once(&mut queue.join()), Poll::Ready(()));
    queue.try_put(1).unwrap();
    queue.try_put(2).unwrap();
    let wakes = WakeCounter::new();
    let mut join = queue.join();
    assert!(poll_with(&mut join, &wakes.waker()).is_pending());
    queue.try_get().unwrap();
    queue.task_done();
    assert_eq!(wakes.count(), 0);
    queue.try_get().unwrap();
    queue.task_done();
    assert_eq!(wakes.count(), 1);
    assert_eq!(poll_once(&mut join), Poll::Ready(()));
}

each_queue! {
    fn items_accepted_by_a_starvation_handoff_count_for_join(queue) in [
        ring: Queue::bounded(1),
        heap: PriorityQueue::bounded(1),
    ] {
        queue.try_put(0).unwrap();
        let mut put = starve_putter(&queue, |q, v| q.put(v), |q| q.try_get().unwrap(), |q, v| q.try_put(v).unwrap());
        // Every item taken so far is done; 1 was accepted from the parked putter.
        for _ in 0..=MAX_MISSES {
            queue.task_done();
        }
        assert!(poll_once(&mut queue.join()).is_pending());
        assert!(poll_once(&mut put).is_ready());
        assert_eq!(queue.try_get(), Ok(1));
        queue.task_done();
        assert!(poll_once(&mut queue.join()).is_ready());
    }
}

each_queue! {
    fn items_from_woken_putters_count_for_join(queue) in [
        ring: Queue::bounded(1),
        heap: PriorityQueue::bounded(1),
    ] {
        queue.try_put(1).unwrap();
        let mut put = queue.put(2);
        assert!(poll_once(&mut put).is_pending());
        queue.try_get().unwrap();
        queue.task_done();
        assert!(poll_once(&mut put).is_ready());
        // 2 was put by the woken putter: join still waits for it.
        assert!(poll_once(&mut queue.join()).is_pending());
        queue.try_get().unwrap();
        queue.task_done();
        assert!(poll_once(&mut queue.join()).is_ready());
    }
}

#[test]
#[should_panic(expected = "task_done() called more times than there were items")]
fn task_done_too_often_panics() {
    let queue = Queue::unbounded();
    queue.try_put(1).unwrap();
    queue.task_done();
    queue.task_done();
}

#[test]
fn the_queue_is_a_stream_until_closed_and_drained() {
    let queue = Queue::unbounded();
    let producer = queue.clone();
    std::thread::spawn(move || {
        for i in 0..100 {
            block_on(producer.put(i)).unwrap();
        }
        producer.close();
    });
    let items: Vec<i32> = block_on(queue.collect());
    assert_eq!(items, (0..100).collect::<Vec<_>>());
}

#[test]
fn a_handle_dropped_with_a_pending_stream_item_passes_it_on() {
    let queue = Queue::unbounded();
    let mut consumer = queue.clone();
    assert!(poll_once(&mut consumer.next()).is_pending());
    let wakes = WakeCounter::new();
    let mut next = queue.get();
    assert!(poll_with(&mut next, &wakes.waker()).is_pending());
    queue.try_put(1).unwrap(); // the stream's pending get is woken for it
    assert_eq!(wakes.count(), 0, "one getter is woken at a time");
    drop(consumer);
    assert_eq!(wakes.count(), 1, "the turn passed to the next getter");
    assert_eq!(poll_once(&mut next), Poll::Ready(Ok(1)));
}

#[test]
fn priority_queue_returns_smallest_first() {
    let queue = PriorityQueue::bounded(8);
    for item in [5, 1, 4, 2, 3] {
        block_on(queue.put(item)).unwrap();
    }
    let out: Vec<_> = (0..5).map(|_| queue.try_get().unwrap()).collect();
    assert_eq!(out, vec![1, 2, 3, 4, 5]);
}

#[test]
fn priority_queue_shares_close_join_and_cancellation() {
    let queue = PriorityQueue::bounded(1);
    let mut getter = queue.get();
    let wakes = WakeCounter::new();
    let mut next = queue.get();
    assert!(poll_once(&mut getter).is_pending());
    assert!(poll_with(&mut next, &wakes.waker()).is_pending());
    queue.try_put((2, "b")).unwrap(); // the getter is woken for it
    drop(getter);
    assert_eq!(wakes.count(), 1, "the dropped getter's turn passed on");
    drop(next);
    queue.close();
    assert_eq!(queue.try_get(), Ok((2, "b")));
    queue.task_done();
    assert!(poll_once(&mut queue.join()).is_ready());
    assert_eq!(queue.try_get(), Err(TryGetError::Closed));
}

// Scaled down under Miri, which interprets every instruction (still contended).
const STRESS_ITEMS: usize = if cfg!(miri) { 200 } else { 1_000_000 };
const STRESS_CAPACITY: usize = if cfg!(miri) { 4 } else { 64 };

each_queue! {
    /// 4 producers × 4 consumers move 1 000 000 items (200 under Miri) through each kind of
    /// queue on a tokio multi-threaded runtime: every item arrives exactly once and the sum
    /// matches.
    fn stress_mpmc_moves_every_item_exactly_once(queue) in [
        ring: Queue::bounded(STRESS_CAPACITY),
        heap: PriorityQueue::bounded(STRESS_CAPACITY),
        unbounded_fifo: Queue::unbounded(),
    ] {
        const PRODUCERS: usize = 4;
        const CONSUMERS: usize = 4;
        const ITEMS: usize = STRESS_ITEMS;
        const PER_PRODUCER: usize = ITEMS / PRODUCERS;
        let seen: Arc<Vec<AtomicUsize>> = Arc::new((0..ITEMS).map(|_| AtomicUsize::new(0)).collect());
        let (sum, count) = tokio_rt(4).block_on(async {
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let queue = queue.clone();
                    tokio::spawn(async move {
                        for i in p * PER_PRODUCER..(p + 1) * PER_PRODUCER {
                            queue.put(i).await.unwrap();
                        }
                    })
                })
                .collect();
            let consumers: Vec<_> = (0..CONSUMERS)
                .map(|_| {
                    let queue = queue.clone();
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let (mut sum, mut count) = (0u64, 0usize);
                        while let Ok(item) = queue.get().await {
                            seen[item].fetch_add(1, Ordering::Relaxed);
                            sum += item as u64;
                            count += 1;
                        }
                        (sum, count)
                    })
                })
                .collect();
            for producer in producers {
                producer.await.unwrap();
            }
            queue.close();
            let (mut sum, mut count) = (0u64, 0usize);
            for consumer in consumers {
                let (s, c) = consumer.await.unwrap();
                sum += s;
                count += c;
            }
            (sum, count)
        });
        assert_eq!(count, ITEMS);
        assert_eq!(sum, (ITEMS as u64 - 1) * ITEMS as u64 / 2);
        assert!(
            seen.iter().all(|n| n.load(Ordering::Relaxed) == 1),
            "an item was lost or duplicated"
        );
    }
}

each_queue! {
    /// The slow paths under load: capacity 1 makes nearly every operation wait, be woken, miss,
    /// or starve. 4 producers × 4 consumers on a tokio runtime; every item once.
    fn stress_mpmc_capacity_one_moves_every_item_exactly_once(queue) in [
        ring: Queue::bounded(1),
        heap: PriorityQueue::bounded(1),
    ] {
        const ITEMS: usize = if cfg!(miri) { 100 } else { 100_000 };
        let seen: Arc<Vec<AtomicUsize>> = Arc::new((0..ITEMS).map(|_| AtomicUsize::new(0)).collect());
        tokio_rt(4).block_on(async {
            let producers: Vec<_> = (0..4)
                .map(|p| {
                    let queue = queue.clone();
                    tokio::spawn(async move {
                        for i in (p..ITEMS).step_by(4) {
                            queue.put(i).await.unwrap();
                        }
                    })
                })
                .collect();
            let consumers: Vec<_> = (0..4)
                .map(|_| {
                    let (queue, seen) = (queue.clone(), seen.clone());
                    tokio::spawn(async move {
                        while let Ok(item) = queue.get().await {
                            seen[item].fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for producer in producers {
                producer.await.unwrap();
            }
            queue.close();
            for consumer in consumers {
                consumer.await.unwrap();
            }
        });
        assert!(
            seen.iter().all(|n| n.load(Ordering::Relaxed) == 1),
            "an item was lost or duplicated"
        );
    }
}

/// Getters cancelled at random points while items flow: nothing is lost or duplicated.
#[test]
fn stress_cancelled_getters_lose_nothing() {
    // Scaled down under Miri, which interprets every instruction (still contended).
    const ITEMS: usize = if cfg!(miri) { 100 } else { 20_000 };
    let queue = Queue::bounded(8);
    let received = AtomicUsize::new(0);
    let sum = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let producer = queue.clone();
        s.spawn(move || {
            for i in 0..ITEMS {
                block_on(producer.put(i)).unwrap();
            }
            producer.close();
        });
        for _ in 0..2 {
            let consumer = queue.clone();
            let (received, sum) = (&received, &sum);
            s.spawn(move || loop {
                // Poll a get once and drop it, whatever happened: sometimes right after an
                // item was handed to it. Then take one item for real.
                let mut get = consumer.get();
                if let Poll::Ready(result) = poll_once(&mut get) {
                    match result {
                        Ok(item) => {
                            received.fetch_add(1, Ordering::SeqCst);
                            sum.fetch_add(item, Ordering::SeqCst);
                        }
                        Err(Closed) => break,
                    }
                } else {
                    // Widen the window in which an item gets handed to `get`.
                    std::thread::yield_now();
                }
                drop(get);
                match block_on(consumer.get()) {
                    Ok(item) => {
                        received.fetch_add(1, Ordering::SeqCst);
                        sum.fetch_add(item, Ordering::SeqCst);
                    }
                    Err(Closed) => break,
                }
            });
        }
    });
    assert_eq!(received.load(Ordering::SeqCst), ITEMS);
    assert_eq!(sum.load(Ordering::SeqCst), (ITEMS - 1) * ITEMS / 2);
}

#[test]
fn debug_names_the_queue_kind() {
    let queue = PriorityQueue::<u8>::bounded(3);
    queue.try_put(1).unwrap();
    let text = format!("{queue:?}");
    assert!(
        text.starts_with("PriorityQueue { len: 1, capacity: Some(3)"),
        "{text}"
    );
    assert!(format!("{:?}", Queue::<u8>::unbounded()).starts_with("Queue {"));
}

/// Regression (found in review): the ring allocated every slot up front, so
/// `Queue::bounded(usize::MAX)` panicked with "capacity overflow". Capacities beyond the
/// ring's bound get the mutex-guarded channel and keep their limit.
#[test]
fn a_huge_bounded_capacity_allocates_nothing_up_front() {
    let queue = Queue::<u8>::bounded(usize::MAX);
    assert_eq!(queue.capacity(), Some(usize::MAX));
    queue.try_put(1).unwrap();
    queue.try_put(2).unwrap();
    assert_eq!(queue.len(), 2);
    assert_eq!(queue.try_get(), Ok(1));
    let small = Queue::<u8>::bounded(65_537);
    for i in 0..3 {
        small.try_put(i).unwrap();
    }
    assert_eq!(small.capacity(), Some(65_537));
    assert_eq!(small.try_get(), Ok(0));
}

/// An item whose comparisons panic while `TOUCHY` is set on the comparing thread (a
/// thread-local: the tests of this binary run in parallel).
#[derive(Debug)]
struct Touchy(usize);

thread_local! {
    static TOUCHY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl PartialEq for Touchy {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Touchy {}
impl PartialOrd for Touchy {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Touchy {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        assert!(!TOUCHY.with(std::cell::Cell::get), "a touchy comparison");
        self.0.cmp(&other.0)
    }
}

/// A `PriorityQueue` whose `Ord` panics while the queue places a starving putter's value (the
/// one place it compares items on someone else's behalf): the panic stops there, the item that
/// made the room stays with whoever took it, the putter's value is kept and its put completes,
/// and the queue works on (regression: the queue used to be broken for good).
#[test]
fn a_panicking_ord_during_a_starvation_handoff_loses_nothing() {
    let queue = PriorityQueue::bounded(2);
    queue.try_put(Touchy(10)).unwrap();
    queue.try_put(Touchy(11)).unwrap();
    let mut put = queue.put(Touchy(1));
    assert!(poll_once(&mut put).is_pending());
    for miss in 0..MAX_MISSES {
        let taken = queue.try_get().unwrap(); // room: the putter is woken
        queue.try_put(Touchy(20 + miss)).unwrap(); // a newcomer takes it first
        assert!(taken.0 >= 10);
        assert!(poll_once(&mut put).is_pending(), "miss {miss}");
    }
    // Starving: the next room is filled with its value directly, comparing it with the item
    // left in the heap — which panics now.
    TOUCHY.with(|touchy| touchy.set(true));
    let taken = queue.try_get();
    TOUCHY.with(|touchy| touchy.set(false));
    assert!(taken.is_ok(), "the item taken is not lost to the panic");
    assert_eq!(
        poll_once(&mut put),
        Poll::Ready(Ok(())),
        "the put was accepted"
    );
    assert_eq!(queue.len(), 2);
    let mut rest: Vec<usize> = (0..2).map(|_| queue.try_get().unwrap().0).collect();
    rest.sort_unstable();
    assert!(
        rest.contains(&1),
        "the putter's value is in the queue: {rest:?}"
    );
    // Working on: room, a put, a get.
    queue.try_put(Touchy(5)).unwrap();
    assert_eq!(queue.try_get().unwrap().0, 5);
    for _ in 0..(2 + MAX_MISSES + 1 + 1) {
        queue.task_done();
    }
    assert!(poll_once(&mut queue.join()).is_ready());
}

/// A `PriorityQueue` whose `Ord` panics while a `get` takes an item out of a full queue (the
/// heap's sift after the removal): the get still returns the item it took, the putter waiting
/// for room is woken and its put completes, and `join` counts every item (regression: the
/// item was dropped with the unwinding, the putter slept on with room free, and `join` waited
/// for a `task_done` nobody could call).
#[test]
fn a_panicking_ord_in_a_get_loses_no_item_and_strands_no_putter() {
    let queue = PriorityQueue::bounded(3);
    for i in [10, 11, 12] {
        queue.try_put(Touchy(i)).unwrap();
    }
    let mut put = queue.put(Touchy(1));
    assert!(poll_once(&mut put).is_pending(), "full");
    TOUCHY.with(|touchy| touchy.set(true));
    let taken = queue.try_get();
    TOUCHY.with(|touchy| touchy.set(false));
    let taken = taken.expect("the item taken out is returned").0;
    assert!((10..=12).contains(&taken));
    assert_eq!(
        poll_once(&mut put),
        Poll::Ready(Ok(())),
        "the putter was woken by the room and its put completed"
    );
    let mut rest: Vec<usize> = (0..3).map(|_| queue.try_get().unwrap().0).collect();
    rest.push(taken);
    rest.sort_unstable();
    assert_eq!(rest, [1, 10, 11, 12], "every item came out once");
    for _ in 0..4 {
        queue.task_done();
    }
    assert!(poll_once(&mut queue.join()).is_ready());
}

/// A `get` polled again after it returned `Ready` panics, rather than take a second item its
/// caller does not expect (it used to start over, and a buggy combinator lost the item).
#[test]
fn a_get_polled_after_ready_panics_and_takes_nothing() {
    let queue = Queue::unbounded();
    queue.try_put(1).unwrap();
    queue.try_put(2).unwrap();
    let mut get = queue.get();
    assert_eq!(poll_once(&mut get), Poll::Ready(Ok(1)));
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| poll_once(&mut get)));
    assert!(again.is_err(), "polled after Ready");
    drop(get);
    assert_eq!(queue.try_get(), Ok(2), "the second item is still there");
}
