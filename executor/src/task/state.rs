//! The task state: lifecycle flags and the reference count, packed into one atomic word.
//!
//! ```text
//!  bit:   63 ..................... 6   5           4             3          2          1          0
//!        [ reference count          | JOIN_WAKER | JOIN_INTEREST | CANCELLED | NOTIFIED | COMPLETE | RUNNING ]
//! ```
//!
//! * `RUNNING`: one thread owns the task's stage (its future or output) and is polling or
//!   cancelling it — or a *carried* queue entry owns it: a task that woke itself during its
//!   poll (`yield_now`) and went back into a worker's queue keeps the bit, so that the next
//!   worker to run it neither takes nor releases it (two read-modify-writes fewer per yield;
//!   the queue's own release-acquire hand-off orders the stage, `raw.rs`). Taking this bit
//!   (Acquire) and releasing it (Release) is what makes the `UnsafeCell` holding the stage
//!   safe to touch.
//! * `COMPLETE`: the future is gone and the stage holds the output (or the `JoinError`). Set
//!   exactly once, when `RUNNING` is released for the last time; from then on only the
//!   `JoinHandle` touches the stage.
//! * `NOTIFIED`: the task sits in (or is on its way into) a run queue, and that queue entry owns
//!   one reference. A wake while the bit is set does nothing: a task is queued at most once.
//!   With `RUNNING` set it means instead that a wake came while the task ran or while its
//!   carried entry waited: whoever holds `RUNNING` answers it (polls again).
//! * `CANCELLED`: `abort` was called; the next thread to take `RUNNING` (or to resume the
//!   task's carried entry) drops the future instead of polling it.
//! * `JOIN_INTEREST`: a `JoinHandle` exists and will read the output; without it the runtime
//!   drops the output itself. After `COMPLETE` only the `JoinHandle` clears it: when it is
//!   dropped unread, and when it reads the output of a listed task (for the task dump). A
//!   handle that read the output records that in itself (`join.rs`). So with `COMPLETE` set,
//!   the output is in the stage exactly while this bit is set and the handle has not read it
//!   (the stage has no tag of its own; see `cell.rs`).
//! * `JOIN_WAKER`: the join waker slot holds a waker and belongs to the runtime side; the
//!   `JoinHandle` may write the slot only while this bit is clear. The handle takes the slot
//!   back (clears the bit) to replace its waker, and when it is dropped before `COMPLETE`
//!   (`drop_join_interest`), then dropping its waker; after `COMPLETE` the slot stays the
//!   runtime's until the task is freed.

use crate::loom::atomic::{AtomicUsize, Ordering};

const RUNNING: usize = 1 << 0;
const COMPLETE: usize = 1 << 1;
const NOTIFIED: usize = 1 << 2;
const CANCELLED: usize = 1 << 3;
const JOIN_INTEREST: usize = 1 << 4;
const JOIN_WAKER: usize = 1 << 5;
const FLAG_BITS: u32 = 6;
const REF_ONE: usize = 1 << FLAG_BITS;

/// A task's state word.
pub(crate) struct State(AtomicUsize);

/// A copy of the state word at one instant.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(usize);

impl Snapshot {
    #[inline]
    pub(crate) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }
    #[inline]
    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }
    #[inline]
    pub(crate) fn is_notified(self) -> bool {
        self.0 & NOTIFIED != 0
    }
    #[inline]
    pub(crate) fn is_cancelled(self) -> bool {
        self.0 & CANCELLED != 0
    }
    #[inline]
    pub(crate) fn has_join_interest(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }
    #[inline]
    pub(crate) fn has_join_waker(self) -> bool {
        self.0 & JOIN_WAKER != 0
    }
    #[inline]
    pub(crate) fn ref_count(self) -> usize {
        self.0 >> FLAG_BITS
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("running", &self.is_running())
            .field("complete", &self.is_complete())
            .field("notified", &self.is_notified())
            .field("cancelled", &self.is_cancelled())
            .field("join_interest", &self.has_join_interest())
            .field("join_waker", &self.has_join_waker())
            .field("refs", &self.ref_count())
            .finish()
    }
}

/// What a worker holding a queue entry's reference may do with the task.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToRunning {
    /// `RUNNING` is ours: poll the future.
    Poll,
    /// `RUNNING` is ours and an abort is pending: drop the future instead of polling it.
    Cancel,
    /// The task is complete, or being cancelled by the shutdown path: drop the queue entry's
    /// reference.
    Complete,
}

