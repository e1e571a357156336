//! Cost of `timeout(1 s, ready)`: 1 000 000 calls whose inner future is ready on first poll,
//! against polling the bare ready future. The timer store is never touched on this path.
//!
//! For comparison it also times a registration round trip (`sleep(1 s)` polled once, which
//! registers, then dropped, which cancels) on one thread and on two threads at once (each
//! thread registers in its own store shard).
//!
//! Run: `cargo run --release -p magpie-timers --example timeout_ready`

use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use magpie_timers::timeout;

const CALLS: u32 = 1_000_000;

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn main() {
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);

    let start = Instant::now();
    for i in 0..CALLS {
        let fut = pin!(std::future::ready(black_box(i)));
        let _ = black_box(fut.poll(&mut cx));
    }
    let bare = start.elapsed();

    let start = Instant::now();
    for i in 0..CALLS {
        let fut = pin!(timeout(
            Duration::from_secs(1),
            std::future::ready(black_box(i))
        ));
        let out = fut.poll(&mut cx);
        assert!(out.is_ready());
        let _ = black_box(out);
    }
    let limited = start.elapsed();

    let start = Instant::now();
    for i in 0..CALLS {
        black_box(futures_lite::future::block_on(timeout(
            Duration::from_secs(1),
            std::future::ready(black_box(i)),
        )))
        .expect("ready wins");
    }
    let blocked = start.elapsed();

    let start = Instant::now();
    for _ in 0..CALLS {
        black_box(Instant::now());
    }
    let clock = start.elapsed();

    let round_trip = || {
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let start = Instant::now();
        for _ in 0..CALLS {
            let mut s = magpie_timers::sleep(Duration::from_secs(1));
            assert!(Pin::new(&mut s).poll(&mut cx).is_pending());
        }
        start.elapsed()
    };
    let one = round_trip();
    let two = std::thread::scope(|s| {
        let a = s.spawn(round_trip);
        let b = s.spawn(round_trip);
        a.join().unwrap().max(b.join().unwrap())
    });

    let per = |d: Duration| d.as_nanos() as f64 / f64::from(CALLS);
    println!("{CALLS} calls, ns per call:");
    println!("  Instant::now()                  {:>7.1}", per(clock));
    println!("  poll ready future               {:>7.1}", per(bare));
    println!("  poll timeout(1 s, ready)        {:>7.1}", per(limited));
    println!("  block_on(timeout(1 s, ready))   {:>7.1}", per(blocked));
    println!("  sleep(1 s): poll once + drop    {:>7.1}", per(one));
    println!(
        "  same, on 2 threads at once      {:>7.1}  (per call, slower thread)",
        per(two)
    );
}
