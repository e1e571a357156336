//! Loom models of the scheduler: the park/notify handshake (`runtime/idle.rs`,
//! `runtime/worker.rs`), stealing, the local queue's overflow into batches, shutdown, and
//! `block_on`. Under `cfg(loom)` the run queues are a lock-based model of crossbeam-deque with
//! a local capacity of 2, so the overflow path is reachable with a handful of tasks.
#![cfg(loom)]

use std::future::poll_fn;
use std::task::{Poll, Waker};

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use magpie_executor::{block_on, Runtime};
use magpie_loom_tests::{model, Counter, DropCounter};

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().worker_threads(workers).build().unwrap()
}

/// A task spawned from outside while both workers are on their way to park still runs: the
/// producer's notify and the workers' last look at the queues cannot both miss each other
/// (a lost wakeup would leave every thread blocked, which loom reports as a deadlock).
#[test]
fn spawn_from_outside_while_workers_park() {
    model(|| {
        let rt = runtime(2);
        let runs = Counter::new();
        let handle = {
            let runs = runs.clone();
            rt.spawn(async move {
                runs.incr();
            })
        };
        block_on(handle).unwrap();
        assert_eq!(runs.get(), 1);
        drop(rt);
    });
}

/// One task spawns two children on its worker and awaits them: the first child takes the
/// LIFO slot and the second goes to the local queue, and the other worker, woken for the
/// shared work, may steal it while its owner pops it. Every child runs exactly once.
#[test]
fn stealing_runs_every_task_once() {
    model(|| {
        let rt = runtime(2);
        let runs: Vec<Counter> = (0..2).map(|_| Counter::new()).collect();
        let parent = {
            let runs = runs.clone();
            rt.spawn(async move {
                let children: Vec<_> = runs
                    .into_iter()
                    .map(|runs| {
                        magpie_executor::spawn(async move {
                            runs.incr();
                        })
                    })
                    .collect();
                for child in children {
                    child.await.unwrap();
                }
            })
        };
        block_on(parent).unwrap();
        for count in &runs {
            assert_eq!(count.get(), 1);
        }
        drop(rt);
    });
}

/// One task spawns four children on a one-worker runtime: with a local capacity of 2 the
/// fourth push moves the oldest queued task out in an overflow batch. Every child runs exactly
/// once, whichever queue it ran from.
#[test]
fn local_overflow_into_a_batch_loses_nothing() {
    model(|| {
        let rt = runtime(1);
        let runs: Vec<Counter> = (0..4).map(|_| Counter::new()).collect();
        let parent = {
            let runs = runs.clone();
            rt.spawn(async move {
                let children: Vec<_> = runs
                    .into_iter()
                    .map(|runs| {
                        magpie_executor::spawn(async move {
                            runs.incr();
                        })
                    })
                    .collect();
                for child in children {
                    child.await.unwrap();
                }
            })
        };
        block_on(parent).unwrap();
        for count in &runs {
            assert_eq!(count.get(), 1);
        }
        drop(rt);
    });
}

/// A task spawns four children on a one-worker runtime and returns: the fourth spawn moves the
/// oldest queued child into an overflow batch (`runtime/overflow.rs`; a local capacity of 2).
/// The runtime is then dropped. Whether the worker ran the batch or shutdown found it still
/// queued, unpolled (and unlisted: `runtime/owned.rs`), every child's future is dropped exactly
/// once before the drop of the runtime returns, and every `JoinHandle` resolves.
#[test]
fn tasks_in_an_overflow_batch_at_shutdown_are_cancelled() {
    model(|| {
        let rt = runtime(1);
        let parent_drops = DropCounter::new();
        let child_drops: Vec<DropCounter> = (0..4).map(|_| DropCounter::new()).collect();
        let handles: Arc<Mutex<Vec<magpie_executor::JoinHandle<()>>>> = Arc::default();
        let parent = {
            let parent_guard = parent_drops.guard();
            let guards: Vec<_> = child_drops.iter().map(DropCounter::guard).collect();
            let handles = handles.clone();
            rt.spawn(async move {
                let _keep = &parent_guard;
                for guard in guards {
                    let child = magpie_executor::spawn(async move { drop(guard) });
                    handles.lock().unwrap().push(child);
                }
            })
        };
        drop(parent);
        drop(rt);
        assert_eq!(parent_drops.count(), 1);
        // Before the handles go: dropping the last reference would drop a forgotten future.
        for drops in &child_drops {
            assert_eq!(drops.count(), 1);
        }
        let children = std::mem::take(&mut *handles.lock().unwrap());
        for child in children {
            // Ran (`Ok`) or cancelled (`Err`): either way it resolves.
            let _ = block_on(child);
        }
    });
}

