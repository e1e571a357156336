//! The machinery shared by [`Queue`](crate::Queue) and [`PriorityQueue`](crate::PriorityQueue):
//! items, capacity, waiting getters/putters, close, and the `task_done`/`join` counter.
//!
//! Handoffs keep the queue FIFO-fair and cancellation-safe:
//! - a put while getters wait gives the item straight to the first getter (stored in its waiter
//!   entry), so a later `get`/`try_get` cannot steal it;
//! - a put while the queue is full parks the *value* in the putter's entry; when room appears,
//!   the side that made room moves the first parked value into the queue and completes that put;
//! - a getter dropped after being handed an item gives it to the next getter, or back to the
//!   front of the queue;
//! - `close` wakes all getters (they drain what is left, then see `Closed`) and hands every
//!   parked value back to its putter.
//!
//! Capacity counts items in the buffer *plus* items handed to getters that have not yet
//! picked them up (`in_flight`), so an item given back by a cancelled getter always fits.

use std::fmt;
use std::task::{Context, Poll};

use crate::buffer::Buffer;
use crate::loom::Mutex;
use crate::queue_error::{Closed, PutError, TryGetError, TryPutError};
use crate::waiters::{WaitList, WaiterId, WakeList};

struct State<T> {
    buffer: Buffer<T>,
    capacity: Option<usize>,
    /// Items handed to notified getters that have not picked them up yet.
    in_flight: usize,
    closed: bool,
    /// Each getter's entry receives its item (`None` when woken by `close`).
    getters: WaitList<Option<T>>,
    /// Each putter's entry holds its value until accepted (`None`) or handed back on close.
    putters: WaitList<Option<T>>,
    /// Items put and not yet marked done with `task_done`.
    unfinished: usize,
    joiners: WaitList<()>,
}

impl<T> State<T> {
    fn has_room(&self) -> bool {
        self.capacity.map_or(true, |capacity| {
            self.buffer.len() + self.in_flight < capacity
        })
    }

    /// Places an item: to the first waiting getter if any, else into the buffer (at the front
    /// when it is an item being given back).
    fn place(&mut self, item: T, given_back: bool, wakers: &mut WakeList) {
        match self.getters.notify_front() {
            Some((slot, waker)) => {
                *slot = Some(item);
                self.in_flight += 1;
                wakers.push(waker);
            }
            None if given_back => self.buffer.push_front(item),
            None => self.buffer.push(item),
        }
    }

    /// Completes parked puts, in order, while there is room.
    fn admit_putters(&mut self, wakers: &mut WakeList) {
        while self.has_room() {
            let Some((slot, waker)) = self.putters.notify_front() else {
                break;
            };
            let item = slot.take().expect("a queued putter holds its value");
            wakers.push(waker);
            self.unfinished += 1;
            self.place(item, false, wakers);
        }
    }

    /// Takes the next buffered item, letting a parked putter in behind it.
    fn take(&mut self, wakers: &mut WakeList) -> Option<T> {
        let item = self.buffer.pop()?;
        self.admit_putters(wakers);
        Some(item)
    }
}

pub(crate) struct Channel<T> {
    state: Mutex<State<T>>,
}

impl<T> Channel<T> {
    pub(crate) fn new(buffer: Buffer<T>, capacity: Option<usize>) -> Self {
        Channel {
            state: Mutex::new(State {
                buffer,
                capacity,
                in_flight: 0,
                closed: false,
                getters: WaitList::new(),
                putters: WaitList::new(),
                unfinished: 0,
                joiners: WaitList::new(),
            }),
        }
    }

