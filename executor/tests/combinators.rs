//! Behaviour of the executor-agnostic combinators: ordering, cancellation by drop, wake
//! tracking without rescans, and thread-safety of the per-child wakers.

// These drive the combinators with real threads and `block_on`; under `--cfg loom` the
// shared state is loom's, usable only inside `loom::model` (see the loom tests in
// `combinator/ready.rs`).
#![cfg(not(loom))]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use common::panic_message;
use futures_lite::future::{self, block_on};
use futures_lite::{Stream, StreamExt};
use magpie_executor::combinator::{
    as_completed, join_all, race, select, try_join_all, wait_any, AsCompleted, Either, JoinAll,
    Race, Select, TryJoinAll, WaitAny,
};

// ---------------------------------------------------------------------------------------
// Test helpers
// ---------------------------------------------------------------------------------------

/// A waker that counts how often it was woken.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker::default());
    (Arc::clone(&counter), Waker::from(Arc::clone(&counter)))
}

fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

fn poll_stream<S: Stream + Unpin>(stream: &mut S, waker: &Waker) -> Poll<Option<S::Item>> {
    Pin::new(stream).poll_next(&mut Context::from_waker(waker))
}

/// A tiny oneshot channel: `Mutex` + stored `Waker`.
struct Channel<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

struct Sender<T>(Arc<Mutex<Channel<T>>>);

/// Receives the sent value; counts its polls and, when dropped, its drop.
struct Receiver<T> {
    channel: Arc<Mutex<Channel<T>>>,
    polls: usize,
    drops: Arc<AtomicUsize>,
}

fn oneshot<T>(drops: &Arc<AtomicUsize>) -> (Sender<T>, Receiver<T>) {
    let channel = Arc::new(Mutex::new(Channel {
        value: None,
        waker: None,
    }));
    let receiver = Receiver {
        channel: Arc::clone(&channel),
        polls: 0,
        drops: Arc::clone(drops),
    };
    (Sender(channel), receiver)
}

impl<T> Sender<T> {
    fn send(self, value: T) {
        let waker = {
            let mut channel = self.0.lock().unwrap();
            channel.value = Some(value);
            channel.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.polls += 1;
        let mut channel = self.channel.lock().unwrap();
        match channel.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                channel.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn channels<T>(n: usize, drops: &Arc<AtomicUsize>) -> (Vec<Sender<T>>, Vec<Receiver<T>>) {
    (0..n).map(|_| oneshot(drops)).unzip()
}

/// A future that never completes and counts its drop.
struct Never(Arc<AtomicUsize>);

impl Future for Never {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Pending
    }
}

impl Drop for Never {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------
// join_all
// ---------------------------------------------------------------------------------------

#[test]
fn join_all_outputs_follow_input_order_not_completion_order() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (senders, receivers) = channels::<usize>(5, &drops);
    let (_, waker) = counting_waker();
    let mut all = join_all(receivers);
    assert!(poll_once(&mut all, &waker).is_pending());
    for (i, sender) in senders.into_iter().enumerate().rev() {
        sender.send(i * 10);
        let poll = poll_once(&mut all, &waker);
        if i > 0 {
            assert!(poll.is_pending());
        } else {
            assert_eq!(poll, Poll::Ready(vec![0, 10, 20, 30, 40]));
        }
    }
}

#[test]
fn join_all_of_nothing_is_an_empty_vec() {
    let empty: Vec<future::Ready<u8>> = Vec::new();
    assert_eq!(block_on(join_all(empty)), Vec::<u8>::new());
}

#[test]
fn join_all_drops_each_child_as_soon_as_it_completes() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut senders, receivers) = channels::<u8>(3, &drops);
    let (_, waker) = counting_waker();
    let mut all = join_all(receivers);
    assert!(poll_once(&mut all, &waker).is_pending());
    senders.remove(1).send(1);
    assert!(poll_once(&mut all, &waker).is_pending());
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the finished child is dropped"
    );
    drop(all);
    assert_eq!(drops.load(Ordering::SeqCst), 3, "dropping cancels the rest");
}

