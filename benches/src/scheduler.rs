//! Scheduler workloads: spawning, waking and yielding, the executor alone.
//!
//! The first six are tokio's own `rt_multi_threaded` benchmarks (same sizes), so the figures
//! can be set beside theirs; `spawn_nested` is async-executor's style of recursive spawning;
//! `spawn_join_local` and `spawn_join_remote` keep every `JoinHandle` and await them all, so a
//! join handle's whole life (spawn, completion, output handed back) is what they time.
//! Where a workload waits for the end from outside the runtime it uses a std channel, the same
//! for every runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_executor::Executor;

use crate::{AsyncExecutorPool, Family, Size, Workload};

/// The scheduler workloads.
pub fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "spawn_many_local",
            family: Family::Scheduler,
            magpie: spawn_many_local::magpie,
            tokio: spawn_many_local::tokio,
            async_executor: spawn_many_local::async_executor,
        },
        Workload {
            name: "spawn_many_remote_idle",
            family: Family::Scheduler,
            magpie: spawn_many_remote_idle::magpie,
            tokio: spawn_many_remote_idle::tokio,
            async_executor: spawn_many_remote_idle::async_executor,
        },
        Workload {
            name: "spawn_many_remote_busy",
            family: Family::Scheduler,
            magpie: spawn_many_remote_busy::magpie,
            tokio: spawn_many_remote_busy::tokio,
            async_executor: spawn_many_remote_busy::async_executor,
        },
        Workload {
            name: "yield_many",
            family: Family::Scheduler,
            magpie: yield_many::magpie,
            tokio: yield_many::tokio,
            async_executor: yield_many::async_executor,
        },
        Workload {
            name: "ping_pong",
            family: Family::Scheduler,
            magpie: ping_pong::magpie,
            tokio: ping_pong::tokio,
            async_executor: ping_pong::async_executor,
        },
        Workload {
            name: "chained_spawn",
            family: Family::Scheduler,
            magpie: chained_spawn::magpie,
            tokio: chained_spawn::tokio,
            async_executor: chained_spawn::async_executor,
        },
        Workload {
            name: "spawn_nested",
            family: Family::Scheduler,
            magpie: spawn_nested::magpie,
            tokio: spawn_nested::tokio,
            async_executor: spawn_nested::async_executor,
        },
        Workload {
            name: "spawn_join_local",
            family: Family::Scheduler,
            magpie: spawn_join_local::magpie,
            tokio: spawn_join_local::tokio,
            async_executor: spawn_join_local::async_executor,
        },
        Workload {
            name: "spawn_join_remote",
            family: Family::Scheduler,
            magpie: spawn_join_remote::magpie,
            tokio: spawn_join_remote::tokio,
            async_executor: spawn_join_remote::async_executor,
        },
        Workload {
            name: "spawn_await_one",
            family: Family::Scheduler,
            magpie: spawn_await_one::magpie,
            tokio: spawn_await_one::tokio,
            async_executor: spawn_await_one::async_executor,
        },
    ]
}

/// Waits (outside the runtime) for the one completion signal a workload sends, with a
/// generous safety net so that a lost wake-up fails the run instead of hanging it.
fn wait_done<T>(done: &mpsc::Receiver<T>, workload: &str) -> T {
    done.recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("{workload}: no completion signal after 120 s (lost task?)"))
}

/// Checks the sum of the outputs of the `spawn_join_*` tasks, `0 + 1 + … + (n - 1)`: a lost
/// or misdelivered output shows, and the work cannot be optimised away.
fn check_join_sum(sum: usize, n: usize, workload: &str) {
    assert_eq!(
        sum,
        n * (n - 1) / 2,
        "{workload}: wrong sum of task outputs"
    );
}

/// A task that counts `remaining` down and signals `done` if it was the last one.
fn count_down(remaining: &AtomicUsize, done: &mpsc::SyncSender<()>) {
    if remaining.fetch_sub(1, Relaxed) == 1 {
        done.send(()).expect("the waiter is gone");
    }
}

