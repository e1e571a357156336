//! One registered I/O source: its per-direction readiness state and the wakers waiting on it.
//!
//! Sources are registered once, for both directions, in the poller's **edge-triggered** mode:
//! the poller reports a direction when it *becomes* ready (new data, freed send buffer, a hang-up),
//! not while it stays ready. So a socket that stays ready with nobody consuming it never makes
//! the reactor spin, and no `epoll_ctl` call is needed per wait — interest is never re-armed.
//!
//! The price of edges is that one reported while no task waits must not be lost. Each direction
//! therefore keeps a `tick` (bumped by every reported edge) and a `ready` flag ("an edge was
//! reported since the last confirmed `WouldBlock`"):
//!
//! - an operation reads the tick *before* its syscall; on `WouldBlock` it registers its waker
//!   only if the tick has not moved meanwhile (else an edge arrived during the attempt: retry),
//!   and then clears `ready`. Both happen under the source's lock, which the reactor also holds
//!   while it bumps the tick and drains the waiters, so an edge is either seen by the check or
//!   wakes the registered waiter — never neither.
//! - a bare [`Readiness`](crate::Readiness) wait (no failed attempt to start from) registers at
//!   once when `ready` is clear (nothing became ready since a confirmed `WouldBlock`); when it
//!   is set it asks the OS with a zero-timeout `poll(2)` whether the direction is ready right
//!   now, and if not waits from the tick it read before that probe. (Returning `Ready` on the
//!   flag alone would make a manual `read`/`readable()` loop spin on a stale flag.)
//!
//! The tick and the two flags of a direction live in one atomic word ([`Status`]), outside
//! the lock, which guards only the waiter lists: the common case — the direction is ready, the
//! operation reads the tick and makes its syscall — takes no lock at all (one load). The tick
//! moves only under the lock (edges), so a check of the tick made under the lock still cannot
//! miss an edge. Outside the lock the flags are cleared only by a short read, with one
//! compare-and-swap that fails if the tick moved since before the read — the condition the
//! lock used to guard (loom models at the end of this file).
//!
//! The reactor never touches a source's descriptor after registration: only the owner calls
//! `Poller::delete` (on deregistration) and `poll(2)` (while it borrows the open descriptor).
//!
//! **Windows** has no edge-triggered mode, only oneshot: a registration reports readiness once
//! and is then spent. There a source is registered with no interest, and [`Source::arm`] asks
//! the poller for the directions that have waiters each time a waiter is added (and, after an
//! event, for those still waiting). Arming checks the socket's state at that moment, so an edge
//! that came before it is not lost; the ticks and flags above work unchanged. The reactor
//! re-arms from `on_event` only while the source is registered (`deregistered`, set under the
//! lock before the owner deletes the socket), so it never touches a closed socket.

use crate::loom::atomic::{AtomicU64, Ordering};
use crate::loom::{lock, Mutex};
use crate::os::{self, RawSource};
use polling::Poller;
use std::io;
use std::task::Waker;

/// Why a waiter could not be registered: the poller refused to arm the source (Windows). On
/// Unix nothing is armed and nothing can fail: the type is uninhabited, so the `Result`s below
/// are laid out (and returned) exactly as their `Ok` values, and their error paths compile
/// away — the edge-triggered path costs what it did before Windows support.
#[cfg(unix)]
pub(crate) type ArmError = std::convert::Infallible;
/// Why a waiter could not be registered: the poller refused to arm the source.
#[cfg(windows)]
pub(crate) type ArmError = io::Error;

/// An [`ArmError`] as the `io::Error` the waiting operation returns.
#[cfg_attr(unix, allow(clippy::needless_pass_by_value))]
pub(crate) fn arm_error(e: ArmError) -> io::Error {
    #[cfg(unix)]
    match e {}
    #[cfg(windows)]
    e
}

/// A direction of readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Readable (or hung up / in error).
    Read = 0,
    /// Writable (or hung up / in error).
    Write = 1,
}

