//! Shutdown: every unfinished task is dropped, every thread joined, every handle resolved.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{panic_message, wait_until, DropCounter, Signal};
use magpie_executor::{task, Handle, Runtime, ShutdownReport};

fn counted_runtime(workers: usize, stopped: &Arc<AtomicUsize>) -> Runtime {
    let stopped = stopped.clone();
    Runtime::builder()
        .worker_threads(workers)
        .on_thread_stop(move || {
            stopped.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap()
}

/// Scaled down under Miri, which interprets every instruction.
const SLEEPERS: usize = if cfg!(miri) { 40 } else { 4000 };
const QUEUED: usize = if cfg!(miri) { 10 } else { 1000 };

#[test]
fn drop_cancels_thousands_of_pending_and_sleeping_tasks() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let rt = counted_runtime(2, &stopped);
    let drops = DropCounter::default();
    let never = Signal::default();
    let polled = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..SLEEPERS {
        let guard = drops.guard();
        let never = never.clone();
        let polled = polled.clone();
        handles.push(rt.spawn(async move {
            let _guard = guard;
            polled.fetch_add(1, Ordering::SeqCst);
            if i % 2 == 0 {
                // Sleeping forever: parked on a waker nobody will call.
                never.wait().await;
            } else {
                // Pending forever, no waker kept at all.
                std::future::pending::<()>().await;
            }
        }));
    }
    // Also tasks that never got to run (queued behind a busy spinner at shutdown time).
    for _ in 0..QUEUED {
        let guard = drops.guard();
        handles.push(rt.spawn(async move {
            let _guard = guard;
            loop {
                task::yield_now().await;
            }
        }));
    }
    wait_until("every sleeper polled", || {
        polled.load(Ordering::SeqCst) == SLEEPERS
    });
    drop(rt);
    assert_eq!(
        drops.count(),
        SLEEPERS + QUEUED,
        "every task's future was dropped"
    );
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        2,
        "every worker thread stopped"
    );
    for handle in handles {
        assert!(handle.is_finished());
        assert!(magpie_executor::block_on(handle)
            .unwrap_err()
            .is_cancelled());
    }
    drop(never);
}

#[test]
fn shutdown_timeout_reports_how_many_tasks_it_cancelled() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let handles: Vec<_> = (0..300)
        .map(|_| rt.spawn(std::future::pending::<()>()))
        .collect();
    let finished = rt.spawn(async {});
    magpie_executor::block_on(finished).unwrap();
    // Generous: it returns as soon as the workers are out; only a starved machine needs more.
    let report = rt.shutdown_timeout(Duration::from_secs(60));
    assert_eq!(report.cancelled, 300);
    assert_eq!(report.still_running, 0);
    assert_eq!(report.workers_left_running, 0);
    for h in handles {
        assert!(magpie_executor::block_on(h).unwrap_err().is_cancelled());
    }
}

/// Tasks that do nothing but yield are, at any moment, queued with their `RUNNING` bit (a
/// carried entry, `raw.rs`) or being polled. Shutdown still cancels and reports every one,
/// drops each future once, and resolves every handle.
#[test]
fn tasks_that_keep_yielding_are_cancelled_and_reported_at_shutdown() {
    const YIELDERS: usize = if cfg!(miri) { 8 } else { 200 };
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let drops = DropCounter::default();
    let polled = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..YIELDERS)
        .map(|_| {
            let (guard, polled) = (drops.guard(), polled.clone());
            rt.spawn(async move {
                let _guard = guard;
                polled.fetch_add(1, Ordering::SeqCst);
                loop {
                    task::yield_now().await;
                }
            })
        })
        .collect();
    wait_until("every task polled", || {
        polled.load(Ordering::SeqCst) == YIELDERS
    });
    let report = rt.shutdown_timeout(Duration::from_secs(60));
    assert_eq!(report.cancelled, YIELDERS, "{report:?}");
    assert_eq!(report.still_running, 0, "{report:?}");
    assert_eq!(report.workers_left_running, 0);
    assert_eq!(drops.count(), YIELDERS, "every future dropped once");
    for h in handles {
        assert!(magpie_executor::block_on(h).unwrap_err().is_cancelled());
    }
}

