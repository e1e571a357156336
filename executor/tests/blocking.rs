//! `spawn_blocking`: the blocking pool.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{panic_message, wait_until};
use magpie_executor::Runtime;

#[test]
fn blocking_work_does_not_stall_the_workers() {
    // One worker. The blocking closure waits for a message that only an async task on that
    // worker sends: if the closure ran on the worker, this would deadlock.
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let (tx, rx) = mpsc::channel::<u32>();
    let out = rt.block_on(async move {
        let blocking = magpie_executor::spawn_blocking(move || {
            rx.recv_timeout(Duration::from_secs(20)).unwrap() * 2
        });
        magpie_executor::spawn(async move { tx.send(21).unwrap() })
            .await
            .unwrap();
        blocking.await.unwrap()
    });
    assert_eq!(out, 42);
}

#[test]
fn no_more_than_max_blocking_threads_run_at_once() {
    let rt = Runtime::builder()
        .worker_threads(1)
        .max_blocking_threads(2)
        .build()
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (running, peak) = (running.clone(), peak.clone());
            rt.spawn_blocking(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
                i
            })
        })
        .collect();
    let total: i32 = handles
        .into_iter()
        .map(|h| magpie_executor::block_on(h).unwrap())
        .sum();
    assert_eq!(total, (0..8).sum::<i32>());
    assert!(peak.load(Ordering::SeqCst) <= 2);
}

#[test]
fn a_blocking_panic_reaches_the_handle() {
    let rt = Runtime::new().unwrap();
    let err = rt
        .block_on(rt.spawn_blocking(|| panic!("blocking exploded")))
        .unwrap_err();
    assert_eq!(panic_message(err.into_panic()), "blocking exploded");
}

#[test]
fn idle_blocking_threads_exit_after_the_keep_alive() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let s = stopped.clone();
    let rt = Runtime::builder()
        .worker_threads(1)
        .blocking_keep_alive(Duration::from_millis(20))
        .on_thread_stop(move || {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    rt.block_on(rt.spawn_blocking(|| ())).unwrap();
    // The blocking thread stops by itself; the worker is still running.
    wait_until("blocking thread exited", || {
        stopped.load(Ordering::SeqCst) == 1
    });
    assert_eq!(rt.block_on(rt.spawn_blocking(|| 5)).unwrap(), 5);
}

#[test]
fn spawn_blocking_outside_a_runtime_panics_with_guidance() {
    let err =
        std::panic::catch_unwind(|| drop(magpie_executor::spawn_blocking(|| ()))).unwrap_err();
    let msg = panic_message(err);
    assert!(
        msg.contains("outside a magpie runtime") && msg.contains("Runtime::spawn_blocking"),
        "{msg}"
    );
}

#[test]
fn queued_blocking_tasks_are_cancelled_at_shutdown() {
    let rt = Runtime::builder()
        .worker_threads(1)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    // `first` holds the only blocking thread until `queued`'s closure is dropped, which only
    // its cancellation does: the order is forced, whatever the threads' timing.
    struct ReleaseOnDrop(mpsc::Sender<()>);
    impl Drop for ReleaseOnDrop {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let first = rt.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        release_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the queued blocking task was never cancelled");
    });
    started_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the first blocking task never started");
    let release = ReleaseOnDrop(release_tx);
    let queued = rt.spawn_blocking(move || drop(release));
    drop(rt);
    magpie_executor::block_on(first).unwrap();
    assert!(magpie_executor::block_on(queued)
        .unwrap_err()
        .is_cancelled());
}

/// A blocking thread that leaves after its keep-alive runs its stop hook before the
/// runtime's shutdown returns, even when the shutdown comes while the hook runs (the thread
/// was already out of the pool's count then, and the shutdown used to return without it).
#[test]
fn the_shutdown_waits_for_a_leaving_blocking_threads_stop_hook() {
    let hooks_done = Arc::new(AtomicUsize::new(0));
    let done = hooks_done.clone();
    let rt = Runtime::builder()
        .worker_threads(1)
        .thread_name("leaving")
        .blocking_keep_alive(Duration::from_millis(10))
        .on_thread_stop(move || {
            if std::thread::current().name() == Some("leaving-blocking") {
                std::thread::sleep(Duration::from_millis(300));
                done.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap();
    rt.block_on(rt.spawn_blocking(|| ())).unwrap();
    // The thread leaves after 10 ms idle, and is in its 300 ms hook by now (or, on a slow
    // machine, still idle: then the shutdown stops it, and waits for its hook too).
    std::thread::sleep(Duration::from_millis(60));
    drop(rt);
    assert_eq!(
        hooks_done.load(Ordering::SeqCst),
        1,
        "the stop hook ran to its end before the runtime's drop returned"
    );
}
