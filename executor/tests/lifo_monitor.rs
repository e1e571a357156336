//! A task in the LIFO slot of a worker stuck in a long poll does not wait for that poll: the
//! monitor (`runtime/monitor.rs`) moves it to another worker. Not under Miri: it blocks a
//! worker on purpose, for up to seconds of real time.
#![cfg(not(miri))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use magpie_executor::Runtime;

/// How long the stuck poll waits for its child before giving up: far beyond the monitor's
/// bound (two 5 ms looks), so only a child that cannot run at all makes the test fail.
const GIVE_UP_AFTER: Duration = Duration::from_secs(20);

/// A task spawns a child (into its worker's LIFO slot), then blocks its worker in one poll
/// until the child has run. Without the monitor the child could only run after that poll, so
/// the poll would give up; with it, the child runs on the other worker meanwhile.
fn child_runs_while_its_parent_blocks(workers: usize) {
    let rt = Runtime::builder().worker_threads(workers).build().unwrap();
    let ran_during_the_poll = rt.block_on(async {
        let parent = magpie_executor::spawn(async {
            let child_ran = Arc::new(AtomicBool::new(false));
            let flag = child_ran.clone();
            let child = magpie_executor::spawn(async move {
                flag.store(true, Ordering::SeqCst);
            });
            // The long poll: no `.await` until the child has run (or we give up).
            let start = Instant::now();
            while !child_ran.load(Ordering::SeqCst) && start.elapsed() < GIVE_UP_AFTER {
                std::thread::sleep(Duration::from_millis(1));
            }
            let ran = child_ran.load(Ordering::SeqCst);
            child.await.unwrap();
            ran
        });
        parent.await.unwrap()
    });
    assert!(
        ran_during_the_poll,
        "the child waited in the LIFO slot behind its parent's blocked poll"
    );
}

#[test]
fn a_task_in_the_lifo_slot_of_a_blocked_worker_runs_on_another_with_2_workers() {
    child_runs_while_its_parent_blocks(2);
}

#[test]
fn a_task_in_the_lifo_slot_of_a_blocked_worker_runs_on_another_with_4_workers() {
    child_runs_while_its_parent_blocks(4);
}

/// Many times in a row, with the stuck poll short: each child still runs exactly once (the
/// monitor and the worker race for the slot; only one of them gets each task).
#[test]
fn rescued_tasks_run_exactly_once() {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    const ROUNDS: usize = 200;
    rt.block_on(async {
        for round in 0..ROUNDS {
            let runs = runs.clone();
            magpie_executor::spawn(async move {
                let child = magpie_executor::spawn({
                    let runs = runs.clone();
                    async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                    }
                });
                // A poll of 0 to ~12 ms: sometimes the monitor takes the child, sometimes
                // this worker runs it right after.
                std::thread::sleep(Duration::from_micros((round % 5) as u64 * 3_000));
                child.await.unwrap();
            })
            .await
            .unwrap();
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), ROUNDS);
}
