#!/usr/bin/env bash
# The quick soak: a few seconds of random task churn, then the audit (every task accounted
# for, RSS, fds and threads back). Exits non-zero on any discrepancy.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
cargo run --release --example soak -- --quick
