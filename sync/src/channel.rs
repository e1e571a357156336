//! The machinery shared by every [`Queue`](crate::Queue) and
//! [`PriorityQueue`](crate::PriorityQueue): waiting getters and putters, close, and the
//! `task_done`/`join` counter — one waiting protocol over either store (`store.rs`).
//!
//! Items live in a [`Store`]: the lock-free [`Ring`](crate::ring::Ring) of a bounded FIFO queue
//! (a put that finds room, or a get that finds an item, claims a slot with one CAS and takes no
//! lock), or a mutex-guarded buffer for the others. The channel's own mutex guards only the
//! waiter lists and their protocol state. Items never leave the store for a waiter: a waiting
//! getter is *woken* to take an item itself, so no item is ever handed to a getter that has not
//! run, and capacity is exactly the store's. The protocol is the same on both sides (a getter
//! waits for an item as a putter waits for room: one [`Side`] type holds either), and mirrors
//! the semaphore's (`raw_semaphore.rs`):
//!
//! 1. A get that finds the store empty (a put that finds it full) queues under the mutex.
//! 2. While waiters sleep and none is *woken*, the next put (get) wakes the front one — at most
//!    one per side is on its way at a time; meanwhile operations take no channel lock. When a
//!    woken waiter succeeds, it wakes the next one if there is more for it.
//! 3. Until it runs, anyone may take the item (room) first: a newcomer, `try_get` (`try_put`)
//!    (*barging*). A woken waiter that finds nothing (a *miss*) goes back to the *front* of its
//!    queue, asleep.
//! 4. At its [`MAX_MISSES`]th miss it *starves*. A starving getter blocks the store's pops: fast
//!    pops fail and every other getter queues behind it, so the next item is left for it (it is
//!    woken for it as above). A starving putter blocks the store's pushes, and the next room is
//!    taken for its value directly by whoever made it (`settle`), completing its put (its
//!    entry's value becomes `None`: accepted). Then barging is allowed again.
//!
//! A dropped woken waiter passes its turn to the next (a dropped starving one gives up its
//! priority: the next waiter starts counting misses afresh); a dropped waiter whose value was
//! accepted leaves it queued. `close` closes the store (no push succeeds after it; ring pushes
//! that had claimed a slot finish), wakes every getter (each takes what is left, else sees
//! `Closed`; one that must wait for a push still finishing queues again, and the pop that drains
//! the closed queue wakes it) and hands every parked value back.
//!
//! **No lost wakeup.** Waiters announce themselves in the read-mostly `wake` word
//! (`GETTERS_WAIT`, `PUTTERS_WAIT`), set under the mutex *before* a `SeqCst` fence and a fresh
//! look at the store ([`Store::has_item`] / [`Store::has_room`]). Every push (pop) completes in
//! the store (the ring's `seq` store, or the store mutex's release), then fences, then reads
//! `wake`. By the fences' total order, either the waiter's look sees the item (and it is woken
//! at once), or the operation sees the flag and settles the waiters under the mutex. The flag is
//! up exactly while waiters sleep with nobody woken; while one is woken it is responsible for
//! waking the next. A look that returns "nothing" means nothing at one instant (in the ring, a
//! push at the head that claimed its slot but has not filled it is covered by its own
//! fence-and-read).
//!
//! **Memory ordering.** Item handover is the store's (Release/Acquire on the ring's `seq`, or
//! the store mutex); the `wake` word is ordered by the `SeqCst` fences; the `task_done` count is
//! AcqRel, its loads Acquire, and `task_done` checks `unfinished` again under the mutex before
//! it releases joiners. `unfinished` is `pushed - done`: the store counts every successful push,
//! so `join` needs no counter of its own on the put path.

use std::fmt;
use std::task::{Context, Poll, Waker};

use crate::buffer::Buffer;
use crate::loom::{fence, AtomicUsize, Mutex, Ordering};
use crate::queue_error::{Closed, PutError, TryGetError, TryPutError};
use crate::ring::{Padded, PushError, Ring};
use crate::store::{LockedStore, Store};
use crate::waiters::{Removed, WaitList, WaiterId, WakeList};

/// What a fast operation made for the other side: see `Channel::settle_locked`.
#[derive(Clone, Copy)]
enum Made {
    /// A push: an item, for getters.
    Item,
    /// A pop: room, for putters.
    Room,
}

