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

#[test]
fn put_waits_while_full_and_completes_when_room_appears() {
    let queue = Queue::bounded(1);
    queue.try_put(1).unwrap();
    assert_eq!(queue.try_put(2), Err(TryPutError::Full(2)));
    let wakes = WakeCounter::new();
    let mut put = queue.put(2);
    assert!(poll_with(&mut put, &wakes.waker()).is_pending());
    assert_eq!(queue.try_get(), Ok(1));
    // Taking made room: the parked value moved in and the putter was woken.
    assert_eq!(wakes.count(), 1);
    assert_eq!(queue.len(), 1);
    assert_eq!(poll_once(&mut put), Poll::Ready(Ok(())));
    assert_eq!(queue.try_get(), Ok(2));
}

#[test]
fn waiting_putters_are_served_in_order_and_not_overtaken() {
    let queue = Queue::bounded(1);
    queue.try_put(0).unwrap();
    let mut p1 = queue.put(1);
    let mut p2 = queue.put(2);
    assert!(poll_once(&mut p1).is_pending());
    assert!(poll_once(&mut p2).is_pending());
    assert_eq!(queue.try_get(), Ok(0));
    // Room appeared, but it went to the first parked putter, not to a newcomer.
    assert!(queue.try_put(9).unwrap_err().is_full());
    assert_eq!(queue.try_get(), Ok(1));
    assert_eq!(queue.try_get(), Ok(2));
    assert!(poll_once(&mut p1).is_ready() && poll_once(&mut p2).is_ready());
}

#[test]
fn get_waits_for_an_item_and_getters_are_served_in_order() {
    let queue = Queue::unbounded();
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

#[test]
fn an_item_handed_to_a_waiting_getter_cannot_be_stolen() {
    let queue = Queue::unbounded();
    let mut getter = queue.get();
    assert!(poll_once(&mut getter).is_pending());
    queue.try_put(1).unwrap();
    assert_eq!(queue.try_get(), Err(TryGetError::Empty));
    assert_eq!(poll_once(&mut getter), Poll::Ready(Ok(1)));
}

#[test]
fn getter_dropped_right_after_handoff_passes_the_item_to_the_next_getter() {
    let queue = Queue::unbounded();
    let mut first = queue.get();
    assert!(poll_once(&mut first).is_pending());
    let wakes = WakeCounter::new();
    let mut second = queue.get();
    assert!(poll_with(&mut second, &wakes.waker()).is_pending());
    queue.try_put(7).unwrap(); // handed to `first`
    drop(first);
    assert_eq!(wakes.count(), 1);
    assert_eq!(poll_once(&mut second), Poll::Ready(Ok(7)));
}

#[test]
fn getter_dropped_right_after_handoff_puts_the_item_back_in_front() {
    let queue = Queue::bounded(2);
    let mut getter = queue.get();
    assert!(poll_once(&mut getter).is_pending());
    queue.try_put(1).unwrap(); // handed to the getter
    queue.try_put(2).unwrap();
    // The handed-off item still counts against the capacity.
    assert!(queue.try_put(3).unwrap_err().is_full());
    drop(getter);
    assert_eq!(queue.len(), 2);
    assert_eq!(queue.try_get(), Ok(1));
    assert_eq!(queue.try_get(), Ok(2));
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

#[test]
fn putter_dropped_after_its_value_was_accepted_leaves_it_queued() {
    let queue = Queue::bounded(1);
    queue.try_put(1).unwrap();
    let mut put = queue.put(2);
    assert!(poll_once(&mut put).is_pending());
    assert_eq!(queue.try_get(), Ok(1)); // accepts the parked 2
    drop(put);
    assert_eq!(queue.try_get(), Ok(2));
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
fn a_closed_out_getter_still_drains_an_item_given_back_after_close() {
    let queue = Queue::unbounded();
    let mut holder = queue.get();
    assert!(poll_once(&mut holder).is_pending());
    queue.try_put(5).unwrap(); // handed to `holder`
    let mut other = queue.get();
    assert!(poll_once(&mut other).is_pending());
    queue.close(); // `other` is woken with "closed"
    drop(holder); // gives 5 back
    assert_eq!(poll_once(&mut other), Poll::Ready(Ok(5)));
    assert_eq!(queue.try_get(), Err(TryGetError::Closed));
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

#[test]
fn items_accepted_from_parked_putters_count_for_join() {
    let queue = Queue::bounded(1);
    queue.try_put(1).unwrap();
    let mut put = queue.put(2);
    assert!(poll_once(&mut put).is_pending());
    queue.try_get().unwrap();
    queue.task_done();
    // 2 was accepted from the parked putter: join still waits for it.
    assert!(poll_once(&mut queue.join()).is_pending());
    queue.try_get().unwrap();
    queue.task_done();
    assert!(poll_once(&mut queue.join()).is_ready());
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
    queue.try_put(1).unwrap(); // handed to the stream's pending get
    drop(consumer);
    assert_eq!(queue.try_get(), Ok(1));
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
    assert!(poll_once(&mut getter).is_pending());
    queue.try_put((2, "b")).unwrap(); // handed to the getter
    drop(getter);
    queue.close();
    assert_eq!(queue.try_get(), Ok((2, "b")));
    queue.task_done();
    assert!(poll_once(&mut queue.join()).is_ready());
    assert_eq!(queue.try_get(), Err(TryGetError::Closed));
}

/// 4 producers × 4 consumers move 1 000 000 items through `Queue::bounded(64)` (200 items through
/// `Queue::bounded(4)` under Miri) on a tokio multi-threaded runtime: every item arrives exactly
/// once and the sum matches.
#[test]
fn stress_mpmc_bounded_moves_every_item_exactly_once() {
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 4;
    // Scaled down under Miri, which interprets every instruction (still contended).
    const ITEMS: usize = if cfg!(miri) { 200 } else { 1_000_000 };
    const CAPACITY: usize = if cfg!(miri) { 4 } else { 64 };
    const PER_PRODUCER: usize = ITEMS / PRODUCERS;
    let queue = Queue::bounded(CAPACITY);
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
