//! Loom models of `magpie_sync::oneshot` (built on loom's types under `--cfg loom`).
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Wake, Waker};

use loom::future::block_on;
use loom::thread;
use magpie_loom_tests::{model, Counter, DropCounter};
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

/// A waker that counts its wakes and its drops on loom's atomics (so a model can assert that a
/// waker left in a channel is dropped once, and that a stale one is never woken).
struct Tracked {
    wakes: Counter,
    drops: Counter,
}

impl Wake for Tracked {
    fn wake(self: std::sync::Arc<Self>) {
        self.wakes.incr();
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.incr();
    }
}

/// A tracked waker, with its wake and drop counters.
fn tracked() -> (Waker, Counter, Counter) {
    let (wakes, drops) = (Counter::new(), Counter::new());
    let waker = Waker::from(std::sync::Arc::new(Tracked {
        wakes: wakes.clone(),
        drops: drops.clone(),
    }));
    (waker, wakes, drops)
}

/// A receiver that published its waker is dropped while the value is sent: the value is
/// dropped once (with the channel, or handed back), and the waker is dropped once, woken or not.
#[test]
fn receiver_with_a_published_waker_dropped_racing_send() {
    model(|| {
        let drops = DropCounter::new();
        let (tx, mut rx) = oneshot();
        let (waker, _wakes, waker_drops) = tracked();
        assert!(Pin::new(&mut rx)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        drop(waker);
        let value = drops.guard();
        let sender = thread::spawn(move || tx.send(value).err());
        drop(rx);
        drop(sender.join().unwrap());
        assert_eq!(drops.count(), 1);
        assert_eq!(waker_drops.get(), 1);
    });
}

/// Both sides poll again with new wakers at once, the receiver its receive and the sender its
/// `closed` (each compare-and-swap then races the other side's flag, not only its transition);
/// then the receiver goes: `closed` resolves, whichever of its wakers was published when the
/// receiver went.
#[test]
fn both_sides_repoll_at_once() {
    model(|| {
        let (mut tx, mut rx) = oneshot::<u32>();
        let (first, _, _) = tracked();
        assert!(Pin::new(&mut rx)
            .poll(&mut Context::from_waker(&first))
            .is_pending());
        let sender = thread::spawn(move || {
            let (stale, stale_wakes, _) = tracked();
            {
                let mut closed = tx.closed();
                let _ = Pin::new(&mut closed).poll(&mut Context::from_waker(&stale));
                block_on(closed);
            }
            // Woken only if the receiver went before `block_on` replaced it, and then once.
            assert!(stale_wakes.get() <= 1, "a waker was woken twice");
            assert_eq!(tx.send(5), Err(5));
        });
        let (second, _, _) = tracked();
        assert!(Pin::new(&mut rx)
            .poll(&mut Context::from_waker(&second))
            .is_pending());
        drop(rx);
        sender.join().unwrap();
    });
}

/// The receiver polls again with a new waker while the sender is dropped unsent: it resolves to
/// the error, and the first waker, replaced, is dropped once.
#[test]
fn repoll_racing_sender_drop() {
    model(|| {
        let (tx, mut rx) = oneshot::<u32>();
        let (first, _, first_drops) = tracked();
        assert!(Pin::new(&mut rx)
            .poll(&mut Context::from_waker(&first))
            .is_pending());
        drop(first);
        let sender = thread::spawn(move || drop(tx));
        assert!(block_on(&mut rx).is_err());
        assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
        sender.join().unwrap();
        drop(rx);
        assert_eq!(first_drops.get(), 1);
    });
}