/// `Channel::wake` flag: a getter sleeps and none is on its way (or the front one starves): a
/// push must settle the getters.
const GETTERS_WAIT: usize = 1 << 0;
/// `Channel::wake` flag: the same for putters, which a pop must settle.
const PUTTERS_WAIT: usize = 1 << 1;

/// How many misses a woken waiter takes before it starves (and is served directly). Smaller
/// under loom, to bring starvation closer; the loom models reach a getter's miss, while
/// starvation itself (of getters and putters) is tested deterministically in
/// `sync/tests/queue.rs`.
#[cfg(not(loom))]
pub(crate) const MAX_MISSES: u32 = 4;
#[cfg(loom)]
pub(crate) const MAX_MISSES: u32 = 2;

/// A waiter's entry: a getter's (`V = ()`) or a putter's (`V = Option<T>`, its value until a
/// handoff accepts it — then `None` — or `close` hands it back).
struct Waiter<V> {
    value: V,
    /// Times it was woken to retry and found nothing. At `MAX_MISSES` it starves; reset to 0
    /// when it is served without retrying (a handoff, `close`), so that an entry with that many
    /// misses is always the starving one.
    misses: u32,
    /// Set when it is woken to retry (`false` for one woken by `close` or served by a handoff).
    designated: bool,
}

/// One side's waiters: getters waiting for an item, or putters waiting for room.
struct Side<V> {
    waiters: WaitList<Waiter<V>>,
    /// One of them was woken to retry and has not retried yet.
    woken: bool,
    /// The front one starves: only it may go next (the store is blocked for everyone else).
    starving: bool,
}

impl<V> Side<V> {
    fn new() -> Self {
        Side {
            waiters: WaitList::new(),
            woken: false,
            starving: false,
        }
    }

    /// Waiters sleep and none is on its way: the other side's next operation must settle them.
    fn sleeping(&self) -> bool {
        !self.waiters.is_empty() && !self.woken
    }

    /// Queues a new waiter at the back.
    fn enqueue(&mut self, value: V, waker: &Waker) -> WaiterId {
        let entry = Waiter {
            value,
            misses: 0,
            designated: false,
        };
        self.waiters.push_back(entry, waker)
    }

    /// Wakes the front waiter to retry: it is now the one on its way.
    fn wake_front(&mut self, wakers: &mut WakeList) {
        let (entry, waker) = self.waiters.notify_front().expect("a waiter is queued");
        entry.designated = true;
        self.woken = true;
        wakers.push(waker);
    }

    /// Notifies the front waiter without a turn to retry (served by a handoff, or woken by
    /// `close`); returns its value, for the notifier.
    fn serve_front(&mut self, wakers: &mut WakeList) -> Option<&mut V> {
        let (entry, waker) = self.waiters.notify_front()?;
        entry.misses = 0;
        wakers.push(waker);
        Some(&mut entry.value)
    }

    /// A notified waiter starts its turn: whether it was woken to retry (designated), in which
    /// case nobody is on its way any more.
    fn take_turn(&mut self, id: &WaiterId) -> bool {
        let designated = std::mem::take(&mut self.waiters.get_mut(id).designated);
        if designated {
            self.woken = false;
        }
        designated
    }

    /// A woken waiter found nothing: back to the front of the line, starving at the last miss.
    fn missed(&mut self, id: &WaiterId, waker: &Waker) {
        // Relinked first: a waker whose `clone` panics there leaves the entry and the side
        // as they were (the waiter notified, not starving).
        self.waiters.relink_front(id, waker);
        let entry = self.waiters.get_mut(id);
        entry.misses += 1;
        if entry.misses >= MAX_MISSES {
            self.starving = true;
        }
    }

    /// While its waiters sleep with none woken, what the other side made was taken by a
    /// newcomer: the front waiter's miss. Returns whether it starves now.
    fn overtaken(&mut self) -> bool {
        if !self.sleeping() || self.starving {
            return false;
        }
        let front = self
            .waiters
            .front_mut()
            .expect("sleeping waiters are queued");
        front.misses += 1;
        self.starving = front.misses >= MAX_MISSES;
        self.starving
    }

    /// Frees a waiter's entry, whether it completed or was dropped: a turn it had been woken
    /// for, or the priority of starving, passes on (`settle` then wakes the next).
    fn leave(&mut self, id: WaiterId) -> Removed<Waiter<V>> {
        let removed = self.waiters.remove(id);
        if removed.notified && removed.value.designated {
            self.woken = false;
        }
        if removed.value.misses >= MAX_MISSES {
            // Only the starving waiter has that many misses (`serve_front` resets them).
            self.starving = false;
        }
        removed
    }
}

