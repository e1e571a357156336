//! magpie's shared I/O reactor: one thread on `polling` that wakes tasks on readiness.
//!
//! - [`Async<T>`] turns any file descriptor owner (`T: AsFd`) into an async I/O object.
//! - [`net`] has async TCP, UDP and Unix-domain sockets built on it.
//! - [`timer_hook`] lets a timer store be driven by the reactor thread's loop.
//!
//! The reactor is one process-wide thread, `magpie-reactor`, started on first use and shared
//! by every runtime and by plain `block_on`: it knows nothing of executors and only wakes
//! `Waker`s. See `docs/reactor.md` for its design.

#![cfg(unix)]

mod async_io;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod epoll;
mod loom;
pub mod net;
mod nonblocking;
mod reactor;
mod source;
mod source_table;
pub mod timer_hook;

pub use async_io::{Async, Readiness};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_short_read;

/// Wakes the reactor thread (starting it if needed) so it re-reads the timer deadline.
fn reactor_notify() {
    reactor::get().notify();
}
