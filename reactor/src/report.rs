//! One line on stderr from the reactor's threads, which must never panic on the way: `eprintln!`
//! panics when stderr is gone (a closed pipe), and a reactor thread that unwinds holding the
//! driving turn would leave every socket and timer of the process undriven.

use std::fmt;
use std::io::Write as _;

/// Writes `line` and a newline to stderr; a failed write is dropped.
pub(crate) fn report(line: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
