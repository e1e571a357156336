//! The deterministic runtime: a seeded schedule and a virtual clock, so that a concurrency bug
//! in your own async code is found by trying many schedules, and replayed exactly from the
//! seed that found it.
//!
//! Inside it, every task runs on one thread; which runnable task is polled next — and so the
//! order of wakes that happen together — is drawn from a pseudo-random generator seeded with
//! the run's seed. Time is virtual: it stands still while tasks run and jumps to the next
//! deadline when none can, so `sleep(1 h)` completes at once in wall time while `timeout`,
//! `interval` and deadlines keep their exact semantics. Your code is unchanged: `spawn`,
//! `spawn_blocking` (run as a task), `time`, `sync`, `TaskGroup` and the combinators work as
//! they do on the multi-threaded runtime.
//!
//! - [`check`] runs a test body over many seeds; a failing seed is printed with the command that
//!   replays it (`MAGPIE_SEED=N cargo test NAME`), and with `MAGPIE_SEED` set only that seed
//!   runs.
//! - [`run`] runs one seed; [`Sim`] sets a poll limit and records the trace of polls.
//! - [`duplex`] gives in-memory byte streams whose reads and writes are cut short at seeded
//!   points. Real sockets are refused inside the simulation (an [`io::ErrorKind::Unsupported`]
//!   error that says why), as their timing would come from the OS, not the seed.
//! - A deadlock — every task waiting, no timer pending — is reported with the waiting tasks'
//!   names and spawn locations ([`SimError::Deadlock`]) instead of hanging.
//!
//! Virtual time moves in the timers' 100 µs ticks: a deadline between two ticks is reached at
//! the next one (`sleep(150 µs)` ends 200 µs later); deadlines on whole ticks (any whole number
//! of milliseconds) are hit exactly.
//!
//! What the simulation cannot control stays nondeterministic: threads you start yourself,
//! `std::time::Instant::now` (use [`magpie_timers::now`], which reads the virtual clock),
//! and iteration over std's randomly seeded `HashMap`s. Waiting inside a simulation on
//! something outside it — a std thread, another runtime, an `Async` made before the run — is
//! reported as a deadlock when nothing inside can run (it is one, as far as the seed is
//! concerned); and a blocking call that waits for another task (a `spawn_blocking` closure
//! that blocks on a channel a task fills, `magpie::block_on` of a timer) hangs the one thread
//! everything runs on. A timer made outside a simulation and awaited inside it, or the other
//! way round, panics with a message that says so.
//!
//! [`io::ErrorKind::Unsupported`]: std::io::ErrorKind::Unsupported
//!
//! # Examples
//!
//! Two tasks withdraw from one balance with an `.await` between the check and the write: some
//! schedules let both pass the check.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! async fn withdraw(balance: Arc<Mutex<u64>>, amount: u64) {
//!     let enough = *balance.lock().unwrap() >= amount;
//!     magpie_executor::task::yield_now().await; // stands in for a call to another service
//!     if enough {
//!         let mut balance = balance.lock().unwrap();
//!         *balance = balance.checked_sub(amount).expect("overdrawn: the check was stale");
//!     }
//! }
//!
//! let overdrawn = (0..100).any(|seed| {
//!     magpie_executor::sim::run(seed, async {
//!         let balance = Arc::new(Mutex::new(100u64));
//!         let a = magpie_executor::spawn(withdraw(balance.clone(), 80));
//!         let b = magpie_executor::spawn(withdraw(balance.clone(), 80));
//!         // A panic (the subtraction overflowed) comes back as an error.
//!         a.await.is_err() || b.await.is_err()
//!     })
//! });
//! assert!(overdrawn, "some seed interleaves the two withdrawals");
//! ```

mod driver;
mod duplex;
mod rng;
mod seeds;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::{TaskDump, TaskPanic, UnhandledPanic};

pub use duplex::{duplex, SimStream};
pub use seeds::check;

/// A deterministic run's settings: its seed, a bound on the number of polls, and whether to
/// record the trace of polls.
///
/// # Examples
///
/// ```
/// use magpie_executor::sim::Sim;
///
/// let run = |seed| {
///     Sim::new(seed).record_trace().run(async {
///         let a = magpie_executor::spawn(async { magpie_executor::task::yield_now().await });
///         let b = magpie_executor::spawn(async { magpie_executor::task::yield_now().await });
///         a.await.unwrap();
///         b.await.unwrap();
///     })
/// };
/// // The same seed, the same schedule.
/// assert_eq!(run(3).unwrap().trace, run(3).unwrap().trace);
/// ```
#[derive(Debug, Clone)]
pub struct Sim {
    seed: u64,
    max_polls: u64,
    record_trace: bool,
    unhandled_panic: UnhandledPanic,
}

impl Sim {
    /// A run with this seed, at most 10 million polls, no trace, and a task panic that no
    /// `JoinHandle` retrieves failing the run ([`SimError::TaskPanicked`]).
    pub fn new(seed: u64) -> Sim {
        Sim {
            seed,
            max_polls: 10_000_000,
            record_trace: false,
            unhandled_panic: UnhandledPanic::ShutdownRuntime,
        }
    }

