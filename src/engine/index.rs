//! The index: which arena slot holds the entry of a key.
//!
//! A `hashbrown::HashTable` of 4-byte slot ids, keyed by a hash the entry
//! itself stores, so the table re-hashes on growth from the arena, never
//! from the key (the engine cannot hash a caller's key). Keys are compared
//! by the caller's closure, and only for slots whose stored hash matches.
//!
//! The entry keeps [`STORED_HASH_BITS`] bits of the caller's 64-bit hash
//! (the last bit of its 32 belongs to the entry's own flag). Which bits
//! matter: Python hashes of ints and tuples differ mostly in their high
//! bits (`hash(i << 32) == i << 32`), so the stored bits are taken from a
//! multiply that folds every bit of the caller's hash into them.
//! hashbrown in turn takes bucket positions from the low bits of the table
//! hash and its 7-bit control tags from the top, so the table hash spreads
//! the stored bits with a second odd multiply, a bijection that keeps them
//! all.
//!
//! In a large table a lookup's first misses (the control group, then the
//! slot id) follow from the hash alone; [`Index::prefetch`] starts both
//! before the caller's key comparison is even built.

use hashbrown::HashTable;

use super::arena::SlotId;
use super::prefetch::prefetch;

/// How many bits of a key's hash an entry stores.
pub(crate) const STORED_HASH_BITS: u32 = 31;
const STORED_HASH_MASK: u32 = (1 << STORED_HASH_BITS) - 1;

/// The hash of one key as the index uses it: the bits the entry stores,
/// and the hash the table files them under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexHash {
    /// The [`STORED_HASH_BITS`] bits an entry keeps.
    pub(crate) stored: u32,
    table: u64,
}

impl IndexHash {
    /// From the caller's hash of a key. The top 32 bits of the product of
    /// an odd multiply depend on every bit of the hash, which a plain
    /// truncation would drop.
    #[inline]
    pub(crate) fn of_key(hash: u64) -> Self {
        let folded = (hash.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> 32) as u32;
        Self::of_stored(folded & STORED_HASH_MASK)
    }

    /// From the bits an entry stores (a table resize, a re-point).
    #[inline]
    pub(crate) fn of_stored(stored: u32) -> Self {
        debug_assert_eq!(stored & !STORED_HASH_MASK, 0, "stored hash too wide");
        IndexHash {
            stored,
            table: u64::from(stored).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        }
    }
}

/// A `HashTable` of slot ids with the layout it last had, for prefetching.
#[derive(Debug, Default)]
pub(crate) struct Index {
    table: HashTable<SlotId>,
    layout: Layout,
}

impl Index {
    #[cfg(any(test, fuzzing))]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Starts loading the control group and the slot ids that a probe for
    /// `hash` reads first; harmless whatever the table holds.
    #[inline]
    pub(crate) fn prefetch(&self, hash: IndexHash) {
        if let Some(probe) = self.layout.first_probe(hash) {
            prefetch(std::ptr::without_provenance(probe.ctrl), GROUP);
            prefetch(
                std::ptr::without_provenance(probe.slots),
                GROUP * std::mem::size_of::<SlotId>(),
            );
        }
    }

