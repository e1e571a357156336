//! The machinery shared by [`Queue`](crate::Queue) and [`PriorityQueue`](crate::PriorityQueue):
//! items, capacity, waiting getters/putters, close, and the `task_done`/`join` counter.
//!
//! There are two channels behind one [`Channel`] enum: a bounded FIFO `Queue` uses the
//! lock-free [`RingChannel`]; an unbounded `Queue` and every `PriorityQueue` use the
//! mutex-guarded [`LockedChannel`].
//!
//! # `LockedChannel`: strict FIFO handoff
//!
//! Every operation takes the mutex. Handoffs keep the queue FIFO-fair and cancellation-safe:
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
//!
//! # `RingChannel`: lock-free fast paths, bounded barging
//!
//! Items live in a [`Ring`] (`ring.rs`: a Vyukov bounded array queue whose `head`/`tail` words
//! also carry the flags `GET_BLOCKED`, `PUT_BLOCKED` and `CLOSED`). A put that finds room, or a
//! get that finds an item, claims a slot with one CAS and takes no lock; producers and consumers
//! write different cache lines. The mutex guards only the waiter lists and their protocol
//! state. Items never leave the ring for a waiter: a waiting getter is *woken* to take an item
//! itself, so no item is ever handed to a getter that has not run, and capacity is exactly the
//! ring's. The protocol, the same on both sides (a getter waits for an item as a putter waits
//! for room), mirrors the semaphore's (`raw_semaphore.rs`):
//!
//! 1. A get that finds the ring empty (a put that finds it full) queues under the mutex.
//! 2. While waiters sleep and none is *woken*, the next put (get) wakes the front one — at most
//!    one per side is on its way at a time; meanwhile operations stay lock-free. When a woken
//!    waiter succeeds, it wakes the next one if there is more for it.
//! 3. Until it runs, anyone may take the item (room) first: a newcomer, `try_get` (`try_put`)
//!    (*barging*). A woken waiter that finds nothing (a *miss*) goes back to the *front* of its
//!    queue, asleep.
//! 4. At its [`MAX_MISSES`]th miss it *starves*. A starving getter sets `GET_BLOCKED`: fast pops
//!    fail and every other getter queues behind it, so the next item is left for it (it is
//!    woken for it as above). A starving putter sets `PUT_BLOCKED`, and the next room is taken
//!    for its value directly by whoever made it (`settle`), completing its put (its entry's value
//!    becomes `None`: accepted). Then barging is allowed again.
//!
//! A dropped woken waiter passes its turn to the next (a dropped starving one gives up its
//! priority: the next waiter starts counting misses afresh); a
//! dropped waiter whose value was accepted leaves it queued. `close` sets `CLOSED` (no push
//! succeeds after it; pushes that had claimed a slot finish), wakes every getter (each takes
//! what is left, else sees `Closed`; one that must wait for a push still finishing queues
//! again, and the pop that drains the closed queue wakes it) and hands every parked value back.
//!
//! **No lost wakeup.** Waiters announce themselves in the read-mostly `wake` word
//! (`GETTERS_WAIT`, `PUTTERS_WAIT`), set under the mutex *before* a `SeqCst` fence and a fresh
//! look at the ring ([`Ring::has_item`] / [`Ring::has_room`]). Every push (pop) stores the slot's
//! `seq`, then fences, then reads `wake`. By the fences' total order, either the waiter's look
//! sees the slot (and it is woken at once), or the operation sees the flag and settles the
//! waiters under the mutex. The flag is up exactly while waiters sleep with nobody woken; while
//! one is woken it is responsible for waking the next. `has_item`/`has_room` re-read the index
//! when it moved, so "nothing" means nothing at one instant (a push at the head that claimed its
//! slot but has not filled it is covered by its own fence-and-read).
//!
//! **Memory ordering.** Slot handover is Release (`seq` store) / Acquire (`seq` load); index
//! CASes only assign positions (Relaxed); the `wake` word is ordered by the `SeqCst` fences; the
//! `task_done` count is AcqRel, its loads Acquire, and `task_done` checks `unfinished` again
//! under the mutex before it releases joiners. `unfinished` is `tail - done`: every successful push advances
//! `tail`, so `join` needs no counter on the put path.

