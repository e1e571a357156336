//! Linux fast path: registration, waits and notifications straight on the poller's epoll
//! descriptor.
//!
//! `polling`'s epoll backend does four syscalls of bookkeeping around every `Poller::wait`:
//! before the wait it programs its timerfd (`timerfd_settime`) and re-arms it (`epoll_ctl`),
//! after it reads its notification eventfd (`read`) and re-arms that (`epoll_ctl`). On a
//! loopback echo a driver waits about once per message, so those four calls were most of the
//! reactor's syscalls, two of them between an event arriving and its task being woken — and a
//! server always has a timer pending (a read timeout, a keep-alive deadline).
//!
//! So on Linux every wait is one syscall on [`polling::Poller`]'s descriptor (`AsFd`):
//! `epoll_pwait2`, whose timeout has nanoseconds (Linux 5.11+), or `epoll_wait` rounded *up* to
//! whole milliseconds where the kernel lacks it. Notifications go through a [`Notifier`] of our
//! own: an edge-triggered eventfd in the same epoll set under [`NOTIFY_KEY`], written only when
//! its flag goes from clear to set, so a burst of notifications costs one `write` and one
//! `read`. `polling`'s own timerfd and eventfd stay registered (under `usize::MAX`) but are
//! never armed or written, so they never report.
//!
//! Sources are registered here too, with `EPOLLRDHUP` added to what `polling` asks for
//! (`polling`'s `Event` cannot express it): it makes a peer's end-of-stream edge
//! distinguishable from a data edge, which the short-read readiness clearing relies on (see
//! `source.rs`). Deregistration stays `Poller::delete`.

use crate::notify_flag::NotifyFlag;
use crate::source::SourceEvent;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The key our [`Notifier`] is registered under. Source keys never have the top bit set (see
/// `source_table`), and `polling` uses `usize::MAX`.
pub(crate) const NOTIFY_KEY: usize = usize::MAX - 1;

/// Set once `epoll_pwait2` failed with anything but `EINTR` (kernels before 5.11, seccomp
/// filters): use `epoll_wait` from then on.
static NO_PWAIT2: AtomicBool = AtomicBool::new(false);

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

    /// Waits on `epoll` for at most `timeout` (`None`: until an event), replacing the buffer's
    /// events. A signal interrupting the wait just yields no events.
    pub(crate) fn wait(
        &mut self,
        epoll: BorrowedFd<'_>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.list.clear();
        let capacity = libc::c_int::try_from(self.list.capacity()).unwrap_or(libc::c_int::MAX);
        let n = match pwait2(epoll, &mut self.list, capacity, timeout) {
            Some(n) => n,
            None => {
                // SAFETY: the pointer and `capacity` describe the vector's spare capacity (its
                // length is 0), which the kernel fills with at most `capacity` initialised
                // `epoll_event`s.
                unsafe {
                    libc::epoll_wait(
                        epoll.as_raw_fd(),
                        self.list.as_mut_ptr(),
                        capacity,
                        millis_rounded_up(timeout),
                    )
                }
            }
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

/// The kernel's `struct __kernel_timespec`, which `epoll_pwait2` takes on every architecture:
/// two 64-bit fields (`libc::timespec` has 32-bit ones on 32-bit glibc targets).
#[cfg(target_os = "linux")]
#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// One `epoll_pwait2` (nanosecond timeout) into `list`'s spare capacity: the syscall's return
/// value, or `None` when it cannot be used here (the caller then uses `epoll_wait`). Any error
/// but `EINTR` on it — `ENOSYS` before Linux 5.11, `EPERM` from a seccomp filter that does not
/// know it (Docker's, systemd's), `EINVAL` — turns it off for the process: `epoll_wait` then
/// reports whatever error is real.
#[cfg(target_os = "linux")]
fn pwait2(
    epoll: BorrowedFd<'_>,
    list: &mut Vec<libc::epoll_event>,
    capacity: libc::c_int,
    timeout: Option<Duration>,
) -> Option<libc::c_int> {
    if NO_PWAIT2.load(Ordering::Relaxed) {
        return None;
    }
    let spec = timeout.map(|t| KernelTimespec {
        tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: t.subsec_nanos().into(),
    });
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const KernelTimespec);
    // Arguments: (epfd, events, maxevents, timeout, sigmask, sigsetsize).
    // SAFETY: events/`capacity` are `list`'s spare capacity (length 0); `spec_ptr` is null or a
    // live `__kernel_timespec`; a null sigmask leaves the mask alone (its size is ignored).
    let n = unsafe {
        libc::syscall(
            libc::SYS_epoll_pwait2,
            epoll.as_raw_fd(),
            list.as_mut_ptr(),
            capacity,
            spec_ptr,
            std::ptr::null::<libc::sigset_t>(),
            0usize,
        )
    };
    if n < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
        NO_PWAIT2.store(true, Ordering::Relaxed);
        return None;
    }
    // The kernel returns at most `capacity` (a c_int) or -1.
    Some(n as libc::c_int)
}

/// Android's libc has no `epoll_pwait2` number: always `epoll_wait`.
#[cfg(not(target_os = "linux"))]
fn pwait2(
    _epoll: BorrowedFd<'_>,
    _list: &mut Vec<libc::epoll_event>,
    _capacity: libc::c_int,
    _timeout: Option<Duration>,
) -> Option<libc::c_int> {
    None
}

/// `timeout` as `epoll_wait`'s milliseconds: `-1` for none, and a remainder rounded *up*, so a
/// wait never ends before its deadline with nothing to fire.
fn millis_rounded_up(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(t) => {
            let millis = t.as_nanos().div_ceil(1_000_000);
            libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX)
        }
    }
}

