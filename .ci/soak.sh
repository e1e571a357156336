#!/usr/bin/env bash
# The quick soaks: a few seconds of random task churn, then the audit (every task accounted
# for, RSS, fds and threads back). Exits non-zero on any discrepancy.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
cargo run --release --example soak -- --quick
# A million tasks spawned while the workers are held: heap grows with the tasks alive, then
# goes back to where it started (examples/flood.rs; docs/reliability.md has a 10 M run).
cargo run --release --example flood -- --tasks 1000000
# 100 connections for 5 s with random timeouts, resets and aborted clients: every request
# accounted for, fds, threads and memory back (examples/net_soak.rs; docs/reliability.md has a
# 10-minute run with 1 000 connections).
cargo run --release --example net_soak -- --quick
