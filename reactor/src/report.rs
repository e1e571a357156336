//! One line on stderr from the reactor's threads, which must never panic on the way: `eprintln!`
//! panics when stderr is gone (a closed pipe), and a reactor thread that unwinds holding the
//! driving turn would leave every socket and timer of the process undriven. And the catch of
//! a panic there, whose payload must not unwind either.

use std::fmt;
use std::io::Write as _;
use std::panic::{self, AssertUnwindSafe};

/// Writes `line` and a newline to stderr; a failed write is dropped.
pub(crate) fn report(line: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Runs `f`; `None` when it panicked. The panic's payload is dropped under a catch too (its
/// destructor is the panicking code's, and one that panics would otherwise unwind from here),
/// and a payload of that one leaked: nothing unwinds out of it.
pub(crate) fn caught<R>(f: impl FnOnce() -> R) -> Option<R> {
    let payload = match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => return Some(value),
        Err(payload) => payload,
    };
    if let Err(nested) = panic::catch_unwind(AssertUnwindSafe(|| drop(payload))) {
        std::mem::forget(nested);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::caught;

    /// A panic payload whose own destructor panics.
    struct Bomb;

    impl Drop for Bomb {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("the payload's drop panics");
            }
        }
    }

    #[test]
    fn caught_returns_the_value_or_none_and_nothing_unwinds_out() {
        assert_eq!(caught(|| 7), Some(7));
        assert_eq!(caught(|| -> u32 { panic!("planted") }), None);
        // The payload's drop panics too, inside `caught`: the caller sees `None`, no unwind
        // (a reactor thread, or a worker driving the reactor, would die of it).
        let unwound = std::panic::catch_unwind(|| caught(|| std::panic::panic_any(Bomb)));
        assert!(matches!(unwound, Ok(None)), "a panic escaped `caught`");
    }
}
