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
use std::num::NonZeroU32;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Waker;

/// The handle a pending future keeps to its entry: the entry's index plus one, so that an
/// `Option<WaiterId>` — in every waiting future — is 4 bytes. Deliberately neither `Copy` nor
/// `Clone`: [`WaitList::remove`] consumes it, so an entry cannot be freed twice.
#[derive(Debug)]
pub(crate) struct WaiterId(NonZeroU32);

impl WaiterId {
    fn index(&self) -> usize {
        self.0.get() as usize - 1
    }
}

/// A neighbour in the list (or a marker), stored as an index plus one so that it is never 0:
/// `Option<Entry<T>>` keeps its `None` in that zero, and an entry of a `WaitList<()>` is 24
/// bytes (a waker and two links) — what every waiting task of an `Event`, a `Lock`… costs.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Link(NonZeroU32);

impl Link {
    /// No neighbour: the end of the list (or an empty list's head and tail).
    const NIL: Link = Link::raw(u32::MAX);
    /// In `prev` only: the entry is not queued (notified, or never linked).
    const DETACHED: Link = Link::raw(u32::MAX - 1);
    /// The most entries a list can hold: every index + 1 must stay below the markers.
    const MAX_ENTRIES: usize = (u32::MAX - 2) as usize;

    const fn raw(value: u32) -> Link {
        match NonZeroU32::new(value) {
            Some(value) => Link(value),
            None => panic!("a link is never 0"),
        }
    }

    /// The link to the entry at `index` (below `MAX_ENTRIES`, checked where entries are made).
    fn to(index: usize) -> Link {
        Link::raw(index as u32 + 1)
    }

    /// The entry it points to, or `None` at the end of the list.
    fn index(self) -> Option<usize> {
        debug_assert!(self != Link::DETACHED, "a detached entry has no neighbours");
        (self != Link::NIL).then(|| self.0.get() as usize - 1)
    }
}

struct Entry<T> {
    value: T,
    waker: Option<Waker>,
    /// The entry before it, `NIL` at the front — or `DETACHED` when it is not queued (not yet
    /// notified is exactly "queued").
    prev: Link,
    /// The entry after it, `NIL` at the back; meaningless while detached.
    next: Link,
}