impl Direction {
    /// The `poll(2)` events that mean this direction is ready (errors and hang-ups are always
    /// reported in `revents` on top of these).
    #[cfg(unix)]
    fn poll_events(self) -> libc::c_short {
        match self {
            Direction::Read => libc::POLLIN | libc::POLLPRI,
            Direction::Write => libc::POLLOUT,
        }
    }
}

/// One waiting task.
struct Waiter {
    /// `Some(id)` for a [`Readiness`](crate::Readiness) future (so re-polls replace its waker);
    /// `None` for a `poll_read`-style caller, which is matched by `Waker::will_wake` instead.
    id: Option<u64>,
    waker: Waker,
}

/// The readiness of one direction in one atomic word: `[ tick (62 bits) | SUSPECT | READY ]`.
///
/// - the **tick** is bumped every time the reactor reports an edge for this direction; a
///   waiter that registered at tick `t` is ready once the tick differs from `t`. It changes
///   only under the source's lock (`on_event`), which is what makes a tick checked under that
///   lock safe against lost edges.
/// - **`READY`**: an edge was reported (or the source was just registered) since the last
///   `WouldBlock` confirmed at an unchanged tick. While clear, the direction is known not to
///   have become ready: an operation or a bare readiness wait can register without a syscall.
/// - **`SUSPECT`**: an edge of this direction may have come with a hang-up, an error or urgent
///   data (or was reported by a path that cannot tell): the descriptor may hold something a
///   short read leaves behind (a pending end-of-stream or error), so a short read must not
///   clear `READY`. Cleared only by a `WouldBlock` confirmed at an unchanged tick, which proves
///   nothing is pending (a pending end-of-stream or error makes a read return, not block).
///
/// Orderings: Acquire on loads and AcqRel on updates. The word publishes no other data (the
/// waiters are under the lock, the bytes are in the kernel), so this is more than the protocol
/// needs; it costs nothing on x86 and keeps the reasoning local.
struct Status(AtomicU64);

impl Status {
    const READY: u64 = 0b01;
    const SUSPECT: u64 = 0b10;
    const TICK_ONE: u64 = 0b100;

    /// Nothing is known about a new descriptor: it may already be ready, and hold anything.
    fn new() -> Status {
        Status(AtomicU64::new(Self::READY | Self::SUSPECT))
    }

    fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::Acquire))
    }

    /// An edge (caller holds the source's lock): the next tick, `READY`, and `SUSPECT` too if
    /// `suspect`. One read-modify-write, so a concurrent lock-free clear either comes before
    /// it (and is overridden) or fails its compare-and-swap (the tick moved).
    fn edge(&self, suspect: bool) {
        let set = Self::READY | if suspect { Self::SUSPECT } else { 0 };
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                Some(w.wrapping_add(Self::TICK_ONE) | set)
            });
    }

    /// The direction was confirmed not ready at the current tick (caller holds the lock, so
    /// the tick cannot move): clears both flags, leaves the tick.
    fn confirm_not_ready(&self) {
        self.0
            .fetch_and(!(Self::READY | Self::SUSPECT), Ordering::AcqRel);
    }

    /// A short read that started at `seen_tick` (no lock needed): clears `READY` if the tick
    /// is still `seen_tick` and the direction is not suspect.
    fn clear_after_short_read(&self, seen_tick: u64) {
        let mut w = self.0.load(Ordering::Acquire);
        loop {
            let now = Snapshot(w);
            // (Mutant `short_read_clear_ignores_tick`: clear whatever the tick, so an edge
            // reported after the read is wiped out.)
            let moved =
                now.tick() != seen_tick && !cfg!(magpie_mutant = "short_read_clear_ignores_tick");
            if moved || now.suspect() || !now.ready() {
                return;
            }
            match self.0.compare_exchange_weak(
                w,
                w & !Self::READY,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => w = actual,
            }
        }
    }
}

/// One reading of a [`Status`].
#[derive(Clone, Copy)]
struct Snapshot(u64);

impl Snapshot {
    fn tick(self) -> u64 {
        self.0 / Status::TICK_ONE
    }

