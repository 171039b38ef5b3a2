//! A hierarchical timing wheel (Varghese & Lauck) for entry deadlines.
//!
//! Eight levels of 64 buckets. A level-0 bucket spans one wheel tick of
//! 2^[`TICK_SHIFT`] ns (about 1.05 ms); a level-`k` bucket spans 64^k wheel
//! ticks, so eight levels cover every 44-bit wheel tick, that is every u64
//! nanosecond deadline. An entry sits at the level of the highest 6-bit
//! group in which its deadline tick differs from `elapsed` (the tick the
//! wheel has advanced to), in the bucket named by that group's bits, as in
//! tokio's wheel. Each level keeps a `u64` bitmap of non-empty buckets, so
//! [`TimerWheel::advance`] jumps straight to the next occupied bucket: it
//! never walks empty buckets or elapsed ticks, and a jump of years costs
//! what a jump of one tick costs.
//!
//! Invariants (checked by [`TimerWheel::validate`]):
//! - every scheduled node is in bucket `position(max(tick(deadline), elapsed))`;
//! - bit `b` of `occupied[level]` is set iff bucket `b` of that level is non-empty;
//! - at level `L >= 1` every occupied bucket index is above `elapsed`'s group
//!   `L`, and at level 0 at or above it, so the lowest set bit is the next
//!   bucket due and lower levels always fall due before higher ones;
//! - `earliest[b]` is a lower bound of the deadlines in level-0 bucket `b`,
//!   and a bucket with its `sorted` bit set holds deadlines in
//!   non-decreasing order.
//!
//! The level-0 bucket that contains `now` is only partly elapsed. `advance`
//! walks it only when `earliest` says something in it is due, and a sorted
//! bucket (the usual case: entries with one TTL arrive in deadline order)
//! is popped from the front, so reaping costs O(due), not O(bucket).

use super::arena::SlotId;
use super::list::{Link, Linked, List};
use super::time::{Tick, NEVER};

/// log2 of the level-0 bucket width in nanoseconds.
pub const TICK_SHIFT: u32 = 20;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
pub const LEVELS: usize = 8;

/// The wheel's two fields of one node, as a struct for wheels driven alone
/// (tests, the fuzzer). The cache keeps them as fields of its entry.
///
/// A node stores no bucket: a scheduled node's bucket follows from its
/// deadline and the wheel's `elapsed` (the first invariant above), which
/// saves an entry the bytes of a bucket number.
#[derive(Clone, Copy, Debug)]
pub struct TimerNode {
    pub link: Link,
    /// The entry's exact deadline; [`NEVER`] when it does not expire.
    pub deadline: Tick,
}

impl Default for TimerNode {
    fn default() -> Self {
        TimerNode {
            link: Link::default(),
            deadline: NEVER,
        }
    }
}

/// Access to the wheel's fields of every node.
pub trait TimerNodes {
    /// Links in the node's bucket list.
    fn timer_link(&mut self, id: SlotId) -> &mut Link;
    /// The node's exact deadline; [`NEVER`] when it does not expire.
    fn deadline(&mut self, id: SlotId) -> &mut Tick;
}

/// Nodes in a plain vector indexed by slot id: a wheel driven alone.
#[derive(Debug, Default)]
pub struct TimerNodeVec(pub Vec<TimerNode>);

impl TimerNodes for TimerNodeVec {
    fn timer_link(&mut self, id: SlotId) -> &mut Link {
        &mut self.0[id.index()].link
    }
    fn deadline(&mut self, id: SlotId) -> &mut Tick {
        &mut self.0[id.index()].deadline
    }
}

struct TimerLinks<'a, N: TimerNodes>(&'a mut N);

impl<N: TimerNodes> Linked for TimerLinks<'_, N> {
    #[inline]
    fn link(&mut self, id: SlotId) -> &mut Link {
        self.0.timer_link(id)
    }
}

#[inline]
fn tick_of(deadline: Tick) -> u64 {
    deadline >> TICK_SHIFT
}

#[derive(Debug)]
pub struct TimerWheel {
    buckets: Box<[List; LEVELS * SLOTS]>,
    occupied: [u64; LEVELS],
    /// The wheel tick up to which every bucket has been processed.
    elapsed: u64,
    /// Level 0 only: a lower bound of the deadlines in each bucket.
    earliest: [Tick; SLOTS],
    /// Level 0 only: bit `b` set when bucket `b` is in deadline order.
    sorted: u64,
    len: usize,
}

