//! [`Queue`] and [`PriorityQueue`]: multi-producer multi-consumer async queues (asyncio's
//! `Queue` and `PriorityQueue`). Both are handles to a shared [`Channel`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::Stream;

use crate::buffer::Buffer;
use crate::channel::Channel;
use crate::loom::Arc;
use crate::queue_error::{Closed, PutError, TryGetError, TryPutError};
use crate::waiters::WaiterId;

/// Generates the handle type and the operations common to both queues.
macro_rules! queue_handle {
    ($(#[$doc:meta])* $name:ident, $order:literal) => {
        $(#[$doc])*
        pub struct $name<T> {
            channel: Arc<Channel<T>>,
            /// The pending get of this handle's `Stream` implementation, if any.
            stream_waiter: Option<WaiterId>,
        }

        impl<T> $name<T> {
            fn with_channel(channel: Channel<T>) -> Self {
                $name {
                    channel: Arc::new(channel),
                    stream_waiter: None,
                }
            }

            /// Puts `value` in the queue, waiting while it is full.
            ///
            /// Waiting putters are served in FIFO order, with bounded barging (see [`Queue`]'s
            /// docs). Fails, handing `value` back, if the queue is closed
            /// (before or while waiting). Dropping the future while it waits drops `value` and
            /// gives up its place (passing on a turn it had been woken for); if the value had
            /// already been accepted, it stays in the queue.
            pub fn put(&self, value: T) -> Put<'_, T> {
                Put {
                    channel: &self.channel,
                    value: Some(value),
                    waiter: None,
                }
            }

            /// Puts `value` if there is room right now: it never overtakes putters that sleep
            /// in the queue, but it may take room that a putter was woken for (bounded
            /// barging, see [`Queue`]'s docs).
            pub fn try_put(&self, value: T) -> Result<(), TryPutError<T>> {
                self.channel.try_put(value)
            }

            #[doc = concat!("Takes the next item (", $order, "), waiting while the queue is empty.")]
            ///
            /// Waiting getters are served in FIFO order, with bounded barging: an item put while
            /// getters wait wakes the first of them, which takes it unless a newcomer was first
            /// (at most 4 misses; see [`Queue`]'s docs). After [`close`](Self::close), the
            /// remaining items are still returned, then `Err(Closed)`. Dropping the future gives
            /// up its place, and passes on a turn it had been woken for.
            pub fn get(&self) -> Get<'_, T> {
                Get {
                    channel: &self.channel,
                    waiter: None,
                    done: false,
                }
            }

            /// Takes the next item if one is available right now.
            pub fn try_get(&self) -> Result<T, TryGetError> {
                self.channel.try_get()
            }

            /// Closes the queue: later and pending puts fail and get their value back; items
            /// already queued can still be taken, after which getters see [`Closed`].
            pub fn close(&self) {
                self.channel.close()
            }

            /// Whether [`close`](Self::close) was called.
            pub fn is_closed(&self) -> bool {
                self.channel.is_closed()
            }

            /// The number of items in the queue.
            pub fn len(&self) -> usize {
                self.channel.len()
            }

            /// Whether the queue holds no item.
            pub fn is_empty(&self) -> bool {
                self.channel.is_empty()
            }

            /// The maximum number of items (`None` when unbounded).
            pub fn capacity(&self) -> Option<usize> {
                self.channel.capacity()
            }

            /// Marks one item taken from the queue as processed (asyncio's `task_done`).
            ///
            /// # Panics
            ///
            /// Panics if called more times than items were put.
            pub fn task_done(&self) {
                self.channel.task_done()
            }

            /// Waits until every item ever put has been marked with
            /// [`task_done`](Self::task_done) (asyncio's `join`).
            pub fn join(&self) -> Join<'_, T> {
                Join {
                    channel: &self.channel,
                    waiter: None,
                }
            }
        }

        impl<T> Clone for $name<T> {
            /// Another handle to the same queue.
            fn clone(&self) -> Self {
                $name {
                    channel: self.channel.clone(),
                    stream_waiter: None,
                }
            }
        }

        impl<T> Drop for $name<T> {
            fn drop(&mut self) {
                self.channel.cancel_get(self.stream_waiter.take());
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.channel.fmt_as(stringify!($name), f)
            }
        }

        /// Yields items like [`get`](Self::get) until the queue is closed and drained.
        impl<T> Stream for $name<T> {
            type Item = T;

            fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
                let this = self.get_mut();
                this.channel
                    .poll_get(&mut this.stream_waiter, cx)
                    .map(Result::ok)
            }
        }
    };
}

