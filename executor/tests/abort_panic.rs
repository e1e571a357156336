//! Panics, aborts and detaching.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use common::{panic_message, runtime, DropCounter, Signal};
use magpie_executor::task;

#[test]
fn a_panic_reaches_the_join_handle_and_the_worker_survives() {
    let rt = runtime(1);
    let before = rt
        .block_on(rt.spawn(async { std::thread::current().id() }))
        .unwrap();
    let err = rt
        .block_on(rt.spawn(async { panic!("task exploded") }))
        .unwrap_err();
    assert!(err.is_panic() && !err.is_cancelled());
    assert!(
        err.to_string()
            .contains("panicked with message \"task exploded\""),
        "{err}"
    );
    assert_eq!(panic_message(err.into_panic()), "task exploded");
    // Same single worker thread, still alive and running tasks.
    let after = rt
        .block_on(rt.spawn(async { std::thread::current().id() }))
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn a_panic_in_a_detached_task_is_contained() {
    let rt = runtime(1);
    drop(rt.spawn(async { panic!("nobody is listening") }));
    assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
}

#[test]
fn abort_before_the_task_runs() {
    let rt = runtime(1);
    // Keep the only worker busy so the next task cannot start.
    let (release, wait) = mpsc::channel::<()>();
    let blocker = rt.spawn(async move {
        wait.recv_timeout(std::time::Duration::from_secs(20))
            .unwrap()
    });
    let polled = Arc::new(AtomicBool::new(false));
    let drops = DropCounter::default();
    let (p, guard) = (polled.clone(), drops.guard());
    let handle = rt.spawn(async move {
        let _guard = guard;
        p.store(true, Ordering::SeqCst);
    });
    handle.abort();
    release.send(()).unwrap();
    let err = magpie_executor::block_on(handle).unwrap_err();
    assert!(err.is_cancelled());
    assert!(
        !polled.load(Ordering::SeqCst),
        "an aborted task never starts"
    );
    assert_eq!(drops.count(), 1, "its future was dropped");
    magpie_executor::block_on(blocker).unwrap();
}

#[test]
fn abort_while_the_task_is_running_cancels_at_its_next_yield() {
    let rt = runtime(2);
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let drops = DropCounter::default();
    let guard = drops.guard();
    let reached_end = Arc::new(AtomicBool::new(false));
    let r = reached_end.clone();
    let handle = rt.spawn(async move {
        let _guard = guard;
        started_tx.send(()).unwrap();
        // Still inside the first poll when `abort` is called.
        go_rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap();
        task::yield_now().await;
        r.store(true, Ordering::SeqCst);
    });
    started_rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap();
    handle.abort();
    go_tx.send(()).unwrap();
    assert!(magpie_executor::block_on(handle)
        .unwrap_err()
        .is_cancelled());
    assert!(!reached_end.load(Ordering::SeqCst));
    assert_eq!(drops.count(), 1);
}

/// A task that yields goes back into its worker's queue keeping its `RUNNING` bit (a carried
/// entry, `raw.rs`). Aborted while that entry waits, it is cancelled when the entry comes up:
/// never polled again. On one worker the order is fixed: the yielding task spawns the aborter
/// into the LIFO slot, which runs right after the poll and before the queued yield.
#[test]
fn a_task_aborted_while_its_yield_waits_in_the_queue_is_not_polled_again() {
    let rt = runtime(1);
    let polls = Arc::new(AtomicUsize::new(0));
    let drops = DropCounter::default();
    let result = {
        let (polls, drops) = (polls.clone(), drops.clone());
        rt.block_on(rt.spawn(async move {
            let own_handle = Arc::new(std::sync::Mutex::new(None::<task::AbortHandle>));
            let yielder = {
                let (own_handle, polls, guard) = (own_handle.clone(), polls.clone(), drops.guard());
                // Into the LIFO slot: it runs once this task waits below.
                magpie_executor::spawn(async move {
                    let _guard = guard;
                    // Bounded, so that a task polled again ends (and the test fails) at once.
                    for _ in 0..3 {
                        polls.fetch_add(1, Ordering::SeqCst);
                        // Set before the first poll; taken by the first.
                        let own = own_handle.lock().unwrap().take();
                        // Into the LIFO slot, ahead of this task's own yield.
                        magpie_executor::spawn(async move {
                            if let Some(own) = own {
                                own.abort();
                            }
                        });
                        task::yield_now().await;
                    }
                })
            };
            *own_handle.lock().unwrap() = Some(yielder.abort_handle());
            yielder.await
        }))
    };
    let err = result.unwrap().unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert_eq!(
        polls.load(Ordering::SeqCst),
        1,
        "polled again after the abort"
    );
    assert_eq!(drops.count(), 1, "its future was dropped");
}

#[test]
fn abort_after_completion_keeps_the_output() {
    let rt = runtime(1);
    let handle = rt.spawn(async { 11 });
    common::wait_until("task finished", || handle.is_finished());
    handle.abort();
    assert_eq!(magpie_executor::block_on(handle).unwrap(), 11);
}

#[test]
fn abort_an_idle_task_from_another_thread() {
    let rt = runtime(2);
    let drops = DropCounter::default();
    let guard = drops.guard();
    let never = Signal::default();
    let handle = rt.spawn(async move {
        let _guard = guard;
        never.wait().await;
    });
    let aborter = handle.abort_handle();
    std::thread::spawn(move || aborter.abort()).join().unwrap();
    assert!(magpie_executor::block_on(handle)
        .unwrap_err()
        .is_cancelled());
    assert_eq!(drops.count(), 1);
}

#[test]
fn dropping_the_join_handle_detaches_the_task() {
    let rt = runtime(2);
    let done = Signal::default();
    let go = Signal::default();
    let (d, g) = (done.clone(), go.clone());
    drop(rt.spawn(async move {
        g.wait().await;
        d.set();
    }));
    go.set();
    rt.block_on(done.wait());
    assert!(done.is_set());
}

#[test]
fn a_detached_task_output_is_dropped_exactly_once() {
    let rt = runtime(2);
    let drops = DropCounter::default();
    let outputs: Vec<_> = (0..1000).map(|_| drops.guard()).collect();
    for out in outputs {
        drop(rt.spawn(async move { out }));
    }
    drop(rt);
    assert_eq!(drops.count(), 1000);
}

#[test]
fn join_error_for_a_cancelled_task_is_not_a_panic() {
    let rt = runtime(1);
    let handle = rt.spawn(std::future::pending::<()>());
    handle.abort();
    let err = rt.block_on(handle).unwrap_err();
    assert!(err.is_cancelled());
    assert!(err.to_string().ends_with("was cancelled"), "{err}");
    let err = err.try_into_panic().unwrap_err();
    let msg = panic_message(std::panic::catch_unwind(move || err.into_panic()).unwrap_err());
    assert!(msg.contains("called on a cancelled task"), "{msg}");
    let as_dyn: Box<dyn std::error::Error + Send + Sync> = Box::new(rt.block_on(async {
        let h = magpie_executor::spawn(std::future::pending::<()>());
        h.abort();
        h.await.unwrap_err()
    }));
    assert!(as_dyn.to_string().contains("cancelled"));
}
