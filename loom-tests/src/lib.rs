//! Loom models of magpie's scheduler, task state machine and sync primitives.
//!
//! The models live in `tests/` (one group per file) and exist only under `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p magpie-loom-tests --release
//! ```
//!
//! This library holds the few helpers the models share (under `--cfg loom` only): `model` (loom's explorer with the
//! project's bounds) and `DropCounter` (counts how often something was dropped, so a model
//! can assert "exactly once"). See `docs/loom.md`.

#[cfg(loom)]
mod helpers;

#[cfg(loom)]
pub use helpers::*;
