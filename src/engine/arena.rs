//! A slab of entries addressed by [`SlotId`], with a free list.
//!
//! Invariants: a `SlotId` handed out by [`Arena::insert`] stays valid until
//! [`Arena::remove`] takes it back; vacant slots form a singly linked free
//! list through `Slot::Vacant`, so a removed slot is reused by the next
//! insert and a warm cache allocates nothing.

use std::num::NonZeroU32;

use super::prefetch::prefetch;

/// The index of an entry in the arena, stored as index + 1 so that
/// `Option<SlotId>` is four bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SlotId(NonZeroU32);

impl SlotId {
    /// # Panics
    /// If `index` does not fit the 32-bit id space (over 4 billion entries).
    #[inline]
    pub(crate) fn from_index(index: usize) -> Self {
        let raw = u32::try_from(index + 1).expect("arena holds at most u32::MAX - 1 entries");
        SlotId(NonZeroU32::new(raw).expect("index + 1 is never zero"))
    }

    #[inline]
    pub(crate) fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

impl std::fmt::Debug for SlotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.index())
    }
}

#[derive(Debug)]
enum Slot<T> {
    Occupied(T),
    Vacant { next_free: Option<SlotId> },
}

/// The size of one arena slot holding a `T` (for layout tests).
#[cfg(test)]
pub(crate) fn slot_size<T>() -> usize {
    std::mem::size_of::<Slot<T>>()
}

/// A `Vec` of slots plus a free list.
#[derive(Debug)]
pub(crate) struct Arena<T> {
    slots: Vec<Slot<T>>,
    free_head: Option<SlotId>,
    len: usize,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Arena<T> {
    pub(crate) fn new() -> Self {
        Arena {
            slots: Vec::new(),
            free_head: None,
            len: 0,
        }
    }

    /// Number of occupied slots.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots ever allocated (occupied or free): the high-water mark.
    pub(crate) fn capacity_used(&self) -> usize {
        self.slots.len()
    }

    /// Makes room for `additional` more values without reallocating.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.slots.reserve(additional);
    }

    /// Stores `value`, reusing a free slot when there is one.
    #[inline(always)]
    pub(crate) fn insert(&mut self, value: T) -> SlotId {
        self.len += 1;
        match self.free_head {
            Some(id) => {
                let slot = &mut self.slots[id.index()];
                let Slot::Vacant { next_free } = *slot else {
                    unreachable!("free list points at an occupied slot {id:?}");
                };
                self.free_head = next_free;
                *slot = Slot::Occupied(value);
                id
            }
            None => {
                let id = SlotId::from_index(self.slots.len());
                self.slots.push(Slot::Occupied(value));
                id
            }
        }
    }

    /// Takes the value out of `id` and puts the slot on the free list.
    ///
    /// # Panics
    /// If `id` is not occupied.
    pub(crate) fn remove(&mut self, id: SlotId) -> T {
        let slot = &mut self.slots[id.index()];
        let old = std::mem::replace(
            slot,
            Slot::Vacant {
                next_free: self.free_head,
            },
        );
        let Slot::Occupied(value) = old else {
            panic!("remove of vacant slot {id:?}");
        };
        self.free_head = Some(id);
        self.len -= 1;
        value
    }

    /// # Panics
    /// If `id` is not occupied.
    #[inline(always)]
    pub(crate) fn get(&self, id: SlotId) -> &T {
        match &self.slots[id.index()] {
            Slot::Occupied(value) => value,
            Slot::Vacant { .. } => panic!("read of vacant slot {id:?}"),
        }
    }