/// The outcome of releasing `RUNNING` after a poll returned `Pending`.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToIdle {
    /// Nobody woke the task during the poll: drop the queue entry's reference.
    Idle,
    /// The task was woken during the poll: keep the reference and queue the task again.
    Notified,
    /// An abort arrived during the poll: `RUNNING` is still ours; cancel the task now.
    Cancel,
}

/// The outcome of a wake.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToNotified {
    /// The task was idle: a reference was added for the queue entry; submit it.
    Submit,
    /// Queued already, running (it is re-queued after its poll) or complete: nothing to do.
    Nothing,
}

/// The outcome of an abort request.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToCancelled {
    /// The task was idle: a reference was added; submit it so a worker drops the future.
    Submit,
    /// Queued, running or complete: whoever runs it next sees `CANCELLED`.
    Nothing,
}

/// What an unread `JoinHandle`'s drop found (`State::drop_join_interest`).
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DropJoin {
    /// The task is complete: the output is the handle's to drop.
    Complete,
    /// Not complete, and the join-waker slot, which held the handle's waker, is the handle's
    /// again: it drops the waker.
    WakerTaken,
    /// Not complete, no waker registered: nothing for the handle to do.
    Pending,
}

impl State {
    /// A new task: queued once, with a `JoinHandle`, and `refs` references.
    pub(crate) fn new(refs: usize) -> State {
        State(AtomicUsize::new(
            NOTIFIED | JOIN_INTEREST | (refs * REF_ONE),
        ))
    }

