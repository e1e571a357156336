//! An idle runtime sleeps also while one of its workers holds the reactor's driving turn (it
//! waits in the poller, and the `magpie-reactor` thread sleeps without a timeout): no busy
//! polling, no periodic wake-ups — with a long timer pending too. Alone in its own test
//! binary, because it reads the CPU time of the whole process; its tests run one at a time.

// Unix only: the CPU time comes from `getrusage`.
#![cfg(unix)]

mod support;

use std::time::Duration;

use magpie::net::TcpListener;
use magpie::time::sleep;
use magpie::Runtime;
use support::{serial, wait_until_a_worker_drives, within, Driving};

/// The process's CPU time, user and system.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` only writes the struct we hand it; all-zero is a valid `rusage`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer to a `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A 2-worker runtime with the reactor started (a listener, kept alive, and one short sleep
/// so the timer store exists), warmed up, then left idle until a worker drives.
fn idle_runtime(name: &str) -> (Runtime, TcpListener) {
    let rt = Runtime::builder()
        .worker_threads(2)
        .thread_name(name)
        .build()
        .expect("build the runtime");
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    // In a task: a worker parks in the poller only if the reactor exists when it parks.
    rt.block_on(async {
        magpie::spawn(sleep(Duration::from_millis(1)))
            .await
            .expect("the sleeping task");
    });
    // Both workers run tasks and go idle again.
    let handles: Vec<_> = (0..1000).map(|i| rt.spawn(async move { i })).collect();
    for h in handles {
        magpie::block_on(h).expect("a warm-up task failed");
    }
    std::thread::sleep(Duration::from_millis(100));
    if wait_until_a_worker_drives(name, Duration::from_secs(10)) == Driving::CannotTell {
        eprintln!("note: /proc does not show what threads wait in; idle state not verified");
    }
    (rt, listener)
}

/// Asserts the process uses almost no CPU over one second.
fn assert_idle_for_a_second(what: &str) {
    let before = cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time() - before;
    assert!(
        used < Duration::from_millis(20),
        "{what}: used {used:?} of CPU in 1 s"
    );
}

/// Every wait of these tests is bounded: a hang fails with a message.
const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn an_idle_runtime_whose_worker_waits_in_the_poller_uses_almost_no_cpu() {
    let _serial = serial();
    within(LIMIT, "the idle runtime", || {
        let (rt, listener) = idle_runtime("idle-cpu");
        assert_idle_for_a_second("an idle runtime, a worker in the poller");
        // Still in that state afterwards (it did not leave it and come back).
        wait_until_a_worker_drives("idle-cpu", Duration::from_secs(10));
        drop(rt);
        drop(listener);
    });
}

#[test]
fn an_idle_runtime_with_a_one_hour_timer_pending_uses_almost_no_cpu() {
    let _serial = serial();
    within(LIMIT, "the idle runtime with a 1 h timer", || {
        let (rt, listener) = idle_runtime("idle-timer");
        let long = rt.spawn(sleep(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(100));
        wait_until_a_worker_drives("idle-timer", Duration::from_secs(10));
        assert_idle_for_a_second("an idle runtime with a 1 h timer pending");
        assert!(!long.is_finished(), "the 1 h sleep ended early");
        long.abort();
        drop(rt);
        drop(listener);
    });
}
