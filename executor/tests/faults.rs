//! Injected faults (feature `fault-injection`): what a user sees when the OS refuses a thread,
//! when a future's `Drop` panics on abort, when the blocking pool is full, and when a task never
//! yields — and that nothing (thread, task, file descriptor) is leaked. docs/reliability.md has
//! the table.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use magpie_executor::{fault, JoinError, Runtime};

/// The tests count the process's threads and descriptors: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Threads of this process whose name starts with `prefix`; `None` off Linux.
///
/// The leak checks read `/proc`, so they run on Linux only. Under Wine (the Windows run in CI)
/// `/proc/self` is the Linux process that hosts Wine, whose own threads and descriptors come
/// and go: counting them there would be noise, not a check.
#[cfg(target_os = "linux")]
fn threads_named(prefix: &str) -> Option<usize> {
    let count = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count();
    Some(count)
}

#[cfg(not(target_os = "linux"))]
fn threads_named(_prefix: &str) -> Option<usize> {
    None
}

/// Open file descriptors of this process; `None` off Linux (see [`threads_named`]).
#[cfg(target_os = "linux")]
fn open_fds() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").unwrap().count())
}

#[cfg(not(target_os = "linux"))]
fn open_fds() -> Option<usize> {
    None
}

/// Polls `condition` for up to 10 s.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_worker_that_cannot_start_fails_build_and_leaks_nothing() {
    let _serial = serial();
    // Warm up what lives for the whole process (the reactor), so it is in the baseline.
    drop(Runtime::builder().worker_threads(1).build().unwrap());
    let fds = open_fds();

    fault::fail_thread_starts(2, 1); // workers 0 and 1 start, worker 2 does not
    let err = Runtime::builder()
        .worker_threads(4)
        .thread_name("flt-build")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("injected fault"), "{err}");
    // The two that started were stopped and joined before `build` returned (a joined thread
    // may linger in /proc for a moment while it exits).
    eventually("the started workers gone", || {
        threads_named("flt-build").map_or(true, |n| n == 0)
    });
    assert_eq!(open_fds(), fds);

    let rt = Runtime::builder()
        .worker_threads(4)
        .thread_name("flt-build")
        .build()
        .unwrap();
    assert_eq!(rt.block_on(rt.spawn(async { 7 })).unwrap(), 7);
}

#[test]
fn a_blocking_job_with_no_thread_to_run_it_is_cancelled_not_stranded() {
    let _serial = serial();
    let rt = Runtime::builder()
        .worker_threads(1)
        .thread_name("fpool")
        .build()
        .unwrap();
    fault::fail_thread_starts(0, 1);
    let job = rt.spawn_blocking(|| 1);
    let err = rt.block_on(job).unwrap_err();
    assert!(err.is_cancelled(), "{err:?}");
    assert_eq!(
        fault::pending_thread_start_failures(),
        0,
        "the fault was not used"
    );
    // (Thread names are cut to 15 bytes in /proc: "fpool-blocking" fits.)
    assert!(threads_named("fpool-blocking").map_or(true, |n| n == 0));
    // The pool tries again next time.
    assert_eq!(rt.block_on(rt.spawn_blocking(|| 2)).unwrap(), 2);
}

#[test]
fn a_blocking_job_whose_thread_cannot_start_waits_for_a_running_one() {
    let _serial = serial();
    let rt = Runtime::builder()
        .worker_threads(1)
        .max_blocking_threads(4)
        .build()
        .unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let first = rt.spawn_blocking({
        let release = release.clone();
        move || {
            while !release.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            1
        }
    });
    fault::fail_thread_starts(0, 1);
    let second = rt.spawn_blocking(|| 2); // no new thread: it queues behind `first`
    assert_eq!(
        fault::pending_thread_start_failures(),
        0,
        "the fault was not used"
    );
    release.store(true, Ordering::Release);
    assert_eq!(rt.block_on(first).unwrap(), 1);
    assert_eq!(rt.block_on(second).unwrap(), 2);
}

#[test]
fn blocking_jobs_beyond_max_blocking_threads_queue_and_all_complete() {
    let _serial = serial();
    let rt = Runtime::builder()
        .worker_threads(1)
        .max_blocking_threads(2)
        .thread_name("fmax")
        .build()
        .unwrap();
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let jobs: Vec<_> = (0..40)
        .map(|i| {
            let (running, peak) = (running.clone(), peak.clone());
            rt.spawn_blocking(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
                running.fetch_sub(1, Ordering::SeqCst);
                i
            })
        })
        .collect();
    let done: Vec<usize> = jobs.into_iter().map(|j| rt.block_on(j).unwrap()).collect();
    assert_eq!(done, (0..40).collect::<Vec<_>>());
    assert!(peak.load(Ordering::SeqCst) <= 2);
    assert!(threads_named("fmax-blocking").map_or(true, |n| n <= 2));
}

#[test]
fn a_future_whose_drop_panics_on_abort_is_contained() {
    let _serial = serial();
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("drop exploded");
        }
    }
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let task = rt.spawn({
        let started = started.clone();
        async move {
            let _bomb = PanicOnDrop;
            started.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
    });
    eventually("the task started", || started.load(Ordering::SeqCst));
    task.abort();
    let err: JoinError = rt.block_on(task).unwrap_err();
    // An error (cancelled, or the destructor's panic); either way the panic did not reach
    // a worker's loop.
    assert!(err.is_cancelled() || err.is_panic(), "{err:?}");
    // Both workers still run tasks.
    let outputs: Vec<_> = (0..64).map(|i| rt.spawn(async move { i })).collect();
    let sum: u64 = outputs.into_iter().map(|t| rt.block_on(t).unwrap()).sum();
    assert_eq!(sum, (0..64).sum::<u64>());
    assert_eq!(rt.handle().alive_tasks(), 0);
}

