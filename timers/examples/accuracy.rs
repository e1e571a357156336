//! Timer accuracy: lateness (completion minus deadline) of 1 ms, 10 ms and 100 ms sleeps fired
//! by the reactor thread, one sleep at a time on a `block_on` thread. Prints median and p99.
//!
//! Run: `cargo run --release -p magpie-timers --example accuracy`

use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use magpie_timers::sleep_until;

fn main() {
    println!(
        "{:>8} {:>8} {:>14} {:>14} {:>14}",
        "sleep", "samples", "median late", "p99 late", "max late"
    );
    for (millis, samples) in [(1u64, 1000usize), (10, 300), (100, 50)] {
        let mut late: Vec<Duration> = (0..samples)
            .map(|_| {
                let deadline = Instant::now() + Duration::from_millis(millis);
                block_on(sleep_until(deadline));
                let done = Instant::now();
                assert!(done >= deadline, "a sleep completed early");
                done - deadline
            })
            .collect();
        late.sort();
        let at = |q: f64| late[((late.len() - 1) as f64 * q).round() as usize];
        println!(
            "{:>6}ms {:>8} {:>14?} {:>14?} {:>14?}",
            millis,
            samples,
            at(0.5),
            at(0.99),
            late[late.len() - 1]
        );
    }
}
