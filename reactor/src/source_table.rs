//! The reactor's source table: a slab of registered sources keyed by index + generation.
//!
//! The key handed to the poller packs the slot index in the low half of a `usize` and the
//! slot's generation in the high half (minus its top bit, so a key is never `usize::MAX`, which
//! `polling` reserves). A slot's generation is bumped every time it is vacated, so an event that
//! was already collected by `Poller::wait` for a source that has since been removed — or whose
//! slot has been reused by a new source — carries a key that no longer matches and is ignored.
//! Lookup, insertion and removal are O(1): a vector index plus a free list.

use crate::loom::Arc;
use crate::source::Source;
use std::io;

/// Bits of a key that hold the slot index.
const INDEX_BITS: u32 = usize::BITS / 2;
/// Mask of the index bits.
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
/// Generations wrap within this mask; the key's top bit stays clear so no key is `usize::MAX`.
const GENERATION_MASK: usize = (1 << (usize::BITS - INDEX_BITS - 1)) - 1;

/// One slot of the table.
enum Slot {
    /// A registered source and the generation its key was minted with.
    Occupied {
        generation: usize,
        source: Arc<Source>,
    },
    /// A free slot; `generation` is the one the next occupant gets.
    Vacant { generation: usize },
}

/// The slab of registered sources.
#[derive(Default)]
pub(crate) struct SourceTable {
    slots: Vec<Slot>,
    /// Indices of vacant slots, reused last-in first-out.
    free: Vec<usize>,
    /// Number of occupied slots.
    len: usize,
}

fn key_of(index: usize, generation: usize) -> usize {
    (generation << INDEX_BITS) | index
}

fn split_key(key: usize) -> (usize, usize) {
    (key & INDEX_MASK, key >> INDEX_BITS)
}

impl SourceTable {
    /// Inserts the source built by `make` from its key; returns that key.
    pub(crate) fn insert(&mut self, make: impl FnOnce(usize) -> Arc<Source>) -> io::Result<usize> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                if self.slots.len() > INDEX_MASK {
                    return Err(io::Error::new(
                        io::ErrorKind::OutOfMemory,
                        "magpie-reactor: the source table is full",
                    ));
                }
                self.slots.push(Slot::Vacant { generation: 0 });
                self.slots.len() - 1
            }
        };
        let generation = match self.slots[index] {
            Slot::Vacant { generation } => generation,
            Slot::Occupied { .. } => unreachable!("free list pointed at an occupied slot"),
        };
        let key = key_of(index, generation);
        self.slots[index] = Slot::Occupied {
            generation,
            source: make(key),
        };
        self.len += 1;
        Ok(key)
    }

    /// The source registered under `key`, if that exact registration is still present.
    pub(crate) fn get(&self, key: usize) -> Option<&Arc<Source>> {
        let (index, generation) = split_key(key);
        match self.slots.get(index)? {
            Slot::Occupied {
                generation: g,
                source,
            } if *g == generation => Some(source),
            _ => None,
        }
    }

    /// Removes the registration `key`; a stale key (already removed) removes nothing.
    pub(crate) fn remove(&mut self, key: usize) -> Option<Arc<Source>> {
        let (index, generation) = split_key(key);
        match self.slots.get(index) {
            Some(Slot::Occupied { generation: g, .. }) if *g == generation => {}
            _ => return None,
        }
        let next = Slot::Vacant {
            generation: (generation + 1) & GENERATION_MASK,
        };
        let old = std::mem::replace(&mut self.slots[index], next);
        self.free.push(index);
        self.len -= 1;
        match old {
            Slot::Occupied { source, .. } => Some(source),
            Slot::Vacant { .. } => None,
        }
    }

    /// Every registered source (Windows: re-armed after a failed wait).
    #[cfg(windows)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<Source>> {
        self.slots.iter().filter_map(|slot| match slot {
            Slot::Occupied { source, .. } => Some(source),
            Slot::Vacant { .. } => None,
        })
    }

    /// Number of registered sources.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;

    #[test]
    fn stale_key_of_reused_slot_is_not_found() {
        let mut table = SourceTable::default();
        let first = table
            .insert(|key| Arc::new(Source::new(key, crate::os::NO_SOURCE)))
            .unwrap();
        assert!(table.get(first).is_some());
        assert!(table.remove(first).is_some());
        assert!(table.get(first).is_none());
        let second = table
            .insert(|key| Arc::new(Source::new(key, crate::os::NO_SOURCE)))
            .unwrap();
        // Same slot, new generation: the old key must not reach the new source.
        assert_eq!(first & INDEX_MASK, second & INDEX_MASK);
        assert_ne!(first, second);
        assert!(table.get(first).is_none());
        assert!(table.remove(first).is_none());
        assert_eq!(table.get(second).unwrap().key(), second);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn keys_are_never_the_reserved_notify_key() {
        assert_ne!(key_of(INDEX_MASK, GENERATION_MASK), usize::MAX);
        assert_eq!(split_key(key_of(5, GENERATION_MASK)), (5, GENERATION_MASK));
    }
}
