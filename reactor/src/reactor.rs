//! The process-wide reactor: one poller, one source table, one timer store, and the thread
//! `magpie-reactor` that drives them whenever no idle worker does.
//!
//! The thread is started by the first registration or notification. Whoever holds the driving
//! turn (`turn.rs`) — the thread, or an idle executor worker through [`crate::driver`] — runs
//! rounds of [`Reactor::drive_round`]: fire expired timers, wait for I/O no longer than the
//! next deadline, wake the tasks waiting on the reported sources (outside every lock).

#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::epoll;
use crate::loom::{lock, Arc, Mutex};
use crate::os::{self, BorrowedSource, RawSource};
use crate::report::{caught, report};
use crate::source::{Source, SourceEvent};
use crate::source_table::SourceTable;
use crate::timer_hook;
use crate::turn::Turn;
use polling::Poller;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use polling::{Event, Events, PollMode};
use std::io;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::task::Waker;
use std::time::{Duration, Instant};

/// Events collected per wait.
const EVENTS_PER_TURN: usize = 1024;

/// How long the loop waits when the timer driver keeps reporting a deadline it has already
/// been asked to fire (a misbehaving driver): long enough not to spin, short enough to retry.
const OVERDUE_BACKOFF: Duration = Duration::from_millis(1);

/// How often the reactor thread looks at the turn while it stands by (`turn.rs`, step 6): a
/// turn left vacant this long (twice, at worst) by busy workers is taken over, which bounds how
/// late I/O and timers are delivered while every worker is busy. Short enough to be far below
/// any network timeout; long enough that the look — one atomic load and a sleep — is rare next
/// to a busy service's own work (not measured on its own). It costs nothing while the process
/// is idle: then the thread sleeps until a worker leaves the poller.
const WATCH_INTERVAL: Duration = Duration::from_millis(1);

/// The environment variable that keeps the reactor thread in the default scheduling policy
/// (`MAGPIE_REACTOR_SCHED_BATCH=0`); see `batch_scheduling`.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SCHED_BATCH_VAR: &str = "MAGPIE_REACTOR_SCHED_BATCH";

/// The reactor shared by the whole process.
pub(crate) struct Reactor {
    poller: Poller,
    sources: Mutex<SourceTable>,
    /// Who drives now.
    pub(crate) turn: Turn,
    /// What a driver needs between waits. Locked only by the turn's holder, so never contended.
    drive: Mutex<DriveState>,
    /// Interrupts the current wait (Linux; elsewhere `Poller::notify`).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    notifier: epoll::Notifier,
    /// Readiness events dispatched to live sources since the reactor started (`stats()`).
    ///
    /// A std atomic, not the `loom` shim's: a pure statistics counter that is no part of any
    /// protocol the loom models check. Only [`Reactor::dispatch`] writes it, and only the
    /// turn's holder dispatches, under the `drive` mutex: it has a single writer at a time,
    /// and the mutex orders successive writers, so a relaxed load and store suffice (no
    /// read-modify-write). Readers load it relaxed: a statistic, ordered with nothing else.
    events: AtomicU64,
}

/// What one round of driving does after firing the timers that are due.
#[derive(Clone, Copy)]
pub(crate) enum Round<'a> {
    /// Wait for I/O until an event, a notification or the next deadline — unless the check
    /// returns `true` (the caller has tasks to run).
    Wait(&'a dyn Fn() -> bool),
    /// Collect the events that are ready now, without waiting.
    Poll,
}

/// The buffers and the timer bookkeeping of whoever holds the turn.
struct DriveState {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    raw: epoll::RawEvents,
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    events: Events,
    ready: Vec<(Arc<Source>, SourceEvent)>,
    wake: Vec<Waker>,
    timers: TimerTurn,
}

static REACTOR: OnceLock<Reactor> = OnceLock::new();

