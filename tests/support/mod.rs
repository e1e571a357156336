//! Helpers shared by the driving-turn test binaries: bounded waits, a serial lock, and a look
//! at what the runtime's threads are blocked in (Linux's `/proc/self/task/*/syscall`), so that
//! a test can make sure an idle worker really waits in the poller before it checks anything.

#![allow(dead_code)] // each test binary uses its own subset

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tests in one binary run in parallel, but the reactor is process-wide: a worker of another
/// test's runtime could drive it and hide the path under test. Every test takes this lock.
static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the binary's serial lock (a failed test poisons it; the next one goes on).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` on a thread of its own and fails with a clear message if it has not returned
/// within `limit` (a hang: a lost wakeup, a timer that never fires). A panic in `f` is
/// re-raised here. On a timeout the stuck thread is left behind.
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("test-body".into())
        .spawn(move || {
            let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
        })
        .expect("spawn the test body's thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("{what}: did not finish within {limit:?} (a hang)"),
    }
}

/// A small xorshift generator: the tests need varied durations and sizes, not good randomness.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Burns CPU on the calling thread for `d` (a long poll that never yields).
pub fn spin_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// One thread of this process, as `/proc` shows it.
#[derive(Debug)]
struct ThreadState {
    name: String,
    /// `None` when the thread is running (not blocked in a system call).
    syscall: Option<(i64, Vec<u64>)>,
}

/// What `/proc/self/task/*` says: not on this system (Wine, for one, shows the Linux host's
/// `/proc`, whose threads are not this Windows program's).
#[cfg(not(target_os = "linux"))]
fn threads() -> Option<Vec<ThreadState>> {
    None
}

/// What `/proc/self/task/*` says, or `None` where it cannot be read (a kernel without
/// `/proc/<tid>/syscall`).
#[cfg(target_os = "linux")]
fn threads() -> Option<Vec<ThreadState>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = entry.ok()?.path();
        let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread exited meanwhile
        };
        let syscall = match std::fs::read_to_string(dir.join("syscall")) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir.exists() => return None,
            Err(_) => continue,
        };
        let mut fields = syscall.split_whitespace();
        let syscall = match fields.next().map(str::parse::<i64>) {
            Some(Ok(nr)) if nr >= 0 => {
                let args = fields
                    .map(|f| u64::from_str_radix(f.trim_start_matches("0x"), 16).unwrap_or(0))
                    .collect();
                Some((nr, args))
            }
            _ => None, // "running", or -1 (blocked, but not in a system call)
        };
        out.push(ThreadState {
            name: name.trim_end().to_owned(),
            syscall,
        });
    }
    Some(out)
}

#[cfg(target_os = "linux")]
fn is_epoll_wait(nr: i64) -> bool {
    #[cfg(target_arch = "x86_64")]
    if nr == libc::SYS_epoll_wait {
        return true;
    }
    nr == libc::SYS_epoll_pwait || nr == libc::SYS_epoll_pwait2
}

#[cfg(not(target_os = "linux"))]
fn is_epoll_wait(_nr: i64) -> bool {
    false
}

/// A futex wait without a timeout (a condvar wait with none): the 4th argument is null.
#[cfg(target_os = "linux")]
fn is_untimed_futex_wait(nr: i64, args: &[u64]) -> bool {
    nr == libc::SYS_futex && args.get(3) == Some(&0)
}

#[cfg(not(target_os = "linux"))]
fn is_untimed_futex_wait(_nr: i64, _args: &[u64]) -> bool {
    false
}

/// What [`wait_until_a_worker_drives`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Driving {
    /// A worker named `<prefix>-N` waits in `epoll_*` and the `magpie-reactor` thread sleeps
    /// in an untimed futex wait (it stands by without polling).
    Seen,
    /// This system does not show what a thread is blocked in: the caller just waits a while.
    CannotTell,
}

/// Waits (at most `limit`) until one of the workers whose thread names start with `prefix-`
/// waits in the poller while the reactor thread sleeps without a timeout: the state an idle
/// runtime settles in since idle workers take the driving turn. Panics if it never does.
pub fn wait_until_a_worker_drives(prefix: &str, limit: Duration) -> Driving {
    let worker_prefix = format!("{prefix}-");
    let deadline = Instant::now() + limit;
    loop {
        let Some(threads) = threads() else {
            std::thread::sleep(Duration::from_millis(100));
            return Driving::CannotTell;
        };
        let worker_in_poller = threads.iter().any(|t| {
            t.name.starts_with(&worker_prefix)
                && t.syscall.as_ref().is_some_and(|(nr, _)| is_epoll_wait(*nr))
        });
        let reactor_asleep = threads.iter().any(|t| {
            t.name == "magpie-reactor"
                && t.syscall
                    .as_ref()
                    .is_some_and(|(nr, args)| is_untimed_futex_wait(*nr, args))
        });
        if worker_in_poller && reactor_asleep {
            return Driving::Seen;
        }
        if Instant::now() >= deadline {
            panic!(
                "after {limit:?} idle, no worker `{worker_prefix}N` waits in the poller with the \
                 reactor thread asleep (worker in epoll: {worker_in_poller}, reactor in an \
                 untimed futex wait: {reactor_asleep}); threads: {threads:#?}"
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
