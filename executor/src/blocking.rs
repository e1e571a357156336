//! The blocking pool behind `spawn_blocking`: an elastic set of threads for code that blocks
//! (file I/O, CPU-heavy work, blocking libraries), so it never stalls a worker.
//!
//! Threads start on demand up to `max_blocking_threads` and exit after `blocking_keep_alive`
//! without work. Blocking tasks are ordinary tasks (same cell, same `JoinHandle`) whose
//! scheduler is this pool.

use std::collections::HashMap;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::loom::{lock, thread, Arc, Condvar, Mutex};
use crate::runtime::context;
use crate::runtime::metrics::Counter;
use crate::runtime::shared::Shared;
use crate::runtime::{Builder, Handle, Scheduler};
use crate::task::origin::Origin;
use crate::task::raw::Notified;
use crate::task::{new_task, Id, JoinHandle, NewTask};

pub(crate) struct Pool {
    state: Mutex<State>,
    /// Signals queued work (and shutdown) to idle threads.
    work: Condvar,
    /// Signals the last thread's exit to shutdown.
    exited: Condvar,
    /// The runtime's handle, for `spawn` from blocking code; taken at shutdown to break the
    /// reference cycle runtime → pool → runtime.
    handle: Mutex<Option<Handle>>,
    max_threads: usize,
    keep_alive: Duration,
    thread_name: String,
    on_start: Option<crate::runtime::Hook>,
    on_stop: Option<crate::runtime::Hook>,
}

#[derive(Default)]
struct State {
    queue: std::collections::VecDeque<Notified>,
    idle: usize,
    threads: usize,
    /// Threads out of the pool (`threads` no longer counts them) that are still running their
    /// stop hook: shutdown waits for them too, so that no hook runs after it returned.
    stopping: usize,
    next_thread_id: usize,
    handles: HashMap<usize, thread::JoinHandle<()>>,
    shutdown: bool,
}

/// Threads busy and idle, and tasks queued, in the blocking pool.
pub(crate) struct PoolCounts {
    pub(crate) busy: usize,
    pub(crate) idle: usize,
    pub(crate) queued: usize,
}

/// The future of a blocking task: runs the function on its first poll.
struct BlockingTask<F>(Option<F>);

impl<F> Unpin for BlockingTask<F> {}

impl<F: FnOnce() -> R, R> Future for BlockingTask<F> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<R> {
        let f = self
            .0
            .take()
            .expect("a blocking task is polled once: it never returns Pending");
        Poll::Ready(f())
    }
}

impl Pool {
    pub(crate) fn new(builder: &Builder) -> Arc<Pool> {
        Arc::new(Pool {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            exited: Condvar::new(),
            handle: Mutex::new(None),
            max_threads: builder.max_blocking_threads,
            keep_alive: builder.blocking_keep_alive,
            thread_name: format!("{}-blocking", builder.thread_name),
            on_start: builder.on_thread_start.clone(),
            on_stop: builder.on_thread_stop.clone(),
        })
    }

    pub(crate) fn set_handle(&self, handle: Handle) {
        *lock(&self.handle) = Some(handle);
    }

