//! Injected faults (feature `fault-injection`): what a user sees when the OS refuses a thread,
//! when a future's `Drop` panics on abort, when the blocking pool is full, when a task never
//! yields, and when a worker's loop dies of a bug — and that nothing (thread, task, file
//! descriptor, a worker's wake-up) is lost. docs/reliability.md has the table.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use magpie_executor::fault::{self, WorkerLoopPoint};
use magpie_executor::{JoinError, JoinHandle, Runtime};

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

/// A runtime of two workers (threads `NAME-0` and `NAME-1`), one of them held in a poll, for
/// the tests where the other one's loop dies: the held one neither steals nor ends a poll
/// meanwhile. It counts its workers' `on_thread_stop` hooks.
struct OneWorkerHeld {
    rt: Runtime,
    name: &'static str,
    release: Arc<AtomicBool>,
    holder: Option<JoinHandle<()>>,
    stops: Arc<AtomicUsize>,
}

impl OneWorkerHeld {
    fn new(name: &'static str) -> OneWorkerHeld {
        let stops = Arc::new(AtomicUsize::new(0));
        let rt = Runtime::builder()
            .worker_threads(2)
            .thread_name(name)
            .on_thread_stop({
                let stops = stops.clone();
                move || {
                    stops.fetch_add(1, Ordering::SeqCst);
                }
            })
            .build()
            .unwrap();
        let (held, release) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let holder = rt.spawn({
            let (held, release) = (held.clone(), release.clone());
            async move {
                held.store(true, Ordering::SeqCst);
                // A safety net beyond the tests' own 10 s waits.
                let deadline = Instant::now() + Duration::from_secs(30);
                while !release.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let held_rt = OneWorkerHeld {
            rt,
            name,
            release,
            holder: Some(holder),
            stops,
        };
        eventually("the workers started", || {
            held_rt.workers_alive().map_or(true, |n| n == 2)
        });
        eventually("a worker is held", || held.load(Ordering::SeqCst));
        held_rt
    }

    /// Whether worker `index`'s thread runs; `None` off Linux (see [`threads_named`]).
    fn worker_alive(&self, index: usize) -> Option<bool> {
        Some(threads_named(&format!("{}-{index}", self.name))? == 1)
    }

    fn workers_alive(&self) -> Option<usize> {
        Some(usize::from(self.worker_alive(0)?) + usize::from(self.worker_alive(1)?))
    }

    /// Waits until one worker's loop has panicked and its thread is gone (its stop hook ran
    /// by then); returns its index (`None` off Linux).
    fn wait_for_a_death(&self) -> Option<usize> {
        eventually("a worker loop panicked", || {
            fault::pending_worker_loop_panics() == 0
        });
        eventually("its thread gone", || {
            self.workers_alive().map_or(true, |n| n == 1)
        });
        if threads_named(self.name).is_some() {
            assert_eq!(self.stops.load(Ordering::SeqCst), 1, "its stop hook ran");
        }
        (0..2).find(|&index| self.worker_alive(index) == Some(false))
    }

    /// Lets the held worker go, and waits for its task to end.
    fn release(&mut self) {
        self.release.store(true, Ordering::SeqCst);
        let holder = self.holder.take().expect("released once");
        finished(&self.rt, "the held worker's task ended", holder);
    }

    /// New tasks run on the worker left, spawned from outside one at a time while it sleeps
    /// (each waited for, bounded), and from a task; then the shutdown neither waits for the
    /// dead worker nor reports it running.
    fn check_the_worker_left_runs_new_tasks(self) {
        for i in 0..20u64 {
            // Time for the worker left to park: each spawn must wake it.
            std::thread::sleep(Duration::from_millis(2));
            let task = self.rt.spawn(async move { i });
            assert_eq!(finished(&self.rt, "a new task ran", task), i);
        }
        let sum = self.rt.spawn(async {
            let tasks: Vec<_> = (0..20u64)
                .map(|i| magpie_executor::spawn(async move { i }))
                .collect();
            let mut sum = 0;
            for task in tasks {
                sum += task.await.unwrap();
            }
            sum
        });
        assert_eq!(
            finished(&self.rt, "a spawning task ran", sum),
            (0..20).sum::<u64>()
        );
        let report = self.rt.shutdown_timeout(Duration::from_secs(10));
        assert_eq!(report.workers_left_running, 0, "{report}");
        assert_eq!(self.stops.load(Ordering::SeqCst), 2, "every stop hook ran");
    }
}

/// Turns every worker-loop fault off however a test ends: an unspent one would kill a worker of
/// the next test.
struct Disarm;

impl Drop for Disarm {
    fn drop(&mut self) {
        for point in [
            WorkerLoopPoint::AfterPoll,
            WorkerLoopPoint::Searching,
            WorkerLoopPoint::Parked,
        ] {
            fault::panic_worker_loops_at(point, 0);
        }
    }
}

/// Waits (up to 10 s) for `task` to finish; its output.
fn finished<T>(rt: &Runtime, what: &str, task: JoinHandle<T>) -> T {
    eventually(what, || task.is_finished());
    rt.block_on(task).unwrap()
}

#[test]
fn a_worker_whose_loop_panics_hands_its_tasks_over_and_is_counted_out() {
    let _serial = serial();
    let mut held = OneWorkerHeld::new("flt-dies");
    let _disarm = Disarm;
    // The other worker runs this task, which queues 50 tasks on it; its loop dies right after.
    let spawner = held.rt.spawn(async {
        let tasks: Vec<_> = (0..50u64)
            .map(|i| magpie_executor::spawn(async move { i }))
            .collect();
        fault::panic_worker_loops(1);
        tasks
    });
    let tasks = finished(&held.rt, "the spawner ran", spawner);
    held.wait_for_a_death();
    // The queued tasks were handed over: they run on the worker left once it is free.
    held.release();
    eventually("the dead worker's tasks ran", || {
        tasks.iter().all(|t| t.is_finished())
    });
    let sum: u64 = tasks
        .into_iter()
        .map(|t| held.rt.block_on(t).unwrap())
        .sum();
    assert_eq!(sum, (0..50).sum::<u64>());
    held.check_the_worker_left_runs_new_tasks();
}

#[test]
fn a_task_that_woke_itself_on_a_worker_whose_loop_panics_runs_on_the_worker_left() {
    let _serial = serial();
    let mut held = OneWorkerHeld::new("flt-yield");
    let _disarm = Disarm;
    // The first poll the other worker finishes is this task's, which yields: its loop dies
    // holding the task to queue again.
    fault::panic_worker_loops(1);
    let yielder = held.rt.spawn(async {
        for _ in 0..100 {
            magpie_executor::task::yield_now().await;
        }
        7
    });
    held.wait_for_a_death();
    held.release();
    // Handed over, not stranded (its entry dropped, the task never run again).
    assert_eq!(finished(&held.rt, "the yielding task ended", yielder), 7);
    held.check_the_worker_left_runs_new_tasks();
}

#[test]
fn a_worker_that_dies_parked_is_never_the_one_woken_and_stops_counting_as_busy() {
    let _serial = serial();
    let mut held = OneWorkerHeld::new("flt-park");
    let _disarm = Disarm;
    // The other worker dies right after registering as parked: after running this task if it
    // was asleep, before it if it was on its way to sleep.
    fault::panic_worker_loops_at(WorkerLoopPoint::Parked, 1);
    let poke = held.rt.spawn(async { 1 });
    let dead = held.wait_for_a_death();
    // Its busy period ended with it (it died before the park would have ended it).
    if let Some(dead) = dead {
        let busy = || held.rt.handle().metrics().workers[dead].busy_time;
        let before = busy();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(busy(), before, "the dead worker still counts as busy");
    }
    // With the dead worker left on the list of sleepers, this spawn would wake it and count
    // it as searching, for ever: the held worker, once free, still runs this task, but no
    // later spawn would wake it from its sleep (`check_the_worker_left_runs_new_tasks`).
    let task = held.rt.spawn(async { 2 });
    held.release();
    assert_eq!(finished(&held.rt, "the first task ran", poke), 1);
    assert_eq!(
        finished(&held.rt, "the task spawned after the death ran", task),
        2
    );
    held.check_the_worker_left_runs_new_tasks();
}

#[test]
fn a_worker_that_dies_searching_does_not_keep_the_others_asleep() {
    let _serial = serial();
    let mut held = OneWorkerHeld::new("flt-search");
    let _disarm = Disarm;
    // The other worker runs this task, then looks for more in the held worker's queue and
    // dies there, counted as a searcher (while one searches, producers wake nobody).
    fault::panic_worker_loops_at(WorkerLoopPoint::Searching, 1);
    let poke = held.rt.spawn(async { 1 });
    held.wait_for_a_death();
    held.release();
    assert_eq!(finished(&held.rt, "the first task ran", poke), 1);
    held.check_the_worker_left_runs_new_tasks();
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