    /// What a task's panic that no `JoinHandle` will retrieve does (a detached task's, or one
    /// whose handle was dropped unread): by default
    /// ([`UnhandledPanic::ShutdownRuntime`]) the run stops at once with
    /// [`SimError::TaskPanicked`] — an assertion that fails in a background task fails the
    /// test, with its seed; [`UnhandledPanic::Ignore`] lets it go, as a plain runtime does.
    ///
    /// # Examples
    ///
    /// ```
    /// use magpie_executor::sim::{Sim, SimError};
    /// use magpie_executor::UnhandledPanic;
    ///
    /// let background = || async {
    ///     drop(magpie_executor::spawn(async { panic!("a background check failed") }));
    ///     magpie_executor::task::yield_now().await;
    ///     magpie_executor::task::yield_now().await;
    /// };
    /// match Sim::new(1).run(background()) {
    ///     Err(SimError::TaskPanicked { panic, .. }) => {
    ///         assert_eq!(panic.message.as_deref(), Some("a background check failed"));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// assert!(Sim::new(1).unhandled_panic(UnhandledPanic::Ignore).run(background()).is_ok());
    /// ```
    pub fn unhandled_panic(mut self, policy: UnhandledPanic) -> Sim {
        self.unhandled_panic = policy;
        self
    }

    /// Stops the run with [`SimError::PollLimit`] after `polls` polls (of tasks and of the
    /// main future): a livelock — tasks that keep waking each other forever — ends instead of
    /// spinning.
    pub fn max_polls(mut self, polls: u64) -> Sim {
        self.max_polls = polls;
        self
    }

    /// Records which task each poll ran, in [`Outcome::trace`].
    pub fn record_trace(mut self) -> Sim {
        self.record_trace = true;
        self
    }

    /// Runs `future` on the calling thread with this schedule and virtual time, and returns
    /// its output once it completes. Tasks still pending then are cancelled, as at the end of
    /// [`run`](crate::run).
    ///
    /// # Errors
    ///
    /// [`SimError::Deadlock`] when every task waits and no timer is pending;
    /// [`SimError::PollLimit`] when the poll limit is reached; [`SimError::TaskPanicked`] when
    /// a task panicked and no `JoinHandle` will retrieve it (see
    /// [`unhandled_panic`](Self::unhandled_panic)).
    ///
    /// # Panics
    ///
    /// When `future` panics (a task's panic is its `JoinHandle`'s error, as usual), or when
    /// called inside another simulation on the same thread.
    pub fn run<F: Future>(&self, future: F) -> Result<Outcome<F::Output>, SimError> {
        driver::run(
            &driver::Settings {
                seed: self.seed,
                max_polls: self.max_polls,
                record_trace: self.record_trace,
                unhandled_panic: self.unhandled_panic,
            },
            future,
        )
    }
}

/// What a completed deterministic run returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome<T> {
    /// The main future's output.
    pub output: T,
    /// How many polls the run took (tasks and the main future).
    pub polls: u64,
    /// Virtual time from the start of the run to the main future's completion.
    pub elapsed: Duration,
    /// With [`Sim::record_trace`]: which task each poll ran, in order — `0` for the main
    /// future, `n` for the `n`-th task the run polled (numbered at its first poll). Empty
    /// otherwise.
    pub trace: Vec<u64>,
}

/// Why a deterministic run did not complete.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SimError {
    /// Every task waits for another and no timer is pending: nothing can ever run again.
    Deadlock(Deadlock),
    /// The run reached its poll limit ([`Sim::max_polls`]).
    PollLimit {
        /// The run's seed.
        seed: u64,
        /// The polls made.
        polls: u64,
    },
    /// A task panicked and no `JoinHandle` will retrieve the panic (the task was detached, or
    /// its handle dropped unread); see [`Sim::unhandled_panic`].
    TaskPanicked {
        /// The run's seed.
        seed: u64,
        /// The task, where it was spawned, and its message.
        panic: TaskPanic,
    },
}

/// A deadlock found by a deterministic run: what was waiting, and when.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Deadlock {
    /// The run's seed.
    pub seed: u64,
    /// Virtual time from the start of the run to the deadlock.
    pub at: Duration,
    /// Every task still on the run's task list, with its name and spawn location: the waiting
    /// ones, and any that finished but whose `JoinHandle` was neither awaited nor dropped (the
    /// main future, which waits too, is not a task and is not in it). Task ids are numbered
    /// across the process, not per run.
    pub waiting: TaskDump,
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Deadlock(deadlock) => write!(
                f,
                "deadlock (seed {}) at virtual time {:?}: the main future and every task wait, \
                 and no timer is pending\n{}",
                deadlock.seed, deadlock.at, deadlock.waiting
            ),
            SimError::PollLimit { seed, polls } => write!(
                f,
                "seed {seed}: the run reached its limit of {polls} polls without completing \
                 (tasks that wake each other forever?); raise it with Sim::max_polls"
            ),
            SimError::TaskPanicked { seed, panic } => write!(
                f,
                "seed {seed}: {panic}, and no JoinHandle will retrieve it (let such panics go \
                 with Sim::unhandled_panic(UnhandledPanic::Ignore))"
            ),
        }
    }
}

impl std::error::Error for SimError {}

/// Runs `future` with schedule `seed` (see the [module docs](self)) and returns its output.
///
/// # Panics
///
/// When the run deadlocks, reaches the default poll limit, or a task's panic goes unretrieved
/// (the message says which, with the seed, and the waiting tasks or the panic), when `future`
/// panics, or when called inside another simulation on the same thread.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let wall = std::time::Instant::now();
/// let virtual_time = magpie_executor::sim::run(7, async {
///     let start = magpie_timers::now();
///     magpie_timers::sleep(Duration::from_secs(3600)).await;
///     magpie_timers::now() - start
/// });
/// assert_eq!(virtual_time, Duration::from_secs(3600));
/// assert!(wall.elapsed() < Duration::from_secs(1));
/// ```
pub fn run<F: Future>(seed: u64, future: F) -> F::Output {
    match Sim::new(seed).run(future) {
        Ok(outcome) => outcome.output,
        Err(err) => panic!("magpie::sim: {err}"),
    }
}
