//! The caches of freed task memory (`Builder::task_cache_bytes`), a worker's and a `block_on`
//! thread's: they keep memory while the runtime runs, within their budget, and give it back
//! when their workers go idle, when the runtime shuts down, and when a `block_on` thread exits.
//!
//! A counting global allocator: the heap in use is the process's, so the tests take turns
//! (`ALONE`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use magpie_executor::Runtime;

mod common;

/// Held by each test for its whole run: no other may allocate while one reads the heap.
static ALONE: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The system allocator, counting the bytes in use.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counter only observes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn heap() -> usize {
    IN_USE.load(Ordering::Relaxed)
}

const WORKERS: usize = 2;
/// Small under Miri too, so that the checks below can fail there as well.
const BUDGET: usize = if cfg!(miri) { 4 << 10 } else { 256 << 10 };
/// Enough small tasks to fill every worker's budget several times over.
const TASKS: usize = if cfg!(miri) { 200 } else { 20_000 };

/// A task on `rt` spawns `TASKS` small tasks and awaits each, so that they end — and are freed
/// — on the workers; returns the heap in use right after. (A cache that was never drawn from
/// goes back at a park a second after its worker started; a burst takes ~20 ms in a debug
/// build, ~100 ms under ThreadSanitizer (CI's runs), so the caches it filled are still there
/// when this returns.)
fn burst(rt: &Runtime) -> usize {
    let sum = rt.block_on(async {
        magpie_executor::spawn(common::spawn_then_join_in_order(TASKS))
            .await
            .expect("spawner failed")
    });
    assert_eq!(sum, TASKS * (TASKS - 1) / 2);
    heap()
}

/// A runtime with `cache` bytes of cache per worker that has just run a [`burst`]; returns it
/// with the heap in use before it was built and right after the burst. A cache never drawn
/// from goes back at a park a second after its worker started, so a build and burst that took
/// half of that (a loaded machine, ThreadSanitizer's slowest moments) are retried, up to a
/// bound, rather than measured after a release they did not mean to test.
fn runtime_after_burst(cache: usize) -> (Runtime, usize, usize) {
    for _ in 0..10 {
        let baseline = heap();
        let start = Instant::now();
        let rt = runtime(cache);
        let used = burst(&rt);
        // Miri's clock is its own: its bursts are slow by it, and the checks hold there anyway.
        if cfg!(miri) || start.elapsed() < Duration::from_millis(500) {
            return (rt, baseline, used);
        }
        drop(rt);
    }
    panic!("ten runtimes in a row took 500 ms or more to build and run a burst of {TASKS} tasks");
}

fn runtime(cache: usize) -> Runtime {
    Runtime::builder()
        .worker_threads(WORKERS)
        .task_cache_bytes(cache)
        .build()
        .expect("runtime")
}

/// What the process keeps for good once any runtime ran (the reactor, thread-locals of this
/// thread) is allocated by a first runtime, before a test's baseline.
fn warm_up() {
    let warm = runtime(0);
    burst(&warm);
    drop(warm);
}

#[test]
fn workers_keep_at_most_their_budget_and_give_it_back_when_idle_and_at_shutdown() {
    let _alone = alone();
    warm_up();

    let baseline = heap();
    let uncached = runtime(0);
    let without_cache = burst(&uncached).saturating_sub(baseline);
    drop(uncached);

    let (rt, baseline, used) = runtime_after_burst(BUDGET);
    let with_cache = used.saturating_sub(baseline);
    // Between the two runs: what the workers' caches and their depot hold. Something (a burst
    // frees far more than the budget on the workers), and within the budget of each worker and
    // the depot's limit (one budget more).
    let kept = with_cache.saturating_sub(without_cache);
    assert!(
        kept >= BUDGET / 2,
        "the caches kept only {kept} B after a burst of {TASKS} tasks \
         ({with_cache} B in use with them, {without_cache} B without)"
    );
    assert!(
        kept <= (WORKERS + 1) * BUDGET,
        "the caches kept {kept} B, over ({WORKERS} + 1) × {BUDGET} B"
    );

    // A worker that parks after a second without taking a cell from its cache gives it back,
    // and the depot's too when no worker took from it since the last such release: wake the
    // workers with tasks spawned from this thread until all of it is back. (This thread
    // caches too, having run `block_on`, but one cell at a time here: the one task in flight.)
    // (Not under Miri, whose clock is its own: the cache's unit tests cover the rule.)
    let slack = BUDGET / 8;
    let start = Instant::now();
    while !cfg!(miri) && heap().saturating_sub(baseline) > without_cache + slack {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the idle workers still hold {} B of cache after 20 s",
            heap().saturating_sub(baseline + without_cache)
        );
        rt.block_on(rt.spawn(async {})).expect("no-op task");
        std::thread::sleep(Duration::from_millis(5));
    }

    drop(rt);
    let after = heap();
    // A few kilobytes may stay for good whatever the caches do: buffers the process keeps
    // across runtimes (the shared reactor's) grow with how events happened to batch up. A cache
    // left behind would be a budget's worth.
    assert!(
        after <= baseline + slack,
        "the runtime's drop left {} B in use ({after} B, baseline {baseline} B)",
        after.saturating_sub(baseline)
    );
}

