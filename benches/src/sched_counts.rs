//! What magpie's scheduler did during a run, from its metrics: polls, parks, steals and
//! injector takes per spawned task (`compare --single magpie --metrics`). Where a profiler
//! cannot go (a lent machine with no `perf`), these show parking churn — a park is a worker
//! going to sleep (on its condvar, or in the reactor's poller when it holds the driving turn),
//! and the wake that ends it usually a syscall on the waking thread — and steal storms.

use std::fmt::Write as _;

use magpie::RuntimeMetrics;

/// The scheduler's counts between two snapshots of one runtime's metrics, summed over its
/// workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedCounts {
    /// Tasks spawned.
    pub spawned: u64,
    /// Task polls.
    pub polls: u64,
    /// Times a worker went to sleep.
    pub parks: u64,
    /// Successful steals from another worker's queue.
    pub steal_operations: u64,
    /// Tasks those steals moved.
    pub tasks_stolen: u64,
    /// Batches taken from the global queue.
    pub injector_takes: u64,
    /// Tasks run from a LIFO slot.
    pub lifo_hits: u64,
    /// Local queues that overflowed into the global queue.
    pub local_overflows: u64,
}

impl SchedCounts {
    /// The counts from `before` to `after` (two snapshots of the same runtime, in that order).
    ///
    /// # Panics
    ///
    /// If the snapshots have different worker counts (they are not of one runtime).
    pub fn between(before: &RuntimeMetrics, after: &RuntimeMetrics) -> SchedCounts {
        assert_eq!(
            before.workers.len(),
            after.workers.len(),
            "SchedCounts::between: snapshots of different runtimes"
        );
        let sum = |metrics: &RuntimeMetrics, field: fn(&magpie::WorkerMetrics) -> u64| {
            metrics.workers.iter().map(field).sum::<u64>()
        };
        let delta = |field: fn(&magpie::WorkerMetrics) -> u64| {
            sum(after, field).saturating_sub(sum(before, field))
        };
        SchedCounts {
            spawned: after.tasks_spawned.saturating_sub(before.tasks_spawned),
            polls: delta(|w| w.polls),
            parks: delta(|w| w.parks),
            steal_operations: delta(|w| w.steal_operations),
            tasks_stolen: delta(|w| w.tasks_stolen),
            injector_takes: delta(|w| w.injector_takes),
            lifo_hits: delta(|w| w.lifo_hits),
            local_overflows: delta(|w| w.local_overflows),
        }
    }

    /// One line: each count per spawned task (per run when nothing was spawned).
    pub fn per_task_line(&self, runs: usize) -> String {
        let (per, divisor) = if self.spawned > 0 {
            ("spawned task", self.spawned as f64)
        } else {
            ("run", runs.max(1) as f64)
        };
        let figures = [
            ("polls", self.polls),
            ("parks", self.parks),
            ("steal operations", self.steal_operations),
            ("tasks stolen", self.tasks_stolen),
            ("injector takes", self.injector_takes),
            ("LIFO hits", self.lifo_hits),
            ("local overflows", self.local_overflows),
        ];
        let mut line = format!("{} tasks spawned; per {per}:", self.spawned);
        for (name, count) in figures {
            // Writing to a `String` cannot fail.
            let _ = write!(line, " {name} {:.4},", count as f64 / divisor);
        }
        line.pop();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::SchedCounts;

    /// Tasks spawned and run between the snapshots are counted, and only those.
    #[test]
    fn counts_what_ran_between_the_snapshots() {
        let rt = magpie::Runtime::builder()
            .worker_threads(2)
            .build()
            .unwrap();
        for i in 0..5 {
            rt.block_on(rt.spawn(async move { i })).unwrap();
        }
        let before = rt.handle().metrics();
        for i in 0..100 {
            rt.block_on(rt.spawn(async move { i })).unwrap();
        }
        let counts = SchedCounts::between(&before, &rt.handle().metrics());
        assert_eq!(counts.spawned, 100);
        assert!(counts.polls >= 100, "{counts:?}");
        let line = counts.per_task_line(1);
        assert!(
            line.starts_with("100 tasks spawned; per spawned task: polls "),
            "{line}"
        );
    }

    /// With nothing spawned, the figures are per run.
    #[test]
    fn without_spawns_the_line_is_per_run() {
        let counts = SchedCounts {
            parks: 6,
            ..SchedCounts::default()
        };
        assert_eq!(
            counts.per_task_line(3),
            "0 tasks spawned; per run: polls 0.0000, parks 2.0000, steal operations 0.0000, \
             tasks stolen 0.0000, injector takes 0.0000, LIFO hits 0.0000, local overflows 0.0000"
        );
    }
}