/// `rx`'s next message, waited for 20 s at most (`what`: the panic's message after that).
fn received<T>(rx: &mpsc::Receiver<T>, what: &str) -> T {
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what}"))
}

/// Shuts down `rt`, whose only worker a task holds, with a 100 ms timeout: shutdown gives up on
/// that worker.
fn shut_down_past_its_stuck_worker(rt: Runtime) -> ShutdownReport {
    let report = rt.shutdown_timeout(Duration::from_millis(100));
    assert_eq!(report.workers_left_running, 1, "{report}");
    report
}

#[test]
fn shutdown_timeout_gives_up_on_a_task_that_never_yields() {
    // One worker, held by the stuck task: with a second, idle worker the count of workers left
    // running would depend on that worker getting the CPU within the timeout.
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let stuck = rt.spawn(async move {
        started_tx.send(()).unwrap();
        // Blocks its worker: the mistake shutdown_timeout protects against.
        received(&release_rx, "never released");
    });
    received(&started_rx, "the task never started");
    let report = shut_down_past_its_stuck_worker(rt);
    assert_eq!(report.still_running, 1);
    // Let the stuck worker go; it finishes its task and leaves.
    release_tx.send(()).unwrap();
    magpie_executor::block_on(stuck).unwrap();
}

/// A task is listed at its first wait, not at its spawn (`owned.rs`). Children spawned by a
/// task that then blocks its worker sit unpolled in that worker's queues when shutdown gives
/// up on the worker: shutdown takes them from there, cancels them and counts them with the
/// rest.
#[test]
fn tasks_queued_behind_a_stuck_worker_that_spawned_them_are_cancelled_and_reported() {
    const CHILDREN: usize = 50;
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let drops = DropCounter::default();
    let (children_tx, children_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let stuck = {
        let drops = drops.clone();
        rt.spawn(async move {
            let children: Vec<_> = (0..CHILDREN)
                .map(|_| {
                    let guard = drops.guard();
                    magpie_executor::spawn(async move { drop(guard) })
                })
                .collect();
            children_tx.send(children).unwrap();
            received(&release_rx, "never released");
        })
    };
    let children = received(&children_rx, "the task never started");
    let report = shut_down_past_its_stuck_worker(rt);
    assert_eq!(report.still_running, 1, "the stuck task: {report}");
    assert_eq!(report.cancelled, CHILDREN, "{report}");
    assert_eq!(drops.count(), CHILDREN, "every child's future was dropped");
    for child in children {
        assert!(magpie_executor::block_on(child).unwrap_err().is_cancelled());
    }
    release_tx.send(()).unwrap();
    magpie_executor::block_on(stuck).unwrap();
}

/// A task that blocks its worker in its very first poll is not on the live-task list yet
/// (`owned.rs`); shutdown still counts it as running. When that poll ends
/// in `Pending` after the list has closed, the task cannot be listed: it is cancelled there
/// and then, and its handle resolves.
#[test]
fn a_task_stuck_in_its_first_poll_is_reported_as_still_running_then_cancelled() {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (stuck_tx, stuck_rx) = mpsc::channel();
    let drops = DropCounter::default();
    let guard = drops.guard();
    drop(rt.spawn(async move {
        let stuck = magpie_executor::spawn(async move {
            let _guard = guard;
            started_tx.send(()).unwrap();
            received(&release_rx, "never released");
            // Its first wait, after shutdown closed the list.
            std::future::pending::<()>().await;
        });
        stuck_tx.send(stuck).unwrap();
    }));
    received(&started_rx, "the task never started");
    let report = shut_down_past_its_stuck_worker(rt);
    assert_eq!(report.still_running, 1, "{report}");
    assert_eq!(report.cancelled, 0, "{report}");
    release_tx.send(()).unwrap();
    let stuck = received(&stuck_rx, "the task was never spawned");
    assert!(magpie_executor::block_on(stuck).unwrap_err().is_cancelled());
    assert_eq!(drops.count(), 1);
}

/// The race the cancellation of a task left waiting must not lose: its poll ends, at a
/// moment that varies from round to round, around the end of the shutdown's timeout — before
/// the walk of the live-task list, during it, or after. Whoever comes second (the walk, or the
/// worker leaving) cancels the task: every round, its future is dropped once and its handle
/// resolves to a cancellation.
#[test]
fn a_task_whose_poll_ends_around_the_shutdown_timeout_is_always_cancelled() {
    const TIMEOUT: Duration = Duration::from_millis(20);
    for round in 0..24u64 {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let held = HeldTask::spawn(&rt, false);
        // Waits for good once released: nothing keeps its waker.
        drop(held.waker);
        let (stuck, drops, release_tx) = (held.handle, held.drops, held.release);
        // From 16 ms to about 25 ms after the shutdown starts: around its 20 ms timeout.
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_micros(16_000 + round * 400));
            release_tx.send(()).unwrap();
        });
        let report = rt.shutdown_timeout(TIMEOUT);
        release.join().unwrap();
        common::within_20s("the stuck task's handle resolves", move || {
            let outcome = magpie_executor::block_on(stuck);
            assert!(
                outcome.unwrap_err().is_cancelled(),
                "round {round}: {report}"
            );
        });
        assert_eq!(
            drops.count(),
            1,
            "round {round}: its future was dropped once"
        );
    }
}

