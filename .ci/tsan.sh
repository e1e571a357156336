#!/usr/bin/env bash
# ThreadSanitizer over the executor's, sync's, timers' and reactor's tests and the root crate's
# stress tests (docs/reliability.md). std is rebuilt with TSan instrumentation (-Zbuild-std), so
# every access is seen. Fails loudly on the first report (halt_on_error) and never skips: a
# missing toolchain component is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
start=$(date +%s)

echo "==> rustup +nightly component add rust-src"
if ! rustup +nightly component add rust-src; then
    echo "ERROR: installing rust-src failed; the ThreadSanitizer run cannot be skipped" >&2
    exit 1
fi

target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=thread"
export RUSTDOCFLAGS="-Zsanitizer=thread"
# Backtraces of the tests' expected panics are symbolized slowly in an instrumented binary,
# enough to trip the tests' own safety-net timeouts.
export RUST_BACKTRACE=0
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/.ci/tsan.supp"
export CARGO_TARGET_DIR=target/tsan
tsan_test() {
    cargo +nightly test -Zbuild-std --target "$target" "$@"
}

echo "==> the canary: a planted data race must be reported (the sanitizer is live here)"
mkdir -p "$CARGO_TARGET_DIR"
cat > "$CARGO_TARGET_DIR/canary.rs" <<'RUST'
static mut SHARED: u64 = 0;
fn main() {
    // Two threads write one `static mut` with no synchronisation: a data race, on purpose.
    let writer = std::thread::spawn(|| unsafe { SHARED += 1 });
    unsafe { SHARED += 1 };
    writer.join().unwrap();
}
RUST
# The race is in the canary's own code, so its std need not be instrumented (the tests' is).
rustc +nightly -Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer --target "$target" \
    -O --edition 2021 -A static_mut_refs -o "$CARGO_TARGET_DIR/canary" "$CARGO_TARGET_DIR/canary.rs"
if canary_out=$("$CARGO_TARGET_DIR/canary" 2>&1); then
    echo "ERROR: ThreadSanitizer did not report the planted race; its results would mean nothing" >&2
    exit 1
fi
if ! grep -q "WARNING: ThreadSanitizer: data race" <<<"$canary_out"; then
    echo "ERROR: the canary failed without a ThreadSanitizer report:" >&2
    echo "$canary_out" >&2
    exit 1
fi
echo "the planted race was reported"

echo "==> executor, sync, timers, reactor: every unit and integration test"
# `idle_cpu` and `idle_cpu_driving` measure CPU time, which TSan's shadow-memory work inflates;
# they are run (not skipped) and pass because they measure an idle runtime.
# `fault-injection`: without it cargo would leave out executor/tests/faults.rs without a word.
tsan_test -p magpie-executor -p magpie-sync -p magpie-timers -p magpie-reactor --lib --tests \
    --features magpie-executor/fault-injection
echo "==> the stress tests: many sockets and timers with workers driving the reactor; all parts together"
tsan_test -p magpie --test driving_turn --test together --test sim

printf '\nThreadSanitizer finished in %ss\n' "$(( $(date +%s) - start ))"