    fn ready(self) -> bool {
        self.0 & Status::READY != 0
    }

    fn suspect(self) -> bool {
        self.0 & Status::SUSPECT != 0
    }
}

/// The waiters of one direction (its readiness is in the source's [`Status`] words).
#[derive(Default)]
struct DirectionState {
    /// Every task waiting for this direction; all are drained and woken by one edge.
    waiters: Vec<Waiter>,
}

impl DirectionState {
    /// Adds (or refreshes) a `poll_*`-style waiter for `waker`'s task.
    fn push_poll_waiter(&mut self, waker: &Waker) {
        match self
            .waiters
            .iter_mut()
            .find(|w| w.id.is_none() && w.waker.will_wake(waker))
        {
            Some(existing) => existing.waker.clone_from(waker),
            None => self.waiters.push(Waiter {
                id: None,
                waker: waker.clone(),
            }),
        }
    }

    /// Adds a `Readiness`-future waiter with id `id`, registered at tick `tick`.
    fn push_future_waiter(&mut self, id: u64, tick: u64, waker: &Waker) -> WaitState {
        self.waiters.push(Waiter {
            id: Some(id),
            waker: waker.clone(),
        });
        WaitState::Registered { id, tick }
    }
}

/// The mutable part of a source.
#[derive(Default)]
struct State {
    dirs: [DirectionState; 2],
    /// Source of ids for `Readiness` futures' waiters.
    next_id: u64,
    /// Windows: the directions the poller is armed to report (oneshot: spent by each event).
    #[cfg(windows)]
    armed: [bool; 2],
    /// Windows: the owner has begun deregistering; the socket must not be armed again.
    #[cfg(windows)]
    deregistered: bool,
}

impl State {
    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }
}

/// A registered file descriptor.
pub(crate) struct Source {
    /// The poller key: slot index + generation (see `source_table`).
    key: usize,
    /// The file descriptor (Windows: socket), owned by the `Async` that registered it.
    raw: RawSource,
    /// Readiness per direction (`Direction as usize`), read without the lock.
    status: [Status; 2],
    /// The waiters (and, on Windows, the arming); ticks move only while it is held.
    state: Mutex<State>,
}

/// One edge reported for a source, as the reactor hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SourceEvent {
    /// Readable (or hung up / in error).
    pub(crate) readable: bool,
    /// Writable (or hung up / in error).
    pub(crate) writable: bool,
    /// The edge came with a hang-up, an error or urgent data, or the poller path that
    /// reported it cannot tell: a short read must not clear read readiness.
    pub(crate) suspect: bool,
}

/// Where a `Readiness` future stands.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WaitState {
    /// Not polled yet, and no failed attempt to start from: ask whether the direction is ready.
    Start,
    /// The direction was found not ready at tick `tick` (an operation returned `WouldBlock`, or
    /// a `poll(2)` probe said so): ready as soon as the tick moves.
    NotReadyAt(u64),
    /// In the waiter list as `id` since tick `tick`.
    Registered { id: u64, tick: u64 },
    /// Completed (or never to be woken again).
    Done,
}

/// What a poll of a `Readiness` future found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitPoll {
    /// The direction is (or became) ready.
    Ready,
    /// The waker is registered; an edge will wake it.
    Pending,
    /// An edge may have been reported since the last confirmed `WouldBlock`: probe the OS,
    /// then continue from `NotReadyAt(tick)` if the direction is not ready.
    Probe { tick: u64 },
}

impl Source {
    /// A source for `raw`, registered under `key`.
    pub(crate) fn new(key: usize, raw: RawSource) -> Source {
        Source {
            key,
            raw,
            status: [Status::new(), Status::new()],
            state: Mutex::new(State::default()),
        }
    }

    /// The poller key.
    pub(crate) fn key(&self) -> usize {
        self.key
    }

    /// The tick of `dir` now; read before an attempt so a `WouldBlock` can be matched with it.
    pub(crate) fn tick(&self, dir: Direction) -> u64 {
        self.status[dir as usize].load().tick()
    }