/// Interrupts a wait on the epoll set: an edge-triggered eventfd registered under
/// [`NOTIFY_KEY`], and a flag so that only the first of a burst of notifications writes it.
pub(crate) struct Notifier {
    fd: OwnedFd,
    /// Set from the first `notify` until the driver that saw the event `consume`s it.
    pending: NotifyFlag,
}

impl Notifier {
    /// A new eventfd, registered in `epoll`.
    pub(crate) fn new(epoll: BorrowedFd<'_>) -> io::Result<Notifier> {
        // SAFETY: plain syscall; on success we own the returned descriptor.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: NOTIFY_KEY as u64,
        };
        // SAFETY: `ev` is valid for the call; both descriptors are open, and `fd` lives in the
        // notifier for as long as the reactor (the whole process), so it stays registered.
        let rc = unsafe {
            libc::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Notifier {
            fd,
            pending: NotifyFlag::new(),
        })
    }

    /// Makes the current wait (or, if nobody waits, the next one) return.
    pub(crate) fn notify(&self) {
        self.pending.notify(|| {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to our open eventfd. It cannot block
            // (non-blocking) and cannot overflow the counter, which `consume` drains.
            let _ = unsafe {
                libc::write(
                    self.fd.as_raw_fd(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
        });
    }

    /// Called by the driver whose wait reported [`NOTIFY_KEY`]: drains the counter, then
    /// re-arms the flag (in that order: see `notify_flag.rs`).
    pub(crate) fn consume(&self) {
        self.pending.consume(|| {
            let mut count: u64 = 0;
            // SAFETY: reads at most 8 bytes into a live u64 from our open, non-blocking
            // eventfd (`EAGAIN` when already drained is fine).
            let _ = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut count as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
        });
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
    fn millisecond_waits_round_up() {
        assert_eq!(millis_rounded_up(None), -1);
        assert_eq!(millis_rounded_up(Some(Duration::ZERO)), 0);
        assert_eq!(millis_rounded_up(Some(Duration::from_nanos(1))), 1);
        assert_eq!(millis_rounded_up(Some(Duration::from_micros(1_500))), 2);
        assert_eq!(
            millis_rounded_up(Some(Duration::from_secs(u64::MAX))),
            libc::c_int::MAX
        );
    }

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
