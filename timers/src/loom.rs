//! The concurrency primitives the timer store uses: std's normally, loom's under `cfg(loom)`.
//!
//! Every lock and atomic of the store is taken from here so that a loom model can swap them for
//! loom's checked versions.

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex, MutexGuard,
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex, MutexGuard,
};

/// Locks `mutex`, ignoring poisoning: the store's critical sections only relink indices inside a
/// wheel and never run user code (wakers are cloned before and dropped or woken after the lock),
/// so a panic cannot leave a half-updated wheel behind.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
