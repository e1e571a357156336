//! `oneshot`: send/receive, drops on either side, `closed`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;

use common::{poll_once, poll_with, DropCounter, WakeCounter};
use futures_lite::future::block_on;
use magpie_sync::oneshot::{self, RecvError, TryRecvError};

#[test]
fn value_sent_is_received() {
    let (tx, rx) = magpie_sync::oneshot();
    assert_eq!(tx.send(3), Ok(()));
    assert_eq!(block_on(rx), Ok(3));
}

#[test]
fn send_wakes_a_pending_receiver() {
    let (tx, mut rx) = oneshot::channel();
    let wakes = WakeCounter::new();
    assert!(poll_with(&mut rx, &wakes.waker()).is_pending());
    tx.send("x").unwrap();
    assert_eq!(wakes.count(), 1);
    assert_eq!(poll_once(&mut rx), Poll::Ready(Ok("x")));
}

#[test]
fn dropping_the_sender_fails_the_receiver() {
    let (tx, mut rx) = oneshot::channel::<u8>();
    let wakes = WakeCounter::new();
    assert!(poll_with(&mut rx, &wakes.waker()).is_pending());
    drop(tx);
    assert_eq!(wakes.count(), 1);
    assert_eq!(poll_once(&mut rx), Poll::Ready(Err(RecvError::default())));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn send_to_a_dropped_receiver_hands_the_value_back() {
    let (tx, rx) = oneshot::channel();
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(vec![1]), Err(vec![1]));
}

#[test]
fn a_sent_value_never_received_is_dropped_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot::channel();
    assert!(tx.send(DropCounter(drops.clone())).is_ok());
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn try_recv_reports_empty_then_the_value() {
    let (tx, mut rx) = oneshot::channel();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send(9).unwrap();
    assert_eq!(rx.try_recv(), Ok(9));
}

#[test]
fn closed_resolves_when_the_receiver_is_dropped() {
    let (mut tx, rx) = oneshot::channel::<()>();
    let wakes = WakeCounter::new();
    {
        let mut closed = tx.closed();
        assert!(poll_with(&mut closed, &wakes.waker()).is_pending());
        drop(rx);
        assert_eq!(wakes.count(), 1);
        assert_eq!(poll_once(&mut closed), Poll::Ready(()));
    }
    assert!(tx.is_closed());
}

#[test]
fn send_from_another_thread() {
    // Fewer threads under Miri, which interprets every instruction.
    let rounds = if cfg!(miri) { 10 } else { 100 };
    for i in 0..rounds {
        let (tx, rx) = oneshot::channel();
        let handle = std::thread::spawn(move || tx.send(i));
        assert_eq!(block_on(rx), Ok(i));
        handle.join().unwrap().unwrap();
    }
}

#[test]
fn a_repoll_with_another_waker_moves_the_wake_up_to_it() {
    let (tx, mut rx) = oneshot::channel();
    let (first, second) = (WakeCounter::new(), WakeCounter::new());
    assert!(poll_with(&mut rx, &first.waker()).is_pending());
    assert!(poll_with(&mut rx, &second.waker()).is_pending());
    tx.send(5).unwrap();
    assert_eq!((first.count(), second.count()), (0, 1));
    assert_eq!(poll_once(&mut rx), Poll::Ready(Ok(5)));
}

#[test]
fn a_repoll_with_the_same_waker_is_woken_once() {
    let (tx, mut rx) = oneshot::channel::<u8>();
    let wakes = WakeCounter::new();
    for _ in 0..3 {
        assert!(poll_with(&mut rx, &wakes.waker()).is_pending());
    }
    drop(tx);
    assert_eq!(wakes.count(), 1);
    assert_eq!(poll_once(&mut rx), Poll::Ready(Err(RecvError::default())));
}

#[test]
fn a_closed_future_repolled_with_another_waker_wakes_that_one() {
    let (mut tx, rx) = oneshot::channel::<()>();
    let (first, second) = (WakeCounter::new(), WakeCounter::new());
    {
        let mut closed = tx.closed();
        assert!(poll_with(&mut closed, &first.waker()).is_pending());
        assert!(poll_with(&mut closed, &second.waker()).is_pending());
    }
    drop(rx);
    assert_eq!((first.count(), second.count()), (0, 1));
    assert_eq!(poll_once(&mut tx.closed()), Poll::Ready(()));
}

#[test]
fn polling_again_after_the_value_was_taken_fails_instead_of_waiting() {
    let (tx, mut rx) = oneshot::channel();
    tx.send(1).unwrap();
    assert_eq!(poll_once(&mut rx), Poll::Ready(Ok(1)));
    assert_eq!(poll_once(&mut rx), Poll::Ready(Err(RecvError::default())));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

/// Every waker a channel was given and never woke is dropped with the channel: the
/// receiver's, left behind by a sender dropped after it, and the `closed` future's, left
/// behind by a `send`.
#[test]
fn wakers_left_in_a_channel_are_dropped_with_it() {
    let (rx_wakes, tx_wakes) = (WakeCounter::new(), WakeCounter::new());
    let (mut tx, mut rx) = oneshot::channel::<u8>();
    assert!(poll_with(&mut rx, &rx_wakes.waker()).is_pending());
    assert!(poll_with(&mut tx.closed(), &tx_wakes.waker()).is_pending());
    // Each counter is held here and by the waker published in the channel.
    assert_eq!(
        (Arc::strong_count(&rx_wakes), Arc::strong_count(&tx_wakes)),
        (2, 2)
    );
    tx.send(3).unwrap();
    // The receiver's waker was taken and woken; the `closed` waker stays until the end.
    assert_eq!((Arc::strong_count(&rx_wakes), rx_wakes.count()), (1, 1));
    assert_eq!(Arc::strong_count(&tx_wakes), 2);
    drop(rx);
    assert_eq!((Arc::strong_count(&tx_wakes), tx_wakes.count()), (1, 0));
}
