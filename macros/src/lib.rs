//! `#[magpie::main]` and `#[magpie::test]`: an `async fn main` or an async test, run to
//! completion on a runtime of its own.
//!
//! Use them through the `magpie` crate, which re-exports them, with their full docs and
//! examples: the code they generate names `::magpie::Builder`, so a crate that uses them
//! depends on `magpie` (not on this crate).

mod expand;

use proc_macro::TokenStream;

// The docs of both macros are read after those of their re-export in `magpie` (the summary,
// what it does, the examples, which need `magpie` to run), so they start with a heading.

/// # Options
///
/// `#[magpie::main(worker_threads = 2, thread_name = "api")]`; each at most once, all optional:
///
/// | option | value | `Builder` setting |
/// |---|---|---|
/// | `worker_threads` | integer ≥ 1 | `Builder::worker_threads` (default: one per core) |
/// | `thread_name` | string | `Builder::thread_name` (default: `"magpie"`) |
/// | `max_blocking_threads` | integer ≥ 1 | `Builder::max_blocking_threads` (default: 512) |
/// | `global_queue_interval` | integer ≥ 1 | `Builder::global_queue_interval` (default: 61) |
/// | `spin_before_park_us` | integer from 0 to 1 000 000 (µs; 0: off) | `Builder::spin_before_park` (default: 50 µs) |
/// | `task_cache_bytes` | integer ≥ 0 (bytes per worker and per `block_on` thread; 0: off) | `Builder::task_cache_bytes` (default: 1 MiB) |
/// | `crate` | string: a path | where the runtime is found (default: `"::magpie"`), for a crate that re-exports magpie |
///
/// # Errors at compile time
///
/// On a fn that is not `async`, that takes arguments, is generic or has a `where` clause; for
/// an unknown option, an option given twice, or a value of the wrong kind or out of range
/// (`worker_threads = "two"`, `worker_threads = 0` or above 32 768, a `thread_name` with a NUL
/// byte, `spin_before_park_us` above 1 000 000).
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(expand::Kind::Main, args.into(), item.into()).into()
}

/// # Options
///
/// The same as `#[magpie::main]`'s: `worker_threads`, `thread_name`, `max_blocking_threads`,
/// `global_queue_interval`, `spin_before_park_us`, `task_cache_bytes`, `crate`; and, for a test
/// only, `seeds = N` (N ≥ 1): the test runs on the deterministic runtime once per seed
/// (`magpie::sim::check`), with no runtime option beside it, and returns `()`.
///
/// # Errors at compile time
///
/// Those of `#[magpie::main]`, and a second test attribute (`#[test]` beside `#[magpie::test]`).
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(expand::Kind::Test, args.into(), item.into()).into()
}
