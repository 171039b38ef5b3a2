//! An intrusive doubly linked list threaded through arena slots by
//! [`SlotId`]. The same type serves the LRU/FIFO order and every wheel
//! bucket: each entry carries one [`Link`] per list it can be on, and the
//! caller says which one through [`Links`] and [`LinksMut`].
//!
//! Invariants: `head.prev == None`, `tail.next == None`, and for each
//! linked node `n`, `n.next.prev == n` and `n.prev.next == n`.

use super::arena::SlotId;

/// The prev/next pair an entry carries for one list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) prev: Option<SlotId>,
    pub(crate) next: Option<SlotId>,
}

/// Read access to the link of one list in every node.
pub(crate) trait Links {
    fn link(&self, id: SlotId) -> &Link;
}

/// Write access to the link of one list in every node.
pub(crate) trait LinksMut: Links {
    fn link_mut(&mut self, id: SlotId) -> &mut Link;
}

/// Head and tail of one list; the nodes hold the rest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct List {
    pub(crate) head: Option<SlotId>,
    pub(crate) tail: Option<SlotId>,
}

impl List {
    #[inline]
    pub(crate) fn is_empty(self) -> bool {
        self.head.is_none()
    }

    /// Whether `id`'s link is consistent with `id` being on this list: its
    /// neighbours point back at it, and where it has none it is this list's
    /// head or tail. O(1), so a node in the middle of another list passes;
    /// for the `debug_assert!`s of the operations that require membership.
    pub(crate) fn may_hold(self, nodes: &impl Links, id: SlotId) -> bool {
        let Link { prev, next } = *nodes.link(id);
        let before = match prev {
            Some(prev) => nodes.link(prev).next == Some(id),
            None => self.head == Some(id),
        };
        let after = match next {
            Some(next) => nodes.link(next).prev == Some(id),
            None => self.tail == Some(id),
        };
        before && after
    }

    /// Appends `id`, whose link must be unused.
    #[inline(always)]
    pub(crate) fn push_back(&mut self, nodes: &mut impl LinksMut, id: SlotId) {
        debug_assert!(
            *nodes.link(id) == Link::default() && self.head != Some(id),
            "push_back of {id:?}, which is on a list"
        );
        let old_tail = self.tail;
        *nodes.link_mut(id) = Link {
            prev: old_tail,
            next: None,
        };
        match old_tail {
            Some(tail) => nodes.link_mut(tail).next = Some(id),
            None => self.head = Some(id),
        }
        self.tail = Some(id);
    }

    /// Removes `id`, which must be on this list, and clears its link.
    #[inline(always)]
    pub(crate) fn unlink(&mut self, nodes: &mut impl LinksMut, id: SlotId) {
        debug_assert!(
            self.may_hold(nodes, id),
            "unlink of {id:?}, not on this list"
        );
        let Link { prev, next } = std::mem::take(nodes.link_mut(id));
        match prev {
            Some(prev) => nodes.link_mut(prev).next = next,
            None => self.head = next,
        }
        match next {
            Some(next) => nodes.link_mut(next).prev = prev,
            None => self.tail = prev,
        }
    }

    /// Moves `id`, which must be on this list, to the back.
    #[inline(always)]
    pub(crate) fn move_to_back(&mut self, nodes: &mut impl LinksMut, id: SlotId) {
        debug_assert!(
            self.may_hold(nodes, id),
            "move_to_back of {id:?}, not on this list"
        );
        // Unlink and push_back fused: an LRU hit runs this, and a node with
        // a successor is never the tail, so the list stays non-empty
        // throughout and half of the generic branches fall away.
        let Link { prev, next } = *nodes.link(id);
        let Some(next) = next else {
            return; // already the tail
        };
        match prev {
            Some(prev) => nodes.link_mut(prev).next = Some(next),
            None => self.head = Some(next),
        }
        nodes.link_mut(next).prev = prev;
        let old_tail = self.tail.expect("a list with a node is not empty");
        nodes.link_mut(old_tail).next = Some(id);
        *nodes.link_mut(id) = Link {
            prev: Some(old_tail),
            next: None,
        };
        self.tail = Some(id);
    }

