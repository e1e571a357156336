//! The workers' caches of freed task memory (`Builder::task_cache_bytes`): they keep memory
//! while the runtime runs, within their budget, and give it all back when it shuts down.
//!
//! One test in this binary, with a counting global allocator: the heap in use is the process's,
//! so no other test may run beside it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

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
const BUDGET: usize = 256 << 10;
/// Enough small tasks to fill every worker's budget several times over.
const TASKS: usize = if cfg!(miri) { 100 } else { 20_000 };

/// A task on `rt` spawns `TASKS` small tasks and awaits each, so that they end — and are freed
/// — on the workers.
fn burst(rt: &Runtime) {
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
}

fn runtime(cache: usize) -> Runtime {
    Runtime::builder()
        .worker_threads(WORKERS)
        .task_cache_bytes(cache)
        .build()
        .expect("runtime")
}

#[test]
fn workers_keep_at_most_their_budget_and_give_it_back_at_shutdown() {
    // What the process keeps for good once any runtime ran (the reactor, thread-locals of this
    // thread) is allocated by a first runtime, before the baseline.
    let warm = runtime(0);
    burst(&warm);
    drop(warm);

    let baseline = heap();
    let uncached = runtime(0);
    burst(&uncached);
    let without_cache = heap().saturating_sub(baseline);
    drop(uncached);

    let baseline = heap();
    let rt = runtime(BUDGET);
    burst(&rt);
    let with_cache = heap().saturating_sub(baseline);
    // Between the two runs: what the workers' caches hold. Something (a burst frees far more
    // than the budget on the workers), and within the budget of each.
    let kept = with_cache.saturating_sub(without_cache);
    if !cfg!(miri) {
        assert!(
            kept >= BUDGET / 2,
            "the caches kept only {kept} B after a burst of {TASKS} tasks \
             ({with_cache} B in use with them, {without_cache} B without)"
        );
    }
    assert!(
        kept <= WORKERS * BUDGET,
        "the caches kept {kept} B, over {WORKERS} × {BUDGET} B"
    );
    drop(rt);
    let after = heap();
    // A few kilobytes may stay for good whatever the caches do: buffers the process keeps
    // across runtimes (the shared reactor's) grow with how events happened to batch up. A cache
    // left behind would be a budget's worth.
    assert!(
        after <= baseline + BUDGET / 8,
        "the runtime's drop left {} B in use ({after} B, baseline {baseline} B)",
        after.saturating_sub(baseline)
    );
}
