//! A single-value channel (asyncio's `loop.create_future()` + `set_result`).
//!
//! Create one with [`oneshot()`](crate::oneshot()) (or [`channel`]); the [`Sender`] sets the
//! result once, the [`Receiver`] is a future for it.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::loom::{Arc, Mutex};

struct Inner<T> {
    value: Option<T>,
    sender_alive: bool,
    receiver_alive: bool,
    /// The receiver's waker, woken by `send` or the sender's drop.
    receiver_waker: Option<Waker>,
    /// The waker of a `Sender::closed` future, woken by the receiver's drop.
    sender_waker: Option<Waker>,
}

type Shared<T> = Arc<Mutex<Inner<T>>>;

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
    let shared = Arc::new(Mutex::new(Inner {
        value: None,
        sender_alive: true,
        receiver_alive: true,
        receiver_waker: None,
        sender_waker: None,
    }));
    (
        Sender {
            shared: Some(shared.clone()),
        },
        Receiver { shared },
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
    shared: Option<Shared<T>>,
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
        let shared = self.shared.take().expect("sender is live until send");
        let mut inner = shared.lock();
        if !inner.receiver_alive {
            return Err(value);
        }
        inner.value = Some(value);
        inner.sender_alive = false;
        let waker = inner.receiver_waker.take();
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Whether the receiver was dropped (a `send` would fail).
    pub fn is_closed(&self) -> bool {
        let shared = self.shared.as_ref().expect("sender is live until send");
        !shared.lock().receiver_alive
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
        let Some(shared) = self.shared.take() else {
            return;
        };
        let mut inner = shared.lock();
        inner.sender_alive = false;
        let waker = inner.receiver_waker.take();
        // Mutant for the loom models (issue 7): a sender dropped unsent wakes nobody, so a
        // receiver that registered its waker first waits forever.
        #[cfg(magpie_mutant = "oneshot_drop_wakes_nobody")]
        let waker: Option<Waker> = {
            drop(waker);
            None
        };
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
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
        let shared = self
            .sender
            .shared
            .as_ref()
            .expect("sender is live until send");
        let mut inner = shared.lock();
        if !inner.receiver_alive {
            return Poll::Ready(());
        }
        match &inner.sender_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => inner.sender_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
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
    shared: Shared<T>,
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
        let mut inner = self.shared.lock();
        match inner.value.take() {
            Some(value) => Ok(value),
            None if inner.sender_alive => Err(TryRecvError::Empty),
            None => Err(TryRecvError::Closed),
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = self.shared.lock();
        if let Some(value) = inner.value.take() {
            return Poll::Ready(Ok(value));
        }
        if !inner.sender_alive {
            return Poll::Ready(Err(RecvError(())));
        }
        match &inner.receiver_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => inner.receiver_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.receiver_alive = false;
        let value = inner.value.take();
        let waker = inner.sender_waker.take();
        drop(inner);
        // A value sent but never received is dropped here, outside the lock.
        drop(value);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
