//! magpie's timers: `sleep`, `timeout` and `interval`, driven by the reactor thread.
