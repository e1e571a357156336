//! magpie's executor-agnostic async synchronization primitives.
