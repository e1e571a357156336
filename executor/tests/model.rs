//! Model-based tests: random sequences of spawn, wake, abort, drop of a handle, await,
//! `TaskGroup` failure and cancel, and shutdown, run on the real multi-threaded runtime and
//! checked against a model of what each task's outcome may be. A failing sequence is shrunk by
//! proptest to a minimal one.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use magpie_executor::task::TaskGroup;
use magpie_executor::{JoinHandle, Runtime};
use magpie_sync::Event;
use proptest::prelude::*;

/// What a spawned task does.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Returns its value at once.
    Ready(u32),
    /// Waits for its gate, then returns its value.
    Gated(u32),
    /// Panics at once.
    Panics,
}

#[derive(Debug, Clone)]
enum Op {
    Spawn(Behaviour),
    /// Opens the gate of the task of this index (modulo the tasks spawned).
    Open(usize),
    Abort(usize),
    DropHandle(usize),
    Await(usize),
    /// A `TaskGroup` of `size` gated tasks, the one at `failing` (if any) failing at once.
    Group {
        size: usize,
        failing: Option<usize>,
    },
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        any::<u32>().prop_map(Behaviour::Ready),
        any::<u32>().prop_map(Behaviour::Gated),
        Just(Behaviour::Panics),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => behaviour().prop_map(Op::Spawn),
        2 => any::<usize>().prop_map(Op::Open),
        2 => any::<usize>().prop_map(Op::Abort),
        1 => any::<usize>().prop_map(Op::DropHandle),
        2 => any::<usize>().prop_map(Op::Await),
        1 => (1..5usize, proptest::option::of(0..5usize))
            .prop_map(|(size, failing)| Op::Group { size, failing: failing.map(|f| f % size) }),
    ]
}

/// The possible outcomes of awaiting a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Outcome {
    Value(u32),
    Cancelled,
    Panicked,
}

/// A task in the model, with the real handle.
struct Task {
    behaviour: Behaviour,
    gate: Arc<Event>,
    opened: bool,
    /// Aborted while it could not have finished (gated, gate closed).
    aborted_before_finish: bool,
    /// Aborted when it may already have finished.
    aborted_racing: bool,
    handle: Option<JoinHandle<u32>>,
}

impl Task {
    /// What awaiting it may give.
    fn allowed(&self) -> HashSet<Outcome> {
        let finished = match self.behaviour {
            Behaviour::Ready(v) | Behaviour::Gated(v) => Outcome::Value(v),
            Behaviour::Panics => Outcome::Panicked,
        };
        let mut allowed = HashSet::new();
        if self.aborted_before_finish {
            allowed.insert(Outcome::Cancelled);
        } else if self.aborted_racing {
            allowed.insert(Outcome::Cancelled);
            allowed.insert(finished);
        } else {
            allowed.insert(finished);
        }
        allowed
    }

    /// Can it finish without anyone opening its gate?
    fn can_finish(&self) -> bool {
        !matches!(self.behaviour, Behaviour::Gated(_)) || self.opened
    }
}

