//! A single-value channel (asyncio's `loop.create_future()` + `set_result`).
//!
//! Create one with [`oneshot()`](crate::oneshot()) (or [`channel`]); the [`Sender`] sets the
//! result once, the [`Receiver`] is a future for it.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::loom::{Arc, AtomicUsize, Ordering, UnsafeCell};
use crate::waiters::wake_catching_panics;

// How it works.
//
// One allocation holds the value's slot, a slot for each side's waker, and a state word. Every
// operation is a load or a read-modify-write of that word, never a lock: the usual life of a
// channel (the receiver waits, the value is sent, the receiver takes it, both sides go) costs
// two read-modify-writes besides the `Arc`'s, where a mutex cost eight (docs/sync.md).
//
// The state's bits say who owns each slot:
// - `SENT` and `TX_GONE` are set together by `send`, and `TX_GONE` alone by a sender
//   dropped unsent: the sender's one transition. `RX_GONE` is the receiver's drop. Neither
//   side touches the state after its own transition, except to read it.
// - The value's slot is the sender's until its transition, the receiver's after it when it set
//   `SENT` — unless `RX_GONE` was set first: then the receiver never looks at it, and
//   `send` takes the value back.
// - A waker slot belongs to its side (`RX_WAKER`: the receiver's, `TX_WAKER`: the
//   sender's `closed`) while its flag is clear. The side publishes the waker by setting the
//   flag, with a compare-and-swap that fails if the other side's transition came first; it
//   takes the slot back (to replace the waker) by clearing the flag, with a compare-and-swap
//   that fails the same way. The other side's transition takes the waker out and wakes it if
//   it finds the flag set; after that transition the slot's side never touches it again (both
//   of its compare-and-swaps now fail), so neither side can lose the other's wake-up: the
//   flag, set or clear, is read by the one operation that also ends the other side.
// - What is left in the slots when the last handle goes is dropped with the allocation.

/// The receiver's waker is in its slot, published for the sender's transition.
const RX_WAKER: usize = 1 << 0;
/// The `Sender::closed` waker is in its slot, published for the receiver's drop.
const TX_WAKER: usize = 1 << 1;
/// `send` happened: it wrote the value into its slot, then set this with [`TX_GONE`]. It stays
/// set after the receiver took the value, or after `send` took it back.
const SENT: usize = 1 << 2;
/// The sender sent or was dropped.
const TX_GONE: usize = 1 << 3;
/// The receiver was dropped.
const RX_GONE: usize = 1 << 4;

struct Inner<T> {
    state: AtomicUsize,
    value: UnsafeCell<Option<T>>,
    /// The receiver's waker, woken by the sender's transition (`send` or its drop).
    rx_waker: UnsafeCell<Option<Waker>>,
    /// The waker of a `Sender::closed` future, woken by the receiver's drop.
    tx_waker: UnsafeCell<Option<Waker>>,
}

// The slots are only reached by the side that owns them under the state word's rules (the
// comment above the bits): the value moves from the sender's thread to the receiver's (or
// back), and each waker from its side's thread to the other's.
// SAFETY: so sharing `Inner` only moves a `T` or a `Waker` between threads, and `T: Send`
// suffices, as for a `Mutex<Option<T>>`.
unsafe impl<T: Send> Sync for Inner<T> {}
// SAFETY: `Inner` owns a `T` and two wakers (which are `Send`); sending it sends the `T`.
unsafe impl<T: Send> Send for Inner<T> {}
// A panic can leave nobody a broken channel to observe: no user code runs while a slot is half
// updated (a waker's `clone` runs before its slot is published, a value's `drop` after it was
// taken out), so the handles stay unwind safe, as they were when a (never poisoned) `Mutex`
// kept this state.
impl<T> UnwindSafe for Inner<T> {}
impl<T> RefUnwindSafe for Inner<T> {}

