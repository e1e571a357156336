//! `MAGPIE_REACTOR_SCHED_BATCH=0` keeps the reactor thread in the default scheduling policy.
//! Alone in its binary: the variable is read once, when the process's reactor thread starts.
#![cfg(any(target_os = "linux", target_os = "android"))]

use magpie_reactor::driver::DrivingTurn;
use std::sync::mpsc;
use std::task::{Wake, Waker};
use std::time::Duration;

struct Signal(std::sync::Mutex<mpsc::Sender<()>>);

impl Wake for Signal {
    fn wake(self: std::sync::Arc<Self>) {
        let _ = self.0.lock().unwrap().send(());
    }
}

#[test]
fn the_opt_out_variable_keeps_the_default_policy() {
    std::env::set_var("MAGPIE_REACTOR_SCHED_BATCH", "0");
    magpie_reactor::timer_hook::notify_reactor(); // starts the reactor thread
                                                  // Ask the reactor thread for the driving turn and wait for the hand-over: by then it has
                                                  // passed the point where it would have changed its policy.
    let (tx, rx) = mpsc::channel();
    let waker = Waker::from(std::sync::Arc::new(Signal(std::sync::Mutex::new(tx))));
    assert!(
        DrivingTurn::try_take(&waker).is_none(),
        "the reactor thread drives first"
    );
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the reactor thread hands the turn over");
    let mut found = false;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap();
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == "magpie-reactor" {
            let tid: libc::pid_t = task.file_name().to_str().unwrap().parse().unwrap();
            // SAFETY: `sched_getscheduler` only reads the scheduling policy of `tid`.
            let policy = unsafe { libc::sched_getscheduler(tid) };
            assert_eq!(policy, libc::SCHED_OTHER, "opted out of SCHED_BATCH");
            found = true;
        }
    }
    assert!(found, "the reactor thread is running");
}