/// `spawn_many_local`: a task on a worker spawns 10 000 tasks that each count an atomic down;
/// the last one signals completion.
///
/// tokio's version spawns from `block_on`'s thread, which is not a worker, so its spawns are
/// in fact remote; here a root task does the spawning so they are local, as the name says.
pub mod spawn_many_local {
    use super::*;

    fn tasks(size: Size) -> usize {
        size.pick(10_000, 1_000)
    }

    /// On magpie.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let n = tasks(size);
        let remaining = Arc::new(AtomicUsize::new(n));
        let (done_tx, done) = mpsc::sync_channel(1);
        let root = rt.spawn(async move {
            for _ in 0..n {
                let (remaining, done_tx) = (remaining.clone(), done_tx.clone());
                drop(magpie::spawn(
                    async move { count_down(&remaining, &done_tx) },
                ));
            }
        });
        wait_done(&done, "spawn_many_local");
        rt.block_on(root).expect("root task failed");
    }

    /// On tokio.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let n = tasks(size);
        let remaining = Arc::new(AtomicUsize::new(n));
        let (done_tx, done) = mpsc::sync_channel(1);
        let root = rt.spawn(async move {
            for _ in 0..n {
                let (remaining, done_tx) = (remaining.clone(), done_tx.clone());
                drop(tokio::spawn(
                    async move { count_down(&remaining, &done_tx) },
                ));
            }
        });
        wait_done(&done, "spawn_many_local");
        rt.block_on(root).expect("root task failed");
    }

    /// On async-executor.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let n = tasks(size);
        let remaining = Arc::new(AtomicUsize::new(n));
        let (done_tx, done) = mpsc::sync_channel(1);
        let ex = pool.executor().clone();
        let root = pool.spawn(async move {
            for _ in 0..n {
                let (remaining, done_tx) = (remaining.clone(), done_tx.clone());
                ex.spawn(async move { count_down(&remaining, &done_tx) })
                    .detach();
            }
        });
        wait_done(&done, "spawn_many_local");
        pool.block_on(root);
    }
}

/// `spawn_many_remote_idle`: 10 000 empty tasks spawned from outside the runtime, then every
/// handle awaited.
pub mod spawn_many_remote_idle {
    use super::*;

    fn tasks(size: Size) -> usize {
        size.pick(10_000, 1_000)
    }

    /// On magpie.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let handles: Vec<_> = (0..tasks(size))
            .map(|i| rt.spawn(async move { i }))
            .collect();
        rt.block_on(async {
            for (i, handle) in handles.into_iter().enumerate() {
                assert_eq!(handle.await.expect("task failed"), i);
            }
        });
    }

    /// On tokio.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let handles: Vec<_> = (0..tasks(size))
            .map(|i| rt.spawn(async move { i }))
            .collect();
        rt.block_on(async {
            for (i, handle) in handles.into_iter().enumerate() {
                assert_eq!(handle.await.expect("task failed"), i);
            }
        });
    }

    /// On async-executor.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let handles: Vec<_> = (0..tasks(size))
            .map(|i| pool.spawn(async move { i }))
            .collect();
        pool.block_on(async {
            for (i, handle) in handles.into_iter().enumerate() {
                assert_eq!(handle.await, i);
            }
        });
    }
}

/// `spawn_many_remote_busy`: `spawn_many_remote_idle` while 8 background tasks loop on
/// `yield_now` plus a 10 µs busy stall, so the workers are never idle.
pub mod spawn_many_remote_busy {
    use super::*;

    const BUSY_TASKS: usize = 8;

    fn tasks(size: Size) -> usize {
        size.pick(10_000, 1_000)
    }

    /// Spins for 10 µs, like a short piece of real work (tokio's `stall`).
    pub(crate) fn stall() {
        let start = Instant::now();
        while start.elapsed() < Duration::from_micros(10) {
            std::hint::spin_loop();
        }
    }

