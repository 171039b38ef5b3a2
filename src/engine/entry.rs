//! What the arena holds for each cached item.

use super::arena::{Arena, SlotId};
use super::list::{Link, Linked};
use super::time::Tick;
use super::wheel::TimerNodes;

#[derive(Debug)]
pub struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// The low half of the key's hash as the caller computed it (see
    /// [`IndexHash`]); the index re-hashes from this on resize, never from
    /// the key.
    pub(crate) hash: u32,
    /// Units counted against `max_bytes`; fixed once stored.
    pub(crate) size: u64,
    /// The exact deadline; `NEVER` when the entry does not expire.
    pub(crate) deadline: Tick,
    /// Links in the entry's wheel bucket.
    pub(crate) timer_link: Link,
    /// The wheel bucket, or `UNSCHEDULED`.
    pub(crate) bucket: u16,
    /// Links in the LRU/FIFO order list; under the random policy, which
    /// keeps no list, the entry's position in the member vector instead
    /// (see [`Entry::random_position`]).
    pub(crate) order: Link,
    /// Caller's bits, handed back when the entry is released (the binding
    /// records "the value has close()" here).
    pub(crate) tag: u8,
}

impl<K, V> Entry<K, V> {
    /// The entry's index in the random policy's member vector, kept in the
    /// order link's `prev`: one 8-byte field serves whichever policy the
    /// cache has, and the entry stays at 56 bytes.
    #[inline]
    pub(crate) fn random_position(&self) -> usize {
        self.order.prev.map_or(0, SlotId::index)
    }

    #[inline]
    pub(crate) fn set_random_position(&mut self, position: usize) {
        self.order.prev = Some(SlotId::from_index(position));
    }
}

/// The hash the index files an entry under, made from the 32 bits an entry
/// keeps. Storing 32 bits instead of 64 saves 8 bytes per entry (with
/// alignment); the index still needs well-spread high bits (hashbrown
/// takes its 7-bit tag from the top), which the multiply provides, while
/// the low bits it takes positions from stay a bijection of the key's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexHash {
    pub(crate) short: u32,
    pub(crate) full: u64,
}

impl IndexHash {
    #[inline]
    pub(crate) fn of_key(hash: u64) -> Self {
        Self::of_short(hash as u32)
    }

    #[inline]
    pub(crate) fn of_short(short: u32) -> Self {
        IndexHash {
            short,
            full: u64::from(short).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        }
    }
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
