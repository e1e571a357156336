//! Loom models of `magpie_sync::oneshot` (built on loom's types under `--cfg loom`).
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Wake, Waker};

use loom::future::block_on;
use loom::thread;
use magpie_loom_tests::{model, DropCounter};
use magpie_sync::oneshot;

/// `send` races the receiver being dropped: whether the send succeeds (the value is dropped
/// with the channel) or fails (the value is handed back to the sender), it is dropped exactly
/// once, and a failed send really hands back the value it was given.
#[test]
fn send_racing_receiver_drop() {
    model(|| {
        let drops = DropCounter::new();
        let (tx, rx) = oneshot();
        let value = drops.guard();
        let sender = thread::spawn(move || tx.send(value).err());
        drop(rx);
        let handed_back = sender.join().unwrap();
        assert_eq!(drops.count(), usize::from(handed_back.is_none()));
        drop(handed_back);
        assert_eq!(drops.count(), 1);
    });
}

/// `send` races the receiver awaiting: the receiver gets the value, and it is dropped once.
#[test]
fn send_racing_receive() {
    model(|| {
        let drops = DropCounter::new();
        let (tx, rx) = oneshot();
        let value = drops.guard();
        let sender = thread::spawn(move || tx.send(value).is_ok());
        let received = block_on(rx).expect("the sender sends");
        assert!(sender.join().unwrap());
        drop(received);
        assert_eq!(drops.count(), 1);
    });
}

/// The sender is dropped without sending while the receiver awaits: the receiver wakes with
/// an error instead of waiting forever.
#[test]
fn sender_dropped_while_receiving() {
    model(|| {
        let (tx, rx) = oneshot::<u32>();
        let sender = thread::spawn(move || drop(tx));
        assert!(block_on(rx).is_err());
        sender.join().unwrap();
    });
}

/// The receiver polls once (publishing one waker), then awaits with another while the value is
/// sent: its second poll takes the slot back and publishes again, racing the sender's
/// transition. It must get the value either way, never wait for a wake-up that went to the
/// first waker, and the value is dropped once.
#[test]
fn repoll_with_a_new_waker_racing_send() {
    model(|| {
        let drops = DropCounter::new();
        let (tx, mut rx) = oneshot();
        let value = drops.guard();
        let waker = Waker::from(std::sync::Arc::new(Unused));
        let first_poll = Pin::new(&mut rx).poll(&mut Context::from_waker(&waker));
        assert!(
            first_poll.is_pending(),
            "nothing was sent before the sender's thread began"
        );
        let sender = thread::spawn(move || tx.send(value).is_ok());
        let received = block_on(rx).expect("the sender sends");
        assert!(sender.join().unwrap());
        assert_eq!(drops.count(), 0);
        drop(received);
        assert_eq!(drops.count(), 1);
    });
}

/// `Sender::closed` awaits while the receiver is dropped on another thread: it resolves.
#[test]
fn closed_racing_receiver_drop() {
    model(|| {
        let (mut tx, rx) = oneshot::<u32>();
        let receiver = thread::spawn(move || drop(rx));
        block_on(tx.closed());
        assert!(tx.is_closed());
        receiver.join().unwrap();
    });
}

/// `try_recv` races `send`: it sees nothing yet or the value, and a receiver that saw nothing
/// then gets the value by awaiting; either way the value arrives once.
#[test]
fn try_recv_racing_send() {
    model(|| {
        let (tx, mut rx) = oneshot::<u32>();
        let sender = thread::spawn(move || tx.send(7).is_ok());
        let value = match rx.try_recv() {
            Ok(value) => value,
            Err(oneshot::TryRecvError::Empty) => block_on(rx).expect("the sender sends"),
            Err(oneshot::TryRecvError::Closed) => panic!("closed before the value arrived"),
        };
        assert_eq!(value, 7);
        assert!(sender.join().unwrap());
    });
}

/// A waker nobody needs to wake: the first poll's, which the second replaces.
struct Unused;

impl Wake for Unused {
    fn wake(self: std::sync::Arc<Self>) {}
}
