//! An idle runtime sleeps: no busy polling. Alone in its own test binary, because it reads
//! the CPU time of the whole process.

// Unix only: the CPU time comes from `getrusage`.
#![cfg(unix)]

fn cpu_time() -> std::time::Duration {
    // SAFETY: `getrusage` only writes the struct we hand it; all-zero is a valid `rusage`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer to a `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0);
    let tv = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec as u64)
            + std::time::Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[test]
fn an_idle_runtime_with_two_workers_uses_almost_no_cpu() {
    let rt = magpie_executor::Runtime::builder()
        .worker_threads(2)
        .build()
        .unwrap();
    // Warm it up so that both workers have run and gone idle.
    let handles: Vec<_> = (0..1000).map(|i| rt.spawn(async move { i })).collect();
    for h in handles {
        magpie_executor::block_on(h).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let before = cpu_time();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let used = cpu_time() - before;
    assert!(
        used < std::time::Duration::from_millis(20),
        "idle runtime used {used:?} of CPU in 1 s"
    );
    drop(rt);
}
