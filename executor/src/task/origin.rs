//! Where a task comes from and what is known about it: its spawn location, its name, and in
//! debug mode its statistics — in one word of the task header.
//!
//! Every task records the `&'static Location` of its `spawn` call (no allocation: the
//! location is a static the compiler emits). A task that also has a name, or that was spawned
//! in debug mode (which keeps per-task statistics for the task dump), gets a boxed [`Detail`]
//! instead, which holds the location too. The header has room for one pointer only (it fits a
//! cache line, see `cell.rs`), so the two cases share it: bit 0 of the pointer tells which
//! one it is. Both pointees are aligned to at least 2 bytes (checked at compile time), so bit
//! 0 of either address is free.

use std::panic::Location;
use std::ptr::NonNull;
// Statistics for the task dump, no part of any protocol: std's atomics even under loom (like
// the task id counter), so they add no interleavings to the models.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A task's spawn location, and its name and statistics when it has them.
pub(crate) struct Origin(NonNull<u8>);

/// The boxed case.
pub(crate) struct Detail {
    location: &'static Location<'static>,
    name: Option<String>,
    stats: Option<TaskStats>,
}

/// What debug mode counts per task, for the task dump.
pub(crate) struct TaskStats {
    spawned_at: Instant,
    /// Polls started.
    polls: AtomicU64,
    /// When the last poll ended, as nanoseconds after `spawned_at`; 0 before the first.
    last_poll_end_ns: AtomicU64,
}

/// Bit 0 set: the pointer is a `Box<Detail>`; clear: a `&'static Location`.
const DETAIL: usize = 1;

// Bit 0 is free in both pointers (checked at compile time).
const _: () = assert!(std::mem::align_of::<Location<'static>>() >= 2);
const _: () = assert!(std::mem::align_of::<Detail>() >= 2);

impl Origin {
    /// Whether dropping it frees nothing: a plain location, no boxed detail.
    #[inline]
    pub(crate) fn owns_nothing(&self) -> bool {
        self.0.as_ptr() as usize & DETAIL == 0
    }

    /// The origin of a task spawned at `location`, named `name`; `stats` keeps per-task
    /// statistics (debug mode).
    #[inline]
    pub(crate) fn new(
        location: &'static Location<'static>,
        name: Option<String>,
        stats: bool,
    ) -> Origin {
        if name.is_none() && !stats {
            // Every unnamed spawn outside debug mode: inlined into the spawn, no call.
            return Origin(NonNull::from(location).cast());
        }
        Origin::with_detail(location, name, stats)
    }

    /// A task with a name or statistics: its detail boxed.
    #[cold]
    fn with_detail(
        location: &'static Location<'static>,
        name: Option<String>,
        stats: bool,
    ) -> Origin {
        let detail = Box::new(Detail {
            location,
            name,
            stats: stats.then(|| TaskStats {
                spawned_at: Instant::now(),
                polls: AtomicU64::new(0),
                last_poll_end_ns: AtomicU64::new(0),
            }),
        });
        let ptr = NonNull::from(Box::leak(detail)).cast::<u8>();
        // `wrapping_add` keeps the allocation's provenance (`from_detail` undoes it).
        Origin(
            NonNull::new(ptr.as_ptr().wrapping_add(DETAIL))
                .expect("an aligned address plus one is not null"),
        )
    }

    fn detail(&self) -> Option<&Detail> {
        let addr = self.0.as_ptr() as usize;
        if addr & DETAIL == 0 {
            return None;
        }
        let ptr = self.0.as_ptr().wrapping_sub(DETAIL).cast::<Detail>();
        // SAFETY: the tag says `ptr` came from `Box::leak` in `new` (tag removed, provenance
        // kept); the box lives until `drop`, and `&self` outlives the returned reference.
        Some(unsafe { &*ptr })
    }

    /// Where the task was spawned.
    pub(crate) fn location(&self) -> &'static Location<'static> {
        match self.detail() {
            Some(detail) => detail.location,
            // SAFETY: untagged, the pointer is the `&'static Location` given to `new`.
            None => unsafe { self.0.cast::<Location<'static>>().as_ref() },
        }
    }

    /// The task's name, if it was given one.
    pub(crate) fn name(&self) -> Option<&str> {
        self.detail()?.name.as_deref()
    }

    /// Debug mode's statistics, if the task keeps them.
    pub(crate) fn stats(&self) -> Option<&TaskStats> {
        self.detail()?.stats.as_ref()
    }
}

impl Drop for Origin {
    #[inline]
    fn drop(&mut self) {
        if !self.owns_nothing() {
            let ptr = self.0.as_ptr().wrapping_sub(DETAIL).cast::<Detail>();
            // SAFETY: tagged, so `ptr` is the box leaked in `new`; it is freed once, here.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}

impl TaskStats {
    /// A poll starts (or a run that finds the task cancelled, which counts too). Called by the
    /// worker about to run the task, outside its `RUNNING`
    /// section, so two workers may overlap here (the task rescheduled by the end of one poll
    /// and taken by another worker before the first one's `poll_ended`): hence `fetch_add`.
    /// Debug mode only, so the cost stays off the ordinary poll path.
    pub(crate) fn poll_started(&self) {
        self.polls.fetch_add(1, Ordering::Relaxed);
    }

    /// A poll ended.
    pub(crate) fn poll_ended(&self) {
        // At least 1 so that "0" keeps meaning "never polled".
        let ns = nanos(self.spawned_at.elapsed()).max(1);
        self.last_poll_end_ns.store(ns, Ordering::Relaxed);
    }

    /// How long ago the task was spawned.
    pub(crate) fn age(&self) -> Duration {
        self.spawned_at.elapsed()
    }

    /// Polls started so far.
    pub(crate) fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// How long ago its last poll ended (`None` before the first one).
    pub(crate) fn since_last_poll(&self) -> Option<Duration> {
        match self.last_poll_end_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(
                self.spawned_at
                    .elapsed()
                    .saturating_sub(Duration::from_nanos(ns)),
            ),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn plain_origin_keeps_the_location_without_a_name() {
        let here = Location::caller();
        let origin = Origin::new(here, None, false);
        assert!(std::ptr::eq(origin.location(), here));
        assert_eq!(origin.name(), None);
        assert!(origin.stats().is_none());
    }

    #[test]
    fn detailed_origin_keeps_location_name_and_stats() {
        let here = Location::caller();
        let origin = Origin::new(here, Some("fetch".into()), true);
        assert!(std::ptr::eq(origin.location(), here));
        assert_eq!(origin.name(), Some("fetch"));
        let stats = origin.stats().expect("stats were asked for");
        assert_eq!(stats.polls(), 0);
        assert_eq!(stats.since_last_poll(), None);
        stats.poll_started();
        stats.poll_ended();
        assert_eq!(stats.polls(), 1);
        assert!(stats.since_last_poll().is_some());
    }

    #[test]
    fn named_origin_without_stats() {
        let origin = Origin::new(Location::caller(), Some("n".into()), false);
        assert_eq!(origin.name(), Some("n"));
        assert!(origin.stats().is_none());
    }
}
