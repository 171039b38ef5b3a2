//! A bounded FIFO set of the hashes of keys a region let go: the history
//! W-TinyLFU sizes its window by (see `tinylfu`). A miss on a key in the
//! window's history would have been a hit with a larger window, one in the
//! main space's history with a larger main space.

use std::collections::VecDeque;

use hashbrown::HashMap;

#[derive(Debug, Default)]
pub(crate) struct Ghosts {
    /// Hash -> the sequence number it was recorded under and the time
    /// (the caller's clock) it was let go at; a hash recorded again, or
    /// forgotten, leaves a stale `order` slot, skipped on trim.
    recorded: HashMap<u32, (u64, u64), SpreadHash>,
    order: VecDeque<(u32, u64)>,
    next: u64,
}

impl Ghosts {
    pub(crate) fn len(&self) -> usize {
        self.recorded.len()
    }

    /// Records `hash` as let go at time `at`, forgetting the oldest beyond
    /// `capacity`.
    pub(crate) fn record(&mut self, hash: u32, capacity: usize, at: u64) {
        self.next += 1;
        self.recorded.insert(hash, (self.next, at));
        self.order.push_back((hash, self.next));
        while self.recorded.len() > capacity || self.order.len() > 2 * capacity.max(1) {
            let Some((oldest, recorded_as)) = self.order.pop_front() else {
                break;
            };
            if self.recorded.get(&oldest).map(|&(seq, _)| seq) == Some(recorded_as) {
                self.recorded.remove(&oldest);
            }
        }
    }

    /// When `hash` was let go, if it was recorded and not yet forgotten;
    /// forgets it.
    #[inline]
    pub(crate) fn take(&mut self, hash: u32) -> Option<u64> {
        self.recorded.remove(&hash).map(|(_, at)| at)
    }

    pub(crate) fn clear(&mut self) {
        *self = Ghosts::default();
    }

    pub(crate) fn heap_size(&self) -> usize {
        self.recorded.allocation_size() + self.order.capacity() * std::mem::size_of::<(u32, u64)>()
    }
}

/// The hashes are an entry's stored hash bits, already mixed; the table
/// needs them spread over 64 bits (hashbrown takes its tags from the top).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SpreadHash;

impl std::hash::BuildHasher for SpreadHash {
    type Hasher = SpreadHasher;
    fn build_hasher(&self) -> SpreadHasher {
        SpreadHasher(0)
    }
}

#[derive(Debug)]
pub(crate) struct SpreadHasher(u64);

impl std::hash::Hasher for SpreadHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }
    fn write_u32(&mut self, value: u32) {
        self.0 = u64::from(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_past_capacity_and_what_it_hands_back() {
        let mut ghosts = Ghosts::default();
        for hash in 0..10 {
            ghosts.record(hash, 4, u64::from(hash) * 10);
        }
        assert_eq!(ghosts.len(), 4);
        assert_eq!(ghosts.take(5), None);
        assert_eq!(ghosts.take(6), Some(60));
        assert_eq!(ghosts.take(6), None, "taken once");
        ghosts.record(7, 4, 100); // again: a stale slot stays behind
        for hash in 20..23 {
            ghosts.record(hash, 4, 200);
        }
        assert_eq!(ghosts.take(7), Some(100), "the later record counts");
    }
}
