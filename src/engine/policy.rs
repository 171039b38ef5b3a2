//! Eviction policies: which live entry goes when a limit is reached.
//!
//! One enum with the hooks the cache calls (`on_insert`, `on_hit`,
//! `on_miss`, `on_remove`, `victim`), so each policy is a variant here
//! rather than branches through the cache. LRU and FIFO share one
//! intrusive order list (front = next victim); they differ only in whether
//! a hit moves the entry to the back. LFU ([`lfu`]) and W-TinyLFU
//! ([`tinylfu`]) thread their lists through the same order link and keep
//! what else they need per entry in side vectors by slot. Random keeps nothing per entry: it draws arena slots until one is
//! occupied, which is uniform over the live entries and O(1) expected while
//! the cache keeps its arena at least half full (see `Cache::next_victim`).
//! Against a member vector with swap-remove, an eviction saves two cache
//! misses (the member read and the moved member's position write) and every
//! insert and remove saves the bookkeeping.

mod ghost;
mod lfu;
mod sketch;
mod tinylfu;

use rand::rngs::SmallRng;
use rand::Rng;

use self::lfu::Lfu;
pub(crate) use self::lfu::LfuCursor;
pub(crate) use self::tinylfu::Admitted;
use self::tinylfu::TinyLfu;
use super::arena::{Arena, SlotId};
use super::entry::{Entry, OrderLinks};
use super::index::IndexHash;
use super::list::List;

/// The policy a cache is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EvictionPolicy {
    /// Least recently used first; `set` and a `get` hit count as a use.
    Lru,
    /// Set longest ago first; reads change nothing.
    Fifo,
    /// Uniformly at random among the live entries.
    Random,
    /// Least frequently used first (count 1 when stored, one more per
    /// hit), the least recently used among equal counts.
    Lfu,
    /// W-TinyLFU: an LRU window, then admission by estimated frequency
    /// into a segmented LRU; a store may let go of the entry it stored.
    TinyLfu,
    /// Victims chosen by the caller (the binding: a policy written in
    /// Python, which the engine may not call). The engine keeps no order
    /// and never evicts: a store that needs room is refused with
    /// `NeedsRoom`, and the caller evicts by key ([`super::Cache::evict`])
    /// and stores again. Not in [`EvictionPolicy::ALL`]: no name selects it.
    External,
}

impl EvictionPolicy {
    /// Every policy, in the order error messages list them.
    pub const ALL: [EvictionPolicy; 5] = [
        EvictionPolicy::Lru,
        EvictionPolicy::Fifo,
        EvictionPolicy::Random,
        EvictionPolicy::Lfu,
        EvictionPolicy::TinyLfu,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::Lru => "lru",
            EvictionPolicy::Fifo => "fifo",
            EvictionPolicy::Random => "random",
            EvictionPolicy::Lfu => "lfu",
            EvictionPolicy::TinyLfu => "tinylfu",
            EvictionPolicy::External => "external",
        }
    }

    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|policy| policy.name() == name)
    }
}

/// A slot index drawn uniformly from `0..slots`; `slots == 0` for none.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SlotDraw {
    slots: usize,
    index: usize,
}

impl SlotDraw {
    fn new(rng: &mut SmallRng, slots: usize) -> Self {
        SlotDraw {
            slots,
            index: rng.random_range(0..slots),
        }
    }

    /// The index, if the draw was over `slots` slots. A draw made earlier
    /// is as good as a fresh one while the number of slots is the same: it
    /// was uniform over them, and nothing since depended on it.
    fn index_among(self, slots: usize) -> Option<usize> {
        (self.slots == slots && slots != 0).then_some(self.index)
    }
}

#[derive(Debug)]
pub(crate) enum Policy {
    Ordered {
        order: List,
        refresh_on_hit: bool,
    },
    Random {
        rng: SmallRng,
        /// The next two draws, made ahead (see `super::prefetch`): an
        /// eviction prefetches the slot of `after`, so that by the next
        /// eviction, when it has become `next`, the caller can read its key
        /// and value without a miss and prefetch those in turn.
        next: SlotDraw,
        after: SlotDraw,
    },
    /// Boxed, as is `TinyLfu`: inline they made `Policy` (a field of the
    /// cache every operation reads) larger than the `Random` variant, and
    /// the LRU paths slower.
    Lfu(Box<Lfu>),
    TinyLfu(Box<TinyLfu>),
    /// A cache without limits never evicts, so it keeps no order at all:
    /// a hit then touches one entry instead of three. So is a cache whose
    /// caller chooses the victims ([`EvictionPolicy::External`]), which
    /// needs no more than this: the cache asks its caller for room.
    Unbounded,
}

