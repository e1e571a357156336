//! Sync workloads: a contended lock, a bounded MPMC queue and a contended semaphore, each
//! runtime using its own ecosystem's primitive (magpie-sync; tokio::sync; async-lock and
//! async-channel).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use crate::{AsyncExecutorPool, Family, Size, Workload};

/// The sync workloads.
pub fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "lock_contended",
            family: Family::Sync,
            magpie: lock_contended::magpie,
            tokio: lock_contended::tokio,
            async_executor: lock_contended::async_executor,
        },
        Workload {
            name: "queue_mpmc",
            family: Family::Sync,
            magpie: queue_mpmc::magpie,
            tokio: queue_mpmc::tokio,
            async_executor: queue_mpmc::async_executor,
        },
        Workload {
            name: "semaphore_contended",
            family: Family::Sync,
            magpie: semaphore_contended::magpie,
            tokio: semaphore_contended::tokio,
            async_executor: semaphore_contended::async_executor,
        },
    ]
}

/// `lock_contended`: 8 tasks each take one lock 50 000 times to increment the counter it
/// guards; the counter must end at 400 000.
pub mod lock_contended {
    use super::*;

    const TASKS: usize = 8;

    fn rounds(size: Size) -> usize {
        size.pick(50_000, 5_000)
    }

    fn check(total: usize, size: Size) {
        assert_eq!(
            total,
            TASKS * rounds(size),
            "lock_contended: lost increments"
        );
    }

    /// On magpie, with `magpie::sync::Lock`.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let n = rounds(size);
        let lock = Arc::new(magpie::sync::Lock::new(0usize));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let lock = lock.clone();
                rt.spawn(async move {
                    for _ in 0..n {
                        *lock.lock().await += 1;
                    }
                })
            })
            .collect();
        rt.block_on(async {
            for task in tasks {
                task.await.expect("task failed");
            }
        });
        check(*lock.try_lock().expect("lock still held"), size);
    }

    /// On tokio, with `tokio::sync::Mutex`.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let n = rounds(size);
        let lock = Arc::new(tokio::sync::Mutex::new(0usize));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let lock = lock.clone();
                rt.spawn(async move {
                    for _ in 0..n {
                        *lock.lock().await += 1;
                    }
                })
            })
            .collect();
        rt.block_on(async {
            for task in tasks {
                task.await.expect("task failed");
            }
        });
        check(*lock.try_lock().expect("lock still held"), size);
    }

    /// On async-executor, with `async_lock::Mutex`.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let n = rounds(size);
        let lock = Arc::new(async_lock::Mutex::new(0usize));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let lock = lock.clone();
                pool.spawn(async move {
                    for _ in 0..n {
                        *lock.lock().await += 1;
                    }
                })
            })
            .collect();
        pool.block_on(async {
            for task in tasks {
                task.await;
            }
        });
        check(*lock.try_lock().expect("lock still held"), size);
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn check_accepts_the_full_count() {
            check(TASKS * rounds(Size::Quick), Size::Quick);
        }

        #[test]
        #[should_panic(expected = "lost increments")]
        fn check_catches_a_lost_increment() {
            check(TASKS * rounds(Size::Quick) - 1, Size::Quick);
        }
    }
}

/// `queue_mpmc`: a queue bounded at 1 024 items, 4 producers and 4 consumers moving 1 000 000
/// numbers; every number must come out exactly once (count and sum checked).
///
/// tokio has no multi-consumer queue (`tokio::sync::mpsc` has one receiver), so tokio runs
/// with `async-channel`, the queue tokio users reach for; async-executor uses it too.
pub mod queue_mpmc {
    use super::*;

    const CAPACITY: usize = 1_024;
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 4;

    fn items(size: Size) -> usize {
        size.pick(1_000_000, 100_000)
    }

    /// The numbers producer `p` sends: every `PRODUCERS`-th number from `p`.
    fn produced(p: usize, total: usize) -> impl Iterator<Item = usize> {
        (p..total).step_by(PRODUCERS)
    }

