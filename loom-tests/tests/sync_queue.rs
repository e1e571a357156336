//! Loom models of `magpie_sync::Queue` (built on loom's types under `--cfg loom`).
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;
use magpie_loom_tests::model;
use magpie_sync::{PriorityQueue, Queue};

/// Every queue waits on one protocol over one of two stores; the models below run over both:
/// the lock-free ring (`Queue::bounded`) and the mutex-guarded buffer (`PriorityQueue`, whose
/// store an unbounded `Queue` shares). A queue handle's operations, for either kind.
trait AnyQueue: Send + Sync + 'static {
    fn put(&self, item: u32) -> Result<(), u32>;
    fn try_put(&self, item: u32) -> bool;
    fn get(&self) -> Result<u32, magpie_sync::Closed>;
    fn try_get(&self) -> Option<u32>;
    fn close(&self);
    fn is_empty(&self) -> bool;
}

macro_rules! any_queue {
    ($queue:ident) => {
        impl AnyQueue for $queue<u32> {
            fn put(&self, item: u32) -> Result<(), u32> {
                block_on($queue::put(self, item)).map_err(|err| err.into_inner())
            }
            fn try_put(&self, item: u32) -> bool {
                $queue::try_put(self, item).is_ok()
            }
            fn get(&self) -> Result<u32, magpie_sync::Closed> {
                block_on($queue::get(self))
            }
            fn try_get(&self) -> Option<u32> {
                $queue::try_get(self).ok()
            }
            fn close(&self) {
                $queue::close(self)
            }
            fn is_empty(&self) -> bool {
                $queue::is_empty(self)
            }
        }
    };
}
any_queue!(Queue);
any_queue!(PriorityQueue);

/// A bounded(1) queue, two producers, one consumer, and `close` racing them. Every item is
/// either delivered to the consumer (and its `put` said `Ok`) or handed back to its putter
/// (`Err(PutError(item))`): none lost, none duplicated.
#[test]
fn close_racing_puts_delivers_or_hands_back() {
    model(|| close_racing_puts(Arc::new(Queue::bounded(1))));
}

/// The same over the mutex-guarded store.
#[test]
fn close_racing_puts_delivers_or_hands_back_locked_store() {
    model(|| close_racing_puts(Arc::new(PriorityQueue::bounded(1))));
}

fn close_racing_puts<Q: AnyQueue>(queue: Arc<Q>) {
    let producers: Vec<_> = [1u32, 2]
        .into_iter()
        .map(|item| {
            let queue = queue.clone();
            thread::spawn(move || match queue.put(item) {
                Ok(()) => (item, None),
                Err(back) => (item, Some(back)),
            })
        })
        .collect();
    let mut received = Vec::new();
    // The consumer takes what it can before and after the close.
    if let Some(item) = queue.try_get() {
        received.push(item);
    }
    queue.close();
    while let Ok(item) = queue.get() {
        received.push(item);
    }
    for producer in producers {
        let (item, handed_back) = producer.join().unwrap();
        match handed_back {
            None => assert!(received.contains(&item), "{item} was accepted but lost"),
            Some(back) => {
                assert_eq!(back, item);
                assert!(
                    !received.contains(&item),
                    "{item} delivered and handed back"
                );
            }
        }
    }
    received.sort_unstable();
    received.dedup();
    assert!(received.len() <= 2);
}

/// The bounded queue's wakeup protocol (lock-free ring, one woken waiter per side, bounded
/// barging): a bounded(1) queue, one producer putting 1 then 2 (the second put parks until there
/// is room), and two getters racing for them. A lost wakeup (a parked putter or a waiting getter
/// nobody wakes while the other side moved) deadlocks the model; every item arrives exactly once.
#[test]
fn woken_waiters_and_barging_lose_no_wakeup() {
    model(|| woken_waiters_and_barging(Arc::new(Queue::bounded(1))));
}

