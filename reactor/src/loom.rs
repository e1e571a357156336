//! The concurrency primitives the reactor uses: std's normally, loom's under `cfg(loom)`.
//!
//! Every lock, condvar, atomic and `Arc` that the source table, the per-source waiter lists and
//! the driving turn (`turn.rs`) use is taken from here, so that a loom model can swap them for
//! loom's checked versions.

#[cfg(not(loom))]
pub(crate) use std::sync::{atomic, Arc, Condvar, Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::{atomic, Arc, Condvar, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning: every critical section in this crate leaves the protected
/// data consistent before it can panic (they only push/pop vectors and bump counters), so a
/// panic elsewhere while holding the lock cannot leave a half-updated state behind.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
