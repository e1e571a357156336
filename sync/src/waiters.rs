//! The FIFO waiter list shared by every primitive (its one job: who waits, in which order).
//!
//! A waiter is a pending future. It enters the list with [`WaitList::push_back`] and receives a
//! [`WaiterId`]. A releasing side *notifies* waiters from the front ([`WaitList::notify_front`]):
//! the entry is unlinked from the queue but stays allocated, holding whatever the notifier handed
//! over (a lock, permits, an item…), until the owning future takes it back with
//! [`WaitList::remove`]. `remove` tells the future whether it was still queued (cancelled before
//! any handoff: nothing to give back) or had been notified (a handoff it must consume or, when the
//! future is being dropped, pass on). That single distinction is what makes every primitive
//! cancellation-safe, and it is written only here.
//!
//! The list is a slab of entries threaded into a doubly linked list by index, so pushing,
//! notifying the front and removing any entry are all O(1). It is always used under the owning
//! primitive's short [`Mutex`](crate::loom::Mutex) critical section; wakers are returned to the
//! caller, who wakes them after unlocking.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Waker;

const NIL: usize = usize::MAX;

/// The handle a pending future keeps to its entry. Deliberately neither `Copy` nor `Clone`:
/// [`WaitList::remove`] consumes it, so an entry cannot be freed twice.
#[derive(Debug)]
pub(crate) struct WaiterId(usize);

struct Entry<T> {
    value: T,
    waker: Option<Waker>,
    /// Whether the entry is still linked in the queue (i.e. not notified yet).
    queued: bool,
    prev: usize,
    next: usize,
}

/// What [`WaitList::remove`] found.
pub(crate) struct Removed<T> {
    /// The entry's value, including anything a notifier stored in it.
    pub(crate) value: T,
    /// `true` if the waiter had been notified (unlinked by a releasing side) before removal.
    pub(crate) notified: bool,
}

/// A FIFO queue of waiters, each carrying a `T`.
pub(crate) struct WaitList<T> {
    slots: Vec<Option<Entry<T>>>,
    free: Vec<usize>,
    head: usize,
    tail: usize,
    queued: usize,
}

impl<T> fmt::Debug for WaitList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitList")
            .field("queued", &self.queued)
            .finish_non_exhaustive()
    }
}

impl<T> WaitList<T> {
    pub(crate) fn new() -> Self {
        WaitList {
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            queued: 0,
        }
    }

    /// Number of waiters still queued (not yet notified).
    pub(crate) fn len(&self) -> usize {
        self.queued
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0
    }

    fn entry(&self, index: usize) -> &Entry<T> {
        self.slots[index]
            .as_ref()
            .expect("waiter id refers to a live entry")
    }

    fn entry_mut(&mut self, index: usize) -> &mut Entry<T> {
        self.slots[index]
            .as_mut()
            .expect("waiter id refers to a live entry")
    }