impl<T> Inner<T> {
    /// Publishes `waker` in `slot` for the other side's transition, whose bit is `done`; `flag`
    /// is the slot's bit. `Err` with the state once `done` is set: then nobody will wake the
    /// waker, and the caller is ready.
    ///
    /// # Safety
    ///
    /// `slot`, `flag` and `done` belong together (the receiver's slot, [`RX_WAKER`] and
    /// [`TX_GONE`]; or the sender's, [`TX_WAKER`] and [`RX_GONE`]), and the caller is the slot's
    /// side, holding its handle by `&mut` (so that no other call on this slot runs meanwhile).
    unsafe fn publish_waker(
        &self,
        slot: &UnsafeCell<Option<Waker>>,
        flag: usize,
        done: usize,
        waker: &Waker,
    ) -> Result<(), usize> {
        // Acquire: with `done` set, the caller reads what the other side left (the value).
        let mut state = self.state.load(Ordering::Acquire);
        // 1. Take the slot back if a waker was published before, unless the other side's
        //    transition came first (then that waker is being woken: nothing to replace).
        loop {
            if state & done != 0 {
                return Err(state);
            }
            if state & flag == 0 {
                break;
            }
            match self.state.compare_exchange_weak(
                state,
                state & !flag,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    state &= !flag;
                    break;
                }
                Err(now) => state = now,
            }
        }
        // 2. With `flag` clear and `done` not yet set, the slot is ours: the other side takes
        //    it only in a transition that finds `flag` set.
        // SAFETY: as just said, nobody else reads or writes the slot until we set `flag`, and
        // our caller's `&mut` handle makes this the only such call (this fn's contract).
        slot.with_mut(|slot| unsafe {
            match &*slot {
                Some(published) if published.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        });
        // 3. Publish it, unless the other side's transition came meanwhile: it did not see the
        //    waker (the flag was clear), so the caller must not wait for it. The waker stays in
        //    the slot, ours still, and goes with the channel.
        //    Release: the other side's transition (Acquire) reads the waker we wrote.
        loop {
            #[cfg(not(magpie_mutant = "oneshot_publish_ignores_transition"))]
            let published = self.state.compare_exchange_weak(
                state,
                state | flag,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            // Mutant for the loom models: the waker is published with no look at the other
            // side's transition, so a receiver whose sender sent meanwhile waits forever.
            #[cfg(magpie_mutant = "oneshot_publish_ignores_transition")]
            let published: Result<usize, usize> = Ok(self.state.fetch_or(flag, Ordering::AcqRel));
            match published {
                Ok(_) => return Ok(()),
                Err(now) if now & done != 0 => return Err(now),
                Err(now) => state = now,
            }
        }
    }

    /// Takes the waker out of `slot` if `prev`, the state before the caller's transition, says
    /// it was published (`flag`) and the slot's side had not ended first (`gone`: a waker it
    /// left behind is nobody's to wake).
    ///
    /// # Safety
    ///
    /// `slot` and `flag` belong together, and the caller is the other side (not the slot's),
    /// called once, after its transition: an Acquire read-modify-write that set its own
    /// `done` bit (the one the slot's side checks, [`TX_GONE`] for the receiver's slot,
    /// [`RX_GONE`] for the sender's) and returned `prev`.
    unsafe fn take_published(
        slot: &UnsafeCell<Option<Waker>>,
        prev: usize,
        flag: usize,
        gone: usize,
    ) -> Option<Waker> {
        if prev & (flag | gone) != flag {
            return None;
        }
        // SAFETY: the flag was set when our transition set our `done` bit, and from then on
        // the slot's side never touches the slot again (both of its compare-and-swaps fail):
        // it is ours. The transition's Acquire read the Release that published the waker.
        slot.with_mut(|slot| unsafe { (*slot).take() })
    }

    /// The receiver takes the value if `state` says it was sent (and it is still there).
    ///
    /// # Safety
    ///
    /// Called by the receiver only (through `&mut` of it), with a state it loaded with
    /// Acquire ordering.
    unsafe fn take_value(&self, state: usize) -> Option<T> {
        if state & SENT == 0 {
            return None;
        }
        // SAFETY: `SENT` is set and the receiver is alive (it is our caller), so the slot is
        // the receiver's; the Acquire load of `state` read the sender's Release, which came
        // after the value was written.
        self.value.with_mut(|slot| unsafe { (*slot).take() })
    }
}

/// Creates a connected sender/receiver pair (same as [`oneshot()`](crate::oneshot())).
///
/// # Examples
///
/// ```
/// let (tx, rx) = magpie_sync::oneshot::channel();
/// tx.send("done").unwrap();
/// assert_eq!(futures_lite::future::block_on(rx), Ok("done"));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: AtomicUsize::new(0),
        value: UnsafeCell::new(None),
        rx_waker: UnsafeCell::new(None),
        tx_waker: UnsafeCell::new(None),
    });
    (
        Sender {
            inner: Some(inner.clone()),
        },
        Receiver { inner },
    )
}

