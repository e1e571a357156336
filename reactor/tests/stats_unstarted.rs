//! `stats()` before anything has started the reactor: all zeros, and the reactor thread is not
//! started by asking. A file of its own, so its process has touched no source or timer.

use magpie_reactor::{stats, Async, ReactorStats};

/// Whether a thread named `magpie-reactor` runs in this process (Linux: `/proc/self/task`).
#[cfg(target_os = "linux")]
fn reactor_thread_running() -> bool {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .any(|name| name.trim_end() == "magpie-reactor")
}

#[test]
fn unstarted_reactor_reports_zeros_and_stays_unstarted() {
    assert_eq!(stats(), ReactorStats::default());
    assert_eq!(stats(), ReactorStats::default());
    // Had `stats()` started it, the thread would have had ample time to name itself.
    #[cfg(target_os = "linux")]
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(
            !reactor_thread_running(),
            "stats() started the reactor thread"
        );
    }

    // Once something registers, the reactor runs and the source shows up.
    let a = Async::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    assert_eq!(stats().sources, 1);
    // The new thread names itself once it runs: give it a moment. (This also shows that the
    // check above can see the thread.)
    #[cfg(target_os = "linux")]
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !reactor_thread_running() {
            assert!(std::time::Instant::now() < deadline, "no reactor thread");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    drop(a);
    assert_eq!(stats().sources, 0);
}
