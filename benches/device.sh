#!/usr/bin/env bash
# The many-core measurements issues 13 and 16 ask for, as one script for the lent 16-core
# machine (see docs/benchmarks.md, "Running them"). That machine cannot fetch crates: build
# `compare` here, put it in a folder git ignores, and carry that folder:
#
#   cargo build --release -p magpie-benches --bin compare
#   mkdir -p device-bin && cp target/release/compare device-bin/
#   benches/device.sh device-bin          # on the lent machine; tables under $OUT
#
# Each step has a time bound, so whatever finished comes back even if a later step does not.
# About 5-6 minutes on 16 cores (an estimate from the 2-worker runs here: about 35 s per table
# at 5 repetitions). QUICK=1 runs the small sizes at 1 and 2 workers (a dry run, seconds).
set -uo pipefail

bin="${1:?usage: benches/device.sh DIR (a folder holding a release build of compare)}/compare"
out="${OUT:-device-out}"
mkdir -p "$out"
if [ -n "${QUICK:-}" ]; then
  counts=1,2 metric_counts=1,2 reps=2 quick=(--quick)
else
  counts=1,2,4,8,16 metric_counts=2,8,16 reps=5 quick=()
  [ "$(nproc)" -ge 16 ] || echo "device.sh: only $(nproc) CPUs here; the 16-worker runs oversubscribe" >&2
fi
scheduler_rows=spawn_many_local,spawn_many_remote_idle,spawn_many_remote_busy,yield_many,ping_pong,chained_spawn,spawn_nested,spawn_join_local,spawn_join_remote,spawn_await_one
status=0

run() { # run MINUTES NAME COMMAND...: stdout to $out/NAME.md, stderr to $out/NAME.err
  local minutes=$1 name=$2
  shift 2
  echo "device.sh: $name" >&2
  timeout --kill-after=10 "$((minutes * 60))" "$@" >"$out/$name.md" 2>"$out/$name.err" || {
    echo "device.sh: $name failed or ran past $minutes minutes (rc $?)" >&2
    status=1
  }
}

{ nproc; lscpu 2>/dev/null; } >"$out/machine.txt"
# 1. Every workload at every worker count, then the scaling summary (magpie / best peer).
run 5 sweep "$bin" --workers "$counts" --reps "$reps" "${quick[@]}" --json "$out/sweep.json"
# 2. What magpie's scheduler does per spawned task (parks: a worker going to sleep; steals;
#    injector takes) on the scheduler rows: the parking churn and steal storms issue 16 asks
#    about.
run 2 metrics "$bin" --single magpie --metrics --workers "$metric_counts" --reps "$reps" \
  "${quick[@]}" --only "$scheduler_rows"
# 3. The I/O rows at 16 workers once more, with more repetitions (issue 13).
if [ -z "${QUICK:-}" ]; then
  run 2 io16 "$bin" --workers 16 --reps 10 --only tcp_echo,tcp_echo_timeouts,http_hello
fi
exit "$status"