queue_handle! {
    /// A multi-producer, multi-consumer FIFO queue (asyncio's `Queue`).
    ///
    /// Cloning gives another handle to the same queue; every handle can put and get, and each
    /// implements [`Stream`] (the items until the queue is closed and drained).
    ///
    /// **Fairness:** waiting putters and waiting getters each queue in FIFO order, with
    /// *bounded barging* (the same protocol for every kind of queue). Puts and gets that need
    /// not wait take no channel lock ([`bounded`](Queue::bounded) up to 65 536 items takes
    /// none at all: its items live in a lock-free ring). The front waiter of each side is woken
    /// (one at a time) when an item (room) appears; until it runs, a newcomer or
    /// `try_get`/`try_put` may take it first (a *miss*: the waiter goes back to the front of
    /// the queue; taken before it could even be woken is a miss too). At its 4th miss it is
    /// served before anyone else: the next item is left for it (room is filled with its value
    /// directly). Waiters behind it keep their order. Items
    /// are never handed to a getter that has not run, so nothing is ever in flight.
    /// **Cancellation:** see [`put`](Queue::put) and [`get`](Queue::get): no item is ever lost
    /// or duplicated by dropping a pending future.
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_sync::Queue;
    ///
    /// futures_lite::future::block_on(async {
    ///     let queue = Queue::bounded(2);
    ///     let producer = queue.clone();
    ///     producer.put(1).await.unwrap();
    ///     producer.put(2).await.unwrap();
    ///     assert!(producer.try_put(3).unwrap_err().is_full());
    ///     assert_eq!(queue.get().await, Ok(1));
    ///     queue.close();
    ///     assert_eq!(queue.get().await, Ok(2));
    ///     assert!(queue.get().await.is_err());
    /// });
    /// ```
    Queue, "first in, first out"
}

impl<T> Queue<T> {
    /// Creates a queue without a capacity limit.
    pub fn unbounded() -> Self {
        Self::with_channel(Channel::locked(Buffer::fifo(), None))
    }

    /// Creates a queue holding at most `capacity` items, with lock-free puts and gets and
    /// bounded barging (see the type's docs). The ring that makes puts and gets lock-free
    /// allocates its slots up front, so a capacity above 65 536 keeps its items in a
    /// mutex-guarded buffer instead (as [`Queue::unbounded`] does: no allocation ahead of use,
    /// the same waiting protocol).
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0 (asyncio's `maxsize=0` means unbounded; use
    /// [`Queue::unbounded`] for that).
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = magpie_sync::Queue::<u8>::bounded(4);
    /// assert_eq!(queue.capacity(), Some(4));
    /// ```
    pub fn bounded(capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "Queue::bounded: capacity must be at least 1 (use Queue::unbounded for no limit)"
        );
        // The ring allocates a sequence word and an `Option<T>` per slot up front: 1 MiB for
        // small items at this bound.
        const RING_MAX_CAPACITY: usize = 1 << 16;
        // Only where its positions, `usize`s, cannot wrap in practice (2⁶² operations): on a
        // 32-bit target they would after 2³⁰ (18 minutes at a million a second), and every
        // push would then see the queue full for good.
        let ring_fits = cfg!(target_pointer_width = "64") && capacity <= RING_MAX_CAPACITY;
        if ring_fits {
            Self::with_channel(Channel::ring(capacity))
        } else {
            Self::with_channel(Channel::locked(Buffer::fifo(), Some(capacity)))
        }
    }
}