    pub(crate) fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(TryPutError::Closed(item));
        }
        if !state.putters.is_empty() || !state.has_room() {
            return Err(TryPutError::Full(item));
        }
        let mut wakers = WakeList::new();
        state.unfinished += 1;
        state.place(item, false, &mut wakers);
        drop(state);
        wakers.wake_all();
        Ok(())
    }

    /// One poll of a put. `item` is the value not yet given to the queue (`Some` until the
    /// first poll parks or places it).
    pub(crate) fn poll_put(
        &self,
        item: &mut Option<T>,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), PutError<T>>> {
        let mut state = self.state.lock();
        match waiter {
            None => {
                let value = item.take().expect("put polled after completion");
                if state.closed {
                    return Poll::Ready(Err(PutError(value)));
                }
                if state.putters.is_empty() && state.has_room() {
                    let mut wakers = WakeList::new();
                    state.unfinished += 1;
                    state.place(value, false, &mut wakers);
                    drop(state);
                    wakers.wake_all();
                    return Poll::Ready(Ok(()));
                }
                *waiter = Some(state.putters.push_back(Some(value), cx.waker()));
                Poll::Pending
            }
            Some(id) if state.putters.is_queued(id) => {
                state.putters.set_waker(id, cx.waker());
                Poll::Pending
            }
            Some(_) => {
                let removed = state
                    .putters
                    .remove(waiter.take().expect("matched Some above"));
                match removed.value {
                    // Accepted by `admit_putters`.
                    None => Poll::Ready(Ok(())),
                    // Handed back by `close`.
                    Some(value) => Poll::Ready(Err(PutError(value))),
                }
            }
        }
    }

    /// A put future dropped before completion. A parked value is dropped with it; an accepted
    /// one stays in the queue (that put had already happened).
    /// A future that never parked has nothing to undo and returns here, inline.
    #[inline]
    pub(crate) fn cancel_put(&self, waiter: Option<WaiterId>) {
        if let Some(id) = waiter {
            self.cancel_parked_put(id);
        }
    }

    #[cold]
    fn cancel_parked_put(&self, id: WaiterId) {
        let removed = self.state.lock().putters.remove(id);
        // Drop the value (user code) outside the lock.
        drop(removed);
    }

    pub(crate) fn try_get(&self) -> Result<T, TryGetError> {
        let mut state = self.state.lock();
        let mut wakers = WakeList::new();
        let result = match state.take(&mut wakers) {
            Some(item) => Ok(item),
            None if state.closed => Err(TryGetError::Closed),
            None => Err(TryGetError::Empty),
        };
        drop(state);
        wakers.wake_all();
        result
    }

    pub(crate) fn poll_get(
        &self,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, Closed>> {
        let mut state = self.state.lock();
        let mut wakers = WakeList::new();
        let result = match waiter {
            None => match state.take(&mut wakers) {
                Some(item) => Ok(item),
                None if state.closed => Err(Closed),
                None => {
                    *waiter = Some(state.getters.push_back(None, cx.waker()));
                    return Poll::Pending;
                }
            },
            Some(id) if state.getters.is_queued(id) => {
                state.getters.set_waker(id, cx.waker());
                return Poll::Pending;
            }
            Some(_) => {
                let removed = state
                    .getters
                    .remove(waiter.take().expect("matched Some above"));
                match removed.value {
                    Some(item) => {
                        state.in_flight -= 1;
                        state.admit_putters(&mut wakers);
                        Ok(item)
                    }
                    // Woken by `close`: drain anything given back since, else report closed.
                    None => state.take(&mut wakers).ok_or(Closed),
                }
            }
        };
        drop(state);
        wakers.wake_all();
        Poll::Ready(result)
    }

    /// A get future dropped before completion; an item already handed to it is passed on. A
    /// future that never queued has nothing to undo and returns here, inline.
    #[inline]
    pub(crate) fn cancel_get(&self, waiter: Option<WaiterId>) {
        if let Some(id) = waiter {
            self.cancel_queued_get(id);
        }
    }

    #[cold]
    fn cancel_queued_get(&self, id: WaiterId) {
        let mut state = self.state.lock();
        let mut wakers = WakeList::new();
        if let Some(item) = state.getters.remove(id).value {
            state.in_flight -= 1;
            state.place(item, true, &mut wakers);
        }
        drop(state);
        wakers.wake_all();
    }

    pub(crate) fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        let mut wakers = WakeList::new();
        // Queued getters exist only while the buffer is empty: they will see `Closed`.
        while let Some((_, waker)) = state.getters.notify_front() {
            wakers.push(waker);
        }
        // Parked putters keep their value in their entry: it is handed back to them.
        while let Some((_slot, waker)) = state.putters.notify_front() {
            // Mutant for the loom models (issue 7): lose the value instead of handing it back.
            #[cfg(magpie_mutant = "queue_close_drops_parked_values")]
            drop(_slot.take());
            wakers.push(waker);
        }
        drop(state);
        wakers.wake_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    pub(crate) fn len(&self) -> usize {
        self.state.lock().buffer.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.state.lock().buffer.is_empty()
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.state.lock().capacity
    }

    pub(crate) fn task_done(&self) {
        let mut state = self.state.lock();
        assert!(
            state.unfinished > 0,
            "task_done() called more times than there were items put in the queue"
        );
        state.unfinished -= 1;
        if state.unfinished > 0 {
            return;
        }
        let mut wakers = WakeList::new();
        while let Some(((), waker)) = state.joiners.notify_front() {
            wakers.push(waker);
        }
        drop(state);
        wakers.wake_all();
    }

    pub(crate) fn poll_join(
        &self,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let mut state = self.state.lock();
        match waiter {
            None if state.unfinished == 0 => Poll::Ready(()),
            None => {
                *waiter = Some(state.joiners.push_back((), cx.waker()));
                Poll::Pending
            }
            Some(id) if state.joiners.is_queued(id) => {
                state.joiners.set_waker(id, cx.waker());
                Poll::Pending
            }
            Some(_) => {
                state
                    .joiners
                    .remove(waiter.take().expect("matched Some above"));
                Poll::Ready(())
            }
        }
    }

    pub(crate) fn cancel_join(&self, waiter: Option<WaiterId>) {
        if let Some(id) = waiter {
            self.state.lock().joiners.remove(id);
        }
    }
}

impl<T> Channel<T> {
    /// `Debug` output for a handle type called `name`.
    pub(crate) fn fmt_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct(name)
            .field("len", &state.buffer.len())
            .field("capacity", &state.capacity)
            .field("closed", &state.closed)
            .field("unfinished", &state.unfinished)
            .finish_non_exhaustive()
    }
}
