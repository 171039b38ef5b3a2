//! An intrusive doubly linked list threaded through arena slots by
//! [`SlotId`]. The same type serves the LRU/FIFO order and every wheel
//! bucket: each entry carries one [`Link`] per list it can be on, and the
//! caller says which one through [`Linked`].
//!
//! Invariants: `head.prev == None`, `tail.next == None`, and for each
//! linked node `n`, `n.next.prev == n` and `n.prev.next == n`.

use super::arena::SlotId;

/// The prev/next pair an entry carries for one list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    pub prev: Option<SlotId>,
    pub next: Option<SlotId>,
}

/// Access to the link of one list in every node.
pub trait Linked {
    fn link(&mut self, id: SlotId) -> &mut Link;
}

/// Head and tail of one list; the nodes hold the rest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct List {
    pub head: Option<SlotId>,
    pub tail: Option<SlotId>,
}

impl List {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Appends `id`, whose link must be unused.
    #[inline]
    pub fn push_back(&mut self, nodes: &mut impl Linked, id: SlotId) {
        let old_tail = self.tail;
        *nodes.link(id) = Link {
            prev: old_tail,
            next: None,
        };
        match old_tail {
            Some(tail) => nodes.link(tail).next = Some(id),
            None => self.head = Some(id),
        }
        self.tail = Some(id);
    }

    /// Removes `id`, which must be on this list, and clears its link.
    #[inline]
    pub fn unlink(&mut self, nodes: &mut impl Linked, id: SlotId) {
        let Link { prev, next } = std::mem::take(nodes.link(id));
        match prev {
            Some(prev) => nodes.link(prev).next = next,
            None => self.head = next,
        }
        match next {
            Some(next) => nodes.link(next).prev = prev,
            None => self.tail = prev,
        }
    }

    /// Moves `id`, which must be on this list, to the back.
    #[inline]
    pub fn move_to_back(&mut self, nodes: &mut impl Linked, id: SlotId) {
        // Unlink and push_back fused: an LRU hit runs this, and a node with
        // a successor is never the tail, so the list stays non-empty
        // throughout and half of the generic branches fall away.
        let Link { prev, next } = *nodes.link(id);
        let Some(next) = next else {
            return; // already the tail
        };
        match prev {
            Some(prev) => nodes.link(prev).next = Some(next),
            None => self.head = Some(next),
        }
        nodes.link(next).prev = prev;
        let old_tail = self.tail.expect("a list with a node is not empty");
        nodes.link(old_tail).next = Some(id);
        *nodes.link(id) = Link {
            prev: Some(old_tail),
            next: None,
        };
        self.tail = Some(id);
    }

    /// Re-points the list at `to` for a node that moved there from `from`,
    /// taking its link along: its neighbours' links, or the head and tail.
    /// The node must be on this list.
    pub fn relocate(&mut self, nodes: &mut impl Linked, from: SlotId, to: SlotId) {
        let Link { prev, next } = *nodes.link(to);
        match prev {
            Some(prev) => nodes.link(prev).next = Some(to),
            None => {
                debug_assert_eq!(self.head, Some(from), "a node without prev is the head");
                self.head = Some(to);
            }
        }
        match next {
            Some(next) => nodes.link(next).prev = Some(to),
            None => self.tail = Some(to),
        }
    }

    /// Walks the list front to back, checking links both ways; returns the ids.
    ///
    /// # Panics
    /// On a broken link or a cycle longer than `limit`.
    pub fn collect(&self, nodes: &mut impl Linked, limit: usize) -> Vec<SlotId> {
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
    impl Linked for Nodes {
        fn link(&mut self, id: SlotId) -> &mut Link {
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
        assert_eq!(list.collect(&mut nodes, 10), [id(3), id(1)]);
        list.move_to_back(&mut nodes, id(1)); // the tail stays
        assert_eq!(list.collect(&mut nodes, 10), [id(3), id(1)]);
        list.move_to_back(&mut nodes, id(3)); // the head moves
        assert_eq!(list.collect(&mut nodes, 10), [id(1), id(3)]);
        list.move_to_back(&mut nodes, id(1));
        list.unlink(&mut nodes, id(3));
        list.unlink(&mut nodes, id(1));
        assert!(list.is_empty());
        assert_eq!(list.collect(&mut nodes, 10), []);
    }
}
