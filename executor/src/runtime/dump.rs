//! The task dump: every live task of a runtime, taken while it runs (asyncio's `all_tasks()`).

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use super::debug::TaskLabel;
use super::shared::Shared;
use crate::task::cell::Header;
use crate::task::Id;

/// Every live task of a runtime: [`Handle::dump`](super::Handle::dump).
///
/// Taken without stopping the runtime, one shard of the task list at a time, so tasks that
/// start or finish meanwhile may or may not be in it. `Display` prints an aligned table.
/// Age, poll count and idle time are kept in debug mode only
/// ([`Builder::slow_poll_threshold`](super::Builder::slow_poll_threshold) or `MAGPIE_DEBUG=1`);
/// without it they are `None` (shown as `-`).
///
/// # Examples
///
/// ```
/// use magpie_executor::{task, Runtime, TaskState};
///
/// let rt = Runtime::new().unwrap();
/// let _waiting = task::Builder::new()
///     .name("forever")
///     .spawn_on(std::future::pending::<()>(), &rt.handle());
/// let dump = rt.handle().dump();
/// let forever = dump.tasks.iter().find(|t| t.name.as_deref() == Some("forever")).unwrap();
/// // Scheduled until a worker has polled it once, then waiting.
/// assert!(matches!(forever.state, TaskState::Waiting | TaskState::Scheduled));
/// println!("{dump}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskDump {
    /// The tasks, by id.
    pub tasks: Vec<TaskSnapshot>,
}

/// One task in a [`TaskDump`] or a [`ShutdownReport`](super::ShutdownReport).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskSnapshot {
    /// The task's id.
    pub id: Id,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Where it was spawned.
    pub location: &'static Location<'static>,
    /// What it is doing.
    pub state: TaskState,
    /// How long ago it was spawned (debug mode).
    pub age: Option<Duration>,
    /// How many times it has been polled (debug mode).
    pub polls: Option<u64>,
    /// How long ago its last poll ended (debug mode; `None` also before its first poll).
    pub since_last_poll: Option<Duration>,
}

/// What a task is doing, in a [`TaskSnapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskState {
    /// Queued, waiting for a worker to poll it (a task that yielded included).
    Scheduled,
    /// Being polled, by the worker of that index (`None` when the dump could not tell which:
    /// in debug mode, the poll was starting or ending as the dump looked; in the
    /// deterministic runtime, whose driver polls every task, always).
    Running {
        /// The worker polling it.
        worker: Option<usize>,
    },
    /// Waiting for a wake-up (I/O, a timer, a lock, another task...).
    Waiting,
    /// Finished, but its `JoinHandle` has neither been awaited nor dropped.
    Finished,
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskState::Scheduled => f.write_str("scheduled"),
            TaskState::Running { worker: Some(w) } => write!(f, "running on worker {w}"),
            TaskState::Running { worker: None } => f.write_str("running"),
            TaskState::Waiting => f.write_str("waiting"),
            TaskState::Finished => f.write_str("finished, not joined"),
        }
    }
}

impl TaskSnapshot {
    /// The snapshot of the live task `header`; `running_on` is each worker's current task id;
    /// `carries`: the runtime's workers queue yielded tasks as carried entries, which keep
    /// `RUNNING` (`raw.rs`; not in debug mode or in the deterministic runtime).
    pub(crate) fn of(header: &Header, running_on: &[u64], carries: bool) -> TaskSnapshot {
        let id = header.id;
        let state = header.state.load();
        let worker = running_on.iter().position(|&t| t == id.as_u64());
        let state = if state.is_complete() {
            TaskState::Finished
        } else if state.is_running() && (worker.is_some() || !carries) {
            TaskState::Running { worker }
        } else if state.is_running() {
            // On no worker: a yielded task, queued with its `RUNNING` bit (or, rarely, one
            // whose poll was starting or ending as the dump looked).
            TaskState::Scheduled
        } else if state.is_notified() {
            TaskState::Scheduled
        } else {
            TaskState::Waiting
        };
        let stats = header.origin.stats();
        TaskSnapshot {
            id,
            name: header.name().map(str::to_owned),
            location: header.location(),
            state,
            age: stats.map(|s| s.age()),
            polls: stats.map(|s| s.polls()),
            since_last_poll: stats.and_then(|s| s.since_last_poll()),
        }
    }
}

impl fmt::Display for TaskSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = TaskLabel {
            id: self.id,
            name: self.name.as_deref(),
            location: self.location,
        };
        write!(f, "{label}: {}", self.state)
    }
}

/// Every worker's current task id (0: none).
pub(crate) fn running_tasks(shared: &Shared) -> Vec<u64> {
    shared
        .stats
        .workers
        .iter()
        .map(|w| w.current_task.load(std::sync::atomic::Ordering::Acquire))
        .collect()
}

pub(crate) fn take(shared: &Shared) -> TaskDump {
    let running = running_tasks(shared);
    let carries = shared.workers_carry_yields();
    let mut tasks = Vec::new();
    shared.owned.visit(|header| {
        // Finished with no handle left to read it is done with: a worker has yet to give
        // back its place on the list (`owned.rs`). Not a task to show.
        let state = header.state.load();
        if !state.is_complete() || state.has_join_interest() {
            tasks.push(TaskSnapshot::of(header, &running, carries));
        }
    });
    tasks.sort_by_key(|t| t.id);
    TaskDump { tasks }
}

impl fmt::Display for TaskDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<[String; 7]> = self
            .tasks
            .iter()
            .map(|t| {
                [
                    t.id.to_string(),
                    t.name.clone().unwrap_or_else(|| "-".into()),
                    t.state.to_string(),
                    duration_cell(t.age),
                    t.polls.map_or_else(|| "-".into(), |p| p.to_string()),
                    duration_cell(t.since_last_poll),
                    t.location.to_string(),
                ]
            })
            .collect();
        let header = ["ID", "NAME", "STATE", "AGE", "POLLS", "IDLE", "SPAWNED AT"];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        writeln!(f, "{} task(s)", self.tasks.len())?;
        write_row(f, &header.map(str::to_owned), &widths)?;
        for row in &rows {
            write_row(f, row, &widths)?;
        }
        Ok(())
    }
}

fn write_row(f: &mut fmt::Formatter<'_>, row: &[String; 7], widths: &[usize; 7]) -> fmt::Result {
    let mut line = String::new();
    for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
        if i + 1 == row.len() {
            line.push_str(cell); // last column: no padding
        } else {
            line.push_str(&format!("{cell:<width$}  "));
        }
    }
    writeln!(f, "{}", line.trim_end())
}

fn duration_cell(d: Option<Duration>) -> String {
    match d {
        None => "-".into(),
        Some(d) if d < Duration::from_millis(1) => format!("{}us", d.as_micros()),
        Some(d) if d < Duration::from_secs(1) => format!("{}ms", d.as_millis()),
        Some(d) => format!("{:.1}s", d.as_secs_f64()),
    }
}
