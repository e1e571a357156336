//! The concurrency shim: `std` normally, `loom` under `cfg(loom)`.
//!
//! Every lock and cell that the primitives share between threads comes from here, so that
//! building with `RUSTFLAGS="--cfg loom"` lets loom explore their interleavings (including the
//! interleavings of a user's own model that uses these primitives).

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

#[cfg(loom)]
pub(crate) use loom::sync::Arc;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::AtomicUsize;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicUsize;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::fence;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::fence;

/// Loom uses std's `Ordering`, so there is a single one for both builds.
pub(crate) use std::sync::atomic::Ordering;

#[cfg(not(loom))]
use std::sync::{Mutex as RawMutex, MutexGuard as RawMutexGuard};

#[cfg(loom)]
use loom::sync::{Mutex as RawMutex, MutexGuard as RawMutexGuard};

/// A short-critical-section mutex that never reports poisoning.
///
/// The critical sections in this crate only move plain data and call no user code — except a
/// `PriorityQueue`'s comparisons (`T: Ord`), whose panics leave its items in an unspecified
/// order, none duplicated and none lost but the one a pop was taking out (see `store.rs`, and `Channel::settle`, which catches the
/// one that could otherwise escape into someone else's operation) — so a panic inside one
/// cannot leave the protected state half-updated in a way later users could observe; ignoring
/// poisoning is therefore sound and keeps every call site simple.
/// (loom's `Mutex` has no `const` constructor, which is why nothing here is `const`.)
#[derive(Debug)]
pub(crate) struct Mutex<T>(RawMutex<T>);

/// The guard of [`Mutex`].
pub(crate) type MutexGuard<'a, T> = RawMutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(RawMutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An `UnsafeCell` with loom's closure-based access API, so that loom can check every access
/// of the data a [`Lock`](crate::Lock) or [`RwLock`](crate::RwLock) protects.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }

    /// Runs `f` with a shared pointer to the contents.
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with an exclusive pointer to the contents.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
