//! The monitor: gets a task out of the LIFO slot of a worker stuck in a long poll.
//!
//! `lifo.rs` says why a task can be stuck there. One thread per runtime, `<name>-monitor`,
//! looks at every worker every [`LOOK_INTERVAL`] while at least one worker is awake: a worker
//! whose slot holds a task and that has started no poll since the previous look (its `polls`
//! count unchanged) has kept that task waiting for at least one interval. The monitor takes the
//! task out of the slot (`LifoSlot::steal`) and puts it in the injector, waking a parked
//! worker for it (`Shared::push_remote`). Such a task so waits about one to two intervals, not
//! for the whole long poll.
//!
//! While every worker is parked there is nothing to look at: the monitor sleeps with no
//! timeout, so an idle runtime costs nothing. The first worker to leave the parked state wakes
//! it (`Idle`, `Shared::notify_parked`), and so does shutdown (`shutdown::begin`); between two
//! looks it naps on the same condition variable, so shutdown cuts that short too. It holds
//! only a weak reference to the runtime while it sleeps, ends once the runtime shuts down, and
//! the shutdown sequence joins it (its last step).
//!
//! Not under loom (a thread on a timer); `lifo.rs` has the model of the slot's race.

use std::sync::{Arc as StdArc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::debug::report_error;
use super::shared::Shared;
use crate::loom::{lock, Condvar, Mutex};

/// How often the monitor looks while a worker is awake. A poll longer than this is long for a
/// task that waits behind it (asyncio's debug mode calls a callback slow from 100 ms), and 200
/// looks a second cost next to nothing: a look is two loads per worker, and the
/// thread's wake-up a few microseconds (not measured on its own; the comparison run is).
pub(crate) const LOOK_INTERVAL: Duration = Duration::from_millis(5);

/// Where a helper thread of the runtime rests: the monitor sleeps here while every worker is
/// parked and naps between two looks; the debug-mode watchdog (`debug.rs`) naps between its
/// looks. Shutdown wakes either from both.
#[derive(Default)]
pub(crate) struct HelperSleep {
    state: Mutex<Rest>,
    wake: Condvar,
}

/// What a helper is doing, as far as its wakers care.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Rest {
    /// Looking (or about to).
    #[default]
    Awake,
    /// Between two looks, for at most its interval (the monitor's [`LOOK_INTERVAL`], the
    /// watchdog's tick): only shutdown wakes it (a worker's wake would cost a futex call and
    /// a context switch for a look that comes soon anyway).
    Napping,
    /// The monitor, every worker parked: asleep with no timeout until a worker leaves the
    /// parked state.
    Sleeping,
}

impl HelperSleep {
    /// A worker left the parked state: wakes the monitor if it sleeps (not from a nap).
    pub(crate) fn wake(&self) {
        self.wake_from(&[Rest::Sleeping]);
    }

    /// Shutdown began: wakes the monitor from a sleep or a nap, so that it ends now.
    pub(crate) fn wake_for_shutdown(&self) {
        self.wake_from(&[Rest::Sleeping, Rest::Napping]);
    }

    /// Naps for `interval`, unless `shutting_down` (read under the lock, so that shutdown's
    /// wake — flag first, then the lock — either is seen by it or finds the nap and cuts it
    /// short). Returns `false`, without napping, when shutting down.
    pub(crate) fn nap(&self, interval: Duration, shutting_down: impl FnOnce() -> bool) -> bool {
        let mut state = lock(&self.state);
        if shutting_down() {
            return false;
        }
        *state = Rest::Napping;
        let (mut state, _) = self
            .wake
            .wait_timeout_while(state, interval, |state| *state == Rest::Napping)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *state = Rest::Awake;
        true
    }

    fn wake_from(&self, rests: &[Rest]) {
        let mut state = lock(&self.state);
        if rests.contains(&state) {
            *state = Rest::Awake;
            self.wake.notify_one();
        }
    }
}

/// What the monitor saw of one worker at its last look.
#[derive(Clone, Copy, Default)]
struct Seen {
    polls: u64,
    full: bool,
}

