//! The frequency sketch W-TinyLFU admits by: a count-min sketch of 4-bit
//! counters with a doorkeeper, aged by halving.
//!
//! Layout: a key's four counters are four nibbles of one 64-bit word, and
//! its two doorkeeper bits two bits of another, both in one 64-byte block
//! (one cache line), so that an update is one load and one store of each
//! word: all four counters are tested for saturation and incremented at
//! once (SWAR). The word is split into four lanes of four nibbles, and
//! counter `i` is one nibble of lane `i`, so the four never coincide.
//! (Caffeine's block-based `FrequencySketch` spreads a key's counters over
//! four words of a block and updates them one by one; it has no
//! doorkeeper.)
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

/// Counter blocks, each one cache line: counter words, then doorkeeper
/// words.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Block {
    counters: [u64; 4],
    doorkeeper: [u64; 4],
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

/// For each byte of placement bits, the increment of the four counters it
/// picks: two bits per lane choose the nibble, and the lowest bit of each
/// chosen nibble is set. A table lookup is cheaper than assembling the
/// mask from four shifts.
const COUNTER_INCREMENTS: [u64; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut lane = 0;
        while lane < 4 {
            let nibble = (byte >> (2 * lane)) & 3;
            table[byte] |= 1 << (16 * lane + 4 * nibble);
            lane += 1;
        }
        byte += 1;
    }
    table
};

/// Where a key's counters and doorkeeper bits are: its block (the hash's
/// high bits), and within the block, from the hash's low 32 bits: bits 0-7
/// the four nibbles (see [`COUNTER_INCREMENTS`]), bits 8-9 the counter
/// word, bits 10-11 the doorkeeper word and bits 12-17 and 18-23 the two
/// doorkeeper bits. The low bits do not depend on the number of blocks,
/// so a key keeps its place inside its block when the sketch grows.
#[derive(Clone, Copy, Debug)]
struct Place {
    block: usize,
    local: u32,
}

impl Place {
    #[inline(always)]
    fn counter_word(self) -> usize {
        (self.local >> 8) as usize & 3
    }

    #[inline(always)]
    fn counter_increments(self) -> u64 {
        COUNTER_INCREMENTS[self.local as usize & 255]
    }

    #[inline(always)]
    fn doorkeeper_word(self) -> usize {
        (self.local >> 10) as usize & 3
    }

    #[inline(always)]
    fn doorkeeper_mask(self) -> u64 {
        (1u64 << ((self.local >> 12) & 63)) | (1u64 << ((self.local >> 18) & 63))
    }

    /// Whether `block`'s doorkeeper holds the key: both its bits are set.
    #[inline(always)]
    fn known(self, block: &Block) -> bool {
        let mask = self.doorkeeper_mask();
        block.doorkeeper[self.doorkeeper_word()] & mask == mask
    }
}

#[derive(Debug)]
pub(crate) struct FrequencySketch {
    /// Never empty, so that a hit's update need not test for it.
    blocks: Vec<Block>,
    /// The items the sketch is sized for; 0 before the first `grow_for`,
    /// when it counts nothing.
    sized_for: u64,
    /// The most items it will ever be sized for (`max_items`, or none).
    size_limit: u64,
    /// Accesses left to record before the next halving: a countdown, one
    /// decrement and test an access.
    until_aging: u64,
    /// Accesses per sample period.
    sample_size: u64,
}