    /// After an attempt started at `seen_tick` returned `WouldBlock`: registers `waker` for
    /// `dir` as a `poll_*`-style waiter and returns `true`, or — if an edge was reported since
    /// `seen_tick` — registers nothing and returns `false` (the caller retries the attempt).
    ///
    /// A waiter whose waker `will_wake` the same task is replaced, not duplicated.
    ///
    /// # Errors
    /// Windows: the poller's error if it cannot be armed for `dir`.
    pub(crate) fn register_poll_waker(
        &self,
        dir: Direction,
        seen_tick: u64,
        waker: &Waker,
    ) -> Result<bool, ArmError> {
        let mut state = lock(&self.state);
        let status = &self.status[dir as usize];
        // Under the lock the tick cannot move: an edge is either seen here or drains the
        // waiter pushed below.
        if status.load().tick() != seen_tick {
            return Ok(false);
        }
        // Armed first: if the poller refuses, nothing has changed.
        self.arm(&mut state, dir)?;
        status.confirm_not_ready();
        state.dirs[dir as usize].push_poll_waiter(waker);
        Ok(true)
    }

    /// Before a `poll_*`-style attempt: if `dir` is known not ready (`ready` clear: no edge
    /// since it was last confirmed or inferred empty), registers `waker` as a `poll_*`-style
    /// waiter and returns `None` — the attempt would only return `WouldBlock`, so it is
    /// skipped. Otherwise returns the current tick, to be passed to
    /// [`Source::register_poll_waker`] or [`Source::clear_after_short_read`] after the attempt.
    ///
    /// # Errors
    /// Windows: the poller's error if it cannot be armed for `dir`.
    pub(crate) fn tick_or_wait(
        &self,
        dir: Direction,
        waker: &Waker,
    ) -> Result<Option<u64>, ArmError> {
        let status = &self.status[dir as usize];
        // The common case, with no lock: ready, go ahead with the attempt.
        let now = status.load();
        if now.ready() {
            return Ok(Some(now.tick()));
        }
        let mut state = lock(&self.state);
        // Again under the lock: an edge may have set `READY` since (and none can now).
        let now = status.load();
        if now.ready() {
            return Ok(Some(now.tick()));
        }
        // Armed first: if the poller refuses, nothing has changed.
        self.arm(&mut state, dir)?;
        state.dirs[dir as usize].push_poll_waiter(waker);
        Ok(None)
    }

    /// After a stream read started at `seen_tick` returned fewer bytes than asked for (but
    /// more than zero): the receive queue was empty when the read finished, so clears `ready`
    /// as a `WouldBlock` would — unless an edge was reported since `seen_tick` (it may carry
    /// new data) or the direction is `suspect` (a hang-up, error or urgent data may still be
    /// pending behind the data just read). Registers no waiter.
    ///
    /// Only for byte streams whose reads stop short solely because the queue ran dry (TCP):
    /// a wrongly cleared flag makes the next read wait for an edge that never comes.
    pub(crate) fn clear_after_short_read(&self, dir: Direction, seen_tick: u64) {
        self.status[dir as usize].clear_after_short_read(seen_tick);
    }

