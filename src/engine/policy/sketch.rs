//! The frequency sketch W-TinyLFU admits by: a count-min sketch of 4-bit
//! counters with a doorkeeper, aged by halving.
//!
//! Layout (after Caffeine's block-based `FrequencySketch`): a key's four
//! counters all lie in one 64-byte block, so an update or estimate touches
//! one cache line, plus the doorkeeper's bits, which sit in the block's
//! second line. Counter `i` of a key is a nibble of word `2i` or `2i + 1`
//! of its block, picked by hash bits, so the four never share a word.
//!
//! The doorkeeper is a small Bloom filter in front of the counters: a
//! key's first access in a sample period only sets its two doorkeeper
//! bits, and only later accesses count. One-hit wonders, most keys of a
//! scan, then cost nothing in the counters, and the estimate adds one for
//! a key the doorkeeper holds.
//!
//! Aging: after `20 x` the items the sketch is sized for have been
//! recorded, every counter is halved and the doorkeeper is emptied, so a
//! formerly hot key's count decays and a new hot one overtakes it.

/// Counter blocks, each two cache lines: the counters, then the
/// doorkeeper's bits.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(128))]
struct Block {
    counters: [u64; 8],
    doorkeeper: [u64; 8],
}

/// Every nibble's top bit clear: a word shifted right by one and masked
/// with this is every counter halved.
const HALVES: u64 = 0x7777_7777_7777_7777;

/// The largest value a 4-bit counter holds.
const COUNTER_MAX: u64 = 15;

/// How many recorded accesses, per item the sketch is sized for, make a
/// sample period (`TinyLFU`'s `W / C`). Caffeine uses 10; 20 measured
/// better on every Zipf trace of `bench/hit_ratio.py` (up to 0.7 points),
/// and a shifting hot set does not wait for aging here: the window grows
/// for it (see `tinylfu`).
const SAMPLE_FACTOR: u64 = 20;

/// Where a key's counters and doorkeeper bits are: its block, and a mix
/// of its hash whose bytes 0-3 place the four counters (bit 0 the word of
/// the pair, bits 1-4 the nibble) and whose bits 32-40 and 41-49 are the
/// two doorkeeper bits.
#[derive(Clone, Copy, Debug)]
struct Place {
    block: usize,
    mixed: u64,
}

impl Place {
    /// Word and bit shift of counter `i` (0-3).
    #[inline(always)]
    fn counter(self, i: u32) -> (usize, u32) {
        let bits = (self.mixed >> (i * 8)) as u32;
        ((2 * i + (bits & 1)) as usize, ((bits >> 1) & 15) * 4)
    }

    /// Word and mask of doorkeeper bit `i` (0-1).
    #[inline(always)]
    fn doorkeeper(self, i: u32) -> (usize, u64) {
        let bit = (self.mixed >> (32 + 9 * i)) as usize & 511;
        (bit / 64, 1u64 << (bit % 64))
    }

    /// Whether `block`'s doorkeeper holds the key: both its bits are set.
    #[inline(always)]
    fn known(self, block: &Block) -> bool {
        let ((word0, mask0), (word1, mask1)) = (self.doorkeeper(0), self.doorkeeper(1));
        block.doorkeeper[word0] & mask0 != 0 && block.doorkeeper[word1] & mask1 != 0
    }
}

#[derive(Debug, Default)]
pub(crate) struct FrequencySketch {
    blocks: Vec<Block>,
    /// The items the sketch is sized for; 0 before the first `grow_for`.
    sized_for: u64,
    /// The most items it will ever be sized for (`max_items`, or none).
    size_limit: u64,
    /// Accesses recorded in the current sample period.
    additions: u64,
    /// Accesses per sample period.
    sample_size: u64,
}

impl FrequencySketch {
    /// A sketch that never grows past `size_limit` items (0: no limit).
    pub(crate) fn new(size_limit: u64) -> Self {
        FrequencySketch {
            size_limit: if size_limit == 0 {
                u64::MAX
            } else {
                size_limit
            },
            ..FrequencySketch::default()
        }
    }

    /// Sizes the sketch for at least `items` items (up to its limit),
    /// doubling, so that a growing cache pays O(1) amortized. A resize
    /// keeps every count: a key's block is the top bits of its hash, so
    /// with twice the blocks its block is one of the two that old block
    /// splits into, and the counters inside a block are placed by other
    /// bits. Each new block starts as a copy of its old one, so no estimate
    /// falls (the sketch never undercounts) and new counts spread out.
    #[inline]
    pub(crate) fn grow_for(&mut self, items: u64) {
        if items > self.sized_for {
            self.resize(items);
        }
    }

    #[cold]
    #[inline(never)]
    fn resize(&mut self, items: u64) {
        let sized_for = self
            .sized_for
            .saturating_mul(2)
            .max(items)
            .max(64)
            .min(self.size_limit);
        if sized_for <= self.sized_for {
            return;
        }
        // Caffeine's proportion: a 64-bit word (16 counters) per item, so
        // a block of 8 words serves about eight keys' four counters each.
        let words = usize::try_from(sized_for)
            .unwrap_or(usize::MAX)
            .min(1 << 40)
            .next_power_of_two();
        let blocks = (words / 8).max(1);
        if blocks > self.blocks.len() {
            let old = std::mem::take(&mut self.blocks);
            let split = (blocks / old.len().max(1)).trailing_zeros();
            self.blocks = if old.is_empty() {
                vec![Block::default(); blocks]
            } else {
                (0..blocks).map(|index| old[index >> split]).collect()
            };
        }
        self.sized_for = sized_for;
        self.sample_size = sized_for.saturating_mul(SAMPLE_FACTOR);
    }

