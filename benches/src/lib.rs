//! Benchmarks of magpie side by side with tokio and async-executor.
//!
//! Every workload does the same work on each of the three runtimes, each runtime given exactly
//! `N` worker threads, and checks its own result (it panics if the work came out wrong, so a
//! fast-but-broken runtime cannot win). Each workload is one function per runtime taking a
//! runtime prepared beforehand (see [`Runtimes`]); building and tearing down runtimes is never
//! part of what is measured.
//!
//! Two drivers use them: the criterion groups in `benches/` (`cargo bench -p magpie-benches`)
//! and the `compare` binary, which interleaves the runtimes repetition by repetition and prints
//! a markdown table (see `docs/benchmarks.md`).
//!
//! # Examples
//!
//! ```
//! use magpie_benches::{workloads, RuntimeKind, Runtimes, Size};
//!
//! let runtimes = Runtimes::new(1);
//! let yield_many = workloads().into_iter().find(|w| w.name == "yield_many").unwrap();
//! for kind in RuntimeKind::ALL {
//!     yield_many.run(&runtimes, kind, Size::Quick); // panics if the work came out wrong
//! }
//! ```

pub mod http;
pub mod io;
pub mod memory;
mod runtimes;
pub mod sched_counts;
pub mod scheduler;
pub mod stats;
pub mod sync;
pub mod timers;

pub use runtimes::{AsyncExecutorPool, RuntimeKind, Runtimes};

/// How much work a workload does: the figures of the issue, or a small fraction for CI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    /// The sizes the published figures use.
    Full,
    /// Shrunk sizes (`compare --quick`): enough to check every workload end to end, fast.
    Quick,
}

impl Size {
    /// `full` for [`Size::Full`], `quick` for [`Size::Quick`].
    pub fn pick(self, full: usize, quick: usize) -> usize {
        match self {
            Size::Full => full,
            Size::Quick => quick,
        }
    }
}

/// Which part of the runtime a workload exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Spawning, waking and yielding: the executor alone.
    Scheduler,
    /// Locks, queues and semaphores.
    Sync,
    /// Sleeps and timeouts.
    Timers,
    /// Sockets on the reactor.
    Io,
}

/// One workload: the same work written once per runtime.
#[derive(Clone, Copy)]
pub struct Workload {
    /// Its name, as used by `compare --only` and as the criterion group name.
    pub name: &'static str,
    /// The part of the runtime it exercises.
    pub family: Family,
    /// The work on magpie.
    pub magpie: fn(&magpie::Runtime, Size),
    /// The work on tokio's multi-thread runtime.
    pub tokio: fn(&tokio::runtime::Runtime, Size),
    /// The work on async-executor, run by N threads with async-io.
    pub async_executor: fn(&AsyncExecutorPool, Size),
}

impl Workload {
    /// Runs the workload once on the runtime `kind` of `runtimes`.
    ///
    /// # Panics
    ///
    /// When the work came out wrong (a lost task, a wrong count, a corrupted message).
    pub fn run(&self, runtimes: &Runtimes, kind: RuntimeKind, size: Size) {
        match kind {
            RuntimeKind::Magpie => (self.magpie)(&runtimes.magpie, size),
            RuntimeKind::Tokio => (self.tokio)(&runtimes.tokio, size),
            RuntimeKind::AsyncExecutor => (self.async_executor)(&runtimes.async_executor, size),
        }
    }
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("name", &self.name)
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

/// Every workload, in the order the tables list them.
pub fn workloads() -> Vec<Workload> {
    let mut all = scheduler::workloads();
    all.extend(sync::workloads());
    all.extend(timers::workloads());
    all.extend(io::workloads());
    all.extend(http::workloads());
    all
}