    /// # Panics
    /// If `id` is not occupied.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self, id: SlotId) -> &mut T {
        match &mut self.slots[id.index()] {
            Slot::Occupied(value) => value,
            Slot::Vacant { .. } => panic!("write of vacant slot {id:?}"),
        }
    }

    /// True when under half the slots are occupied, so that a slot drawn
    /// at random is more likely vacant than not.
    #[inline]
    pub(crate) fn is_sparse(&self) -> bool {
        self.len * 2 < self.slots.len()
    }

    /// The occupied slot at `index` of `0..capacity_used()`, if it is one.
    #[inline]
    pub(crate) fn occupied_at(&self, index: usize) -> Option<SlotId> {
        matches!(self.slots[index], Slot::Occupied(_)).then(|| SlotId::from_index(index))
    }

    /// Asks the CPU to start loading the slot at `index` into its caches,
    /// for a read soon after; out of range, it does nothing.
    #[inline]
    pub(crate) fn prefetch(&self, index: usize) {
        if let Some(slot) = self.slots.get(index) {
            prefetch(
                std::ptr::from_ref(slot).cast(),
                std::mem::size_of::<Slot<T>>(),
            );
        }
    }

    /// Moves the values of the slots at and above `len()` into the vacant
    /// slots below it, so that the occupied slots are exactly `0..len()`,
    /// and drops the rest. After each move, `moved(self, from, to)` runs so
    /// the caller can re-point whatever knew the value by `from`; it may
    /// read and write values, but must not insert or remove (the free list
    /// is rebuilt only at the end). O(slots).
    pub(crate) fn compact(&mut self, mut moved: impl FnMut(&mut Self, SlotId, SlotId)) {
        let mut low = 0;
        let mut high = self.slots.len();
        loop {
            while low < high && matches!(self.slots[low], Slot::Occupied(_)) {
                low += 1;
            }
            while high > low && matches!(self.slots[high - 1], Slot::Vacant { .. }) {
                high -= 1;
            }
            if low >= high {
                break;
            }
            // slots[low] is vacant and slots[high - 1] occupied, so they differ.
            high -= 1;
            self.slots.swap(low, high);
            moved(self, SlotId::from_index(high), SlotId::from_index(low));
            low += 1;
        }
        debug_assert_eq!(low, self.len, "the occupied slots are 0..len");
        self.slots.truncate(self.len);
        self.free_head = None;
    }

    /// Occupied slots in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SlotId, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| match slot {
                Slot::Occupied(value) => Some((SlotId::from_index(index), value)),
                Slot::Vacant { .. } => None,
            })
    }

    /// Every value, in slot order, the arena's memory going with them.
    pub(crate) fn into_values(self) -> impl Iterator<Item = T> {
        self.slots.into_iter().filter_map(|slot| match slot {
            Slot::Occupied(value) => Some(value),
            Slot::Vacant { .. } => None,
        })
    }

    /// Bytes of heap the arena holds.
    pub(crate) fn heap_size(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<T>>()
    }

    /// Checks the free list and the count. For tests and fuzzers.
    #[cfg(any(test, fuzzing))]
    ///
    /// # Panics
    /// On any inconsistency.
    pub(crate) fn validate(&self) {
        let occupied = self
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Occupied(_)))
            .count();
        assert_eq!(occupied, self.len, "arena count");
        let mut free = 0;
        let mut cursor = self.free_head;
        while let Some(id) = cursor {
            free += 1;
            assert!(free <= self.slots.len(), "free list cycles");
            match self.slots[id.index()] {
                Slot::Vacant { next_free } => cursor = next_free,
                Slot::Occupied(_) => panic!("free list reaches occupied slot {id:?}"),
            }
        }
        assert_eq!(
            free + occupied,
            self.slots.len(),
            "free list misses vacant slots"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_slots_are_reused_last_in_first_out() {
        let mut arena = Arena::new();
        let a = arena.insert("a");
        let b = arena.insert("b");
        let c = arena.insert("c");
        assert_eq!(arena.remove(b), "b");
        assert_eq!(arena.remove(a), "a");
        assert_eq!(arena.insert("d"), a);
        assert_eq!(arena.insert("e"), b);
        assert_eq!(arena.capacity_used(), 3);
        assert_eq!(*arena.get(c), "c");
        arena.validate();
        let mut seen: Vec<&str> = arena.into_values().collect();
        seen.sort_unstable();
        assert_eq!(seen, ["c", "d", "e"]);
    }

    #[test]
    fn compact_moves_the_high_values_into_the_low_holes() {
        let mut arena = Arena::new();
        let ids: Vec<SlotId> = (0..8).map(|i| arena.insert(i)).collect();
        for i in [0, 2, 3, 6] {
            arena.remove(ids[i]);
        }
        assert!(!arena.is_sparse());
        arena.remove(ids[5]);
        assert!(arena.is_sparse());
        let mut moves = Vec::new();
        arena.compact(|arena, from, to| moves.push((from.index(), to.index(), *arena.get(to))));
        // 7 goes to the lowest hole, 4 to the next; 1 stays.
        assert_eq!(moves, [(7, 0, 7), (4, 2, 4)]);
        assert_eq!(arena.capacity_used(), 3);
        assert_eq!(arena.iter().map(|(_, &v)| v).collect::<Vec<_>>(), [7, 1, 4]);
        arena.validate();
        assert_eq!(
            arena.insert(9).index(),
            3,
            "a compacted arena grows at the end"
        );
        arena.validate();
        let mut empty: Arena<u8> = Arena::new();
        let only = empty.insert(1);
        empty.remove(only);
        empty.compact(|_, _, _| panic!("nothing to move"));
        assert_eq!(empty.capacity_used(), 0);
        empty.validate();
    }

    #[test]
    fn option_slot_id_is_four_bytes() {
        assert_eq!(std::mem::size_of::<Option<SlotId>>(), 4);
    }

    #[test]
    #[should_panic(expected = "vacant")]
    fn reading_a_removed_slot_panics() {
        let mut arena = Arena::new();
        let a = arena.insert(1);
        arena.remove(a);
        arena.get(a);
    }
}