    /// The slot filed under `hash` that `is_match` accepts. `is_match` sees
    /// only slots whose table hash shares hashbrown's 7-bit tag with `hash`.
    ///
    /// Through `iter_hash`, a plain iterator: `HashTable::find` hands the
    /// test to its probe loop as a `dyn FnMut`, which the compiler stopped
    /// inlining once the binding's key comparison grew (a get-hit paid a
    /// call and a closure frame for it).
    #[inline(always)]
    #[allow(
        clippy::manual_find,
        reason = "`Iterator::find` came out of line, through `try_fold`"
    )]
    pub(crate) fn find(
        &self,
        hash: IndexHash,
        mut is_match: impl FnMut(SlotId) -> bool,
    ) -> Option<SlotId> {
        for &id in self.table.iter_hash(hash.table) {
            if is_match(id) {
                return Some(id);
            }
        }
        None
    }

    /// Makes room for `additional` more slots at once (a restore knows how
    /// many it files: growing by doubling re-hashed a million-entry restore
    /// a dozen times). `stored_hash_of` as for [`Index::insert`].
    pub(crate) fn reserve(&mut self, additional: usize, stored_hash_of: impl Fn(SlotId) -> u32) {
        self.table.reserve(additional, |&other| {
            IndexHash::of_stored(stored_hash_of(other)).table
        });
    }

    /// Files `id` under `hash`; `stored_hash_of` gives the stored hash of
    /// any slot already filed (the table re-hashes with it when it grows).
    #[inline(always)]
    pub(crate) fn insert(
        &mut self,
        hash: IndexHash,
        id: SlotId,
        stored_hash_of: impl Fn(SlotId) -> u32,
    ) {
        let inserted = self.table.insert_unique(hash.table, id, |&other| {
            IndexHash::of_stored(stored_hash_of(other)).table
        });
        let (bucket, slot) = (inserted.bucket_index(), std::ptr::from_ref(inserted.get()));
        // The table moves only when an insert grows it: learning the
        // layout here keeps it current.
        self.layout = Layout::learn(bucket, slot, self.table.num_buckets());
    }

    /// Takes out the slot filed under `hash` that `is_match` accepts, from
    /// the bucket its probe found (a delete is mostly memory misses, and a
    /// second probe would double them). Through `iter_hash_buckets`, as
    /// [`Index::find`] goes through `iter_hash`: `find_entry` takes the
    /// test as a `dyn FnMut` too.
    #[inline(always)]
    pub(crate) fn remove_match(
        &mut self,
        hash: IndexHash,
        mut is_match: impl FnMut(SlotId) -> bool,
    ) -> Option<SlotId> {
        let mut found = None;
        for bucket in self.table.iter_hash_buckets(hash.table) {
            if self
                .table
                .get_bucket(bucket)
                .is_some_and(|&id| is_match(id))
            {
                found = Some(bucket);
                break;
            }
        }
        let entry = self.table.get_bucket_entry(found?).ok()?;
        Some(entry.remove().0)
    }

    /// Takes `id`, filed under `hash`, out.
    ///
    /// # Panics
    /// If `id` is not filed under `hash`.
    #[inline(always)]
    pub(crate) fn remove(&mut self, hash: IndexHash, id: SlotId) {
        let removed = self.remove_match(hash, |other| other == id);
        assert!(removed.is_some(), "{id:?} missing from the index");
    }

    /// Files under `to` the entry filed under `from` (it moved in the arena).
    ///
    /// # Panics
    /// If `from` is not filed under `hash`.
    pub(crate) fn repoint(&mut self, hash: IndexHash, from: SlotId, to: SlotId) {
        *self
            .table
            .find_mut(hash.table, |&id| id == from)
            .expect("a moved entry is indexed") = to;
    }

    /// Forgets every slot, keeping the table's memory for what comes next
    /// (a burst of entries that all expired together).
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.table.clear();
    }

    /// Forgets every slot and gives the table's memory back.
    pub(crate) fn reset(&mut self) {
        *self = Index::default();
    }

    /// Bytes of heap the table holds.
    pub(crate) fn heap_size(&self) -> usize {
        self.table.allocation_size()
    }

    /// Whether `id` is filed under `hash`. For `validate`.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn holds(&self, hash: IndexHash, id: SlotId) -> bool {
        self.find(hash, |other| other == id).is_some()
    }
}

/// hashbrown reads control bytes a group of 16 at a time (SSE2).
const GROUP: usize = 16;

/// The addresses hashbrown's table keeps its control bytes and slots at,
/// learnt from the last insert. Used only to prefetch, which is harmless at
/// any address, so a stale or wrong layout costs speed, never correctness.
#[derive(Clone, Copy, Debug, Default)]
struct Layout {
    /// Address of the control bytes; slot `i` lies just below, at
    /// `ctrl - (i + 1) * size_of::<SlotId>()`. 0 for "do not prefetch".
    ctrl: usize,
    bucket_mask: usize,
}

/// The addresses of the first group a probe reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FirstProbe {
    /// Its control bytes.
    ctrl: usize,
    /// Its slots (the lowest address; they run up from here).
    slots: usize,
}

impl Layout {
    /// A smaller table (5 bytes a bucket: under 320 KiB) stays in the CPU's
    /// caches, where the prefetch would only add its instructions.
    const PREFETCH_FROM_BUCKETS: usize = 1 << 16;

    /// The layout, from where the slot of bucket `bucket` is, in a table of
    /// `buckets` buckets; or "do not prefetch" for a small table.
    fn learn(bucket: usize, slot: *const SlotId, buckets: usize) -> Self {
        if buckets < Self::PREFETCH_FROM_BUCKETS {
            return Layout::default();
        }
        Layout {
            ctrl: slot.addr() + (bucket + 1) * std::mem::size_of::<SlotId>(),
            bucket_mask: buckets - 1,
        }
    }

