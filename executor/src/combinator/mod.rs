//! Combinators that await several futures at once: asyncio's `gather`, `wait` and
//! `as_completed`, for any futures.
//!
//! | asyncio | here |
//! |---|---|
//! | `gather(*aws)` | [`join_all`](fn@join_all) (output order = input order) |
//! | `gather` that stops at the first exception | [`try_join_all`](fn@try_join_all) |
//! | `wait(aws, return_when=FIRST_COMPLETED)` | [`wait_any`](fn@wait_any) (or [`select`](fn@select) / [`race`](fn@race) for two) |
//! | `as_completed(aws)` | [`as_completed`](fn@as_completed) (a `Stream`) |
//!
//! The children run concurrently *within the task that awaits the combinator*, taking
//! turns on it; they never run in parallel. To run them in parallel on the worker
//! threads, spawn them and pass the `JoinHandle`s: those are ordinary futures, and
//! nothing here depends on the executor.
//!
//! Cancelling is dropping: a child that lost a race, or whose sibling failed in
//! [`try_join_all`](fn@try_join_all), is dropped at once, which stops it at its current
//! `.await` and runs its destructors. A `JoinHandle` child is the exception: dropping a
//! handle *detaches* its task, which runs on. To stop spawned tasks with the first failure,
//! use a [`TaskGroup`](crate::task::TaskGroup) (or [`abort`](crate::JoinHandle::abort) them).
//!
//! The many-children combinators give each child its own waker, so waking one child
//! costs O(1) however many there are: only woken children are polled again.

mod as_completed;
mod either;
mod future_set;
mod join_all;
mod ready;
mod select;
mod try_join_all;

pub use as_completed::{as_completed, AsCompleted};
pub use either::Either;
pub use join_all::{join_all, JoinAll};
#[cfg(not(loom))]
pub(crate) use select::replace_coin;
pub use select::{race, select, wait_any, Race, Select, WaitAny};
pub use try_join_all::{try_join_all, TryJoinAll};
