//! The deterministic runtime's loop: one thread, a seeded choice of the next task to poll, and
//! a virtual clock that jumps to the next deadline whenever nothing can run.
//!
//! The tasks are ordinary magpie tasks of a runtime with no worker threads
//! (`Runtime::start_deterministic`): every spawn and every wake puts the task in that runtime's
//! injector, which only this loop empties. Each step:
//!
//! 1. moves every task queued in the injector since the last step to the end of `runnable`
//!    (in the order they were queued: one thread queues them all, so that order is the same in
//!    every run with this seed);
//! 2. if nothing is runnable (and the main future was not woken), advances the virtual clock to
//!    the next deadline, which wakes that timer's tasks, and goes back to 1; with no timer
//!    pending either, every task waits for another: a deadlock, reported with the task dump;
//! 3. draws one of the runnable tasks, or the main future if it was woken, from the seeded
//!    generator, and polls it once (on this thread, as a worker would).
//!
//! Nothing else is a source of order: the reactor thread never sees the simulation's timers
//! (they live in the thread's virtual clock) and real I/O is refused on this thread.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use magpie_reactor::real_io::RealIoDenied;
use magpie_timers::VirtualClockGuard;

use super::rng::{self, Rng};
use super::{Deadlock, Outcome, SimError};
use crate::runtime::context;
use crate::runtime::metrics::Counter;
use crate::runtime::queue::Steal;
use crate::task::raw::Notified;
use crate::{Runtime, ShutdownCause, TaskPanic, UnhandledPanic};

/// Why real I/O fails inside the simulation.
const NO_REAL_IO: &str = "magpie's deterministic runtime (magpie::sim) runs no real I/O, \
                          which would make its schedule depend on the OS: use \
                          magpie::sim::duplex() for in-memory streams";

/// The main future's waker: a flag the loop reads.
struct MainWaker(AtomicBool);

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Relaxed: the loop that reads it runs on this thread; a wake from another thread
        // (outside the simulation's control) is only noticed, never ordered.
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The settings of one run (see `Sim`).
pub(crate) struct Settings {
    pub(crate) seed: u64,
    pub(crate) max_polls: u64,
    pub(crate) record_trace: bool,
    pub(crate) unhandled_panic: UnhandledPanic,
}

/// The simulation's runtime, entered as the thread's current one. Its fields drop in order:
/// the runtime first — its shutdown drops the tasks still pending, whose destructors may spawn
/// (cancelled at once) or deregister timers, so the handle context and the virtual clock must
/// still be in place — then the handle context.
struct Entered {
    rt: Runtime,
    _context: context::HandleGuard,
}

/// While it lives, the thread's `select` coin follows the run's seed; the coin it had comes back
/// on drop.
struct SeededCoin(u64);

impl SeededCoin {
    fn new(rng: &mut Rng) -> SeededCoin {
        SeededCoin(crate::combinator::replace_coin(rng.next_u64()))
    }
}

impl Drop for SeededCoin {
    fn drop(&mut self) {
        crate::combinator::replace_coin(self.0);
    }
}

