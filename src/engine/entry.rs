//! What the arena holds for each cached item.
//!
//! The fields are private to this module: the wheel writes the deadline and
//! the timer link through [`TimerNodes`], the policy the order link through
//! [`OrderLinks`], and the cache reads the rest through the methods here.

use super::arena::{Arena, SlotId};
use super::index::{IndexHash, STORED_HASH_BITS};
use super::list::{Link, Links, LinksMut};
use super::time::{Nanos, NEVER};
use super::wheel::TimerNodes;

#[derive(Debug)]
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// Bits 0-30: the stored hash the index files the entry under (it
    /// re-hashes from these on resize, never from the key). Bit 31: whether
    /// the caller must close the value when it is released.
    hash_and_needs_close: u32,
    /// Units counted against `max_bytes`, fixed once stored, as
    /// `sizes::LargeSizes` encodes them.
    size_field: u32,
    /// The exact deadline; `NEVER` exactly when the entry is not in the wheel.
    deadline: Nanos,
    /// Links in the entry's wheel bucket.
    timer_link: Link,
    /// Links in the policy's order list (LRU/FIFO, an LFU frequency node,
    /// a `tinylfu` region); unused under `random` and without limits.
    order: Link,
}

const NEEDS_CLOSE_BIT: u32 = 1 << STORED_HASH_BITS;

impl<K, V> Entry<K, V> {
    /// An entry off every list and out of the wheel.
    #[inline]
    pub(crate) fn new(
        key: K,
        value: V,
        hash: IndexHash,
        needs_close: bool,
        size_field: u32,
    ) -> Self {
        Entry {
            key,
            value,
            hash_and_needs_close: hash.stored | if needs_close { NEEDS_CLOSE_BIT } else { 0 },
            size_field,
            deadline: NEVER,
            timer_link: Link::default(),
            order: Link::default(),
        }
    }

    /// The hash bits the index files the entry under.
    #[inline]
    pub(crate) fn stored_hash(&self) -> u32 {
        self.hash_and_needs_close & !NEEDS_CLOSE_BIT
    }

    #[inline]
    pub(crate) fn index_hash(&self) -> IndexHash {
        IndexHash::of_stored(self.stored_hash())
    }

    /// Whether the caller asked to close the value when it is released.
    #[inline]
    pub(crate) fn needs_close(&self) -> bool {
        self.hash_and_needs_close & NEEDS_CLOSE_BIT != 0
    }

    #[inline]
    pub(crate) fn size_field(&self) -> u32 {
        self.size_field
    }

    #[inline]
    pub(crate) fn deadline(&self) -> Nanos {
        self.deadline
    }
}

impl<K, V> TimerNodes for Arena<Entry<K, V>> {
    #[inline]
    fn timer_link(&self, id: SlotId) -> &Link {
        &self.get(id).timer_link
    }
    #[inline]
    fn timer_link_mut(&mut self, id: SlotId) -> &mut Link {
        &mut self.get_mut(id).timer_link
    }
    #[inline]
    fn deadline(&self, id: SlotId) -> Nanos {
        self.get(id).deadline
    }
    #[inline]
    fn set_deadline(&mut self, id: SlotId, deadline: Nanos) {
        self.get_mut(id).deadline = deadline;
    }
}

/// The order-list view of the arena: over `&Arena` to read, over
/// `&mut Arena` to relink.
pub(crate) struct OrderLinks<A>(pub(crate) A);

impl<K, V> Links for OrderLinks<&Arena<Entry<K, V>>> {
    #[inline]
    fn link(&self, id: SlotId) -> &Link {
        &self.0.get(id).order
    }
}

impl<K, V> Links for OrderLinks<&mut Arena<Entry<K, V>>> {
    #[inline(always)]
    fn link(&self, id: SlotId) -> &Link {
        &self.0.get(id).order
    }
}

impl<K, V> LinksMut for OrderLinks<&mut Arena<Entry<K, V>>> {
    #[inline(always)]
    fn link_mut(&mut self, id: SlotId) -> &mut Link {
        &mut self.0.get_mut(id).order
    }
}