/// A task yields while its worker's LIFO slot holds a task that cannot finish without it: the
/// slot's task, run first, blocks its worker until the yielded task has run. So the yield,
/// which wakes nobody when its worker will run the task next, must wake the other worker here
/// (`Core::push_yielded`), which steals the yielded task from the queue. A yield that woke
/// nobody would leave the other worker parked and this one spinning for good.
#[test]
fn a_yield_behind_a_full_lifo_slot_wakes_a_worker() {
    model(|| {
        let rt = runtime(2);
        let yielded_ran = Arc::new(AtomicBool::new(false));
        let parent = {
            let yielded_ran = yielded_ran.clone();
            rt.spawn(async move {
                let blocker = {
                    let yielded_ran = yielded_ran.clone();
                    // Into the LIFO slot: this worker runs it right after the parent's poll.
                    magpie_executor::spawn(async move {
                        while !yielded_ran.load(Ordering::SeqCst) {
                            thread::yield_now();
                        }
                    })
                };
                magpie_executor::task::yield_now().await;
                yielded_ran.store(true, Ordering::SeqCst);
                blocker.await.unwrap();
            })
        };
        block_on(parent).unwrap();
        drop(rt);
    });
}

/// The runtime is dropped while another thread spawns a task and wakes a pending one through
/// a `Handle`. Each task's future is dropped exactly once (run to completion or cancelled),
/// and no task leaks: a task or queue entry left behind would keep the runtime's `Arc` alive,
/// which loom reports as a leak.
#[test]
fn shutdown_racing_spawn_and_wake() {
    model(|| {
        let rt = runtime(1);
        let pending_drops = DropCounter::new();
        let spawned_drops = DropCounter::new();
        let waker_slot: Arc<Mutex<Option<Waker>>> = Arc::default();
        let pending = {
            let (guard, slot) = (pending_drops.guard(), waker_slot.clone());
            rt.spawn(poll_fn(move |cx| {
                let _keep = &guard;
                *slot.lock().unwrap() = Some(cx.waker().clone());
                Poll::<()>::Pending
            }))
        };
        drop(pending);
        let outside = {
            let handle = rt.handle();
            let guard = spawned_drops.guard();
            let slot = waker_slot.clone();
            thread::spawn(move || {
                drop(handle.spawn(async move { drop(guard) }));
                let waker = slot.lock().unwrap().take();
                if let Some(waker) = waker {
                    waker.wake();
                }
            })
        };
        drop(rt);
        outside.join().unwrap();
        // The pending task's waker may still be in the slot (it is a reference to the task).
        drop(waker_slot.lock().unwrap().take());
        assert_eq!(pending_drops.count(), 1);
        assert_eq!(spawned_drops.count(), 1);
    });
}

/// `Runtime::block_on` waits for a task that runs on the worker and completes; the worker then
/// parks, and dropping the runtime wakes and joins it.
#[test]
fn block_on_completes_while_workers_park() {
    model(|| {
        let rt = runtime(1);
        let out = rt.block_on(async {
            let child = magpie_executor::spawn(async { 40 });
            child.await.unwrap() + 2
        });
        assert_eq!(out, 42);
        drop(rt);
    });
}

/// A task that a worker spawns goes on the live-task list at its first wait, not at its spawn
/// (`runtime/owned.rs`). One spawned by a task and still unpolled in its worker's queue when
/// the runtime is dropped must be cancelled all the same: the worker lists it as it leaves,
/// and shutdown cancels it through the list. Whichever way the race goes (the parent never
/// ran, the child ran, or the child was left in the queue), each future is dropped exactly
/// once before the drop of the runtime returns, and the child's `JoinHandle` resolves.
#[test]
fn a_task_spawned_by_a_task_and_never_polled_is_cancelled_at_shutdown() {
    model(|| {
        let rt = runtime(1);
        let (parent_drops, child_drops) = (DropCounter::new(), DropCounter::new());
        let child_slot: Arc<Mutex<Option<magpie_executor::JoinHandle<()>>>> = Arc::default();
        let parent = {
            let (parent_guard, child_guard) = (parent_drops.guard(), child_drops.guard());
            let slot = child_slot.clone();
            rt.spawn(async move {
                let _keep = &parent_guard;
                let child = magpie_executor::spawn(async move { drop(child_guard) });
                *slot.lock().unwrap() = Some(child);
            })
        };
        drop(parent);
        drop(rt);
        assert_eq!(parent_drops.count(), 1);
        // Before the handle goes: dropping the last reference would drop a forgotten future.
        assert_eq!(child_drops.count(), 1);
        let child = child_slot.lock().unwrap().take();
        if let Some(child) = child {
            // Ran (`Ok`) or cancelled (`Err`): either way it resolves.
            let _ = block_on(child);
        }
    });
}