impl Policy {
    /// A cache without limits (both 0) gets `Unbounded`.
    pub(crate) fn new(
        policy: EvictionPolicy,
        max_items: u64,
        max_bytes: u64,
        rng: SmallRng,
    ) -> Self {
        if max_items == 0 && max_bytes == 0 {
            return Policy::Unbounded;
        }
        match policy {
            EvictionPolicy::Lru => Policy::Ordered {
                order: List::default(),
                refresh_on_hit: true,
            },
            EvictionPolicy::Fifo => Policy::Ordered {
                order: List::default(),
                refresh_on_hit: false,
            },
            EvictionPolicy::Random => Policy::Random {
                rng,
                next: SlotDraw::default(),
                after: SlotDraw::default(),
            },
            EvictionPolicy::Lfu => Policy::Lfu(Box::default()),
            EvictionPolicy::TinyLfu => {
                // Regions in units under `max_bytes`, else in entries.
                let (capacity, in_bytes) = if max_bytes > 0 {
                    (max_bytes, true)
                } else {
                    (max_items, false)
                };
                Policy::TinyLfu(Box::new(TinyLfu::new(capacity, in_bytes, max_items, rng)))
            }
            EvictionPolicy::External => Policy::Unbounded,
        }
    }

    /// A new entry of `size`.
    #[inline(always)]
    pub(crate) fn on_insert<K, V>(
        &mut self,
        entries: &mut Arena<Entry<K, V>>,
        id: SlotId,
        size: u64,
    ) {
        // LRU and FIFO first and alone, in this hook and the others: a
        // `match` over every variant compiled to a jump table that cost the
        // LRU paths (measured: 5 instructions a hit, 35 a set that evicts).
        if let Policy::Ordered { order, .. } = self {
            order.push_back(&mut OrderLinks(entries), id);
            return;
        }
        match self {
            Policy::Lfu(lfu) => lfu.insert(entries, id),
            Policy::TinyLfu(tiny) => tiny.insert(entries, id, size),
            Policy::Ordered { .. } | Policy::Random { .. } | Policy::Unbounded => {}
        }
    }