    /// Appends a waiter at the back of the queue.
    pub(crate) fn push_back(&mut self, value: T, waker: &Waker) -> WaiterId {
        let entry = Entry {
            value,
            waker: Some(waker.clone()),
            queued: true,
            prev: self.tail,
            next: NIL,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index] = Some(entry);
                index
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        };
        if self.tail == NIL {
            self.head = index;
        } else {
            self.entry_mut(self.tail).next = index;
        }
        self.tail = index;
        self.queued += 1;
        WaiterId(index)
    }

    /// Whether the waiter is still queued, i.e. has not been notified.
    pub(crate) fn is_queued(&self, id: &WaiterId) -> bool {
        self.entry(id.0).queued
    }

    /// Records the waker to use for this waiter's next notification.
    pub(crate) fn set_waker(&mut self, id: &WaiterId, waker: &Waker) {
        let entry = self.entry_mut(id.0);
        match &entry.waker {
            Some(current) if current.will_wake(waker) => {}
            _ => entry.waker = Some(waker.clone()),
        }
    }

    /// The value of a waiter's entry, queued or notified.
    pub(crate) fn get(&self, id: &WaiterId) -> &T {
        &self.entry(id.0).value
    }

    /// The value of a waiter's entry, queued or notified, for updating in place.
    pub(crate) fn get_mut(&mut self, id: &WaiterId) -> &mut T {
        &mut self.entry_mut(id.0).value
    }

    /// Puts a notified waiter back at the *front* of the queue (it keeps its place in line),
    /// waiting again with `waker`.
    pub(crate) fn relink_front(&mut self, id: &WaiterId, waker: &Waker) {
        let index = id.0;
        let old_head = self.head;
        {
            let entry = self.entry_mut(index);
            debug_assert!(!entry.queued, "only a notified waiter can be put back");
            entry.queued = true;
            entry.prev = NIL;
            entry.next = old_head;
            match &entry.waker {
                Some(current) if current.will_wake(waker) => {}
                _ => entry.waker = Some(waker.clone()),
            }
        }
        if old_head == NIL {
            self.tail = index;
        } else {
            self.entry_mut(old_head).prev = index;
        }
        self.head = index;
        self.queued += 1;
    }

    /// The value of the waiter at the front of the queue.
    pub(crate) fn front(&self) -> Option<&T> {
        (self.head != NIL).then(|| &self.entry(self.head).value)
    }

    /// The value of the waiter at the front of the queue, for updating in place.
    pub(crate) fn front_mut(&mut self) -> Option<&mut T> {
        if self.head == NIL {
            return None;
        }
        let head = self.head;
        Some(&mut self.entry_mut(head).value)
    }

    fn unlink(&mut self, index: usize) {
        let (prev, next) = {
            let entry = self.entry_mut(index);
            debug_assert!(entry.queued);
            entry.queued = false;
            (entry.prev, entry.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.entry_mut(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.entry_mut(next).prev = prev;
        }
        self.queued -= 1;
    }

    /// Unlinks the front waiter and marks it notified. Returns its value, for the notifier to
    /// store its handoff in, and its waker, which the caller must wake *after* unlocking.
    pub(crate) fn notify_front(&mut self) -> Option<(&mut T, Option<Waker>)> {
        if self.head == NIL {
            return None;
        }
        let index = self.head;
        self.unlink(index);
        let entry = self.entry_mut(index);
        let waker = entry.waker.take();
        Some((&mut entry.value, waker))
    }

    /// Frees the waiter's entry. Called by the owning future once it has observed its
    /// notification, or when it is dropped.
    pub(crate) fn remove(&mut self, id: WaiterId) -> Removed<T> {
        let index = id.0;
        let notified = !self.entry(index).queued;
        if !notified {
            self.unlink(index);
        }
        let entry = self.slots[index]
            .take()
            .expect("waiter id refers to a live entry");
        self.free.push(index);
        Removed {
            value: entry.value,
            notified,
        }
    }
}

/// Says once per process that a `Waker` panicked in `wake` (see `WakeList::wake_nonempty`).
#[cold]
fn report_panicking_waker() {
    // A plain std atomic, outside any protocol: it only keeps the report to one line.
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if !REPORTED.swap(true, Ordering::Relaxed) {
        // `writeln!`, not `eprintln!`, which panics when stderr is gone (a closed pipe).
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "magpie-sync: a Waker panicked in wake(); the panic was caught so that no other \
             waiter, item, permit or lock is lost (an executor bug; reported once)"
        );
    }
}

/// Wakers collected under a lock, to be woken once it is released.
///
/// The first two live inline, so the common release allocates nothing; more spill into a
/// `Vec`. Two, because almost every release wakes one waiter (a lock handoff, one permit, one
/// item) and a queue operation at most a getter and a putter; only broadcasts (`Event::set`,
/// `close`, `notify_all`) go beyond, and they spill. Wakers are woken in the order they were
/// pushed. The inline slots are two plain fields rather than an indexed array so that an empty
/// list (the usual case: a release nobody waits for) costs a few register moves and one check.
#[derive(Debug, Default)]
pub(crate) struct WakeList {
    /// Filled first; `second` is only `Some` if `first` is.
    first: Option<Waker>,
    second: Option<Waker>,
    /// Only touched (and only allocated) once both inline slots are full.
    spilled: Vec<Waker>,
}

impl WakeList {
    #[inline]
    pub(crate) fn new() -> Self {
        WakeList::default()
    }

    #[inline]
    pub(crate) fn push(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else { return };
        if self.first.is_none() {
            self.first = Some(waker);
        } else if self.second.is_none() {
            self.second = Some(waker);
        } else {
            self.spilled.push(waker);
        }
    }

