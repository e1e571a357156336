//! `MAGPIE_DEBUG=1` turns debug mode on with asyncio's 100 ms threshold. In a file of its own:
//! the environment is the process's, and every runtime built here sees it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use magpie_executor::Runtime;

#[test]
fn magpie_debug_turns_on_slow_poll_reports_at_100_ms() {
    // The only test in this process: no other thread reads the environment meanwhile.
    std::env::set_var("MAGPIE_DEBUG", "1");
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    let rt = Runtime::builder()
        .worker_threads(1)
        .on_slow_poll(move |r| sink.lock().unwrap().push(r.clone()))
        .build()
        .unwrap();
    // Below the threshold (by enough that a loaded machine's preemption does not cross it):
    // not reported.
    rt.block_on(rt.spawn(async { std::thread::sleep(Duration::from_millis(2)) }))
        .unwrap();
    // Above: reported.
    let slow = rt.spawn(async { std::thread::sleep(Duration::from_millis(150)) });
    let id = slow.id();
    rt.block_on(slow).unwrap();
    // Debug mode keeps per-task statistics for the dump.
    let waiting = rt.spawn(std::future::pending::<()>());
    while rt.handle().dump().tasks.iter().all(|t| t.polls != Some(1)) {
        std::thread::sleep(Duration::from_millis(1));
    }
    waiting.abort();
    drop(rt);
    let reports = reports.lock().unwrap();
    // What is reported took the threshold at least (the 2 ms poll only if this machine held
    // its worker off the core that long); the slow poll is reported once.
    let done: Vec<_> = reports.iter().filter(|r| !r.in_progress).collect();
    assert!(
        done.iter()
            .all(|r| r.duration >= Duration::from_millis(100)),
        "a poll under the threshold was reported: {reports:?}"
    );
    assert_eq!(
        done.iter().filter(|r| r.task == id).count(),
        1,
        "{reports:?}"
    );

    // `MAGPIE_DEBUG=0` leaves it off.
    std::env::set_var("MAGPIE_DEBUG", "0");
    let rt = Runtime::builder().worker_threads(1).build().unwrap();
    let waiting = rt.spawn(std::future::pending::<()>());
    std::thread::sleep(Duration::from_millis(20));
    assert!(rt.handle().dump().tasks.iter().all(|t| t.polls.is_none()));
    waiting.abort();
}
