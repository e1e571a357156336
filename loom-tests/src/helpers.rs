//! Helpers shared by the models (only built under `--cfg loom`).

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;

/// The preemption bound used when `LOOM_MAX_PREEMPTIONS` is not set: the models are sized so
/// that every one of them is explored exhaustively within this bound.
pub const DEFAULT_PREEMPTIONS: usize = 2;

/// Explores every interleaving of `f` (up to the preemption bound), like [`loom::model`], but
/// with the project's defaults: `LOOM_MAX_PREEMPTIONS` (or [`DEFAULT_PREEMPTIONS`]) preemptions,
/// and loom's other settings from its environment variables.
pub fn model<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(DEFAULT_PREEMPTIONS);
    }
    builder.check(f);
}

/// Counts how many of its guards were dropped, on loom's atomics (so loom sees the count).
#[derive(Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    /// A new counter at zero.
    pub fn new() -> DropCounter {
        DropCounter::default()
    }

    /// A guard that adds one to the count when it is dropped.
    pub fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }

    /// How many guards were dropped so far.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Adds one to its [`DropCounter`] when dropped.
pub struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A plain shared counter on loom's atomics (e.g. how many times a future was polled).
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    /// A new counter at zero.
    pub fn new() -> Counter {
        Counter::default()
    }

    /// Adds one; returns the value before.
    pub fn incr(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst)
    }

    /// The current value.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}