    #[inline(always)]
    fn place(&self, hash: u64) -> Place {
        // The block from the hash's high bits (a multiply-shift range
        // reduction), the counters and doorkeeper bits from a second mix,
        // so that keys sharing a block rarely share counters.
        Place {
            block: ((u128::from(hash) * self.blocks.len() as u128) >> 64) as usize,
            mixed: hash.wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ (hash >> 31),
        }
    }

    /// Records one access of the key with `hash`. Branch-free but for the
    /// doorkeeper: a hit on a `tinylfu` cache runs this.
    #[inline]
    pub(crate) fn increment(&mut self, hash: u64) {
        if self.blocks.is_empty() {
            return;
        }
        let place = self.place(hash);
        let block = &mut self.blocks[place.block];
        if place.known(block) {
            for i in 0..4 {
                let (word, shift) = place.counter(i);
                let counter = (block.counters[word] >> shift) & COUNTER_MAX;
                block.counters[word] += u64::from(counter < COUNTER_MAX) << shift;
            }
        } else {
            for i in 0..2 {
                let (word, mask) = place.doorkeeper(i);
                block.doorkeeper[word] |= mask;
            }
        }
        self.additions += 1;
        if self.additions >= self.sample_size {
            self.age();
        }
    }

    /// The estimated number of accesses of the key with `hash` in about
    /// the last sample period: at most 16.
    #[inline]
    pub(crate) fn frequency(&self, hash: u64) -> u64 {
        if self.blocks.is_empty() {
            return 0;
        }
        let place = self.place(hash);
        let block = &self.blocks[place.block];
        let counted = (0..4)
            .map(|i| {
                let (word, shift) = place.counter(i);
                (block.counters[word] >> shift) & COUNTER_MAX
            })
            .min()
            .unwrap_or(0);
        counted + u64::from(place.known(block))
    }

    /// Halves every counter and empties the doorkeeper.
    #[cold]
    #[inline(never)]
    fn age(&mut self) {
        for block in &mut self.blocks {
            for word in &mut block.counters {
                *word = (*word >> 1) & HALVES;
            }
            block.doorkeeper = [0; 8];
        }
        self.additions /= 2;
    }

    pub(crate) fn heap_size(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Block>()
    }

    /// # Panics
    /// If the sample count is past its period, or the sketch is larger
    /// than its limit allows.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn validate(&self) {
        assert!(
            self.blocks.is_empty() || self.additions < self.sample_size,
            "sketch sample count past its period"
        );
        assert!(
            self.sized_for <= self.size_limit,
            "sketch over its size limit"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(key: u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    #[test]
    fn counts_up_to_the_counter_limit_after_the_doorkeeper() {
        let mut sketch = FrequencySketch::new(0);
        sketch.grow_for(1000);
        assert_eq!(sketch.frequency(spread(7)), 0);
        sketch.increment(spread(7));
        assert_eq!(sketch.frequency(spread(7)), 1, "the doorkeeper's one");
        for expected in 2..=16 {
            sketch.increment(spread(7));
            assert_eq!(sketch.frequency(spread(7)), expected);
        }
        for _ in 0..10 {
            sketch.increment(spread(7));
        }
        assert_eq!(sketch.frequency(spread(7)), 16, "4-bit counters saturate");
    }

    #[test]
    fn estimates_never_undercount_below_the_saturation_point() {
        let mut sketch = FrequencySketch::new(0);
        sketch.grow_for(4096);
        let keys: Vec<u64> = (0..2000).map(spread).collect();
        for (i, &key) in keys.iter().enumerate() {
            for _ in 0..=(i % 5) {
                sketch.increment(key);
            }
        }
        for (i, &key) in keys.iter().enumerate() {
            let accesses = (i % 5 + 1) as u64;
            assert!(
                sketch.frequency(key) >= accesses,
                "count-min never undercounts"
            );
        }
    }

    #[test]
    fn ages_by_halving_after_a_sample_period() {
        let mut sketch = FrequencySketch::new(64);
        sketch.grow_for(64);
        let hot = spread(1);
        for _ in 0..12 {
            sketch.increment(hot);
        }
        assert_eq!(sketch.frequency(hot), 12);
        // Fill the rest of the period with other keys: one halving.
        for key in 0..(64 * SAMPLE_FACTOR - 12) {
            sketch.increment(spread(1000 + key));
        }
        let aged = sketch.frequency(hot);
        assert!(
            aged <= 7,
            "halved (11 counted / 2, the doorkeeper emptied): {aged}"
        );
        sketch.validate();
    }

    #[test]
    fn growing_keeps_every_estimate() {
        let mut sketch = FrequencySketch::new(0);
        sketch.grow_for(64);
        let keys: Vec<u64> = (0..300).map(spread).collect();
        for (i, &key) in keys.iter().enumerate() {
            for _ in 0..(i % 7) {
                sketch.increment(key);
            }
        }
        let before: Vec<u64> = keys.iter().map(|&key| sketch.frequency(key)).collect();
        sketch.grow_for(100_000);
        for (i, &key) in keys.iter().enumerate() {
            assert_eq!(sketch.frequency(key), before[i], "key {i}");
        }
    }

    #[test]
    fn grows_by_doubling_up_to_its_limit() {
        let mut sketch = FrequencySketch::new(1000);
        sketch.grow_for(1);
        assert_eq!(sketch.sized_for, 64);
        sketch.grow_for(65);
        assert_eq!(sketch.sized_for, 128);
        sketch.grow_for(5000);
        assert_eq!(sketch.sized_for, 1000);
        sketch.validate();
    }
}