    /// Polls a `Readiness` future in state `wait` (see [`WaitState`]), updating it.
    ///
    /// # Errors
    /// Windows: the poller's error if it cannot be armed for `dir` (the waiter stays listed
    /// until the source is deregistered or an edge drains it).
    pub(crate) fn poll_waiter(
        &self,
        dir: Direction,
        wait: &mut WaitState,
        waker: &Waker,
    ) -> Result<WaitPoll, ArmError> {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let status = &self.status[dir as usize];
        // Under the lock: the tick read here stays the tick until we unlock.
        let now = status.load();
        let d = &mut state.dirs[dir as usize];
        match *wait {
            WaitState::Done => Ok(WaitPoll::Ready),
            WaitState::Start if now.ready() => Ok(WaitPoll::Probe { tick: now.tick() }),
            WaitState::NotReadyAt(tick) | WaitState::Registered { tick, .. }
                if now.tick() != tick =>
            {
                // The edge that bumped the tick drained (and woke) any waiter of ours.
                *wait = WaitState::Done;
                Ok(WaitPoll::Ready)
            }
            WaitState::Registered { id, .. } => {
                if let Some(w) = d.waiters.iter_mut().find(|w| w.id == Some(id)) {
                    w.waker.clone_from(waker);
                    return Ok(WaitPoll::Pending);
                }
                // Drained without a tick change: only a deregistration does that, and none
                // happens while a `Readiness` borrows the `Async`; stay registered anyway.
                self.arm(state, dir)?;
                *wait = state.dirs[dir as usize].push_future_waiter(id, now.tick(), waker);
                Ok(WaitPoll::Pending)
            }
            WaitState::Start | WaitState::NotReadyAt(_) => {
                // `Start` with the flag clear: found not ready at this very tick, and no edge
                // since. `NotReadyAt` at an unchanged tick: a `WouldBlock` (or probe) confirmed
                // it. Armed first: if the poller refuses, nothing has changed.
                self.arm(state, dir)?;
                let id = state.next_id();
                if matches!(*wait, WaitState::NotReadyAt(_)) {
                    status.confirm_not_ready();
                }
                *wait = state.dirs[dir as usize].push_future_waiter(id, now.tick(), waker);
                Ok(WaitPoll::Pending)
            }
        }
    }

    /// Windows: arms the poller for `adding` (about to get a waiter) and every direction that
    /// has a waiter, keeping those still armed. Called with the state locked, before a waiter
    /// is added and after an event spent the previous arming. Does nothing once
    /// deregistration has begun.
    #[cfg(windows)]
    fn arm(&self, state: &mut State, adding: Direction) -> Result<(), ArmError> {
        let mut want = [0, 1].map(|i| state.armed[i] || !state.dirs[i].waiters.is_empty());
        want[adding as usize] = true;
        self.arm_for(state, want)
    }

    /// Windows: arms the poller for the directions in `want` unless they are armed already.
    #[cfg(windows)]
    fn arm_for(&self, state: &mut State, want: [bool; 2]) -> Result<(), ArmError> {
        if state.deregistered || want == state.armed {
            return Ok(());
        }
        // SAFETY: the socket is open and registered: `deregistered` is clear, and the owner
        // sets it (under this lock, which we hold) before it deletes and closes the socket.
        unsafe { crate::reactor::get().arm(self.raw, self.key, want[0], want[1]) }?;
        state.armed = want;
        Ok(())
    }

    /// Unix: edge-triggered registrations never need arming.
    #[cfg(unix)]
    #[inline(always)]
    fn arm(&self, _state: &mut State, _adding: Direction) -> Result<(), ArmError> {
        Ok(())
    }