    /// Checks the consumers' (count, sum) pairs against the numbers 0..total.
    fn check(received: impl IntoIterator<Item = (usize, usize)>, total: usize) {
        let (count, sum) = received
            .into_iter()
            .fold((0, 0), |(c, s), (count, sum)| (c + count, s + sum));
        assert_eq!(count, total, "queue_mpmc: items lost or duplicated");
        assert_eq!(sum, total * (total - 1) / 2, "queue_mpmc: items corrupted");
    }

    /// On magpie, with `magpie::sync::Queue`.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let total = items(size);
        let queue = Arc::new(magpie::sync::Queue::bounded(CAPACITY));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let queue = queue.clone();
                rt.spawn(async move {
                    for item in produced(p, total) {
                        queue.put(item).await.expect("queue closed early");
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let queue = queue.clone();
                rt.spawn(async move {
                    let (mut count, mut sum) = (0, 0);
                    while let Ok(item) = queue.get().await {
                        count += 1;
                        sum += item;
                    }
                    (count, sum)
                })
            })
            .collect();
        let received = rt.block_on(async {
            for producer in producers {
                producer.await.expect("producer failed");
            }
            queue.close();
            let mut received = Vec::new();
            for consumer in consumers {
                received.push(consumer.await.expect("consumer failed"));
            }
            received
        });
        check(received, total);
    }

    /// On tokio, with `async_channel::bounded`.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let total = items(size);
        let (tx, rx) = async_channel::bounded(CAPACITY);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let tx = tx.clone();
                rt.spawn(async move {
                    for item in produced(p, total) {
                        tx.send(item).await.expect("queue closed early");
                    }
                })
            })
            .collect();
        drop(tx); // the channel closes when the last producer is done
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let rx = rx.clone();
                rt.spawn(async move {
                    let (mut count, mut sum) = (0, 0);
                    while let Ok(item) = rx.recv().await {
                        count += 1;
                        sum += item;
                    }
                    (count, sum)
                })
            })
            .collect();
        let received = rt.block_on(async {
            for producer in producers {
                producer.await.expect("producer failed");
            }
            let mut received = Vec::new();
            for consumer in consumers {
                received.push(consumer.await.expect("consumer failed"));
            }
            received
        });
        check(received, total);
    }

    /// On async-executor, with `async_channel::bounded`.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let total = items(size);
        let (tx, rx) = async_channel::bounded(CAPACITY);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let tx = tx.clone();
                pool.spawn(async move {
                    for item in produced(p, total) {
                        tx.send(item).await.expect("queue closed early");
                    }
                })
            })
            .collect();
        drop(tx); // the channel closes when the last producer is done
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let rx = rx.clone();
                pool.spawn(async move {
                    let (mut count, mut sum) = (0, 0);
                    while let Ok(item) = rx.recv().await {
                        count += 1;
                        sum += item;
                    }
                    (count, sum)
                })
            })
            .collect();
        let received = pool.block_on(async {
            for producer in producers {
                producer.await;
            }
            let mut received = Vec::new();
            for consumer in consumers {
                received.push(consumer.await);
            }
            received
        });
        check(received, total);
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn consume_all(total: usize, skip: Option<usize>) -> Vec<(usize, usize)> {
            (0..PRODUCERS)
                .map(|p| {
                    produced(p, total)
                        .filter(|&i| Some(i) != skip)
                        .fold((0, 0), |(c, s), i| (c + 1, s + i))
                })
                .collect()
        }

        #[test]
        fn producers_cover_every_number_once() {
            check(consume_all(1_000, None), 1_000);
        }

        #[test]
        #[should_panic(expected = "items lost")]
        fn check_catches_a_lost_item() {
            check(consume_all(1_000, Some(500)), 1_000);
        }

        #[test]
        #[should_panic(expected = "items corrupted")]
        fn check_catches_a_corrupted_item() {
            let mut received = consume_all(1_000, None);
            received[0].1 += 1;
            check(received, 1_000);
        }
    }
}

