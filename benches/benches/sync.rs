//! Criterion groups for the sync workloads: `cargo bench -p magpie-benches --bench sync`.

mod support;

use criterion::{criterion_main, Criterion};
use magpie_benches::Family;

fn sync(c: &mut Criterion) {
    support::bench_family(c, Family::Sync);
}

// In a private module: the function the macro generates has no doc comment.
mod group {
    criterion::criterion_group!(benches, super::sync);
}

criterion_main!(group::benches);
