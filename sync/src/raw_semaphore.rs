//! The permit protocol behind [`Semaphore`](crate::Semaphore) and [`Lock`](crate::Lock) (one
//! job: who holds permits, and who is woken when they come back). A lock is this with one
//! permit.
//!
//! # Bounded barging
//!
//! Strict FIFO handoff (every released permit assigned to the first waiter) makes each
//! contended acquisition wait for that waiter to be scheduled, and a task that releases and
//! re-acquires in one poll must suspend every time: a convoy. Instead:
//!
//! 1. Releasing while waiters sleep frees the permits and wakes (*designates*) the front waiter
//!    if they suffice for it, unless one is already designated: at most one is on its way at a
//!    time, and releases made meanwhile are a single atomic add.
//! 2. While a designated waiter is on its way (or nobody waits at all), free permits are free
//!    for anyone: a newcomer, `try_acquire`, or the task that just released them may take them
//!    first (*barging*). While waiters sleep and none is designated, nobody may take permits
//!    past them (so a large request at the front is not overtaken while it sleeps).
//! 3. The designated waiter retries when polled. If the permits were taken in between (a
//!    *miss*), it yields (wakes itself and returns `Pending`), still designated, and retries at
//!    its next poll.
//! 4. At its [`MAX_MISSES`]th miss it goes back to the *front* of the queue as *starving* and
//!    sets `HANDOFF`: from then on nobody may take free permits, and releases hand them to it
//!    directly, exactly as a strict FIFO semaphore would. Once it has them, barging is allowed
//!    again.
//!
//! So a waiter at the front of the queue misses at most `MAX_MISSES` times and is then served
//! first; waiters behind it keep their FIFO order (only the front waiter is ever woken or
//! served, and a designated waiter that gives up goes back to the front).
//!
//! # The state word
//!
//! [`RawSemaphore::state`] holds the number of free permits (above [`FLAG_BITS`]) and five flags:
//!
//! - `HAS_WAITERS`: the waiter list has a queued (sleeping) waiter.
//! - `WOKEN`: a designated waiter exists (unlinked from the list, woken, will retry).
//! - `HANDOFF`: the front waiter is starving; released permits are handed to it.
//! - `CLOSED`: the semaphore was closed.
//! - `BIG`: the count outgrew the word (more than [`MAX_WORD_PERMITS`] free permits, only ever
//!   reached through `add_permits` or `new` with such huge numbers). From then on the count
//!   lives under the mutex, every operation takes the mutex, and queued waiters are handed
//!   permits in FIFO order (a waiter woken before the switch retries at its next poll); the flags other than `WOKEN`, `CLOSED` and `BIG` are unused.
//!
//! **Invariant (outside `BIG` mode):** the flags are only changed while holding the internal
//! mutex, and whenever the mutex is free, `HAS_WAITERS` is set exactly when the list has a
//! queued waiter, `HANDOFF` exactly when its front waiter is starving, and `WOKEN` exactly when
//! a designated waiter's entry exists. `WOKEN` and `HANDOFF` are never both set (a starving
//! waiter was the designated one). Without the mutex, only the permit count changes, and only
//! while the word is *open* (`HANDOFF` clear, and `HAS_WAITERS` clear or `WOKEN` set):
//!
//! - a *fast acquire* (CAS taking permits), unless `CLOSED` is set too;
//! - a *fast release* (CAS adding permits). When the word is not open, someone must be woken or
//!   handed the permits: the slow path does it under the mutex.
//!
//! **No lost wakeup.** A waiter goes to sleep only under the mutex, with a CAS that sets
//! `HAS_WAITERS` having seen too few permits (or with `HAS_WAITERS` already set, see below). A
//! fast release is a CAS of the same word. One of the two comes first in its modification
//! order: if the release, the waiter's CAS fails and it looks again (and may take the permits);
//! if the waiter, the release's CAS fails on the changed word, it re-reads it, finds it not
//! open (`HAS_WAITERS` without `WOKEN`), and takes the slow path; its mutex section then comes
//! after the waiter's (the failed CAS read the waiter's write, which happened under the mutex
//! before the waiter released it), so it finds the waiter queued and wakes or serves it. When
//! `HAS_WAITERS` was already set, releases either take the slow path (ordered after us by the
//! mutex) or see `WOKEN`: then the designated waiter is responsible. It will be polled: on
//! success it designates the next front waiter if permits remain for it, on a miss it stays
//! designated, on giving up it sets `HANDOFF` (with a CAS, so a racing release either came
//! first, and it sees the permits, or sees `HANDOFF` and takes the slow path), and if it is
//! dropped its cancellation passes the designation on. The same CAS argument covers a
//! designated waiter clearing `WOKEN` on success against a release that saw `WOKEN`.
//!
//! **Memory ordering.** A fast acquire is an Acquire CAS and a fast release a Release CAS, so
//! an acquirer sees what the previous holder wrote (a [`Lock`](crate::Lock)'s data); the slow
//! paths use AcqRel read-modify-writes, and handoffs are also published through the mutex.

