//! What a user gets when they call magpie's API wrongly: one test per bad input, asserting the
//! exact error or panic message. Each row of the table in `docs/reliability.md` is one test
//! here.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures_lite::future;
use magpie::sync::{PriorityQueue, Queue, Semaphore, TryAcquireError};
use magpie::time::{interval, interval_at, sleep, sleep_until, timeout};
use magpie::{Builder, Runtime};

/// A generous safety net for waits on other threads; never reached when the code is right.
const SAFETY_NET: Duration = Duration::from_secs(30);

/// The text of a panic payload.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_owned()
    }
}

/// Runs `f`, expecting it to panic, and returns the panic message.
fn panic_of<R>(f: impl FnOnce() -> R) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic, got none"),
        Err(payload) => panic_message(payload),
    }
}

/// A waker that does nothing (`Waker::noop` needs a newer Rust than the project's MSRV).
struct NoopWaker;

impl Wake for NoopWaker {
    fn wake(self: Arc<Self>) {}
}

/// Polls `future` once with a no-op waker.
fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(NoopWaker));
    future.poll(&mut Context::from_waker(&waker))
}

/// Counts its drops.
struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn queue_bounded_zero_panics() {
    let msg = panic_of(|| Queue::<u8>::bounded(0));
    assert_eq!(
        msg,
        "Queue::bounded: capacity must be at least 1 (use Queue::unbounded for no limit)"
    );
    let msg = panic_of(|| PriorityQueue::<u8>::bounded(0));
    assert_eq!(
        msg,
        "PriorityQueue::bounded: capacity must be at least 1 (use PriorityQueue::unbounded for \
         no limit)"
    );
}

/// A semaphore has no maximum below `usize::MAX`: a request for more permits than exist waits
/// (it neither panics nor overflows) until enough are added; adding past `usize::MAX` panics.
#[test]
fn semaphore_acquire_many_beyond_the_permits_waits_and_add_permits_overflow_panics() {
    let sem = Semaphore::new(5);
    assert_eq!(
        sem.try_acquire_many(usize::MAX).unwrap_err(),
        TryAcquireError::NoPermits
    );
    assert_eq!(
        sem.try_acquire_many(usize::MAX).unwrap_err().to_string(),
        "no permits available"
    );
    {
        let mut huge = pin!(sem.acquire_many(usize::MAX));
        assert!(poll_once(huge.as_mut()).is_pending());
        // The huge request blocks smaller ones behind it (FIFO), so none is starved.
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
        sem.add_permits(usize::MAX - 5);
        let permit = match poll_once(huge.as_mut()) {
            Poll::Ready(Ok(permit)) => permit,
            other => panic!("expected the permits, got {:?}", other.map(|r| r.is_ok())),
        };
        assert_eq!(permit.num_permits(), usize::MAX);
        assert_eq!(sem.available_permits(), 0);
    }
    // The permit went back on drop: the semaphore holds usize::MAX permits now.
    assert_eq!(sem.available_permits(), usize::MAX);
    let msg = panic_of(|| sem.add_permits(1));
    assert_eq!(
        msg,
        "Semaphore: the free permit count overflowed usize (more than usize::MAX permits in all)"
    );

    // Closing fails a request that can never be met.
    let sem = Semaphore::new(0);
    let mut never = pin!(sem.acquire_many(usize::MAX));
    assert!(poll_once(never.as_mut()).is_pending());
    sem.close();
    match poll_once(never.as_mut()) {
        Poll::Ready(Err(err)) => assert_eq!(err.to_string(), "semaphore closed"),
        other => panic!("expected AcquireError, got {:?}", other.map(|r| r.is_ok())),
    };
}

#[test]
fn interval_zero_panics() {
    let expected = "`interval` period must be non-zero (got Duration::ZERO)";
    assert_eq!(panic_of(|| interval(Duration::ZERO)), expected);
    let msg = panic_of(|| interval_at(Instant::now(), Duration::ZERO));
    assert_eq!(msg, expected);
}

#[test]
fn sleep_duration_max_never_fires_and_does_not_overflow() {
    let mut forever = pin!(sleep(Duration::MAX));
    assert_eq!(forever.deadline(), None);
    assert!(poll_once(forever.as_mut()).is_pending());
    assert!(!forever.is_elapsed());
    // Still pending after a real timer has fired meanwhile.
    future::block_on(sleep(Duration::from_millis(5)));
    assert!(poll_once(forever.as_mut()).is_pending());
    // And it can be brought back to a reachable deadline.
    forever
        .as_mut()
        .reset(Instant::now() + Duration::from_millis(1));
    future::block_on(forever);
}

#[test]
fn timeout_duration_max_never_elapses_and_does_not_overflow() {
    // A future that completes is returned as is.
    assert_eq!(future::block_on(timeout(Duration::MAX, async { 7 })), Ok(7));
    // A future that never completes is never timed out.
    let mut never = pin!(timeout(Duration::MAX, future::pending::<()>()));
    assert!(poll_once(never.as_mut()).is_pending());
    future::block_on(sleep(Duration::from_millis(5)));
    assert!(poll_once(never.as_mut()).is_pending());
}