/// What a [`Channel`] keeps under its mutex: the waiters and their protocol state.
struct State<T> {
    getters: Side<()>,
    putters: Side<Option<T>>,
    closed: bool,
    joiners: WaitList<()>,
}

/// A queue's channel: a [`Store`] of items and the waiting protocol around it (the module docs
/// give the protocol: bounded barging). A put or get that neither waits nor has to wake a
/// waiter takes no channel lock.
pub(crate) struct Channel<T> {
    store: Store<T>,
    /// `GETTERS_WAIT` and `PUTTERS_WAIT`: read after every fast operation, written only under
    /// the mutex (so, rarely), on a line of its own.
    wake: Padded<AtomicUsize>,
    /// How many times `task_done` was called; `pushed - done` items are unfinished.
    done: AtomicUsize,
    state: Mutex<State<T>>,
}

impl<T> Channel<T> {
    fn new(store: Store<T>) -> Self {
        Channel {
            store,
            wake: Padded(AtomicUsize::new(0)),
            done: AtomicUsize::new(0),
            state: Mutex::new(State {
                getters: Side::new(),
                putters: Side::new(),
                closed: false,
                joiners: WaitList::new(),
            }),
        }
    }

    /// The lock-free FIFO channel of `capacity` (at least 1) items.
    pub(crate) fn ring(capacity: usize) -> Self {
        Self::new(Store::Ring(Ring::new(capacity)))
    }

    /// The channel over a mutex-guarded `buffer` of at most `capacity` items (`None`: no limit).
    pub(crate) fn locked(buffer: Buffer<T>, capacity: Option<usize>) -> Self {
        Self::new(Store::Locked(LockedStore::new(buffer, capacity)))
    }

    /// After a push: if a getter sleeps with nobody on the way, wake it.
    #[inline]
    fn after_push(&self) {
        // SeqCst fence: orders our push (its `seq` store, or the store mutex's release) before
        // the load of `wake`, against `settle`'s `wake` write, fence, and look at the store: one
        // of the two sees the other, so an item and a sleeping getter always meet.
        fence(Ordering::SeqCst);
        // Relaxed: the fence above orders it.
        if self.wake.0.load(Ordering::Relaxed) & GETTERS_WAIT != 0 {
            self.settle_locked(Made::Item);
        }
    }

    /// After a pop: if a putter sleeps with nobody on the way, wake or serve it; if a getter
    /// sleeps, this pop may have drained a closed queue, which it must be told.
    #[inline]
    fn after_pop(&self) {
        // SeqCst fence: as in `after_push`, against a putter's registration (or a getter's
        // look at the store after `close`).
        fence(Ordering::SeqCst);
        // Relaxed: the fence above orders it.
        if self.wake.0.load(Ordering::Relaxed) != 0 {
            self.settle_locked(Made::Room);
        }
    }

    /// Settles the waiters after a fast operation that made an item (room) while waiters of
    /// the other side slept. If they still sleep afterwards, a newcomer took what was made
    /// before the settling could wake the front one: that counts as the front waiter's miss
    /// (step 4), as if it had been woken and found nothing — so barging stays bounded for a
    /// waiter that a stream of newcomers keeps from ever being woken.
    #[cold]
    fn settle_locked(&self, made: Made) {
        let mut state = self.state.lock();
        let mut wakers = WakeList::new();
        self.settle(&mut state, &mut wakers);
        let overtaken = match made {
            Made::Item if !state.closed => state.getters.overtaken(),
            Made::Room if !state.putters.starving => state.putters.overtaken(),
            _ => false,
        };
        if overtaken {
            // The front waiter starves now: block the store for it (and serve it, if what it
            // waits for arrived meanwhile).
            self.settle(&mut state, &mut wakers);
        }
        drop(state);
        wakers.wake_all();
    }