use std::task::{Context, Poll, Waker};

use crate::loom::{AtomicUsize, Mutex, MutexGuard, Ordering};
use crate::waiters::{WaitList, WaiterId, WakeList};

/// The list has a queued (sleeping) waiter.
const HAS_WAITERS: usize = 1 << 0;
/// A designated waiter was woken to retry and has not finished retrying.
const WOKEN: usize = 1 << 1;
/// The front waiter is starving: no barging, releases hand permits to it.
const HANDOFF: usize = 1 << 2;
/// The semaphore was closed.
const CLOSED: usize = 1 << 3;
/// The count lives under the mutex (it outgrew the word).
const BIG: usize = 1 << 4;
/// The low bits taken by the flags; the permit count sits above them.
const FLAG_BITS: u32 = 5;
/// One permit, in state-word units.
const ONE: usize = 1 << FLAG_BITS;
/// The most free permits the state word itself counts; beyond, `BIG` mode.
const MAX_WORD_PERMITS: usize = usize::MAX >> FLAG_BITS;

/// The panic message when the free permits would exceed `usize::MAX`.
const OVERFLOW: &str =
    "Semaphore: the free permit count overflowed usize (more than usize::MAX permits in all)";

/// How many misses the front waiter takes before it starves (and is handed its permits). Small:
/// each miss costs the designated waiter one poll. Smaller under loom so that the models reach
/// both a retried miss and the handoff within their preemption bound.
#[cfg(not(loom))]
const MAX_MISSES: u32 = 4;
#[cfg(loom)]
const MAX_MISSES: u32 = 2;

fn permits(state: usize) -> usize {
    state >> FLAG_BITS
}

/// Whether, outside `BIG` mode, free permits may be taken and returned without the mutex:
/// nobody sleeps unserved, or a designated waiter is on its way; and nobody starves.
fn is_open(state: usize) -> bool {
    state & HANDOFF == 0 && (state & HAS_WAITERS == 0 || state & WOKEN != 0)
}

/// Where a waiter's request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Sleeping in the list.
    Queued,
    /// Woken to retry (its entry is unlinked, `WOKEN` is set).
    Designated,
    /// Handed its permits (handoff).
    Granted,
    /// Woken by `close`.
    Closed,
}

#[derive(Debug)]
struct Request {
    permits: usize,
    /// How often, as the designated waiter, it found its permits taken. At [`MAX_MISSES`] it
    /// starves.
    misses: u32,
    /// At the front, owed the next permits; `HANDOFF` is set while it is there.
    starving: bool,
    outcome: Outcome,
}

/// What the internal mutex guards.
#[derive(Debug)]
struct Waiters {
    list: WaitList<Request>,
    /// The free permits in `BIG` mode (0 otherwise).
    big: usize,
}

/// Why a non-waiting acquire failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TakeError {
    Closed,
    NoPermits,
}

/// Why a waiting acquire ended without permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClosedError;

#[derive(Debug)]
pub(crate) struct RawSemaphore {
    /// Free permits and flags; see the module docs.
    state: AtomicUsize,
    waiters: Mutex<Waiters>,
}