queue_handle! {
    /// A multi-producer, multi-consumer queue that returns its smallest item first (asyncio's
    /// `PriorityQueue`). Equal items come out in an unspecified order.
    ///
    /// Apart from the order items come out in, it behaves exactly like [`Queue`]: same
    /// capacity, close, `task_done`/`join`, fairness and cancellation guarantees.
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_sync::PriorityQueue;
    ///
    /// let queue = PriorityQueue::unbounded();
    /// for item in [3, 1, 2] {
    ///     queue.try_put(item).unwrap();
    /// }
    /// assert_eq!(queue.try_get(), Ok(1));
    /// assert_eq!(queue.try_get(), Ok(2));
    /// assert_eq!(queue.try_get(), Ok(3));
    /// ```
    PriorityQueue, "smallest first"
}

impl<T: Ord> PriorityQueue<T> {
    /// Creates a priority queue without a capacity limit.
    pub fn unbounded() -> Self {
        Self::with_channel(Channel::locked(Buffer::min_heap(), None))
    }

    /// Creates a priority queue holding at most `capacity` items.
    ///
    /// # Panics
    ///
    /// Panics if `capacity` is 0 (use [`PriorityQueue::unbounded`] for no limit).
    pub fn bounded(capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "PriorityQueue::bounded: capacity must be at least 1 (use PriorityQueue::unbounded for no limit)"
        );
        Self::with_channel(Channel::locked(Buffer::min_heap(), Some(capacity)))
    }
}

/// The future returned by `put` on a [`Queue`] or [`PriorityQueue`].
#[must_use = "futures do nothing unless polled"]
pub struct Put<'a, T> {
    channel: &'a Channel<T>,
    value: Option<T>,
    waiter: Option<WaiterId>,
}

impl<T> Future for Put<'_, T> {
    type Output = Result<(), PutError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.channel.poll_put(&mut this.value, &mut this.waiter, cx)
    }
}

// The value is only ever moved, never pinned.
impl<T> Unpin for Put<'_, T> {}

impl<T> Drop for Put<'_, T> {
    fn drop(&mut self) {
        self.channel.cancel_put(self.waiter.take());
    }
}

impl<T> fmt::Debug for Put<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Put")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

/// The future returned by `get` on a [`Queue`] or [`PriorityQueue`].
#[must_use = "futures do nothing unless polled"]
///
/// # Panics
///
/// Polled again after it returned `Ready` (it would take a second item, which its caller
/// does not expect: a buggy combinator would lose it).
pub struct Get<'a, T> {
    channel: &'a Channel<T>,
    waiter: Option<WaiterId>,
    /// Returned `Ready`.
    done: bool,
}

impl<T> Future for Get<'_, T> {
    type Output = Result<T, Closed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.done, "`Get` polled again after it returned `Ready`");
        let polled = this.channel.poll_get(&mut this.waiter, cx);
        this.done = polled.is_ready();
        polled
    }
}

impl<T> Drop for Get<'_, T> {
    fn drop(&mut self) {
        self.channel.cancel_get(self.waiter.take());
    }
}

impl<T> fmt::Debug for Get<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}

/// The future returned by `join` on a [`Queue`] or [`PriorityQueue`].
#[must_use = "futures do nothing unless polled"]
pub struct Join<'a, T> {
    channel: &'a Channel<T>,
    waiter: Option<WaiterId>,
}

impl<T> Future for Join<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.channel.poll_join(&mut this.waiter, cx)
    }
}

impl<T> Drop for Join<'_, T> {
    fn drop(&mut self) {
        self.channel.cancel_join(self.waiter.take());
    }
}

impl<T> fmt::Debug for Join<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}