    /// Checks that every busy task did run, then that the spawned tasks all came back.
    fn check(busy_rounds: &AtomicUsize) {
        assert!(
            busy_rounds.load(Relaxed) >= BUSY_TASKS,
            "spawn_many_remote_busy: the busy tasks never ran"
        );
    }

    /// On magpie.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let running = Arc::new(AtomicBool::new(true));
        let rounds = Arc::new(AtomicUsize::new(0));
        let busy: Vec<_> = (0..BUSY_TASKS)
            .map(|_| {
                let (running, rounds) = (running.clone(), rounds.clone());
                rt.spawn(async move {
                    rounds.fetch_add(1, Relaxed);
                    while running.load(Relaxed) {
                        magpie::task::yield_now().await;
                        stall();
                    }
                })
            })
            .collect();
        let handles: Vec<_> = (0..tasks(size))
            .map(|i| rt.spawn(async move { i }))
            .collect();
        rt.block_on(async {
            for (i, handle) in handles.into_iter().enumerate() {
                assert_eq!(handle.await.expect("task failed"), i);
            }
            running.store(false, Relaxed);
            for handle in busy {
                handle.await.expect("busy task failed");
            }
        });
        check(&rounds);
    }

    /// On tokio.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let running = Arc::new(AtomicBool::new(true));
        let rounds = Arc::new(AtomicUsize::new(0));
        let busy: Vec<_> = (0..BUSY_TASKS)
            .map(|_| {
                let (running, rounds) = (running.clone(), rounds.clone());
                rt.spawn(async move {
                    rounds.fetch_add(1, Relaxed);
                    while running.load(Relaxed) {
                        tokio::task::yield_now().await;
                        stall();
                    }
                })
            })
            .collect();
        let handles: Vec<_> = (0..tasks(size))
            .map(|i| rt.spawn(async move { i }))
            .collect();
        rt.block_on(async {
            for (i, handle) in handles.into_iter().enumerate() {
                assert_eq!(handle.await.expect("task failed"), i);
            }
            running.store(false, Relaxed);
            for handle in busy {
                handle.await.expect("busy task failed");
            }
        });
        check(&rounds);
    }

    /// On async-executor.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let running = Arc::new(AtomicBool::new(true));
        let rounds = Arc::new(AtomicUsize::new(0));
        let busy: Vec<_> = (0..BUSY_TASKS)
            .map(|_| {
                let (running, rounds) = (running.clone(), rounds.clone());
                pool.spawn(async move {
                    rounds.fetch_add(1, Relaxed);
                    while running.load(Relaxed) {
                        futures_lite::future::yield_now().await;
                        stall();
                    }
                })
            })
            .collect();
        let handles: Vec<_> = (0..tasks(size))
            .map(|i| pool.spawn(async move { i }))
            .collect();
        pool.block_on(async {
            for (i, handle) in handles.into_iter().enumerate() {
                assert_eq!(handle.await, i);
            }
            running.store(false, Relaxed);
            for handle in busy {
                handle.await;
            }
        });
        check(&rounds);
    }
}

/// `yield_many`: 200 tasks, each yielding 1 000 times.
pub mod yield_many {
    use super::*;

    const TASKS: usize = 200;

    fn yields(size: Size) -> usize {
        size.pick(1_000, 100)
    }

