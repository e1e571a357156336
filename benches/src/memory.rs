//! The memory figure: bytes of resident memory per spawned task that sits idle, waiting.
//!
//! One runtime is measured per process (the `compare` binary re-runs itself with
//! `--memory-child NAME`), so memory one runtime keeps cached cannot be counted against
//! another. Every task waits on the same executor-agnostic `magpie::sync::Event`, so the
//! runtimes differ only in what a task costs them.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtimes::{magpie_runtime, tokio_runtime};
use crate::{AsyncExecutorPool, RuntimeKind};

/// This process's resident set size in bytes, from `/proc/self/statm`.
///
/// # Errors
///
/// When `/proc/self/statm` cannot be read or parsed (not Linux).
#[cfg(not(unix))]
pub fn rss_bytes() -> io::Result<u64> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "resident memory is read from /proc/self/statm (Linux)",
    ))
}

/// This process's resident set size in bytes, from `/proc/self/statm`.
///
/// # Errors
///
/// When `/proc/self/statm` cannot be read or parsed (not Linux).
#[cfg(unix)]
pub fn rss_bytes() -> io::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let resident_pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected statm format"))?;
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page_size =
        u64::try_from(page_size).map_err(|_| io::Error::other("sysconf(_SC_PAGESIZE) failed"))?;
    Ok(resident_pages * page_size)
}

/// What every idle task shares: the event they wait on, and counts of how far they got.
#[derive(Default)]
struct Idle {
    event: magpie::sync::Event,
    waiting: AtomicUsize,
    finished: AtomicUsize,
}

impl Idle {
    /// The body of every task: announce, wait for the event, count out.
    async fn task(self: Arc<Self>) {
        self.waiting.fetch_add(1, Relaxed);
        self.event.wait().await;
        self.finished.fetch_add(1, Relaxed);
    }
}

/// Waits until `counter` reaches `target`, panicking after a generous safety net.
fn wait_for(counter: &AtomicUsize, target: usize, what: &str) {
    let start = Instant::now();
    while counter.load(Relaxed) < target {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "idle_task_memory: only {} of {target} tasks {what}",
            counter.load(Relaxed)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Spawns `tasks` tasks on a fresh `kind` runtime with `workers` threads, all waiting on one
/// event, and returns the growth of this process's RSS per task once all of them wait. Then
/// sets the event and checks that every task finished.
///
/// Run it in a process of its own: the RSS of the whole process is measured.
///
/// # Panics
///
/// If `/proc/self/statm` cannot be read, or not every task starts and finishes.
pub fn idle_task_bytes(kind: RuntimeKind, workers: usize, tasks: usize) -> f64 {
    let idle = Arc::new(Idle::default());
    let rss = || rss_bytes().expect("cannot read /proc/self/statm");
    let (before, after) = match kind {
        RuntimeKind::Magpie => {
            let rt = magpie_runtime(workers);
            let before = rss();
            for _ in 0..tasks {
                drop(rt.spawn(idle.clone().task()));
            }
            wait_for(&idle.waiting, tasks, "started");
            let after = rss();
            idle.event.set();
            wait_for(&idle.finished, tasks, "finished");
            (before, after)
        }
        RuntimeKind::Tokio => {
            let rt = tokio_runtime(workers);
            let before = rss();
            for _ in 0..tasks {
                drop(rt.spawn(idle.clone().task()));
            }
            wait_for(&idle.waiting, tasks, "started");
            let after = rss();
            idle.event.set();
            wait_for(&idle.finished, tasks, "finished");
            (before, after)
        }
        RuntimeKind::AsyncExecutor => {
            let pool = AsyncExecutorPool::new(workers);
            let before = rss();
            for _ in 0..tasks {
                pool.spawn(idle.clone().task()).detach();
            }
            wait_for(&idle.waiting, tasks, "started");
            let after = rss();
            idle.event.set();
            wait_for(&idle.finished, tasks, "finished");
            (before, after)
        }
    };
    after.saturating_sub(before) as f64 / tasks as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_grows_when_memory_is_touched() {
        let before = rss_bytes().unwrap();
        let block = vec![1u8; 64 << 20];
        let after = rss_bytes().unwrap();
        assert!(
            after >= before + (32 << 20),
            "RSS went from {before} to {after} after touching 64 MiB"
        );
        drop(block);
    }

    #[test]
    fn idle_tasks_all_wait_then_finish_on_every_runtime() {
        for kind in RuntimeKind::ALL {
            // Panics unless all 2 000 tasks reach the wait and then finish.
            let bytes = idle_task_bytes(kind, 2, 2_000);
            assert!(bytes.is_finite(), "{}: {bytes}", kind.name());
        }
    }
}
