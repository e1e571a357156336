//! Criterion groups for the scheduler workloads: `cargo bench -p magpie-benches --bench scheduler`.

mod support;

use criterion::{criterion_main, Criterion};
use magpie_benches::Family;

fn scheduler(c: &mut Criterion) {
    support::bench_family(c, Family::Scheduler);
}

// In a private module: the function the macro generates has no doc comment.
mod group {
    criterion::criterion_group!(benches, super::scheduler);
}

criterion_main!(group::benches);
