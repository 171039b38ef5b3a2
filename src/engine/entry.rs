//! What the arena holds for each cached item.

use super::arena::{Arena, SlotId};
use super::list::{Link, Linked};
use super::wheel::{TimerNode, TimerNodes};

#[derive(Debug)]
pub struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// The key's hash as the caller computed it; the index re-hashes from
    /// this on resize, never from the key.
    pub(crate) hash: u64,
    /// Units counted against `max_bytes`; fixed once stored.
    pub(crate) size: u64,
    /// Deadline and wheel links.
    pub(crate) timer: TimerNode,
    /// Links in the LRU/FIFO order list.
    pub(crate) order: Link,
    /// Index in the random policy's member vector.
    pub(crate) random_position: u32,
    /// Caller's bits, handed back when the entry is released (the binding
    /// records "the value has close()" here).
    pub(crate) tag: u8,
}

impl<K, V> TimerNodes for Arena<Entry<K, V>> {
    #[inline]
    fn timer(&mut self, id: SlotId) -> &mut TimerNode {
        &mut self.get_mut(id).timer
    }
}

/// The order-list view of the arena.
pub(crate) struct OrderLinks<'a, K, V>(pub(crate) &'a mut Arena<Entry<K, V>>);

impl<K, V> Linked for OrderLinks<'_, K, V> {
    #[inline]
    fn link(&mut self, id: SlotId) -> &mut Link {
        &mut self.0.get_mut(id).order
    }
}