/// Runs `future` and every task it spawns to completion under `settings`.
pub(crate) fn run<F: Future>(
    settings: &Settings,
    future: F,
) -> Result<Outcome<F::Output>, SimError> {
    assert!(
        !context::with_core(|core| core.is_some()),
        "magpie::sim called from a magpie worker thread: it would block the worker for the \
         whole simulation; run it from a test's or a plain thread"
    );
    // Declared in the order they are set up; they drop in reverse (also when a panic unwinds):
    // the queued entries and the main future, the runtime, the handle context, the I/O
    // refusal, the clock, the generator, the coin.
    let mut rng = Rng::new(settings.seed);
    let _coin = SeededCoin::new(&mut rng);
    let _rng = rng::install(rng);
    let clock = VirtualClockGuard::enter();
    let _no_io = RealIoDenied::enter(NO_REAL_IO);
    let rt = Runtime::start_deterministic(settings.unhandled_panic);
    let shared = rt.handle().shared;
    let entered = Entered {
        _context: context::enter_handle(rt.handle()),
        rt,
    };

    let start = clock.now();
    let main_woken = Arc::new(MainWaker(AtomicBool::new(true)));
    let waker = Waker::from(main_woken.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = Box::pin(future);
    let mut runnable: Vec<Notified> = Vec::new();
    let mut tracer = settings.record_trace.then(Tracer::default);
    let mut polls: u64 = 0;

    let result = loop {
        // A task's panic that nobody will retrieve, under `ShutdownRuntime`: the runtime
        // recorded it (and runs nothing more); the run fails with it.
        if let Some(panic) = unhandled_panic(&shared) {
            break Err(SimError::TaskPanicked {
                seed: settings.seed,
                panic,
            });
        }
        // Step 1.
        loop {
            match shared.injector.steal() {
                Steal::Success(task) => runnable.push(task),
                Steal::Empty => break,
                Steal::Retry => {}
            }
        }
        let main_ready = main_woken.0.load(Ordering::Relaxed);
        let choices = runnable.len() + usize::from(main_ready);
        // Step 2.
        if choices == 0 {
            if clock.advance_to_next_timer().is_some() {
                continue;
            }
            break Err(SimError::Deadlock(Deadlock {
                seed: settings.seed,
                at: clock.now() - start,
                waiting: entered.rt.handle().dump(),
            }));
        }
        if polls == settings.max_polls {
            break Err(SimError::PollLimit {
                seed: settings.seed,
                polls,
            });
        }
        polls += 1;
        // Step 3.
        let pick = rng::with(|rng| rng.below(choices)).expect("the generator is installed");
        if pick == runnable.len() {
            main_woken.0.store(false, Ordering::Relaxed);
            if let Some(tracer) = &mut tracer {
                tracer.trace.push(0);
            }
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                break Ok(output);
            }
        } else {
            let task = runnable.swap_remove(pick);
            if let Some(tracer) = &mut tracer {
                tracer.record(&task);
            }
            // Every task of the deterministic runtime is listed at its spawn: nothing is
            // counted here.
            if let Some(task) = task.run(&Counter::default()) {
                task.requeue();
            }
        }
    };
    let elapsed = clock.now() - start;
    // The main future first (its destructor may still spawn or use timers), then the entries
    // still queued (they hold task references the shutdown does not look for), then the
    // runtime, within its context.
    drop(future);
    // Dropping the main future dropped the `JoinHandle`s it held: a task that panicked with
    // its handle held but never awaited is an unhandled panic from here.
    let result = match (result, unhandled_panic(&shared)) {
        (Ok(_), Some(panic)) => Err(SimError::TaskPanicked {
            seed: settings.seed,
            panic,
        }),
        (result, _) => result,
    };
    drop(runnable);
    drop(entered);
    result.map(|output| Outcome {
        output,
        polls,
        elapsed,
        trace: tracer.map(|t| t.trace).unwrap_or_default(),
    })
}

/// The task panic the runtime shut down for, if it did.
fn unhandled_panic(shared: &crate::runtime::shared::Shared) -> Option<TaskPanic> {
    match &*crate::loom::lock(&shared.cause) {
        Some(ShutdownCause::UnhandledPanic(panic)) => Some(panic.clone()),
        _ => None,
    }
}

/// Records the order of polls, each task by its number in this run (1 for the first task
/// the loop saw, 2 for the next...; 0 for the main future), so that two runs can be compared
/// although task ids are process-wide.
#[derive(Default)]
struct Tracer {
    numbers: std::collections::HashMap<u64, u64>,
    trace: Vec<u64>,
}

impl Tracer {
    fn record(&mut self, task: &Notified) {
        let next = self.numbers.len() as u64 + 1;
        let number = *self
            .numbers
            .entry(task.header().id.as_u64())
            .or_insert(next);
        self.trace.push(number);
    }
}
