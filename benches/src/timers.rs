//! Timer workloads: many short sleeps, and timeouts around futures that are already ready.
//! magpie uses magpie-timers, tokio `tokio::time`, async-executor async-io's `Timer`.

use std::time::{Duration, Instant};

use futures_lite::FutureExt as _;

use crate::{AsyncExecutorPool, Family, Size, Workload};

/// The timer workloads.
pub fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "timers_100k",
            family: Family::Timers,
            magpie: timers_100k::magpie,
            tokio: timers_100k::tokio,
            async_executor: timers_100k::async_executor,
        },
        Workload {
            name: "timeout_ready",
            family: Family::Timers,
            magpie: timeout_ready::magpie,
            tokio: timeout_ready::tokio,
            async_executor: timeout_ready::async_executor,
        },
    ]
}

/// `timers_100k`: 100 000 tasks each sleep 1 ms; every sleep must last at least 1 ms.
pub mod timers_100k {
    use super::*;

    const SLEEP: Duration = Duration::from_millis(1);

    fn tasks(size: Size) -> usize {
        size.pick(100_000, 10_000)
    }

    /// Panics if a sleep ended early.
    fn check_slept(start: Instant) {
        let slept = start.elapsed();
        assert!(slept >= SLEEP, "timers_100k: a 1 ms sleep took {slept:?}");
    }

    /// On magpie, with `magpie::time::sleep`.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let handles: Vec<_> = (0..tasks(size))
            .map(|_| {
                rt.spawn(async {
                    let start = Instant::now();
                    magpie::time::sleep(SLEEP).await;
                    check_slept(start);
                })
            })
            .collect();
        rt.block_on(async {
            for handle in handles {
                handle.await.expect("sleeping task failed");
            }
        });
    }

    /// On tokio, with `tokio::time::sleep`.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let handles: Vec<_> = (0..tasks(size))
            .map(|_| {
                rt.spawn(async {
                    let start = Instant::now();
                    tokio::time::sleep(SLEEP).await;
                    check_slept(start);
                })
            })
            .collect();
        rt.block_on(async {
            for handle in handles {
                handle.await.expect("sleeping task failed");
            }
        });
    }

    /// On async-executor, with `async_io::Timer`.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let handles: Vec<_> = (0..tasks(size))
            .map(|_| {
                pool.spawn(async {
                    let start = Instant::now();
                    async_io::Timer::after(SLEEP).await;
                    check_slept(start);
                })
            })
            .collect();
        pool.block_on(async {
            for handle in handles {
                handle.await;
            }
        });
    }
}

/// `timeout_ready`: one task makes 1 000 000 `timeout(1 s, ready)` calls; every one must
/// give the ready value back.
pub mod timeout_ready {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(1);

    fn calls(size: Size) -> usize {
        size.pick(1_000_000, 100_000)
    }

    fn check(sum: usize, size: Size) {
        let n = calls(size);
        assert_eq!(sum, n * (n - 1) / 2, "timeout_ready: wrong values");
    }

    /// On magpie, with `magpie::time::timeout`.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let n = calls(size);
        let sum = rt.block_on(rt.spawn(async move {
            let mut sum = 0;
            for i in 0..n {
                sum += magpie::time::timeout(LIMIT, async { i })
                    .await
                    .expect("a ready future timed out");
            }
            sum
        }));
        check(sum.expect("task failed"), size);
    }

    /// On tokio, with `tokio::time::timeout`.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let n = calls(size);
        let sum = rt.block_on(rt.spawn(async move {
            let mut sum = 0;
            for i in 0..n {
                sum += tokio::time::timeout(LIMIT, async { i })
                    .await
                    .expect("a ready future timed out");
            }
            sum
        }));
        check(sum.expect("task failed"), size);
    }

    /// On async-executor: smol's idiom, the future raced (`or`) against an async-io `Timer`.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let n = calls(size);
        let sum = pool.block_on(pool.spawn(async move {
            let mut sum = 0;
            for i in 0..n {
                sum += async { Some(i) }
                    .or(async {
                        async_io::Timer::after(LIMIT).await;
                        None
                    })
                    .await
                    .expect("a ready future timed out");
            }
            sum
        }));
        check(sum, size);
    }
}