    pub(crate) fn spawn<F, R>(
        shared: &Arc<Shared>,
        f: F,
        location: &'static Location<'static>,
    ) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if shared.config.deterministic {
            // No threads in the deterministic runtime: the function runs on its thread, as a
            // task whose turn the seed decides like any other's.
            return Shared::spawn(shared, async move { f() }, None, location);
        }
        let NewTask { notified, join, .. } = new_task(
            BlockingTask(Some(f)),
            Scheduler::new(shared),
            Id::next(),
            Origin::new(location, None, false),
            true,
            false,
        );
        Pool::push(&shared.blocking, notified);
        join
    }

    /// The pool's threads and queue now, for the runtime's metrics.
    pub(crate) fn counts(&self) -> PoolCounts {
        let state = lock(&self.state);
        PoolCounts {
            busy: state.threads.saturating_sub(state.idle),
            idle: state.idle,
            queued: state.queue.len(),
        }
    }

    /// Queues a blocking task, starting a thread for it if none is idle.
    pub(crate) fn push(this: &Arc<Pool>, task: Notified) {
        let mut state = lock(&this.state);
        if state.shutdown {
            drop(state);
            task.cancel();
            return;
        }
        state.queue.push_back(task);
        if state.idle > 0 {
            this.work.notify_one();
        }
        if state.queue.len() > state.idle && state.threads < this.max_threads {
            if let Err(err) = Pool::start_thread(this, &mut state) {
                if state.threads == 0 {
                    // No thread runs and none could start: nothing would ever run what is
                    // queued. Cancel it (each `JoinHandle` resolves to a cancelled error)
                    // rather than leave its awaiters hanging; the next `spawn_blocking` tries
                    // again. With threads running, the task waits for one of them.
                    let stranded: Vec<Notified> = state.queue.drain(..).collect();
                    drop(state);
                    crate::runtime::debug::report_error(format_args!(
                        "magpie: cannot start a blocking thread ({err}); {} blocking task(s) \
                         cancelled",
                        stranded.len()
                    ));
                    for task in stranded {
                        task.cancel();
                    }
                }
            }
        }
    }

    fn start_thread(this: &Arc<Pool>, state: &mut State) -> std::io::Result<()> {
        let id = state.next_thread_id;
        let pool = this.clone();
        let spawned =
            crate::loom::spawn_named(this.thread_name.clone(), move || pool.thread_main(id));
        // If the OS refuses a thread, the task waits for one of the running threads (`push`
        // cancels it when there is none).
        let handle = spawned?;
        state.next_thread_id += 1;
        state.threads += 1;
        state.handles.insert(id, handle);
        Ok(())
    }

    fn thread_main(&self, id: usize) {
        let handle = lock(&self.handle).clone();
        if let Some(handle) = &handle {
            context::set_owner(handle.shared.addr());
        }
        let _enter = handle.map(context::enter_handle);
        crate::runtime::run_hook(self.on_start.as_ref(), "on_thread_start");
        let mut state = lock(&self.state);
        loop {
            if let Some(task) = state.queue.pop_front() {
                drop(state);
                // A blocking task completes in its one poll; were one to wake itself, it would
                // go back through the pool's own queue.
                // A blocking task is never listed nor counted: the counter stays unread.
                if let Some(task) = task.run(&Counter::default()) {
                    task.requeue();
                }
                state = lock(&self.state);
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let (guard, waited) = self
                .work
                .wait_timeout(state, self.keep_alive)
                .unwrap_or_else(|p| p.into_inner());
            state = guard;
            state.idle -= 1;
            if waited.timed_out() && state.queue.is_empty() && !state.shutdown {
                // Idle for the whole keep-alive: leave. Our handle is dropped (detached) as
                // we are about to exit anyway.
                state.handles.remove(&id);
                break;
            }
        }
        // Out of the pool at once (a `push` from now on starts a thread if it needs one), but
        // stopping until the hook has run.
        state.threads -= 1;
        state.stopping += 1;
        drop(state);
        crate::runtime::run_hook(self.on_stop.as_ref(), "on_thread_stop");
        let mut state = lock(&self.state);
        state.stopping -= 1;
        if state.threads == 0 && state.stopping == 0 {
            self.exited.notify_all();
        }
    }

    /// Cancels queued blocking tasks, waits (up to `timeout`) for running ones, joins the
    /// threads that exited.
    pub(crate) fn shutdown(&self, timeout: Option<Duration>) {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let queued: Vec<Notified> = {
            let mut state = lock(&self.state);
            state.shutdown = true;
            state.queue.drain(..).collect()
        };
        drop(lock(&self.handle).take());
        for task in queued {
            task.cancel();
        }
        self.work.notify_all();
        let mut state = lock(&self.state);
        while state.threads > 0 || state.stopping > 0 {
            state = match deadline {
                None => self.exited.wait(state).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        return;
                    };
                    self.exited
                        .wait_timeout(state, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        let handles: Vec<_> = state.handles.drain().map(|(_, h)| h).collect();
        drop(state);
        for handle in handles {
            let _ = handle.join();
        }
    }
}

/// Runs the blocking function `f` on the current runtime's blocking thread pool and returns
/// a handle to its result: asyncio's `to_thread`. The function runs to completion even if the
/// handle is dropped; `abort` only prevents it from starting.
///
/// # Panics
///
/// Outside a runtime: use [`Runtime::spawn_blocking`](crate::Runtime::spawn_blocking) or
/// [`Handle::spawn_blocking`] there.
///
/// # Examples
///
/// ```
/// magpie_executor::run(async {
///     let sum = magpie_executor::spawn_blocking(|| (1..=100u64).sum::<u64>()).await.unwrap();
///     assert_eq!(sum, 5050);
/// });
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let location = Location::caller();
    context::with_handle(|handle| match handle {
        Some(handle) => Pool::spawn(&handle.shared, f, location),
        None => panic!(
            "`spawn_blocking` called outside a magpie runtime: use `Runtime::spawn_blocking` \
             or `Handle::spawn_blocking`, or start a runtime with `magpie::run`"
        ),
    })
}