use std::fmt;
use std::task::{Context, Poll};

use crate::buffer::Buffer;
use crate::loom::{fence, AtomicUsize, Mutex, Ordering};
use crate::queue_error::{Closed, PutError, TryGetError, TryPutError};
use crate::ring::{Padded, PushError, Ring, CLOSED};
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

/// The mutex-guarded channel, for [`PriorityQueue`](crate::PriorityQueue) and an unbounded
/// [`Queue`](crate::Queue): every operation takes the mutex; handoffs are strict FIFO.
pub(crate) struct LockedChannel<T> {
    state: Mutex<State<T>>,
}

impl<T> LockedChannel<T> {
    pub(crate) fn new(buffer: Buffer<T>, capacity: Option<usize>) -> Self {
        LockedChannel {
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

impl<T> LockedChannel<T> {
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

/// `RingChannel::wake` flag: a getter sleeps and none is on its way (or the front one starves):
/// a push must settle the getters.
const GETTERS_WAIT: usize = 1 << 0;
/// `RingChannel::wake` flag: the same for putters, which a pop must settle.
const PUTTERS_WAIT: usize = 1 << 1;

/// How many misses a woken waiter takes before it starves (and is served directly). Smaller
/// under loom, to bring starvation closer; the loom models reach a getter's miss, while
/// starvation itself (of getters and putters) is tested deterministically in
/// `sync/tests/queue.rs`.
#[cfg(not(loom))]
pub(crate) const MAX_MISSES: u32 = 4;
#[cfg(loom)]
pub(crate) const MAX_MISSES: u32 = 2;

/// A waiting getter's entry.
#[derive(Debug, Default)]
struct GetterEntry {
    /// Times it was woken to take an item and found none. At `MAX_MISSES` it starves.
    misses: u32,
    /// Set when it is woken to take an item (`false` for a getter woken by `close`).
    designated: bool,
}

/// A parked putter's entry.
struct PutterEntry<T> {
    /// Its value, until a handoff accepts it (`None`) or `close` hands it back.
    value: Option<T>,
    /// Times it was woken to retry and found no room. At `MAX_MISSES` it starves.
    misses: u32,
    /// Set when it is woken to retry (`false` for a putter woken by `close` or a handoff).
    designated: bool,
}

/// What a [`RingChannel`] keeps under its mutex: the waiters and their protocol state.
struct RingState<T> {
    getters: WaitList<GetterEntry>,
    /// A getter was woken to take an item and has not retried yet.
    getter_woken: bool,
    /// The front getter starves: only it may pop (`GET_BLOCKED`).
    getter_starving: bool,
    putters: WaitList<PutterEntry<T>>,
    /// A putter was woken to retry and has not retried yet.
    putter_woken: bool,
    /// The front putter starves: nobody else may push (`PUT_BLOCKED`); room made next goes to
    /// its value directly.
    putter_starving: bool,
    closed: bool,
    joiners: WaitList<()>,
}

/// The channel of a bounded FIFO [`Queue`](crate::Queue): items live in a lock-free [`Ring`],
/// so a put or get that neither waits nor has to wake a waiter takes no lock. The module docs
/// give the protocol (bounded barging).
pub(crate) struct RingChannel<T> {
    ring: Ring<T>,
    /// `GETTERS_WAIT` and `PUTTERS_WAIT`: read after every fast operation, written only under
    /// the mutex (so, rarely), on a line of its own.
    wake: Padded<AtomicUsize>,
    /// How many times `task_done` was called; `tail - done` items are unfinished.
    done: AtomicUsize,
    state: Mutex<RingState<T>>,
}

impl<T> RingChannel<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        RingChannel {
            ring: Ring::new(capacity),
            wake: Padded(AtomicUsize::new(0)),
            done: AtomicUsize::new(0),
            state: Mutex::new(RingState {
                getters: WaitList::new(),
                getter_woken: false,
                getter_starving: false,
                putters: WaitList::new(),
                putter_woken: false,
                putter_starving: false,
                closed: false,
                joiners: WaitList::new(),
            }),
        }
    }

    /// After a push: if a getter sleeps with nobody on the way, wake it.
    #[inline]
    fn after_push(&self) {
        // SeqCst fence: orders our `seq` store (the push) before the load of `wake`, against
        // `settle`'s `wake` write, fence, and look at the ring: one of the two sees the other,
        // so an item and a sleeping getter always meet.
        fence(Ordering::SeqCst);
        // Relaxed: the fence above orders it.
        if self.wake.0.load(Ordering::Relaxed) & GETTERS_WAIT != 0 {
            self.settle_locked();
        }
    }

    /// After a pop: if a putter sleeps with nobody on the way, wake or serve it; if a getter
    /// sleeps, this pop may have drained a closed queue, which it must be told.
    #[inline]
    fn after_pop(&self) {
        // SeqCst fence: as in `after_push`, against a putter's registration (or a getter's
        // look at `head` after `close`).
        fence(Ordering::SeqCst);
        // Relaxed: the fence above orders it.
        if self.wake.0.load(Ordering::Relaxed) != 0 {
            self.settle_locked();
        }
    }

    #[cold]
    fn settle_locked(&self) {
        let mut state = self.state.lock();
        let mut wakers = WakeList::new();
        self.settle(&mut state, &mut wakers);
        drop(state);
        wakers.wake_all();
    }

    /// Raises `flag` in `wake`, then fences, so that the caller's next look at the ring and a
    /// racing operation's look at `wake` cannot both miss. (Always a read-modify-write, even
    /// when the flag is up already, so that it is sequenced before our fence.)
    fn announce(&self, flag: usize) {
        // Relaxed: ordered by the fence after it (see `after_push`).
        self.wake.0.fetch_or(flag, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Wakes or serves whoever must be, then makes the flags match the state. Called under the
    /// mutex after every change the slow paths make.
    fn settle(&self, state: &mut RingState<T>, wakers: &mut WakeList) {
        // A starving putter (queued at the front) is served directly when room appears.
        if state.putter_starving {
            self.ring.set_put_blocked(true);
            self.announce(PUTTERS_WAIT);
            let entry = state
                .putters
                .front_mut()
                .expect("a starving putter is queued");
            let value = entry.value.take().expect("a queued putter holds its value");
            match self.ring.push(value, true) {
                Ok(()) => {
                    let (_, waker) = state.putters.notify_front().expect("checked above");
                    wakers.push(waker);
                    state.putter_starving = false;
                    // The item may be for a sleeping getter: checked below.
                }
                Err((value, _)) => {
                    let entry = state.putters.front_mut().expect("checked above");
                    entry.value = Some(value);
                }
            }
        }
        // Putters sleep and none is on its way: wake the front one if there is room.
        if !state.putter_starving && !state.putter_woken && !state.putters.is_empty() {
            self.announce(PUTTERS_WAIT);
            if self.ring.has_room() {
                let (entry, waker) = state.putters.notify_front().expect("checked above");
                entry.designated = true;
                state.putter_woken = true;
                wakers.push(waker);
            }
        }
        // Getters sleep and none is on its way: wake the front one if there is an item.
        if !state.getter_woken && !state.getters.is_empty() {
            if state.getter_starving {
                self.ring.set_get_blocked(true);
            }
            self.announce(GETTERS_WAIT);
            if state.closed && self.drained() {
                // Nothing will come: wake them all to see `Closed`.
                while let Some((_, waker)) = state.getters.notify_front() {
                    wakers.push(waker);
                }
                state.getter_starving = false;
            } else if self.ring.has_item() {
                let (entry, waker) = state.getters.notify_front().expect("checked above");
                entry.designated = true;
                state.getter_woken = true;
                wakers.push(waker);
            }
        }
        let putters_wait = !state.putters.is_empty() && !state.putter_woken;
        let getters_wait = !state.getters.is_empty() && !state.getter_woken;
        let wake = (if putters_wait { PUTTERS_WAIT } else { 0 })
            | (if getters_wait { GETTERS_WAIT } else { 0 });
        // Relaxed: lowering a flag needs no order, and raising one was done by `announce`.
        if self.wake.0.load(Ordering::Relaxed) != wake {
            self.wake.0.store(wake, Ordering::Relaxed);
        }
        self.ring.set_put_blocked(state.putter_starving);
        self.ring.set_get_blocked(state.getter_starving);
    }

    pub(crate) fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        match self.ring.push(item, false) {
            Ok(()) => {
                self.after_push();
                Ok(())
            }
            Err((item, PushError::Closed)) => Err(TryPutError::Closed(item)),
            Err((item, PushError::Full | PushError::Blocked)) => Err(TryPutError::Full(item)),
        }
    }

    pub(crate) fn poll_put(
        &self,
        item: &mut Option<T>,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), PutError<T>>> {
        if waiter.is_none() {
            let value = item.take().expect("put polled after completion");
            let value = match self.ring.push(value, false) {
                Ok(()) => {
                    self.after_push();
                    return Poll::Ready(Ok(()));
                }
                Err((value, PushError::Closed)) => return Poll::Ready(Err(PutError(value))),
                Err((value, PushError::Full | PushError::Blocked)) => value,
            };
            return self.park_put(value, waiter, cx);
        }
        let mut state = self.state.lock();
        let mut wakers = WakeList::new();
        let result = self.serve_putter(&mut state, waiter, cx, &mut wakers);
        drop(state);
        wakers.wake_all();
        result
    }

    #[cold]
    fn park_put(
        &self,
        value: T,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), PutError<T>>> {
        let mut state = self.state.lock();
        if state.closed {
            return Poll::Ready(Err(PutError(value)));
        }
        let mut wakers = WakeList::new();
        let entry = PutterEntry {
            value: Some(value),
            misses: 0,
            designated: false,
        };
        *waiter = Some(state.putters.push_back(entry, cx.waker()));
        self.settle(&mut state, &mut wakers);
        let result = self.serve_putter(&mut state, waiter, cx, &mut wakers);
        drop(state);
        wakers.wake_all();
        result
    }

    /// A queued putter's turn: still asleep, accepted, handed back, or woken to retry.
    fn serve_putter(
        &self,
        state: &mut RingState<T>,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
        wakers: &mut WakeList,
    ) -> Poll<Result<(), PutError<T>>> {
        loop {
            let id = waiter.as_ref().expect("a waiting put has an entry");
            if state.putters.is_queued(id) {
                state.putters.set_waker(id, cx.waker());
                return Poll::Pending;
            }
            let entry = state.putters.get_mut(id);
            let designated = std::mem::take(&mut entry.designated);
            let Some(value) = entry.value.take() else {
                // Accepted by a starvation handoff.
                let removed = state.putters.remove(waiter.take().expect("checked above"));
                debug_assert!(!removed.value.designated);
                return Poll::Ready(Ok(()));
            };
            if designated {
                state.putter_woken = false;
            }
            if state.closed {
                // Handed back by `close` (or woken before it and retrying after).
                state.putters.remove(waiter.take().expect("checked above"));
                self.settle(state, wakers);
                return Poll::Ready(Err(PutError(value)));
            }
            debug_assert!(
                designated,
                "a putter is notified only to retry, by a handoff or by close"
            );
            match self.ring.push(value, false) {
                Ok(()) => {
                    state.putters.remove(waiter.take().expect("checked above"));
                    self.settle(state, wakers);
                    return Poll::Ready(Ok(()));
                }
                Err((value, PushError::Closed)) => {
                    // `close` has begun and will not see our entry as queued: hand back now.
                    state.putters.remove(waiter.take().expect("checked above"));
                    self.settle(state, wakers);
                    return Poll::Ready(Err(PutError(value)));
                }
                Err((value, PushError::Full | PushError::Blocked)) => {
                    // A miss: back to the front of the line; starve at the last one.
                    let entry = state.putters.get_mut(id);
                    entry.value = Some(value);
                    entry.misses += 1;
                    if entry.misses >= MAX_MISSES {
                        state.putter_starving = true;
                    }
                    state.putters.relink_front(id, cx.waker());
                    self.settle(state, wakers);
                }
            }
        }
    }

    #[inline]
    pub(crate) fn cancel_put(&self, waiter: Option<WaiterId>) {
        if let Some(id) = waiter {
            self.cancel_parked_put(id);
        }
    }

    /// A parked put dropped: its value (if not accepted yet) is dropped with it, and a wake or
    /// a starvation handoff meant for it passes to the next putter.
    #[cold]
    fn cancel_parked_put(&self, id: WaiterId) {
        let mut state = self.state.lock();
        let removed = state.putters.remove(id);
        if removed.notified && removed.value.designated {
            state.putter_woken = false;
        }
        if !removed.notified && removed.value.misses >= MAX_MISSES {
            // It was the starving front putter, still waiting for its handoff.
            state.putter_starving = false;
        }
        let mut wakers = WakeList::new();
        self.settle(&mut state, &mut wakers);
        drop(state);
        wakers.wake_all();
        // Drop the value (user code) outside the lock.
        drop(removed);
    }

    /// After `close`: every item pushed (or being pushed) has been popped.
    fn drained(&self) -> bool {
        let (tail, flags) = self.ring.tail();
        let (head, _) = self.ring.head();
        flags & CLOSED != 0 && tail.wrapping_sub(head) as isize <= 0
    }

    pub(crate) fn try_get(&self) -> Result<T, TryGetError> {
        match self.ring.pop(false) {
            Ok(item) => {
                self.after_pop();
                Ok(item)
            }
            Err(_) if self.drained() => Err(TryGetError::Closed),
            Err(_) => Err(TryGetError::Empty),
        }
    }

    pub(crate) fn poll_get(
        &self,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, Closed>> {
        if waiter.is_none() {
            if let Ok(item) = self.ring.pop(false) {
                self.after_pop();
                return Poll::Ready(Ok(item));
            }
        }
        self.wait_get(waiter, cx)
    }

    #[cold]
    fn wait_get(
        &self,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, Closed>> {
        let mut state = self.state.lock();
        let mut wakers = WakeList::new();
        let result = self.serve_getter(&mut state, waiter, cx, &mut wakers);
        drop(state);
        wakers.wake_all();
        result
    }

    /// A get's slow path: queue (or stay queued) until woken, then retry.
    fn serve_getter(
        &self,
        state: &mut RingState<T>,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
        wakers: &mut WakeList,
    ) -> Poll<Result<T, Closed>> {
        loop {
            let Some(id) = waiter.as_ref() else {
                // Not queued (first slow poll, or woken by `close` and requeuing).
                if self.drained() {
                    return Poll::Ready(Err(Closed));
                }
                *waiter = Some(state.getters.push_back(GetterEntry::default(), cx.waker()));
                self.settle(state, wakers);
                continue;
            };
            if state.getters.is_queued(id) {
                state.getters.set_waker(id, cx.waker());
                return Poll::Pending;
            }
            if !std::mem::take(&mut state.getters.get_mut(id).designated) {
                // Woken by `close`: start over (take what is left, else see `Closed`).
                state.getters.remove(waiter.take().expect("checked above"));
                continue;
            }
            state.getter_woken = false;
            // A starving getter is the only one that may pop.
            match self.ring.pop(state.getter_starving) {
                Ok(item) => {
                    state.getters.remove(waiter.take().expect("checked above"));
                    state.getter_starving = false;
                    self.settle(state, wakers);
                    return Poll::Ready(Ok(item));
                }
                Err(_) if self.drained() => {
                    state.getters.remove(waiter.take().expect("checked above"));
                    state.getter_starving = false;
                    self.settle(state, wakers);
                    return Poll::Ready(Err(Closed));
                }
                Err(_) => {
                    // A miss: back to the front of the line; starve at the last one.
                    let entry = state.getters.get_mut(id);
                    entry.misses += 1;
                    if entry.misses >= MAX_MISSES {
                        state.getter_starving = true;
                    }
                    state.getters.relink_front(id, cx.waker());
                    self.settle(state, wakers);
                }
            }
        }
    }

    #[inline]
    pub(crate) fn cancel_get(&self, waiter: Option<WaiterId>) {
        if let Some(id) = waiter {
            self.cancel_queued_get(id);
        }
    }

    /// A queued get dropped: a wake (or the starvation priority) meant for it passes to the
    /// next getter. No item is ever handed to a getter, so none can be lost here.
    #[cold]
    fn cancel_queued_get(&self, id: WaiterId) {
        let mut state = self.state.lock();
        let removed = state.getters.remove(id);
        if removed.notified && removed.value.designated {
            state.getter_woken = false;
        }
        if removed.value.misses >= MAX_MISSES {
            // Only the starving getter has that many misses.
            state.getter_starving = false;
        }
        let mut wakers = WakeList::new();
        self.settle(&mut state, &mut wakers);
        drop(state);
        wakers.wake_all();
    }

    pub(crate) fn close(&self) {
        // No push succeeds from here on; pushes that claimed a position earlier finish.
        self.ring.close();
        let mut state = self.state.lock();
        state.closed = true;
        let mut wakers = WakeList::new();
        // Queued getters are woken: they drain what is left, then see `Closed`.
        while let Some((_, waker)) = state.getters.notify_front() {
            wakers.push(waker);
        }
        state.getter_starving = false;
        // Parked putters keep their value in their entry: it is handed back to them.
        while let Some((_slot, waker)) = state.putters.notify_front() {
            // Mutant for the loom models (issue 7): lose the value instead of handing it back.
            #[cfg(magpie_mutant = "queue_close_drops_parked_values")]
            drop(_slot.value.take());
            wakers.push(waker);
        }
        state.putter_starving = false;
        self.settle(&mut state, &mut wakers);
        drop(state);
        wakers.wake_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.ring.tail().1 & CLOSED != 0
    }

    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    pub(crate) fn task_done(&self) {
        // Acquire (here and on a failed CAS): a `done` counted by another consumer comes with
        // what that consumer saw of `tail` (the puts of the items it took), so the check
        // below never compares a fresh `done` with a stale `tail` (regression:
        // `task_done_after_a_get_never_panics`).
        let mut done = self.done.load(Ordering::Acquire);
        loop {
            let (tail, _) = self.ring.tail();
            assert!(
                done < tail,
                "task_done() called more times than there were items put in the queue"
            );
            // AcqRel: orders the count with the joiners' reads (which are under the mutex).
            match self.done.compare_exchange_weak(
                done,
                done + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(current) => done = current,
            }
        }
        if self.ring.tail().0 != done + 1 {
            return;
        }
        // Nothing unfinished at this instant: release the joiners. A joiner that looked
        // before our increment queued under the mutex before we take it, so we find it; one
        // that looks after sees our increment.
        let mut state = self.state.lock();
        // Look again under the mutex, where joiners look: a put that landed after our read of
        // `tail` makes an item unfinished again, and a joiner that queued because of it must
        // stay queued (regression: `join_does_not_return_while_a_put_item_is_unfinished`).
        if self.unfinished() != 0 {
            return;
        }
        let mut wakers = WakeList::new();
        while let Some(((), waker)) = state.joiners.notify_front() {
            wakers.push(waker);
        }
        drop(state);
        wakers.wake_all();
    }

    fn unfinished(&self) -> usize {
        // Acquire: pairs with `task_done`'s AcqRel increment.
        let done = self.done.load(Ordering::Acquire);
        self.ring.tail().0.wrapping_sub(done)
    }

    pub(crate) fn poll_join(
        &self,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let mut state = self.state.lock();
        match waiter {
            None if self.unfinished() == 0 => Poll::Ready(()),
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

    fn fmt_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("len", &self.len())
            .field("capacity", &Some(self.capacity()))
            .field("closed", &self.is_closed())
            .field("unfinished", &self.unfinished())
            .finish_non_exhaustive()
    }
}

/// A queue's channel: lock-free storage for a bounded FIFO queue, the mutex-guarded one
/// otherwise.
// One per queue, inside its `Arc`; the ring channel is large only because it keeps its hot
// words on cache lines of their own, which boxing would put behind another pointer.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Channel<T> {
    Locked(LockedChannel<T>),
    Ring(RingChannel<T>),
}

/// Forwards a method to whichever channel this is.
macro_rules! dispatch {
    ($self:ident, $channel:ident => $call:expr) => {
        match $self {
            Channel::Locked($channel) => $call,
            Channel::Ring($channel) => $call,
        }
    };
}

impl<T> Channel<T> {
    /// The mutex-guarded channel over `buffer`.
    pub(crate) fn locked(buffer: Buffer<T>, capacity: Option<usize>) -> Self {
        Channel::Locked(LockedChannel::new(buffer, capacity))
    }

    /// The lock-free FIFO channel of `capacity` (at least 1) items.
    pub(crate) fn ring(capacity: usize) -> Self {
        Channel::Ring(RingChannel::new(capacity))
    }

    #[inline]
    pub(crate) fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        dispatch!(self, c => c.try_put(item))
    }

    #[inline]
    pub(crate) fn poll_put(
        &self,
        item: &mut Option<T>,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), PutError<T>>> {
        dispatch!(self, c => c.poll_put(item, waiter, cx))
    }

    #[inline]
    pub(crate) fn cancel_put(&self, waiter: Option<WaiterId>) {
        dispatch!(self, c => c.cancel_put(waiter))
    }

    #[inline]
    pub(crate) fn try_get(&self) -> Result<T, TryGetError> {
        dispatch!(self, c => c.try_get())
    }

    #[inline]
    pub(crate) fn poll_get(
        &self,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, Closed>> {
        dispatch!(self, c => c.poll_get(waiter, cx))
    }

    #[inline]
    pub(crate) fn cancel_get(&self, waiter: Option<WaiterId>) {
        dispatch!(self, c => c.cancel_get(waiter))
    }

    pub(crate) fn close(&self) {
        dispatch!(self, c => c.close())
    }

    pub(crate) fn is_closed(&self) -> bool {
        dispatch!(self, c => c.is_closed())
    }

    pub(crate) fn len(&self) -> usize {
        dispatch!(self, c => c.len())
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Channel::Locked(c) => c.is_empty(),
            Channel::Ring(c) => c.len() == 0,
        }
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        match self {
            Channel::Locked(c) => c.capacity(),
            Channel::Ring(c) => Some(c.capacity()),
        }
    }

    pub(crate) fn task_done(&self) {
        dispatch!(self, c => c.task_done())
    }

    pub(crate) fn poll_join(
        &self,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        dispatch!(self, c => c.poll_join(waiter, cx))
    }

    pub(crate) fn cancel_join(&self, waiter: Option<WaiterId>) {
        dispatch!(self, c => c.cancel_join(waiter))
    }

    /// `Debug` output for a handle type called `name`.
    pub(crate) fn fmt_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        dispatch!(self, c => c.fmt_as(name, f))
    }
}
