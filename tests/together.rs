//! The parts together, through the facade: sync primitives, timers and sockets on magpie's
//! own runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use magpie::prelude::*;
use magpie::sync::{Lock, Queue, Semaphore};
use magpie::time::{sleep, timeout};

#[test]
fn lock_increments_from_eight_tasks_on_magpie() {
    let total = magpie::run(async {
        let lock = Arc::new(Lock::new(0u64));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let lock = lock.clone();
                magpie::spawn(async move {
                    for _ in 0..10_000 {
                        *lock.lock().await += 1;
                    }
                })
            })
            .collect();
        for t in magpie::join_all(tasks).await {
            t.unwrap();
        }
        let n = *lock.lock().await;
        n
    });
    assert_eq!(total, 80_000);
}

#[test]
fn queue_moves_every_item_between_magpie_tasks() {
    let sum = magpie::run(async {
        let queue = Queue::bounded(16);
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let queue = queue.clone();
                magpie::spawn(async move {
                    let mut sum = 0u64;
                    while let Ok(v) = queue.get().await {
                        sum += v;
                    }
                    sum
                })
            })
            .collect();
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let queue = queue.clone();
                magpie::spawn(async move {
                    for i in 0..10_000 {
                        queue.put(p * 10_000 + i).await.unwrap();
                    }
                })
            })
            .collect();
        for p in magpie::join_all(producers).await {
            p.unwrap();
        }
        queue.close();
        let mut sum = 0;
        for c in magpie::join_all(consumers).await {
            sum += c.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..40_000u64).sum::<u64>());
}

#[test]
fn semaphore_admits_at_most_three_magpie_tasks() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let peak = magpie::run(async {
        let sem = Arc::new(Semaphore::new(3));
        let inside = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (sem, inside, peak) = (sem.clone(), inside.clone(), peak.clone());
                magpie::spawn(async move {
                    let _permit = sem.acquire().await.unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    sleep(Duration::from_millis(1)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        magpie::join_all(tasks).await;
        peak.load(Ordering::SeqCst)
    });
    assert!((1..=3).contains(&peak), "{peak}");
}

#[test]
fn sleeps_and_timeouts_on_magpie_never_fire_early() {
    magpie::run(async {
        let start = Instant::now();
        let sleeps: Vec<_> = (1..=20u64)
            .map(|ms| {
                magpie::spawn(async move {
                    let t = Instant::now();
                    sleep(Duration::from_millis(ms)).await;
                    (ms, t.elapsed())
                })
            })
            .collect();
        for s in magpie::join_all(sleeps).await {
            let (ms, took) = s.unwrap();
            assert!(
                took >= Duration::from_millis(ms),
                "{ms} ms sleep took {took:?}"
            );
        }
        let cut = timeout(Duration::from_millis(20), sleep(Duration::from_secs(60))).await;
        assert!(cut.is_err());
        assert!(start.elapsed() >= Duration::from_millis(20));
    });
}

#[test]
fn tcp_echo_through_the_facade() {
    magpie::run(async {
        let listener = magpie::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = magpie::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&buf).await.unwrap();
        });
        let mut client = magpie::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        server.await.unwrap();
    });
}
