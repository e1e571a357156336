#!/usr/bin/env bash
# Issue 20: magpie on Windows. Checks the whole workspace for x86_64-pc-windows-gnu (warnings
# denied), then runs the executor, sync, timers, reactor (net) and facade tests for that target
# under Wine. Everything comes from Debian's packages and rustup; a step that cannot run fails
# this script (nothing is skipped).
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-pc-windows-gnu
export CARGO_TARGET_DIR=target/windows

echo "--> tools: MinGW-w64 (the linker) and Wine (the test runner), from Debian"
if ! command -v x86_64-w64-mingw32-gcc >/dev/null || ! command -v wine >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q wine64 gcc-mingw-w64-x86-64 >/dev/null
fi
rustup target add "$target"

echo "--> cargo check --target $target --workspace --all-targets --all-features, warnings denied"
RUSTFLAGS="-D warnings" cargo check --target "$target" --workspace --all-targets --all-features

echo "--> a Wine prefix of our own, with the DLL that Debian's Wine 8 lacks (.ci/wine/)"
export WINEPREFIX="$PWD/target/wine-prefix" WINEDEBUG=-all
mkdir -p "$WINEPREFIX"
wineboot --init >/dev/null 2>&1 || true # prints much, may "fail" headless; checked below
system32="$WINEPREFIX/drive_c/windows/system32"
test -d "$system32" || { echo "ERROR: wineboot did not create $system32" >&2; exit 1; }
x86_64-w64-mingw32-gcc -shared -O2 -o "$system32/bcryptprimitives.dll" \
    .ci/wine/bcryptprimitives.c -ladvapi32

echo "--> one wineserver for the whole run"
# By default the wineserver exits a few seconds after its last client; a test binary that
# starts while it is exiting dies with "wine client error: recvmsg: Connection reset by peer"
# (seen in CI between two test binaries). One server that lives until this script ends
# closes that window.
wineserver -w                      # the one wineboot started, gone
wineserver -p                      # persistent: runs until killed
trap 'wineserver -k 2>/dev/null || true' EXIT

echo "--> the tests, for $target, under Wine"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
# `--tests`: every test binary (unit and integration); doctests are not cross-compiled.
cargo test --target "$target" --all-features --tests \
    -p magpie-executor -p magpie-sync -p magpie-timers -p magpie-reactor -p magpie
