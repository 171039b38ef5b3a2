//! Exact LFU in O(1) per operation, after Shah, Mitra and Matani's
//! constant-time LFU: a list of frequency nodes in increasing count, each
//! holding the entries of that count in an LRU list (threaded through the
//! entries' one order link). A hit moves an entry from its node to the
//! node of the next count, made if missing; a node that empties goes. The
//! victim is the least recent entry of the lowest node.
//!
//! Why the order inside a node is least recent use: an entry joins a node
//! when it is stored (count 1) or hit, both uses, and any later use would
//! have moved it on; so the order in which entries joined a node is the
//! order of their last uses.
//!
//! The entry's node is kept in a side vector indexed by slot, so the other
//! policies keep their 48-byte entry.

use super::super::arena::{Arena, SlotId};
use super::super::entry::{Entry, OrderLinks};
use super::super::list::List;

type NodeId = u32;

#[derive(Clone, Copy, Debug)]
struct FrequencyNode {
    count: u64,
    members: List,
    lower: Option<NodeId>,
    higher: Option<NodeId>,
}

/// Where [`Lfu::insert_counted`] filed the last restored entry.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LfuCursor(Option<NodeId>);

impl LfuCursor {
    /// Forgets the node: after a removal it may be gone.
    pub(crate) fn reset(&mut self) {
        self.0 = None;
    }
}

#[derive(Debug, Default)]
pub(crate) struct Lfu {
    /// Nodes, live or free; `free` lists the free ones.
    nodes: Vec<FrequencyNode>,
    free: Vec<NodeId>,
    /// The node of the lowest count.
    lowest: Option<NodeId>,
    /// Each member's node, by slot index (stale for vacant slots).
    node_of: Vec<NodeId>,
}

impl Lfu {
    fn node(&self, id: NodeId) -> &FrequencyNode {
        &self.nodes[id as usize]
    }

    fn node_mut(&mut self, id: NodeId) -> &mut FrequencyNode {
        &mut self.nodes[id as usize]
    }