type Guard<'a> = MutexGuard<'a, Waiters>;

impl RawSemaphore {
    /// A semaphore with `permits` free permits.
    pub(crate) fn new(permits: usize) -> Self {
        let (state, big) = if permits <= MAX_WORD_PERMITS {
            (permits << FLAG_BITS, 0)
        } else {
            (BIG, permits)
        };
        RawSemaphore {
            state: AtomicUsize::new(state),
            waiters: Mutex::new(Waiters {
                list: WaitList::new(),
                big,
            }),
        }
    }

    /// Free permits right now.
    pub(crate) fn available_permits(&self) -> usize {
        // Relaxed: a snapshot for the caller; nothing is synchronized through it.
        let state = self.state.load(Ordering::Relaxed);
        if state & BIG != 0 {
            return self.waiters.lock().big;
        }
        permits(state)
    }

    pub(crate) fn is_closed(&self) -> bool {
        // Relaxed: `CLOSED` is never cleared; a snapshot is all the caller gets anyway.
        self.state.load(Ordering::Relaxed) & CLOSED != 0
    }

    /// Sleeping waiters (for `Debug`).
    pub(crate) fn queued(&self) -> usize {
        self.waiters.lock().list.len()
    }

    /// Takes `n` free permits now, if nobody sleeping or starving is owed them.
    #[inline]
    pub(crate) fn try_acquire(&self, n: usize) -> Result<(), TakeError> {
        // Relaxed: only picks the value the CAS expects.
        self.try_acquire_from(n, self.state.load(Ordering::Relaxed))
    }

    /// `try_acquire(1)` for a semaphore of one permit (a lock): the first CAS guesses the
    /// state of a free, uncontended lock, so taking one is a single CAS with no load before it.
    #[inline]
    pub(crate) fn try_acquire_one_of_one(&self) -> Result<(), TakeError> {
        self.try_acquire_from(1, ONE)
    }

    /// The loop of `try_acquire`, starting from `state`: a guess is fine (a wrong one just
    /// fails the first CAS, which hands back the real value).
    #[inline]
    fn try_acquire_from(&self, n: usize, mut state: usize) -> Result<(), TakeError> {
        loop {
            if state & CLOSED != 0 {
                return Err(TakeError::Closed);
            }
            if state & BIG != 0 {
                return self.try_acquire_big(n);
            }
            if !is_open(state) || permits(state) < n {
                return Err(TakeError::NoPermits);
            }
            // Acquire on success: pairs with the Release that returned the permits, so the
            // previous holder's writes are visible. `n <= permits(state)`, so no underflow.
            match self.state.compare_exchange(
                state,
                state - n * ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => state = actual,
            }
        }
    }

    #[cold]
    fn try_acquire_big(&self, n: usize) -> Result<(), TakeError> {
        let mut waiters = self.waiters.lock();
        if self.state.load(Ordering::Relaxed) & CLOSED != 0 {
            Err(TakeError::Closed)
        } else if waiters.list.is_empty() && waiters.big >= n {
            waiters.big -= n;
            Ok(())
        } else {
            Err(TakeError::NoPermits)
        }
    }

    /// One poll of an acquiring future whose queue entry lives in `waiter`.
    #[inline]
    pub(crate) fn poll_acquire(
        &self,
        n: usize,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), ClosedError>> {
        if waiter.is_none() {
            match self.try_acquire(n) {
                Ok(()) => return Poll::Ready(Ok(())),
                Err(TakeError::Closed) => return Poll::Ready(Err(ClosedError)),
                Err(TakeError::NoPermits) => {}
            }
        }
        self.poll_acquire_slow(n, waiter, cx)
    }

