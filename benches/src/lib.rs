//! Benchmarks of magpie side by side with tokio and async-executor.
