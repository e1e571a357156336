//! Linux fast path: registration and untimed waits straight on the poller's epoll descriptor.
//!
//! `polling`'s epoll backend does four syscalls of bookkeeping around every `Poller::wait`,
//! whatever the timeout: before the wait it programs its timerfd (`timerfd_settime`) and
//! re-arms it (`epoll_ctl`), after it reads its notification eventfd (`read`) and re-arms that
//! (`epoll_ctl`). On a loopback echo the reactor waits about once per message, so those four
//! calls were most of the thread's syscalls, two of them between an event arriving and its
//! task being woken. They buy nothing when the wait has no deadline (the timerfd is only for
//! deadlines) or has a zero timeout, and the eventfd only needs attention after it fired.
//!
//! So for those waits the reactor calls `epoll_wait` itself on [`polling::Poller`]'s
//! descriptor (`AsFd`), reading the keys `polling` would have returned. The poller's own two
//! descriptors are registered one-shot under `usize::MAX` (which no source key ever is, see
//! `source_table`): when such an event shows up — a `Poller::notify` or a leftover timer
//! expiry — the reactor makes one zero-timeout `Poller::wait`, which consumes the
//! notification, resets polling's "notified" flag and re-arms both. Waits with a deadline still
//! go through `Poller::wait`, for its nanosecond timerfd.
//!
//! Sources are registered here too, with `EPOLLRDHUP` added to what `polling` asks for
//! (`polling`'s `Event` cannot express it): it makes a peer's end-of-stream edge
//! distinguishable from a data edge, which the short-read readiness clearing relies on (see
//! `source.rs`). Deregistration stays `Poller::delete`.

use crate::source::SourceEvent;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// The key `polling` registers its notification eventfd and timerfd under.
pub(crate) const POLLER_KEY: usize = usize::MAX;

/// `epoll` flags meaning the read direction is ready (or hung up / in error).
const READ_FLAGS: u32 =
    (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// `epoll` flags meaning the write direction is ready (or hung up / in error).
const WRITE_FLAGS: u32 = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// `epoll` flags after which a short read may have left something behind: end-of-stream,
/// hang-up, error or urgent data.
const SUSPECT_FLAGS: u32 =
    (libc::EPOLLPRI | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;

/// Registers `fd` under `key` for both directions (and `EPOLLRDHUP`), edge-triggered.
///
/// # Safety
/// `fd` must stay open until it is deleted from the epoll set (as `Poller::add`'s contract).
pub(crate) unsafe fn add_edge(epoll: BorrowedFd<'_>, fd: RawFd, key: usize) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN
            | libc::EPOLLPRI
            | libc::EPOLLRDHUP
            | libc::EPOLLOUT
            | libc::EPOLLHUP
            | libc::EPOLLERR
            | libc::EPOLLET) as u32,
        u64: key as u64,
    };
    // SAFETY: `ev` is a valid `epoll_event` for the duration of the call; `epoll` is an open
    // epoll descriptor (borrowed) and the caller keeps `fd` open while it is registered.
    let rc = unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A buffer of raw epoll events.
pub(crate) struct RawEvents {
    list: Vec<libc::epoll_event>,
}

impl RawEvents {
    /// Room for `capacity` events per wait.
    pub(crate) fn with_capacity(capacity: usize) -> RawEvents {
        RawEvents {
            list: Vec::with_capacity(capacity),
        }
    }

    /// Waits on `epoll` with no deadline (`block`) or none at all (`!block`), replacing the
    /// buffer's events. A signal interrupting the wait just yields no events.
    pub(crate) fn wait(&mut self, epoll: BorrowedFd<'_>, block: bool) -> io::Result<()> {
        self.list.clear();
        let capacity = libc::c_int::try_from(self.list.capacity()).unwrap_or(libc::c_int::MAX);
        // SAFETY: the pointer and `capacity` describe the vector's spare capacity (its length
        // is 0), which the kernel fills with at most `capacity` initialised `epoll_event`s.
        let n = unsafe {
            libc::epoll_wait(
                epoll.as_raw_fd(),
                self.list.as_mut_ptr(),
                capacity,
                if block { -1 } else { 0 },
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(err)
            };
        }
        // SAFETY: the kernel initialised the first `n` (≤ capacity) entries.
        unsafe { self.list.set_len(n as usize) };
        Ok(())
    }

    /// The events collected by the last wait: each key with what it reports.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, SourceEvent)> + '_ {
        self.list.iter().map(|ev| {
            // Copied out by value: the struct is packed on some targets.
            let (flags, data) = (ev.events, ev.u64);
            (data as usize, decode(flags))
        })
    }
}

/// What an event's flags report for a source.
fn decode(flags: u32) -> SourceEvent {
    SourceEvent {
        readable: flags & READ_FLAGS != 0,
        writable: flags & WRITE_FLAGS != 0,
        suspect: flags & SUSPECT_FLAGS != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_data_end_of_stream_and_errors() {
        let data = decode(libc::EPOLLIN as u32);
        assert!(data.readable && !data.writable && !data.suspect);
        let eof = decode((libc::EPOLLIN | libc::EPOLLRDHUP) as u32);
        assert!(eof.readable && eof.suspect);
        let urgent = decode(libc::EPOLLPRI as u32);
        assert!(urgent.readable && urgent.suspect);
        let reset = decode((libc::EPOLLERR | libc::EPOLLHUP) as u32);
        assert!(reset.readable && reset.writable && reset.suspect);
        let out = decode(libc::EPOLLOUT as u32);
        assert!(!out.readable && out.writable && !out.suspect);
    }
}
