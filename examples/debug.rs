//! Debug mode at work: each classic mistake planted, and the tool that finds it.
//!
//! ```text
//! cargo run --example debug
//! ```
//!
//! 1. A blocking call inside async code: the watchdog names the task *while* the worker is
//!    stuck (and what is queued behind it), then the slow-poll detector reports the poll.
//! 2. A task that never finishes: the task dump shows it waiting, with where it was spawned,
//!    and the shutdown report names it.
//! 3. A panic nobody looks at: reported when its handle is dropped unread.
//! 4. The metrics, exported as Prometheus text.
//!
//! docs/debugging.md pastes this program's output.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use magpie::sync::Event;
use magpie::{task, Runtime, RuntimeMetrics, WorkerMetrics};

fn main() {
    let rt = Runtime::builder()
        .worker_threads(2)
        // Debug mode, as `MAGPIE_DEBUG=1` would set it.
        .slow_poll_threshold(Duration::from_millis(100))
        .build()
        .expect("start the runtime");

    println!("== 1. a blocking call in async code ==");
    rt.block_on(async {
        let report = task::Builder::new()
            .name("build-report")
            .spawn(async {
                // Queued behind us on this worker.
                let follow_up = magpie::spawn(async { "sent" });
                // The mistake: a blocking call (it should be `magpie::time::sleep(...).await`
                // or `spawn_blocking`).
                std::thread::sleep(Duration::from_millis(300));
                follow_up.await.unwrap()
            })
            .unwrap();
        println!("report: {}", report.await.unwrap());
    });

    println!("\n== 2. a task that never finishes ==");
    let never_set = Arc::new(Event::new());
    let waiter = never_set.clone();
    let _stuck = task::Builder::new()
        .name("wait-for-config")
        .spawn_on(async move { waiter.wait().await }, &rt.handle());
    let finished = rt.spawn(async { 42 });
    std::thread::sleep(Duration::from_millis(50));
    print!("{}", rt.handle().dump());

    println!("\n== 3. a panic nobody looks at ==");
    let ignored = rt.spawn(async { panic!("disk full") });
    while !ignored.is_finished() {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(ignored); // unread: debug mode reports it
    assert_eq!(rt.block_on(finished).unwrap(), 42);

    println!("\n== 4. the metrics ==");
    print!("{}", prometheus_text(&rt.handle().metrics()));

    println!("\n== shutdown ==");
    println!("{}", rt.shutdown_timeout(Duration::from_secs(5)));
}

/// A per-worker metric: name, help, and how to read it.
type PerWorker = (&'static str, &'static str, fn(&WorkerMetrics) -> f64);

/// The metrics in Prometheus' text exposition format, ready to serve from a `/metrics`
/// endpoint.
fn prometheus_text(m: &RuntimeMetrics) -> String {
    let mut out = String::new();
    let global = [
        ("live_tasks", "Tasks alive.", m.live_tasks as f64),
        (
            "tasks_spawned_total",
            "Tasks spawned.",
            m.tasks_spawned as f64,
        ),
        (
            "injector_depth",
            "Tasks in the global queue.",
            m.injector_depth as f64,
        ),
        (
            "blocking_threads_busy",
            "Blocking threads running a task.",
            m.blocking_threads_busy as f64,
        ),
        (
            "reactor_events_total",
            "I/O events dispatched.",
            m.reactor_events as f64,
        ),
        ("pending_timers", "Timers pending.", m.pending_timers as f64),
        (
            "task_depot_bytes",
            "Memory of finished tasks in the workers' depot.",
            m.task_depot_bytes as f64,
        ),
    ];
    for (name, help, value) in global {
        let _ = writeln!(out, "# HELP magpie_{name} {help}\nmagpie_{name} {value}");
    }
    let per_worker: [PerWorker; 4] = [
        ("worker_polls_total", "Task polls per worker.", |w| {
            w.polls as f64
        }),
        ("worker_steals_total", "Steal operations per worker.", |w| {
            w.steal_operations as f64
        }),
        ("worker_busy_seconds_total", "Busy time per worker.", |w| {
            w.busy_time.as_secs_f64()
        }),
        (
            "worker_task_cache_bytes",
            "Memory of finished tasks kept per worker.",
            |w| w.task_cache_bytes as f64,
        ),
    ];
    for (name, help, value) in per_worker {
        let _ = writeln!(out, "# HELP magpie_{name} {help}");
        for (i, w) in m.workers.iter().enumerate() {
            let _ = writeln!(out, "magpie_{name}{{worker=\"{i}\"}} {}", value(w));
        }
    }
    out
}