    /// Loads the state. Acquire: pairs with the Release of the transition that published it.
    #[inline]
    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::Acquire))
    }

    /// Applies `f` until the CAS succeeds; `f` returns `None` to leave the state unchanged.
    /// AcqRel: each transition hands over the stage (Release) and takes what the previous
    /// owner wrote (Acquire).
    fn update<R>(&self, mut f: impl FnMut(usize) -> (Option<usize>, R)) -> R {
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            let (next, result) = f(current);
            let Some(next) = next else {
                // Mutant: trust the plain load (the bug the no-op CAS below fixes).
                #[cfg(magpie_mutant = "stale_noop_transition")]
                return result;
                // "Nothing to do" must be decided on the latest state, not on a plain load,
                // which may return an older value of the word: a wake that saw a stale
                // NOTIFIED (set by an earlier wake, cleared since by the worker that took
                // RUNNING) would be lost. The no-op CAS reads the latest value in the
                // modification order; found by the loom model
                // `task_state::concurrent_wakes_schedule_once`.
                match self.0.compare_exchange_weak(
                    current,
                    current,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return result,
                    Err(actual) => {
                        current = actual;
                        continue;
                    }
                }
            };
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return result,
                Err(actual) => current = actual,
            }
        }
    }

    /// A worker popped the task from a queue (it holds the entry's reference).
    #[inline]
    pub(crate) fn transition_to_running(&self) -> ToRunning {
        self.update(|s| {
            // RUNNING here means the shutdown path is cancelling the task (the task of a plain
            // queue entry is otherwise never running; a carried entry resumes through
            // `resume_carried` instead): like COMPLETE, the entry's reference is all we have.
            if s & (COMPLETE | RUNNING) != 0 {
                return (None, ToRunning::Complete);
            }
            let next = (s | RUNNING) & !NOTIFIED;
            // Mutant: poll an aborted task instead of cancelling it.
            let cancelled =
                s & CANCELLED != 0 && !cfg!(magpie_mutant = "running_ignores_cancelled");
            if cancelled {
                (Some(next), ToRunning::Cancel)
            } else {
                (Some(next), ToRunning::Poll)
            }
        })
    }

    /// A worker resumes a carried entry (`RUNNING` is the entry's, so now the worker's): a
    /// plain load when nobody woke or aborted the task while it waited, which is the point of
    /// carrying. Otherwise one read-modify-write clears `NOTIFIED` (the wake is answered by the
    /// poll about to start) and reports an abort.
    ///
    /// Acquire: pairs with the Release of the wake or abort whose bit it sees. A wake it does
    /// not see yet (a stale load) is not lost: its `NOTIFIED` stays set, and the read-modify-
    /// write that ends this poll (idle or complete) finds it; a task that only ever yields
    /// keeps being polled anyway.
    #[inline]
    pub(crate) fn resume_carried(&self) -> ToRunning {
        let seen = self.0.load(Ordering::Acquire);
        debug_assert!(seen & RUNNING != 0 && seen & COMPLETE == 0);
        if seen & (NOTIFIED | CANCELLED) == 0 {
            return ToRunning::Poll;
        }
        // AcqRel: as `update`'s transitions.
        let prev = self.0.fetch_and(!NOTIFIED, Ordering::AcqRel);
        // Mutant: poll a yielded task that was aborted while it waited in the queue.
        if prev & CANCELLED != 0 && !cfg!(magpie_mutant = "resume_ignores_cancelled") {
            ToRunning::Cancel
        } else {
            ToRunning::Poll
        }
    }

    /// A carried entry is dropped, or handed to code that knows only plain entries: `RUNNING`
    /// goes and `NOTIFIED` takes its place, so the entry becomes a plain one (the task sits in
    /// no other queue: nobody could queue it while `RUNNING` was set). From then on the
    /// shutdown path can take `RUNNING` to cancel the task.
    ///
    /// AcqRel (`update`): hands the stage over, as `transition_to_idle` does.
    pub(crate) fn release_carried(&self) {
        // Mutant: a carried entry dropped at shutdown keeps `RUNNING`, so the shutdown takes
        // the task for a running one and never cancels it.
        if cfg!(magpie_mutant = "carried_drop_keeps_running") {
            return;
        }
        // Both bits in one step: with `RUNNING` cleared first, a wake in between would find
        // neither bit and queue a second entry.
        self.update(|s| {
            debug_assert!(s & RUNNING != 0 && s & COMPLETE == 0);
            (Some((s & !RUNNING) | NOTIFIED), ())
        });
    }

    /// The shutdown path takes `RUNNING` on a task no worker runs any more. Fails when the task
    /// is complete or (after a worker failed to stop in time) still running.
    pub(crate) fn transition_to_running_for_shutdown(&self) -> bool {
        self.update(|s| {
            if s & (RUNNING | COMPLETE) != 0 {
                (None, false)
            } else {
                (Some(s | RUNNING | CANCELLED), true)
            }
        })
    }

    /// The poll returned `Pending`, and did not wake its own task by reference (that one is
    /// carried back into the queue instead: `resume_carried`).
    #[inline]
    pub(crate) fn transition_to_idle(&self) -> ToIdle {
        self.update(|s| {
            debug_assert!(s & RUNNING != 0);
            if s & CANCELLED != 0 {
                (None, ToIdle::Cancel)
            } else if s & NOTIFIED != 0 && !cfg!(magpie_mutant = "idle_ignores_notified") {
                // (Mutant `idle_ignores_notified`: drop the wake that arrived during the poll.)
                // The wake during the poll left NOTIFIED set without adding a reference: the
                // reference this worker holds becomes the new queue entry's.
                (Some((s & !RUNNING) | NOTIFIED), ToIdle::Notified)
            } else {
                (Some(s & !RUNNING), ToIdle::Idle)
            }
        })
    }

    /// The output is stored: release `RUNNING`, set `COMPLETE`. Returns the state before, so
    /// the caller knows whether a `JoinHandle` reads the output and whether to wake it.
    #[inline]
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        // AcqRel: Release publishes the output to the JoinHandle (which loads with Acquire).
        let prev = Snapshot(self.0.fetch_xor(RUNNING | COMPLETE, Ordering::AcqRel));
        debug_assert!(prev.is_running() && !prev.is_complete());
        prev
    }

    /// A waker fired.
    #[inline]
    pub(crate) fn transition_to_notified(&self) -> ToNotified {
        self.update(|s| {
            if s & (COMPLETE | NOTIFIED) != 0 {
                (None, ToNotified::Nothing)
            } else if s & RUNNING != 0 {
                // The worker re-queues the task when its poll ends (ToIdle::Notified), or the
                // run of its carried entry answers the wake (`resume_carried`).
                (Some(s | NOTIFIED), ToNotified::Nothing)
            } else {
                (Some((s | NOTIFIED) + REF_ONE), ToNotified::Submit)
            }
        })
    }

    /// A waker fired *by value*: on `Submit` the waker's own reference becomes the queue
    /// entry's (no increment, and no decrement by the caller); on `Nothing` the caller still
    /// owns the waker's reference and must drop it.
    #[inline]
    pub(crate) fn transition_to_notified_by_val(&self) -> ToNotified {
        self.update(|s| {
            if s & (COMPLETE | NOTIFIED) != 0 {
                (None, ToNotified::Nothing)
            } else if s & RUNNING != 0 {
                (Some(s | NOTIFIED), ToNotified::Nothing)
            } else {
                (Some(s | NOTIFIED), ToNotified::Submit)
            }
        })
    }

    /// `abort()`.
    pub(crate) fn transition_to_cancelled(&self) -> ToCancelled {
        self.update(|s| {
            if s & (COMPLETE | CANCELLED) != 0 {
                (None, ToCancelled::Nothing)
            } else if s & (RUNNING | NOTIFIED) != 0 {
                (Some(s | CANCELLED), ToCancelled::Nothing)
            } else {
                (
                    Some((s | CANCELLED | NOTIFIED) + REF_ONE),
                    ToCancelled::Submit,
                )
            }
        })
    }

    /// The `JoinHandle` is dropped unread. Returns [`DropJoin::Complete`] when the task is
    /// complete already, in which case the handle owns the output and must drop it; otherwise
    /// the runtime drops it, and with [`DropJoin::WakerTaken`] the join-waker slot, which held
    /// the handle's waker, is the handle's again: it must drop the waker.
    #[inline]
    pub(crate) fn drop_join_interest(&self) -> DropJoin {
        self.update(|s| {
            // JOIN_INTEREST is cleared in every case, so that a completion after this finds no
            // interest and drops the output itself (and the task dump no longer shows a
            // finished task).
            if s & COMPLETE != 0 {
                // The completion may be reading the slot still: it stays the runtime's, until
                // the task is freed.
                (Some(s & !JOIN_INTEREST), DropJoin::Complete)
            } else if s & JOIN_WAKER != 0 {
                // Taken back with the interest, so that the completion, which then sees
                // neither, does not read it: the waker goes with the handle, not with the
                // task (a waker left there kept its task — maybe the one that awaits this
                // one — alive until this task was freed, and two tasks that polled each
                // other's handles kept each other, and the runtime, for good).
                (
                    Some(s & !(JOIN_INTEREST | JOIN_WAKER)),
                    DropJoin::WakerTaken,
                )
            } else {
                (Some(s & !JOIN_INTEREST), DropJoin::Pending)
            }
        })
    }

    /// The `JoinHandle` of a task that is not complete goes: gives up `JOIN_INTEREST` and the
    /// handle's reference in one read-modify-write, where [`drop_join_interest`] and
    /// [`ref_dec`] take two (most handles are dropped unread, at once: a detached spawn).
    /// Returns `false`, changing nothing, unless the word still is `seen`, not complete, with
    /// another reference than the handle's (so this one is never the last, and the task is
    /// freed by whoever holds it): the caller then goes the slow way.
    ///
    /// [`drop_join_interest`]: State::drop_join_interest
    /// [`ref_dec`]: State::ref_dec
    #[inline]
    #[must_use]
    pub(crate) fn drop_join_handle_fast(&self, seen: Snapshot) -> bool {
        let s = seen.0;
        // Mutant: the fast way taken for a complete task too, whose output then stays in the
        // stage, dropped by nobody.
        if !cfg!(magpie_mutant = "join_drop_fast_ignores_complete") && s & COMPLETE != 0 {
            return false;
        }
        // With JOIN_WAKER set the slot holds the handle's waker, which the slow way takes back.
        if s & (JOIN_INTEREST | JOIN_WAKER) != JOIN_INTEREST || Snapshot(s).ref_count() < 2 {
            return false;
        }
        // Mutant: the interest and the reference given up by two plain read-modify-writes,
        // with no look at whether the task completed in between.
        if cfg!(magpie_mutant = "join_drop_fast_not_atomic") {
            self.0.fetch_and(!JOIN_INTEREST, Ordering::AcqRel);
            self.0.fetch_sub(REF_ONE, Ordering::AcqRel);
            return true;
        }
        // AcqRel, as `ref_dec`: the handle's uses of the task happen before the free, whoever
        // frees it. With COMPLETE clear, the completion that comes later finds no
        // `JOIN_INTEREST` and drops the output itself, as after `drop_join_interest`.
        self.0
            .compare_exchange(
                s,
                (s & !JOIN_INTEREST) - REF_ONE,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// The `JoinHandle` took the output of the complete task, which is on the live-task list:
    /// clears `JOIN_INTEREST`, so that the task dump, which shows a complete task only while
    /// its output waits to be read, no longer shows it while its release from the list is
    /// deferred. (The handle records the read in itself; nothing else reads the bit now.)
    #[inline]
    pub(crate) fn output_taken(&self) {
        // AcqRel like every transition.
        let prev = Snapshot(self.0.fetch_and(!JOIN_INTEREST, Ordering::AcqRel));
        debug_assert!(prev.is_complete() && prev.has_join_interest());
    }

    /// The `JoinHandle` stored a waker in the slot and hands the slot to the runtime.
    /// Fails (returns the snapshot) when the task completed meanwhile.
    #[inline]
    pub(crate) fn set_join_waker(&self) -> Result<(), Snapshot> {
        // Mutant: hand the slot over without checking COMPLETE. A completion that ran between
        // the handle's last look and this point saw no JOIN_WAKER and woke nobody; the handle
        // then waits for a wake that never comes.
        if cfg!(magpie_mutant = "join_waker_ignores_complete") {
            self.0.fetch_or(JOIN_WAKER, Ordering::AcqRel);
            return Ok(());
        }
        // Setting JOIN_WAKER and checking COMPLETE in one read-modify-write is the handshake:
        // either the completion sees JOIN_WAKER (and wakes the handle), or this sees COMPLETE
        // (and the handle reads the output now).
        self.update(|s| {
            debug_assert!(s & JOIN_WAKER == 0);
            if s & COMPLETE != 0 {
                (None, Err(Snapshot(s)))
            } else {
                (Some(s | JOIN_WAKER), Ok(()))
            }
        })
    }

    /// The `JoinHandle` takes the slot back to replace its waker. Fails when the task
    /// completed meanwhile (then the slot stays the runtime's until the task is freed).
    #[inline]
    pub(crate) fn unset_join_waker(&self) -> Result<(), Snapshot> {
        self.update(|s| {
            debug_assert!(s & JOIN_WAKER != 0);
            if s & COMPLETE != 0 {
                (None, Err(Snapshot(s)))
            } else {
                (Some(s & !JOIN_WAKER), Ok(()))
            }
        })
    }

    /// Adds a reference (a waker clone). Relaxed: a new reference is made from an existing
    /// one, which already keeps the task alive; no data is published.
    #[inline]
    pub(crate) fn ref_inc(&self) {
        let prev = self.0.fetch_add(REF_ONE, Ordering::Relaxed);
        // Like `Arc`: a count this large means references are leaked in a loop; abort rather
        // than wrap around into a use-after-free.
        if prev > isize::MAX as usize {
            std::process::abort();
        }
    }

    /// Drops a reference; returns `true` when it was the last, and the task must be freed.
    /// AcqRel: every earlier use of the task happens before the free (the Release of each
    /// decrement, the Acquire of the last).
    #[inline]
    #[must_use]
    pub(crate) fn ref_dec(&self) -> bool {
        let prev = Snapshot(self.0.fetch_sub(REF_ONE, Ordering::AcqRel));
        debug_assert!(prev.ref_count() >= 1);
        prev.ref_count() == 1
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_handle_dropped_before_completion_gives_up_interest_and_its_reference_at_once() {
        let s = State::new(3);
        assert!(s.drop_join_handle_fast(s.load()));
        let now = s.load();
        assert!(!now.has_join_interest());
        assert_eq!(now.ref_count(), 2);
    }

    #[test]
    fn a_handle_takes_the_slow_way_when_complete_stale_or_the_last_reference() {
        // Complete: the handle must drop the output first.
        let s = State::new(3);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        let _ = s.transition_to_complete();
        assert!(!s.drop_join_handle_fast(s.load()));
        assert!(s.load().has_join_interest());
        // A stale snapshot: nothing changes.
        let s = State::new(3);
        let seen = s.load();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert!(!s.drop_join_handle_fast(seen));
        assert_eq!(s.load().ref_count(), 3);
        // The handle's reference is the last one: the slow way frees the task.
        let s = State::new(1);
        assert!(!s.drop_join_handle_fast(s.load()));
        assert_eq!(s.load().ref_count(), 1);
    }

    #[test]
    fn wake_while_running_requeues_once() {
        let s = State::new(3);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_notified(), ToNotified::Nothing);
        assert_eq!(s.transition_to_notified(), ToNotified::Nothing);
        assert_eq!(s.transition_to_idle(), ToIdle::Notified);
        assert_eq!(s.load().ref_count(), 3);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
    }

    /// A self-wake recorded during the poll (`context::note_self_wake`) carries the task back
    /// into the queue; made plain (off the workers, or dropped), it is queued like after a wake
    /// during the poll: `NOTIFIED` set for the entry, no reference added, and a later wake finds
    /// it queued. An abort then still wins at its run.
    #[test]
    fn a_yield_made_plain_is_queued_like_a_wake() {
        let s = State::new(3);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        s.release_carried();
        let after = s.load();
        assert!(after.is_notified() && !after.is_running());
        assert_eq!(after.ref_count(), 3);
        assert_eq!(
            s.transition_to_notified(),
            ToNotified::Nothing,
            "queued already"
        );
        assert_eq!(s.transition_to_cancelled(), ToCancelled::Nothing);
        assert_eq!(s.transition_to_running(), ToRunning::Cancel);
    }

    #[test]
    fn wake_when_idle_adds_a_reference_once() {
        let s = State::new(2);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.transition_to_notified(), ToNotified::Submit);
        assert_eq!(s.transition_to_notified(), ToNotified::Nothing);
        assert_eq!(s.load().ref_count(), 3);
    }

    #[test]
    fn wake_by_value_hands_its_reference_to_the_queue() {
        let s = State::new(2);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        s.ref_inc(); // a waker
        let refs = s.load().ref_count();
        assert_eq!(s.transition_to_notified_by_val(), ToNotified::Submit);
        assert_eq!(
            s.load().ref_count(),
            refs,
            "the waker's reference moved to the entry"
        );
        assert_eq!(s.transition_to_notified_by_val(), ToNotified::Nothing);
    }

    #[test]
    fn wake_after_complete_does_nothing() {
        let s = State::new(2);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        let prev = s.transition_to_complete();
        assert!(prev.has_join_interest());
        assert_eq!(s.transition_to_notified(), ToNotified::Nothing);
        assert_eq!(s.transition_to_cancelled(), ToCancelled::Nothing);
        assert_eq!(s.drop_join_interest(), DropJoin::Complete);
    }

    #[test]
    fn abort_during_poll_cancels_after_it() {
        let s = State::new(2);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_cancelled(), ToCancelled::Nothing);
        assert_eq!(s.transition_to_idle(), ToIdle::Cancel);
        assert!(s.load().is_running());
    }

    #[test]
    fn abort_of_idle_task_submits_it() {
        let s = State::new(2);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.transition_to_cancelled(), ToCancelled::Submit);
        assert_eq!(s.transition_to_running(), ToRunning::Cancel);
    }

    /// A yield on a worker leaves the word alone (the carried entry keeps `RUNNING`), and the
    /// entry's next run takes it back with a plain load.
    #[test]
    fn a_carried_yield_resumes_without_a_transition() {
        let s = State::new(2);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        let carried = s.load();
        assert_eq!(s.resume_carried(), ToRunning::Poll);
        assert_eq!(s.load(), carried, "the word is untouched");
        assert!(carried.is_running() && !carried.is_notified());
    }

    /// A wake while the carried entry waits finds `RUNNING` and only sets `NOTIFIED` (no
    /// second entry); the resume clears it, since the poll it starts answers the wake, so the
    /// poll after it ends idle.
    #[test]
    fn a_wake_while_carried_is_answered_by_the_next_poll() {
        let s = State::new(2);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_notified(), ToNotified::Nothing);
        assert_eq!(s.load().ref_count(), 2, "no reference for a second entry");
        assert_eq!(s.resume_carried(), ToRunning::Poll);
        assert!(!s.load().is_notified());
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
    }

    /// An abort while the carried entry waits cancels the task when the entry runs.
    #[test]
    fn an_abort_while_carried_cancels_at_resume() {
        let s = State::new(2);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_cancelled(), ToCancelled::Nothing);
        assert_eq!(s.resume_carried(), ToRunning::Cancel);
        assert!(s.load().is_running(), "RUNNING stays with the canceller");
    }

    /// A carried entry dropped (shutdown) becomes a plain one: `RUNNING` gone, `NOTIFIED` set,
    /// so a wake still queues nothing and the shutdown path can take the task to cancel it.
    #[test]
    fn a_dropped_carried_entry_becomes_a_plain_one() {
        let s = State::new(2);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        s.release_carried();
        let plain = s.load();
        assert!(!plain.is_running() && plain.is_notified());
        assert_eq!(plain.ref_count(), 2);
        assert_eq!(s.transition_to_notified(), ToNotified::Nothing);
        assert!(s.transition_to_running_for_shutdown());
    }

    #[test]
    fn join_waker_cannot_be_set_after_complete() {
        let s = State::new(2);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        let _ = s.transition_to_complete();
        assert!(s.set_join_waker().is_err());
    }

    #[test]
    fn last_reference_reports_free() {
        let s = State::new(2);
        assert!(!s.ref_dec());
        assert!(s.ref_dec());
    }
}
