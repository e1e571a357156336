//! The flag in front of the reactor's notifier: only the first notification of a burst writes
//! the eventfd, and the driver that sees the eventfd's event re-arms the flag.
//!
//! The order inside [`NotifyFlag::consume`] matters. Draining the eventfd *then* clearing the
//! flag: a notification that lands in between finds the flag still set and writes nothing —
//! it is not lost, because the driver re-reads what every notification announces (a parker's
//! token, a turn request, the next deadline) after the round that consumed it — and every
//! notification after the clear writes again. The other order (clear, then drain) could drain
//! the write of a notification that landed in between, leaving the flag set with nothing to
//! report it: no notification would ever write again (found by a stress test; the loom model
//! below and the mutant `consume_clears_before_draining` keep it found).

use crate::loom::atomic::{AtomicBool, Ordering};

/// Whether a notification is written and not yet consumed.
pub(crate) struct NotifyFlag {
    pending: AtomicBool,
}

impl NotifyFlag {
    pub(crate) fn new() -> NotifyFlag {
        NotifyFlag {
            pending: AtomicBool::new(false),
        }
    }

    /// Calls `write` (write the eventfd) unless a notification is already pending.
    pub(crate) fn notify(&self, write: impl FnOnce()) {
        // SeqCst: whatever the notifier published before (a parker's token, a turn request, a
        // timer's deadline) is visible to the driver that re-reads it after consuming.
        if !self.pending.swap(true, Ordering::SeqCst) {
            write();
        }
    }

    /// Called by the driver whose wait reported the eventfd: `drain` (read the eventfd to
    /// zero), then clear the flag, so the next notification writes again.
    pub(crate) fn consume(&self, drain: impl FnOnce()) {
        if cfg!(magpie_mutant = "consume_clears_before_draining") {
            self.pending.swap(false, Ordering::SeqCst);
            drain();
            return;
        }
        drain();
        // A swap, not a store: a notifier whose own swap found the flag still set wrote its
        // announcement before that swap, and our swap reads from it (the later of the two
        // read-modify-writes of one location reads the earlier's value), so our re-read after
        // this round sees the announcement — by acquire/release alone, without leaning on the
        // single total order of `SeqCst` (which loom does not model).
        self.pending.swap(false, Ordering::SeqCst);
    }
}

/// Loom model with a stand-in eventfd: a counter whose writes raise an edge that one wait
/// reports and clears, as an edge-triggered eventfd in epoll does.
#[cfg(all(test, loom))]
mod models {
    use super::*;
    use crate::loom::atomic::AtomicUsize;
    use crate::loom::{lock, Arc, Condvar, Mutex};
    use loom::thread;

    #[derive(Default)]
    struct Fd {
        count: u64,
        edge: bool,
    }

    struct Model {
        flag: NotifyFlag,
        fd: Mutex<Fd>,
        ready: Condvar,
        /// What the notifications announce.
        announced: AtomicUsize,
    }

    impl Model {
        fn notify(&self) {
            self.flag.notify(|| {
                let mut fd = lock(&self.fd);
                fd.count += 1;
                fd.edge = true;
                self.ready.notify_all();
            });
        }

        /// The driver's wait: until an edge is reported, then the consume. As epoll does, an
        /// edge is taken off the ready list when the wait looks at it, and reported only if
        /// the eventfd is still readable (its counter non-zero) at that moment.
        fn wait_and_consume(&self) {
            {
                let mut fd = lock(&self.fd);
                loop {
                    if fd.edge {
                        fd.edge = false;
                        if fd.count > 0 {
                            break;
                        }
                    }
                    fd = self.ready.wait(fd).unwrap();
                }
            }
            self.flag.consume(|| lock(&self.fd).count = 0);
        }
    }

    /// Three announcements in a row, each followed by a notification, while the driver waits,
    /// consumes and re-reads: the driver sees all three and never waits forever. (Three: with
    /// the consume's steps the other way round, a second notification racing the consume is
    /// seen by the re-read but leaves the flag stuck, and only a third one is then lost.)
    #[test]
    fn a_notification_racing_the_consume_is_never_lost() {
        // Three preemptions, whatever `LOOM_MAX_PREEMPTIONS` says: the losing interleaving
        // needs them (the driver preempted inside its consume, the notifier preempted between
        // its write and the next announcement), and this model is small enough to afford it.
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let model = Arc::new(Model {
                flag: NotifyFlag::new(),
                fd: Mutex::new(Fd::default()),
                ready: Condvar::new(),
                announced: AtomicUsize::new(0),
            });
            let notifier = {
                let model = model.clone();
                thread::spawn(move || {
                    for _ in 0..3 {
                        model.announced.fetch_add(1, Ordering::SeqCst);
                        model.notify();
                    }
                })
            };
            let mut seen = 0;
            while seen < 3 {
                model.wait_and_consume();
                seen = model.announced.load(Ordering::SeqCst);
            }
            notifier.join().unwrap();
        });
    }
}
