//! Running a blocking call (a DNS lookup, a fallback connect) on a helper thread.

use crate::loom::{lock, Arc, Mutex};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// What the helper thread and the awaiting task share.
struct Slot<R> {
    result: Option<R>,
    waker: Option<Waker>,
}

/// A future resolving to the result of a closure run on its own thread.
pub(crate) struct Unblock<R> {
    slot: Arc<Mutex<Slot<R>>>,
}

/// Runs `f` on a new thread named `magpie-blocking`; the returned future yields its result.
///
/// If the future is dropped first, the thread still finishes and drops the result.
pub(crate) fn unblock<R, F>(f: F) -> io::Result<Unblock<R>>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let slot = Arc::new(Mutex::new(Slot {
        result: None,
        waker: None,
    }));
    let theirs = slot.clone();
    std::thread::Builder::new()
        .name("magpie-blocking".into())
        .spawn(move || {
            let result = f();
            let waker = {
                let mut s = lock(&theirs);
                s.result = Some(result);
                s.waker.take()
            };
            // Woken outside the lock.
            if let Some(w) = waker {
                w.wake();
            }
        })?;
    Ok(Unblock { slot })
}

impl<R> Future for Unblock<R> {
    type Output = R;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let mut s = lock(&self.slot);
        match s.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                match &mut s.waker {
                    Some(w) => w.clone_from(cx.waker()),
                    None => s.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}