    /// On magpie.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let n = yields(size);
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                rt.spawn(async move {
                    let mut count = 0;
                    for _ in 0..n {
                        magpie::task::yield_now().await;
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        rt.block_on(async {
            for handle in handles {
                assert_eq!(handle.await.expect("task failed"), n);
            }
        });
    }

    /// On tokio.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let n = yields(size);
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                rt.spawn(async move {
                    let mut count = 0;
                    for _ in 0..n {
                        tokio::task::yield_now().await;
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        rt.block_on(async {
            for handle in handles {
                assert_eq!(handle.await.expect("task failed"), n);
            }
        });
    }

    /// On async-executor.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let n = yields(size);
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                pool.spawn(async move {
                    let mut count = 0;
                    for _ in 0..n {
                        futures_lite::future::yield_now().await;
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        pool.block_on(async {
            for handle in handles {
                assert_eq!(handle.await, n);
            }
        });
    }
}

/// `ping_pong`: a root task spawns 1 000 tasks; each makes two oneshots and spawns a child
/// that echoes the first one's message back on the second; the last to finish signals.
pub mod ping_pong {
    use super::*;

    fn pings(size: Size) -> usize {
        size.pick(1_000, 200)
    }

    /// On magpie, with `magpie::sync::oneshot`.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let n = pings(size);
        let remaining = Arc::new(AtomicUsize::new(n));
        let (done_tx, done) = mpsc::sync_channel(1);
        drop(rt.spawn(async move {
            for i in 0..n {
                let (remaining, done_tx) = (remaining.clone(), done_tx.clone());
                drop(magpie::spawn(async move {
                    let (ping_tx, ping_rx) = magpie::sync::oneshot();
                    let (pong_tx, pong_rx) = magpie::sync::oneshot();
                    drop(magpie::spawn(async move {
                        let ball: usize = ping_rx.await.expect("ping lost");
                        pong_tx.send(ball + 1).expect("pong receiver gone");
                    }));
                    ping_tx.send(i).expect("ping receiver gone");
                    assert_eq!(pong_rx.await.expect("pong lost"), i + 1);
                    count_down(&remaining, &done_tx);
                }));
            }
        }));
        wait_done(&done, "ping_pong");
    }

    /// On tokio, with `tokio::sync::oneshot`.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let n = pings(size);
        let remaining = Arc::new(AtomicUsize::new(n));
        let (done_tx, done) = mpsc::sync_channel(1);
        drop(rt.spawn(async move {
            for i in 0..n {
                let (remaining, done_tx) = (remaining.clone(), done_tx.clone());
                drop(tokio::spawn(async move {
                    let (ping_tx, ping_rx) = tokio::sync::oneshot::channel();
                    let (pong_tx, pong_rx) = tokio::sync::oneshot::channel();
                    drop(tokio::spawn(async move {
                        let ball: usize = ping_rx.await.expect("ping lost");
                        pong_tx.send(ball + 1).expect("pong receiver gone");
                    }));
                    ping_tx.send(i).expect("ping receiver gone");
                    assert_eq!(pong_rx.await.expect("pong lost"), i + 1);
                    count_down(&remaining, &done_tx);
                }));
            }
        }));
        wait_done(&done, "ping_pong");
    }

    /// On async-executor, with `async_channel::bounded(1)` as the oneshot (smol has none).
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let n = pings(size);
        let remaining = Arc::new(AtomicUsize::new(n));
        let (done_tx, done) = mpsc::sync_channel(1);
        let ex = pool.executor().clone();
        pool.spawn(async move {
            for i in 0..n {
                let (remaining, done_tx) = (remaining.clone(), done_tx.clone());
                let inner = ex.clone();
                ex.spawn(async move {
                    let (ping_tx, ping_rx) = async_channel::bounded(1);
                    let (pong_tx, pong_rx) = async_channel::bounded(1);
                    inner
                        .spawn(async move {
                            let ball: usize = ping_rx.recv().await.expect("ping lost");
                            pong_tx.try_send(ball + 1).expect("pong receiver gone");
                        })
                        .detach();
                    ping_tx.try_send(i).expect("ping receiver gone");
                    assert_eq!(pong_rx.recv().await.expect("pong lost"), i + 1);
                    count_down(&remaining, &done_tx);
                })
                .detach();
            }
        })
        .detach();
        wait_done(&done, "ping_pong");
    }
}

/// `chained_spawn`: a chain of 1 000 tasks, each spawning the next; the last one reports the
/// chain's length.
pub mod chained_spawn {
    use super::*;

    fn links(size: Size) -> usize {
        size.pick(1_000, 200)
    }

    fn check(done: &mpsc::Receiver<usize>, n: usize) {
        assert_eq!(wait_done(done, "chained_spawn"), n, "chain broken");
    }

    fn magpie_link(done: mpsc::SyncSender<usize>, left: usize, length: usize) {
        if left == 0 {
            done.send(length).expect("the waiter is gone");
        } else {
            drop(magpie::spawn(async move {
                magpie_link(done, left - 1, length + 1)
            }));
        }
    }

    fn tokio_link(done: mpsc::SyncSender<usize>, left: usize, length: usize) {
        if left == 0 {
            done.send(length).expect("the waiter is gone");
        } else {
            drop(tokio::spawn(async move {
                tokio_link(done, left - 1, length + 1)
            }));
        }
    }

    fn async_executor_link(
        ex: Arc<Executor<'static>>,
        done: mpsc::SyncSender<usize>,
        left: usize,
        length: usize,
    ) {
        if left == 0 {
            done.send(length).expect("the waiter is gone");
        } else {
            ex.clone()
                .spawn(async move { async_executor_link(ex, done, left - 1, length + 1) })
                .detach();
        }
    }

    /// On magpie.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let n = links(size);
        let (done_tx, done) = mpsc::sync_channel(1);
        drop(rt.spawn(async move { magpie_link(done_tx, n, 0) }));
        check(&done, n);
    }

    /// On tokio.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let n = links(size);
        let (done_tx, done) = mpsc::sync_channel(1);
        drop(rt.spawn(async move { tokio_link(done_tx, n, 0) }));
        check(&done, n);
    }

    /// On async-executor.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let n = links(size);
        let (done_tx, done) = mpsc::sync_channel(1);
        let ex = pool.executor().clone();
        pool.spawn(async move { async_executor_link(ex, done_tx, n, 0) })
            .detach();
        check(&done, n);
    }
}