/// A task yields on a one-worker runtime: it goes back into the queue keeping its `RUNNING`
/// bit (a carried entry, `task/raw.rs`), behind the task it spawned into the LIFO slot, which
/// aborts it. When the carried entry comes up, the task is cancelled, not polled again: the
/// resume must look for the abort (`State::resume_carried`).
#[test]
fn a_task_aborted_while_its_yield_waits_is_cancelled_not_polled() {
    model(|| {
        let rt = runtime(1);
        let polls = Counter::new();
        let parent = {
            let polls = polls.clone();
            rt.spawn(async move {
                let own: Arc<Mutex<Option<magpie_executor::task::AbortHandle>>> = Arc::default();
                let yielder = {
                    let own = own.clone();
                    // Into the LIFO slot: it runs once this task waits below.
                    magpie_executor::spawn(async move {
                        // Bounded, so that a task polled again ends (and the model fails).
                        for _ in 0..2 {
                            polls.incr();
                            let aborter = own.lock().unwrap().take();
                            // Into the LIFO slot, ahead of this task's own yield.
                            magpie_executor::spawn(async move {
                                if let Some(aborter) = aborter {
                                    aborter.abort();
                                }
                            });
                            magpie_executor::task::yield_now().await;
                        }
                    })
                };
                *own.lock().unwrap() = Some(yielder.abort_handle());
                yielder.await
            })
        };
        let result = block_on(parent).unwrap();
        assert!(result.unwrap_err().is_cancelled());
        assert_eq!(polls.get(), 1, "polled again after the abort");
        drop(rt);
    });
}

/// Spawns a task that yields twice, then waits for good (only a cancellation ends it),
/// counting the drop of its future in `drops`.
fn spawn_two_yields_then_wait(
    rt: &Runtime,
    drops: &DropCounter,
) -> magpie_executor::JoinHandle<()> {
    let guard = drops.guard();
    rt.spawn(async move {
        let _keep = guard;
        magpie_executor::task::yield_now().await;
        magpie_executor::task::yield_now().await;
        std::future::pending::<()>().await;
    })
}

/// A task yields twice, then waits for good, while the one-worker runtime shuts down. Wherever
/// shutdown finds it — queued with its `RUNNING` bit after a yield (the worker drops the
/// carried entry as it leaves, which must give the bit up: `State::release_carried`), polled,
/// or waiting — its future is dropped once and its `JoinHandle` resolves to a cancellation.
#[test]
fn a_yielding_task_is_cancelled_at_shutdown() {
    model(|| {
        let rt = runtime(1);
        let drops = DropCounter::new();
        let handle = spawn_two_yields_then_wait(&rt, &drops);
        drop(rt);
        // Before the handle goes: dropping the last reference would drop a forgotten future.
        assert_eq!(drops.count(), 1);
        assert!(block_on(handle).unwrap_err().is_cancelled());
    });
}

/// A task wakes itself in its first poll (a yield: its carried entry keeps `RUNNING`) while
/// another thread sets a flag and wakes it through its stored waker. The outside wake may come
/// during the poll, while the entry waits (it finds `RUNNING` and sets `NOTIFIED`, queueing
/// nothing), or after; in every case the task sees the flag and finishes.
#[test]
fn a_wake_while_a_yield_waits_is_not_lost() {
    model(|| {
        let rt = runtime(1);
        let flag = Arc::new(AtomicBool::new(false));
        let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
        let handle = {
            let (flag, slot) = (flag.clone(), slot.clone());
            let mut first = true;
            rt.spawn(poll_fn(move |cx| {
                *slot.lock().unwrap() = Some(cx.waker().clone());
                if flag.load(Ordering::SeqCst) {
                    return Poll::Ready(());
                }
                if std::mem::take(&mut first) {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }))
        };
        let waker_thread = thread::spawn(move || {
            flag.store(true, Ordering::SeqCst);
            let waker = slot.lock().unwrap().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        });
        block_on(handle).unwrap();
        waker_thread.join().unwrap();
        drop(rt);
    });
}

/// Another thread aborts a task that yields twice on a one-worker runtime, then waits for
/// good: the abort may land during a poll, while a carried entry waits (the resume may see it,
/// or miss it on a plain load and find it at the end of a later poll), or while the task
/// waits. The task ends cancelled in every case, its future dropped once.
#[test]
fn an_abort_from_another_thread_while_a_task_yields_cancels_it() {
    model(|| {
        let rt = runtime(1);
        let drops = DropCounter::new();
        let handle = spawn_two_yields_then_wait(&rt, &drops);
        let aborter = {
            let abort = handle.abort_handle();
            thread::spawn(move || abort.abort())
        };
        assert!(block_on(handle).unwrap_err().is_cancelled());
        aborter.join().unwrap();
        assert_eq!(drops.count(), 1);
        drop(rt);
    });
}
