//! What every criterion bench file shares: one group per workload and worker count, with
//! `magpie`, `tokio` and `async-executor` as its members.

use std::time::Duration;

use criterion::Criterion;
use magpie_benches::{workloads, Family, RuntimeKind, Runtimes, Size};

/// The worker counts benched: 1, 2 and every core (deduplicated).
fn worker_counts() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts = vec![1, 2, cores];
    counts.sort_unstable();
    counts.dedup();
    counts
}

/// Benches every workload of `family`: for each worker count the three runtimes are built
/// once, outside the measurement, and each workload is a group `NAME/workers=N`.
pub fn bench_family(c: &mut Criterion, family: Family) {
    for workers in worker_counts() {
        let runtimes = Runtimes::new(workers);
        for workload in workloads().into_iter().filter(|w| w.family == family) {
            let mut group = c.benchmark_group(format!("{}/workers={workers}", workload.name));
            // The workloads are whole programs (milliseconds to seconds each), not
            // nanosecond operations: fewer, longer samples.
            group
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
            for kind in RuntimeKind::ALL {
                group.bench_function(kind.name(), |b| {
                    b.iter(|| workload.run(&runtimes, kind, Size::Full))
                });
            }
            group.finish();
        }
    }
}