    /// Asks the OS whether `dir` is ready right now (a zero-timeout `poll(2)`), for a bare
    /// readiness wait whose `ready` flag was set. Errors and hang-ups count as ready.
    ///
    /// The caller must keep the descriptor open (it borrows the owning `Async`).
    #[cfg(unix)]
    pub(crate) fn probe(&self, dir: Direction) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.raw,
            events: dir.poll_events(),
            revents: 0,
        };
        loop {
            // SAFETY: `pfd` is one valid, writable `pollfd` and we pass a count of 1; a zero
            // timeout never blocks. (`poll` never invalidates memory for a closed descriptor,
            // it reports POLLNVAL; the caller keeps it open anyway so the answer is its own.)
            let n = unsafe { libc::poll(&mut pfd, 1, 0) };
            if n >= 0 {
                return Ok(n > 0 && pfd.revents != 0);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// Windows: answers "not ready" without asking, so the wait registers and arms the poller,
    /// which checks the socket's state as it is armed and reports it at once if it is ready:
    /// the same answer, one reactor round later, with no extra syscall here.
    #[cfg(windows)]
    #[allow(clippy::unnecessary_wraps, clippy::unused_self)]
    pub(crate) fn probe(&self, _dir: Direction) -> io::Result<bool> {
        Ok(false)
    }

    /// Forgets a `Readiness` future's waiter when the future is dropped.
    pub(crate) fn remove_waiter(&self, dir: Direction, wait: WaitState) {
        let WaitState::Registered { id, tick } = wait else {
            return;
        };
        let removed = {
            let mut state = lock(&self.state);
            if self.status[dir as usize].load().tick() != tick {
                return;
            }
            let d = &mut state.dirs[dir as usize];
            d.waiters
                .iter()
                .position(|w| w.id == Some(id))
                .map(|i| d.waiters.swap_remove(i))
        };
        // Dropped outside the lock: a waker's drop may run executor code.
        drop(removed);
    }

    /// Called by the reactor for an edge on this source: for each reported direction, bumps
    /// its tick, sets its `ready` flag and moves its waiters into `wake`; `suspect` (a hang-up,
    /// error or urgent data came with it, or the caller cannot tell) marks the read direction
    /// suspect. No syscall: the edge-triggered registration needs no re-arming (Windows:
    /// the event spent the oneshot arming, so the directions still waited on are re-armed).
    pub(crate) fn on_event(&self, ev: SourceEvent, wake: &mut Vec<Waker>) {
        let mut state = lock(&self.state);
        for (dir, reported) in [
            (Direction::Read, ev.readable),
            (Direction::Write, ev.writable),
        ] {
            if reported {
                self.status[dir as usize].edge(ev.suspect);
                let d = &mut state.dirs[dir as usize];
                wake.extend(d.waiters.drain(..).map(|w| w.waker));
            }
        }
        #[cfg(windows)]
        self.rearm_waiting(&mut state, wake);
    }

    /// Windows: the arming is spent (an event reported it, or a failed wait may have lost
    /// that event): re-arms the directions that still have waiters. If the poller refuses,
    /// those waiters would never hear from it: they are woken (into `wake`) to retry, and meet
    /// the socket's own error or arm it again.
    #[cfg(windows)]
    fn rearm_waiting(&self, state: &mut State, wake: &mut Vec<Waker>) {
        state.armed = [false, false];
        let want = [0, 1].map(|i| !state.dirs[i].waiters.is_empty());
        if self.arm_for(state, want).is_err() {
            for (d, status) in state.dirs.iter_mut().zip(&self.status) {
                status.edge(true);
                wake.extend(d.waiters.drain(..).map(|w| w.waker));
            }
        }
    }

    /// Windows, after a failed wait: the poller may have spent this source's arming on an event
    /// it could not hand over, so the arming is redone (see [`Source::rearm_waiting`]).
    #[cfg(windows)]
    pub(crate) fn rearm_after_failed_wait(&self, wake: &mut Vec<Waker>) {
        let mut state = lock(&self.state);
        self.rearm_waiting(&mut state, wake);
    }

    /// Removes the descriptor from the poller and forgets every waiter. Must be called while
    /// the descriptor is still open; afterwards nothing touches it again.
    pub(crate) fn deregister(&self, poller: &Poller) -> io::Result<()> {
        let waiters: Vec<Waiter> = {
            let mut state = lock(&self.state);
            // Windows: from here on nobody arms the socket (the reactor's `on_event` may still
            // run for an event collected earlier); every arming so far happened under this lock,
            // so before the delete below.
            #[cfg(windows)]
            {
                state.deregistered = true;
            }
            state
                .dirs
                .iter_mut()
                .flat_map(|d| d.waiters.drain(..))
                .collect()
        };
        // SAFETY: the owner calls this before closing the descriptor, so it is open for the
        // duration of this borrow.
        let fd = unsafe { os::borrow_raw(self.raw) };
        let result = poller.delete(fd);
        // Dropped outside the lock: a waker's drop may run executor code.
        drop(waiters);
        result
    }

    /// Whether `dir`'s `ready` flag is set (for tests and models).
    #[cfg(all(test, unix))]
    pub(crate) fn is_ready(&self, dir: Direction) -> bool {
        self.status[dir as usize].load().ready()
    }

    /// Whether `dir` is marked suspect (for tests).
    #[cfg(all(test, not(loom), unix))]
    pub(crate) fn is_suspect(&self, dir: Direction) -> bool {
        self.status[dir as usize].load().suspect()
    }

    /// Number of tasks waiting on `dir` (for tests).
    #[cfg(all(test, not(loom), unix))]
    pub(crate) fn waiter_count(&self, dir: Direction) -> usize {
        lock(&self.state).dirs[dir as usize].waiters.len()
    }
}

/// The readiness ticks alone, with no descriptor, poller or syscall: these also run under Miri
/// (.ci/miri.sh). Unix only: on Windows a waiter arms the poller, which needs a registered
/// socket; there `tests/net.rs` drives the arming with real sockets (both directions waited on
/// at once, thousands of sources, refused connects).
#[cfg(all(test, not(loom), unix))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    /// A source that is never registered anywhere.
    fn source() -> Source {
        Source::new(1, crate::os::NO_SOURCE)
    }

    const READABLE: SourceEvent = SourceEvent {
        readable: true,
        writable: false,
        suspect: false,
    };

    #[test]
    fn an_edge_bumps_the_tick_sets_ready_and_hands_over_the_waiters() {
        let s = source();
        let (count, waker) = counter();
        let seen = s.tick(Direction::Read);
        assert!(s
            .register_poll_waker(Direction::Read, seen, &waker)
            .unwrap());
        assert!(!s.is_ready(Direction::Read));
        let mut wake = Vec::new();
        s.on_event(READABLE, &mut wake);
        assert_eq!(s.tick(Direction::Read), seen + 1);
        assert!(s.is_ready(Direction::Read));
        assert_eq!(s.waiter_count(Direction::Read), 0);
        wake.into_iter().for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        // The other direction saw nothing.
        assert_eq!(s.tick(Direction::Write), 0);
    }

    #[test]
    fn a_waker_registered_after_an_edge_it_missed_is_refused() {
        let s = source();
        let (_count, waker) = counter();
        let seen = s.tick(Direction::Read);
        s.on_event(READABLE, &mut Vec::new());
        // The attempt started before the edge: retry it rather than sleep through the edge.
        assert!(!s
            .register_poll_waker(Direction::Read, seen, &waker)
            .unwrap());
        assert_eq!(s.waiter_count(Direction::Read), 0);
    }

    #[test]
    fn the_same_task_waits_once_per_direction() {
        let s = source();
        let (_count, waker) = counter();
        let seen = s.tick(Direction::Write);
        assert!(s
            .register_poll_waker(Direction::Write, seen, &waker)
            .unwrap());
        assert!(s
            .register_poll_waker(Direction::Write, seen, &waker.clone())
            .unwrap());
        assert_eq!(s.tick_or_wait(Direction::Write, &waker).unwrap(), None);
        // Told apart by `Waker::will_wake`, which is best-effort: under Miri two clones of one
        // waker need not compare equal (each use of a vtable may get its own address), so
        // there the task may be listed more than once, which costs a spare wake, no more.
        if !cfg!(miri) {
            assert_eq!(s.waiter_count(Direction::Write), 1);
        }
    }

    #[test]
    fn a_short_read_clears_ready_unless_an_edge_or_a_hang_up_came_with_it() {
        let s = source();
        let (_count, waker) = counter();
        // A new source is suspect (nothing is known of it) until a `WouldBlock` confirms it
        // empty.
        assert!(s.is_suspect(Direction::Read));
        assert!(s.register_poll_waker(Direction::Read, 0, &waker).unwrap());
        assert!(!s.is_suspect(Direction::Read));
        s.on_event(READABLE, &mut Vec::new());
        let seen = s
            .tick_or_wait(Direction::Read, &waker)
            .unwrap()
            .expect("ready");
        // An edge during the read: keep `ready`, the new data may be there.
        s.on_event(READABLE, &mut Vec::new());
        s.clear_after_short_read(Direction::Read, seen);
        assert!(s.is_ready(Direction::Read));
        // No edge since: the queue ran dry.
        let seen = s.tick(Direction::Read);
        s.clear_after_short_read(Direction::Read, seen);
        assert!(!s.is_ready(Direction::Read));
        // A hang-up came with the edge: never cleared by a short read.
        s.on_event(
            SourceEvent {
                suspect: true,
                ..READABLE
            },
            &mut Vec::new(),
        );
        assert!(s.is_suspect(Direction::Read));
        let seen = s.tick(Direction::Read);
        s.clear_after_short_read(Direction::Read, seen);
        assert!(s.is_ready(Direction::Read));
    }
}

