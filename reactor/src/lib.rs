//! magpie's shared I/O reactor: one thread on `polling` that wakes tasks on readiness.
//!
//! - [`Async<T>`] turns any file descriptor owner (`T: AsFd`; on Windows any socket owner,
//!   `T: AsSocket`) into an async I/O object.
//! - [`net`] has async TCP, UDP and (on Unix) Unix-domain sockets built on it.
//! - [`timer_hook`] lets a timer store be driven by whoever drives the reactor.
//! - `process` (Unix) runs subprocesses with async pipes and exit waits (no thread per child).
//! - [`signal`] turns Unix signals into streams (`SIGTERM`, `SIGINT`, `SIGHUP`, …); on
//!   Windows it has `ctrl_c` only.
//! - [`driver`] lets an idle executor thread drive the reactor itself (the I/O fast path).
//! - [`stats`] reads the reactor's counters (events dispatched, sources, pending timers).
//!
//! The reactor is one process-wide poller with its thread, `magpie-reactor`, started on first
//! use and shared by every runtime and by plain `block_on`: it knows nothing of executors and
//! only wakes `Waker`s. Idle executor workers take the driving turn from that thread, so the
//! tasks their events wake run where they were woken. See `docs/reactor.md` for its design.
//!
//! # Platforms
//!
//! Linux and the other Unixes register every source once, edge-triggered (Linux through the
//! crate's own `epoll` calls, the others through `polling`). Windows has no edge-triggered
//! mode (`polling`'s IOCP backend): there a source is armed in oneshot mode for the
//! directions that tasks wait on, and re-armed after each event (`source.rs`). Unix-domain
//! sockets, `Async<T>` over file descriptors, signals other than Ctrl-C and subprocesses are
//! Unix-only.

#[cfg(not(any(unix, windows)))]
compile_error!("magpie-reactor supports Unix and Windows only");

mod async_io;
pub mod driver;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod epoll;
mod loom;
pub mod net;
mod nonblocking;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod notify_flag;
mod os;
#[cfg(unix)]
pub mod process;
mod reactor;
pub mod real_io;
mod report;
#[cfg(unix)]
pub mod signal;
#[cfg(windows)]
#[path = "signal_windows.rs"]
pub mod signal;
mod source;
mod source_table;
mod stats;
pub mod timer_hook;
mod turn;

pub use async_io::{Async, Readiness};
pub use stats::{stats, ReactorStats};

// Not under loom: they run real sockets and a real reactor; the loom models are in `turn.rs`.
// Unix only: they drive sources through Unix socket pairs; Windows runs `tests/net.rs`.
#[cfg(all(test, not(loom), unix))]
mod tests;
#[cfg(all(test, not(loom), unix))]
mod tests_short_read;

/// Wakes whoever drives the reactor (starting it if needed) so it re-reads the timer deadline.
fn reactor_notify() {
    reactor::get().notify();
}