impl TimerWheel {
    /// A wheel whose clock starts at `now`.
    pub fn new(now: Tick) -> Self {
        TimerWheel {
            buckets: Box::new([List::default(); LEVELS * SLOTS]),
            occupied: [0; LEVELS],
            elapsed: tick_of(now),
            earliest: [NEVER; SLOTS],
            sorted: 0,
            len: 0,
        }
    }

    /// Number of scheduled nodes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Level and slot of a wheel tick `tick >= elapsed`.
    #[inline]
    fn position(&self, tick: u64) -> (usize, usize) {
        debug_assert!(
            tick >= self.elapsed,
            "tick {tick} before elapsed {}",
            self.elapsed
        );
        let differing = (tick ^ self.elapsed) | SLOT_MASK;
        let level = ((63 - differing.leading_zeros()) / SLOT_BITS) as usize;
        let slot = ((tick >> (SLOT_BITS * level as u32)) & SLOT_MASK) as usize;
        (level, slot)
    }

    /// The first wheel tick covered by `slot` of `level`, in the current
    /// rotation of that level.
    #[inline]
    fn bucket_start(&self, level: usize, slot: usize) -> u64 {
        let shift = SLOT_BITS * level as u32;
        let rotation = (self.elapsed >> (shift + SLOT_BITS)) << (shift + SLOT_BITS);
        rotation | ((slot as u64) << shift)
    }

    /// The bucket `id` is in (`level * 64 + slot`), or None when it is not
    /// in the wheel. The bucket follows from the deadline and `elapsed`;
    /// the node is on that bucket's list iff it has a predecessor there or
    /// is its head (a node off the wheel has a cleared link and a deadline
    /// of NEVER or one it was reaped or descheduled with).
    #[inline]
    fn bucket_of(&self, nodes: &mut impl TimerNodes, id: SlotId) -> Option<usize> {
        self.bucket_holding(nodes, id, id)
    }

    /// [`TimerWheel::bucket_of`] for a node now at `id` that the bucket's
    /// head may still know by `head_id`.
    #[inline]
    fn bucket_holding(
        &self,
        nodes: &mut impl TimerNodes,
        id: SlotId,
        head_id: SlotId,
    ) -> Option<usize> {
        let deadline = *nodes.deadline(id);
        if deadline == NEVER {
            return None;
        }
        let (level, slot) = self.position(tick_of(deadline).max(self.elapsed));
        let bucket = level * SLOTS + slot;
        let linked =
            nodes.timer_link(id).prev.is_some() || self.buckets[bucket].head == Some(head_id);
        linked.then_some(bucket)
    }

    /// Whether `id` is in the wheel.
    #[inline]
    pub fn is_scheduled(&self, nodes: &mut impl TimerNodes, id: SlotId) -> bool {
        self.bucket_of(nodes, id).is_some()
    }

    /// Puts `id` in the bucket of `deadline` (a deadline already past goes
    /// into the current bucket, to be reaped by the next `advance`).
    ///
    /// # Panics
    /// In debug builds, if `deadline` is [`NEVER`] or `id` is scheduled.
    #[inline]
    pub fn schedule(&mut self, nodes: &mut impl TimerNodes, id: SlotId, deadline: Tick) {
        debug_assert_ne!(deadline, NEVER, "NEVER deadlines are not scheduled");
        debug_assert!(!self.is_scheduled(nodes, id), "{id:?} already scheduled");
        let (level, slot) = self.position(tick_of(deadline).max(self.elapsed));
        let bucket = level * SLOTS + slot;
        if level == 0 {
            let bit = 1u64 << slot;
            match self.buckets[bucket].tail {
                None => {
                    self.earliest[slot] = deadline;
                    self.sorted |= bit;
                }
                Some(tail) => {
                    self.earliest[slot] = self.earliest[slot].min(deadline);
                    if deadline < *nodes.deadline(tail) {
                        self.sorted &= !bit;
                    }
                }
            }
        }
        *nodes.deadline(id) = deadline;
        self.buckets[bucket].push_back(&mut TimerLinks(nodes), id);
        self.occupied[level] |= 1 << slot;
        self.len += 1;
    }

