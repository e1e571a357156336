//! criterion's async benchmarking on magpie (feature `criterion`): `b.to_async(&rt)` runs the
//! routine inside `Runtime::block_on` on the bench thread, and what it spawns on the workers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::Criterion;
use magpie_executor::Runtime;

/// A criterion that measures for milliseconds, not seconds, and draws no plots.
fn quick_criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(5))
        .measurement_time(Duration::from_millis(20))
        .without_plots()
}

#[test]
fn to_async_runs_the_routine_on_the_bench_thread_and_spawned_tasks_on_workers() {
    let rt = Runtime::builder()
        .worker_threads(2)
        .thread_name("bench-worker")
        .build()
        .unwrap();
    let bench_thread = std::thread::current().id();
    let routines = Arc::new(AtomicU64::new(0));
    let task_threads = Arc::new(Mutex::new(Vec::new()));
    let mut c = quick_criterion();
    c.bench_function("spawn_join", |b| {
        b.to_async(&rt).iter(|| {
            let (routines, task_threads) = (routines.clone(), task_threads.clone());
            async move {
                assert_eq!(std::thread::current().id(), bench_thread);
                routines.fetch_add(1, Ordering::Relaxed);
                let name = magpie_executor::spawn(async {
                    std::thread::current().name().map(str::to_owned)
                })
                .await
                .unwrap();
                task_threads.lock().unwrap().push(name);
            }
        })
    });
    let routines = routines.load(Ordering::Relaxed);
    let task_threads = task_threads.lock().unwrap();
    // Warm-up and 10 samples of at least one iteration each.
    assert!(routines >= 10, "only {routines} iterations ran");
    assert_eq!(task_threads.len() as u64, routines);
    for name in task_threads.iter() {
        let name = name.as_deref().unwrap_or("<unnamed>");
        assert!(name.starts_with("bench-worker"), "a task ran on {name}");
    }
}

#[test]
fn to_async_takes_the_runtime_by_value_too() {
    let outputs = Arc::new(AtomicU64::new(0));
    let mut c = quick_criterion();
    let counted = outputs.clone();
    c.bench_function("by_value", move |b| {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let counted = counted.clone();
        b.to_async(rt).iter(|| {
            let counted = counted.clone();
            async move {
                let v = magpie_executor::spawn(async { 6 * 7 }).await.unwrap();
                counted.fetch_add(v, Ordering::Relaxed);
            }
        })
    });
    let total = outputs.load(Ordering::Relaxed);
    assert!(total >= 42 * 10 && total % 42 == 0, "total {total}");
}