    /// Raises `flag` in `wake`, then fences, so that the caller's next look at the store and a
    /// racing operation's look at `wake` cannot both miss. (Always a read-modify-write, even
    /// when the flag is up already, so that it is sequenced before our fence.)
    fn announce(&self, flag: usize) {
        // Relaxed: ordered by the fence after it (see `after_push`).
        self.wake.0.fetch_or(flag, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Wakes or serves whoever must be, then makes the flags match the state. Called under the
    /// mutex after every change the slow paths make.
    fn settle(&self, state: &mut State<T>, wakers: &mut WakeList) {
        // A starving putter (queued at the front) is served directly when room appears.
        if state.putters.starving {
            self.store.set_put_blocked(true);
            self.announce(PUTTERS_WAIT);
            let front = state.putters.waiters.front_mut();
            let entry = front.expect("a starving putter is queued");
            let value = entry.value.take().expect("a queued putter holds its value");
            // A `PriorityQueue`'s push compares items (user code, under this mutex); a
            // panicking `Ord` is contained in the heap's sift (`buffer.rs`), so the value is
            // placed whatever it does.
            let pushed = self.store.push(value, true);
            match pushed {
                Ok(()) => {
                    // Its value is now `None`: accepted.
                    state.putters.serve_front(wakers);
                    state.putters.starving = false;
                    // The item may be for a sleeping getter: checked below.
                }
                Err((value, _)) => {
                    let entry = state.putters.waiters.front_mut().expect("checked above");
                    entry.value = Some(value);
                }
            }
        }
        // Putters sleep and none is on its way: wake the front one if there is room.
        if !state.putters.starving && state.putters.sleeping() {
            self.announce(PUTTERS_WAIT);
            if self.store.has_room() {
                state.putters.wake_front(wakers);
            }
        }
        // Getters sleep and none is on its way: wake the front one if there is an item.
        if state.getters.sleeping() {
            if state.getters.starving {
                self.store.set_get_blocked(true);
            }
            self.announce(GETTERS_WAIT);
            if state.closed && self.store.drained() {
                // Nothing will come: wake them all to see `Closed`.
                while state.getters.serve_front(wakers).is_some() {}
                state.getters.starving = false;
            } else if self.look_for_item() {
                state.getters.wake_front(wakers);
            }
        }
        let wake = (if state.putters.sleeping() {
            PUTTERS_WAIT
        } else {
            0
        }) | (if state.getters.sleeping() {
            GETTERS_WAIT
        } else {
            0
        });
        // Relaxed: lowering a flag needs no order, and raising one was done by `announce`.
        if self.wake.0.load(Ordering::Relaxed) != wake {
            self.wake.0.store(wake, Ordering::Relaxed);
        }
        self.store.set_put_blocked(state.putters.starving);
        self.store.set_get_blocked(state.getters.starving);
    }

    /// `settle`'s look at the store for sleeping getters, after announcing them.
    fn look_for_item(&self) -> bool {
        // Mutant for the loom models: skip the look, so an item pushed before the announcement
        // (whose push saw no flag) is left for a getter that sleeps on.
        if cfg!(magpie_mutant = "queue_settle_skips_look") {
            return false;
        }
        self.store.has_item()
    }

    /// Runs `f` under the mutex with a fresh wake list, then wakes what it collected once the
    /// mutex is released.
    fn with_state<R>(&self, f: impl FnOnce(&mut State<T>, &mut WakeList) -> R) -> R {
        let mut state = self.state.lock();
        let mut wakers = WakeList::new();
        let result = f(&mut state, &mut wakers);
        drop(state);
        wakers.wake_all();
        result
    }

    pub(crate) fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        match self.store.push(item, false) {
            Ok(()) => {
                self.after_push();
                Ok(())
            }
            Err((item, PushError::Closed)) => Err(TryPutError::Closed(item)),
            Err((item, PushError::Full | PushError::Blocked)) => Err(TryPutError::Full(item)),
        }
    }

    /// One poll of a put. `item` is the value not yet given to the queue (`Some` until the
    /// first poll parks or pushes it).
    pub(crate) fn poll_put(
        &self,
        item: &mut Option<T>,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), PutError<T>>> {
        if waiter.is_none() {
            let value = item.take().expect("put polled after completion");
            let value = match self.store.push(value, false) {
                Ok(()) => {
                    self.after_push();
                    return Poll::Ready(Ok(()));
                }
                Err((value, PushError::Closed)) => return Poll::Ready(Err(PutError(value))),
                Err((value, PushError::Full | PushError::Blocked)) => value,
            };
            return self.park_put(value, waiter, cx);
        }
        self.with_state(|state, wakers| self.serve_putter(state, waiter, cx, wakers))
    }

    #[cold]
    fn park_put(
        &self,
        value: T,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), PutError<T>>> {
        self.with_state(|state, wakers| {
            if state.closed {
                return Poll::Ready(Err(PutError(value)));
            }
            *waiter = Some(state.putters.enqueue(Some(value), cx.waker()));
            self.settle(state, wakers);
            self.serve_putter(state, waiter, cx, wakers)
        })
    }

    /// A queued putter's turn: still asleep, accepted, handed back, or woken to retry.
    fn serve_putter(
        &self,
        state: &mut State<T>,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
        wakers: &mut WakeList,
    ) -> Poll<Result<(), PutError<T>>> {
        loop {
            let id = waiter.as_ref().expect("a waiting put has an entry");
            if state.putters.waiters.is_queued(id) {
                state.putters.waiters.set_waker(id, cx.waker());
                return Poll::Pending;
            }
            let designated = state.putters.take_turn(id);
            let Some(value) = state.putters.waiters.get_mut(id).value.take() else {
                // Accepted by a starvation handoff.
                state.putters.leave(waiter.take().expect("checked above"));
                return Poll::Ready(Ok(()));
            };
            let result = if state.closed {
                // Handed back by `close` (or woken before it and retrying after).
                Err(PutError(value))
            } else {
                debug_assert!(
                    designated,
                    "a putter is notified only to retry, by a handoff or by close"
                );
                match self.store.push(value, false) {
                    Ok(()) => Ok(()),
                    // `close` has begun and will not see our entry as queued: hand back now.
                    Err((value, PushError::Closed)) => Err(PutError(value)),
                    Err((value, PushError::Full | PushError::Blocked)) => {
                        state.putters.waiters.get_mut(id).value = Some(value);
                        state.putters.missed(id, cx.waker());
                        self.settle(state, wakers);
                        continue;
                    }
                }
            };
            state.putters.leave(waiter.take().expect("checked above"));
            self.settle(state, wakers);
            return Poll::Ready(result);
        }
    }

    /// A put future dropped before completion. A parked value is dropped with it; an accepted
    /// one stays in the queue (that put had already happened). A future that never parked has
    /// nothing to undo and returns here, inline.
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
        let removed = self.with_state(|state, wakers| {
            let removed = state.putters.leave(id);
            self.settle(state, wakers);
            removed
        });
        // Drop the value (user code) outside the lock.
        drop(removed);
    }