    /// hashbrown probes from bucket `hash & bucket_mask` (its `h1` is the
    /// hash itself), and the slot of bucket `i` is the `i + 1`-th below the
    /// control bytes.
    #[inline]
    fn first_probe(self, hash: IndexHash) -> Option<FirstProbe> {
        if self.ctrl == 0 {
            return None;
        }
        let position = hash.table as usize & self.bucket_mask;
        Some(FirstProbe {
            ctrl: self.ctrl + position,
            slots: self
                .ctrl
                .wrapping_sub((position + GROUP) * std::mem::size_of::<SlotId>()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: usize) -> SlotId {
        SlotId::from_index(i)
    }

    /// An index over `hashes[i]` filed as slot `i`.
    fn filled(hashes: &[u64]) -> Index {
        let stored: Vec<u32> = hashes
            .iter()
            .map(|&h| IndexHash::of_key(h).stored)
            .collect();
        let mut index = Index::default();
        for (i, &hash) in hashes.iter().enumerate() {
            index.insert(IndexHash::of_key(hash), id(i), |other| {
                stored[other.index()]
            });
        }
        index
    }

    /// How many filed slots each lookup has to tell apart from its own by
    /// the key (the stored hash matched), on average and at most.
    fn key_comparisons(hashes: &[u64]) -> (f64, usize) {
        let stored: Vec<u32> = hashes
            .iter()
            .map(|&h| IndexHash::of_key(h).stored)
            .collect();
        let index = filled(hashes);
        let (mut total, mut most) = (0, 0);
        for (i, &hash) in hashes.iter().enumerate() {
            let hash = IndexHash::of_key(hash);
            let mut compared = 0;
            let found = index.find(hash, |other| {
                if stored[other.index()] != hash.stored {
                    return false;
                }
                compared += 1;
                other == id(i)
            });
            assert_eq!(found, Some(id(i)));
            total += compared;
            most = most.max(compared);
        }
        (total as f64 / hashes.len() as f64, most)
    }

    #[test]
    fn hashes_that_differ_only_in_high_bits_stay_apart() {
        // Python's hash of the int `i << 32` is itself; of a small tuple,
        // well mixed; of `i` alone, `i`. None may share a probe chain.
        let n = 20_000u64;
        let shapes: [(&str, Vec<u64>); 4] = [
            ("i << 32", (0..n).map(|i| i << 32).collect()),
            ("i << 48", (0..n).map(|i| i << 48).collect()),
            ("i", (0..n).collect()),
            ("i * 2^31", (0..n).map(|i| i << 31).collect()),
        ];
        for (shape, hashes) in shapes {
            let (mean, most) = key_comparisons(&hashes);
            assert!(
                mean < 1.01 && most <= 3,
                "{shape}: {mean:.3} key comparisons a lookup, {most} at most"
            );
        }
    }

    #[test]
    fn insert_find_remove_repoint_clear() {
        let hashes = [5u64, 5 << 40, 7, 5];
        let stored: Vec<u32> = hashes
            .iter()
            .map(|&h| IndexHash::of_key(h).stored)
            .collect();
        let mut index = filled(&hashes);
        assert_eq!(index.len(), 4);
        let five = IndexHash::of_key(5);
        assert_eq!(index.find(five, |other| other == id(3)), Some(id(3)));
        assert_eq!(
            index.remove_match(five, |other| other == id(0)),
            Some(id(0))
        );
        assert_eq!(index.remove_match(five, |other| other == id(0)), None);
        index.repoint(five, id(3), id(9));
        assert!(index.holds(five, id(9)) && !index.holds(five, id(3)));
        index.remove(five, id(9));
        assert_eq!(index.len(), 2);
        index.insert(five, id(0), |other| stored[other.index()]);
        assert!(index.holds(five, id(0)));
        index.clear();
        assert_eq!(index.len(), 0);
        assert!(index.heap_size() > 0, "clear keeps the table");
        index.reset();
        assert_eq!(index.heap_size(), 0, "reset gives it back");
    }

    #[test]
    #[should_panic(expected = "missing from the index")]
    fn removing_an_unfiled_slot_panics() {
        let mut index = filled(&[1, 2]);
        index.remove(IndexHash::of_key(1), id(1));
    }

    /// The prefetch guesses where hashbrown keeps a probe's first control
    /// group and slots. A wrong guess is only slow, so check the guess
    /// here, where a hashbrown upgrade that moved things would show.
    #[test]
    fn layout_predicts_where_hashbrown_keeps_the_slots() {
        let count = 60_000u64;
        let hashes: Vec<u64> = (0..count)
            .map(|key| key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (key >> 7))
            .collect();
        let index = filled(&hashes);
        let layout = index.layout;
        assert!(index.table.num_buckets() >= Layout::PREFETCH_FROM_BUCKETS);
        assert_eq!(layout.bucket_mask, index.table.num_buckets() - 1);
        let slot = std::mem::size_of::<SlotId>();
        let mut in_first_group = 0;
        for (i, &hash) in hashes.iter().enumerate() {
            let hash = IndexHash::of_key(hash);
            let bucket = index
                .table
                .find_bucket_index(hash.table, |&other| other == id(i))
                .expect("indexed");
            let address = std::ptr::from_ref(index.table.get_bucket(bucket).unwrap()).addr();
            assert_eq!(address, layout.ctrl - (bucket + 1) * slot, "slot address");
            let probe = layout.first_probe(hash).unwrap();
            if (probe.slots..probe.slots + GROUP * slot).contains(&address) {
                in_first_group += 1;
                let ctrl_address = layout.ctrl + bucket;
                assert!((probe.ctrl..probe.ctrl + GROUP).contains(&ctrl_address));
            }
        }
        // Most entries sit in the first group their probe reads.
        assert!(
            in_first_group * 10 >= count as usize * 9,
            "{in_first_group} of {count} in their first group"
        );
        let small = filled(&[1]);
        assert_eq!(small.layout.ctrl, 0, "a small index is not prefetched");
    }
}