// What an idle task waiting on a primitive pays for its place in line (the idle-task memory row
// of the comparison run): a waker and two 4-byte links.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Option<Entry<()>>>() == 24);

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
    free: Vec<u32>,
    head: Link,
    tail: Link,
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
            head: Link::NIL,
            tail: Link::NIL,
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

    /// Sets the `prev` of the entry `link` points to — or, when `link` is `NIL` (past the
    /// back), the list's tail.
    fn set_prev_of(&mut self, link: Link, prev: Link) {
        match link.index() {
            Some(index) => self.entry_mut(index).prev = prev,
            None => self.tail = prev,
        }
    }

    /// Sets the `next` of the entry `link` points to — or, when `link` is `NIL` (before the
    /// front), the list's head.
    fn set_next_of(&mut self, link: Link, next: Link) {
        match link.index() {
            Some(index) => self.entry_mut(index).next = next,
            None => self.head = next,
        }
    }

    /// Appends a waiter at the back of the queue.
    ///
    /// # Panics
    /// With more than 4 294 967 293 entries in one list.
    pub(crate) fn push_back(&mut self, value: T, waker: &Waker) -> WaiterId {
        let entry = Entry {
            value,
            waker: Some(waker.clone()),
            prev: self.tail,
            next: Link::NIL,
        };
        let index = match self.free.pop() {
            Some(index) => {
                let index = index as usize;
                self.slots[index] = Some(entry);
                index
            }
            None => {
                assert!(
                    self.slots.len() < Link::MAX_ENTRIES,
                    "more than {} waiters in one list",
                    Link::MAX_ENTRIES
                );
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        };
        let link = Link::to(index);
        self.set_next_of(self.tail, link);
        self.tail = link;
        self.queued += 1;
        WaiterId(link.0)
    }

    /// Whether the waiter is still queued, i.e. has not been notified.
    pub(crate) fn is_queued(&self, id: &WaiterId) -> bool {
        self.entry(id.index()).prev != Link::DETACHED
    }

    /// Records the waker to use for this waiter's next notification.
    pub(crate) fn set_waker(&mut self, id: &WaiterId, waker: &Waker) {
        let entry = self.entry_mut(id.index());
        match &entry.waker {
            Some(current) if current.will_wake(waker) => {}
            _ => entry.waker = Some(waker.clone()),
        }
    }

    /// The value of a waiter's entry, queued or notified.
    pub(crate) fn get(&self, id: &WaiterId) -> &T {
        &self.entry(id.index()).value
    }

    /// The value of a waiter's entry, queued or notified, for updating in place.
    pub(crate) fn get_mut(&mut self, id: &WaiterId) -> &mut T {
        &mut self.entry_mut(id.index()).value
    }

    /// Puts a notified waiter back at the *front* of the queue (it keeps its place in line),
    /// waiting again with `waker`.
    pub(crate) fn relink_front(&mut self, id: &WaiterId, waker: &Waker) {
        let index = id.index();
        let old_head = self.head;
        {
            let entry = self.entry_mut(index);
            debug_assert!(
                entry.prev == Link::DETACHED,
                "only a notified waiter can be put back"
            );
            // The waker first: a `clone` that panics then leaves the entry as it was
            // (notified, unlinked) rather than looking queued while in no list.
            match &entry.waker {
                Some(current) if current.will_wake(waker) => {}
                _ => entry.waker = Some(waker.clone()),
            }
            entry.prev = Link::NIL;
            entry.next = old_head;
        }
        let link = Link::to(index);
        self.set_prev_of(old_head, link);
        self.head = link;
        self.queued += 1;
    }

    /// The value of the waiter at the front of the queue.
    pub(crate) fn front(&self) -> Option<&T> {
        self.head.index().map(|head| &self.entry(head).value)
    }

    /// The value of the waiter at the front of the queue, for updating in place.
    pub(crate) fn front_mut(&mut self) -> Option<&mut T> {
        let head = self.head.index()?;
        Some(&mut self.entry_mut(head).value)
    }

    fn unlink(&mut self, index: usize) {
        let (prev, next) = {
            let entry = self.entry_mut(index);
            debug_assert!(entry.prev != Link::DETACHED);
            (
                std::mem::replace(&mut entry.prev, Link::DETACHED),
                entry.next,
            )
        };
        self.set_next_of(prev, next);
        self.set_prev_of(next, prev);
        self.queued -= 1;
    }

    /// Unlinks the front waiter and marks it notified. Returns its value, for the notifier to
    /// store its handoff in, and its waker, which the caller must wake *after* unlocking.
    pub(crate) fn notify_front(&mut self) -> Option<(&mut T, Option<Waker>)> {
        let index = self.head.index()?;
        self.unlink(index);
        let entry = self.entry_mut(index);
        let waker = entry.waker.take();
        Some((&mut entry.value, waker))
    }

    /// Frees the waiter's entry. Called by the owning future once it has observed its
    /// notification, or when it is dropped.
    pub(crate) fn remove(&mut self, id: WaiterId) -> Removed<T> {
        let index = id.index();
        let notified = self.entry(index).prev == Link::DETACHED;
        if !notified {
            self.unlink(index);
        }
        let entry = self.slots[index]
            .take()
            .expect("waiter id refers to a live entry");
        // Fits: `index` is below `Link::MAX_ENTRIES`.
        self.free.push(index as u32);
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
            wake_catching_panics(waker);
        }
    }
}

/// Wakes `waker`, stopping a panic of its `wake` here (reported once on stderr): for a
/// primitive that wakes one waker outside any [`WakeList`] (`oneshot`), for the same reasons
/// as `WakeList::wake_nonempty`.
pub(crate) fn wake_catching_panics(waker: Waker) {
    if catch_unwind(AssertUnwindSafe(|| waker.wake())).is_err() {
        report_panicking_waker();
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

    /// A waker whose `clone` panics (a buggy executor's).
    fn waker_whose_clone_panics() -> Waker {
        const VTABLE: std::task::RawWakerVTable = std::task::RawWakerVTable::new(
            |_| panic!("a waker whose clone panics (planted by the test)"),
            |_| {},
            |_| {},
            |_| {},
        );
        // SAFETY: no function of the vtable reads the (null) data pointer or frees anything.
        unsafe { Waker::from_raw(std::task::RawWaker::new(std::ptr::null(), &VTABLE)) }
    }

    #[test]
    fn a_waker_whose_clone_panics_leaves_a_relinked_waiter_notified_and_the_list_whole() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut list = WaitList::new();
        let a = list.push_back(1, &waker);
        let b = list.push_back(2, &waker);
        assert_eq!(*list.notify_front().unwrap().0, 1);
        let bad = waker_whose_clone_panics();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            list.relink_front(&a, &bad);
        }));
        assert!(unwound.is_err());
        assert!(!list.is_queued(&a), "still notified, as before the relink");
        assert_eq!(list.len(), 1);
        assert!(list.remove(a).notified);
        assert_eq!(list.front(), Some(&2));
        assert!(!list.remove(b).notified);
        assert!(list.is_empty());
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
