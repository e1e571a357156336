//! Debug mode: the slow-poll detector and the blocked-worker watchdog.
//!
//! asyncio's debug mode names the callback that held the loop too long. Here a poll that
//! takes longer than the threshold is reported when it ends (by the worker that ran it), and —
//! the part a multi-threaded runtime needs most — a worker stuck in one poll is reported
//! *while* it is stuck, by a watchdog thread that looks at every worker's current poll a few
//! times per threshold. Both reports are a [`SlowPoll`] given to the `on_slow_poll` hook.
//!
//! Off by default: it reads the clock a few times per poll and keeps per-task statistics (one small
//! allocation per task). `MAGPIE_DEBUG=1` in the environment turns it on with a 100 ms
//! threshold, as `PYTHONASYNCIODEBUG` does for asyncio.

use std::fmt;
use std::panic::Location;
use std::sync::Arc as StdArc;
use std::time::{Duration, Instant};

use super::shared::Shared;
use crate::task::raw::TaskRef;
use crate::task::Id;

/// Writes one line to stderr, ignoring errors: `eprintln!` panics when stderr is gone (a closed
/// pipe), and these lines are written on workers, where a panic must not happen.
pub(crate) fn stderr_line(line: fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Reports something the runtime got wrong or could not do (a hook that panicked, a thread that
/// would not start, a shutdown it began on its own): with the `tracing` feature and a
/// subscriber to receive it, an `error!` event with the target `magpie`, so that it reaches the
/// service's logs with everything else; otherwise one line on stderr, as without the feature —
/// an event that no subscriber would receive would be lost.
pub(crate) fn report_error(line: fmt::Arguments<'_>) {
    #[cfg(feature = "tracing")]
    if has_subscriber() {
        tracing::error!(target: "magpie", "{line}");
        return;
    }
    stderr_line(line);
}

/// Whether a `tracing` event emitted on this thread would reach a subscriber (a global one, or
/// this thread's): without one, the runtime writes its reports on stderr, as without the
/// feature. A dependency that turns the feature on must not silence an application that
/// installed no subscriber.
#[cfg(feature = "tracing")]
fn has_subscriber() -> bool {
    tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>())
}

/// The environment variable that turns debug mode on.
pub(crate) const DEBUG_ENV: &str = "MAGPIE_DEBUG";

/// The threshold `MAGPIE_DEBUG=1` sets: asyncio's `slow_callback_duration`.
pub(crate) const DEFAULT_THRESHOLD: Duration = Duration::from_millis(100);

/// A slow-poll hook.
pub(crate) type SlowPollHook = StdArc<dyn Fn(&SlowPoll) + Send + Sync + 'static>;

/// Debug mode's settings, fixed when the runtime is built.
pub(crate) struct DebugConfig {
    pub(crate) threshold: Duration,
    pub(crate) hook: Option<SlowPollHook>,
}

/// Whether `MAGPIE_DEBUG` asks for debug mode: `1`, `true`, `on`, `yes` turn it on; unset,
/// empty, `0`, `false`, `off`, `no` leave it off (any case, spaces around ignored). Another
/// value turns it on, as asyncio's `PYTHONASYNCIODEBUG` does for any non-empty value, with a
/// line on stderr (once per process) saying so: a `MAGPIE_DEBUG=disabled` in a deployment's
/// configuration should not switch it on without a word.
pub(crate) fn enabled_by_env() -> bool {
    // Loom models must behave the same whatever the environment.
    if cfg!(loom) {
        return false;
    }
    let Some(value) = std::env::var_os(DEBUG_ENV) else {
        return false;
    };
    parse_debug_env(&value).unwrap_or_else(|| {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            report_error(format_args!(
                "magpie: {DEBUG_ENV}={value:?} is none of 1/true/on/yes or 0/false/off/no; \
                 debug mode is on"
            ));
        });
        true
    })
}

/// `MAGPIE_DEBUG`'s value as on or off; `None` when it is neither.
fn parse_debug_env(value: &std::ffi::OsStr) -> Option<bool> {
    match value.to_str()?.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "off" | "no" => Some(false),
        "1" | "true" | "on" | "yes" => Some(true),
        _ => None,
    }
}