/// Starts the monitor thread of a runtime with more than one worker (with one, no other
/// worker could run a task taken out of the slot), for the shutdown sequence to join. A
/// failure to start is reported and leaves the runtime without it: tasks then wait in a stuck
/// worker's slot as they would in tokio's.
pub(crate) fn start(shared: &StdArc<Shared>, thread_name: &str) -> Option<JoinHandle<()>> {
    if shared.lifo.len() < 2 {
        return None;
    }
    let weak = StdArc::downgrade(shared);
    let sleep = shared.idle.monitor_sleep();
    let spawned = crate::loom::spawn_named(format!("{thread_name}-monitor"), move || {
        run(&weak, &sleep);
    });
    match spawned {
        Ok(thread) => Some(thread),
        Err(err) => {
            report_error(format_args!(
                "magpie: cannot start the monitor thread (a task in the LIFO slot of a worker \
                 stuck in a long poll will wait for it): {err}"
            ));
            None
        }
    }
}

fn run(weak: &Weak<Shared>, sleep: &HelperSleep) {
    let mut seen = Vec::new();
    loop {
        let Some(shared) = weak.upgrade() else { return };
        #[cfg(test)]
        tests::hold_the_runtime();
        if shared.is_shutdown() {
            return;
        }
        {
            let mut state = lock(&sleep.state);
            *state = Rest::Sleeping;
            // Set under the lock before this SeqCst read: a worker that leaves the parked
            // state after the read takes the lock after us, sees `Sleeping` and wakes us; one
            // that left before it is seen by the read (the argument in full: `idle.rs`).
            if shared.idle.all_parked() && !shared.is_shutdown() {
                drop(shared);
                seen.clear(); // every slot is empty while every worker is parked
                while *state == Rest::Sleeping {
                    state = sleep
                        .wake
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                continue;
            }
            *state = Rest::Awake;
        }
        look(&shared, &mut seen);
        // The runtime is not held while napping (`shared` moves into the check).
        if !sleep.nap(LOOK_INTERVAL, move || shared.is_shutdown()) {
            return;
        }
    }
}

/// One look at every worker: moves the task out of each slot that has stayed full across a
/// whole interval in which its worker started no poll.
fn look(shared: &Shared, seen: &mut Vec<Seen>) {
    seen.resize(shared.lifo.len(), Seen::default());
    for (index, slot) in shared.lifo.iter().enumerate() {
        // The slot first, then the count: a stuck poll that ends between the two reads shows
        // a new count, so the task spawned by the next poll is not mistaken for a stuck one.
        // The slot's load is Acquire for that: a worker counts a poll before running it, and
        // fills the slot (Release) during it, so a slot seen filled by a poll comes with that
        // poll's count (with two Relaxed loads, a weakly ordered machine could show the new
        // slot with the old count, and move the task of a busy worker for nothing).
        let full = slot.is_full_acquire();
        let now = Seen {
            polls: shared.stats.workers[index].polls.get(),
            full,
        };
        let before = std::mem::replace(&mut seen[index], now);
        if now.full && before.full && now.polls == before.polls {
            if let Some(task) = slot.steal() {
                shared.push_remote(task);
                seen[index].full = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::Runtime;

    /// The thread name of the test's runtime: only its monitor is slowed down.
    const HELD: &str = "mon-held";

    /// In the test's runtime, every look holds the runtime for a while, which makes the
    /// monitor outlive an unjoined shutdown every time.
    pub(super) fn hold_the_runtime() {
        let name = std::thread::current().name().map(str::to_owned);
        if name.is_some_and(|name| name.starts_with(HELD)) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Builds a runtime with `builder`, keeps a worker awake for a few looks, drops the
    /// runtime and checks that no helper thread still held it.
    fn dropped_runtime_is_released(builder: crate::runtime::Builder) {
        let rt = builder.thread_name(HELD).build().unwrap();
        let shared = Arc::downgrade(&rt.handle().shared);
        rt.block_on(rt.spawn(async {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(30) {
                crate::task::yield_now().await;
            }
        }))
        .unwrap();
        drop(rt);
        // A helper holds the runtime's shared state while it looks (20 ms here): only a
        // shutdown that waited for it can have let the last reference go.
        assert!(
            shared.upgrade().is_none(),
            "a helper thread outlived the runtime's drop"
        );
    }

    #[test]
    fn dropping_the_runtime_joins_its_monitor() {
        for _ in 0..3 {
            dropped_runtime_is_released(Runtime::builder().worker_threads(2));
        }
    }
}
