//! `compare`: runs every workload on magpie, tokio and async-executor, interleaved
//! repetition by repetition, and prints a markdown table of medians and ratios.
//!
//! ```text
//! cargo run --release -p magpie-benches --bin compare -- \
//!     [--workers N[,N…]] [--reps R] [--only a,b] [--json out.json] [--quick]
//! ```
//!
//! Each repetition runs the workload once on every runtime, starting with a different
//! runtime each time (A B C, B C A, C A B, …), so machine noise hits all alike; ratios are
//! taken within a repetition, then their median reported. The `idle_task_memory` row is
//! measured in a child process per runtime (`compare --memory-child NAME`). Workloads that
//! serve requests (`http_hello`) also get a second table: requests per second and p99
//! latency, medians over the repetitions.
//!
//! Built with `--features mimalloc` (on Linux), every runtime allocates through mimalloc
//! instead of the system allocator: how much of a row is the allocator's.
//!
//! `--workers 1,2,4,8` is a sweep: the whole table is run and printed once per worker count
//! (fresh runtimes each time), then a scaling summary gives magpie / best peer for every
//! workload at every count, so how the ratio moves with the thread count shows in one place.

use std::fmt::Write as _;
use std::process::{self, Command};
use std::time::Instant;

use magpie_benches::http::{self, RequestStats};
use magpie_benches::sched_counts::SchedCounts;
use magpie_benches::stats::{median, median_ratio, pairwise_min};
use magpie_benches::{memory, workloads, RuntimeKind, Runtimes, Size, Workload};

/// `--features mimalloc`: every runtime allocates through mimalloc instead of the system
/// allocator (glibc's on Linux), to see which part of a row is the allocator's.
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The name of the memory row, for `--only`.
const MEMORY_ROW: &str = "idle_task_memory";

const USAGE: &str =
    "usage: compare [--workers N[,N...]] [--reps R] [--only a,b] [--json out.json] [--quick]
       compare --single RUNTIME [--workers N[,N...]] [--reps R] [--only a,b] [--quick] [--metrics]
       compare --memory-child RUNTIME [--workers N] [--tasks T]

  --workers N        worker threads per runtime (default 2)
  --workers 1,2,4,8  a sweep: the whole table once per worker count, then a scaling
                     summary of magpie / best peer per workload and count (with --json,
                     one document per count under \"sweep\")
  --reps R           timed repetitions per workload (default 10; 3 with --quick)
  --only a,b         only these workloads (idle_task_memory included)
  --json out.json    every sample, the medians and the ratios, as JSON
  --quick            the small sizes
  --single RUNTIME   that runtime alone, each run's time printed (for profilers)
  --metrics          with --single magpie: after each workload, what the scheduler did per
                     spawned task (polls, parks, steals, injector takes, LIFO hits, overflows)";

struct Options {
    /// The worker counts to run, in the order given; more than one is a sweep.
    workers: Vec<usize>,
    reps: usize,
    only: Option<Vec<String>>,
    json: Option<String>,
    quick: bool,
    memory_child: Option<RuntimeKind>,
    single: Option<RuntimeKind>,
    memory_tasks: Option<usize>,
    /// `--metrics`: the scheduler's counts after each workload (`--single magpie` only).
    metrics: bool,
}

fn fail(message: &str) -> ! {
    eprintln!("compare: {message}\n{USAGE}");
    process::exit(2)
}

fn parse_options() -> Options {
    let mut options = Options {
        workers: vec![2],
        reps: 0,
        only: None,
        json: None,
        quick: false,
        memory_child: None,
        single: None,
        memory_tasks: None,
        metrics: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| fail(&format!("{name} needs a value")))
        };
        let number = |name: &str, text: String| -> usize {
            match text.parse() {
                Ok(n) if n > 0 => n,
                _ => fail(&format!("{name} takes a positive number, not {text:?}")),
            }
        };
        match arg.as_str() {
            "--workers" => {
                options.workers = parse_worker_counts(&value("--workers"))
                    .unwrap_or_else(|message| fail(&format!("--workers: {message}")))
            }
            "--reps" => options.reps = number("--reps", value("--reps")),
            "--only" => {
                options.only = Some(value("--only").split(',').map(str::to_owned).collect())
            }
            "--json" => options.json = Some(value("--json")),
            "--quick" => options.quick = true,
            "--memory-child" => {
                let name = value("--memory-child");
                options.memory_child = Some(
                    RuntimeKind::from_name(&name)
                        .unwrap_or_else(|| fail(&format!("unknown runtime {name:?}"))),
                );
            }
            "--single" => {
                let name = value("--single");
                options.single = Some(
                    RuntimeKind::from_name(&name)
                        .unwrap_or_else(|| fail(&format!("unknown runtime {name:?}"))),
                );
            }
            "--tasks" => options.memory_tasks = Some(number("--tasks", value("--tasks"))),
            "--metrics" => options.metrics = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                process::exit(0);
            }
            other => fail(&format!("unknown argument {other:?}")),
        }
    }
    if options.reps == 0 {
        options.reps = if options.quick { 3 } else { 10 };
    }
    // The counts come from magpie's own metrics, of a runtime run alone.
    if options.metrics && options.single != Some(RuntimeKind::Magpie) {
        fail("--metrics needs --single magpie");
    }
    // A memory child measures one runtime at one count; the parent passes it one number.
    if options.memory_child.is_some() && options.workers.len() > 1 {
        fail("--memory-child takes a single worker count");
    }
    options
}

