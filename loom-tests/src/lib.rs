//! Loom models of magpie's scheduler, task state machine and sync primitives.
