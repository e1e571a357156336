//! The overflow batches (`runtime/overflow.rs`): a worker's full local queue moves half its
//! tasks out in batches that other workers take whole.
//!
//! Not run under Miri (`.ci/miri.sh`): each test needs a worker to fill its local queue past
//! 256 tasks in one poll. Under Miri two of them overran their 20 s bound, and the depth test
//! saw 63 tasks queued where 128 were expected — presumably the monitor, whose look comes every
//! 5 ms, emptying the slow poll's LIFO slot into the injector again and again. The batch queue
//! itself runs under Miri in its unit test (`runtime/overflow.rs`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

use common::{runtime, wait_until, within_20s, DropCounter};
use magpie_executor::{Handle, JoinHandle, Runtime};

/// Blocks one of `rt`'s workers in a task's poll until the returned sender sends (or goes),
/// and returns once it is blocked; the handle resolves once the task is released.
fn block_one_worker(rt: &Runtime) -> (Sender<()>, JoinHandle<()>) {
    let (blocked_tx, blocked) = channel();
    let (release, released) = channel::<()>();
    let blocker = rt.spawn(async move {
        blocked_tx.send(()).unwrap();
        let _ = released.recv();
    });
    blocked.recv().unwrap();
    (release, blocker)
}

/// A worker's full local queue moves half its tasks out in overflow batches, which another
/// worker takes whole. Here the other worker is blocked while the spawner spawns 2 000 children
/// (so its queue overflows), then the spawner blocks its own worker until every child has run:
/// the children it moved out run only if the other worker takes the batches (those left in
/// its queue it can steal, and the one in its LIFO slot the monitor moves to the injector).
#[test]
fn tasks_overflowed_by_a_blocked_worker_all_run_on_the_other() {
    within_20s("overflowed tasks", || {
        let rt = runtime(2);
        let children = 2_000;
        let (release_other, blocker) = block_one_worker(&rt);
        let ran = Arc::new(AtomicUsize::new(0));
        let ran_inside = ran.clone();
        let overflows = rt
            .block_on(rt.spawn(async move {
                for _ in 0..children {
                    let ran = ran_inside.clone();
                    drop(magpie_executor::spawn(async move {
                        ran.fetch_add(1, Ordering::Relaxed);
                    }));
                }
                let overflows = Handle::current()
                    .metrics()
                    .workers
                    .iter()
                    .map(|w| w.local_overflows)
                    .sum::<u64>();
                release_other.send(()).unwrap();
                // Blocks this worker (no await): only the other one can run the children.
                wait_until("every child to run while their spawner was blocked", || {
                    ran_inside.load(Ordering::Relaxed) == children
                });
                overflows
            }))
            .unwrap();
        rt.block_on(blocker).unwrap();
        assert_eq!(ran.load(Ordering::Relaxed), children);
        assert!(overflows > 0, "the spawner's queue never overflowed");
    });
}