/// The reactor, started on first use.
///
/// # Panics
/// If the OS refuses to create the poller or to spawn the reactor thread: without either no
/// I/O can ever complete, so this is treated like an allocation failure.
pub(crate) fn get() -> &'static Reactor {
    REACTOR.get_or_init(|| {
        let poller = Poller::new()
            .unwrap_or_else(|e| panic!("magpie-reactor: cannot create the OS poller: {e}"));
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let notifier = {
            use std::os::fd::AsFd;
            epoll::Notifier::new(poller.as_fd())
                .unwrap_or_else(|e| panic!("magpie-reactor: cannot create the notifier: {e}"))
        };
        std::thread::Builder::new()
            .name("magpie-reactor".into())
            // The thread looks the reactor up through `get()`, which blocks until this
            // initialiser has returned, so it never observes a half-built reactor.
            .spawn(|| {
                batch_scheduling();
                get().run()
            })
            .unwrap_or_else(|e| panic!("magpie-reactor: cannot spawn the reactor thread: {e}"));
        Reactor {
            poller,
            sources: Mutex::new(SourceTable::default()),
            turn: Turn::new(),
            drive: Mutex::new(DriveState::new()),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            notifier,
            events: AtomicU64::new(0),
        }
    })
}

/// The reactor, if something has started it.
pub(crate) fn started() -> Option<&'static Reactor> {
    REACTOR.get()
}

impl DriveState {
    fn new() -> DriveState {
        DriveState {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            raw: epoll::RawEvents::with_capacity(EVENTS_PER_TURN),
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            events: Events::with_capacity(NonZeroUsize::new(EVENTS_PER_TURN).expect("non-zero")),
            ready: Vec::new(),
            wake: Vec::new(),
            timers: TimerTurn::default(),
        }
    }
}

impl Reactor {
    /// Interrupts the current driver's wait (a notification sent while nobody waits makes the
    /// next wait return at once).
    pub(crate) fn notify(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        self.notifier.notify();
        // `notify` only fails if the eventfd write fails, which cannot happen for a counter
        // far from overflow; there is nothing a caller could do about it anyway.
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = self.poller.notify();
    }

    /// Registers `fd` for both directions in edge-triggered mode (Windows: in oneshot mode
    /// with no interest yet, armed by the source as tasks wait); returns its source.
    ///
    /// # Safety
    /// `fd` must stay open until [`Reactor::deregister`] has been called for the returned
    /// source.
    pub(crate) unsafe fn register(&self, fd: BorrowedSource<'_>) -> io::Result<Arc<Source>> {
        let raw = os::raw(fd);
        let mut source = None;
        let key = lock(&self.sources).insert(|key| {
            let s = Arc::new(Source::new(key, raw));
            source = Some(s.clone());
            s
        })?;
        let source = source.expect("insert calls its constructor");
        // Once, for good: edge-triggered interest in both directions is never re-armed (see
        // `source.rs` for how an edge with no waiter yet is kept).
        // SAFETY: the caller keeps `fd` open until `deregister`, which deletes it from the
        // poller first — exactly `Poller::add_with_mode`'s (and `epoll::add_edge`'s) contract.
        if let Err(e) = unsafe { self.add(raw, key) } {
            lock(&self.sources).remove(key);
            return Err(e);
        }
        Ok(source)
    }

