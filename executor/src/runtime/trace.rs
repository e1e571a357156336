//! The `tracing` feature: every task runs inside a span named `task`, with its id, name and
//! spawn location as fields, entered on every poll — so whatever a task logs carries which
//! task logged it, whichever worker polled it.

use std::future::Future;
use std::panic::Location;

use tracing::Instrument;

use crate::task::Id;

/// Wraps `future` in its task's span. The span's parent is the span current at the spawn
/// (tracing's default), so a task spawned while handling a request stays under it.
pub(crate) fn instrument<F: Future>(
    future: F,
    id: Id,
    name: Option<&str>,
    location: &'static Location<'static>,
) -> tracing::instrument::Instrumented<F> {
    let span = tracing::info_span!(
        "task",
        task.id = id.as_u64(),
        task.name = name,
        task.spawned_at = %location,
    );
    future.instrument(span)
}