    /// `poll_acquire` without its fast path, for a caller that just tried it (a lock's own).
    #[inline(never)]
    pub(crate) fn poll_acquire_slow(
        &self,
        n: usize,
        waiter: &mut Option<WaiterId>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), ClosedError>> {
        let mut waiters = self.waiters.lock();
        let mut wakers = WakeList::new();
        let result = match waiter {
            None => self.register(n, &mut waiters, waiter, cx.waker()),
            Some(id) => match waiters.list.get(id).outcome {
                Outcome::Queued => {
                    waiters.list.set_waker(id, cx.waker());
                    Poll::Pending
                }
                Outcome::Granted => {
                    // Handed over under the mutex we now hold (its count already taken).
                    waiters
                        .list
                        .remove(waiter.take().expect("matched Some above"));
                    Poll::Ready(Ok(()))
                }
                Outcome::Closed => {
                    waiters
                        .list
                        .remove(waiter.take().expect("matched Some above"));
                    Poll::Ready(Err(ClosedError))
                }
                Outcome::Designated => self.retry(n, &mut waiters, waiter, cx.waker(), &mut wakers),
            },
        };
        drop(waiters);
        wakers.wake_all();
        result
    }

    /// First poll, fast path failed: take the permits if they became free, else queue.
    fn register(
        &self,
        n: usize,
        waiters: &mut Guard<'_>,
        waiter: &mut Option<WaiterId>,
        waker: &Waker,
    ) -> Poll<Result<(), ClosedError>> {
        // Relaxed: only picks the value each CAS expects.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & CLOSED != 0 {
                return Poll::Ready(Err(ClosedError));
            }
            if state & BIG != 0 {
                // Strict FIFO on the count under the mutex.
                if waiters.list.is_empty() && waiters.big >= n {
                    waiters.big -= n;
                    return Poll::Ready(Ok(()));
                }
                break;
            }
            let (new, success) = if is_open(state) && permits(state) >= n {
                // Free permits nobody is owed: take them (Acquire, as in `try_acquire`).
                (state - n * ONE, Ordering::Acquire)
            } else if state & HAS_WAITERS != 0 {
                // Others sleep already, so releases either take the slow path (ordered after
                // this section by the mutex) or see `WOKEN`, whose waiter answers for the
                // permits (module docs). Queue without touching the word.
                break;
            } else {
                // Announce ourselves: a fast release racing this CAS either comes first (we
                // see its permits) or fails and takes the slow path (module docs). Relaxed:
                // the wakeup itself is published through the mutex.
                (state | HAS_WAITERS, Ordering::Relaxed)
            };
            match self
                .state
                .compare_exchange(state, new, success, Ordering::Relaxed)
            {
                // We set `HAS_WAITERS`: queue.
                Ok(_) if new & HAS_WAITERS != state & HAS_WAITERS => break,
                // We took the permits.
                Ok(_) => return Poll::Ready(Ok(())),
                Err(actual) => state = actual,
            }
        }
        let request = Request {
            permits: n,
            misses: 0,
            starving: false,
            outcome: Outcome::Queued,
        };
        *waiter = Some(waiters.list.push_back(request, waker));
        Poll::Pending
    }

    /// A designated waiter's poll: take the permits, or count a miss and yield, or (at the
    /// `MAX_MISSES`th miss) go back to the front of the queue as starving.
    fn retry(
        &self,
        n: usize,
        waiters: &mut Guard<'_>,
        waiter: &mut Option<WaiterId>,
        waker: &Waker,
        wakers: &mut WakeList,
    ) -> Poll<Result<(), ClosedError>> {
        let id = waiter.as_ref().expect("a designated waiter has an entry");
        let misses = waiters.list.get(id).misses;
        // Relaxed: only picks the value each CAS expects.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            debug_assert!(state & WOKEN != 0 && state & HANDOFF == 0);
            if state & CLOSED != 0 {
                // Closed after we were designated: stop being the designated waiter (nobody
                // else needs waking: every other acquire fails now). AcqRel: a plain flag
                // update under the mutex, like every flag change.
                self.state.fetch_and(!WOKEN, Ordering::AcqRel);
                waiters.list.remove(waiter.take().expect("checked above"));
                return Poll::Ready(Err(ClosedError));
            }
            if state & BIG != 0 {
                // The waker first, before any change: a `clone` that panics leaves everything
                // as it was (the relink below then clones nothing).
                waiters.list.set_waker(id, waker);
                // The count moved under the mutex meanwhile: no more barging, so no retries.
                self.state.fetch_and(!WOKEN, Ordering::AcqRel);
                if waiters.big >= n {
                    waiters.big -= n;
                    waiters.list.remove(waiter.take().expect("checked above"));
                    self.dispatch(waiters, wakers);
                    return Poll::Ready(Ok(()));
                }
                waiters.list.get_mut(id).outcome = Outcome::Queued;
                waiters.list.relink_front(id, waker);
                return Poll::Pending;
            }
            let (new, success, starve) = if permits(state) >= n {
                // Take the permits and end the designation in one step, so that a release
                // that saw `WOKEN` was either counted here or will see it cleared. Acquire:
                // as in `try_acquire`.
                ((state - n * ONE) & !WOKEN, Ordering::Acquire, false)
            } else if misses + 1 < MAX_MISSES {
                // Missed (someone took the permits first): stay designated and retry after
                // the others had a turn. Nothing changes in the word.
                waiters.list.get_mut(id).misses = misses + 1;
                wakers.push(Some(waker.clone()));
                return Poll::Pending;
            } else {
                // Missed too often: ask for a handoff. Releases racing this CAS either came
                // first (we see their permits and retry) or see `HANDOFF` and take the slow
                // path, which hands permits to us. Relaxed: the handoff is published through
                // the mutex. The waker is stored first, before the word changes: a `clone`
                // that panics leaves everything as it was (the relink below clones nothing).
                waiters.list.set_waker(id, waker);
                (
                    (state & !WOKEN) | HANDOFF | HAS_WAITERS,
                    Ordering::Relaxed,
                    true,
                )
            };
            match self
                .state
                .compare_exchange(state, new, success, Ordering::Relaxed)
            {
                Ok(_) if starve => {
                    let request = waiters.list.get_mut(id);
                    request.starving = true;
                    request.outcome = Outcome::Queued;
                    waiters.list.relink_front(id, waker);
                    return Poll::Pending;
                }
                Ok(_) => {
                    waiters.list.remove(waiter.take().expect("checked above"));
                    // Pass the turn on if permits remain for those still asleep.
                    self.dispatch(waiters, wakers);
                    return Poll::Ready(Ok(()));
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// Wakes or serves the front waiter as the state allows. Called with the mutex held after
    /// every change that may let a waiter in.
    fn dispatch(&self, waiters: &mut Waiters, wakers: &mut WakeList) {
        loop {
            // Acquire: pairs with fast releases, whose permits we may hand over.
            let state = self.state.load(Ordering::Acquire);
            if state & BIG != 0 {
                return dispatch_big(waiters, wakers);
            }
            let Some(front) = waiters.list.front() else {
                // Nobody queued: keep the invariant.
                if state & (HAS_WAITERS | HANDOFF) != 0 {
                    self.state
                        .fetch_and(!(HAS_WAITERS | HANDOFF), Ordering::AcqRel);
                }
                return;
            };
            let need = front.permits;
            if front.starving {
                // Handoff mode: nothing but this section changes the word (the word is not
                // open, so fast acquires and releases fail; everything else holds the mutex).
                debug_assert!(state & HANDOFF != 0 && state & WOKEN == 0);
                if permits(state) < need {
                    return;
                }
                let (request, waker) = waiters.list.notify_front().expect("front exists");
                request.outcome = Outcome::Granted;
                let clear = if waiters.list.is_empty() {
                    HANDOFF | HAS_WAITERS
                } else {
                    HANDOFF
                };
                // Release: with the mutex, publishes the returned permits' holders' writes.
                self.state
                    .store((state - need * ONE) & !clear, Ordering::Release);
                wakers.push(waker);
                // Barging is allowed again; free permits may remain for the next waiter.
                continue;
            }
            if state & (WOKEN | CLOSED) != 0 || permits(state) < need {
                // Someone is already on the way, or too few permits for the front waiter. In
                // the latter case the word is not open (`HAS_WAITERS` without `WOKEN`), so
                // nobody takes them past it, and the next release comes here again.
                return;
            }
            let (request, waker) = waiters.list.notify_front().expect("front exists");
            request.outcome = Outcome::Designated;
            let clear = if waiters.list.is_empty() {
                HAS_WAITERS
            } else {
                0
            };
            // The word is not open (`HAS_WAITERS` without `WOKEN`), so nothing changes it
            // without the mutex and the first CAS succeeds; the loop only guards that claim.
            let mut current = state;
            while let Err(actual) = self.state.compare_exchange(
                current,
                (current | WOKEN) & !clear,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                current = actual;
            }
            wakers.push(waker);
            return;
        }
    }

    /// Called when an acquiring future is dropped. One that never queued returns here,
    /// inline, without touching the mutex.
    #[inline]
    pub(crate) fn cancel(&self, waiter: Option<WaiterId>) {
        if let Some(id) = waiter {
            self.cancel_queued(id);
        }
    }

    #[cold]
    fn cancel_queued(&self, id: WaiterId) {
        let mut waiters = self.waiters.lock();
        let request = waiters.list.remove(id).value;
        let outcome = request.outcome;
        // Mutants for the loom models (issue 7): a cancelled waiter keeps what it was handed
        // (the designation to retry, or permits) instead of passing it on.
        #[cfg(any(
            magpie_mutant = "lock_cancel_keeps_handoff",
            magpie_mutant = "semaphore_cancel_loses_permits"
        ))]
        let outcome = match outcome {
            Outcome::Designated | Outcome::Granted => Outcome::Closed,
            other => other,
        };
        // Only the handoff branch: a starved waiter's handed permits are lost on cancel.
        #[cfg(magpie_mutant = "granted_cancel_loses_permits")]
        let outcome = match outcome {
            Outcome::Granted => Outcome::Closed,
            other => other,
        };
        match outcome {
            // Left the queue; if it was the starving front waiter, barging is allowed again.
            // AcqRel: a flag change under the mutex.
            Outcome::Queued if request.starving => {
                self.state.fetch_and(!HANDOFF, Ordering::AcqRel);
            }
            Outcome::Queued | Outcome::Closed => {}
            // Its retry will never happen: let the next waiter retry instead.
            Outcome::Designated => {
                self.state.fetch_and(!WOKEN, Ordering::AcqRel);
            }
            // Granted but never returned to the caller: give the permits back.
            Outcome::Granted => self.add_locked(&mut waiters, request.permits),
        }
        let mut wakers = WakeList::new();
        // Even a plain removal may let others in (a large request leaving the front).
        self.dispatch(&mut waiters, &mut wakers);
        drop(waiters);
        wakers.wake_all();
    }

    /// Returns `n` permits.
    ///
    /// # Panics
    ///
    /// Panics if the free permits would exceed `usize::MAX`.
    #[inline]
    pub(crate) fn release(&self, n: usize) {
        // Relaxed: only picks the value the CAS expects.
        self.release_from(n, self.state.load(Ordering::Relaxed));
    }

    /// `release(1)` for a semaphore of one permit (a lock) held by the caller: the first CAS
    /// guesses the state of a held, uncontended lock (no permit free, no flag).
    #[inline]
    pub(crate) fn release_one_of_one(&self) {
        self.release_from(1, 0);
    }

    /// The loop of `release`, starting from `state` (a guess is fine, as in
    /// `try_acquire_from`).
    #[inline]
    fn release_from(&self, n: usize, mut state: usize) {
        loop {
            let total = permits(state).wrapping_add(n);
            if state & BIG != 0 || !is_open(state) || total > MAX_WORD_PERMITS || total < n {
                // Someone must be served or woken, or the count outgrows the word: under
                // the mutex.
                return self.release_slow(n);
            }
            // Release on success: publishes the holder's writes to the next acquirer's
            // Acquire CAS. Relaxed on failure: we look again.
            match self.state.compare_exchange(
                state,
                (total << FLAG_BITS) | (state & (ONE - 1)),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
    }

    #[inline(never)]
    fn release_slow(&self, n: usize) {
        let mut waiters = self.waiters.lock();
        self.add_locked(&mut waiters, n);
        let mut wakers = WakeList::new();
        self.dispatch(&mut waiters, &mut wakers);
        drop(waiters);
        wakers.wake_all();
    }

    /// Adds `n` free permits, waking or serving waiters.
    ///
    /// # Panics
    ///
    /// Panics if the free permits would exceed `usize::MAX`.
    pub(crate) fn add_permits(&self, n: usize) {
        self.release_slow(n);
    }

    /// Adds `n` free permits to the count, with the mutex held (`waiters` is its guard),
    /// switching to `BIG` mode if they outgrow the word. Fast acquires and releases may race
    /// on the word, hence the CAS loop.
    fn add_locked(&self, waiters: &mut Waiters, n: usize) {
        // Relaxed: only picks the value the CAS expects.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & BIG != 0 {
                waiters.big = waiters.big.checked_add(n).expect(OVERFLOW);
                return;
            }
            let total = permits(state).checked_add(n).expect(OVERFLOW);
            let new = if total <= MAX_WORD_PERMITS {
                (total << FLAG_BITS) | (state & (ONE - 1))
            } else {
                // Outgrown: the count moves under the mutex for good. Only `WOKEN` and
                // `CLOSED` keep their meaning (a designated waiter may still retry).
                (state & (WOKEN | CLOSED)) | BIG
            };
            // AcqRel: Release publishes the returning holder's writes; Acquire keeps the
            // dispatch that follows ordered after the permits it hands out.
            match self
                .state
                .compare_exchange(state, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    if new & BIG != 0 {
                        waiters.big = total;
                    }
                    return;
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// Closes: queued waiters and later acquires fail; a designated waiter fails at its next
    /// poll. Permits held stay valid.
    pub(crate) fn close(&self) {
        let mut waiters = self.waiters.lock();
        // AcqRel: a flag change under the mutex, like the others.
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        let mut wakers = WakeList::new();
        while let Some((request, waker)) = waiters.list.notify_front() {
            request.outcome = Outcome::Closed;
            wakers.push(waker);
        }
        // The list is empty: clear `HAS_WAITERS` / `HANDOFF`.
        self.dispatch(&mut waiters, &mut wakers);
        drop(waiters);
        wakers.wake_all();
    }
}

/// `BIG` mode's dispatch: strict FIFO handoff from the count under the mutex.
fn dispatch_big(waiters: &mut Waiters, wakers: &mut WakeList) {
    while let Some(front) = waiters.list.front() {
        let need = front.permits;
        if need > waiters.big {
            break;
        }
        waiters.big -= need;
        let (request, waker) = waiters.list.notify_front().expect("front exists");
        request.outcome = Outcome::Granted;
        wakers.push(waker);
    }
}

/// Loom models of the barging protocol (run with `RUSTFLAGS="--cfg loom" cargo test -p
/// magpie-sync --lib --release raw_semaphore`). Under loom a waiter starves after 2 misses, so
/// these reach a retried miss and a handoff.
#[cfg(all(test, loom))]
mod loom_models {
    use crate::Semaphore;
    use loom::future::block_on;
    use loom::sync::Arc;
    use loom::thread;

    /// One permit; a waiting thread takes it twice while the main thread keeps barging in with
    /// `try_acquire`. The waiter may miss, retry, starve and be handed the permit: in every
    /// interleaving it finishes (no lost wakeup), never two holders at once (the permit count
    /// never underflows), and the permit is back at the end.
    #[test]
    fn barging_misses_and_handoff_lose_no_wakeup() {
        loom::model(|| {
            let semaphore = Arc::new(Semaphore::new(1));
            let held = semaphore.try_acquire().expect("fresh semaphore");
            let waiter = {
                let semaphore = semaphore.clone();
                thread::spawn(move || {
                    for _ in 0..2 {
                        drop(block_on(semaphore.acquire()).expect("never closed"));
                    }
                })
            };
            drop(held);
            for _ in 0..2 {
                if let Ok(permit) = semaphore.try_acquire() {
                    drop(permit);
                }
            }
            waiter.join().unwrap();
            assert_eq!(semaphore.available_permits(), 1);
        });
    }
}