    /// Adds `raw` to the poller under `key`: edge-triggered, both directions (Windows: oneshot,
    /// no interest until a task waits, see `Source::arm`).
    ///
    /// # Safety
    /// `raw` must stay open until it is deleted from the poller.
    unsafe fn add(&self, raw: RawSource, key: usize) -> io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::fd::AsFd;
            // SAFETY: forwarded from the caller.
            unsafe { epoll::add_edge(self.poller.as_fd(), raw, key) }
        }
        #[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
        {
            // SAFETY: forwarded from the caller.
            unsafe {
                self.poller
                    .add_with_mode(raw, Event::all(key), PollMode::Edge)
            }
        }
        #[cfg(windows)]
        {
            // SAFETY: forwarded from the caller.
            unsafe {
                self.poller
                    .add_with_mode(raw, Event::none(key), PollMode::Oneshot)
            }
        }
    }

    /// Arms `raw` (registered under `key`) to report the given directions once (Windows).
    ///
    /// # Safety
    /// `raw` must be registered and open for the duration of the call.
    #[cfg(windows)]
    pub(crate) unsafe fn arm(
        &self,
        raw: RawSource,
        key: usize,
        readable: bool,
        writable: bool,
    ) -> io::Result<()> {
        let mut interest = Event::none(key);
        interest.readable = readable;
        interest.writable = writable;
        // SAFETY: the caller keeps `raw` open for this borrow.
        let socket = unsafe { os::borrow_raw(raw) };
        self.poller
            .modify_with_mode(socket, interest, PollMode::Oneshot)
    }

    /// Deletes `source` from the poller and the table. Call while its fd is still open.
    pub(crate) fn deregister(&self, source: &Source) -> io::Result<()> {
        let result = source.deregister(&self.poller);
        // An event already collected for this key either finds no entry (ignored) or finds the
        // source before removal and only bumps its ticks: the reactor never touches its fd.
        let removed = lock(&self.sources).remove(source.key());
        drop(removed);
        result
    }

    /// Number of registered sources.
    pub(crate) fn source_count(&self) -> usize {
        lock(&self.sources).len()
    }

    /// Readiness events dispatched to live sources so far (see the `events` field).
    pub(crate) fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// The reactor thread's loop (`turn.rs`, steps 4 to 6). Never returns.
    fn run(&self) -> ! {
        // Whether the thread stands by (step 6) rather than holds the turn (steps 4, 5).
        let mut standing_by = false;
        loop {
            // The process's only fallback driver must not die: a panic here (a bug) is
            // reported and the loop goes on where it was — holding the turn, or standing by —
            // after a pause.
            let round = caught(|| {
                if !standing_by {
                    self.drive_round(Round::Wait(&|| false));
                    if !self.turn.hand_over_if_wanted() {
                        return;
                    }
                    // Read by the next round when `stand_by` below unwinds (the lint sees no
                    // unwinding).
                    #[allow(unused_assignments)]
                    {
                        standing_by = true;
                    }
                }
                let _ = self.turn.stand_by(|| {
                    std::thread::sleep(WATCH_INTERVAL);
                    true
                });
                standing_by = false;
            });
            if round.is_none() {
                report(format_args!(
                    "magpie-reactor: the reactor thread's round panicked (a bug); continuing"
                ));
                std::thread::sleep(OVERDUE_BACKOFF);
            }
        }
    }

    /// One round of driving, by the holder of the turn: fires expired timers; then, for
    /// [`Round::Wait`] unless its check says the caller has tasks to run (a timer woke one of
    /// its own), waits for I/O no longer than the next deadline (or until notified), and for
    /// [`Round::Poll`] collects what is ready without waiting; wakes the tasks of the reported
    /// sources on this thread.
    pub(crate) fn drive_round(&self, round: Round<'_>) {
        let mut guard = lock(&self.drive);
        let st = &mut *guard;
        let next = st.timers.fire(Instant::now());
        let timeout = match round {
            Round::Poll => Some(Duration::ZERO),
            Round::Wait(has_work) if has_work() => return,
            Round::Wait(_) => next,
        };
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::fd::AsFd;
            if let Err(e) = st.raw.wait(self.poller.as_fd(), timeout) {
                wait_failed(&e);
            }
            if st.raw.iter().any(|(key, _)| key == epoll::NOTIFY_KEY) {
                // Before dispatching: a notification sent after the consume interrupts the
                // next wait; what the ones before (or during) it announced is re-read by our
                // caller after this round (a parker's token, a turn request) or by the next
                // round (deadlines). See `notify_flag.rs`.
                self.notifier.consume();
            }
            self.dispatch(st.raw.iter(), &mut st.ready, &mut st.wake);
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            st.events.clear();
            if let Err(e) = self.poller.wait(&mut st.events, timeout) {
                wait_failed(&e);
                // polling may have spent a oneshot arming on an event it then failed to hand
                // over: re-arm every source that has waiters, so none waits for nothing.
                #[cfg(windows)]
                {
                    let sources: Vec<Arc<Source>> = lock(&self.sources).iter().cloned().collect();
                    for source in sources {
                        source.rearm_after_failed_wait(&mut st.wake);
                    }
                }
            }
            let reported = st.events.iter().map(|ev| {
                let source_event = SourceEvent {
                    readable: ev.readable,
                    writable: ev.writable,
                    // polling's events do not say whether a read edge came with an
                    // end-of-stream: assume it may have.
                    suspect: ev.readable,
                };
                (ev.key, source_event)
            });
            self.dispatch(reported, &mut st.ready, &mut st.wake);
        }
    }

    /// Wakes the waiters of every reported source. Called only by [`Reactor::drive_round`],
    /// with the `drive` mutex held (which makes it the sole writer of `events`).
    fn dispatch(
        &self,
        reported: impl Iterator<Item = (usize, SourceEvent)>,
        ready: &mut Vec<(Arc<Source>, SourceEvent)>,
        wake: &mut Vec<Waker>,
    ) {
        let already = ready.len();
        {
            let table = lock(&self.sources);
            // A key that is no longer in the table (source dropped after the kernel queued the
            // event) or was reused (different generation) is skipped here, as are the
            // notifier's and the poller's own keys.
            ready.extend(reported.filter_map(|(key, ev)| table.get(key).map(|s| (s.clone(), ev))));
        }
        let matched = (ready.len() - already) as u64;
        if matched != 0 {
            // Single writer: we run under the `drive` mutex (see the `events` field), so a
            // relaxed load and store cannot lose a count. Only live sources' events matched.
            let events = self.events.load(Ordering::Relaxed);
            self.events
                .store(events.wrapping_add(matched), Ordering::Relaxed);
        }
        for (source, ev) in ready.iter() {
            source.on_event(*ev, wake);
        }
        ready.clear();
        // Every lock is released but the drive state's, which only the turn's holder takes:
        // wake. A panicking waker (an executor bug) must not take the driver down with it —
        // the reactor thread is the process's only fallback driver.
        for waker in wake.drain(..) {
            if caught(|| waker.wake()).is_none() {
                report(format_args!(
                    "magpie-reactor: a Waker panicked in wake(); continuing"
                ));
            }
        }
    }
}