/// `semaphore_contended`: 16 tasks share a semaphore of 4 permits; each acquires a permit
/// 5 000 times and yields once while holding it, so waiters queue up. Checks that no more
/// than 4 permits were ever held at once and that every acquisition happened.
pub mod semaphore_contended {
    use super::*;

    const PERMITS: usize = 4;
    const TASKS: usize = 16;

    fn rounds(size: Size) -> usize {
        size.pick(5_000, 500)
    }

    /// Counts permits held at once, recording the most ever held.
    #[derive(Default)]
    struct Holders {
        now: AtomicUsize,
        most: AtomicUsize,
        acquisitions: AtomicUsize,
    }

    impl Holders {
        fn enter(&self) {
            let now = self.now.fetch_add(1, Relaxed) + 1;
            self.most.fetch_max(now, Relaxed);
            self.acquisitions.fetch_add(1, Relaxed);
        }

        fn leave(&self) {
            self.now.fetch_sub(1, Relaxed);
        }

        fn check(&self, size: Size) {
            let most = self.most.load(Relaxed);
            assert!(
                most <= PERMITS,
                "semaphore_contended: {most} permits held at once"
            );
            assert_eq!(
                self.acquisitions.load(Relaxed),
                TASKS * rounds(size),
                "semaphore_contended: acquisitions lost"
            );
        }
    }

    /// On magpie, with `magpie::sync::Semaphore`.
    pub fn magpie(rt: &magpie::Runtime, size: Size) {
        let n = rounds(size);
        let semaphore = Arc::new(magpie::sync::Semaphore::new(PERMITS));
        let holders = Arc::new(Holders::default());
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (semaphore, holders) = (semaphore.clone(), holders.clone());
                rt.spawn(async move {
                    for _ in 0..n {
                        let permit = semaphore.acquire().await.expect("semaphore closed");
                        holders.enter();
                        magpie::task::yield_now().await;
                        holders.leave();
                        drop(permit);
                    }
                })
            })
            .collect();
        rt.block_on(async {
            for task in tasks {
                task.await.expect("task failed");
            }
        });
        holders.check(size);
    }

    /// On tokio, with `tokio::sync::Semaphore`.
    pub fn tokio(rt: &tokio::runtime::Runtime, size: Size) {
        let n = rounds(size);
        let semaphore = Arc::new(tokio::sync::Semaphore::new(PERMITS));
        let holders = Arc::new(Holders::default());
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (semaphore, holders) = (semaphore.clone(), holders.clone());
                rt.spawn(async move {
                    for _ in 0..n {
                        let permit = semaphore.acquire().await.expect("semaphore closed");
                        holders.enter();
                        tokio::task::yield_now().await;
                        holders.leave();
                        drop(permit);
                    }
                })
            })
            .collect();
        rt.block_on(async {
            for task in tasks {
                task.await.expect("task failed");
            }
        });
        holders.check(size);
    }

    /// On async-executor, with `async_lock::Semaphore`.
    pub fn async_executor(pool: &AsyncExecutorPool, size: Size) {
        let n = rounds(size);
        let semaphore = Arc::new(async_lock::Semaphore::new(PERMITS));
        let holders = Arc::new(Holders::default());
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (semaphore, holders) = (semaphore.clone(), holders.clone());
                pool.spawn(async move {
                    for _ in 0..n {
                        let permit = semaphore.acquire().await;
                        holders.enter();
                        futures_lite::future::yield_now().await;
                        holders.leave();
                        drop(permit);
                    }
                })
            })
            .collect();
        pool.block_on(async {
            for task in tasks {
                task.await;
            }
        });
        holders.check(size);
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        #[should_panic(expected = "5 permits held at once")]
        fn check_catches_too_many_holders() {
            let holders = Holders::default();
            for _ in 0..PERMITS + 1 {
                holders.enter();
            }
            holders.check(Size::Quick);
        }

        #[test]
        #[should_panic(expected = "acquisitions lost")]
        fn check_catches_lost_acquisitions() {
            let holders = Holders::default();
            holders.enter();
            holders.leave();
            holders.check(Size::Quick);
        }
    }
}