    pub(crate) fn try_get(&self) -> Result<T, TryGetError> {
        match self.store.pop(false) {
            Ok(item) => {
                self.after_pop();
                Ok(item)
            }
            Err(_) if self.store.drained() => Err(TryGetError::Closed),
            Err(_) => Err(TryGetError::Empty),
        }
    }

    pub(crate) fn poll_get(
        &self,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, Closed>> {
        if waiter.is_none() {
            if let Ok(item) = self.store.pop(false) {
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
        self.with_state(|state, wakers| self.serve_getter(state, waiter, cx, wakers))
    }

    /// A get's slow path: queue (or stay queued) until woken, then retry.
    fn serve_getter(
        &self,
        state: &mut State<T>,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
        wakers: &mut WakeList,
    ) -> Poll<Result<T, Closed>> {
        loop {
            let Some(id) = waiter.as_ref() else {
                // Not queued (first slow poll, or woken by `close` and requeuing).
                if self.store.drained() {
                    return Poll::Ready(Err(Closed));
                }
                *waiter = Some(state.getters.enqueue((), cx.waker()));
                self.settle(state, wakers);
                continue;
            };
            if state.getters.waiters.is_queued(id) {
                state.getters.waiters.set_waker(id, cx.waker());
                return Poll::Pending;
            }
            if !state.getters.take_turn(id) {
                // Woken by `close`: start over (take what is left, else see `Closed`).
                state.getters.leave(waiter.take().expect("checked above"));
                continue;
            }
            // A starving getter is the only one that may pop.
            let result = match self.store.pop(state.getters.starving) {
                Ok(item) => Ok(item),
                Err(_) if self.store.drained() => Err(Closed),
                Err(_) => {
                    state.getters.missed(id, cx.waker());
                    self.settle(state, wakers);
                    continue;
                }
            };
            state.getters.leave(waiter.take().expect("checked above"));
            self.settle(state, wakers);
            return Poll::Ready(result);
        }
    }

    /// A get future dropped before completion: a wake (or the starvation priority) meant for it
    /// passes to the next getter. No item is ever handed to a getter, so none can be lost here.
    /// A future that never queued has nothing to undo and returns here, inline.
    #[inline]
    pub(crate) fn cancel_get(&self, waiter: Option<WaiterId>) {
        if let Some(id) = waiter {
            self.cancel_queued_get(id);
        }
    }

    #[cold]
    fn cancel_queued_get(&self, id: WaiterId) {
        self.with_state(|state, wakers| {
            state.getters.leave(id);
            self.settle(state, wakers);
        });
    }

    pub(crate) fn close(&self) {
        // No push succeeds from here on; ring pushes that claimed a position earlier finish.
        self.store.close();
        self.with_state(|state, wakers| {
            state.closed = true;
            // Queued getters are woken: they drain what is left, then see `Closed`.
            while state.getters.serve_front(wakers).is_some() {}
            state.getters.starving = false;
            // Parked putters keep their value in their entry: it is handed back to them.
            while let Some(_value) = state.putters.serve_front(wakers) {
                // Mutant for the loom models (issue 7): lose the value instead of handing it
                // back.
                #[cfg(magpie_mutant = "queue_close_drops_parked_values")]
                drop(_value.take());
            }
            state.putters.starving = false;
            self.settle(state, wakers);
        });
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.store.is_closed()
    }

    pub(crate) fn len(&self) -> usize {
        self.store.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.store.capacity()
    }

    pub(crate) fn task_done(&self) {
        // Acquire (here and on a failed CAS): a `done` counted by another consumer comes with
        // what that consumer saw of the pushes (of the items it took), so the check below never
        // compares a fresh `done` with a stale `pushed` (regression:
        // `task_done_after_a_get_never_panics`).
        let mut done = self.done.load(Ordering::Acquire);
        loop {
            assert!(
                done < self.store.pushed(),
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
        if self.store.pushed() != done + 1 {
            return;
        }
        // Nothing unfinished at this instant: release the joiners. A joiner that looked
        // before our increment queued under the mutex before we take it, so we find it; one
        // that looks after sees our increment.
        self.with_state(|state, wakers| {
            // Look again under the mutex, where joiners look: a put that landed after our read
            // of `pushed` makes an item unfinished again, and a joiner that queued because of it
            // must stay queued (regression: `join_does_not_return_while_a_put_item_is_unfinished`).
            if self.unfinished() != 0 {
                return;
            }
            while let Some(((), waker)) = state.joiners.notify_front() {
                wakers.push(waker);
            }
        });
    }

    fn unfinished(&self) -> usize {
        // Acquire: pairs with `task_done`'s AcqRel increment.
        let done = self.done.load(Ordering::Acquire);
        self.store.pushed().wrapping_sub(done)
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

    /// `Debug` output for a handle type called `name`.
    pub(crate) fn fmt_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .field("unfinished", &self.unfinished())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// An item taken by a newcomer between its push and the push's look at the sleepers (a
    /// window only threads reach; here the push, the newcomer's pop and the late look are made
    /// one by one) is the sleeping front getter's miss: at the last one it starves, the store
    /// keeps the next item for it, and it gets it. Without the count, a stream of newcomers
    /// could keep a sleeping getter from ever being woken (found in review).
    #[test]
    fn an_item_taken_before_the_look_is_the_sleeping_getters_miss() {
        for channel in [
            Channel::ring(4),
            Channel::locked(Buffer::min_heap(), Some(4)),
        ] {
            let count = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
            let waker = Waker::from(count.clone());
            let mut cx = Context::from_waker(&waker);
            let mut waiter = None;
            assert!(channel.poll_get(&mut waiter, &mut cx).is_pending());
            for miss in 1..=MAX_MISSES {
                // A put's push, a newcomer's pop, then the put's late look at the sleepers.
                assert!(channel.store.push(miss, false).is_ok());
                assert_eq!(channel.store.pop(false).ok(), Some(miss));
                channel.settle_locked(Made::Item);
                let state = channel.state.lock();
                assert_eq!(state.getters.waiters.front().map(|w| w.misses), Some(miss));
                assert_eq!(state.getters.starving, miss == MAX_MISSES);
            }
            assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 0);
            // Starving: newcomers cannot take the next item, which wakes the getter.
            channel.try_put(99).unwrap();
            assert_eq!(channel.try_get(), Err(TryGetError::Empty));
            assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
            assert_eq!(channel.poll_get(&mut waiter, &mut cx), Poll::Ready(Ok(99)));
            // Barging is allowed again.
            channel.try_put(7).unwrap();
            assert_eq!(channel.try_get(), Ok(7));
        }
    }
}