/// Puts the calling (reactor) thread in the `SCHED_BATCH` policy, where the OS supports it.
///
/// Under the default policy a thread woken from `epoll_wait` preempts the thread running on
/// its CPU. Every send on a busy socket wakes the reactor, so when the CPUs are saturated (the
/// executor's workers busy) each readiness event cost two context switches — 1.2 to 1.5 per
/// loopback round trip in `tcp_echo` — and the reactor dispatched one event per wait. A
/// `SCHED_BATCH` thread gets the same share of CPU time but does not preempt on wake-up: it
/// runs on an idle CPU at once, and on a busy one when the running thread blocks (a worker
/// parking for lack of tasks) or its time slice ends, then dispatches every event that came in
/// meanwhile in one turn. The cost is that, while every CPU is busy, readiness and timer
/// expiries may be handled up to a scheduler slice (a few milliseconds) late — the same order
/// as the OS's own scheduling granularity. Failing to change the policy is harmless: the
/// reactor then runs under the default one. `MAGPIE_REACTOR_SCHED_BATCH=0` in the environment
/// keeps the default policy.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn batch_scheduling() {
    if std::env::var_os(SCHED_BATCH_VAR).is_some_and(|v| v == "0") {
        return;
    }
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid `sched_param` for the call's duration; pid 0 is the calling
    // thread, and `SCHED_BATCH` with priority 0 needs no privilege.
    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
}

/// Elsewhere there is no `SCHED_BATCH`: the reactor thread keeps the default policy.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn batch_scheduling() {}