    /// Wakes everything collected, in push order. Call only after the primitive's lock has been
    /// released.
    #[inline]
    pub(crate) fn wake_all(self) {
        // The usual empty list costs one check here; the waking itself stays out of line.
        if self.first.is_some() {
            self.wake_nonempty();
        } else {
            // Filled in order, so with `first` empty there is nothing to drop: skip the
            // (out-of-line) drop glue. Were that ever untrue this would leak, never be unsound.
            debug_assert!(self.second.is_none() && self.spilled.capacity() == 0);
            std::mem::forget(self);
        }
    }

    #[inline(never)]
    fn wake_nonempty(self) {
        let WakeList {
            first,
            second,
            spilled,
        } = self;
        // A `wake` that panics (a buggy waker) must cost nothing else: not the other waiters'
        // wake-ups, and not what the caller was handing over or taking (an item it took, the
        // permits it acquired, the lock it released), which unwinding out of here would drop.
        // So each wake runs inside `catch_unwind` and a panic stops here, reported on stderr
        // (once per process). The primitive's state was settled under its lock before any wake.
        // (No cost without a panic: unwinding is table-driven.)
        for waker in first.into_iter().chain(second).chain(spilled) {
            if catch_unwind(AssertUnwindSafe(|| waker.wake())).is_err() {
                report_panicking_waker();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn notifies_in_fifo_order_and_skips_removed_waiters() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut list = WaitList::new();
        let a = list.push_back(1, &waker);
        let b = list.push_back(2, &waker);
        let c = list.push_back(3, &waker);
        assert_eq!(list.len(), 3);
        let removed = list.remove(b);
        assert!(!removed.notified);
        assert_eq!(removed.value, 2);
        let (value, w) = list.notify_front().unwrap();
        assert_eq!(*value, 1);
        *value = 10;
        w.unwrap().wake();
        assert!(!list.is_queued(&a));
        assert!(list.is_queued(&c));
        assert_eq!(list.front(), Some(&3));
        let removed = list.remove(a);
        assert!(removed.notified);
        assert_eq!(removed.value, 10);
        // The freed slot is reused and the new waiter queues behind `c`.
        let d = list.push_back(4, &waker);
        assert_eq!(*list.notify_front().unwrap().0, 3);
        assert_eq!(*list.notify_front().unwrap().0, 4);
        assert!(list.notify_front().is_none());
        assert!(list.remove(c).notified && list.remove(d).notified);
        assert!(list.is_empty());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_relinked_waiter_goes_back_to_the_front() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut list = WaitList::new();
        let a = list.push_back(1, &waker);
        let b = list.push_back(2, &waker);
        assert_eq!(*list.notify_front().unwrap().0, 1);
        *list.get_mut(&a) = 10;
        list.relink_front(&a, &waker);
        assert!(list.is_queued(&a));
        assert_eq!(list.len(), 2);
        assert_eq!(list.front(), Some(&10));
        assert_eq!(*list.get(&b), 2);
        assert_eq!(*list.notify_front().unwrap().0, 10);
        assert_eq!(*list.notify_front().unwrap().0, 2);
        // Relinking into an empty list makes it the only entry.
        list.relink_front(&b, &waker);
        assert_eq!(list.len(), 1);
        assert_eq!(*list.notify_front().unwrap().0, 2);
        assert!(list.notify_front().is_none());
        assert!(list.remove(a).notified && list.remove(b).notified);
    }

    /// Records, in order, which waker (by id) was woken.
    struct Recorder(usize, Arc<std::sync::Mutex<Vec<usize>>>);
    impl Wake for Recorder {
        fn wake(self: Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    #[test]
    fn wake_list_wakes_everything_in_push_order_inline_and_spilled() {
        const INLINE_WAKERS: usize = 2; // `first` and `second`
        for pushed in [0, 1, INLINE_WAKERS, INLINE_WAKERS + 3] {
            let log = Arc::new(std::sync::Mutex::new(Vec::new()));
            let mut wakers = WakeList::new();
            for id in 0..pushed {
                wakers.push(Some(Waker::from(Arc::new(Recorder(id, log.clone())))));
                wakers.push(None); // ignored
            }
            assert_eq!(wakers.spilled.len(), pushed.saturating_sub(INLINE_WAKERS));
            assert_eq!(wakers.first.is_some(), pushed > 0);
            wakers.wake_all();
            assert_eq!(*log.lock().unwrap(), (0..pushed).collect::<Vec<_>>());
        }
    }
}