/// The metrics say what the caches hold: each worker's, as of its last park, within its
/// budget, and the depot's; the burst leaves something there. A shutdown takes both to 0.
#[test]
fn metrics_report_the_workers_caches_and_their_depot() {
    let _alone = alone();
    let (rt, _, _) = runtime_after_burst(BUDGET);
    let handle = rt.handle().clone();
    // Each worker publishes what it keeps when it parks, which it does as soon as the burst's
    // tasks are done: wait for the figures to show. (Not under Miri, where the burst takes
    // longer than the second after which a worker that did not draw from its cache gives it
    // back at that park: the unit tests cover the rule, and the shutdown below still runs.)
    let start = Instant::now();
    let (per_worker, depot) = loop {
        if cfg!(miri) {
            break (Vec::new(), 0);
        }
        let metrics = handle.metrics();
        let per_worker: Vec<usize> = metrics
            .workers
            .iter()
            .map(|w| w.task_cache_bytes as usize)
            .collect();
        let cached = per_worker.iter().sum::<usize>() + metrics.task_depot_bytes;
        if cached >= BUDGET / 2 {
            break (per_worker, metrics.task_depot_bytes);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "20 s after a burst of {TASKS} tasks the metrics show {cached} B cached"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(
        per_worker.iter().all(|&bytes| bytes <= BUDGET),
        "a worker keeps more than its budget: {per_worker:?} B"
    );
    assert!(
        depot <= BUDGET,
        "the depot holds {depot} B, over {BUDGET} B"
    );

    drop(rt);
    let metrics = handle.metrics();
    assert!(metrics.workers.iter().all(|w| w.task_cache_bytes == 0));
    assert_eq!(
        metrics.task_depot_bytes, 0,
        "the depot is emptied at shutdown"
    );
}

/// From this thread, which is not a worker: spawns `TASKS` small tasks inside `rt.block_on`,
/// waits until every one has finished on the workers, then reads each one's output, so that
/// the handles, dropped here, free the cells here.
fn spawn_then_join_here(rt: &Runtime) {
    let finished = Arc::new(AtomicUsize::new(0));
    let sum = rt.block_on(async {
        let handles: Vec<_> = (0..TASKS)
            .map(|i| {
                let finished = finished.clone();
                magpie_executor::spawn(async move {
                    finished.fetch_add(1, Ordering::Relaxed);
                    i
                })
            })
            .collect();
        // A worker drops its reference right after the task's last poll: give it the time,
        // so that the handles hold the last ones. (A few freed on the workers instead would
        // only make the thread's cache below smaller; TASKS fill it many times over.)
        let start = Instant::now();
        while finished.load(Ordering::Relaxed) < TASKS {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "only {} of {TASKS} tasks ran in 60 s",
                finished.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.expect("task failed");
        }
        sum
    });
    assert_eq!(sum, TASKS * (TASKS - 1) / 2);
}

/// On a new thread: runs [`spawn_then_join_here`] on `rt`, then `leave` (on the thread, with
/// the heap it found on entering), then exits; returns how much the heap shrank as the thread
/// exited (what `leave` returned, minus the heap after the join).
fn on_a_thread_that_exits(
    rt: Arc<Runtime>,
    leave: impl FnOnce(Arc<Runtime>) -> usize + Send + 'static,
) -> usize {
    let before_exit = std::thread::spawn(move || {
        spawn_then_join_here(&rt);
        leave(rt)
    })
    .join()
    .expect("the test thread panicked");
    before_exit.saturating_sub(heap())
}

#[test]
fn a_block_on_thread_keeps_its_tasks_cells_within_budget_until_it_exits_or_drops_a_runtime() {
    let _alone = alone();
    warm_up();
    let slack = BUDGET / 8;

    // 1. A thread that ran `block_on` and exits: what it kept goes with it. The heap the
    //    thread's exit gives back, with the cache and without: the difference is the cache.
    let exit_frees = |cache| {
        let rt = Arc::new(runtime(cache));
        let freed = on_a_thread_that_exits(rt.clone(), |_| heap());
        drop(rt);
        freed
    };
    let without_cache = exit_frees(0);
    let with_cache = exit_frees(BUDGET);
    let kept = with_cache.saturating_sub(without_cache);
    assert!(
        kept >= BUDGET / 2,
        "the block_on thread's exit gave back only {kept} B more with a cache \
         ({with_cache} B with it, {without_cache} B without)"
    );
    assert!(
        kept <= BUDGET + slack,
        "the block_on thread kept {kept} B, over its budget of {BUDGET} B"
    );

    // 2. A thread that drops its runtime gives its cache back then, before it exits: with or
    //    without a cache, the heap is back where it was before the runtime was built.
    for cache in [0, BUDGET] {
        let baseline = heap();
        std::thread::spawn(move || {
            let rt = runtime(cache);
            spawn_then_join_here(&rt);
            drop(rt);
            let after_drop = heap();
            assert!(
                after_drop <= baseline + slack,
                "with a {cache}-byte cache, the thread that dropped its runtime still holds \
                 {} B ({after_drop} B in use, baseline {baseline} B)",
                after_drop.saturating_sub(baseline)
            );
        })
        .join()
        .expect("the test thread panicked");
    }

    // 3. A thread whose cache went unused for a second gives it back at its next park in
    //    `block_on`. (Not under Miri, whose clock is its own: the cache's unit tests cover the
    //    rule.)
    if cfg!(miri) {
        return;
    }
    let rt = Arc::new(runtime(BUDGET));
    let given_back = on_a_thread_that_exits(rt.clone(), |rt| {
        let full = heap();
        std::thread::sleep(Duration::from_millis(1_100));
        // Pending once: `block_on` parks (and is woken at once).
        rt.block_on(futures_lite::future::yield_now());
        let parked = heap();
        assert!(
            full.saturating_sub(parked) >= BUDGET / 2,
            "after a second unused, a park in block_on gave back only {} B ({full} B in use \
             before, {parked} B after)",
            full.saturating_sub(parked)
        );
        parked
    });
    assert!(
        given_back <= slack,
        "the thread's exit gave back {given_back} B more: its cache had not gone at the park"
    );
    drop(rt);
}

/// Regression (a review): a worker's `on_thread_start` hook that runs another runtime's
/// `block_on` turned the thread's cache on for that `block_on`; the worker then tripped over
/// it when it took the cache (a debug assertion outside any catch): the thread died before
/// it counted as a worker, and the runtime's drop waited for it for ever.
#[test]
fn a_start_hook_that_runs_another_runtimes_block_on_leaves_the_worker_working() {
    let _alone = alone();
    let other = Arc::new(runtime(BUDGET));
    let hook_runtime = other.clone();
    let rt = Runtime::builder()
        .worker_threads(WORKERS)
        .task_cache_bytes(BUDGET)
        .on_thread_start(move || {
            hook_runtime.block_on(async {});
        })
        .build()
        .expect("runtime");
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let sum = rt.block_on(async {
            magpie_executor::spawn(common::spawn_then_join_in_order(TASKS))
                .await
                .expect("spawner failed")
        });
        drop(rt);
        let _ = done.send(sum);
    });
    let sum = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("the runtime ran its tasks and shut down");
    assert_eq!(sum, TASKS * (TASKS - 1) / 2);
    drop(other);
}
