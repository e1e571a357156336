//! Loom models of `magpie_sync::oneshot` (built on loom's types under `--cfg loom`).
#![cfg(loom)]

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