impl FrequencySketch {
    /// A sketch that never grows past `size_limit` items (0: no limit).
    /// It counts nothing until the first `grow_for`: a cache's first store
    /// and the misses before it are not counted.
    pub(crate) fn new(size_limit: u64) -> Self {
        FrequencySketch {
            blocks: vec![Block::default()],
            sized_for: 0,
            size_limit: if size_limit == 0 {
                u64::MAX
            } else {
                size_limit
            },
            until_aging: 0,
            sample_size: 0,
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
        // a block of 4 counter words serves about four keys.
        let words = usize::try_from(sized_for)
            .unwrap_or(usize::MAX)
            .min(1 << 40)
            .next_power_of_two();
        let blocks = (words / 4).max(1);
        if blocks > self.blocks.len() {
            let old = std::mem::take(&mut self.blocks);
            let split = (blocks / old.len()).trailing_zeros();
            self.blocks = (0..blocks).map(|index| old[index >> split]).collect();
        }
        self.sized_for = sized_for;
        let sample_size = sized_for.saturating_mul(SAMPLE_FACTOR);
        // The accesses counted so far stay counted in the longer period.
        self.until_aging += sample_size - self.sample_size;
        self.sample_size = sample_size;
    }

    #[inline(always)]
    fn place(&self, hash: u64) -> Place {
        // The block by a multiply-shift range reduction of the whole hash
        // (its high bits), so that twice the blocks split each old one in
        // two (see `grow_for`).
        Place {
            block: ((u128::from(hash) * self.blocks.len() as u128) >> 64) as usize,
            local: hash as u32,
        }
    }

    /// Records one access of the key with `hash`, which must be mixed in
    /// all its bits.
    #[inline(always)]
    pub(crate) fn increment(&mut self, hash: u64) {
        if self.sized_for == 0 {
            return;
        }
        if self.record(hash) {
            self.age();
        }
    }

    /// [`FrequencySketch::increment`] but for the halving, which it leaves
    /// to the caller when it answers true: the sample period is over, and
    /// [`FrequencySketch::age`] must run before the next access is
    /// recorded. Only for a sized sketch (a hit's: its entry's store sized
    /// it). Branch-free: a hit on a `tinylfu` cache runs this, and keeps its
    /// one rare call out of the way.
    #[must_use]
    #[inline(always)]
    pub(crate) fn record(&mut self, hash: u64) -> bool {
        debug_assert!(self.sized_for > 0, "a record in an unsized sketch");
        let place = self.place(hash);
        let block = &mut self.blocks[place.block];
        let known = place.known(block);
        // Setting the bits of a key the doorkeeper holds changes nothing.
        block.doorkeeper[place.doorkeeper_word()] |= place.doorkeeper_mask();
        let counters = &mut block.counters[place.counter_word()];
        let word = *counters;
        // Bit 4k of `saturated` is set when nibble k is 15: the AND of its
        // four bits.
        let pairs = word & (word >> 2);
        let saturated = pairs & (pairs >> 1);
        let counted = u64::from(known).wrapping_neg();
        // No carry leaves a nibble: only those below 15 get their one.
        *counters = word + (place.counter_increments() & !saturated & counted);
        self.until_aging -= 1;
        self.until_aging == 0
    }

    /// The estimated number of accesses of the key with `hash` in about
    /// the last sample period: at most 16.
    #[inline]
    pub(crate) fn frequency(&self, hash: u64) -> u64 {
        let place = self.place(hash);
        let block = &self.blocks[place.block];
        let word = block.counters[place.counter_word()];
        let mut increments = place.counter_increments();
        let mut counted = COUNTER_MAX;
        while increments != 0 {
            let shift = increments.trailing_zeros();
            counted = counted.min((word >> shift) & COUNTER_MAX);
            increments &= increments - 1;
        }
        counted + u64::from(place.known(block))
    }

    /// Halves every counter and empties the doorkeeper.
    #[cold]
    #[inline(never)]
    pub(crate) fn age(&mut self) {
        for block in &mut self.blocks {
            for word in &mut block.counters {
                *word = (*word >> 1) & HALVES;
            }
            block.doorkeeper = [0; 4];
        }
        // Halved, the period's count so far is half a period.
        self.until_aging = self.sample_size - self.sample_size / 2;
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
            self.sized_for == 0 || (1..=self.sample_size).contains(&self.until_aging),
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
    fn counts_nothing_before_it_is_sized() {
        let mut sketch = FrequencySketch::new(0);
        sketch.increment(spread(7));
        sketch.validate();
        sketch.grow_for(1);
        assert_eq!(sketch.frequency(spread(7)), 0);
        sketch.increment(spread(7));
        assert_eq!(sketch.frequency(spread(7)), 1);
    }

    #[test]
    fn a_saturated_counter_never_carries_into_its_neighbours() {
        let mut sketch = FrequencySketch::new(0);
        sketch.grow_for(1000);
        let key = spread(7);
        for _ in 0..40 {
            sketch.increment(key);
        }
        let place = sketch.place(key);
        let word = sketch.blocks[place.block].counters[place.counter_word()];
        assert_eq!(
            word,
            place.counter_increments() * COUNTER_MAX,
            "its four nibbles at 15, every other nibble 0"
        );
        let counting = sketch
            .blocks
            .iter()
            .flat_map(|block| block.counters)
            .filter(|&word| word != 0)
            .count();
        assert_eq!(counting, 1, "no other word counted anything");
    }

    #[test]
    fn every_key_has_four_counters_one_in_each_lane() {
        for (byte, increments) in COUNTER_INCREMENTS.iter().enumerate() {
            assert_eq!(increments.count_ones(), 4, "byte {byte}");
            for lane in 0..4 {
                let bits = (increments >> (16 * lane)) & 0xFFFF;
                assert_eq!(bits.count_ones(), 1, "byte {byte}, lane {lane}");
                assert_eq!(bits.trailing_zeros() % 4, 0, "a nibble's lowest bit");
            }
        }
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
