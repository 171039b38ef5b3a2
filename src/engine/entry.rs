//! What the arena holds for each cached item.

use super::arena::{Arena, SlotId};
use super::list::{Link, Linked};
use super::time::Tick;
use super::wheel::TimerNodes;

#[derive(Debug)]
pub struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// Bits 0-30: the low 31 bits of the key's hash as the caller computed
    /// it (see [`IndexHash`]; the index re-hashes from these on resize,
    /// never from the key). Bit 31: the caller's tag.
    pub(crate) hash_and_tag: u32,
    /// Units counted against `max_bytes`, fixed once stored; or
    /// [`SIZE_ELSEWHERE`] for a size that does not fit in 32 bits, which
    /// the cache then keeps in a side table.
    pub(crate) size: u32,
    /// The exact deadline; `NEVER` when the entry does not expire.
    pub(crate) deadline: Tick,
    /// Links in the entry's wheel bucket.
    pub(crate) timer_link: Link,
    /// Links in the LRU/FIFO order list; unused under the other policies.
    pub(crate) order: Link,
}

/// `Entry::size` of an entry whose size is in the cache's side table.
pub(crate) const SIZE_ELSEWHERE: u32 = u32::MAX;

const TAG_BIT: u32 = 1 << 31;

impl<K, V> Entry<K, V> {
    /// The 31 hash bits the index files the entry under.
    #[inline]
    pub(crate) fn hash(&self) -> u32 {
        self.hash_and_tag & !TAG_BIT
    }

    /// The caller's tag (the binding records "the value has close()").
    #[inline]
    pub(crate) fn tag(&self) -> bool {
        self.hash_and_tag & TAG_BIT != 0
    }

    #[inline]
    pub(crate) fn pack_hash_and_tag(hash: IndexHash, tag: bool) -> u32 {
        hash.short | if tag { TAG_BIT } else { 0 }
    }
}

/// The hash the index files an entry under, made from the 31 bits an entry
/// keeps. Storing 31 bits instead of 64 saves an entry 8 bytes (with the
/// tag in the 32nd); the index still needs well-spread high bits (hashbrown
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
        Self::of_short(hash as u32 & !TAG_BIT)
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
}

/// The order-list view of the arena.
pub(crate) struct OrderLinks<'a, K, V>(pub(crate) &'a mut Arena<Entry<K, V>>);

impl<K, V> Linked for OrderLinks<'_, K, V> {
    #[inline]
    fn link(&mut self, id: SlotId) -> &mut Link {
        &mut self.0.get_mut(id).order
    }
}
