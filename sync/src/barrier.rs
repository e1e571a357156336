//! [`Barrier`]: wait until `n` tasks have arrived (asyncio's `Barrier`, without abort/reset).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::loom::Mutex;
use crate::waiters::{WaitList, WaiterId, WakeList};

#[derive(Debug)]
struct State {
    parties: usize,
    arrived: usize,
    waiters: WaitList<()>,
}

/// Makes `n` tasks wait for each other; reusable across generations.
///
/// The `n`-th task to call [`wait`](Barrier::wait) releases the other `n - 1` of its generation
/// and is reported as the leader ([`BarrierWaitResult::is_leader`]); the barrier is then ready
/// for the next generation. A task arrives when its `wait` future is first polled.
///
/// **Cancellation:** dropping a `wait` future that is still waiting takes its arrival back (the
/// generation then needs another task); once released, dropping it changes nothing.
///
/// # Examples
///
/// ```
/// use magpie_sync::Barrier;
///
/// let barrier = Barrier::new(3);
/// let leaders = std::thread::scope(|s| {
///     let handles: Vec<_> = (0..3)
///         .map(|_| s.spawn(|| futures_lite::future::block_on(barrier.wait()).is_leader()))
///         .collect();
///     handles.into_iter().map(|h| h.join().unwrap()).filter(|&l| l).count()
/// });
/// assert_eq!(leaders, 1);
/// ```
pub struct Barrier {
    state: Mutex<State>,
}

impl Barrier {
    /// Creates a barrier for `n` tasks. `Barrier::new(0)` behaves like `Barrier::new(1)`: every
    /// `wait` returns at once as the leader.
    pub fn new(n: usize) -> Self {
        Barrier {
            state: Mutex::new(State {
                parties: n.max(1),
                arrived: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Arrives at the barrier and waits for the rest of the generation.
    pub fn wait(&self) -> BarrierWait<'_> {
        BarrierWait {
            barrier: self,
            waiter: None,
            done: false,
        }
    }

    /// The number of tasks per generation.
    pub fn parties(&self) -> usize {
        self.state.lock().parties
    }

    /// The number of tasks currently waiting in this generation.
    pub fn n_waiting(&self) -> usize {
        self.state.lock().arrived
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Barrier")
            .field("parties", &state.parties)
            .field("arrived", &state.arrived)
            .finish()
    }
}

/// What [`Barrier::wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BarrierWaitResult {
    leader: bool,
}

impl BarrierWaitResult {
    /// Whether this task was the one that completed its generation (exactly one per generation).
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

/// The future returned by [`Barrier::wait`].
///
/// # Panics
///
/// Polled again after it returned `Ready` (it would start over: a second acquisition, or
/// arrival, its caller does not expect).
#[must_use = "futures do nothing unless polled"]
pub struct BarrierWait<'a> {
    barrier: &'a Barrier,
    waiter: Option<WaiterId>,
    /// Returned `Ready`: polled again, it panics rather than start over.
    done: bool,
}

impl Future for BarrierWait<'_> {
    type Output = BarrierWaitResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<BarrierWaitResult> {
        let this = self.get_mut();
        // Polled again, it would arrive a second time: a phantom party in the next generation.
        assert!(
            !this.done,
            "`BarrierWait` polled again after it returned `Ready`"
        );
        let polled = this.poll_state(cx);
        this.done = polled.is_ready();
        polled
    }
}

impl BarrierWait<'_> {
    fn poll_state(&mut self, cx: &mut Context<'_>) -> Poll<BarrierWaitResult> {
        let this = self;
        let mut state = this.barrier.state.lock();
        match &this.waiter {
            None => {
                state.arrived += 1;
                if state.arrived < state.parties {
                    this.waiter = Some(state.waiters.push_back((), cx.waker()));
                    return Poll::Pending;
                }
                // Last arrival: release this generation and start the next one.
                state.arrived = 0;
                let mut wakers = WakeList::new();
                while let Some(((), waker)) = state.waiters.notify_front() {
                    wakers.push(waker);
                }
                drop(state);
                wakers.wake_all();
                Poll::Ready(BarrierWaitResult { leader: true })
            }
            Some(id) if state.waiters.is_queued(id) => {
                state.waiters.set_waker(id, cx.waker());
                Poll::Pending
            }
            Some(_) => {
                state
                    .waiters
                    .remove(this.waiter.take().expect("matched Some above"));
                Poll::Ready(BarrierWaitResult { leader: false })
            }
        }
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        let Some(id) = self.waiter.take() else { return };
        let mut state = self.barrier.state.lock();
        if !state.waiters.remove(id).notified {
            // Still waiting in the current generation: take the arrival back.
            state.arrived -= 1;
        }
    }
}

impl fmt::Debug for BarrierWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWait")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}
