//! Waking: from plain threads, many times during a poll, after completion, after shutdown.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use common::{runtime, wait_until};

/// Pending until `ready` reaches `target`; stores its waker for others to call.
struct WaitFor {
    ready: Arc<AtomicUsize>,
    target: usize,
    waker: Arc<Mutex<Option<Waker>>>,
    polls: Arc<AtomicUsize>,
}

impl Future for WaitFor {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.ready.load(Ordering::SeqCst) >= self.target {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn wake_from_a_plain_std_thread_runs_the_task() {
    let rt = runtime(2);
    let ready = Arc::new(AtomicUsize::new(0));
    let waker = Arc::new(Mutex::new(None::<Waker>));
    let handle = rt.spawn(WaitFor {
        ready: ready.clone(),
        target: 1,
        waker: waker.clone(),
        polls: Arc::default(),
    });
    wait_until("first poll", || waker.lock().unwrap().is_some());
    std::thread::spawn(move || {
        ready.store(1, Ordering::SeqCst);
        waker.lock().unwrap().take().unwrap().wake();
    })
    .join()
    .unwrap();
    magpie_executor::block_on(handle).unwrap();
}

/// Wakes itself `wakes_per_poll` times during each of its first `rounds` polls.
struct SelfWaker {
    rounds: usize,
    wakes_per_poll: usize,
    polls: Arc<AtomicUsize>,
}

impl Future for SelfWaker {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let n = self.polls.fetch_add(1, Ordering::SeqCst);
        if n == self.rounds {
            return Poll::Ready(());
        }
        for _ in 0..self.wakes_per_poll {
            cx.waker().wake_by_ref();
            // Deliberately by value too: `wake` consumes the clone's reference.
            #[allow(clippy::waker_clone_wake)]
            cx.waker().clone().wake();
        }
        Poll::Pending
    }
}

#[test]
fn many_wakes_during_a_poll_cause_exactly_one_more_poll() {
    let rt = runtime(2);
    let polls = Arc::new(AtomicUsize::new(0));
    rt.block_on(rt.spawn(SelfWaker {
        rounds: 10,
        wakes_per_poll: 100,
        polls: polls.clone(),
    }))
    .unwrap();
    assert_eq!(polls.load(Ordering::SeqCst), 11);
}

#[test]
fn wakes_from_other_threads_while_running_never_lose_or_double_a_poll() {
    // Four threads hammer the waker while the task runs; every wake after the last increment
    // must still lead to the final poll, and the task must finish exactly once.
    let rt = runtime(2);
    let ready = Arc::new(AtomicUsize::new(0));
    let waker = Arc::new(Mutex::new(None::<Waker>));
    let polls = Arc::new(AtomicUsize::new(0));
    // Scaled down under Miri, which interprets every instruction.
    const WAKES: usize = if cfg!(miri) { 50 } else { 10_000 };
    let handle = rt.spawn(WaitFor {
        ready: ready.clone(),
        target: 4 * WAKES,
        waker: waker.clone(),
        polls: polls.clone(),
    });
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (ready, waker) = (ready.clone(), waker.clone());
            std::thread::spawn(move || {
                for _ in 0..WAKES {
                    ready.fetch_add(1, Ordering::SeqCst);
                    let w = waker.lock().unwrap().clone();
                    if let Some(w) = w {
                        w.wake();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // The last wake may have raced the first registration: wake once more from here.
    if let Some(w) = waker.lock().unwrap().clone() {
        w.wake();
    }
    magpie_executor::block_on(handle).unwrap();
    let polls = polls.load(Ordering::SeqCst);
    assert!((1..=4 * WAKES + 2).contains(&polls), "{polls}");
}

#[test]
fn waking_a_finished_task_is_harmless() {
    let rt = runtime(2);
    let stash = Arc::new(Mutex::new(None::<Waker>));
    let s = stash.clone();
    rt.block_on(rt.spawn(std::future::poll_fn(move |cx| {
        *s.lock().unwrap() = Some(cx.waker().clone());
        Poll::Ready(())
    })))
    .unwrap();
    let waker = stash.lock().unwrap().take().unwrap();
    for _ in 0..1000 {
        waker.wake_by_ref();
    }
    let clones: Vec<_> = (0..100).map(|_| waker.clone()).collect();
    std::thread::spawn(move || clones.into_iter().for_each(Waker::wake))
        .join()
        .unwrap();
    waker.wake();
    // The runtime is unaffected.
    assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
}

#[test]
fn a_waker_used_after_its_runtime_was_dropped_is_ignored() {
    let rt = runtime(2);
    let stash = Arc::new(Mutex::new(None::<Waker>));
    let s = stash.clone();
    let handle = rt.spawn(std::future::poll_fn(move |cx| {
        *s.lock().unwrap() = Some(cx.waker().clone());
        Poll::<()>::Pending
    }));
    wait_until("first poll", || stash.lock().unwrap().is_some());
    drop(rt);
    let waker = stash.lock().unwrap().take().unwrap();
    waker.wake_by_ref();
    waker.wake();
    assert!(magpie_executor::block_on(handle)
        .unwrap_err()
        .is_cancelled());
}

/// Counts its polls, and forwards them to `inner`.
struct CountPolls<F> {
    polls: Arc<AtomicUsize>,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for CountPolls<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.inner.as_mut().poll(cx)
    }
}

/// A task that awaits the handles of the tasks it spawned, in turn (gather), is queued behind
/// the tasks still waiting when the first of them finishes and wakes it — not run next, to find
/// the next handle unfinished and wait again. On one worker it is polled when it starts and
/// once more when all are done, not once per task (it was: 101 polls for 100 tasks).
#[test]
fn a_joiner_is_polled_once_after_the_tasks_it_joins() {
    const TASKS: usize = 100;
    let rt = runtime(1);
    let polls = Arc::new(AtomicUsize::new(0));
    let joiner = CountPolls {
        polls: polls.clone(),
        inner: Box::pin(common::spawn_then_join_in_order(TASKS)),
    };
    let sum = rt.block_on(rt.spawn(joiner)).expect("joiner failed");
    assert_eq!(sum, TASKS * (TASKS - 1) / 2);
    let polls = polls.load(Ordering::SeqCst);
    assert!(
        polls <= 3,
        "the joiner was polled {polls} times to join {TASKS} tasks"
    );
}

/// A waker that counts nothing: its `Arc`'s strong count says how many clones are alive.
struct Counted;

impl std::task::Wake for Counted {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn a_join_waker_left_in_its_slot_is_dropped_when_the_task_is_freed_on_a_worker() {
    // One worker, so the inner task runs to its end before the outer task is polled again,
    // and the handle's drop, on the worker, frees the task: where a header that owns nothing
    // but its count of the runtime is freed with no drop glue (`Header::drop_plain`), which
    // must see the waker this one owns.
    let rt = runtime(1);
    let counted = Arc::new(Counted);
    let waker = Waker::from(counted.clone());
    let clones_left = rt
        .block_on(rt.spawn(async move {
            let go = Arc::new(AtomicUsize::new(0));
            let go2 = go.clone();
            let mut inner = magpie_executor::spawn(std::future::poll_fn(move |cx| {
                if go2.load(Ordering::SeqCst) == 1 {
                    Poll::Ready(7)
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }));
            // Polled with the counted waker while the task is not complete: the handle stores
            // a clone of it in the task's join-waker slot, where it stays until the task goes.
            let mut poll_inner = || Pin::new(&mut inner).poll(&mut Context::from_waker(&waker));
            assert!(poll_inner().is_pending());
            go.store(1, Ordering::SeqCst);
            let output = loop {
                if let Poll::Ready(output) = poll_inner() {
                    break output;
                }
                magpie_executor::task::yield_now().await;
            };
            assert_eq!(output.unwrap(), 7);
            drop(inner);
            drop(waker);
            Arc::strong_count(&counted)
        }))
        .unwrap();
    assert_eq!(
        clones_left, 1,
        "the task kept a clone of its JoinHandle's waker"
    );
}

/// A waker of another executor's making whose drop runs code: here, it spawns a task on the
/// runtime, or wakes one of its tasks (as a waker owning a channel's sender would).
struct RunsCodeOnDrop(Option<Box<dyn FnOnce() + Send + Sync>>);

impl std::task::Wake for RunsCodeOnDrop {
    fn wake(self: Arc<Self>) {}
}

impl Drop for RunsCodeOnDrop {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            run();
        }
    }
}

/// Makes a worker run `on_drop` inside its park, after it chose to sleep: there, a task A
/// spawned from this thread (listed in a shard of no worker's) ends while a task B holds its
/// `JoinHandle`, polled once with a waker that runs `on_drop` when dropped; B then drops the
/// handle unread. A worker defers a release from another shard than its own to its next park,
/// where the list's reference, A's last, frees A and with it the waker left in its join-waker
/// slot (the slot stays the task's once it completed).
fn drop_a_join_waker_at_the_next_park(
    rt: &magpie_executor::Runtime,
    on_drop: impl FnOnce() + Send + Sync + 'static,
) {
    let gate = Arc::new(Gate::default());
    let opened = gate.clone();
    let a = rt.spawn(async move { std::future::poll_fn(|cx| opened.poll_open(cx)).await });
    let (b_done, b_finished) = std::sync::mpsc::channel();
    drop(rt.spawn(async move {
        let mut a = a;
        let waker = Waker::from(Arc::new(RunsCodeOnDrop(Some(Box::new(on_drop)))));
        assert!(Pin::new(&mut a)
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        drop(waker);
        gate.open();
        while !a.is_finished() {
            magpie_executor::task::yield_now().await;
        }
        // The worker that completed A lets go of its reference right after: give it the time,
        // so that the list's is the last.
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(a);
        let _ = b_done.send(());
    }));
    b_finished
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("task B ran");
}

/// Regression (a review): a task spawned or woken by code that a worker's park runs (the drop
/// of a freed task's join waker) went to that worker's LIFO slot, which nothing announces and
/// the park's last look did not check: the worker slept beside it until something else woke
/// the runtime.
#[test]
fn a_task_spawned_by_a_join_waker_dropped_in_a_park_runs() {
    let rt = runtime(1);
    let (done, ran) = std::sync::mpsc::channel();
    let handle = rt.handle();
    drop_a_join_waker_at_the_next_park(&rt, move || {
        drop(handle.spawn(async move {
            let _ = done.send(());
        }));
    });
    assert!(
        ran.recv_timeout(std::time::Duration::from_secs(20)).is_ok(),
        "the task spawned while the worker parked did not run within 20 s"
    );
}

/// Closed until opened; the waker of whoever waits on it.
#[derive(Default)]
struct Gate {
    open: AtomicUsize,
    waiter: Mutex<Option<Waker>>,
}

impl Gate {
    fn open(&self) {
        self.open.store(1, Ordering::SeqCst);
        if let Some(waker) = self.waiter.lock().unwrap().take() {
            waker.wake();
        }
    }

    fn poll_open(&self, cx: &mut Context<'_>) -> Poll<()> {
        *self.waiter.lock().unwrap() = Some(cx.waker().clone());
        if self.open.load(Ordering::SeqCst) == 1 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn a_task_woken_by_a_join_waker_dropped_in_a_park_runs() {
    let rt = runtime(2);
    let gate = Arc::new(Gate::default());
    let (done, ran) = std::sync::mpsc::channel();
    let waited_on = gate.clone();
    let _waiter = rt.spawn(async move {
        std::future::poll_fn(|cx| waited_on.poll_open(cx)).await;
        let _ = done.send(());
    });
    wait_until("the waiter waits", || gate.waiter.lock().unwrap().is_some());
    let opener = gate.clone();
    drop_a_join_waker_at_the_next_park(&rt, move || opener.open());
    assert!(
        ran.recv_timeout(std::time::Duration::from_secs(20)).is_ok(),
        "the task woken while a worker parked did not run within 20 s"
    );
}

/// Regression (a review): a `JoinHandle` polled once (in a `timeout`, a `select`) and dropped
/// before its task ended left its waker in the task until the task was freed — with it, a
/// reference to whatever the waker wakes.
#[test]
fn a_handle_dropped_before_its_task_ends_drops_its_waker_with_it() {
    let rt = runtime(1);
    let mut handle = rt.spawn(std::future::pending::<()>());
    let counted = Arc::new(Counted);
    let waker = Waker::from(counted.clone());
    assert!(Pin::new(&mut handle)
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    drop(waker);
    assert_eq!(Arc::strong_count(&counted), 2, "the task holds the clone");
    drop(handle);
    assert_eq!(
        Arc::strong_count(&counted),
        1,
        "the task kept the waker of a handle that is gone"
    );
}

type HandleSlot = Arc<Mutex<Option<magpie_executor::JoinHandle<()>>>>;

/// Takes the handle put in `slot` (its own, or another task's), polls it once — its waker goes
/// into that task's join-waker slot — and drops it unread; then waits for ever (until the
/// runtime's shutdown cancels it).
async fn poll_a_handle_once_then_wait(slot: HandleSlot, done: Arc<AtomicUsize>) {
    let mut handle = loop {
        if let Some(handle) = slot.lock().unwrap().take() {
            break handle;
        }
        magpie_executor::task::yield_now().await;
    };
    assert!(futures_lite::future::poll_once(&mut handle).await.is_none());
    drop(handle);
    done.fetch_add(1, Ordering::SeqCst);
    std::future::pending::<()>().await
}

/// Each task polls the handle that the pairing gives it (`pairs[i]` is whose handle task `i`
/// gets), then the runtime is dropped: true when the runtime's state was freed after.
fn runtime_is_freed_after(pairs: &[usize]) -> bool {
    // The runtime's shared state holds the hook, and the hook `marker`: its count falls back
    // to one when the runtime is freed.
    let marker = Arc::new(());
    let held = marker.clone();
    let rt = magpie_executor::Runtime::builder()
        .worker_threads(2)
        .on_thread_start(move || {
            let _ = &held;
        })
        .build()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let slots: Vec<HandleSlot> = pairs.iter().map(|_| Arc::default()).collect();
    let handles: Vec<_> = slots
        .iter()
        .map(|slot| rt.spawn(poll_a_handle_once_then_wait(slot.clone(), done.clone())))
        .collect();
    for (handle, &to) in handles.into_iter().zip(pairs) {
        *slots[to].lock().unwrap() = Some(handle);
    }
    wait_until("every task polled its handle", || {
        done.load(Ordering::SeqCst) == pairs.len()
    });
    drop(rt);
    let start = std::time::Instant::now();
    while Arc::strong_count(&marker) > 1 && start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Arc::strong_count(&marker) == 1
}

/// Regression (a review): two tasks that polled each other's handles once, and a task that
/// polled its own, each left a waker of the other (or of itself) in a task: a cycle of
/// references that kept both tasks, and the runtime with them, alive for good.
#[test]
fn tasks_that_polled_each_others_handles_leave_no_cycle() {
    assert!(
        runtime_is_freed_after(&[1, 0]),
        "two tasks that polled each other's handles kept the runtime alive"
    );
    assert!(
        runtime_is_freed_after(&[0]),
        "a task that polled its own handle kept the runtime alive"
    );
}