    /// Takes `id` out of the wheel if it is there. O(1).
    #[inline]
    pub fn deschedule(&mut self, nodes: &mut impl TimerNodes, id: SlotId) {
        let Some(bucket) = self.bucket_of(nodes, id) else {
            return;
        };
        self.buckets[bucket].unlink(&mut TimerLinks(nodes), id);
        if self.buckets[bucket].is_empty() {
            self.occupied[bucket / SLOTS] &= !(1 << (bucket % SLOTS));
        }
        self.len -= 1;
    }

    /// Follows a node that moved from slot `from` to slot `to`, taking its
    /// deadline and link along (arena compaction). A node off the wheel
    /// needs nothing.
    pub fn relocate(&mut self, nodes: &mut impl TimerNodes, from: SlotId, to: SlotId) {
        if let Some(bucket) = self.bucket_holding(nodes, to, from) {
            self.buckets[bucket].relocate(&mut TimerLinks(nodes), from, to);
        }
    }

    /// The lowest non-empty level and its first occupied slot.
    #[inline]
    fn next_occupied(&self) -> Option<(usize, usize)> {
        let level = self.occupied.iter().position(|&bits| bits != 0)?;
        let slot = self.occupied[level].trailing_zeros() as usize;
        Some((level, slot))
    }

    /// True only when `advance(now)` would find nothing due (false means it
    /// must look: a passed coarse bucket may hold only later deadlines).
    /// O(levels).
    #[inline]
    pub fn nothing_due(&self, now: Tick) -> bool {
        if self.len == 0 {
            return true;
        }
        let Some((level, slot)) = self.next_occupied() else {
            return true;
        };
        let start = self.bucket_start(level, slot);
        let target = tick_of(now);
        start > target || (level == 0 && start == target && self.earliest[slot] > now)
    }

    /// Moves the wheel to `now`, descheduling every node whose deadline is
    /// `<= now` and appending it to `due`; nodes of passed buckets that are
    /// not due yet cascade to finer levels. Cost: O(due + cascaded + levels).
    pub fn advance(&mut self, nodes: &mut impl TimerNodes, now: Tick, due: &mut Vec<SlotId>) {
        let target = tick_of(now);
        while let Some((level, slot)) = self.next_occupied() {
            let start = self.bucket_start(level, slot);
            if start > target {
                break;
            }
            if level == 0 && start == target {
                if self.earliest[slot] <= now {
                    self.reap_current_bucket(nodes, slot, now, due);
                }
                break;
            }
            // The whole bucket lies at or before `target`: take it off first,
            // so that nodes rescheduled below never land in the list we walk.
            self.elapsed = start;
            let bucket = level * SLOTS + slot;
            let mut cursor = std::mem::take(&mut self.buckets[bucket]).head;
            self.occupied[level] &= !(1 << slot);
            while let Some(id) = cursor {
                cursor = std::mem::take(nodes.timer_link(id)).next;
                self.len -= 1;
                let deadline = *nodes.deadline(id);
                if deadline <= now {
                    due.push(id);
                } else {
                    self.schedule(nodes, id, deadline);
                }
            }
        }
        self.elapsed = self.elapsed.max(target);
    }

    /// Reaps the due nodes of the level-0 bucket that contains `now`.
    fn reap_current_bucket(
        &mut self,
        nodes: &mut impl TimerNodes,
        slot: usize,
        now: Tick,
        due: &mut Vec<SlotId>,
    ) {
        let bit = 1u64 << slot;
        let list = &mut self.buckets[slot];
        let mut earliest = NEVER;
        let mut cursor = list.head;
        while let Some(id) = cursor {
            cursor = nodes.timer_link(id).next;
            let deadline = *nodes.deadline(id);
            if deadline <= now {
                list.unlink(&mut TimerLinks(nodes), id);
                self.len -= 1;
                due.push(id);
            } else if self.sorted & bit != 0 {
                earliest = deadline;
                break;
            } else {
                earliest = earliest.min(deadline);
            }
        }
        self.earliest[slot] = earliest;
        if list.is_empty() {
            self.occupied[0] &= !bit;
        }
    }

    /// Forgets every node (their links are left as they are: the caller is
    /// dropping them too). Keeps the wheel's time.
    pub fn clear(&mut self) {
        self.buckets.fill(List::default());
        self.occupied = [0; LEVELS];
        self.earliest = [NEVER; SLOTS];
        self.sorted = 0;
        self.len = 0;
    }

