//! The item storage of a queue (one job: the order items come out in).
//!
//! FIFO for [`Queue`](crate::Queue), smallest-first for
//! [`PriorityQueue`](crate::PriorityQueue). The heap keeps its comparison as a plain function
//! pointer chosen where `T: Ord` is known, so the shared queue machinery needs no `Ord` bound.

use std::collections::VecDeque;

pub(crate) enum Buffer<T> {
    Fifo(VecDeque<T>),
    /// A binary min-heap under `less`.
    Heap {
        items: Vec<T>,
        less: fn(&T, &T) -> bool,
    },
}

impl<T> Buffer<T> {
    pub(crate) fn fifo() -> Self {
        Buffer::Fifo(VecDeque::new())
    }

    pub(crate) fn min_heap() -> Self
    where
        T: Ord,
    {
        Buffer::Heap {
            items: Vec::new(),
            less: |a, b| a < b,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Buffer::Fifo(items) => items.len(),
            Buffer::Heap { items, .. } => items.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a newly put item.
    pub(crate) fn push(&mut self, item: T) {
        match self {
            Buffer::Fifo(items) => items.push_back(item),
            Buffer::Heap { items, less } => {
                items.push(item);
                contain_ord_panic(|| sift_up(items, *less));
            }
        }
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        match self {
            Buffer::Fifo(items) => items.pop_front(),
            Buffer::Heap { items, less } => {
                if items.is_empty() {
                    return None;
                }
                let item = items.swap_remove(0);
                contain_ord_panic(|| sift_down(items, *less));
                Some(item)
            }
        }
    }
}

/// Runs a sift, stopping a panic of the items' `Ord` there (reported once on stderr). A sift
/// only swaps items, so every item is still in the heap, in an order no longer a heap's: the
/// operation completes with its item (a `get` returns the one it took out, a `put` has placed
/// its own) and the queue's own bookkeeping after it runs — the wake of a waiter on the other
/// side, the count `join` waits for. Unwinding instead would lose the item a `get` took out
/// and skip that bookkeeping, stranding a sleeping putter. (No cost without a panic:
/// unwinding is table-driven.)
fn contain_ord_panic(sift: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(sift)).is_err() {
        report_panicking_ord();
    }
}

/// Says once per process that an `Ord` panicked in a `PriorityQueue` (`contain_ord_panic`).
#[cold]
fn report_panicking_ord() {
    // A plain std atomic, outside any protocol: it only keeps the report to one line.
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !REPORTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        // `writeln!`, not `eprintln!`, which panics when stderr is gone (a closed pipe).
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "magpie-sync: an Ord implementation panicked in a PriorityQueue; the panic was \
             caught and every item kept, in an unspecified order (reported once)"
        );
    }
}

/// Restores the heap property after pushing onto the end.
fn sift_up<T>(items: &mut [T], less: fn(&T, &T) -> bool) {
    let mut child = items.len() - 1;
    while child > 0 {
        let parent = (child - 1) / 2;
        if !less(&items[child], &items[parent]) {
            break;
        }
        items.swap(child, parent);
        child = parent;
    }
}

/// Restores the heap property after replacing the root.
fn sift_down<T>(items: &mut [T], less: fn(&T, &T) -> bool) {
    let mut parent = 0;
    loop {
        let left = 2 * parent + 1;
        if left >= items.len() {
            break;
        }
        let right = left + 1;
        let smaller = if right < items.len() && less(&items[right], &items[left]) {
            right
        } else {
            left
        };
        if !less(&items[smaller], &items[parent]) {
            break;
        }
        items.swap(smaller, parent);
        parent = smaller;
    }
}

#[cfg(test)]
mod tests {
    use super::Buffer;

    #[test]
    fn heap_pops_in_ascending_order() {
        let mut heap = Buffer::min_heap();
        let input = [5, 3, 9, 1, 1, 8, 2, 7, 6, 4, 0];
        for item in input {
            heap.push(item);
        }
        let mut out = Vec::new();
        while let Some(item) = heap.pop() {
            out.push(item);
        }
        let mut expected = input.to_vec();
        expected.sort();
        assert_eq!(out, expected);
    }
}