/// A poll that took longer than the runtime's slow-poll threshold: reported when it ends, and
/// (with `in_progress` set) by the watchdog while the worker is still inside it.
///
/// Given to the hook set with [`Builder::on_slow_poll`](super::Builder::on_slow_poll); the
/// default hook writes its `Display` form to stderr, one line.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// let rt = magpie_executor::Runtime::builder()
///     .slow_poll_threshold(Duration::from_millis(20))
///     .on_slow_poll(move |slow| sink.lock().unwrap().push(slow.clone()))
///     .build()
///     .unwrap();
/// rt.block_on(rt.spawn(async {
///     std::thread::sleep(Duration::from_millis(50)); // a blocking call in async code
/// }))
/// .unwrap();
/// drop(rt);
/// let seen = seen.lock().unwrap();
/// let slow = seen.iter().find(|s| !s.in_progress).unwrap();
/// assert!(slow.duration >= Duration::from_millis(50));
/// assert_eq!(slow.location.file(), file!());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlowPoll {
    /// The task polled.
    pub task: Id,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Where it was spawned.
    pub location: &'static Location<'static>,
    /// The worker that polled it.
    pub worker: usize,
    /// How long the poll took, or (`in_progress`) how long it has run so far.
    pub duration: Duration,
    /// `true` when the watchdog reports a poll that is still running: the worker is blocked
    /// right now.
    pub in_progress: bool,
    /// For an `in_progress` report: the tasks queued on the blocked worker (its local queue
    /// and its LIFO slot), waiting for it or for another worker to steal them.
    pub queued_behind: usize,
}

impl fmt::Display for SlowPoll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let task = TaskLabel {
            id: self.task,
            name: self.name.as_deref(),
            location: self.location,
        };
        if self.in_progress {
            write!(
                f,
                "magpie: worker {} is blocked: {task} has been inside one poll for {:?} so far; \
                 {} task(s) queued behind it",
                self.worker, self.duration, self.queued_behind
            )
        } else {
            write!(
                f,
                "magpie: slow poll: {task} held worker {} for {:?}",
                self.worker, self.duration
            )
        }
    }
}

/// "task 7 "name" (spawned at src/main.rs:3:5)".
pub(crate) struct TaskLabel<'a> {
    pub(crate) id: Id,
    pub(crate) name: Option<&'a str>,
    pub(crate) location: &'static Location<'static>,
}

impl fmt::Display for TaskLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task {}", self.id)?;
        if let Some(name) = self.name {
            write!(f, " {name:?}")?;
        }
        write!(f, " (spawned at {})", self.location)
    }
}

impl DebugConfig {
    /// Gives `report` to the hook, or to the default one. A panicking hook must not take a
    /// worker (or the watchdog) down with it.
    pub(crate) fn report(&self, report: &SlowPoll) {
        // Its payload's destructor is the hook's code too: caught as well.
        let panicked = crate::task::harness::swallow_panic(|| match &self.hook {
            Some(hook) => hook(report),
            None => default_hook(report),
        });
        if panicked {
            report_error(format_args!("magpie: the on_slow_poll hook panicked"));
        }
    }
}

/// Without the `tracing` feature, or with it and no subscriber: one line on stderr. With a
/// subscriber: a `warn!` event, with the report's parts as fields (emitted outside the task's
/// span: the poll is over, or, for the watchdog, on its own thread).
fn default_hook(report: &SlowPoll) {
    #[cfg(feature = "tracing")]
    if has_subscriber() {
        tracing::warn!(
            task.id = report.task.as_u64(),
            task.name = report.name.as_deref(),
            task.spawned_at = %report.location,
            worker = report.worker,
            duration = ?report.duration,
            in_progress = report.in_progress,
            queued_behind = report.queued_behind,
            "{report}"
        );
        return;
    }
    stderr_line(format_args!("{report}"));
}

