//! Compile-time checks of the auto and common traits (C-SEND-SYNC, C-COMMON-TRAITS).

use std::error::Error;
use std::rc::Rc;

use magpie_sync::oneshot::{Receiver, RecvError, Sender, TryRecvError};
use magpie_sync::*;

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}
fn error<T: Error + Send + Sync + 'static>() {}

#[test]
fn primitives_are_send_and_sync() {
    send_sync::<Lock<u8>>();
    send_sync::<LockGuard<'static, u8>>();
    send_sync::<OwnedLockGuard<u8>>();
    send_sync::<LockFuture<'static, u8>>();
    send_sync::<OwnedLockFuture<u8>>();
    send_sync::<RwLock<u8>>();
    send_sync::<RwLockReadGuard<'static, u8>>();
    send_sync::<RwLockWriteGuard<'static, u8>>();
    send_sync::<ReadFuture<'static, u8>>();
    send_sync::<WriteFuture<'static, u8>>();
    send_sync::<Event>();
    send_sync::<EventWait<'static>>();
    send_sync::<Condition<u8>>();
    send_sync::<ConditionWait<'static, u8>>();
    send_sync::<Semaphore>();
    send_sync::<SemaphorePermit<'static>>();
    send_sync::<OwnedSemaphorePermit>();
    send_sync::<Acquire<'static>>();
    send_sync::<AcquireOwned>();
    send_sync::<Barrier>();
    send_sync::<BarrierWait<'static>>();
    send_sync::<Queue<u8>>();
    send_sync::<PriorityQueue<u8>>();
    send_sync::<Put<'static, u8>>();
    send_sync::<Get<'static, u8>>();
    send_sync::<Join<'static, u8>>();
    send_sync::<Sender<u8>>();
    send_sync::<Receiver<u8>>();
    // Non-`Sync` data can still be protected by a lock shared between threads.
    send_sync::<Lock<std::cell::Cell<u8>>>();
    send::<LockGuard<'static, std::cell::Cell<u8>>>();
}

/// The oneshot's handles stay unwind safe without a `Mutex` inside them (they can be moved into
/// `catch_unwind`), for any `T`, as they were when one kept their state.
#[test]
fn oneshot_handles_are_unwind_safe() {
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    unwind_safe::<Sender<std::cell::Cell<u8>>>();
    unwind_safe::<Receiver<std::cell::Cell<u8>>>();
}

#[test]
fn futures_are_send_for_spawning() {
    fn future_is_send<F: std::future::Future + Send>(_: &F) {}
    let lock = Lock::new(0);
    future_is_send(&lock.lock());
    let queue = Queue::<String>::unbounded();
    future_is_send(&queue.put(String::new()));
    future_is_send(&queue.get());
    let cond = Condition::new(0);
    future_is_send(&async {
        let guard = cond.lock().await;
        drop(cond.wait_while(guard, |n| *n == 0).await);
    });
}

#[test]
fn errors_implement_error() {
    error::<AcquireError>();
    error::<TryAcquireError>();
    error::<PutError<u8>>();
    error::<TryPutError<u8>>();
    error::<Closed>();
    error::<TryGetError>();
    error::<RecvError>();
    error::<TryRecvError>();
    // The value-carrying errors do not require `T: Debug` and display a message.
    struct Opaque;
    assert_eq!(PutError(Opaque).to_string(), "put on a closed queue");
    assert_eq!(format!("{:?}", TryPutError::Full(Opaque)), "Full(..)");
    assert_eq!(Closed.to_string(), "queue closed and empty");
}

#[test]
fn non_send_items_work_on_one_thread() {
    let queue = Queue::unbounded();
    queue.try_put(Rc::new(1)).unwrap();
    assert_eq!(*queue.try_get().unwrap(), 1);
}
