//! An example of a loom model written the way a magpie user writes one for their own code.
//!
//! The code under test is `Memo`, a value computed at most once by whichever task asks first,
//! built on magpie's `Lock` (in an application: `magpie::sync::Lock`; `magpie-sync` is the
//! crate behind `magpie::sync`). Built with `RUSTFLAGS="--cfg loom"`, magpie's primitives use
//! loom's types, so loom explores every interleaving of the user's threads *inside* them.
//!
//! Run it alone with:
//! `RUSTFLAGS="--cfg loom" cargo test -p magpie-loom-tests --release --test user_model`
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use magpie_executor::Runtime;
use magpie_sync::{Event, Lock};

/// Like `loom::model`, with a preemption bound (unless `LOOM_MAX_PREEMPTIONS` sets one): an
/// unbounded search of a model with a runtime inside takes far too long, and almost every
/// concurrency bug needs only a couple of preemptions to show.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(2);
    builder.check(f);
}

/// The user's type: computes its value once, on first use, however many tasks ask at once.
struct Memo {
    value: Lock<Option<u64>>,
    /// How many times the (expensive) computation ran: the property under test.
    computations: AtomicUsize,
}

impl Memo {
    fn new() -> Memo {
        Memo {
            value: Lock::new(None),
            computations: AtomicUsize::new(0),
        }
    }

    async fn get(&self) -> u64 {
        let mut slot = self.value.lock().await;
        if let Some(value) = *slot {
            return value;
        }
        self.computations.fetch_add(1, Ordering::SeqCst);
        let value = 6 * 7;
        *slot = Some(value);
        value
    }
}

/// Two threads ask at once; the value is computed exactly once and both see it. The futures are
/// driven with `loom::future::block_on` (loom's own executor, from its "futures" feature).
#[test]
fn memo_computes_once() {
    model(|| {
        let memo = Arc::new(Memo::new());
        let other = {
            let memo = memo.clone();
            thread::spawn(move || loom::future::block_on(memo.get()))
        };
        let mine = loom::future::block_on(memo.get());
        let theirs = other.join().unwrap();
        assert_eq!((mine, theirs), (42, 42));
        assert_eq!(memo.computations.load(Ordering::SeqCst), 1);
    });
}

/// The same kind of model with magpie's own runtime inside: under `--cfg loom` the executor's
/// worker threads are loom threads, so a task spawned on a one-worker runtime waits for an
/// `Event` that the test's main thread sets, and loom checks the wakeup is never lost.
#[test]
fn task_waits_for_event_on_a_magpie_runtime() {
    model(|| {
        let rt = Runtime::builder().worker_threads(1).build().unwrap();
        let ready = Arc::new(Event::new());
        let memo = Arc::new(Memo::new());
        let task = {
            let (ready, memo) = (ready.clone(), memo.clone());
            rt.spawn(async move {
                ready.wait().await;
                memo.get().await
            })
        };
        ready.set();
        assert_eq!(rt.block_on(task).unwrap(), 42);
        drop(rt);
    });
}

/// The example in `docs/loom.md`, verbatim: two threads increment through magpie's `Lock`.
#[test]
fn two_increments_land() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(2);
    builder.check(|| {
        let lock = Arc::new(Lock::new(0));
        let other = {
            let lock = lock.clone();
            thread::spawn(move || loom::future::block_on(async { *lock.lock().await += 1 }))
        };
        loom::future::block_on(async { *lock.lock().await += 1 });
        other.join().unwrap();
        assert_eq!(*lock.try_lock().unwrap(), 2);
    });
}