/// Parses `--workers`: one positive count (`"2"`) or a comma-separated list of them
/// (`"1,2,4"`), in the order the tables will be run. A count given twice is refused rather
/// than run twice: the scaling summary has one column per count.
fn parse_worker_counts(text: &str) -> Result<Vec<usize>, String> {
    let mut counts = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        let count = match item.parse::<usize>() {
            Ok(count) if count > 0 => count,
            _ if item.is_empty() => return Err(format!("empty worker count in {text:?}")),
            _ => {
                return Err(format!(
                    "worker counts are positive numbers, not {item:?} (in {text:?})"
                ))
            }
        };
        if counts.contains(&count) {
            return Err(format!("worker count {count} is listed twice in {text:?}"));
        }
        counts.push(count);
    }
    Ok(counts)
}

/// The samples of one workload: seconds per repetition, per runtime (in `RuntimeKind::ALL`
/// order), or bytes per task for the memory row; and, for a workload that serves requests,
/// what its client saw in each repetition (empty for the others).
struct Row {
    name: String,
    unit: Unit,
    samples: [Vec<f64>; 3],
    requests: [Vec<RequestStats>; 3],
}

#[derive(Clone, Copy, PartialEq)]
enum Unit {
    Seconds,
    BytesPerTask,
}

impl Row {
    fn samples(&self, kind: RuntimeKind) -> &[f64] {
        &self.samples[kind as usize]
    }

    fn median(&self, kind: RuntimeKind) -> f64 {
        median(self.samples(kind)).expect("no samples")
    }

    fn ratio_to_tokio(&self, kind: RuntimeKind) -> f64 {
        median_ratio(self.samples(kind), self.samples(RuntimeKind::Tokio)).expect("no samples")
    }

    fn magpie_to_best_peer(&self) -> f64 {
        let best = pairwise_min(
            self.samples(RuntimeKind::Tokio),
            self.samples(RuntimeKind::AsyncExecutor),
        );
        median_ratio(self.samples(RuntimeKind::Magpie), &best).expect("no samples")
    }

    fn format(&self, value: f64) -> String {
        match self.unit {
            Unit::BytesPerTask => format!("{value:.0} B/task"),
            Unit::Seconds => format_seconds(value),
        }
    }

    fn has_requests(&self) -> bool {
        self.requests.iter().any(|stats| !stats.is_empty())
    }

