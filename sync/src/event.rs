//! [`Event`]: a settable flag that tasks can wait for (asyncio's `Event`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::loom::Mutex;
use crate::waiters::{WaitList, WaiterId, WakeList};

#[derive(Debug)]
struct State {
    set: bool,
    waiters: WaitList<()>,
}

/// A flag that tasks can wait for (asyncio's `Event`).
///
/// [`set`](Event::set) wakes every task currently waiting; a [`wait`](Event::wait) that starts
/// while the flag is set returns at once. A waiter woken by `set` returns even if the flag is
/// cleared again before it runs.
///
/// **Fairness:** `set` releases all waiters together (in arrival order).
/// **Cancellation:** dropping a pending `wait` future just removes it; nothing is lost.
///
/// # Examples
///
/// ```
/// use magpie_sync::Event;
///
/// let event = Event::new();
/// std::thread::scope(|s| {
///     s.spawn(|| futures_lite::future::block_on(event.wait()));
///     event.set();
/// });
/// assert!(event.is_set());
/// ```
pub struct Event {
    state: Mutex<State>,
}

impl Event {
    /// Creates an event whose flag is clear.
    pub fn new() -> Self {
        Event {
            state: Mutex::new(State {
                set: false,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Sets the flag and wakes every current waiter.
    pub fn set(&self) {
        let mut state = self.state.lock();
        state.set = true;
        let mut wakers = WakeList::new();
        while let Some(((), waker)) = state.waiters.notify_front() {
            wakers.push(waker);
            // Mutant for the loom models (issue 7): `set` releases only one waiter.
            #[cfg(magpie_mutant = "event_set_wakes_one")]
            break;
        }
        drop(state);
        wakers.wake_all();
    }

    /// Clears the flag; later [`wait`](Event::wait)s block until the next [`set`](Event::set).
    ///
    /// # Examples
    ///
    /// ```
    /// let event = magpie_sync::Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    pub fn clear(&self) {
        self.state.lock().set = false;
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.state.lock().set
    }

    /// Waits until the flag is set (returns at once if it already is).
    ///
    /// # Examples
    ///
    /// ```
    /// let event = magpie_sync::Event::new();
    /// event.set();
    /// futures_lite::future::block_on(event.wait());
    /// ```
    pub fn wait(&self) -> EventWait<'_> {
        EventWait {
            event: self,
            waiter: None,
            done: false,
        }
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

/// The future returned by [`Event::wait`].
///
/// # Panics
///
/// Polled again after it returned `Ready` (it would start over: a second acquisition, or
/// arrival, its caller does not expect).
#[must_use = "futures do nothing unless polled"]
pub struct EventWait<'a> {
    event: &'a Event,
    waiter: Option<WaiterId>,
    /// Returned `Ready`: polled again, it panics rather than start over.
    done: bool,
}

// Two words, as before its `done` flag (which fits the padding): every task that waits on an
// `Event` holds one (the idle-task memory row of the comparison run).
#[cfg(all(target_pointer_width = "64", not(loom)))]
const _: () = assert!(std::mem::size_of::<EventWait<'static>>() == 16);

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        assert!(
            !this.done,
            "`EventWait` polled again after it returned `Ready`"
        );
        let polled = this.poll_state(cx);
        this.done = polled.is_ready();
        polled
    }
}

impl EventWait<'_> {
    fn poll_state(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let this = self;
        let mut state = this.event.state.lock();
        match &this.waiter {
            None if state.set => Poll::Ready(()),
            None => {
                this.waiter = Some(state.waiters.push_back((), cx.waker()));
                Poll::Pending
            }
            Some(id) if state.waiters.is_queued(id) => {
                state.waiters.set_waker(id, cx.waker());
                Poll::Pending
            }
            Some(_) => {
                state
                    .waiters
                    .remove(this.waiter.take().expect("matched Some above"));
                Poll::Ready(())
            }
        }
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.waiter.take() {
            self.event.state.lock().waiters.remove(id);
        }
    }
}

impl fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}
