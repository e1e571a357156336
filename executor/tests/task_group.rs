//! `TaskGroup`: structured concurrency.

mod common;

use common::{runtime, wait_until, DropCounter, Signal};
use magpie_executor::task::{yield_now, GroupError, TaskGroup};

/// Scaled down under Miri, which interprets every instruction.
const N: u64 = if cfg!(miri) { 100 } else { 10_000 };

#[test]
fn ten_thousand_tasks_complete_in_spawn_order() {
    let rt = runtime(2);
    let out = rt.block_on(async {
        let mut group = TaskGroup::new();
        for i in 0..N {
            group.spawn(async move {
                if i % 3 == 0 {
                    yield_now().await;
                }
                Ok::<_, ()>(i)
            });
        }
        assert_eq!(group.len(), N as usize);
        group.join().await.unwrap()
    });
    assert_eq!(out, (0..N).collect::<Vec<_>>());
}

#[test]
fn one_failure_cancels_the_siblings_and_is_returned() {
    let rt = runtime(2);
    let drops = DropCounter::default();
    let d = drops.clone();
    let err = rt.block_on(async move {
        let mut group = TaskGroup::new();
        for _ in 0..50 {
            let guard = d.guard();
            group.spawn(async move {
                let _guard = guard;
                Signal::default().wait().await;
                Ok::<u32, String>(0)
            });
        }
        group.spawn(async {
            yield_now().await;
            Err("boom".to_string())
        });
        group.join().await.unwrap_err()
    });
    match err {
        GroupError::Failed(e) => assert_eq!(e, "boom"),
        other => panic!("unexpected {other:?}"),
    }
    // Every sibling's future was dropped before `join` returned.
    assert_eq!(drops.count(), 50);
}

#[test]
fn a_panic_is_reported_with_its_payload() {
    let rt = runtime(2);
    let err = rt.block_on(async {
        let mut group: TaskGroup<(), ()> = TaskGroup::new();
        group.spawn(async { std::future::pending().await });
        group.spawn(async { panic!("group member exploded") });
        group.join().await.unwrap_err()
    });
    assert!(
        format!("{err:?}").contains("group member exploded"),
        "{err:?}"
    );
    let payload = err.into_panic().unwrap();
    assert_eq!(
        *payload.downcast::<&str>().unwrap(),
        "group member exploded"
    );
}

/// Completes at once, and panics when dropped.
struct ReadyThenPanicsOnDrop;

impl std::future::Future for ReadyThenPanicsOnDrop {
    type Output = Result<(), ()>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), ()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl Drop for ReadyThenPanicsOnDrop {
    fn drop(&mut self) {
        panic!("a member's destructor exploded");
    }
}

#[test]
fn a_member_whose_destructor_panics_after_it_completed_is_a_panic_of_the_group() {
    let rt = runtime(2);
    let err = rt.block_on(async {
        let mut group: TaskGroup<(), ()> = TaskGroup::new();
        group.spawn(async { std::future::pending().await });
        group.spawn(ReadyThenPanicsOnDrop);
        // (This used to panic in `join` — "the wrapper catches panics" — in a debug build,
        // and to report the group as cancelled from outside in a release one.)
        group.join().await.unwrap_err()
    });
    let payload = err.into_panic().expect("the group reports the panic");
    assert_eq!(
        *payload.downcast::<&str>().unwrap(),
        "a member's destructor exploded"
    );
}

#[test]
fn dropping_the_group_cancels_every_task() {
    let rt = runtime(2);
    let drops = DropCounter::default();
    let d = drops.clone();
    rt.block_on(async move {
        let mut group: TaskGroup<(), ()> = TaskGroup::new();
        for _ in 0..100 {
            let guard = d.guard();
            group.spawn(async move {
                let _guard = guard;
                std::future::pending().await
            });
        }
        drop(group);
    });
    // A cancelled task drops its future first and leaves the live-task list just after:
    // wait for both.
    wait_until("every task of the dropped group cancelled", || {
        drops.count() == 100 && rt.handle().alive_tasks() == 0
    });
}

/// A `join` dropped before it completes (a timeout around it, the losing branch of a race)
/// cancels the tasks still running: they do not outlive the group.
#[test]
fn dropping_a_join_in_progress_cancels_the_tasks_left() {
    let rt = runtime(2);
    let drops = DropCounter::default();
    let d = drops.clone();
    rt.block_on(async move {
        let mut group: TaskGroup<(), ()> = TaskGroup::new();
        group.spawn(async { Ok(()) });
        for _ in 0..10 {
            let guard = d.guard();
            group.spawn(async move {
                let _guard = guard;
                std::future::pending().await
            });
        }
        let mut join = Box::pin(group.join());
        // Polled once (the group's handles are now inside the join), then abandoned.
        assert!(futures_lite::future::poll_once(join.as_mut())
            .await
            .is_none());
        drop(join);
    });
    wait_until("every task left in the abandoned join cancelled", || {
        drops.count() == 10 && rt.handle().alive_tasks() == 0
    });
}

#[test]
fn group_tasks_run_in_parallel_on_the_workers() {
    // Two tasks that each wait for the other to have started can only both finish if they
    // run at the same time on different workers.
    // Each blocks its worker thread until both have started (bounded, so that a bug fails the
    // test instead of hanging it).
    let rt = runtime(2);
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let out = rt.block_on(async move {
        let mut group = TaskGroup::new();
        for i in 0..2 {
            let started = started.clone();
            group.spawn(async move {
                started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                wait_until("both group tasks running at once", || {
                    started.load(std::sync::atomic::Ordering::SeqCst) == 2
                });
                Ok::<_, ()>(i)
            });
        }
        group.join().await.unwrap()
    });
    assert_eq!(out, vec![0, 1]);
}

#[test]
fn group_error_is_send_sync_and_fits_a_boxed_error() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<GroupError<std::io::Error>>();
    assert_send_sync::<magpie_executor::task::PanicPayload>();

    let rt = runtime(1);
    let err = rt.block_on(async {
        let mut group: TaskGroup<(), std::io::Error> = TaskGroup::new();
        group.spawn(async { panic!("member {} exploded", 7) });
        group.join().await.unwrap_err()
    });
    match &err {
        GroupError::Panicked(payload) => assert_eq!(payload.message(), Some("member 7 exploded")),
        other => panic!("unexpected {other:?}"),
    }
    // `?` into the usual boxed error type works.
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
    assert_eq!(
        boxed.to_string(),
        "a task of the group panicked with message \"member 7 exploded\""
    );
}