/// The receiving side failed: the [`Sender`] was dropped without sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RecvError(());

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oneshot sender dropped without sending")
    }
}

impl Error for RecvError {}

/// The error of [`Receiver::try_recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryRecvError {
    /// Nothing was sent yet, and the sender still exists.
    Empty,
    /// The sender was dropped without sending (or the value was already taken).
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("no value sent yet"),
            TryRecvError::Closed => f.write_str("oneshot sender dropped without sending"),
        }
    }
}

impl Error for TryRecvError {}

/// Sets the result of a oneshot channel, once.
pub struct Sender<T> {
    /// `None` once `send` consumed the sender (so `Drop` has nothing left to do).
    inner: Option<Arc<Inner<T>>>,
}

impl<T> Sender<T> {
    /// Sends `value` to the receiver. Fails, handing `value` back, if the receiver was dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = magpie_sync::oneshot::<u8>();
    /// drop(rx);
    /// assert_eq!(tx.send(7), Err(7));
    /// ```
    pub fn send(mut self, value: T) -> Result<(), T> {
        let inner = self.inner.take().expect("sender is live until send");
        // SAFETY: `TX_GONE` is clear (only this sender sets it, and `send` consumes it), so the
        // value's slot is the sender's.
        inner.value.with_mut(|slot| unsafe { *slot = Some(value) });
        // The transition. Release: the receiver's Acquire load that sees `SENT` reads the
        // value; Acquire: we read the receiver's published waker.
        let prev = inner.state.fetch_or(SENT | TX_GONE, Ordering::AcqRel);
        if prev & RX_GONE != 0 {
            // The receiver went first, and never looks at the value: it goes back.
            // SAFETY: the receiver's drop came before our transition, so neither it nor any
            // earlier poll or `try_recv` of the receiver saw `SENT` (they take the value only
            // then): the slot is still the sender's.
            let value = inner.value.with_mut(|slot| unsafe { (*slot).take() });
            return Err(value.expect("the value was just written"));
        }
        // SAFETY: the receiver's slot, after our AcqRel transition, which set `TX_GONE` and
        // returned `prev`.
        if let Some(waker) =
            unsafe { Inner::<T>::take_published(&inner.rx_waker, prev, RX_WAKER, RX_GONE) }
        {
            wake_catching_panics(waker);
        }
        Ok(())
    }

    /// Whether the receiver was dropped (a `send` would fail).
    pub fn is_closed(&self) -> bool {
        let inner = self.inner.as_ref().expect("sender is live until send");
        // Acquire: what the receiver's thread did before its drop happens before a `true`.
        inner.state.load(Ordering::Acquire) & RX_GONE != 0
    }

