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
//! it (`Idle`, `Shared::notify_parked`), and so does shutdown (`shutdown::begin`). It holds only a weak reference to the
//! runtime while it sleeps, and ends once the runtime shuts down.
//!
//! Not under loom (a thread on a timer); `lifo.rs` has the model of the slot's race.

use std::sync::{Arc as StdArc, Weak};
use std::time::Duration;

use super::debug::stderr_line;
use super::shared::Shared;
use crate::loom::{lock, Condvar, Mutex};

/// How often the monitor looks while a worker is awake. A poll longer than this is long for a
/// task that waits behind it (asyncio's debug mode calls a callback slow from 100 ms), and 200
/// looks a second cost next to nothing: a look is two loads per worker, and the
/// thread's wake-up a few microseconds (not measured on its own; the comparison run is).
pub(crate) const LOOK_INTERVAL: Duration = Duration::from_millis(5);

/// Where the monitor sleeps while every worker is parked.
#[derive(Default)]
pub(crate) struct MonitorSleep {
    asleep: Mutex<bool>,
    wake: Condvar,
}

impl MonitorSleep {
    /// Wakes the monitor if it sleeps (a worker left the parked state, or shutdown began).
    pub(crate) fn wake(&self) {
        let mut asleep = lock(&self.asleep);
        if *asleep {
            *asleep = false;
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
/// worker could run a task taken out of the slot). A failure to start is reported and leaves
/// the runtime without it: tasks then wait in a stuck worker's slot as they would in tokio's.
pub(crate) fn start(shared: &StdArc<Shared>, thread_name: &str) {
    if shared.lifo.len() < 2 {
        return;
    }
    let weak = StdArc::downgrade(shared);
    let sleep = shared.idle.monitor_sleep();
    let spawned = crate::loom::spawn_named(format!("{thread_name}-monitor"), move || {
        run(&weak, &sleep);
    });
    if let Err(err) = spawned {
        stderr_line(format_args!(
            "magpie: cannot start the monitor thread (a task in the LIFO slot of a worker \
             stuck in a long poll will wait for it): {err}"
        ));
    }
}

fn run(weak: &Weak<Shared>, sleep: &MonitorSleep) {
    let mut seen = Vec::new();
    loop {
        let Some(shared) = weak.upgrade() else { return };
        if shared.is_shutdown() {
            return;
        }
        {
            let mut asleep = lock(&sleep.asleep);
            *asleep = true;
            // Set under the lock before this SeqCst read: a worker that leaves the parked
            // state after the read takes the lock after us, sees `asleep` and wakes us; one
            // that left before it is seen by the read (the argument in full: `idle.rs`).
            if shared.idle.all_parked() && !shared.is_shutdown() {
                drop(shared);
                seen.clear(); // every slot is empty while every worker is parked
                while *asleep {
                    asleep = sleep
                        .wake
                        .wait(asleep)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                continue;
            }
            *asleep = false;
        }
        look(&shared, &mut seen);
        drop(shared);
        std::thread::sleep(LOOK_INTERVAL);
    }
}

/// One look at every worker: moves the task out of each slot that has stayed full across a
/// whole interval in which its worker started no poll.
fn look(shared: &Shared, seen: &mut Vec<Seen>) {
    seen.resize(shared.lifo.len(), Seen::default());
    for (index, slot) in shared.lifo.iter().enumerate() {
        // The slot first, then the count: a stuck poll that ends between the two reads shows
        // a new count, so the task spawned by the next poll is not mistaken for a stuck one.
        let full = slot.is_full();
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
