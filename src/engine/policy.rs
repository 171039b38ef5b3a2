//! Eviction policies: which live entry goes when a limit is reached.
//!
//! One enum with four hooks (`on_insert`, `on_hit`, `on_remove`, `victim`),
//! so a new policy (LFU, say) is a new variant here rather than branches
//! through the cache. LRU and FIFO share one intrusive order list (front =
//! next victim); they differ only in whether a hit moves the entry to the
//! back. Random keeps a dense vector of members with swap-remove, and each
//! entry knows its position, so picking and removing are O(1).

use rand::rngs::SmallRng;
use rand::Rng;

use super::arena::{Arena, SlotId};
use super::entry::{Entry, OrderLinks};
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
}

impl EvictionPolicy {
    /// Every policy, in the order error messages list them.
    pub const ALL: [EvictionPolicy; 3] = [
        EvictionPolicy::Lru,
        EvictionPolicy::Fifo,
        EvictionPolicy::Random,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::Lru => "lru",
            EvictionPolicy::Fifo => "fifo",
            EvictionPolicy::Random => "random",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|policy| policy.name() == name)
    }
}

#[derive(Debug)]
pub(crate) enum Policy {
    Ordered {
        order: List,
        refresh_on_hit: bool,
    },
    Random {
        members: Vec<SlotId>,
        rng: SmallRng,
    },
    /// A cache without limits never evicts, so it keeps no order at all:
    /// a hit then touches one entry instead of three.
    Unbounded,
}

impl Policy {
    pub(crate) fn new(policy: EvictionPolicy, bounded: bool, rng: SmallRng) -> Self {
        if !bounded {
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
                members: Vec::new(),
                rng,
            },
        }
    }

    #[inline]
    pub(crate) fn on_insert<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, id: SlotId) {
        match self {
            Policy::Ordered { order, .. } => order.push_back(&mut OrderLinks(entries), id),
            Policy::Random { members, .. } => {
                entries.get_mut(id).set_random_position(members.len());
                members.push(id);
            }
            Policy::Unbounded => {}
        }
    }

    #[inline]
    pub(crate) fn on_hit<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, id: SlotId) {
        if let Policy::Ordered {
            order,
            refresh_on_hit: true,
        } = self
        {
            order.move_to_back(&mut OrderLinks(entries), id);
        }
    }

    #[inline]
    pub(crate) fn on_remove<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, id: SlotId) {
        match self {
            Policy::Ordered { order, .. } => order.unlink(&mut OrderLinks(entries), id),
            Policy::Random { members, .. } => {
                let position = entries.get(id).random_position();
                debug_assert_eq!(members[position], id);
                members.swap_remove(position);
                if let Some(&moved) = members.get(position) {
                    entries.get_mut(moved).set_random_position(position);
                }
            }
            Policy::Unbounded => {}
        }
    }

    /// The entry to evict next, or `None` when there are none.
    #[inline]
    pub(crate) fn victim(&mut self) -> Option<SlotId> {
        match self {
            Policy::Ordered { order, .. } => order.head,
            Policy::Random { members, rng } => {
                if members.is_empty() {
                    None
                } else {
                    Some(members[rng.random_range(0..members.len())])
                }
            }
            Policy::Unbounded => None,
        }
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Policy::Ordered { order, .. } => *order = List::default(),
            Policy::Random { members, .. } => members.clear(),
            Policy::Unbounded => {}
        }
    }

    /// The members in eviction order (for `Random`, in member order), or
    /// `None` for `Unbounded`, which tracks none.
    ///
    /// # Panics
    /// On broken links or positions.
    pub(crate) fn validate<K, V>(&self, entries: &mut Arena<Entry<K, V>>) -> Option<Vec<SlotId>> {
        match self {
            Policy::Ordered { order, .. } => {
                let limit = entries.len() + 1;
                Some(order.collect(&mut OrderLinks(entries), limit))
            }
            Policy::Random { members, .. } => {
                for (position, &id) in members.iter().enumerate() {
                    assert_eq!(
                        entries.get(id).random_position(),
                        position,
                        "position of {id:?}"
                    );
                }
                Some(members.clone())
            }
            Policy::Unbounded => None,
        }
    }
}