    /// One figure of the request stats of `kind`, per repetition.
    fn request_samples(&self, kind: RuntimeKind, figure: fn(&RequestStats) -> f64) -> Vec<f64> {
        self.requests[kind as usize].iter().map(figure).collect()
    }
}

fn format_seconds(value: f64) -> String {
    if value >= 1.0 {
        format!("{value:.2} s")
    } else if value >= 1e-3 {
        format!("{:.2} ms", value * 1e3)
    } else {
        format!("{:.1} µs", value * 1e6)
    }
}

/// The request figures of the second table and the JSON: name, JSON key, how to get it, how
/// to print it.
type RequestFigure = (
    &'static str,
    &'static str,
    fn(&RequestStats) -> f64,
    fn(f64) -> String,
);

const REQUEST_FIGURES: [RequestFigure; 2] = [
    (
        "requests/s",
        "requests_per_second",
        |stats| stats.requests_per_second,
        |value| format!("{value:.0}"),
    ),
    (
        "p99 latency",
        "p99_latency_seconds",
        |stats| stats.p99_latency,
        format_seconds,
    ),
];

/// The orders of the runtimes' runs in a repetition, taken in turn: every runtime starts a
/// repetition, and follows each of the others, equally often over six (a rotation alone would
/// have each always run right after the same one, and take what it left behind: threads
/// still spinning, tasks still finishing).
const RUN_ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [1, 2, 0],
    [2, 0, 1],
    [0, 2, 1],
    [2, 1, 0],
    [1, 0, 2],
];

/// Times `workload` on every runtime: one untimed warm-up run each, then `reps` rounds in
/// the orders of [`RUN_ORDERS`].
fn measure(workload: &Workload, runtimes: &Runtimes, reps: usize, size: Size) -> Row {
    for kind in RuntimeKind::ALL {
        workload.run(runtimes, kind, size);
    }
    // The warm-up's request stats are not kept.
    let _ = http::take_last_stats();
    let mut samples: [Vec<f64>; 3] = Default::default();
    let mut requests: [Vec<RequestStats>; 3] = Default::default();
    for rep in 0..reps {
        for index in RUN_ORDERS[rep % RUN_ORDERS.len()] {
            let kind = RuntimeKind::ALL[index];
            let start = Instant::now();
            workload.run(runtimes, kind, size);
            samples[kind as usize].push(start.elapsed().as_secs_f64());
            requests[kind as usize].extend(http::take_last_stats());
        }
    }
    Row {
        name: workload.name.to_owned(),
        unit: Unit::Seconds,
        samples,
        requests,
    }
}

/// Measures idle-task memory in one child process per runtime, `reps` times each (bounded
/// to 3: every child spawns its tasks anew), each child with `workers` worker threads.
fn measure_memory(options: &Options, workers: usize) -> Row {
    let exe = std::env::current_exe().expect("cannot find the compare binary");
    let tasks = memory_tasks(options);
    let mut samples: [Vec<f64>; 3] = Default::default();
    for rep in 0..options.reps.min(3) {
        for offset in 0..RuntimeKind::ALL.len() {
            let kind = RuntimeKind::ALL[(rep + offset) % RuntimeKind::ALL.len()];
            let output = Command::new(&exe)
                .args(["--memory-child", kind.name()])
                .args(["--workers", &workers.to_string()])
                .args(["--tasks", &tasks.to_string()])
                .output()
                .expect("cannot start the memory child");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "memory child for {} failed: {}{}",
                kind.name(),
                stdout,
                String::from_utf8_lossy(&output.stderr)
            );
            let bytes = stdout
                .trim()
                .strip_prefix("bytes_per_task=")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("memory child printed {stdout:?}"));
            samples[kind as usize].push(bytes);
        }
    }
    Row {
        name: format!("{MEMORY_ROW} ({tasks} tasks)"),
        unit: Unit::BytesPerTask,
        samples,
        requests: Default::default(),
    }
}