/// Loom models of the readiness word against the lock: an edge is never lost to an operation
/// that read the word without the lock. Unix only, like the tests above (on Windows a waiter
/// arms a real poller).
#[cfg(all(test, loom, unix))]
mod status_models {
    use super::*;
    use crate::loom::Arc;
    use loom::thread;
    use std::sync::atomic::{AtomicBool, Ordering as StdOrdering};
    use std::sync::Arc as StdArc;
    use std::task::Wake;

    /// A waker that records whether it was woken (plain std types: not part of the model).
    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: StdArc<Self>) {
            self.0.store(true, StdOrdering::SeqCst);
        }
    }

    const READABLE: SourceEvent = SourceEvent {
        readable: true,
        writable: false,
        suspect: false,
    };

    /// A source whose read direction was confirmed empty, then reported by one edge (tick 1,
    /// `READY`, not suspect): what a reader finds before its read.
    fn ready_source() -> Source {
        let source = Source::new(1, crate::os::NO_SOURCE);
        let noop = Waker::from(StdArc::new(Flag::default()));
        assert!(source
            .register_poll_waker(Direction::Read, 0, &noop)
            .unwrap());
        source.on_event(READABLE, &mut Vec::new());
        source
    }

    /// A short read's lock-free clear against a new edge: whichever comes first in the word's
    /// order, the edge's `READY` survives (the clear fails once the tick moved).
    #[test]
    fn a_short_read_never_clears_a_later_edge() {
        loom::model(|| {
            let source = Arc::new(ready_source());
            let seen = source.tick(Direction::Read);
            let reactor = {
                let source = source.clone();
                thread::spawn(move || source.on_event(READABLE, &mut Vec::new()))
            };
            source.clear_after_short_read(Direction::Read, seen);
            reactor.join().unwrap();
            assert_eq!(source.tick(Direction::Read), seen + 1);
            assert!(
                source.is_ready(Direction::Read),
                "an edge after the read was cleared by it"
            );
        });
    }

    /// A reader that finds `READY` without the lock, attempts its read (which, say, returns
    /// `WouldBlock`) and registers from the tick it read, against an edge: an edge after that
    /// tick either makes the registration fail (the caller retries the read) or wakes the
    /// registered waiter — never neither.
    #[test]
    fn an_edge_wakes_or_is_seen_by_a_reader_that_skipped_the_lock() {
        loom::model(|| {
            let source = Arc::new(ready_source());
            let flag = StdArc::new(Flag::default());
            let waker = Waker::from(flag.clone());
            let reactor = {
                let source = source.clone();
                thread::spawn(move || {
                    let mut wake = Vec::new();
                    source.on_event(READABLE, &mut wake);
                    wake.into_iter().for_each(Waker::wake);
                })
            };
            let seen = source
                .tick_or_wait(Direction::Read, &waker)
                .unwrap()
                .expect("the direction was ready before and after the edge");
            let registered = source
                .register_poll_waker(Direction::Read, seen, &waker)
                .unwrap();
            reactor.join().unwrap();
            let edge_after_read = source.tick(Direction::Read) != seen;
            if edge_after_read {
                assert!(
                    !registered || flag.0.load(StdOrdering::SeqCst),
                    "registered on a stale tick and never woken: the edge was lost"
                );
            } else {
                // The edge came before the tick was read: the attempt would have seen its
                // data, and a registration at this tick waits for the next edge.
                assert!(registered);
            }
        });
    }
}
