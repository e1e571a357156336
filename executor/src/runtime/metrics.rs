//! Always-on runtime metrics: per-worker counters that only their own worker writes, read
//! (without stopping anyone) by [`Handle::metrics`](super::Handle::metrics).
//!
//! A counter is bumped with a relaxed load and a relaxed store — a plain `mov` pair on x86,
//! no locked instruction — which is exact because each counter has one writer. Each worker's
//! counters sit on their own cache lines, so a worker never writes a line another worker
//! writes: nothing here is shared on the hot path.

// Statistics, no part of any protocol: std's atomics even under loom (like the task id
// counter), so they add no interleavings to the models.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

/// A counter with one writer.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the counter's one writer calls this.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        // Relaxed load + store, not `fetch_add`: there is one writer, so no update is lost,
        // and readers only need some recent value.
        let value = self.0.load(Ordering::Relaxed);
        self.0.store(value.wrapping_add(n), Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn incr(&self) {
        self.add(1);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What one worker counts, and which task it is polling now.
#[derive(Default)]
pub(crate) struct WorkerStats {
    pub(crate) polls: Counter,
    pub(crate) steal_operations: Counter,
    pub(crate) tasks_stolen: Counter,
    pub(crate) parks: Counter,
    pub(crate) lifo_hits: Counter,
    pub(crate) injector_takes: Counter,
    pub(crate) local_overflows: Counter,
    /// Tasks this worker spawned unlisted (`owned.rs`), and unlisted tasks whose first poll
    /// (or cancellation) it ended: summed over the workers, with the entries shutdown took
    /// ([`Stats::spawned_unlisted`], [`Stats::unlisted_ends`]), how many tasks are alive and
    /// not listed yet (`Shared::alive_tasks`).
    pub(crate) spawned_unlisted: Counter,
    pub(crate) unlisted_polled: Counter,
    /// Busy time of the finished busy periods.
    pub(crate) busy_ns: Counter,
    /// When the current busy period began (nanoseconds after the runtime's start, at least
    /// 1); 0 while the worker is parked.
    pub(crate) busy_since_ns: AtomicU64,
    /// The largest busy time a metrics read reported: later reads report no less (see
    /// `WorkerMetrics::read`). Written by readers only.
    pub(crate) busy_reported_ns: AtomicU64,
    /// The id of the task being polled, 0 between polls (for the task dump and the watchdog).
    pub(crate) current_task: AtomicU64,
    /// When the current poll started, in nanoseconds after the runtime's start; written only
    /// in debug mode (reading the clock costs on every poll).
    pub(crate) poll_started_ns: AtomicU64,
    /// The bytes of freed task cells the worker's cache held at its last park (`worker.rs`:
    /// written there and when the worker stops, not on every cell).
    pub(crate) task_cache_bytes: AtomicU64,
}

impl WorkerStats {
    /// Marks the start of a poll of task `id` (`started_ns` in debug mode).
    #[inline]
    pub(crate) fn poll_begins(&self, id: u64, started_ns: Option<u64>) {
        self.polls.incr();
        if let Some(ns) = started_ns {
            self.poll_started_ns.store(ns, Ordering::Relaxed);
        }
        // Release: a reader that sees the id sees the start time written before it.
        self.current_task.store(id, Ordering::Release);
    }

    /// The worker leaves its park (or starts): a busy period begins.
    pub(crate) fn busy_begins(&self, now_ns: u64) {
        // A period already open (the park returned before sleeping) goes on.
        if self.busy_since_ns.load(Ordering::Relaxed) == 0 {
            self.busy_since_ns.store(now_ns.max(1), Ordering::Relaxed);
        }
    }

    /// The worker parks: the busy period ends.
    pub(crate) fn busy_ends(&self, now_ns: u64) {
        let since = self.busy_since_ns.load(Ordering::Relaxed);
        if since != 0 {
            self.busy_ns.add(now_ns.saturating_sub(since));
        }
        // Release: a reader that sees the period closed sees `busy_ns` with it added.
        self.busy_since_ns.store(0, Ordering::Release);
    }

    #[inline]
    pub(crate) fn poll_ends(&self) {
        self.current_task.store(0, Ordering::Release);
    }

    /// The task being polled and, in debug mode, when its poll started. A best-effort
    /// reading for diagnostics: the loads are not ordered against a poll that ends meanwhile,
    /// so on rare occasions the start time may belong to the next poll (the watchdog then
    /// reports that one a tick later).
    // The watchdog's, which loom builds leave out.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn current_poll(&self) -> Option<(u64, u64, u64)> {
        let polls = self.polls.get();
        let id = self.current_task.load(Ordering::Acquire);
        let started = self.poll_started_ns.load(Ordering::Relaxed);
        if id == 0 || self.polls.get() != polls {
            return None;
        }
        Some((id, polls, started))
    }
}

/// Per-worker statistics of one runtime, each on its own cache lines.
pub(crate) struct Stats {
    pub(crate) workers: Box<[CachePadded<WorkerStats>]>,
    /// The runtime's start: the origin of the nanosecond timestamps above.
    pub(crate) epoch: Instant,
    /// Tasks spawned unlisted that left that state off the workers — their queue entry taken
    /// by shutdown before their first poll (`Shared::drop_entry_at_shutdown`) — counted with
    /// the workers' `unlisted_polled`.
    unlisted_ended_elsewhere: AtomicU64,
}

impl Stats {
    pub(crate) fn new(workers: usize) -> Stats {
        Stats {
            workers: (0..workers).map(|_| CachePadded::default()).collect(),
            epoch: Instant::now(),
            unlisted_ended_elsewhere: AtomicU64::new(0),
        }
    }

    /// Nanoseconds since the runtime started.
    pub(crate) fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Tasks the workers spawned unlisted.
    pub(crate) fn spawned_unlisted(&self) -> u64 {
        self.workers.iter().map(|w| w.spawned_unlisted.get()).sum()
    }

    /// Counts a task spawned unlisted whose queue entry shutdown took, off the workers (the
    /// workers count the first polls they end in their own `unlisted_polled`). Shutdown only,
    /// where a shared counter costs nothing.
    pub(crate) fn unlisted_ended_at_shutdown(&self) {
        self.unlisted_ended_elsewhere
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Tasks spawned unlisted that have left that state.
    pub(crate) fn unlisted_ends(&self) -> u64 {
        let polled: u64 = self.workers.iter().map(|w| w.unlisted_polled.get()).sum();
        polled.wrapping_add(self.unlisted_ended_elsewhere.load(Ordering::Relaxed))
    }
}

/// A snapshot of a runtime's metrics: [`Handle::metrics`](super::Handle::metrics).
///
/// Counters count from the runtime's start and only grow; depths and thread counts are the
/// value at the moment the snapshot was taken. The per-worker counters cost the workers nothing
/// to read; `live_tasks` is counted by visiting the task list (one shard lock at a time), plus
/// the per-worker counts of the tasks spawned inside tasks that are not on it yet, so a
/// snapshot of a runtime with 500 000 tasks took about 4 ms (release build): scrape it every few
/// seconds, not in a hot loop. Taking one does not stop the runtime: each
/// figure is read on its own, so the figures of one snapshot may be microseconds apart.
///
/// # Examples
///
/// ```
/// let rt = magpie_executor::Runtime::builder().worker_threads(2).build().unwrap();
/// for i in 0..10 {
///     rt.block_on(rt.spawn(async move { i })).unwrap();
/// }
/// let metrics = rt.handle().metrics();
/// assert_eq!(metrics.workers.len(), 2);
/// assert!(metrics.tasks_spawned >= 10);
/// let polls: u64 = metrics.workers.iter().map(|w| w.polls).sum();
/// assert!(polls >= 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeMetrics {
    /// One entry per worker thread, by index.
    pub workers: Vec<WorkerMetrics>,
    /// Tasks spawned and not yet finished (blocking tasks excluded).
    pub live_tasks: usize,
    /// Tasks spawned since the runtime started (blocking tasks excluded).
    pub tasks_spawned: u64,
    /// Tasks waiting in the global queue: spawned or woken from outside the workers, or moved
    /// out of a worker's full local queue (in batches that another worker takes whole).
    pub injector_depth: usize,
    /// Threads of the blocking pool running a blocking task.
    pub blocking_threads_busy: usize,
    /// Threads of the blocking pool waiting for one.
    pub blocking_threads_idle: usize,
    /// Blocking tasks waiting for a thread.
    pub blocking_queue_depth: usize,
    /// I/O readiness events the shared reactor dispatched (process-wide: every runtime shares
    /// the one reactor).
    pub reactor_events: u64,
    /// Timers pending in the shared timer store (process-wide).
    pub pending_timers: usize,
    /// Bytes of memory of finished tasks held in the runtime's depot, for workers that run out
    /// ([`Builder::task_cache_bytes`](crate::Builder::task_cache_bytes); the workers' own
    /// caches are in [`WorkerMetrics::task_cache_bytes`]). The thread that runs `block_on`
    /// caches too, and is not counted.
    pub task_depot_bytes: usize,
}

/// One worker's metrics, in a [`RuntimeMetrics`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// Task polls run.
    pub polls: u64,
    /// Successful steals from another worker's queue (each moves a batch).
    pub steal_operations: u64,
    /// Tasks moved by those steals.
    pub tasks_stolen: u64,
    /// Times the worker went to sleep for lack of work.
    pub parks: u64,
    /// Tasks run from the LIFO slot (a task woken or spawned on this worker, run next).
    pub lifo_hits: u64,
    /// Times the worker took a batch from the global queue.
    pub injector_takes: u64,
    /// Times the local queue was full and half of it moved to the global queue (never on a
    /// runtime with one worker, whose queue grows instead: no other worker would take them).
    pub local_overflows: u64,
    /// Tasks in the local queue now (the LIFO slot not counted).
    pub local_queue_depth: usize,
    /// Time spent outside of parking: running tasks and looking for them.
    pub busy_time: Duration,
    /// Bytes of memory of finished tasks the worker keeps for its next spawns
    /// ([`Builder::task_cache_bytes`](crate::Builder::task_cache_bytes)), as of the last time
    /// it went to sleep (0 once it stopped).
    pub task_cache_bytes: u64,
}