/// `--single RUNTIME`: runs the chosen workloads on that runtime alone with `workers` worker
/// threads, `reps` times each, printing each run's time; for profilers (callgrind, perf),
/// which want one runtime's code only.
fn run_single<'a>(
    kind: RuntimeKind,
    options: &Options,
    workers: usize,
    chosen: impl Iterator<Item = &'a Workload>,
    size: Size,
) {
    let runtimes = Runtimes::new(workers);
    for workload in chosen {
        let before = options.metrics.then(|| runtimes.magpie.handle().metrics());
        for _ in 0..options.reps {
            let start = Instant::now();
            workload.run(&runtimes, kind, size);
            let elapsed = start.elapsed();
            let requests = http::take_last_stats().map_or(String::new(), |stats| {
                format!(
                    " ({:.0} requests/s, p99 {})",
                    stats.requests_per_second,
                    format_seconds(stats.p99_latency)
                )
            });
            println!(
                "{} on {}: {:?}{requests}",
                workload.name,
                kind.name(),
                elapsed
            );
        }
        if let Some(before) = before {
            let counts = SchedCounts::between(&before, &runtimes.magpie.handle().metrics());
            println!(
                "{} on magpie, {workers} workers, {} runs: {}",
                workload.name,
                options.reps,
                counts.per_task_line(options.reps)
            );
        }
    }
}

fn memory_tasks(options: &Options) -> usize {
    options
        .memory_tasks
        .unwrap_or(if options.quick { 100_000 } else { 1_000_000 })
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| workload | magpie | tokio | async-executor | magpie / tokio | async-executor / tokio | magpie / best peer |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2}× | {:.2}× | {:.2}× |",
            row.name,
            row.format(row.median(RuntimeKind::Magpie)),
            row.format(row.median(RuntimeKind::Tokio)),
            row.format(row.median(RuntimeKind::AsyncExecutor)),
            row.ratio_to_tokio(RuntimeKind::Magpie),
            row.ratio_to_tokio(RuntimeKind::AsyncExecutor),
            row.magpie_to_best_peer(),
        );
    }
    out
}

/// The second table: for each row with request stats, its requests per second and p99
/// latency per runtime (medians over the repetitions), and magpie's over tokio's.
fn request_table(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows.iter().filter(|row| row.has_requests()) {
        let _ = writeln!(
            out,
            "\n| {} | magpie | tokio | async-executor | magpie / tokio |",
            row.name
        );
        out.push_str("|---|---:|---:|---:|---:|\n");
        for (label, _, figure, format) in REQUEST_FIGURES {
            let samples = RuntimeKind::ALL.map(|kind| row.request_samples(kind, figure));
            let [magpie, tokio, async_executor] = samples
                .each_ref()
                .map(|s| median(s).map_or("-".to_owned(), format));
            let ratio = median_ratio(&samples[0], &samples[1])
                .map_or("-".to_owned(), |ratio| format!("{ratio:.2}×"));
            let _ = writeln!(
                out,
                "| {label} | {magpie} | {tokio} | {async_executor} | {ratio} |"
            );
        }
    }
    out
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_numbers(values: &[f64]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:e}")).collect();
    format!("[{}]", items.join(", "))
}

