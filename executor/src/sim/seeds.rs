//! Running a test body over many seeds, and replaying the one that failed.

use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::Sim;

/// The environment variable that picks the one seed to run.
const SEED_VAR: &str = "MAGPIE_SEED";

/// Runs `test` once per seed in `seeds`, each run in its own deterministic runtime (see the
/// [module docs](super)); with `MAGPIE_SEED=N` in the environment, runs seed `N` only.
///
/// When a seed fails — the body panics, the run deadlocks or reaches its poll limit, or a
/// task's panic goes unretrieved ([`SimError::TaskPanicked`](super::SimError)) — the
/// seed and the command that replays it are printed to stderr
/// (`MAGPIE_SEED=N cargo test NAME`, `NAME` being the running test's), and the failure is
/// passed on, so the test fails with the body's own message.
///
/// # Panics
///
/// As described above; and if `MAGPIE_SEED` is set but is not a `u64`.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use magpie_executor::sim;
///
/// // Two withdrawals of 80 from 100, the check and the write under one lock: no schedule
/// // overdraws.
/// sim::check(0..200, |_seed| async {
///     let balance = Arc::new(magpie_sync::Lock::new(100u64));
///     let withdraw = |balance: Arc<magpie_sync::Lock<u64>>| async move {
///         let mut balance = balance.lock().await;
///         if *balance >= 80 {
///             magpie_executor::task::yield_now().await;
///             *balance -= 80;
///         }
///     };
///     let a = magpie_executor::spawn(withdraw(balance.clone()));
///     let b = magpie_executor::spawn(withdraw(balance.clone()));
///     a.await.unwrap();
///     b.await.unwrap();
///     assert_eq!(*balance.lock().await, 20);
/// });
/// ```
pub fn check<S, F, Fut>(seeds: S, mut test: F)
where
    S: IntoIterator<Item = u64>,
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    let only = seed_from_env();
    let mut run = |seed: u64| {
        let outcome = catch_unwind(AssertUnwindSafe(|| Sim::new(seed).run(test(seed))));
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                print_replay(seed);
                panic!("magpie::sim: {err}");
            }
            Err(panic) => {
                print_replay(seed);
                resume_unwind(panic);
            }
        }
    };
    match only {
        Some(seed) => run(seed),
        None => seeds.into_iter().for_each(run),
    }
}

/// `MAGPIE_SEED`, parsed.
fn seed_from_env() -> Option<u64> {
    let value = std::env::var_os(SEED_VAR)?;
    let text = value.to_string_lossy();
    match text.trim().parse() {
        Ok(seed) => Some(seed),
        Err(err) => panic!("{SEED_VAR}={text:?} is not a seed (a u64): {err}"),
    }
}

/// Tells how to run `seed` again.
fn print_replay(seed: u64) {
    // libtest names each test's thread after the test.
    let thread = std::thread::current();
    let name = thread
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("TEST_NAME");
    eprintln!("magpie::sim: seed {seed} failed; replay it with: {SEED_VAR}={seed} cargo test {name} -- --exact");
}