    /// A lookup of the key of `hash` that found the live entry `id`.
    #[inline(always)]
    pub(crate) fn on_hit<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, id: SlotId, hash: u64) {
        if let Policy::Ordered {
            order,
            refresh_on_hit,
        } = self
        {
            if *refresh_on_hit {
                order.move_to_back(&mut OrderLinks(entries), id);
            }
            return;
        }
        match self {
            Policy::Lfu(lfu) => lfu.hit(entries, id),
            // The key's hash from the caller, not from the entry: the
            // sketch's update can start without waiting for the entry's
            // bits, and the probe computed the same already.
            Policy::TinyLfu(tiny) => tiny.hit(entries, id, IndexHash::of_key(hash)),
            Policy::Ordered { .. } | Policy::Random { .. } | Policy::Unbounded => {}
        }
    }

    /// A lookup that found no live entry for the key of `hash`; `lookups`
    /// is how many lookups the cache has made, this one included.
    #[inline(always)]
    pub(crate) fn on_miss<K, V>(
        &mut self,
        entries: &mut Arena<Entry<K, V>>,
        hash: u64,
        lookups: u64,
    ) {
        if let Policy::TinyLfu(tiny) = self {
            tiny.miss(entries, IndexHash::of_key(hash), lookups);
        }
    }

    #[inline(always)]
    pub(crate) fn on_remove<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, id: SlotId) {
        if let Policy::Ordered { order, .. } = self {
            order.unlink(&mut OrderLinks(entries), id);
            return;
        }
        match self {
            Policy::Lfu(lfu) => lfu.remove(entries, id),
            Policy::TinyLfu(tiny) => tiny.remove(entries, id),
            Policy::Ordered { .. } | Policy::Random { .. } | Policy::Unbounded => {}
        }
    }

    /// The admission policy, for a policy whose stores compete for their
    /// place (`tinylfu`): room for a new entry is then made through
    /// [`TinyLfu::prepare_admission`] and [`TinyLfu::admission_victim`].
    #[inline(always)]
    pub(crate) fn admission(&mut self) -> Option<&mut TinyLfu> {
        match self {
            Policy::TinyLfu(tiny) => Some(tiny),
            _ => None,
        }
    }

    /// True for a policy that draws its victims from the arena's slots and
    /// so needs the arena kept dense. Such a policy keeps no ids, so the
    /// arena may move its entries.
    #[inline]
    pub(crate) fn samples_slots(&self) -> bool {
        matches!(self, Policy::Random { .. })
    }

    /// The entry to evict next, or `None` when there are none.
    #[inline(always)]
    pub(crate) fn victim<K, V>(&mut self, entries: &Arena<Entry<K, V>>) -> Option<SlotId> {
        if let Policy::Ordered { order, .. } = self {
            return order.head;
        }
        match self {
            Policy::Lfu(lfu) => lfu.victim(),
            Policy::TinyLfu(tiny) => tiny.victim(entries),
            Policy::Ordered { order, .. } => order.head,
            Policy::Random { rng, next, after } => {
                if entries.is_empty() {
                    return None;
                }
                // Rejection sampling: each draw is uniform over the slots,
                // so the first occupied one is uniform over the entries.
                let slots = entries.capacity_used();
                let mut index = next
                    .index_among(slots)
                    .unwrap_or_else(|| rng.random_range(0..slots));
                let victim = loop {
                    if let Some(id) = entries.occupied_at(index) {
                        break id;
                    }
                    index = rng.random_range(0..slots);
                };
                *next = match after.index_among(slots) {
                    Some(_) => *after,
                    None => SlotDraw::new(rng, slots),
                };
                *after = SlotDraw::new(rng, slots);
                entries.prefetch(after.index);
                Some(victim)
            }
            Policy::Unbounded => None,
        }
    }

    /// The entry the next eviction would take, if it is known without
    /// drawing or an admission contest: the head of the order, the LFU
    /// victim, or the random draw made ahead if it names an entry. Changes
    /// nothing.
    #[inline]
    pub(crate) fn upcoming_victim<K, V>(&self, entries: &Arena<Entry<K, V>>) -> Option<SlotId> {
        if let Policy::Ordered { order, .. } = self {
            return order.head;
        }
        match self {
            Policy::Ordered { order, .. } => order.head,
            Policy::Lfu(lfu) => lfu.victim(),
            Policy::Random { next, .. } => {
                entries.occupied_at(next.index_among(entries.capacity_used())?)
            }
            Policy::TinyLfu(_) | Policy::Unbounded => None,
        }
    }

    /// Visits the members in eviction order (the next victim first) and
    /// answers true, or answers false for a policy that keeps no order.
    pub(crate) fn for_each_in_order<K, V>(
        &self,
        entries: &Arena<Entry<K, V>>,
        visit: impl FnMut(SlotId),
    ) -> bool {
        match self {
            Policy::Ordered { order, .. } => {
                order.for_each(&OrderLinks(entries), visit);
                true
            }
            Policy::Lfu(lfu) => {
                lfu.for_each_in_order(entries, visit);
                true
            }
            Policy::Random { .. } | Policy::TinyLfu(_) | Policy::Unbounded => false,
        }
    }

    /// As [`Policy::for_each_in_order`], and for `tinylfu` in the order
    /// its victims would go (see [`TinyLfu::for_each_in_victim_order`]):
    /// the order a snapshot keeps, so that a restored cache lets its
    /// entries go in the order the source would have.
    pub(crate) fn for_each_in_victim_order<K, V>(
        &self,
        entries: &Arena<Entry<K, V>>,
        visit: impl FnMut(SlotId),
    ) -> bool {
        match self {
            Policy::TinyLfu(tiny) => {
                tiny.for_each_in_victim_order(entries, visit);
                true
            }
            _ => self.for_each_in_order(entries, visit),
        }
    }

    /// A member's use count, for a policy that keeps one (`lfu`); 0 for
    /// the others.
    pub(crate) fn uses_of(&self, id: SlotId) -> u64 {
        match self {
            Policy::Lfu(lfu) => lfu.count_of(id),
            _ => 0,
        }
    }

    /// A restored entry of `size` and `uses`: `lfu` files it under its
    /// count (see [`Lfu::insert_counted`]); every other policy takes it as
    /// a new entry, so `tinylfu` rebuilds its regions from the order of
    /// the restore.
    pub(crate) fn on_restore<K, V>(
        &mut self,
        entries: &mut Arena<Entry<K, V>>,
        id: SlotId,
        size: u64,
        uses: u64,
        cursor: &mut LfuCursor,
    ) {
        match self {
            Policy::Lfu(lfu) => lfu.insert_counted(entries, id, uses, cursor),
            _ => self.on_insert(entries, id, size),
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Policy::Ordered { order, .. } => *order = List::default(),
            Policy::Lfu(lfu) => lfu.clear(),
            Policy::TinyLfu(tiny) => tiny.clear(),
            Policy::Random { .. } | Policy::Unbounded => {}
        }
    }

    /// Bytes of heap memory the policy's own structures hold.
    pub(crate) fn heap_size(&self) -> usize {
        match self {
            Policy::Lfu(lfu) => lfu.heap_size(),
            Policy::TinyLfu(tiny) => std::mem::size_of::<TinyLfu>() + tiny.heap_size(),
            Policy::Ordered { .. } | Policy::Random { .. } | Policy::Unbounded => 0,
        }
    }

    /// The members in eviction order (for `Random`, in slot order; for
    /// `TinyLfu`, region by region), or `None` for `Unbounded`, which
    /// tracks none.
    ///
    /// # Panics
    /// On broken links or positions.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn validate<K, V>(&self, entries: &Arena<Entry<K, V>>) -> Option<Vec<SlotId>> {
        match self {
            Policy::Ordered { order, .. } => {
                let limit = entries.len() + 1;
                Some(order.collect(&OrderLinks(entries), limit))
            }
            Policy::Lfu(lfu) => Some(lfu.validate(entries)),
            Policy::TinyLfu(tiny) => Some(tiny.validate(entries)),
            Policy::Random { .. } => Some(entries.iter().map(|(id, _)| id).collect()),
            Policy::Unbounded => None,
        }
    }
}
