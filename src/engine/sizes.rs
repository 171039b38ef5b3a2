//! Entry sizes: 32 bits in the entry, and a side table for the rare size
//! that does not fit.
//!
//! A size of four billion units or more is rare enough to cost a map
//! lookup, and keeping 32 bits instead of 64 in every entry keeps the entry
//! within its 48 bytes. Invariant: an entry's field is [`SIZE_ELSEWHERE`]
//! exactly when the table holds its size.

use hashbrown::HashMap;

use super::arena::SlotId;

/// The size field of an entry whose size is in the side table.
const SIZE_ELSEWHERE: u32 = u32::MAX;

/// The sizes that do not fit an entry's field, by slot.
#[derive(Debug, Default)]
pub(crate) struct LargeSizes(HashMap<SlotId, u64>);

impl LargeSizes {
    /// The field an entry of `size` stores.
    #[inline]
    pub(crate) fn field_of(size: u64) -> u32 {
        u32::try_from(size).unwrap_or(SIZE_ELSEWHERE)
    }

    /// Keeps the size of the entry at `id` here if its field cannot hold it.
    #[inline]
    pub(crate) fn store(&mut self, id: SlotId, size: u64) {
        if Self::field_of(size) == SIZE_ELSEWHERE {
            self.0.insert(id, size);
        }
    }

    /// The size of the entry at `id`, whose field is `field`.
    #[inline]
    pub(crate) fn get(&self, id: SlotId, field: u32) -> u64 {
        match field {
            SIZE_ELSEWHERE => *self.0.get(&id).expect("a large size is in the side table"),
            small => u64::from(small),
        }
    }

    /// [`LargeSizes::get`] for an entry leaving the cache: forgets it.
    #[inline]
    pub(crate) fn take(&mut self, id: SlotId, field: u32) -> u64 {
        match field {
            SIZE_ELSEWHERE => self
                .0
                .remove(&id)
                .expect("a large size is in the side table"),
            small => u64::from(small),
        }
    }

    /// Follows an entry with field `field` that moved from `from` to `to`.
    pub(crate) fn relocate(&mut self, from: SlotId, to: SlotId, field: u32) {
        if field == SIZE_ELSEWHERE {
            let size = self.take(from, field);
            self.0.insert(to, size);
        }
    }

    /// Forgets every size and gives the table's memory back.
    pub(crate) fn reset(&mut self) {
        *self = LargeSizes::default();
    }

    /// Bytes of heap the table holds.
    pub(crate) fn heap_size(&self) -> usize {
        self.0.allocation_size()
    }

    /// How many sizes are kept here. For `validate`.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the entry whose field is `field` has its size here.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn is_elsewhere(field: u32) -> bool {
        field == SIZE_ELSEWHERE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip_at_the_edge_of_the_field() {
        let mut sizes = LargeSizes::default();
        let id = |i| SlotId::from_index(i);
        let cases = [
            0,
            u64::from(u32::MAX) - 1,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ];
        let fields: Vec<u32> = cases
            .iter()
            .map(|&size| LargeSizes::field_of(size))
            .collect();
        for (i, &size) in cases.iter().enumerate() {
            sizes.store(id(i), size);
        }
        assert_eq!(sizes.len(), 3, "from u32::MAX up, sizes live here");
        for (i, &size) in cases.iter().enumerate() {
            assert_eq!(sizes.get(id(i), fields[i]), size);
        }
        sizes.relocate(id(4), id(9), fields[4]);
        sizes.relocate(id(0), id(8), fields[0]);
        assert_eq!(sizes.get(id(9), fields[4]), u64::MAX);
        assert_eq!(sizes.take(id(9), fields[4]), u64::MAX);
        assert_eq!(sizes.take(id(2), fields[2]), u64::from(u32::MAX));
        assert_eq!(sizes.len(), 1);
        sizes.reset();
        assert_eq!(sizes.heap_size(), 0);
    }
}