/// A listed task (spawned from outside: on the list from its spawn) whose first poll holds
/// its worker until released, then returns `Pending` — having woken itself first (a yield)
/// when asked to.
struct HeldTask {
    handle: magpie_executor::JoinHandle<()>,
    /// The waker of that poll.
    waker: std::task::Waker,
    /// Ends the poll.
    release: mpsc::Sender<()>,
    /// Counts the drops of the task's future.
    drops: DropCounter,
}

impl HeldTask {
    /// Spawns it on `rt` and waits until its poll holds the worker.
    fn spawn(rt: &Runtime, yields: bool) -> HeldTask {
        let (started_tx, started_rx) = mpsc::channel::<std::task::Waker>();
        let (release, release_rx) = mpsc::channel::<()>();
        let drops = DropCounter::default();
        let guard = drops.guard();
        let handle = rt.spawn(async move {
            let _guard = guard;
            std::future::poll_fn(move |cx| {
                started_tx.send(cx.waker().clone()).unwrap();
                received(&release_rx, "never released");
                if yields {
                    cx.waker().wake_by_ref();
                }
                std::task::Poll::<()>::Pending
            })
            .await;
        });
        let waker = received(&started_rx, "the task never started");
        HeldTask {
            handle,
            waker,
            release,
            drops,
        }
    }
}

/// How the stuck poll of the test below ends.
#[derive(Clone, Copy, PartialEq)]
enum PollEnd {
    /// In a yield: the task goes back into the queue keeping `RUNNING` (a carried entry).
    Yields,
    /// In `Pending` after a wake from another thread during the poll (a plain entry).
    Woken,
    /// In `Pending`, with nobody left to wake it: the task waits, in no queue.
    Waits,
}