    /// Checks every invariant in the module docs; returns the scheduled ids.
    ///
    /// # Panics
    /// On any inconsistency.
    pub fn validate(&self, nodes: &mut impl TimerNodes, limit: usize) -> Vec<SlotId> {
        let mut all = Vec::new();
        for level in 0..LEVELS {
            let group = (self.elapsed >> (SLOT_BITS * level as u32)) & SLOT_MASK;
            for slot in 0..SLOTS {
                let bucket = level * SLOTS + slot;
                let ids = self.buckets[bucket].collect(&mut TimerLinks(nodes), limit);
                let bit = self.occupied[level] & (1 << slot) != 0;
                assert_eq!(
                    bit,
                    !ids.is_empty(),
                    "occupied bit of bucket {level}/{slot}"
                );
                if ids.is_empty() {
                    continue;
                }
                if level == 0 {
                    assert!(slot as u64 >= group, "level 0 bucket {slot} behind elapsed");
                } else {
                    assert!(
                        slot as u64 > group,
                        "level {level} bucket {slot} not ahead of elapsed"
                    );
                }
                let mut previous = 0;
                for &id in &ids {
                    let deadline = *nodes.deadline(id);
                    assert_eq!(self.bucket_of(nodes, id), Some(bucket), "bucket of {id:?}");
                    assert_ne!(deadline, NEVER, "{id:?} scheduled with NEVER");
                    let expected = self.position(tick_of(deadline).max(self.elapsed));
                    assert_eq!(
                        expected,
                        (level, slot),
                        "{id:?} deadline {} misplaced",
                        deadline
                    );
                    if level == 0 {
                        assert!(self.earliest[slot] <= deadline, "earliest of {slot}");
                        if self.sorted & (1 << slot) != 0 {
                            assert!(previous <= deadline, "sorted bucket {slot} out of order");
                        }
                        previous = deadline;
                    }
                }
                all.extend(ids);
            }
        }
        assert_eq!(all.len(), self.len, "wheel length");
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use std::collections::{BTreeSet, HashSet};

    fn id(i: usize) -> SlotId {
        SlotId::from_index(i)
    }

    /// The model: the set of (deadline, id) scheduled.
    struct Harness {
        wheel: TimerWheel,
        nodes: TimerNodeVec,
        model: BTreeSet<(Tick, usize)>,
        now: Tick,
    }

    impl Harness {
        fn new(n: usize, now: Tick) -> Self {
            Harness {
                wheel: TimerWheel::new(now),
                nodes: TimerNodeVec(vec![TimerNode::default(); n]),
                model: BTreeSet::new(),
                now,
            }
        }

        fn schedule(&mut self, i: usize, deadline: Tick) {
            if self.wheel.is_scheduled(&mut self.nodes, id(i)) {
                self.deschedule(i);
            }
            self.wheel.schedule(&mut self.nodes, id(i), deadline);
            self.model.insert((deadline, i));
        }

        fn deschedule(&mut self, i: usize) {
            let node = self.nodes.0[i];
            if self.wheel.is_scheduled(&mut self.nodes, id(i)) {
                self.model.remove(&(node.deadline, i));
            }
            self.wheel.deschedule(&mut self.nodes, id(i));
        }

        fn advance(&mut self, now: Tick) {
            self.now = now;
            let mut due = Vec::new();
            if self.wheel.nothing_due(now) {
                assert!(
                    self.model.first().is_none_or(|&(d, _)| d > now),
                    "nothing_due lied at {now}"
                );
            }
            self.wheel.advance(&mut self.nodes, now, &mut due);
            let mut got: Vec<usize> = due.iter().map(|id| id.index()).collect();
            got.sort_unstable();
            let mut expected: Vec<usize> = Vec::new();
            while let Some(&(deadline, i)) = self.model.first() {
                if deadline > now {
                    break;
                }
                self.model.pop_first();
                expected.push(i);
            }
            expected.sort_unstable();
            assert_eq!(got, expected, "due set at now={now}");
        }

        fn validate(&mut self) {
            let ids: HashSet<usize> = self
                .wheel
                .validate(&mut self.nodes, usize::MAX)
                .iter()
                .map(|id| id.index())
                .collect();
            let model: HashSet<usize> = self.model.iter().map(|&(_, i)| i).collect();
            assert_eq!(ids, model);
        }
    }

    fn random_walk(seed: u64, start: Tick, steps: usize, n: usize, max_step: u64) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut h = Harness::new(n, start);
        for _ in 0..steps {
            match rng.random_range(0..10) {
                0..=4 => {
                    let i = rng.random_range(0..n);
                    let offset = match rng.random_range(0..6) {
                        0 => 0,
                        1 => rng.random_range(0..1 << TICK_SHIFT),
                        2 => rng.random_range(0..1 << 30),
                        3 => rng.random_range(0..1 << 45),
                        4 => rng.random(),
                        _ => rng.random_range(0..max_step),
                    };
                    let deadline = h.now.saturating_add(offset).min(NEVER - 1);
                    // Sometimes schedule in the past (an already-expired entry).
                    let deadline = if rng.random_ratio(1, 20) {
                        h.now.saturating_sub(offset)
                    } else {
                        deadline
                    };
                    h.schedule(i, deadline);
                }
                5..=6 => {
                    let i = rng.random_range(0..n);
                    h.deschedule(i);
                }
                _ => {
                    let step = match rng.random_range(0..8) {
                        0 => 0,
                        1 => 1,
                        2 => rng.random(),
                        3 => rng.random_range(0..1 << 40),
                        _ => rng.random_range(0..max_step),
                    };
                    let now = h.now.saturating_add(step).min(NEVER - 1);
                    h.advance(now);
                }
            }
            if rng.random_ratio(1, 50) {
                h.validate();
            }
        }
        h.validate();
        h.advance(NEVER - 1);
        assert!(h.wheel.is_empty());
        h.validate();
    }