/// Runs `task` on worker `index`, timing the poll and reporting it if it is slow.
pub(crate) fn run_timed(
    shared: &Shared,
    debug: &DebugConfig,
    index: usize,
    task: crate::task::raw::Notified,
) {
    let stats = &shared.stats.workers[index];
    // The task may be freed by its own run; this reference keeps its name readable for the
    // report (debug mode only: two atomic operations per poll).
    let task_ref = TaskRef::new(&task);
    let task_stats = task_ref.header().origin.stats();
    if let Some(task_stats) = task_stats {
        task_stats.poll_started();
    }
    let started = Instant::now();
    stats.poll_begins(task_ref.header().id.as_u64(), Some(shared.stats.now_ns()));
    let requeue = task.run(&stats.unlisted_polled);
    stats.poll_ends();
    // Queued again before the report, whose hook may take its time: meanwhile another worker
    // can steal it. (Through the scheduler's thread-local lookup: debug mode's cost.)
    if let Some(task) = requeue {
        task.requeue();
    }
    let duration = started.elapsed();
    if let Some(task_stats) = task_stats {
        task_stats.poll_ended();
    }
    if duration >= debug.threshold {
        let header = task_ref.header();
        debug.report(&SlowPoll {
            task: header.id,
            name: header.name().map(str::to_owned),
            location: header.location(),
            worker: index,
            duration,
            in_progress: false,
            queued_behind: 0,
        });
    }
}

/// Starts the watchdog thread of a runtime in debug mode. It holds only a weak reference,
/// naps between its looks on `Shared::watchdog_sleep`, and ends as soon as the runtime shuts
/// down (which wakes it). It is not joined: it may be running the user's hook.
#[cfg(not(loom))]
pub(crate) fn start_watchdog(shared: &std::sync::Arc<Shared>, thread_name: &str) {
    let threshold = match &shared.config.debug {
        Some(debug) => debug.threshold,
        None => return,
    };
    // A few looks per threshold: a stuck poll is reported at most a quarter threshold late.
    let tick = (threshold / 4).clamp(Duration::from_millis(1), Duration::from_millis(250));
    let weak = std::sync::Arc::downgrade(shared);
    let sleep = shared.watchdog_sleep.clone();
    let spawned = crate::loom::spawn_named(format!("{thread_name}-watchdog"), move || {
        let mut reported = Vec::new();
        loop {
            let Some(shared) = weak.upgrade() else { return };
            if shared.is_shutdown() {
                return;
            }
            look_for_blocked_workers(&shared, threshold, &mut reported);
            // The runtime is not held while napping (`shared` moves into the check).
            if !sleep.nap(tick, move || shared.is_shutdown()) {
                return;
            }
        }
    });
    if let Err(err) = spawned {
        report_error(format_args!(
            "magpie: debug mode: cannot start the watchdog thread: {err}"
        ));
    }
}

/// One look at every worker: reports each poll that has run past the threshold, once.
#[cfg(not(loom))]
fn look_for_blocked_workers(shared: &Shared, threshold: Duration, reported: &mut Vec<u64>) {
    let Some(debug) = &shared.config.debug else {
        return;
    };
    reported.resize(shared.stats.workers.len(), 0);
    let now = shared.stats.now_ns();
    for (index, stats) in shared.stats.workers.iter().enumerate() {
        // `polls` tells one poll from the next: report each stuck poll once.
        let Some((id, polls, started)) = stats.current_poll() else {
            continue;
        };
        let so_far = Duration::from_nanos(now.saturating_sub(started));
        if reported[index] == polls || so_far < threshold {
            continue;
        }
        reported[index] = polls;
        let Some((task, name, location)) = shared.owned.describe(id) else {
            continue; // finished meanwhile
        };
        let lifo = shared.lifo[index].is_full();
        debug.report(&SlowPoll {
            task,
            name,
            location,
            worker: index,
            duration: so_far,
            in_progress: true,
            queued_behind: shared.stealers[index].len() + usize::from(lifo),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::parse_debug_env;
    use std::ffi::OsStr;

    #[test]
    fn magpie_debug_values_read_as_on_off_or_neither() {
        for off in ["", "0", "false", "OFF", " no ", "False"] {
            assert_eq!(parse_debug_env(OsStr::new(off)), Some(false), "{off:?}");
        }
        for on in ["1", "true", "On", "YES", " 1\n"] {
            assert_eq!(parse_debug_env(OsStr::new(on)), Some(true), "{on:?}");
        }
        // Neither: debug mode goes on, with a warning (`enabled_by_env`).
        for neither in ["2", "00", "disabled", "enable"] {
            assert_eq!(parse_debug_env(OsStr::new(neither)), None, "{neither:?}");
        }
    }
}