    /// Re-points the list at `to` for a node that moved there from `from`,
    /// taking its link along: its neighbours' links, or the head and tail.
    /// The node must be on this list.
    pub(crate) fn relocate(&mut self, nodes: &mut impl LinksMut, from: SlotId, to: SlotId) {
        let Link { prev, next } = *nodes.link(to);
        match prev {
            Some(prev) => nodes.link_mut(prev).next = Some(to),
            None => {
                debug_assert_eq!(self.head, Some(from), "a node without prev is the head");
                self.head = Some(to);
            }
        }
        match next {
            Some(next) => nodes.link_mut(next).prev = Some(to),
            None => {
                debug_assert_eq!(self.tail, Some(from), "a node without next is the tail");
                self.tail = Some(to);
            }
        }
    }

    /// Visits every node, front to back.
    pub(crate) fn for_each(self, nodes: &impl Links, mut visit: impl FnMut(SlotId)) {
        let mut cursor = self.head;
        while let Some(id) = cursor {
            cursor = nodes.link(id).next;
            visit(id);
        }
    }

    /// Walks the list front to back, checking links both ways; returns the ids.
    ///
    /// # Panics
    /// On a broken link or a cycle longer than `limit`.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn collect(self, nodes: &impl Links, limit: usize) -> Vec<SlotId> {
        let mut out = Vec::new();
        let mut prev = None;
        let mut cursor = self.head;
        while let Some(id) = cursor {
            assert!(out.len() < limit, "list longer than {limit}: cycle?");
            let link = *nodes.link(id);
            assert_eq!(link.prev, prev, "prev link of {id:?}");
            out.push(id);
            prev = Some(id);
            cursor = link.next;
        }
        assert_eq!(self.tail, prev, "tail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nodes(Vec<Link>);
    impl Links for Nodes {
        fn link(&self, id: SlotId) -> &Link {
            &self.0[id.index()]
        }
    }
    impl LinksMut for Nodes {
        fn link_mut(&mut self, id: SlotId) -> &mut Link {
            &mut self.0[id.index()]
        }
    }

    fn id(i: usize) -> SlotId {
        SlotId::from_index(i)
    }

    #[test]
    fn push_unlink_move() {
        let mut nodes = Nodes(vec![Link::default(); 4]);
        let mut list = List::default();
        for i in 0..4 {
            list.push_back(&mut nodes, id(i));
        }
        list.unlink(&mut nodes, id(0));
        list.unlink(&mut nodes, id(2));
        list.move_to_back(&mut nodes, id(1));
        assert_eq!(list.collect(&nodes, 10), [id(3), id(1)]);
        list.move_to_back(&mut nodes, id(1)); // the tail stays
        assert_eq!(list.collect(&nodes, 10), [id(3), id(1)]);
        list.move_to_back(&mut nodes, id(3)); // the head moves
        assert_eq!(list.collect(&nodes, 10), [id(1), id(3)]);
        list.move_to_back(&mut nodes, id(1));
        list.unlink(&mut nodes, id(3));
        list.unlink(&mut nodes, id(1));
        assert!(list.is_empty());
        assert_eq!(list.collect(&nodes, 10), []);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "which is on a list")]
    fn pushing_a_linked_node_is_caught() {
        let mut nodes = Nodes(vec![Link::default(); 2]);
        let mut list = List::default();
        list.push_back(&mut nodes, id(0));
        list.push_back(&mut nodes, id(1));
        list.push_back(&mut nodes, id(0));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not on this list")]
    fn unlinking_a_stranger_is_caught() {
        let mut nodes = Nodes(vec![Link::default(); 3]);
        let (mut one, mut other) = (List::default(), List::default());
        one.push_back(&mut nodes, id(0));
        other.push_back(&mut nodes, id(1));
        other.push_back(&mut nodes, id(2));
        one.unlink(&mut nodes, id(2));
    }
}