/// A listed task whose poll holds its worker while shutdown gives up on the worker is
/// reported as still running, and kept for that worker. When the poll ends — the task queued
/// again (its entry dropped as the worker leaves) or waiting — the worker sees the shutdown
/// and, as it leaves, cancels the task (`Shared::cancel_running_at_close`): its future is
/// dropped and its handle resolved, not left for a walk of the list that is over.
fn a_listed_task_whose_poll_outlasts_the_shutdown_is_cancelled_when_its_worker_leaves(
    end: PollEnd,
) {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let HeldTask {
        handle: stuck,
        waker,
        release: release_tx,
        drops,
    } = HeldTask::spawn(&rt, end == PollEnd::Yields);
    let report = shut_down_past_its_stuck_worker(rt);
    assert_eq!(report.still_running, 1, "{report}");
    match end {
        // During the poll: it ends in `Pending` with the task woken, queued once more.
        PollEnd::Woken => waker.wake(),
        // Nobody will wake it.
        PollEnd::Waits => drop(waker),
        PollEnd::Yields => {}
    }
    release_tx.send(()).unwrap();
    common::within_20s("the stuck task's handle resolves", move || {
        assert!(magpie_executor::block_on(stuck).unwrap_err().is_cancelled());
    });
    assert_eq!(drops.count(), 1, "its future was dropped");
}

#[test]
fn a_task_that_yields_after_its_poll_outlasted_the_shutdown_is_cancelled_when_its_worker_leaves() {
    a_listed_task_whose_poll_outlasts_the_shutdown_is_cancelled_when_its_worker_leaves(
        PollEnd::Yields,
    );
}

#[test]
fn a_task_woken_during_a_poll_that_outlasted_the_shutdown_is_cancelled_when_its_worker_leaves() {
    a_listed_task_whose_poll_outlasts_the_shutdown_is_cancelled_when_its_worker_leaves(
        PollEnd::Woken,
    );
}

#[test]
fn a_task_left_waiting_by_a_poll_that_outlasted_the_shutdown_is_cancelled_when_its_worker_leaves() {
    a_listed_task_whose_poll_outlasts_the_shutdown_is_cancelled_when_its_worker_leaves(
        PollEnd::Waits,
    );
}

/// A task that its worker's stuck poll spawns after shutdown gave up on that worker is
/// cancelled at once, as a spawn from outside would be: not left unlisted in the queue of a
/// worker that may never take from it again.
#[test]
fn a_spawn_from_a_worker_stuck_past_the_shutdown_is_cancelled_at_once() {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (spawn_tx, spawn_rx) = mpsc::channel::<()>();
    let (child_tx, child_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let drops = DropCounter::default();
    let guard = drops.guard();
    let stuck = rt.spawn(async move {
        started_tx.send(()).unwrap();
        received(&spawn_rx, "never told to spawn");
        let child = magpie_executor::spawn(async move { drop(guard) });
        child_tx.send(child).unwrap();
        // Still stuck: this worker takes nothing from its queues until released.
        received(&release_rx, "never released");
    });
    received(&started_rx, "the task never started");
    shut_down_past_its_stuck_worker(rt);
    spawn_tx.send(()).unwrap();
    let child = received(&child_rx, "the child was never spawned");
    common::within_20s("the child's handle resolves", move || {
        assert!(magpie_executor::block_on(child).unwrap_err().is_cancelled());
    });
    assert_eq!(drops.count(), 1);
    release_tx.send(()).unwrap();
    magpie_executor::block_on(stuck).unwrap();
}

#[test]
fn spawn_after_shutdown_resolves_to_cancelled() {
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let handle = rt.handle();
    drop(rt);
    let drops = DropCounter::default();
    let guard = drops.guard();
    let late = handle.spawn(async move { drop(guard) });
    assert!(magpie_executor::block_on(late).unwrap_err().is_cancelled());
    assert_eq!(drops.count(), 1);
}

#[test]
fn a_task_whose_drop_panics_does_not_stop_shutdown() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("drop exploded");
        }
    }
    let stopped = Arc::new(AtomicUsize::new(0));
    let rt = counted_runtime(2, &stopped);
    let drops = DropCounter::default();
    let polled = Arc::new(AtomicUsize::new(0));
    for i in 0..100 {
        let guard = drops.guard();
        let polled = polled.clone();
        drop(rt.spawn(async move {
            let _guard = guard;
            // Every tenth task panics when shutdown drops it.
            let _bomb = if i % 10 == 0 { Some(PanicOnDrop) } else { None };
            polled.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }));
    }
    wait_until("every task polled", || polled.load(Ordering::SeqCst) == 100);
    assert_eq!(rt.handle().alive_tasks(), 100);
    drop(rt);
    assert_eq!(drops.count(), 100);
    assert_eq!(stopped.load(Ordering::SeqCst), 2);
}