/// `Instant + Duration::MAX` panics in std before magpie sees it; an `Instant` that *is*
/// representable but centuries away must not overflow magpie's tick arithmetic.
#[test]
fn sleep_until_a_far_future_instant_does_not_overflow() {
    let msg = panic_of(|| Instant::now() + Duration::MAX);
    assert_eq!(msg, "overflow when adding duration to instant");

    let now = Instant::now();
    // The farthest representable instant, found by halving (platform-independent).
    let mut far = now;
    let mut step = Duration::MAX;
    while step > Duration::from_secs(1) {
        match far.checked_add(step) {
            Some(later) => far = later,
            None => step /= 2,
        }
    }
    assert!(far > now + Duration::from_secs(1_000_000_000));
    let mut distant = pin!(sleep_until(far));
    assert_eq!(distant.deadline(), Some(far));
    assert!(poll_once(distant.as_mut()).is_pending());
    future::block_on(sleep(Duration::from_millis(5)));
    assert!(poll_once(distant.as_mut()).is_pending());
    assert!(!distant.is_elapsed());

    let mut never = pin!(timeout(
        far.duration_since(Instant::now()),
        future::pending::<()>()
    ));
    assert!(poll_once(never.as_mut()).is_pending());
}

#[test]
fn worker_threads_zero_is_an_error_from_build() {
    let err = Builder::new().worker_threads(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(err.to_string(), "worker_threads must be at least 1 (got 0)");
    // The other counts that must be positive are checked the same way.
    let err = Builder::new().max_blocking_threads(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "max_blocking_threads must be at least 1 (got 0)"
    );
    let err = Builder::new().global_queue_interval(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "global_queue_interval must be at least 1 (got 0)"
    );
}

#[test]
fn worker_threads_beyond_the_maximum_is_an_error_from_build() {
    for n in [Builder::MAX_WORKER_THREADS + 1, usize::MAX] {
        let err = Builder::new().worker_threads(n).build().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            format!("worker_threads must be at most 32768 (got {n})")
        );
    }
}

#[test]
fn a_thread_name_with_a_nul_byte_is_an_error_from_build() {
    // Bounded: this used to panic inside std's thread builder, halfway through starting the
    // workers, and then hang in the half-built runtime's shutdown.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let built = Builder::new()
            .worker_threads(2)
            .thread_name("api\0x")
            .build()
            .map(drop);
        let _ = tx.send(built);
    });
    let err = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("build returned (no panic, no hang)")
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("NUL"), "{err}");
}

#[test]
fn spawn_outside_a_runtime_panics() {
    let msg = panic_of(|| magpie::spawn(async {}));
    assert_eq!(
        msg,
        "`magpie::spawn` called outside a magpie runtime: use `Runtime::spawn` or \
         `Handle::spawn`, or start a runtime with `magpie::run`"
    );
    let err = magpie::Handle::try_current().unwrap_err();
    assert_eq!(
        err.to_string(),
        "no magpie runtime on this thread: call this from a task, from inside \
         `Runtime::block_on` or `magpie::run`, or use a `Handle`"
    );
}

#[test]
fn block_on_inside_a_worker_panics() {
    let rt = Builder::new().worker_threads(1).build().unwrap();
    let inner = Arc::new(Builder::new().worker_threads(1).build().unwrap());
    let inner2 = inner.clone();
    let msg = rt.block_on(async move {
        magpie::spawn(async move { panic_of(|| inner2.block_on(async { 1 })) })
            .await
            .unwrap()
    });
    let expected = "`Runtime::block_on` called from inside a magpie worker thread: blocking a \
                    worker can deadlock the runtime; `.await` the future instead";
    assert_eq!(msg, expected);
    // The same for the task's own runtime, through `magpie::run`.
    let msg = rt.block_on(async {
        magpie::spawn(async { panic_of(|| magpie::run(async { 1 })) })
            .await
            .unwrap()
    });
    assert_eq!(msg, expected);
    // The free `block_on` too (it used to block the worker, here for ever: the future waits
    // for a task queued behind it on the runtime's one worker).
    let msg = rt.block_on(async {
        magpie::spawn(async { panic_of(|| magpie::block_on(magpie::spawn(async { 5 })).unwrap()) })
            .await
            .unwrap()
    });
    assert_eq!(
        msg,
        "`block_on` called from inside a magpie worker thread: blocking a worker can deadlock \
         the runtime; `.await` the future instead"
    );
    // Both runtimes still work.
    assert_eq!(inner.block_on(async { 2 }), 2);
    assert_eq!(
        rt.block_on(async { magpie::spawn(async { 3 }).await })
            .unwrap(),
        3
    );
}

#[test]
fn task_done_called_too_often_panics() {
    let queue = Queue::unbounded();
    queue.try_put(1).unwrap();
    assert_eq!(queue.try_get().unwrap(), 1);
    queue.task_done();
    let msg = panic_of(|| queue.task_done());
    assert_eq!(
        msg,
        "task_done() called more times than there were items put in the queue"
    );
    // The queue is still usable and `join` still completes.
    future::block_on(queue.join());
}