/// `spawn_nested`: a tree of tasks 5 levels deep with fan-out 10 (11 111 tasks); each task
/// spawns its children, awaits their handles and returns the size of its subtree.
pub mod spawn_nested {
    use super::*;

    const FAN_OUT: usize = 10;

    fn depth(size: Size) -> u32 {
        size.pick(5, 4) as u32
    }

    /// The number of tasks in a tree of `depth` levels.
    fn tree_size(depth: u32) -> usize {
        (0..depth).map(|level| FAN_OUT.pow(level)).sum()
    }

    type Node = Pin<Box<dyn Future<Output = usize> + Send>>;

    fn magpie_node(levels_below: u32) -> Node {
        Box::pin(async move {
            let children: Vec<_> = (0..if levels_below == 0 { 0 } else { FAN_OUT })
                .map(|_| magpie::spawn(magpie_node(levels_below - 1)))
                .collect();
            let mut total = 1;
            for child in children {
                total += child.await.expect("child failed");
            }
            total
        })
    }

    fn tokio_node(levels_below: u32) -> Node {
        Box::pin(async move {
            let children: Vec<_> = (0..if levels_below == 0 { 0 } else { FAN_OUT })
                .map(|_| tokio::spawn(tokio_node(levels_below - 1)))
                .collect();
            let mut total = 1;
            for child in children {
                total += child.await.expect("child failed");
            }
            total
        })
    }

    fn async_executor_node(ex: Arc<Executor<'static>>, levels_below: u32) -> Node {
        Box::pin(async move {
            let children: Vec<_> = (0..if levels_below == 0 { 0 } else { FAN_OUT })
                .map(|_| ex.spawn(async_executor_node(ex.clone(), levels_below - 1)))
                .collect();
            let mut total = 1;
            for child in children {
                total += child.await;
            }
            total
        })
    }