#[test]
fn a_task_that_panics_while_owning_its_runtime_does_not_hang_the_shutdown() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let handle = rt.handle();
    let (rt_tx, rt_rx) = mpsc::channel::<Runtime>();
    rt_tx.send(rt).unwrap();
    // Dropped by the shutdown that the unwinding drop of the runtime starts.
    let (cancelled_tx, cancelled_rx) = mpsc::channel::<()>();
    struct SendOnDrop(mpsc::Sender<()>);
    impl Drop for SendOnDrop {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }
    let bystander_polled = Arc::new(AtomicUsize::new(0));
    let polled = bystander_polled.clone();
    drop(handle.spawn(async move {
        let _guard = SendOnDrop(cancelled_tx);
        polled.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }));
    wait_until("bystander polled", || {
        bystander_polled.load(Ordering::SeqCst) == 1
    });
    let task = handle.spawn(async move {
        let _rt = rt_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        // Unwinding drops `_rt` on this worker thread, while it is panicking.
        panic!("task failed while owning its runtime");
    });
    // The shutdown completes (on its own thread) once the worker has left the task: the
    // bystander is cancelled. Before the fix the worker waited for itself inside the drop.
    cancelled_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the runtime dropped by a panicking task of its own shut down");
    let err = magpie_executor::block_on(task).unwrap_err();
    assert!(err.is_panic(), "{err:?}");
    wait_until("runtime shut down", || handle.alive_tasks() == 0);
}

/// Moves `rt` into one of its own tasks, which drops it there (catching the panic that
/// causes). Returns a handle to the runtime, the task, and what the drop did: `Err` with the
/// panic's message, or `Ok` if it returned.
fn drop_inside_its_own_task(rt: Runtime) -> (Handle, task::JoinHandle<()>, Result<(), String>) {
    let handle = rt.handle();
    let (tx, rx) = mpsc::channel();
    let (rt_tx, rt_rx) = mpsc::channel::<Runtime>();
    rt_tx.send(rt).unwrap();
    let task = handle.spawn(async move {
        let rt = rt_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(rt)));
        tx.send(result.map_err(panic_message)).unwrap();
    });
    let dropped = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    (handle, task, dropped)
}

#[test]
fn dropping_the_runtime_inside_its_own_task_panics_clearly() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let (handle, task, dropped) = drop_inside_its_own_task(rt);
    let msg = dropped.unwrap_err();
    assert!(
        msg.contains("dropped from inside one of its own tasks"),
        "{msg}"
    );
    // The runtime still shuts down (in the background): the task is finished or cancelled.
    let _ = magpie_executor::block_on(task);
    wait_until("runtime shut down", || handle.alive_tasks() == 0);
}

#[test]
fn a_runtime_dropped_inside_its_own_task_is_freed_once_shut_down() {
    // The runtime's shared state holds the hook, and with it `token`: the count falls back to
    // one only when the background shutdown has ended and the last reference (the workers',
    // the tasks' schedulers', the handle's) is gone.
    let token = Arc::new(());
    let t = token.clone();
    let rt = Runtime::builder()
        .worker_threads(2)
        .on_task_panic(move |_| {
            let _ = &t;
        })
        .build()
        .unwrap();
    let (handle, task, dropped) = drop_inside_its_own_task(rt);
    assert!(
        dropped.is_err(),
        "the drop panics (and hands the shutdown off)"
    );
    let _ = magpie_executor::block_on(task);
    drop(handle);
    wait_until("Shared freed", || Arc::strong_count(&token) == 1);
}
