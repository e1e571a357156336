//! Criterion groups for the timers workloads: `cargo bench -p magpie-benches --bench timers`.

mod support;

use criterion::{criterion_main, Criterion};
use magpie_benches::Family;

fn timers(c: &mut Criterion) {
    support::bench_family(c, Family::Timers);
}

// In a private module: the function the macro generates has no doc comment.
mod group {
    criterion::criterion_group!(benches, super::timers);
}

criterion_main!(group::benches);