/// Counts the futures dropped: every task's future must be dropped exactly once by the end.
struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn eventually(what: &str, mut condition: impl FnMut() -> bool) -> Result<(), TestCaseError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        if Instant::now() > deadline {
            return Err(TestCaseError::fail(format!(
                "timed out waiting for: {what}"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn run_ops(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = Runtime::builder().worker_threads(2).build().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut futures_made = 0usize;
    let mut tasks: Vec<Task> = Vec::new();
    for op in ops {
        match op {
            Op::Spawn(behaviour) => {
                let gate = Arc::new(Event::new());
                let guard = DropGuard(dropped.clone());
                futures_made += 1;
                let task_gate = gate.clone();
                let handle = rt.spawn(async move {
                    let _guard = guard;
                    match behaviour {
                        Behaviour::Ready(v) => v,
                        Behaviour::Gated(v) => {
                            task_gate.wait().await;
                            v
                        }
                        Behaviour::Panics => panic!("planned panic"),
                    }
                });
                tasks.push(Task {
                    behaviour,
                    gate,
                    opened: false,
                    aborted_before_finish: false,
                    aborted_racing: false,
                    handle: Some(handle),
                });
            }
            Op::Open(i) if !tasks.is_empty() => {
                let len = tasks.len();
                let task = &mut tasks[i % len];
                task.opened = true;
                task.gate.set();
            }
            Op::Abort(i) if !tasks.is_empty() => {
                let len = tasks.len();
                let task = &mut tasks[i % len];
                if let Some(handle) = &task.handle {
                    if task.can_finish() {
                        task.aborted_racing = true;
                    } else if !task.aborted_racing {
                        task.aborted_before_finish = true;
                    }
                    handle.abort();
                }
            }
            Op::DropHandle(i) if !tasks.is_empty() => {
                let len = tasks.len();
                drop(tasks[i % len].handle.take());
            }
            Op::Await(i) if !tasks.is_empty() => {
                let len = tasks.len();
                let task = &mut tasks[i % len];
                let Some(handle) = task.handle.take() else {
                    continue;
                };
                if !task.can_finish() && !task.aborted_before_finish {
                    // It would wait forever: open its gate first.
                    task.opened = true;
                    task.gate.set();
                }
                let outcome = match rt.block_on(handle) {
                    Ok(v) => Outcome::Value(v),
                    Err(e) if e.is_cancelled() => Outcome::Cancelled,
                    Err(e) if e.is_panic() => Outcome::Panicked,
                    Err(e) => return Err(TestCaseError::fail(format!("unknown error {e:?}"))),
                };
                let allowed = task.allowed();
                prop_assert!(
                    allowed.contains(&outcome),
                    "task {} ({:?}): got {outcome:?}, allowed {allowed:?}",
                    i % len,
                    task.behaviour
                );
            }
            Op::Group { size, failing } => {
                let group_dropped = Arc::new(AtomicUsize::new(0));
                let joined = rt.block_on({
                    let group_dropped = group_dropped.clone();
                    async move {
                        let mut group: TaskGroup<u32, &'static str> = TaskGroup::new();
                        for index in 0..size {
                            let guard = DropGuard(group_dropped.clone());
                            let fails = failing == Some(index);
                            group.spawn(async move {
                                let _guard = guard;
                                if fails {
                                    return Err("planned failure");
                                }
                                std::future::pending::<()>().await;
                                Ok(0)
                            });
                        }
                        match failing {
                            // One fails: `join` reports it and every other task is cancelled.
                            Some(_) => Some(group.join().await.is_err()),
                            // None can finish: dropping the group cancels them all.
                            None => None,
                        }
                    }
                });
                prop_assert!(
                    joined != Some(false),
                    "the group's failure was not reported"
                );
                eventually("every group task's future dropped", || {
                    group_dropped.load(Ordering::SeqCst) == size
                })?;
            }
            _ => {}
        }
    }

    // Shutdown: everything still pending is cancelled, and every future is dropped once.
    let report = rt.shutdown_timeout(Duration::from_secs(10));
    prop_assert_eq!(report.still_running, 0);
    prop_assert_eq!(report.workers_left_running, 0);
    eventually("every future dropped", || {
        dropped.load(Ordering::SeqCst) >= futures_made
    })?;
    prop_assert_eq!(
        dropped.load(Ordering::SeqCst),
        futures_made,
        "a future dropped twice"
    );
    // A handle kept to the end resolves: a task never opened to a cancelled error.
    for task in tasks.iter_mut() {
        if let Some(handle) = task.handle.take() {
            let outcome = magpie_executor::block_on(handle);
            if !task.can_finish() {
                prop_assert!(
                    matches!(outcome, Err(ref e) if e.is_cancelled()),
                    "{outcome:?}"
                );
            }
        }
    }
    Ok(())
}

proptest! {
    // Each case starts a runtime: fewer cases than proptest's default 256, many ops each.
    // No failure file: a failing case is printed, shrunk, in the test's output.
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_task_programs_match_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run_ops(ops)?;
    }
}
