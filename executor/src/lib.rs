//! magpie's multi-threaded work-stealing executor.