    #[test]
    fn matches_model_from_zero() {
        for seed in 0..20 {
            random_walk(seed, 0, 5_000, 64, 1 << 24);
        }
    }

    #[test]
    fn matches_model_near_the_end_of_time() {
        for seed in 0..10 {
            random_walk(seed, NEVER - (1 << 40), 3_000, 64, 1 << 22);
            random_walk(seed, NEVER - 10, 500, 16, 4);
        }
    }

    #[test]
    fn matches_model_at_random_starts() {
        let mut rng = SmallRng::seed_from_u64(99);
        for seed in 0..10 {
            random_walk(seed, rng.random_range(0..NEVER / 2), 3_000, 128, 1 << 26);
        }
    }

    #[test]
    fn a_million_entries_expire_in_deadline_batches() {
        let n = 1_000_000;
        let mut rng = SmallRng::seed_from_u64(7);
        let mut h = Harness::new(n, 0);
        for i in 0..n {
            // Deadlines spread over about 17 minutes, some of them shared.
            h.schedule(i, rng.random_range(1..1 << 40));
        }
        for i in (0..n).step_by(3) {
            h.deschedule(i);
        }
        h.validate();
        let mut now = 0;
        while !h.model.is_empty() {
            now += rng.random_range(0..1 << 36);
            h.advance(now);
        }
        h.validate();
        assert!(h.wheel.is_empty());
    }

    #[test]
    fn nothing_due_costs_no_walk_in_a_big_wheel() {
        // The current bucket holds many entries not yet due: `advance` must
        // not touch them while `earliest` says so.
        let mut h = Harness::new(10_000, 0);
        for i in 0..10_000 {
            h.schedule(i, 500_000 + i as u64);
        }
        assert!(h.wheel.nothing_due(499_999));
        h.advance(499_999);
        h.advance(500_000);
        assert_eq!(h.model.len(), 9_999);
        h.validate();
    }

    #[test]
    fn sorted_buckets_pop_from_the_front_and_unsorted_are_walked() {
        let mut h = Harness::new(8, 0);
        for (i, d) in [(0, 100), (1, 200), (2, 300)] {
            h.schedule(i, d);
        }
        assert_ne!(h.wheel.sorted & 1, 0);
        h.schedule(3, 150);
        assert_eq!(h.wheel.sorted & 1, 0);
        h.advance(160);
        h.advance(250);
        h.advance(1 << TICK_SHIFT);
        h.validate();
        assert!(h.wheel.is_empty());
    }

    #[test]
    fn a_jump_of_years_reaps_everything_due() {
        let mut h = Harness::new(4, 0);
        h.schedule(0, 1);
        h.schedule(1, 1 << 50);
        h.schedule(2, NEVER - 1);
        h.advance(1 << 62);
        assert_eq!(h.model.len(), 1);
        h.validate();
        h.advance(NEVER - 1);
        assert!(h.wheel.is_empty());
    }
}