    /// A new, empty node of `count` between `lower` and `higher`.
    fn add_node(&mut self, count: u64, lower: Option<NodeId>, higher: Option<NodeId>) -> NodeId {
        let node = FrequencyNode {
            count,
            members: List::default(),
            lower,
            higher,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                let id = NodeId::try_from(self.nodes.len()).expect("fewer nodes than entries");
                self.nodes.push(node);
                id
            }
        };
        match lower {
            Some(lower) => self.node_mut(lower).higher = Some(id),
            None => self.lowest = Some(id),
        }
        if let Some(higher) = higher {
            self.node_mut(higher).lower = Some(id);
        }
        id
    }

    fn remove_node(&mut self, id: NodeId) {
        let FrequencyNode { lower, higher, .. } = *self.node(id);
        match lower {
            Some(lower) => self.node_mut(lower).higher = higher,
            None => self.lowest = higher,
        }
        if let Some(higher) = higher {
            self.node_mut(higher).lower = lower;
        }
        self.free.push(id);
    }

    fn set_node_of(&mut self, id: SlotId, node: NodeId) {
        let index = id.index();
        if index >= self.node_of.len() {
            self.node_of.resize(index + 1, 0);
        }
        self.node_of[index] = node;
    }

    /// A new entry, count 1, the most recent of its node. Out of line, as
    /// are `hit` and `remove`: inlined into the policy's dispatch they
    /// slowed the LRU paths that share it (by 24 instructions a hit).
    #[inline(never)]
    pub(crate) fn insert<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, id: SlotId) {
        let node = match self.lowest {
            Some(lowest) if self.node(lowest).count == 1 => lowest,
            lowest => self.add_node(1, None, lowest),
        };
        self.node_mut(node)
            .members
            .push_back(&mut OrderLinks(entries), id);
        self.set_node_of(id, node);
    }

    /// A restored entry of `count` (at least 1), the most recent of its
    /// node. Restored entries come in eviction order, so by nondecreasing
    /// count: `cursor` remembers the node the last one joined, and a new
    /// count's node goes right above it. O(1) per entry, where a search for
    /// the node would walk every count below; a cursor reset after a
    /// removal (see [`LfuCursor::reset`]) costs one such walk.
    pub(crate) fn insert_counted<K, V>(
        &mut self,
        entries: &mut Arena<Entry<K, V>>,
        id: SlotId,
        count: u64,
        cursor: &mut LfuCursor,
    ) {
        let count = count.max(1);
        let node = match cursor.0 {
            Some(last) if self.node(last).count == count => last,
            Some(last) => {
                debug_assert!(self.node(last).count < count, "restored out of count order");
                let higher = self.node(last).higher;
                self.add_node(count, Some(last), higher)
            }
            None => {
                // The first entry, or the first since the cursor was reset
                // (a node it named may have gone): found by a walk.
                let mut below = None;
                let mut node = self.lowest;
                while let Some(id) = node.filter(|&id| self.node(id).count <= count) {
                    below = Some(id);
                    node = self.node(id).higher;
                }
                match below {
                    Some(id) if self.node(id).count == count => id,
                    below => self.add_node(count, below, node),
                }
            }
        };
        cursor.0 = Some(node);
        self.node_mut(node)
            .members
            .push_back(&mut OrderLinks(entries), id);
        self.set_node_of(id, node);
    }

    /// The count of a member.
    pub(crate) fn count_of(&self, id: SlotId) -> u64 {
        self.node(self.node_of[id.index()]).count
    }

    /// A hit: the entry's count grows by one.
    #[inline(never)]
    pub(crate) fn hit<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, id: SlotId) {
        let node = self.node_of[id.index()];
        let FrequencyNode {
            count,
            members,
            higher,
            ..
        } = *self.node(node);
        let count = count.saturating_add(1);
        let alone = members.head == members.tail;
        let target = match higher {
            Some(higher) if self.node(higher).count == count => higher,
            _ if alone => {
                // The only entry of its count: the node becomes the next
                // count's, and the entry stays where it is.
                self.node_mut(node).count = count;
                return;
            }
            higher => self.add_node(count, Some(node), higher),
        };
        let links = &mut OrderLinks(entries);
        self.node_mut(node).members.unlink(links, id);
        self.node_mut(target).members.push_back(links, id);
        self.node_of[id.index()] = target;
        if alone {
            self.remove_node(node);
        }
    }

    #[inline(never)]
    pub(crate) fn remove<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, id: SlotId) {
        let node = self.node_of[id.index()];
        let members = &mut self.nodes[node as usize].members;
        members.unlink(&mut OrderLinks(entries), id);
        if members.is_empty() {
            self.remove_node(node);
        }
    }

    /// The least recently used entry of the lowest count.
    #[inline]
    pub(crate) fn victim(&self) -> Option<SlotId> {
        self.node(self.lowest?).members.head
    }

    /// Visits the members in eviction order: by count, then by last use.
    pub(crate) fn for_each_in_order<K, V>(
        &self,
        entries: &Arena<Entry<K, V>>,
        mut visit: impl FnMut(SlotId),
    ) {
        let mut node = self.lowest;
        while let Some(id) = node {
            let current = self.node(id);
            current.members.for_each(&OrderLinks(entries), &mut visit);
            node = current.higher;
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = Lfu::default();
    }

    pub(crate) fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<FrequencyNode>()
            + self.free.capacity() * std::mem::size_of::<NodeId>()
            + self.node_of.capacity() * std::mem::size_of::<NodeId>()
    }

    /// The members in eviction order.
    ///
    /// # Panics
    /// On broken links: counts not increasing, an empty node, a member
    /// filed under another node, or a free node still linked.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn validate<K, V>(&self, entries: &Arena<Entry<K, V>>) -> Vec<SlotId> {
        let mut order = Vec::new();
        let mut node = self.lowest;
        let mut previous: Option<(NodeId, u64)> = None;
        let mut live_nodes = 0;
        while let Some(id) = node {
            live_nodes += 1;
            assert!(
                live_nodes <= self.nodes.len(),
                "frequency nodes form a cycle"
            );
            let current = self.node(id);
            assert_eq!(current.lower, previous.map(|(id, _)| id), "node back link");
            if let Some((_, count)) = previous {
                assert!(current.count > count, "counts not increasing");
            }
            assert!(!current.members.is_empty(), "an empty frequency node");
            let members = current
                .members
                .collect(&OrderLinks(entries), entries.len() + 1);
            for &member in &members {
                assert_eq!(
                    self.node_of[member.index()],
                    id,
                    "member under another node"
                );
            }
            order.extend(members);
            previous = Some((id, current.count));
            node = current.higher;
        }
        assert_eq!(
            live_nodes + self.free.len(),
            self.nodes.len(),
            "nodes neither linked nor free"
        );
        order
    }
}