fn json(options: &Options, workers: usize, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{{");
    let _ = writeln!(out, "  \"workers\": {workers},");
    let _ = writeln!(out, "  \"reps\": {},", options.reps);
    let _ = writeln!(out, "  \"quick\": {},", options.quick);
    let _ = writeln!(out, "  \"cpu\": {},", json_string(&cpu_model()));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(out, "  \"cores\": {cores},");
    let _ = writeln!(out, "  \"workloads\": [");
    for (i, row) in rows.iter().enumerate() {
        let unit = match row.unit {
            Unit::Seconds => "seconds",
            Unit::BytesPerTask => "bytes_per_task",
        };
        let _ = writeln!(out, "    {{");
        let _ = writeln!(out, "      \"name\": {},", json_string(&row.name));
        let _ = writeln!(out, "      \"unit\": \"{unit}\",");
        for kind in RuntimeKind::ALL {
            let mut requests = String::new();
            if row.has_requests() {
                for (_, key, figure, _) in REQUEST_FIGURES {
                    let samples = row.request_samples(kind, figure);
                    let median = median(&samples).unwrap_or(f64::NAN);
                    let _ = write!(
                        requests,
                        ", \"{key}\": {{\"median\": {median:e}, \"samples\": {}}}",
                        json_numbers(&samples)
                    );
                }
            }
            let _ = writeln!(
                out,
                "      \"{}\": {{\"median\": {:e}, \"ratio_to_tokio\": {:e}, \"samples\": {}{requests}}},",
                kind.name(),
                row.median(kind),
                row.ratio_to_tokio(kind),
                json_numbers(row.samples(kind))
            );
        }
        let _ = writeln!(
            out,
            "      \"magpie_to_best_peer\": {:e}",
            row.magpie_to_best_peer()
        );
        let comma = if i + 1 < rows.len() { "," } else { "" };
        let _ = writeln!(out, "    }}{comma}");
    }
    let _ = writeln!(out, "  ]");
    let _ = writeln!(out, "}}");
    out
}

/// The sweep's JSON: today's document for each worker count, in run order, under `"sweep"`.
fn json_sweep(documents: &[String]) -> String {
    let mut out = String::from("{\n  \"sweep\": [\n");
    for (i, document) in documents.iter().enumerate() {
        let lines: Vec<&str> = document.trim_end().lines().collect();
        for (j, line) in lines.iter().enumerate() {
            let comma = if j + 1 == lines.len() && i + 1 < documents.len() {
                ","
            } else {
                ""
            };
            let _ = writeln!(out, "    {line}{comma}");
        }
    }
    out.push_str("  ]\n}\n");
    out
}

/// The peer with the lower median at this count, by a short name that fits a table cell.
fn best_peer_name(row: &Row) -> &'static str {
    if row.median(RuntimeKind::AsyncExecutor) < row.median(RuntimeKind::Tokio) {
        "a-e"
    } else {
        "tokio"
    }
}

/// The sweep's last table: one row per workload, one column per worker count, each cell
/// magpie / best peer at that count (the same figure as the last column of that count's
/// table) and which peer was faster there.
fn scaling_summary(runs: &[(usize, Vec<Row>)]) -> String {
    let mut out = String::from(
        "scaling summary: magpie / best peer per worker count (below 1.00 magpie is faster; \
         the best peer is the one with the lower median, a-e = async-executor)\n\n| workload |",
    );
    for (workers, _) in runs {
        let _ = write!(out, " workers = {workers} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(runs.len()));
    out.push('\n');
    // Every count ran the same workloads in the same order; the rows are matched by name all
    // the same, so a row missing at one count shows as "-" rather than shifting the others.
    let names = runs.first().map_or(&[][..], |(_, rows)| &rows[..]);
    for name in names.iter().map(|row| &row.name) {
        let _ = write!(out, "| {name} |");
        for (_, rows) in runs {
            match rows.iter().find(|row| &row.name == name) {
                Some(row) => {
                    let _ = write!(
                        out,
                        " {:.2} ({}) |",
                        row.magpie_to_best_peer(),
                        best_peer_name(row)
                    );
                }
                None => out.push_str(" - |"),
            }
        }
        out.push('\n');
    }
    out
}

fn main() {
    let options = parse_options();
    if let Some(kind) = options.memory_child {
        let bytes = memory::idle_task_bytes(kind, options.workers[0], memory_tasks(&options));
        println!("bytes_per_task={bytes}");
        return;
    }

    let size = if options.quick {
        Size::Quick
    } else {
        Size::Full
    };
    let all = workloads();
    let wanted = |name: &str| {
        options
            .only
            .as_ref()
            .map_or(true, |only| only.iter().any(|o| o == name))
    };
    if let Some(only) = &options.only {
        for name in only {
            if name != MEMORY_ROW && !all.iter().any(|w| w.name == name) {
                fail(&format!("unknown workload {name:?}"));
            }
        }
    }
    // With one count the output is exactly what it was before sweeps existed; the per-count
    // headers and the summary only appear when there is more than one table to tell apart.
    let sweep = options.workers.len() > 1;

    if let Some(kind) = options.single {
        for &workers in &options.workers {
            if sweep {
                println!("workers = {workers}");
            }
            let chosen = all.iter().filter(|w| wanted(w.name));
            run_single(kind, &options, workers, chosen, size);
        }
        return;
    }

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut runs = Vec::new();
    let mut documents = Vec::new();
    for (index, &workers) in options.workers.iter().enumerate() {
        // Fresh runtimes per count, dropped before the memory children start so that their
        // idle threads do not share the machine with what is measured next.
        let runtimes = Runtimes::new(workers);
        let mut rows = Vec::new();
        for workload in all.iter().filter(|w| wanted(w.name)) {
            if sweep {
                eprintln!("compare: workers = {workers}: {} …", workload.name);
            } else {
                eprintln!("compare: {} …", workload.name);
            }
            rows.push(measure(workload, &runtimes, options.reps, size));
        }
        drop(runtimes);
        if wanted(MEMORY_ROW) {
            eprintln!("compare: {MEMORY_ROW} …");
            rows.push(measure_memory(&options, workers));
        }

        if index > 0 {
            println!();
        }
        println!(
            "workers = {}, reps = {}{}, {} cores, {}\n",
            workers,
            options.reps,
            if options.quick { ", quick" } else { "" },
            cores,
            cpu_model()
        );
        print!("{}", table(&rows));
        print!("{}", request_table(&rows));
        if let Some(path) = &options.json {
            documents.push(json(&options, workers, &rows));
            // A sweep's document so far, after each count: a sweep cut off by a time limit
            // (the lent machine's) keeps what it measured.
            if sweep {
                write_json(path, &json_sweep(&documents));
            }
        }
        runs.push((workers, rows));
    }
    if sweep {
        print!("\n{}", scaling_summary(&runs));
    }
    if let (Some(path), false) = (&options.json, sweep) {
        write_json(path, &documents.pop().expect("one run, one document"));
    }
}

/// Writes `text` to `path` whole or not at all (a temporary file renamed over it): a run cut
/// off while it writes leaves the last complete document.
fn write_json(path: &str, text: &str) {
    let temporary = format!("{path}.partial");
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .unwrap_or_else(|err| fail(&format!("cannot write {path}: {err}")));
}

#[cfg(test)]
mod tests {
    use super::parse_worker_counts;

    #[test]
    fn one_count_parses_as_before() {
        assert_eq!(parse_worker_counts("2"), Ok(vec![2]));
    }

    #[test]
    fn a_list_parses_in_order() {
        assert_eq!(parse_worker_counts("1,2,4"), Ok(vec![1, 2, 4]));
        assert_eq!(parse_worker_counts("8, 1"), Ok(vec![8, 1]));
    }

    #[test]
    fn bad_counts_are_clear_errors() {
        let zero = parse_worker_counts("0").unwrap_err();
        assert!(
            zero.contains("positive") && zero.contains("\"0\""),
            "{zero}"
        );
        let letter = parse_worker_counts("a").unwrap_err();
        assert!(
            letter.contains("positive") && letter.contains("\"a\""),
            "{letter}"
        );
        let in_list = parse_worker_counts("1,x,4").unwrap_err();
        assert!(in_list.contains("\"x\""), "{in_list}");
        assert!(parse_worker_counts("1,,2")
            .unwrap_err()
            .contains("empty worker count"));
        assert!(parse_worker_counts("").unwrap_err().contains("empty"));
        assert!(parse_worker_counts("2,1,2")
            .unwrap_err()
            .contains("listed twice"));
    }
}