    /// On magpie.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let depth = depth(size);
        let total = rt
            .block_on(rt.spawn(magpie_node(depth - 1)))
            .expect("root failed");
        assert_eq!(total, tree_size(depth), "spawn_nested: tasks lost");
    }

    /// On tokio.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let depth = depth(size);
        let total = rt
            .block_on(rt.spawn(tokio_node(depth - 1)))
            .expect("root failed");
        assert_eq!(total, tree_size(depth), "spawn_nested: tasks lost");
    }

    /// On async-executor.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let depth = depth(size);
        let root = pool.spawn(async_executor_node(pool.executor().clone(), depth - 1));
        let total = pool.block_on(root);
        assert_eq!(total, tree_size(depth), "spawn_nested: tasks lost");
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn tree_size_counts_every_level() {
            assert_eq!(super::tree_size(1), 1);
            assert_eq!(super::tree_size(5), 11_111);
        }
    }
}

/// `spawn_join_local`: a task on a worker spawns 10 000 tasks that each return their index,
/// keeps every handle, then awaits them in order and sums the outputs.
///
/// Unlike `spawn_many_local`, the handles are kept and awaited, so each task's output goes back
/// through its join handle, and most handles are awaited after their task already finished.
pub mod spawn_join_local {
    use super::*;

    fn tasks(size: Size) -> usize {
        size.pick(10_000, 1_000)
    }

    /// On magpie.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let n = tasks(size);
        let sum = rt
            .block_on(rt.spawn(async move {
                let handles: Vec<_> = (0..n).map(|i| magpie::spawn(async move { i })).collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await.expect("task failed");
                }
                sum
            }))
            .expect("root task failed");
        check_join_sum(sum, n, "spawn_join_local");
    }

    /// On tokio.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let n = tasks(size);
        let sum = rt
            .block_on(rt.spawn(async move {
                let handles: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await.expect("task failed");
                }
                sum
            }))
            .expect("root task failed");
        check_join_sum(sum, n, "spawn_join_local");
    }

    /// On async-executor.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let n = tasks(size);
        let ex = pool.executor().clone();
        let sum = pool.block_on(pool.spawn(async move {
            let handles: Vec<_> = (0..n).map(|i| ex.spawn(async move { i })).collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await;
            }
            sum
        }));
        check_join_sum(sum, n, "spawn_join_local");
    }
}

/// `spawn_join_remote`: 10 000 tasks that each return their index, spawned from outside the
/// runtime (the thread that calls the workload, which is no worker), then every handle awaited
/// in order inside `block_on` and the outputs summed.
///
/// The same spawns as `spawn_many_remote_idle`; kept as its own row so it pairs with
/// `spawn_join_local` (same tasks, same check, only where the spawns come from differs).
pub mod spawn_join_remote {
    use super::*;

    fn tasks(size: Size) -> usize {
        size.pick(10_000, 1_000)
    }

    /// On magpie.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let n = tasks(size);
        let handles: Vec<_> = (0..n).map(|i| rt.spawn(async move { i })).collect();
        let sum = rt.block_on(async {
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.expect("task failed");
            }
            sum
        });
        check_join_sum(sum, n, "spawn_join_remote");
    }

    /// On tokio.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let n = tasks(size);
        let handles: Vec<_> = (0..n).map(|i| rt.spawn(async move { i })).collect();
        let sum = rt.block_on(async {
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.expect("task failed");
            }
            sum
        });
        check_join_sum(sum, n, "spawn_join_remote");
    }

    /// On async-executor.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let n = tasks(size);
        let handles: Vec<_> = (0..n).map(|i| pool.spawn(async move { i })).collect();
        let sum = pool.block_on(async {
            let mut sum = 0;
            for handle in handles {
                sum += handle.await;
            }
            sum
        });
        check_join_sum(sum, n, "spawn_join_remote");
    }
}

