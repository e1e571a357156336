//! Task identifiers.

use std::num::NonZeroU64;
// A plain counter, not part of any protocol: std's atomic is fine even under loom.
use std::sync::atomic::{AtomicU64, Ordering};

/// A task's identifier, unique among all tasks of the process for its lifetime.
///
/// Shown in `JoinError` messages and in the `Debug` output of `JoinHandle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(NonZeroU64);

impl Id {
    pub(crate) fn next() -> Id {
        #[cfg(not(loom))]
        static NEXT: AtomicU64 = AtomicU64::new(1);
        // Under loom the counter restarts with every explored execution: the id picks the
        // shard of the live-task list (and so which lock a spawn takes), and a loom model must
        // do the same thing in every execution. `loom::lazy_static` is per execution; the
        // counter inside stays a plain std atomic, so it adds no interleavings.
        #[cfg(loom)]
        loom::lazy_static! {
            static ref NEXT: AtomicU64 = AtomicU64::new(1);
        }
        // Relaxed: uniqueness needs only the atomicity of the increment.
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        Id(NonZeroU64::new(id).expect("task id counter wrapped around"))
    }

    /// The identifier as a number.
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
