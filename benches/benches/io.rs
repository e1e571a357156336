//! Criterion groups for the io workloads: `cargo bench -p magpie-benches --bench io`.

mod support;

use criterion::{criterion_main, Criterion};
use magpie_benches::Family;

fn io(c: &mut Criterion) {
    support::bench_family(c, Family::Io);
}

// In a private module: the function the macro generates has no doc comment.
mod group {
    criterion::criterion_group!(benches, super::io);
}

criterion_main!(group::benches);