#[test]
fn a_waker_used_after_its_runtime_was_dropped_is_ignored() {
    let rt = Builder::new().worker_threads(2).build().unwrap();
    let stash: Arc<Mutex<Option<Waker>>> = Arc::default();
    let drops = Arc::new(AtomicUsize::new(0));
    let (polled_tx, polled_rx) = mpsc::channel();
    let handle = {
        let stash = stash.clone();
        let guard = DropGuard(drops.clone());
        rt.spawn(future::poll_fn(move |cx| {
            let _ = &guard;
            *stash.lock().unwrap() = Some(cx.waker().clone());
            let _ = polled_tx.send(());
            Poll::<()>::Pending
        }))
    };
    polled_rx.recv_timeout(SAFETY_NET).unwrap();
    drop(rt);
    // Shutdown dropped the task's future and resolved its handle to "cancelled".
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(future::block_on(handle).unwrap_err().is_cancelled());
    let waker = stash
        .lock()
        .unwrap()
        .take()
        .expect("the task stored its waker");
    // Neither waking by reference, cloning, nor waking by value crashes or revives the task.
    waker.wake_by_ref();
    let clone = waker.clone();
    waker.wake();
    clone.wake();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// Hands a 2-worker runtime to one of its own tasks, which runs `misuse` on it; returns the
/// panic message `misuse` raised, once the runtime has shut down (in the background: a
/// task spawned on it then resolves to "cancelled").
fn misused_inside_its_own_task(misuse: impl FnOnce(Runtime) + Send + 'static) -> String {
    let rt = Builder::new().worker_threads(2).build().unwrap();
    let handle = rt.handle();
    let (rt_tx, rt_rx) = mpsc::channel::<Runtime>();
    let (msg_tx, msg_rx) = mpsc::channel();
    rt_tx.send(rt).unwrap();
    let task = handle.spawn(async move {
        let rt = rt_rx.recv().unwrap();
        let _ = msg_tx.send(panic_of(move || misuse(rt)));
    });
    let msg = msg_rx.recv_timeout(SAFETY_NET).expect("no hang");
    let _ = future::block_on(task);
    let start = Instant::now();
    while future::block_on(handle.spawn(async {})).is_ok() {
        assert!(start.elapsed() < SAFETY_NET, "the runtime never shut down");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(future::block_on(handle.spawn(async {}))
        .unwrap_err()
        .is_cancelled());
    while handle.alive_tasks() != 0 {
        assert!(start.elapsed() < SAFETY_NET, "tasks left after shutdown");
        std::thread::sleep(Duration::from_millis(1));
    }
    msg
}

#[test]
fn dropping_the_runtime_inside_its_own_task_panics_clearly() {
    // No deadlock: the runtime still shuts down, in the background.
    assert_eq!(
        misused_inside_its_own_task(drop),
        "a magpie `Runtime` was dropped from inside one of its own tasks or blocking threads; \
         it would wait for its own thread to stop. Drop it from outside (or move it to \
         another thread)"
    );
}

#[test]
fn shutdown_timeout_inside_its_own_task_panics_clearly_and_still_shuts_down() {
    // With no deadline at all (Duration::MAX): it used to wait for its own worker for ever.
    let msg = misused_inside_its_own_task(|rt| {
        rt.shutdown_timeout(Duration::MAX);
    });
    assert_eq!(
        msg,
        "`Runtime::shutdown_timeout` was called from inside one of the runtime's own tasks or \
         blocking threads; it would wait for its own thread to stop. Call it from outside (or \
         move the runtime to another thread)"
    );
}

#[test]
fn a_task_whose_drop_panics_during_shutdown_does_not_stop_shutdown() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("drop exploded");
        }
    }
    const TASKS: usize = 20;
    let rt = Builder::new().worker_threads(2).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let (polled_tx, polled_rx) = mpsc::channel();
    let mut handles = Vec::new();
    for i in 0..TASKS {
        let guard = DropGuard(drops.clone());
        let polled_tx = polled_tx.clone();
        handles.push(rt.spawn(async move {
            let _guard = guard;
            // Every other task panics when shutdown drops it.
            let _bomb = (i % 2 == 0).then(|| PanicOnDrop);
            polled_tx.send(()).unwrap();
            future::pending::<()>().await;
        }));
    }
    for _ in 0..TASKS {
        polled_rx.recv_timeout(SAFETY_NET).unwrap();
    }
    let handle = rt.handle();
    drop(rt);
    // The drop returned: every future was dropped (bombs included; their panics contained),
    // every handle resolved to "cancelled", no task left.
    assert_eq!(drops.load(Ordering::SeqCst), TASKS);
    assert_eq!(handle.alive_tasks(), 0);
    for h in handles {
        assert!(future::block_on(h).unwrap_err().is_cancelled());
    }
}
