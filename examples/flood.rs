//! Ten million tasks spawned faster than they run (docs/reliability.md, "Injected faults"):
//! memory grows with the tasks alive, and goes back down once they have run.
//!
//! ```text
//! cargo run --release --example flood                      # 10 000 000 tasks, 2 workers
//! cargo run --release --example flood -- --tasks 1000000   # CI's size (.ci/soak.sh)
//! ```
//!
//! While every worker is held by a "plug" task that does not yield, one thread spawns all the
//! tasks from outside the runtime, so they pile up in the global queue; then the plugs let go
//! and the workers run them (each yields once and ends). Memory is counted two ways: the heap
//! bytes in use, by a counting global allocator (exact: what magpie and the program hold), and
//! the resident set (`/proc/self/statm`: what the OS sees, including what the allocator keeps
//! cached for reuse). At the end it checks, and exits non-zero otherwise:
//!
//! - every task ran and was dropped, and none is left in the runtime;
//! - at the peak, heap in use above the starting level is at most 512 B per task alive (a task
//!   is one allocation of about 200 B; the rest is the global queue's blocks);
//! - once all have run, heap in use is back within 1 % of the peak's growth of where it started,
//!   plus what the workers' caches of freed task memory may keep (`Builder::task_cache_bytes`
//!   per worker, set here to the default, 1 MiB): magpie keeps nothing per task it ran beyond
//!   that bound (no pool that grows with the burst, no leak).
//!
//! The resident set is printed, not checked: whether the allocator hands freed memory back to
//! the OS is its own policy (glibc's keeps much of it for reuse).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Each worker's cache of freed task memory: the default, named so the end check can allow it.
const TASK_CACHE_BYTES: usize = 1 << 20;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

fn heap() -> u64 {
    counting_alloc::heap_in_use()
}

/// Resident memory in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm (Linux)");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm's second field");
    pages * 4096
}

/// Decrements the live count when the task's future is dropped (run to its end or not).
struct Alive(Arc<AtomicU64>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn main() -> ExitCode {
    let mut tasks: u64 = 10_000_000;
    let mut workers = 2;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (arg.as_str(), value) {
            ("--tasks", Some(n)) if n > 0 => tasks = n,
            ("--workers", Some(n)) if n > 0 => workers = n as usize,
            _ => {
                eprintln!("usage: flood [--tasks N] [--workers N] (both at least 1)");
                return ExitCode::from(2);
            }
        }
    }

    let rt = magpie::Runtime::builder()
        .worker_threads(workers)
        .task_cache_bytes(TASK_CACHE_BYTES)
        .build()
        .expect("runtime");
    // Warm up (threads, their allocator arenas, the queues), then take the baseline.
    rt.block_on(async {
        let warm: Vec<_> = (0..10_000)
            .map(|i| magpie::spawn(async move { i }))
            .collect();
        magpie::join_all(warm).await;
    });
    let (baseline, baseline_rss) = (heap(), rss());

    let alive = Arc::new(AtomicU64::new(0));
    let ran = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let (alive, done) = (alive.clone(), done.clone());
        move || {
            // (heap, alive) at the highest heap seen, and the highest rss.
            let (mut peak, mut peak_rss) = ((0, 0), 0);
            while !done.load(Ordering::Relaxed) {
                let sample = (heap(), alive.load(Ordering::Relaxed));
                if sample.0 > peak.0 {
                    peak = sample;
                }
                peak_rss = peak_rss.max(rss());
                std::thread::sleep(Duration::from_millis(2));
            }
            (peak, peak_rss)
        }
    });

    // Hold every worker so that nothing runs while we spawn, and wait until each holds one.
    let spawning = Arc::new(AtomicBool::new(true));
    let held = Arc::new(AtomicUsize::new(0));
    let plugs: Vec<_> = (0..workers)
        .map(|_| {
            let (spawning, held) = (spawning.clone(), held.clone());
            rt.spawn(async move {
                held.fetch_add(1, Ordering::AcqRel);
                while spawning.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_micros(100));
                }
            })
        })
        .collect();
    let waited = Instant::now();
    while held.load(Ordering::Acquire) < workers {
        if waited.elapsed() > Duration::from_secs(10) {
            eprintln!("flood: FAILED: the workers did not all take a plug within 10 s");
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let start = Instant::now();
    let handle = rt.handle();
    for _ in 0..tasks {
        alive.fetch_add(1, Ordering::Relaxed);
        let guard = Alive(alive.clone());
        let ran = ran.clone();
        drop(handle.spawn(async move {
            let _guard = guard;
            magpie::task::yield_now().await;
            ran.fetch_add(1, Ordering::Relaxed);
        }));
    }
    let spawned_in = start.elapsed();
    // The peak is now, with every task spawned and none run: sample it here too, in case the
    // sampler thread was not scheduled at this moment.
    let at_peak = (heap(), alive.load(Ordering::Relaxed));
    spawning.store(false, Ordering::Release);
    for plug in plugs {
        rt.block_on(plug).expect("plug");
    }
    while alive.load(Ordering::Relaxed) > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let ran_in = start.elapsed();
    // Give the workers a moment to free the last queue blocks, then read the end level.
    std::thread::sleep(Duration::from_millis(200));
    let (end, end_rss) = (heap(), rss());
    done.store(true, Ordering::Relaxed);
    let ((sampled, sampled_alive), peak_rss) = sampler.join().expect("sampler");
    let (peak, peak_alive) = if at_peak.0 >= sampled {
        at_peak
    } else {
        (sampled, sampled_alive)
    };

    let growth = peak.saturating_sub(baseline);
    let per_task = growth.checked_div(peak_alive).unwrap_or(0);
    let back = end.saturating_sub(baseline);
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "flood: {tasks} tasks spawned in {:.2} s, all run {:.2} s after the first spawn; heap in \
         use: baseline {:.1} MiB, peak {:.1} MiB with {peak_alive} alive ({per_task} B per \
         alive task), end {:.1} MiB ({:+.2} % of the growth); rss: baseline {:.1} MiB, peak \
         {:.1} MiB, end {:.1} MiB",
        spawned_in.as_secs_f64(),
        ran_in.as_secs_f64(),
        mib(baseline),
        mib(peak),
        mib(end),
        100.0 * back as f64 / growth.max(1) as f64,
        mib(baseline_rss),
        mib(peak_rss),
        mib(end_rss),
    );
    let mut ok = true;
    let mut check = |passed: bool, what: &str| {
        if !passed {
            eprintln!("flood: FAILED: {what}");
            ok = false;
        }
    };
    check(ran.load(Ordering::Relaxed) == tasks, "every task ran");
    check(
        rt.handle().alive_tasks() == 0,
        "no task left in the runtime",
    );
    check(
        peak_alive * 10 >= tasks * 9,
        "the tasks piled up (the plugs held the workers)",
    );
    check(
        per_task <= 512,
        "at most 512 B of heap per alive task at the peak",
    );
    let caches = workers as u64 * TASK_CACHE_BYTES as u64;
    check(
        back <= growth.max(1) / 100 + caches,
        "heap in use back within 1 % of the growth, plus the workers' task caches",
    );
    if ok {
        println!("flood: OK");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
