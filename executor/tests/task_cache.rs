//! The workers' caches of freed task memory (`Builder::task_cache_bytes`): they keep memory
//! while the runtime runs, within their budget, and give it back when their workers go idle
//! and when the runtime shuts down.
//!
//! One test in this binary, with a counting global allocator: the heap in use is the process's,
//! so no other test may run beside it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use magpie_executor::Runtime;

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
        magpie_executor::spawn(async {
            let handles: Vec<_> = (0..TASKS)
                .map(|i| magpie_executor::spawn(async move { i }))
                .collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.expect("task failed");
            }
            sum
        })
        .await
        .expect("spawner failed")
    });
    assert_eq!(sum, TASKS * (TASKS - 1) / 2);
    heap()
}

fn runtime(cache: usize) -> Runtime {
    Runtime::builder()
        .worker_threads(WORKERS)
        .task_cache_bytes(cache)
        .build()
        .expect("runtime")
}

#[test]
fn workers_keep_at_most_their_budget_and_give_it_back_when_idle_and_at_shutdown() {
    // What the process keeps for good once any runtime ran (the reactor, thread-locals of this
    // thread) is allocated by a first runtime, before the baseline.
    let warm = runtime(0);
    burst(&warm);
    drop(warm);

    let baseline = heap();
    let uncached = runtime(0);
    let without_cache = burst(&uncached).saturating_sub(baseline);
    drop(uncached);

    let baseline = heap();
    let rt = runtime(BUDGET);
    let with_cache = burst(&rt).saturating_sub(baseline);
    // Between the two runs: what the workers' caches hold. Something (a burst frees far more
    // than the budget on the workers), and within the budget of each.
    let kept = with_cache.saturating_sub(without_cache);
    assert!(
        kept >= BUDGET / 2,
        "the caches kept only {kept} B after a burst of {TASKS} tasks \
         ({with_cache} B in use with them, {without_cache} B without)"
    );
    assert!(
        kept <= WORKERS * BUDGET,
        "the caches kept {kept} B, over {WORKERS} × {BUDGET} B"
    );

    // A worker that parks after a second without taking a cell from its cache gives it back:
    // wake the workers with tasks spawned from this thread (which has no cache) until both
    // have. (Not under Miri, whose clock is its own: the cache's unit tests cover the rule.)
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