impl WorkerMetrics {
    pub(crate) fn read(
        stats: &WorkerStats,
        local_queue_depth: usize,
        now_ns: u64,
    ) -> WorkerMetrics {
        // `busy_ns` then the open period: if the period closed in between, `busy_ns` has moved
        // and the pair is read again, so the total never counts a period twice (nor goes back).
        let (busy, since) = loop {
            let busy = stats.busy_ns.get();
            let since = stats.busy_since_ns.load(Ordering::Acquire);
            if stats.busy_ns.get() == busy {
                break (busy, since);
            }
        };
        let current = if since == 0 {
            0
        } else {
            now_ns.saturating_sub(since)
        };
        // A reader whose clock read came after the worker's closing one, while the period
        // still looked open, counted it up to its own time; once the worker closes it at its
        // earlier time, a later read would report less. A counter must not go back (a
        // Prometheus counter that does reads as a reset): no read reports less than the
        // largest reported before. The difference is the time the worker took between its
        // clock read and the store that closes the period.
        let busy = stats
            .busy_reported_ns
            .fetch_max(busy + current, Ordering::Relaxed)
            .max(busy + current);
        WorkerMetrics {
            polls: stats.polls.get(),
            steal_operations: stats.steal_operations.get(),
            tasks_stolen: stats.tasks_stolen.get(),
            parks: stats.parks.get(),
            lifo_hits: stats.lifo_hits.get(),
            injector_takes: stats.injector_takes.get(),
            local_overflows: stats.local_overflows.get(),
            local_queue_depth,
            busy_time: Duration::from_nanos(busy),
            task_cache_bytes: stats.task_cache_bytes.load(Ordering::Relaxed),
        }
    }
}