#[test]
fn join_all_ignores_a_wake_of_a_child_that_already_completed() {
    // The child completes, then its (stored) waker fires again: the stale index must be
    // skipped, not polled.
    let drops = Arc::new(AtomicUsize::new(0));
    let (senders, receivers) = channels::<u8>(2, &drops);
    let (_, waker) = counting_waker();
    let mut all = join_all(receivers);
    assert!(poll_once(&mut all, &waker).is_pending());
    let stale = senders[0].0.lock().unwrap().waker.clone().unwrap();
    let mut senders = senders.into_iter();
    senders.next().unwrap().send(7);
    assert!(poll_once(&mut all, &waker).is_pending());
    stale.wake();
    assert!(poll_once(&mut all, &waker).is_pending());
    senders.next().unwrap().send(8);
    assert_eq!(poll_once(&mut all, &waker), Poll::Ready(vec![7, 8]));
}

/// Pending on its first poll (storing its waker), ready once released.
struct WakeOnce {
    index: usize,
    polls: usize,
    wakers: Arc<Mutex<Vec<Option<Waker>>>>,
    released: Arc<Vec<AtomicBool>>,
    total_polls: Arc<AtomicUsize>,
}

impl Future for WakeOnce {
    type Output = usize;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.polls += 1;
        self.total_polls.fetch_add(1, Ordering::Relaxed);
        if self.released[self.index].load(Ordering::Acquire) {
            return Poll::Ready(self.polls);
        }
        self.wakers.lock().unwrap()[self.index] = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[test]
fn join_all_of_100_000_children_polls_only_the_woken_child() {
    // Scaled down under Miri, which interprets every instruction.
    const N: usize = if cfg!(miri) { 300 } else { 100_000 };
    let wakers = Arc::new(Mutex::new(vec![None; N]));
    let released: Arc<Vec<AtomicBool>> = Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
    let total_polls = Arc::new(AtomicUsize::new(0));
    let children = (0..N).map(|index| WakeOnce {
        index,
        polls: 0,
        wakers: Arc::clone(&wakers),
        released: Arc::clone(&released),
        total_polls: Arc::clone(&total_polls),
    });
    let (parent_wakes, parent) = counting_waker();
    let mut all = join_all(children);

    assert!(poll_once(&mut all, &parent).is_pending());
    assert_eq!(total_polls.load(Ordering::Relaxed), N);

    // Wake the children one at a time, in an order unrelated to their indices.
    let mut result = None;
    for step in 0..N {
        let index = (step * 7919) % N; // 7919 is prime, coprime with N: a permutation
        released[index].store(true, Ordering::Release);
        let waker = wakers.lock().unwrap()[index]
            .take()
            .expect("child stored its waker");
        waker.wake();
        assert_eq!(
            parent_wakes.0.load(Ordering::SeqCst),
            step + 1,
            "parent woken"
        );
        let poll = poll_once(&mut all, &parent);
        // O(1) per wake: this poll of the parent polled exactly the one woken child.
        assert_eq!(total_polls.load(Ordering::Relaxed), N + step + 1);
        if step + 1 < N {
            assert!(poll.is_pending());
        } else {
            result = Some(poll);
        }
    }
    let Some(Poll::Ready(polls_per_child)) = result else {
        panic!("join_all did not finish after every child was woken");
    };
    assert_eq!(polls_per_child.len(), N);
    assert!(polls_per_child.iter().all(|&polls| polls == 2));
}

#[test]
fn join_all_completes_when_children_are_woken_from_other_threads() {
    const N: usize = if cfg!(miri) { 100 } else { 2_000 };
    const THREADS: usize = 4;
    let drops = Arc::new(AtomicUsize::new(0));
    let (senders, receivers) = channels::<usize>(N, &drops);
    let mut per_thread: Vec<Vec<(usize, Sender<usize>)>> =
        (0..THREADS).map(|_| Vec::new()).collect();
    for (i, sender) in senders.into_iter().enumerate() {
        per_thread[i % THREADS].push((i, sender));
    }
    let threads: Vec<_> = per_thread
        .into_iter()
        .map(|senders| {
            std::thread::spawn(move || {
                for (i, sender) in senders.into_iter().rev() {
                    sender.send(i);
                }
            })
        })
        .collect();
    let outputs = block_on(join_all(receivers));
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(outputs, (0..N).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------
// try_join_all
// ---------------------------------------------------------------------------------------

#[test]
fn try_join_all_collects_values_in_input_order() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (senders, receivers) = channels::<Result<u8, String>>(3, &drops);
    let (_, waker) = counting_waker();
    let mut all = try_join_all(receivers);
    assert!(poll_once(&mut all, &waker).is_pending());
    for (i, sender) in senders.into_iter().enumerate().rev() {
        sender.send(Ok(i as u8));
    }
    assert_eq!(poll_once(&mut all, &waker), Poll::Ready(Ok(vec![0, 1, 2])));
}

#[test]
fn try_join_all_returns_the_first_error_and_drops_the_rest_at_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut senders, receivers) = channels::<Result<u8, &str>>(5, &drops);
    let (_, waker) = counting_waker();
    let mut all = try_join_all(receivers);
    assert!(poll_once(&mut all, &waker).is_pending());
    senders.remove(0).send(Ok(1));
    senders.remove(1).send(Err("boom")); // child 2
    assert_eq!(poll_once(&mut all, &waker), Poll::Ready(Err("boom")));
    // Every child is gone before the `TryJoinAll` itself is dropped.
    assert_eq!(drops.load(Ordering::SeqCst), 5);
    drop(senders);
    drop(all);
    assert_eq!(drops.load(Ordering::SeqCst), 5);
}