#[test]
fn a_task_that_never_yields_does_not_stop_the_other_workers() {
    let _serial = serial();
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let spinning = Arc::new(AtomicBool::new(true));
    let started = Arc::new(AtomicBool::new(false));
    let hog = rt.spawn({
        let (spinning, started) = (spinning.clone(), started.clone());
        async move {
            started.store(true, Ordering::SeqCst);
            // Holds its worker without an `.await` until the others are done (or 10 s).
            let deadline = Instant::now() + Duration::from_secs(10);
            while spinning.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::hint::spin_loop();
            }
        }
    });
    eventually("the hog started", || started.load(Ordering::SeqCst));
    let tasks: Vec<_> = (0..100).map(|i| rt.spawn(async move { i })).collect();
    let sum: u64 = tasks.into_iter().map(|t| rt.block_on(t).unwrap()).sum();
    // All ran while the hog still held its worker (it gives up only after 10 s).
    assert!(
        !hog.is_finished(),
        "the hog let go before the other tasks ran"
    );
    assert_eq!(sum, (0..100).sum::<u64>());
    spinning.store(false, Ordering::SeqCst);
    rt.block_on(hog).unwrap();
}

#[test]
fn a_worker_whose_loop_panics_hands_its_tasks_over_and_is_counted_out() {
    let _serial = serial();
    let rt = Runtime::builder()
        .worker_threads(2)
        .thread_name("flt-dies")
        .build()
        .unwrap();
    // Its workers' threads, once they have started (`flt-dies-0`, `flt-dies-1`).
    let workers = || Some(threads_named("flt-dies-0")? + threads_named("flt-dies-1")?);
    eventually("the workers started", || workers().map_or(true, |n| n == 2));
    // One worker is held in a poll, so it neither steals nor ends a poll meanwhile.
    let (held, release) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let holder = rt.spawn({
        let (held, release) = (held.clone(), release.clone());
        async move {
            held.store(true, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !release.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    eventually("a worker is held", || held.load(Ordering::SeqCst));
    // Turned off again however the test ends: an unspent fault would kill a worker of the
    // next test.
    struct Disarm;
    impl Drop for Disarm {
        fn drop(&mut self) {
            fault::panic_worker_loops(0);
        }
    }
    let _disarm = Disarm;
    // The other one runs this task, which queues 50 tasks on it; its loop dies right after.
    let spawner = rt.spawn(async {
        let tasks: Vec<_> = (0..50u64)
            .map(|i| magpie_executor::spawn(async move { i }))
            .collect();
        fault::panic_worker_loops(1);
        tasks
    });
    eventually("the spawner ran", || spawner.is_finished());
    let tasks = rt.block_on(spawner).unwrap();
    eventually("a worker loop panicked", || {
        fault::pending_worker_loop_panics() == 0
    });
    eventually("its thread gone", || workers().map_or(true, |n| n == 1));
    // The queued tasks were handed over: they run on the worker left once it is free.
    release.store(true, Ordering::SeqCst);
    eventually("the dead worker's tasks ran", || {
        tasks.iter().all(|t| t.is_finished())
    });
    let sum: u64 = tasks.into_iter().map(|t| rt.block_on(t).unwrap()).sum();
    assert_eq!(sum, (0..50).sum::<u64>());
    rt.block_on(holder).unwrap();
    // New tasks run there too: spawned from outside, and from a task.
    for i in 0..20u64 {
        assert_eq!(rt.block_on(rt.spawn(async move { i })).unwrap(), i);
    }
    let sum = rt.block_on(rt.spawn(async {
        let tasks: Vec<_> = (0..20u64)
            .map(|i| magpie_executor::spawn(async move { i }))
            .collect();
        let mut sum = 0;
        for task in tasks {
            sum += task.await.unwrap();
        }
        sum
    }));
    assert_eq!(sum.unwrap(), (0..20).sum::<u64>());
    // The shutdown neither waits for the dead worker nor reports it running.
    let report = rt.shutdown_timeout(Duration::from_secs(10));
    assert_eq!(report.workers_left_running, 0, "{report}");
}

// Its one check counts threads in /proc: Linux only (see `threads_named`).
#[cfg(target_os = "linux")]
#[test]
fn a_runtime_dropped_on_its_own_worker_with_no_thread_for_its_shutdown_still_stops() {
    let _serial = serial();
    let rt = Runtime::builder()
        .worker_threads(2)
        .thread_name("flt-drop")
        .build()
        .unwrap();
    let handle = rt.handle();
    let slot = Arc::new(Mutex::new(Some(rt)));
    let dropper = handle.spawn({
        let slot = slot.clone();
        async move {
            let rt = slot.lock().unwrap().take().unwrap();
            // Dropped on its own worker, the runtime hands its shutdown to a new thread;
            // that thread cannot start.
            fault::fail_thread_starts(0, 1);
            drop(rt);
        }
    });
    drop(dropper);
    // The workers still stop (step 1 of the shutdown needs no thread).
    eventually("the workers stopped", || {
        threads_named("flt-drop") == Some(0)
    });
}