/// Reports a failed wait. The waits already retry `EINTR`; any other error is unexpected. Do
/// not spin on it: report and back off.
fn wait_failed(e: &io::Error) {
    report(format_args!(
        "magpie-reactor: waiting for events failed: {e}"
    ));
    std::thread::sleep(OVERDUE_BACKOFF);
}

/// The timer half of the loop: fires expired timers and turns the next deadline into a wait
/// timeout that always makes progress.
#[derive(Default)]
struct TimerTurn {
    /// Consecutive turns on which the driver returned a deadline it had just been asked to fire.
    overdue_turns: u32,
}

impl TimerTurn {
    /// Fires expired timers and returns the timeout for the next `Poller::wait`.
    fn fire(&mut self, now: Instant) -> Option<Duration> {
        let driver = timer_hook::timer_driver()?;
        match caught(|| driver.fire_expired(now)) {
            Some(next) => self.timeout(next, now, Instant::now()),
            None => {
                // Keep serving I/O; retry the driver soon rather than spinning on it.
                report(format_args!(
                    "magpie-reactor: the timer driver panicked; retrying"
                ));
                Some(OVERDUE_BACKOFF)
            }
        }
    }

    /// The wait timeout for `next` (returned by `fire_expired(fired_at)`), computed at `now`.
    ///
    /// - `None` blocks until I/O or a notification.
    /// - A deadline still ahead waits for exactly the remaining time; `polling` rounds a
    ///   non-zero remainder *up* (to the timerfd's nanoseconds or epoll's milliseconds), so the
    ///   wait never returns early with nothing to fire, and a remainder that is already zero
    ///   means the next turn's `fire_expired` sees the deadline passed and fires it.
    /// - A deadline at or before `fired_at` was not fired although it was due (a timer added
    ///   concurrently, just after the driver looked): poll once without waiting so the next
    ///   turn fires it; if the driver keeps reporting such a deadline, back off instead of
    ///   spinning.
    fn timeout(
        &mut self,
        next: Option<Instant>,
        fired_at: Instant,
        now: Instant,
    ) -> Option<Duration> {
        let next = next?;
        if next <= fired_at {
            self.overdue_turns = self.overdue_turns.saturating_add(1);
            return Some(if self.overdue_turns == 1 {
                Duration::ZERO
            } else {
                OVERDUE_BACKOFF
            });
        }
        self.overdue_turns = 0;
        Some(next.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_deadline_blocks() {
        let now = Instant::now();
        assert_eq!(TimerTurn::default().timeout(None, now, now), None);
    }

    #[test]
    fn future_deadline_waits_the_remaining_time() {
        let now = Instant::now();
        let mut t = TimerTurn::default();
        let d = now + Duration::from_millis(30);
        assert_eq!(
            t.timeout(Some(d), now, now),
            Some(Duration::from_millis(30))
        );
        // Time passed between firing and computing: only the remainder is waited.
        let later = now + Duration::from_millis(10);
        assert_eq!(
            t.timeout(Some(d), now, later),
            Some(Duration::from_millis(20))
        );
        // Already reached by the time the timeout is computed: zero wait, fired next turn.
        assert_eq!(
            t.timeout(Some(d), now, d + Duration::from_millis(1)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn overdue_deadline_polls_once_then_backs_off() {
        let now = Instant::now();
        let mut t = TimerTurn::default();
        let past = now - Duration::from_millis(5);
        assert_eq!(t.timeout(Some(past), now, now), Some(Duration::ZERO));
        assert_eq!(t.timeout(Some(past), now, now), Some(OVERDUE_BACKOFF));
        assert_eq!(t.timeout(Some(past), now, now), Some(OVERDUE_BACKOFF));
        // A healthy deadline resets the back-off.
        let ahead = now + Duration::from_millis(3);
        assert_eq!(
            t.timeout(Some(ahead), now, now),
            Some(Duration::from_millis(3))
        );
        assert_eq!(t.timeout(Some(past), now, now), Some(Duration::ZERO));
    }
}