#[test]
fn try_join_all_of_nothing_is_ok_empty() {
    let empty: Vec<future::Ready<Result<u8, ()>>> = Vec::new();
    assert_eq!(block_on(try_join_all(empty)), Ok(Vec::new()));
}

// ---------------------------------------------------------------------------------------
// select / race
// ---------------------------------------------------------------------------------------

#[test]
fn select_returns_the_winner_and_drops_the_loser_at_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (sender, receiver) = oneshot::<&str>(&drops);
    let loser_drops = Arc::new(AtomicUsize::new(0));
    let (_, waker) = counting_waker();
    let mut selected = select(Never(Arc::clone(&loser_drops)), receiver);
    assert!(poll_once(&mut selected, &waker).is_pending());
    sender.send("right");
    assert_eq!(
        poll_once(&mut selected, &waker),
        Poll::Ready(Either::Right("right"))
    );
    assert_eq!(loser_drops.load(Ordering::SeqCst), 1, "loser dropped");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "spent winner dropped");
    drop(selected);
    assert_eq!(loser_drops.load(Ordering::SeqCst), 1);
}

#[test]
fn race_returns_the_winning_output_and_drops_the_loser() {
    let drops = Arc::new(AtomicUsize::new(0));
    let loser_drops = Arc::new(AtomicUsize::new(0));
    let (sender, receiver) = oneshot::<u32>(&drops);
    let (_, waker) = counting_waker();
    let mut raced = race(receiver, Never(Arc::clone(&loser_drops)));
    assert!(poll_once(&mut raced, &waker).is_pending());
    sender.send(42);
    assert_eq!(poll_once(&mut raced, &waker), Poll::Ready(42));
    assert_eq!(loser_drops.load(Ordering::SeqCst), 1);
}

#[test]
fn select_picks_either_side_when_both_are_ready() {
    let mut lefts = 0;
    for _ in 0..400 {
        if block_on(select(future::ready(()), future::ready(()))).is_left() {
            lefts += 1;
        }
    }
    // A fixed order would give 0 or 400; a fair coin misses both by far (p < 2^-390).
    assert!(lefts > 0 && lefts < 400, "left won {lefts} of 400");
}

#[test]
#[should_panic(expected = "`Select` polled after completion")]
fn select_polled_after_completion_panics() {
    let (_, waker) = counting_waker();
    let mut selected = select(future::ready(1), future::ready(2));
    assert!(poll_once(&mut selected, &waker).is_ready());
    let _ = poll_once(&mut selected, &waker);
}

// ---------------------------------------------------------------------------------------
// wait_any
// ---------------------------------------------------------------------------------------

#[test]
fn wait_any_returns_the_winner_index_and_the_unfinished_futures() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (senders, receivers) = channels::<&str>(4, &drops);
    let (_, waker) = counting_waker();
    let mut any = wait_any(receivers);
    assert!(poll_once(&mut any, &waker).is_pending());
    let mut senders: Vec<Option<Sender<&str>>> = senders.into_iter().map(Some).collect();
    senders[2].take().unwrap().send("two");
    let Poll::Ready((output, index, remaining)) = poll_once(&mut any, &waker) else {
        panic!("wait_any should be ready");
    };
    assert_eq!((output, index, remaining.len()), ("two", 2, 3));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "only the winner was dropped"
    );

    // The remaining futures are live: keep waiting on them (input 3 is now index 2).
    senders[3].take().unwrap().send("three");
    let (output, index, remaining) = block_on(wait_any(remaining));
    assert_eq!((output, index, remaining.len()), ("three", 2, 2));
    senders[0].take().unwrap().send("zero");
    let (output, index, _) = block_on(wait_any(remaining));
    assert_eq!((output, index), ("zero", 0));
}

