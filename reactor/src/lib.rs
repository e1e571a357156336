//! magpie's shared I/O reactor: one thread on `polling` that wakes tasks on readiness.

pub mod timer_hook;

/// Placeholder until the reactor thread lands: the reactor issue replaces this with
/// `Poller::notify()` on the lazily started reactor thread.
fn reactor_notify() {
    let _ = timer_hook::timer_driver();
}
