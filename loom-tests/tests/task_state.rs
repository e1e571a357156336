//! Loom models of the task state machine (`executor/src/task/state.rs` and the harness around
//! it), driven through the public API: a one-worker runtime, `spawn`, `JoinHandle`, `abort`,
//! and the task's own `Waker` taken from `poll_fn`.
#![cfg(loom)]

use std::future::{poll_fn, Future};
use std::task::Poll;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex, Notify};
use loom::thread;
use magpie_executor::{block_on, Runtime};
use magpie_loom_tests::{model, Counter, DropCounter};

fn runtime() -> Runtime {
    Runtime::builder().worker_threads(1).build().unwrap()
}

/// A slot for the thread a task starts from inside its poll, so the model can join it.
type ThreadSlot = Arc<Mutex<Vec<thread::JoinHandle<()>>>>;

fn join_all(slot: &ThreadSlot) {
    let threads = std::mem::take(&mut *slot.lock().unwrap());
    for thread in threads {
        thread.join().unwrap();
    }
}

/// The first poll hands a clone of the task's waker to another thread, which wakes it while
/// the poll may still be running: the task is polled exactly once more, never lost.
#[test]
fn wake_during_poll_repolls_once() {
    model(|| {
        let rt = runtime();
        let polls = Counter::new();
        let threads = ThreadSlot::default();
        let handle = {
            let (polls, threads) = (polls.clone(), threads.clone());
            rt.spawn(poll_fn(move |cx| {
                if polls.incr() == 0 {
                    let waker = cx.waker().clone();
                    threads
                        .lock()
                        .unwrap()
                        .push(thread::spawn(move || waker.wake()));
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            }))
        };
        block_on(handle).unwrap();
        join_all(&threads);
        assert_eq!(polls.get(), 2);
        drop(rt);
    });
}

/// Two wakes race on one task: one from another thread (started by the first poll) and one
/// the first poll makes itself before returning `Pending`. Each wake is counted before it is
/// made; every poll after the first must see a wake that the previous poll did not (a task
/// scheduled twice for one notification would be polled with nothing new), and the task
/// finishes.
#[test]
fn concurrent_wakes_schedule_once() {
    model(|| {
        let rt = runtime();
        let polls = Counter::new();
        let wakes = Counter::new();
        let threads = ThreadSlot::default();
        let handle = {
            let (polls, wakes, threads) = (polls.clone(), wakes.clone(), threads.clone());
            let mut seen = 0;
            rt.spawn(poll_fn(move |cx| {
                if polls.incr() == 0 {
                    let (waker, other_wakes) = (cx.waker().clone(), wakes.clone());
                    threads.lock().unwrap().push(thread::spawn(move || {
                        other_wakes.incr();
                        waker.wake();
                    }));
                    wakes.incr();
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                let now = wakes.get();
                assert!(now > seen, "polled again without a new wake");
                seen = now;
                if now == 2 {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }))
        };
        block_on(handle).unwrap();
        join_all(&threads);
        assert!((2..=3).contains(&polls.get()), "polls: {}", polls.get());
        drop(rt);
    });
}

/// A yield, a wake of the task by itself that the worker's thread records for the harness
/// (`context::note_self_wake`), races a wake from another thread that the same poll started: the
/// harness's one transition out of `RUNNING` queues the task once for both, and the second
/// poll finishes it, wherever the other wake lands (before, during or after either poll).
#[test]
fn a_yield_racing_a_wake_from_another_thread_queues_the_task_once() {
    model(|| {
        let rt = runtime();
        let polls = Counter::new();
        let threads = ThreadSlot::default();
        let handle = {
            let (polls, threads) = (polls.clone(), threads.clone());
            let mut body = Box::pin(async move {
                let waker = poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
                threads
                    .lock()
                    .unwrap()
                    .push(thread::spawn(move || waker.wake()));
                magpie_executor::task::yield_now().await;
            });
            rt.spawn(poll_fn(move |cx| {
                polls.incr();
                body.as_mut().poll(cx)
            }))
        };
        block_on(handle).unwrap();
        join_all(&threads);
        assert_eq!(polls.get(), 2);
        drop(rt);
    });
}

/// The `JoinHandle` is dropped while the worker completes the task: the future and the output
/// are each dropped exactly once (loom also fails the model if the task cell, which holds an
/// `Arc` of the runtime, leaks).
#[test]
fn join_handle_dropped_while_task_completes() {
    model(|| {
        let rt = runtime();
        let future_drops = DropCounter::new();
        let output_drops = DropCounter::new();
        let (in_future, output) = (future_drops.guard(), output_drops.guard());
        let handle = rt.spawn(async move {
            let _in_future = in_future;
            output
        });
        drop(handle);
        drop(rt);
        assert_eq!(future_drops.count(), 1);
        assert_eq!(output_drops.count(), 1);
    });
}

/// The `JoinHandle` of a task that has completed is dropped unread: it drops the output itself
/// (the task stays on the live-task list until then, so the handle's is not the last
/// reference; the fast way a handle gives up a task that is not complete must not be taken).
#[test]
fn join_handle_dropped_after_its_task_completed() {
    model(|| {
        let rt = runtime();
        let output_drops = DropCounter::new();
        let output = output_drops.guard();
        let handle = rt.spawn(async move { output });
        // The one worker runs the two tasks in their order: once the second has run, the
        // first has completed.
        let ran = Arc::new((AtomicBool::new(false), Notify::new()));
        let signal = ran.clone();
        drop(rt.spawn(async move {
            signal.0.store(true, Ordering::SeqCst);
            signal.1.notify();
        }));
        // (loom's `Notify` may wake spuriously: the flag says when the task really ran.)
        while !ran.0.load(Ordering::SeqCst) {
            ran.1.wait();
        }
        assert!(handle.is_finished());
        assert_eq!(output_drops.count(), 0);
        drop(handle);
        assert_eq!(output_drops.count(), 1);
        drop(rt);
    });
}

/// `abort()` races the task's only poll: the handle yields the output (and the future was
/// polled) or a cancelled error (and it never was), never both; the future and the output are
/// dropped exactly once.
#[test]
fn abort_racing_completion() {
    model(|| {
        let rt = runtime();
        let polls = Counter::new();
        let future_drops = DropCounter::new();
        let output_drops = DropCounter::new();
        let handle = {
            let polls = polls.clone();
            let (in_future, output) = (future_drops.guard(), output_drops.guard());
            rt.spawn(async move {
                let _in_future = in_future;
                polls.incr();
                (7u32, output)
            })
        };
        handle.abort();
        match block_on(handle) {
            Ok((value, output)) => {
                assert_eq!(value, 7);
                assert_eq!(polls.get(), 1);
                drop(output);
            }
            Err(err) => {
                assert!(err.is_cancelled());
                assert_eq!(polls.get(), 0);
            }
        }
        assert_eq!(future_drops.count(), 1);
        assert_eq!(output_drops.count(), 1);
        drop(rt);
    });
}

/// `abort()` of a task that has been polled and is pending (the abort races the end of that
/// poll): the task is cancelled without another poll and its future dropped exactly once.
#[test]
fn abort_of_pending_task_cancels_without_polling() {
    model(|| {
        let rt = runtime();
        let polls = Counter::new();
        let future_drops = DropCounter::new();
        let polled = Arc::new(Notify::new());
        let handle = {
            let (polls, polled, guard) = (polls.clone(), polled.clone(), future_drops.guard());
            rt.spawn(poll_fn(move |_| {
                let _keep = &guard;
                polls.incr();
                polled.notify();
                Poll::<()>::Pending
            }))
        };
        // loom's `Notify` may wake spuriously: wait until the poll really happened.
        while polls.get() == 0 {
            polled.wait();
        }
        handle.abort();
        assert!(block_on(handle).unwrap_err().is_cancelled());
        assert_eq!(polls.get(), 1);
        assert_eq!(future_drops.count(), 1);
        drop(rt);
    });
}

/// A clone of the task's waker is cloned, woken and dropped on another thread while the task
/// completes and its handle is consumed: no reference is lost or freed twice (a leaked task
/// would leak the runtime's `Arc`, which loom reports).
#[test]
fn waker_dropped_on_other_thread_while_task_completes() {
    model(|| {
        let rt = runtime();
        let threads = ThreadSlot::default();
        let handle = {
            let threads = threads.clone();
            rt.spawn(poll_fn(move |cx| {
                let waker = cx.waker().clone();
                threads.lock().unwrap().push(thread::spawn(move || {
                    let again = waker.clone();
                    waker.wake();
                    drop(again);
                }));
                Poll::Ready(5)
            }))
        };
        assert_eq!(block_on(handle).unwrap(), 5);
        join_all(&threads);
        drop(rt);
    });
}

/// A task spawned by a task (never listed: it finishes in its first poll) is read by its
/// handle on the model's thread, racing the worker's drop of the task's last queue reference,
/// and the handle, which recorded the read in itself, is dropped on a third thread: the output
/// is dropped once and the task freed once.
#[test]
fn unlisted_task_read_then_its_handle_dropped_elsewhere() {
    model(|| {
        let rt = runtime();
        let output_drops = DropCounter::new();
        let output = output_drops.guard();
        // The inner handle is handed out unawaited (an `Option`, so that it is not awaited by
        // mistake either).
        let outer = rt.spawn(async move { Some(magpie_executor::spawn(async move { output })) });
        let mut inner = block_on(outer).unwrap().unwrap();
        drop(block_on(&mut inner).unwrap());
        assert_eq!(output_drops.count(), 1);
        assert!(inner.is_finished());
        thread::spawn(move || drop(inner)).join().unwrap();
        assert_eq!(output_drops.count(), 1);
        drop(rt);
    });
}

/// A waker that does nothing: its `Arc`'s count says how many clones are alive.
struct CountedWaker;

impl std::task::Wake for CountedWaker {
    fn wake(self: std::sync::Arc<Self>) {}
}

/// The handle registers its waker (one poll), then is dropped unread while the task completes:
/// the slow drop, which takes the waker back while `COMPLETE` is clear (the completion then
/// does not read the slot), or leaves it to the task after. The future and the output are each
/// dropped once, and so is every clone of the waker.
#[test]
fn join_handle_polled_then_dropped_while_task_completes() {
    model(|| {
        let rt = runtime();
        let future_drops = DropCounter::new();
        let output_drops = DropCounter::new();
        let (in_future, output) = (future_drops.guard(), output_drops.guard());
        let mut handle = rt.spawn(async move {
            let _in_future = in_future;
            output
        });
        let counted = std::sync::Arc::new(CountedWaker);
        let waker = std::task::Waker::from(counted.clone());
        let polled =
            std::pin::Pin::new(&mut handle).poll(&mut std::task::Context::from_waker(&waker));
        if let Poll::Ready(out) = polled {
            drop(out);
            assert_eq!(output_drops.count(), 1);
        }
        drop(waker);
        drop(handle);
        drop(rt);
        assert_eq!(future_drops.count(), 1);
        assert_eq!(output_drops.count(), 1);
        assert_eq!(
            std::sync::Arc::strong_count(&counted),
            1,
            "a clone of the handle's waker outlived the runtime"
        );
    });
}