#[test]
#[should_panic(expected = "`wait_any` needs at least one future")]
fn wait_any_of_nothing_panics() {
    drop(wait_any(Vec::<future::Ready<u8>>::new()));
}

// ---------------------------------------------------------------------------------------
// as_completed
// ---------------------------------------------------------------------------------------

#[test]
fn as_completed_yields_in_completion_order() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (senders, receivers) = channels::<usize>(4, &drops);
    let (_, waker) = counting_waker();
    let mut stream = as_completed(receivers);
    assert!(poll_stream(&mut stream, &waker).is_pending());
    let mut senders: Vec<Option<Sender<usize>>> = senders.into_iter().map(Some).collect();
    for i in [2, 0, 3, 1] {
        senders[i].take().unwrap().send(i);
        assert_eq!(poll_stream(&mut stream, &waker), Poll::Ready(Some(i)));
        assert!(poll_stream(&mut stream, &waker).is_pending() || i == 1);
    }
    assert_eq!(poll_stream(&mut stream, &waker), Poll::Ready(None));
}

#[test]
fn as_completed_yields_children_finished_together_in_wake_order() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (senders, receivers) = channels::<usize>(3, &drops);
    let (_, waker) = counting_waker();
    let mut stream = as_completed(receivers);
    assert!(poll_stream(&mut stream, &waker).is_pending());
    for (i, sender) in senders.into_iter().enumerate().rev() {
        sender.send(i);
    }
    assert_eq!(stream.size_hint(), (3, Some(3)));
    let order: Vec<usize> = block_on(stream.collect());
    assert_eq!(order, [2, 1, 0]);
}

#[test]
fn dropping_as_completed_cancels_the_unfinished_children() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut senders, receivers) = channels::<u8>(3, &drops);
    let (_, waker) = counting_waker();
    let mut stream = as_completed(receivers);
    senders.remove(0).send(0);
    assert_eq!(poll_stream(&mut stream, &waker), Poll::Ready(Some(0)));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(stream);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn as_completed_with_threads_yields_every_output_once() {
    const N: usize = 1_000;
    let drops = Arc::new(AtomicUsize::new(0));
    let (senders, receivers) = channels::<usize>(N, &drops);
    let sender_thread = std::thread::spawn(move || {
        for (i, sender) in senders.into_iter().enumerate() {
            sender.send(i);
        }
    });
    let mut seen: Vec<usize> = block_on(as_completed(receivers).collect());
    sender_thread.join().unwrap();
    seen.sort_unstable();
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------
// Common traits
// ---------------------------------------------------------------------------------------

type SendFuture = Pin<Box<dyn Future<Output = u8> + Send>>;

#[test]
fn combinators_are_send_sync_and_unpin_when_their_children_are() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    fn unpin<T: Unpin>() {}
    send::<JoinAll<SendFuture>>();
    send::<TryJoinAll<Pin<Box<dyn Future<Output = Result<u8, String>> + Send>>>>();
    send::<Select<SendFuture, SendFuture>>();
    send::<Race<SendFuture, SendFuture>>();
    send::<WaitAny<SendFuture>>();
    send::<AsCompleted<SendFuture>>();
    sync::<JoinAll<future::Ready<u8>>>();
    sync::<Select<future::Ready<u8>, future::Ready<u8>>>();
    sync::<AsCompleted<future::Ready<u8>>>();
    unpin::<JoinAll<SendFuture>>();
    unpin::<AsCompleted<SendFuture>>();
}

#[test]
fn debug_output_reports_progress() {
    let all = join_all([future::ready(1), future::ready(2)]);
    assert_eq!(format!("{all:?}"), "JoinAll { len: 2, pending: 2 }");
    let selected = select(future::ready(1), future::ready(2));
    assert_eq!(
        format!("{selected:?}"),
        "Select { left_pending: true, right_pending: true }"
    );
}

