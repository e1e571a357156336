//! `#[magpie::main]` and `#[magpie::test]` at compile time, with trybuild: the good uses build
//! (and the `main`s run), and each misuse fails with an error that points at the user's code.
//! The expected errors are in tests/ui/*.stderr; after a deliberate change to a message,
//! regenerate them with `TRYBUILD=overwrite cargo test -p magpie --test macros_ui` and review.

// Not on Windows: trybuild runs cargo from inside the test, and the Windows test run (CI's,
// under Wine) has no Windows cargo to run; the expected messages are recorded on Unix anyway.
// The macros themselves are tested on Windows by `tests/macros.rs`.
#![cfg(not(windows))]

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}