/// The same over the mutex-guarded store.
#[test]
fn woken_waiters_and_barging_lose_no_wakeup_locked_store() {
    model(|| woken_waiters_and_barging(Arc::new(PriorityQueue::bounded(1))));
}

fn woken_waiters_and_barging<Q: AnyQueue>(queue: Arc<Q>) {
    let producer = {
        let queue = queue.clone();
        thread::spawn(move || {
            queue.put(1).unwrap();
            queue.put(2).unwrap();
        })
    };
    let getter = {
        let queue = queue.clone();
        thread::spawn(move || queue.get().unwrap())
    };
    let mine = queue.get().unwrap();
    let theirs = getter.join().unwrap();
    producer.join().unwrap();
    let mut received = [mine, theirs];
    received.sort_unstable();
    assert_eq!(received, [1, 2]);
    assert!(queue.is_empty());
}

/// Getters waiting on a bounded queue when it is closed: one takes the last item, the other
/// must be woken to see `Closed` although nothing more is ever put (the getter that re-queued
/// after `close` while an item was left is woken by the pop that drains the queue).
#[test]
fn close_wakes_getters_left_waiting_after_the_last_item() {
    model(|| close_wakes_getters_left_waiting(Arc::new(Queue::bounded(1))));
}

/// The same over the mutex-guarded store.
#[test]
fn close_wakes_getters_left_waiting_after_the_last_item_locked_store() {
    model(|| close_wakes_getters_left_waiting(Arc::new(PriorityQueue::bounded(1))));
}

fn close_wakes_getters_left_waiting<Q: AnyQueue>(queue: Arc<Q>) {
    let getters: Vec<_> = (0..2)
        .map(|_| {
            let queue = queue.clone();
            thread::spawn(move || queue.get())
        })
        .collect();
    assert!(queue.try_put(7));
    queue.close();
    let results: Vec<_> = getters.into_iter().map(|g| g.join().unwrap()).collect();
    assert!(
        results.contains(&Ok(7)) && results.contains(&Err(magpie_sync::Closed)),
        "{results:?}"
    );
}

/// A waker that does nothing (the models below poll by hand).
struct Noop;

impl Wake for Noop {
    fn wake(self: std::sync::Arc<Self>) {}
}

fn poll_noop<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let waker = Waker::from(std::sync::Arc::new(Noop));
    Pin::new(f).poll(&mut Context::from_waker(&waker))
}

/// Regression (found in review): item 1 is put (and the put has returned) before `join` is first polled; nobody ever calls
/// `task_done` for it. `join` must stay pending. A concurrent `task_done` for item 0 that read
/// `tail` before the put wakes the joiner anyway.
#[test]
fn join_does_not_return_while_a_put_item_is_unfinished() {
    model(|| {
        let queue = Arc::new(Queue::bounded(2));
        queue.try_put(0u32).unwrap();
        queue.try_get().unwrap(); // item 0 taken, not done yet
        let finisher = {
            let queue = queue.clone();
            thread::spawn(move || queue.task_done()) // finishes item 0
        };
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || queue.try_put(1u32).unwrap())
        };
        producer.join().unwrap(); // item 1 is in the queue before join starts
        let mut join = queue.join();
        assert!(poll_noop(&mut join).is_pending());
        finisher.join().unwrap();
        assert!(
            poll_noop(&mut join).is_pending(),
            "join returned although item 1 was never marked done"
        );
    });
}

/// Regression (found in review): two consumers each take one item and call `task_done` once: legal, must not panic.
#[test]
fn task_done_after_a_get_never_panics() {
    model(|| {
        let queue = Arc::new(Queue::bounded(2));
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || {
                queue.try_put(0u32).unwrap();
                queue.try_put(1u32).unwrap();
            })
        };
        let other = {
            let queue = queue.clone();
            thread::spawn(move || {
                block_on(queue.get()).unwrap();
                queue.task_done();
            })
        };
        block_on(queue.get()).unwrap();
        queue.task_done();
        other.join().unwrap();
        producer.join().unwrap();
    });
}