/// A child that panics at its first poll, or yields `value` at its `turns + 1`th.
async fn child_that_panics_or_yields(panics: bool, turns: usize, value: u32) -> u32 {
    if panics {
        panic!("a child's planted panic");
    }
    for _ in 0..turns {
        future::yield_now().await;
    }
    value
}

/// Regression (a review): a child that panicked stayed in the set, still counted, with no wake
/// to come: a caller that caught the panic and polled on (a stream of results outliving one
/// bad child) got the others, then `Pending` for ever.
#[test]
fn as_completed_polled_on_after_a_childs_panic_yields_the_others_then_ends() {
    let children = [(true, 0, 0), (false, 1, 1), (false, 2, 2)]
        .map(|(panics, turns, value)| Box::pin(child_that_panics_or_yields(panics, turns, value)));
    let mut stream = as_completed(children);
    let (_, waker) = counting_waker();
    let mut results = Vec::new();
    for _ in 0..20 {
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            poll_stream(&mut stream, &waker)
        }));
        match polled {
            Err(_) => results.push("panic".to_owned()),
            Ok(Poll::Ready(Some(value))) => results.push(value.to_string()),
            Ok(Poll::Ready(None)) => {
                results.push("end".to_owned());
                break;
            }
            // The yielding children woke themselves: poll again.
            Ok(Poll::Pending) => {}
        }
    }
    assert_eq!(results, ["panic", "1", "2", "end"]);
    assert_eq!(stream.size_hint(), (0, Some(0)));
}

#[test]
fn join_all_polled_again_after_a_childs_panic_says_so() {
    let children = [(false, 0, 1), (true, 0, 0)]
        .map(|(panics, turns, value)| Box::pin(child_that_panics_or_yields(panics, turns, value)));
    let mut joined = join_all(children);
    let (_, waker) = counting_waker();
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        poll_once(&mut joined, &waker)
    }));
    assert!(first.is_err(), "the child's panic comes out of the poll");
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        poll_once(&mut joined, &waker)
    }))
    .expect_err("a JoinAll missing an output cannot complete");
    let message = panic_message(again);
    assert!(message.contains("panicked"), "{message}");
}

/// A waker whose drop wakes another waker (as one owning a channel's sender would).
struct WakesOnDrop(Mutex<Option<Waker>>);

impl Wake for WakesOnDrop {
    fn wake(self: Arc<Self>) {}
}

impl Drop for WakesOnDrop {
    fn drop(&mut self) {
        if let Some(waker) = self.0.lock().unwrap().take() {
            waker.wake();
        }
    }
}

/// Regression (a review): a new parent waker was cloned, and the old one dropped, under the
/// set's lock: a waker whose drop wakes a child of the same set took that lock again on the
/// same thread, and the poll never returned.
#[test]
fn a_parent_waker_whose_drop_wakes_a_child_does_not_deadlock_the_next_poll() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child_waker: Arc<Mutex<Option<Waker>>> = Arc::default();
        let stash = child_waker.clone();
        let child = future::poll_fn(move |cx| {
            *stash.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        });
        let mut joined = join_all([child]);
        let first = Arc::new(WakesOnDrop(Mutex::new(None)));
        assert!(poll_once(&mut joined, &Waker::from(first.clone())).is_pending());
        // The first parent waker, when dropped, wakes the child's waker.
        *first.0.lock().unwrap() = child_waker.lock().unwrap().take();
        drop(first);
        let (_, second) = counting_waker();
        assert!(poll_once(&mut joined, &second).is_pending());
        let _ = done.send(());
    });
    assert!(
        finished
            .recv_timeout(std::time::Duration::from_secs(20))
            .is_ok(),
        "the poll with a new parent waker did not return"
    );
}

#[test]
fn wait_any_polled_again_after_its_last_future_panicked_says_so() {
    let mut waiting = wait_any([Box::pin(child_that_panics_or_yields(true, 0, 0))]);
    let (_, waker) = counting_waker();
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        poll_once(&mut waiting, &waker)
    }));
    assert!(first.is_err(), "the child's panic comes out of the poll");
    let Err(again) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        poll_once(&mut waiting, &waker).is_ready()
    })) else {
        panic!("a WaitAny with nothing left cannot complete, nor wait");
    };
    let message = panic_message(again);
    assert!(message.contains("panicked"), "{message}");
}
