//! Your own async code benched on magpie with criterion: copy this file into your crate's
//! `benches/`, add `[[bench]] name = "…" harness = false`, and depend on
//! `magpie = { version = "0.1", features = ["criterion"] }` and `criterion` (with its `async`
//! feature, which magpie's `criterion` feature turns on).
//!
//! `cargo bench -p magpie-benches --bench on_magpie` runs it here. docs/profiling.md says how to
//! read the results and how to profile the same code.

use std::time::Duration;

use criterion::{criterion_main, BenchmarkId, Criterion};
use magpie::sync::{Lock, Queue};
use magpie::Runtime;

/// Stands in for the code you want to measure: a fan-out of `n` requests, each taking a shared
/// lock to record its result, gathered at the end (asyncio's `gather`).
async fn fan_out(n: u64) -> u64 {
    let total = std::sync::Arc::new(Lock::new(0u64));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let total = total.clone();
            magpie::spawn(async move {
                magpie::task::yield_now().await; // stands in for I/O
                *total.lock().await += i;
            })
        })
        .collect();
    for result in magpie::join_all(handles).await {
        result.expect("a request task panicked");
    }
    let sum = *total.lock().await;
    sum
}

/// A producer and a consumer on a bounded `Queue`: `items` handed over, `capacity` at a time.
async fn pipeline(items: u64, capacity: usize) -> u64 {
    let queue = Queue::bounded(capacity); // a handle: clones share the queue
    let producer = {
        let queue = queue.clone();
        magpie::spawn(async move {
            for i in 0..items {
                queue.put(i).await.expect("the queue is never closed");
            }
        })
    };
    let mut sum = 0;
    for _ in 0..items {
        sum += queue.get().await.expect("the queue is never closed");
    }
    producer.await.expect("the producer panicked");
    sum
}

fn on_magpie(c: &mut Criterion) {
    // One runtime for the whole bench, built outside the measurement: building one per
    // iteration would measure thread start-up instead of your code.
    let rt = Runtime::builder()
        .worker_threads(2)
        .build()
        .expect("could not start the runtime");

    let mut group = c.benchmark_group("fan_out");
    group.measurement_time(Duration::from_secs(3));
    for n in [10u64, 100, 1_000] {
        // The routine runs on this (the bench) thread inside `Runtime::block_on`; the tasks
        // it spawns run on the workers.
        group.bench_with_input(BenchmarkId::new("block_on", n), &n, |b, &n| {
            b.to_async(&rt).iter(|| fan_out(n))
        });
        // The same code measured as it runs on a worker: spawned, and its handle awaited.
        group.bench_with_input(BenchmarkId::new("on_a_worker", n), &n, |b, &n| {
            b.to_async(&rt)
                .iter(|| async move { magpie::spawn(fan_out(n)).await.unwrap() })
        });
    }
    group.finish();

    c.bench_function("pipeline/10000_items_capacity_64", |b| {
        b.to_async(&rt).iter(|| pipeline(10_000, 64))
    });
}

// In a private module: the function the macro generates has no doc comment.
mod group {
    criterion::criterion_group!(benches, super::on_magpie);
}

criterion_main!(group::benches);
