//! `#[magpie::test]` used for real: each test runs on a fresh runtime of its own.
//! (tests/macros_ui.rs checks what the attributes refuse, and `#[magpie::main]`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Awaits a spawned task, which ran on one of the runtime's workers.
#[magpie::test]
async fn awaits_a_spawned_task() {
    let caller = std::thread::current().id();
    let (value, worker) = magpie::spawn(async {
        magpie::time::sleep(Duration::from_millis(5)).await;
        (42, std::thread::current().id())
    })
    .await
    .unwrap();
    assert_eq!(value, 42);
    // The body runs on the test's own thread (`block_on`), the task on a worker.
    assert_ne!(worker, caller);
}

/// The spin before parking set through the attribute (here off): the expansion compiles
/// against `Builder::spin_before_park`, and the runtime it builds runs tasks and timers.
#[magpie::test(worker_threads = 2, spin_before_park_us = 0)]
async fn the_spin_option_builds_a_working_runtime() {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            magpie::spawn(async move {
                magpie::time::sleep(Duration::from_millis(1)).await;
                i
            })
        })
        .collect();
    let outputs: Vec<usize> = magpie::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(outputs, (0..8).collect::<Vec<_>>());
}

#[magpie::test(worker_threads = 1, thread_name = "single")]
async fn one_worker_runs_every_task() {
    let counter = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let counter = counter.clone();
            magpie::spawn(async move {
                magpie::task::yield_now().await;
                counter.fetch_add(1, Ordering::Relaxed);
                std::thread::current().name().map(str::to_owned)
            })
        })
        .collect();
    for name in magpie::join_all(tasks).await {
        assert_eq!(name.unwrap().as_deref(), Some("single-0"));
    }
    assert_eq!(counter.load(Ordering::Relaxed), 16);
}

#[magpie::test(max_blocking_threads = 2, global_queue_interval = 7)]
async fn the_other_options_reach_the_builder() {
    let on = magpie::spawn_blocking(|| std::thread::current().name().map(str::to_owned));
    assert_eq!(on.await.unwrap().as_deref(), Some("magpie-blocking"));
}

/// A panic in the body fails the test: it comes out of `block_on`.
#[magpie::test]
#[should_panic(expected = "the body panicked")]
async fn a_panicking_body_fails_the_test() {
    magpie::task::yield_now().await;
    panic!("the body panicked");
}

/// So does a panic in an awaited task, once its `JoinError` is unwrapped.
#[magpie::test]
#[should_panic(expected = "in the task")]
async fn a_panicking_task_fails_the_test_when_unwrapped() {
    magpie::spawn(async { panic!("in the task") })
        .await
        .unwrap();
}

#[magpie::test]
async fn returns_ok() -> Result<(), std::num::ParseIntError> {
    let n: u32 = magpie::spawn(async { "12" }).await.unwrap().parse()?;
    assert_eq!(n, 12);
    Ok(())
}

/// `seeds = N`: the body runs in the deterministic runtime once per seed, on the test's own
/// thread, with virtual time.
static SEEDED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[magpie::test(seeds = 50)]
async fn seeds_runs_the_body_once_per_seed_on_virtual_time() {
    let test_thread = std::thread::current().id();
    let start = magpie::time::now();
    let task = magpie::spawn(async move {
        assert_eq!(std::thread::current().id(), test_thread);
        magpie::time::sleep(Duration::from_secs(600)).await;
    });
    task.await.unwrap();
    assert_eq!(magpie::time::now() - start, Duration::from_secs(600));
    // With `MAGPIE_SEED` set (replaying a seed) it runs once; without, fifty times.
    let runs = SEEDED_RUNS.fetch_add(1, Ordering::Relaxed) + 1;
    assert!(runs <= 50);
}

/// An inner attribute at the top of the body stays there (it used to be printed before the
/// generated fn, where it does not compile), and covers the body: `unused` would warn, and
/// warnings are errors in CI's clippy.
#[magpie::test]
async fn an_inner_attribute_of_the_body_applies_to_it() {
    #![allow(unused_variables)]
    let unused = magpie::spawn(async { 1 }).await.unwrap();
}

/// An `impl Trait` output (which cannot be named in the expansion's `dyn Future` annotation).
#[magpie::test]
async fn an_impl_trait_output_is_accepted() -> impl std::process::Termination {
    assert_eq!(magpie::spawn(async { 2 }).await.unwrap(), 2);
}

/// `-> ()` is `()`: accepted with `seeds` too.
#[magpie::test(seeds = 3)]
async fn an_explicit_unit_output_goes_with_seeds() -> () {
    magpie::time::sleep(Duration::from_millis(1)).await;
}