/// Tasks waiting in overflow batches count in `injector_depth`, the global queue's depth: with
/// both workers blocked, a task that spawned 300 children has moved 128 of them out of its
/// queue (half of 256), and nobody has taken them.
#[test]
fn overflow_batches_count_in_the_global_queue_depth() {
    within_20s("overflow depth", || {
        let rt = runtime(2);
        let (release_tx, blocker) = block_one_worker(&rt);
        let (spawned_tx, spawned_rx) = channel();
        let (go_tx, go_rx) = channel::<()>();
        let ran = Arc::new(AtomicUsize::new(0));
        let ran_inside = ran.clone();
        // On the other worker: spawns, then blocks it too until the depth is read.
        let spawner = rt.spawn(async move {
            let handles: Vec<_> = (0..300)
                .map(|_| {
                    let ran = ran_inside.clone();
                    magpie_executor::spawn(async move {
                        ran.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            spawned_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            for handle in handles {
                handle.await.unwrap();
            }
        });
        spawned_rx.recv().unwrap();
        let depth = rt.handle().metrics().injector_depth;
        // 128 in batches, and the task in the spawner's LIFO slot if the monitor has moved it
        // to the injector meanwhile (the spawner's worker is blocked).
        assert!(
            depth >= 128,
            "injector_depth {depth}, expected the 128 overflowed tasks"
        );
        go_tx.send(()).unwrap();
        release_tx.send(()).unwrap();
        rt.block_on(spawner).unwrap();
        rt.block_on(blocker).unwrap();
        assert_eq!(ran.load(Ordering::Relaxed), 300);
        assert_eq!(rt.handle().metrics().injector_depth, 0);
    });
}

/// A worker looks at the global queue every `global_queue_interval` ticks, and at each look
/// takes either the injector's single entries or an overflow batch, alternately, so that
/// remote spawns queued in the injector do not keep the batches waiting. Here one worker is
/// blocked, and the other has 300 children of its task queued — 128 of them moved out in
/// batches — and 2 000 remote spawns waiting behind them in the injector. Every child runs
/// before the remote spawns are half done, but for at most one: the child in the spawner's LIFO
/// slot, which the monitor may move to the injector behind the remote spawns while the spawner
/// blocks. Taking the singles first at every look would leave all 128 batched children for
/// last.
#[test]
fn overflow_batches_do_not_wait_behind_a_full_injector() {
    within_20s("overflow batches behind remote spawns", || {
        const REMOTE: usize = 2_000;
        let rt = runtime(2);
        // One worker blocked until the end.
        let (release_b, blocker) = block_one_worker(&rt);
        // On the other: 300 children, then blocked until the remote spawns are queued.
        let remote_ran = Arc::new(AtomicUsize::new(0));
        let children_ran = Arc::new(AtomicUsize::new(0));
        let late_children = Arc::new(AtomicUsize::new(0));
        let (spawned_tx, spawned) = channel();
        let (release_a, a_released) = channel::<()>();
        let spawner = {
            let (remote_ran, children_ran) = (remote_ran.clone(), children_ran.clone());
            let late_children = late_children.clone();
            rt.spawn(async move {
                for _ in 0..300 {
                    let (remote_ran, children_ran) = (remote_ran.clone(), children_ran.clone());
                    let late_children = late_children.clone();
                    drop(magpie_executor::spawn(async move {
                        if remote_ran.load(Ordering::SeqCst) >= REMOTE / 2 {
                            late_children.fetch_add(1, Ordering::SeqCst);
                        }
                        children_ran.fetch_add(1, Ordering::SeqCst);
                    }));
                }
                spawned_tx.send(()).unwrap();
                a_released.recv().unwrap();
            })
        };
        spawned.recv().unwrap();
        for _ in 0..REMOTE {
            let remote_ran = remote_ran.clone();
            drop(rt.spawn(async move {
                remote_ran.fetch_add(1, Ordering::SeqCst);
            }));
        }
        release_a.send(()).unwrap();
        rt.block_on(spawner).unwrap();
        wait_until("every child and every remote spawn to run", || {
            children_ran.load(Ordering::SeqCst) == 300
                && remote_ran.load(Ordering::SeqCst) == REMOTE
        });
        release_b.send(()).unwrap();
        rt.block_on(blocker).unwrap();
        let late = late_children.load(Ordering::SeqCst);
        assert!(
            late <= 1,
            "{late} children ran after half of the {REMOTE} remote spawns"
        );
        assert!(rt
            .handle()
            .metrics()
            .workers
            .iter()
            .any(|w| w.local_overflows > 0));
    });
}

/// Shutdown with both workers stuck in a poll: the 300 children one of the stuck tasks spawned
/// were never polled (so not on the live-task list yet, `runtime/owned.rs`), and sit in its LIFO
/// slot (or, moved by the monitor, the injector), its local queue and 128 of them in overflow
/// batches. Step 3 of the shutdown takes them from all of these while the list is still open,
/// lists them and cancels them: every child's future is dropped before `shutdown_timeout`
/// returns, and the report counts all 300 as cancelled (a batch left for step 4's drain would
/// be cancelled after the list closed, and not counted).
#[test]
fn unpolled_children_in_overflow_batches_of_stuck_workers_are_cancelled_and_reported() {
    within_20s("shutdown past stuck workers", || {
        let rt = runtime(2);
        let (release_b, blocker) = block_one_worker(&rt);
        let dropped = DropCounter::default();
        let (spawned_tx, spawned) = channel();
        let (release_a, a_released) = channel::<()>();
        let spawner = {
            let dropped = dropped.clone();
            rt.spawn(async move {
                for _ in 0..300 {
                    let guard = dropped.guard();
                    drop(magpie_executor::spawn(async move {
                        let _guard = guard;
                        std::future::pending::<()>().await;
                    }));
                }
                spawned_tx.send(()).unwrap();
                let _ = a_released.recv();
            })
        };
        spawned.recv().unwrap();
        let report = rt.shutdown_timeout(std::time::Duration::from_millis(100));
        assert_eq!(report.workers_left_running, 2, "{report}");
        assert_eq!(dropped.count(), 300, "{report}");
        assert_eq!(report.cancelled, 300, "{report}");
        // The spawner and the blocker, each in its worker's poll.
        assert_eq!(report.still_running, 2, "{report}");
        release_a.send(()).unwrap();
        release_b.send(()).unwrap();
        // Their workers, given up on, finish those polls and the tasks complete.
        magpie_executor::block_on(spawner).unwrap();
        magpie_executor::block_on(blocker).unwrap();
    });
}