    /// Waits until the receiver is dropped (e.g. to stop computing a result nobody wants).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, rx) = magpie_sync::oneshot::<u8>();
    /// drop(rx);
    /// futures_lite::future::block_on(tx.closed());
    /// assert!(tx.is_closed());
    /// ```
    pub fn closed(&mut self) -> SenderClosed<'_, T> {
        SenderClosed { sender: self }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        // The transition of a sender dropped unsent: the receiver wakes to a `RecvError`.
        // Acquire, to take the published waker; Release, so that what this thread did before
        // the drop happens before the receiver's `RecvError` (as the mutex ordered it).
        let prev = inner.state.fetch_or(TX_GONE, Ordering::AcqRel);
        // SAFETY: the receiver's slot, after our AcqRel transition, which set `TX_GONE` and
        // returned `prev`.
        let waker = unsafe { Inner::<T>::take_published(&inner.rx_waker, prev, RX_WAKER, RX_GONE) };
        // Mutant for the loom models (issue 7): a sender dropped unsent wakes nobody, so a
        // receiver that registered its waker first waits forever.
        #[cfg(magpie_mutant = "oneshot_drop_wakes_nobody")]
        let waker: Option<Waker> = {
            drop(waker);
            None
        };
        if let Some(waker) = waker {
            wake_catching_panics(waker);
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The future returned by [`Sender::closed`].
#[must_use = "futures do nothing unless polled"]
pub struct SenderClosed<'a, T> {
    sender: &'a mut Sender<T>,
}

impl<T> Future for SenderClosed<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = self
            .sender
            .inner
            .as_ref()
            .expect("sender is live until send");
        // SAFETY: the sender's slot and bits, and we are the sender, by `&mut` (`closed`).
        match unsafe { inner.publish_waker(&inner.tx_waker, TX_WAKER, RX_GONE, cx.waker()) } {
            Ok(()) => Poll::Pending,
            Err(_) => Poll::Ready(()),
        }
    }
}

impl<T> fmt::Debug for SenderClosed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderClosed").finish_non_exhaustive()
    }
}

/// Receives the result of a oneshot channel: a future of `Result<T, RecvError>`.
#[must_use = "futures do nothing unless polled"]
pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Receiver<T> {
    /// Takes the value if it has been sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_sync::oneshot::TryRecvError;
    ///
    /// let (tx, mut rx) = magpie_sync::oneshot();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let state = self.inner.state.load(Ordering::Acquire);
        // SAFETY: we are the receiver (`&mut self`), and `state` was loaded with Acquire.
        match unsafe { self.inner.take_value(state) } {
            Some(value) => Ok(value),
            None if state & TX_GONE == 0 => Err(TryRecvError::Empty),
            None => Err(TryRecvError::Closed),
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &self.inner;
        // SAFETY: the receiver's slot and bits, and we are the receiver (`Pin<&mut Self>`).
        match unsafe { inner.publish_waker(&inner.rx_waker, RX_WAKER, TX_GONE, cx.waker()) } {
            Ok(()) => Poll::Pending,
            // The sender is done: with the value, or dropped unsent (or the value was taken).
            // SAFETY: we are the receiver (`Pin<&mut Self>`); `publish_waker` loads with
            // Acquire ordering.
            Err(state) => Poll::Ready(unsafe { inner.take_value(state) }.ok_or(RecvError(()))),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let state = self.inner.state.load(Ordering::Acquire);
        // The receiver's transition, which a sender that is done no longer looks for: skipped
        // then (the usual end, after the value was received).
        // AcqRel: Acquire to take the sender's published `closed` waker (and a value sent
        // meanwhile); Release so that what this thread did before the drop happens before the
        // sender's `is_closed` or `closed` sees it.
        let prev = if state & TX_GONE != 0 {
            state
        } else {
            self.inner.state.fetch_or(RX_GONE, Ordering::AcqRel)
        };
        // A value sent but never received is dropped here, with the receiver.
        // SAFETY: we are the receiver, and `prev` was read with Acquire ordering.
        drop(unsafe { self.inner.take_value(prev) });
        // SAFETY: the sender's slot, after our transition, which set `RX_GONE` and returned
        // `prev`. (When it was skipped, `TX_GONE` in `prev` makes this take nothing.)
        if let Some(waker) =
            unsafe { Inner::<T>::take_published(&self.inner.tx_waker, prev, TX_WAKER, TX_GONE) }
        {
            wake_catching_panics(waker);
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