/// `spawn_await_one`: 64 handler tasks, all runnable at once, each spawning one subtask and
/// awaiting it at once, 500 times (a request handler's subrequest, with the run queue busy
/// with the other handlers). Every await's latency (spawn to output in hand) is recorded, and
/// `compare` prints the awaits per second and their p99 beside the time
/// ([`crate::http::record_stats`]).
///
/// This is the case the `spawn_join_*` rows do not show: a joiner woken by the one task it
/// waits for, where running it at once (a LIFO slot) and queueing it behind the other
/// handlers (magpie's join wake, docs/architecture.md) differ in latency.
pub mod spawn_await_one {
    use super::*;

    /// Handler tasks.
    const HANDLERS: usize = 64;

    fn awaits(size: Size) -> usize {
        size.pick(500, 50)
    }

    /// Checks the handlers' sums (each `1 + 2 + … + n`), and leaves the request stats.
    fn finish(results: Vec<(usize, Vec<Duration>)>, n: usize, elapsed: Duration) {
        assert_eq!(
            results.len(),
            HANDLERS,
            "spawn_await_one: a handler is missing"
        );
        let mut latencies = Vec::with_capacity(HANDLERS * n);
        for (sum, handler_latencies) in results {
            assert_eq!(
                sum,
                n * (n + 1) / 2,
                "spawn_await_one: wrong sum of outputs"
            );
            latencies.extend(handler_latencies);
        }
        crate::http::record_stats(latencies, elapsed);
    }

    /// On magpie.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let n = awaits(size);
        let start = Instant::now();
        let results = rt
            .block_on(rt.spawn(async move {
                let handlers: Vec<_> = (0..HANDLERS)
                    .map(|_| {
                        magpie::spawn(async move {
                            let mut latencies = Vec::with_capacity(n);
                            let mut sum = 0;
                            for i in 0..n {
                                let asked = Instant::now();
                                let sub = magpie::spawn(async move { std::hint::black_box(i) + 1 });
                                sum += sub.await.expect("subtask failed");
                                latencies.push(asked.elapsed());
                            }
                            (sum, latencies)
                        })
                    })
                    .collect();
                let mut results = Vec::with_capacity(HANDLERS);
                for handler in handlers {
                    results.push(handler.await.expect("handler failed"));
                }
                results
            }))
            .expect("root task failed");
        finish(results, n, start.elapsed());
    }

    /// On tokio.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let n = awaits(size);
        let start = Instant::now();
        let results = rt
            .block_on(rt.spawn(async move {
                let handlers: Vec<_> = (0..HANDLERS)
                    .map(|_| {
                        tokio::spawn(async move {
                            let mut latencies = Vec::with_capacity(n);
                            let mut sum = 0;
                            for i in 0..n {
                                let asked = Instant::now();
                                let sub = tokio::spawn(async move { std::hint::black_box(i) + 1 });
                                sum += sub.await.expect("subtask failed");
                                latencies.push(asked.elapsed());
                            }
                            (sum, latencies)
                        })
                    })
                    .collect();
                let mut results = Vec::with_capacity(HANDLERS);
                for handler in handlers {
                    results.push(handler.await.expect("handler failed"));
                }
                results
            }))
            .expect("root task failed");
        finish(results, n, start.elapsed());
    }

    /// On async-executor.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let n = awaits(size);
        let ex = pool.executor().clone();
        let start = Instant::now();
        let results = pool.block_on(pool.spawn(async move {
            let handlers: Vec<_> = (0..HANDLERS)
                .map(|_| {
                    let inner = ex.clone();
                    ex.spawn(async move {
                        let mut latencies = Vec::with_capacity(n);
                        let mut sum = 0;
                        for i in 0..n {
                            let asked = Instant::now();
                            let sub = inner.spawn(async move { std::hint::black_box(i) + 1 });
                            sum += sub.await;
                            latencies.push(asked.elapsed());
                        }
                        (sum, latencies)
                    })
                })
                .collect();
            let mut results = Vec::with_capacity(HANDLERS);
            for handler in handlers {
                results.push(handler.await);
            }
            results
        }));
        finish(results, n, start.elapsed());
    }
}
