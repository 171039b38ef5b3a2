//! What the arena holds for each cached item.

use super::arena::{Arena, SlotId};
use super::list::{Link, Linked};
use super::time::Tick;
use super::wheel::TimerNodes;

#[derive(Debug)]
pub struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// The key's hash as the caller computed it; the index re-hashes from
    /// this on resize, never from the key.
    pub(crate) hash: u64,
    /// Units counted against `max_bytes`; fixed once stored.
    pub(crate) size: u64,
    /// The exact deadline; `NEVER` when the entry does not expire.
    pub(crate) deadline: Tick,
    /// Links in the entry's wheel bucket.
    pub(crate) timer_link: Link,
    /// The wheel bucket, or `UNSCHEDULED`.
    pub(crate) bucket: u16,
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
    fn timer_link(&mut self, id: SlotId) -> &mut Link {
        &mut self.get_mut(id).timer_link
    }
    #[inline]
    fn deadline(&mut self, id: SlotId) -> &mut Tick {
        &mut self.get_mut(id).deadline
    }
    #[inline]
    fn bucket(&mut self, id: SlotId) -> &mut u16 {
        &mut self.get_mut(id).bucket
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
