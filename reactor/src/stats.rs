//! Process-wide counters of the reactor, for runtime metrics.

use crate::{reactor, timer_hook};

/// A snapshot of the reactor's counters, returned by [`stats`].
///
/// Each field is read on its own, without stopping the reactor: fields taken from one call may
/// be a few events or timers apart from each other.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReactorStats {
    /// Readiness events dispatched to registered sources since the reactor started: one per
    /// source per wait that reported it, whoever drove (the reactor thread or an idle worker).
    /// The reactor's own notifications and events for sources already dropped are not counted.
    pub events: u64,
    /// I/O sources registered now: `Async<T>` values, sockets, pipes and the like.
    pub sources: usize,
    /// Timers pending now in the installed timer driver (`magpie-timers`' store); 0 when no
    /// driver is installed.
    pub pending_timers: usize,
    /// Times the reactor thread handed the driving turn to an executor worker that asked for
    /// it (docs/reactor.md, "The driving turn"), since the reactor started.
    pub turn_handovers: u64,
}

/// The reactor's counters now.
///
/// Cheap enough to call for every metrics scrape: an atomic load, the source table's lock for a
/// moment, and whatever the timer driver's
/// [`pending_timers`](timer_hook::TimerDriver::pending_timers) costs (`magpie-timers` locks each
/// of its shards for a moment). If nothing has started the reactor yet, returns all zeros
/// without starting it.
///
/// # Examples
/// ```
/// use magpie_reactor::Async;
///
/// let socket = Async::new(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
/// let stats = magpie_reactor::stats();
/// assert!(stats.sources >= 1, "the socket is registered");
/// println!(
///     "{} events dispatched, {} sources, {} timers pending",
///     stats.events, stats.sources, stats.pending_timers
/// );
/// drop(socket);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn stats() -> ReactorStats {
    let Some(reactor) = reactor::started() else {
        return ReactorStats::default();
    };
    ReactorStats {
        events: reactor.events(),
        sources: reactor.source_count(),
        pending_timers: timer_hook::timer_driver().map_or(0, |driver| driver.pending_timers()),
        turn_handovers: reactor.turn.handovers(),
    }
}
