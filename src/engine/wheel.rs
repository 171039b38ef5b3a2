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
//! - a node is scheduled iff its deadline is not `NEVER`, and then it is in
//!   bucket `position(max(wheel_tick(deadline), elapsed))`;
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
use super::list::{Link, Links, LinksMut, List};
use super::time::{Nanos, NEVER};

/// log2 of the level-0 bucket width in nanoseconds.
pub(crate) const TICK_SHIFT: u32 = 20;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
const LEVELS: usize = 8;

/// A count of level-0 buckets (2^[`TICK_SHIFT`] ns each) on the caller's
/// clock: the unit the wheel files deadlines in, as a [`Nanos`] is the unit
/// deadlines are given in.
type WheelTick = u64;

#[inline]
fn wheel_tick(deadline: Nanos) -> WheelTick {
    deadline >> TICK_SHIFT
}

/// Access to the wheel's two fields of every node: its link in a bucket
/// list, and its exact deadline. The wheel is the only writer of both; a
/// node is in the wheel exactly when its deadline is not [`NEVER`].
pub(crate) trait TimerNodes {
    fn timer_link(&self, id: SlotId) -> &Link;
    fn timer_link_mut(&mut self, id: SlotId) -> &mut Link;
    fn deadline(&self, id: SlotId) -> Nanos;
    /// For the wheel alone: [`TimerWheel::schedule`], `reschedule`,
    /// `deschedule` and the due nodes of `advance`.
    fn set_deadline(&mut self, id: SlotId, deadline: Nanos);
}

/// The wheel's fields of one node, for wheels driven alone (tests, the
/// fuzzer). The cache keeps them as fields of its entry.
#[cfg(any(test, fuzzing))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimerNode {
    link: Link,
    deadline: Nanos,
}

#[cfg(any(test, fuzzing))]
impl Default for TimerNode {
    fn default() -> Self {
        TimerNode {
            link: Link::default(),
            deadline: NEVER,
        }
    }
}

/// Nodes in a plain vector indexed by slot id: a wheel driven alone.
#[cfg(any(test, fuzzing))]
#[derive(Debug)]
pub(crate) struct TimerNodeVec(pub(crate) Vec<TimerNode>);

#[cfg(any(test, fuzzing))]
impl TimerNodes for TimerNodeVec {
    fn timer_link(&self, id: SlotId) -> &Link {
        &self.0[id.index()].link
    }
    fn timer_link_mut(&mut self, id: SlotId) -> &mut Link {
        &mut self.0[id.index()].link
    }
    fn deadline(&self, id: SlotId) -> Nanos {
        self.0[id.index()].deadline
    }
    fn set_deadline(&mut self, id: SlotId, deadline: Nanos) {
        self.0[id.index()].deadline = deadline;
    }
}

/// The bucket-list view of the nodes: over `&N` to read, over `&mut N` to
/// relink.
struct TimerLinks<A>(A);

impl<N: TimerNodes> Links for TimerLinks<&N> {
    #[inline]
    fn link(&self, id: SlotId) -> &Link {
        self.0.timer_link(id)
    }
}

impl<N: TimerNodes> Links for TimerLinks<&mut N> {
    #[inline]
    fn link(&self, id: SlotId) -> &Link {
        self.0.timer_link(id)
    }
}

impl<N: TimerNodes> LinksMut for TimerLinks<&mut N> {
    #[inline]
    fn link_mut(&mut self, id: SlotId) -> &mut Link {
        self.0.timer_link_mut(id)
    }
}

/// The wheel. Its invariants are the module's (above), over these fields:
/// - `buckets[level * SLOTS + slot]` lists the nodes filed at that level and
///   slot, in filing order (for a `sorted` level-0 bucket, deadline order);
/// - `occupied[level]` has bit `slot` set iff that bucket is non-empty;
/// - `elapsed` is the wheel tick up to which every bucket has been
///   processed; it only grows;
/// - `earliest` and `sorted` describe the level-0 buckets only;
/// - `len` counts the nodes filed, which are exactly those whose deadline
///   is not [`NEVER`].
#[derive(Debug)]
pub(crate) struct TimerWheel {
    buckets: Box<[List; LEVELS * SLOTS]>,
    occupied: [u64; LEVELS],
    elapsed: WheelTick,
    /// A lower bound of the deadlines in each level-0 bucket.
    earliest: [Nanos; SLOTS],
    /// Bit `b` set when level-0 bucket `b` is in deadline order.
    sorted: u64,
    len: usize,
}

impl TimerWheel {
    /// A wheel whose clock starts at `now`.
    pub(crate) fn new(now: Nanos) -> Self {
        TimerWheel {
            buckets: Box::new([List::default(); LEVELS * SLOTS]),
            occupied: [0; LEVELS],
            elapsed: wheel_tick(now),
            earliest: [NEVER; SLOTS],
            sorted: 0,
            len: 0,
        }
    }

    /// Number of scheduled nodes.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Level and slot of a wheel tick `tick >= elapsed`.
    #[inline]
    fn position(&self, tick: WheelTick) -> (usize, usize) {
        debug_assert!(
            tick >= self.elapsed,
            "tick {tick} before elapsed {}",
            self.elapsed
        );
        let differing = (tick ^ self.elapsed) | SLOT_MASK;
        let level = (differing.ilog2() / SLOT_BITS) as usize;
        let slot = ((tick >> (SLOT_BITS * level as u32)) & SLOT_MASK) as usize;
        (level, slot)
    }

    /// The first wheel tick covered by `slot` of `level`, in the current
    /// rotation of that level.
    #[inline]
    fn bucket_start(&self, level: usize, slot: usize) -> WheelTick {
        let shift = SLOT_BITS * level as u32;
        let rotation = (self.elapsed >> (shift + SLOT_BITS)) << (shift + SLOT_BITS);
        rotation | ((slot as u64) << shift)
    }

    /// The bucket (`level * SLOTS + slot`) a node with `deadline` is filed
    /// in. It follows from the deadline and `elapsed`, so a node stores no
    /// bucket number (a past deadline is in the current bucket).
    #[inline]
    fn bucket_of(&self, deadline: Nanos) -> usize {
        debug_assert_ne!(deadline, NEVER, "NEVER is not filed");
        let (level, slot) = self.position(wheel_tick(deadline).max(self.elapsed));
        level * SLOTS + slot
    }

    /// Whether `id` is in the wheel.
    #[inline]
    pub(crate) fn is_scheduled(nodes: &impl TimerNodes, id: SlotId) -> bool {
        nodes.deadline(id) != NEVER
    }

    /// Gives `id`, not in the wheel, the deadline `deadline`, filing it in
    /// its bucket unless the deadline is [`NEVER`]. A deadline already past
    /// goes into the current bucket, to be reaped by the next `advance`.
    #[inline(always)]
    pub(crate) fn schedule(&mut self, nodes: &mut impl TimerNodes, id: SlotId, deadline: Nanos) {
        debug_assert!(!Self::is_scheduled(nodes, id), "{id:?} already scheduled");
        // Most entries have no deadline: that test is all they pay, inline.
        if deadline != NEVER {
            self.file(nodes, id, deadline);
        }
    }

    /// Files `id` in the bucket of `deadline`, not [`NEVER`].
    #[inline]
    fn file(&mut self, nodes: &mut impl TimerNodes, id: SlotId, deadline: Nanos) {
        let bucket = self.bucket_of(deadline);
        let (level, slot) = (bucket / SLOTS, bucket % SLOTS);
        if level == 0 {
            let bit = 1u64 << slot;
            match self.buckets[bucket].tail {
                None => {
                    self.earliest[slot] = deadline;
                    self.sorted |= bit;
                }
                Some(tail) => {
                    self.earliest[slot] = self.earliest[slot].min(deadline);
                    if deadline < nodes.deadline(tail) {
                        self.sorted &= !bit;
                    }
                }
            }
        }
        nodes.set_deadline(id, deadline);
        self.buckets[bucket].push_back(&mut TimerLinks(&mut *nodes), id);
        self.occupied[level] |= 1 << slot;
        self.len += 1;
    }

    /// Gives `id`, in the wheel or not, the deadline `deadline`.
    #[inline]
    pub(crate) fn reschedule(&mut self, nodes: &mut impl TimerNodes, id: SlotId, deadline: Nanos) {
        self.deschedule(nodes, id);
        self.schedule(nodes, id, deadline);
    }

    /// Takes `id` out of the wheel if it is there, leaving it the deadline
    /// [`NEVER`]. O(1).
    #[inline(always)]
    pub(crate) fn deschedule(&mut self, nodes: &mut impl TimerNodes, id: SlotId) {
        let deadline = nodes.deadline(id);
        if deadline == NEVER {
            return;
        }
        let bucket = self.bucket_of(deadline);
        debug_assert!(
            self.buckets[bucket].may_hold(&TimerLinks(&*nodes), id),
            "{id:?} (deadline {deadline}) is not in its bucket {bucket}"
        );
        self.buckets[bucket].unlink(&mut TimerLinks(&mut *nodes), id);
        if self.buckets[bucket].is_empty() {
            self.occupied[bucket / SLOTS] &= !(1 << (bucket % SLOTS));
        }
        nodes.set_deadline(id, NEVER);
        self.len -= 1;
    }

    /// Follows a node that moved from slot `from` to slot `to`, taking its
    /// deadline and link along (arena compaction). A node off the wheel
    /// needs nothing.
    pub(crate) fn relocate(&mut self, nodes: &mut impl TimerNodes, from: SlotId, to: SlotId) {
        let deadline = nodes.deadline(to);
        if deadline != NEVER {
            let bucket = self.bucket_of(deadline);
            self.buckets[bucket].relocate(&mut TimerLinks(&mut *nodes), from, to);
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
    pub(crate) fn nothing_due(&self, now: Nanos) -> bool {
        if self.len == 0 {
            return true;
        }
        let Some((level, slot)) = self.next_occupied() else {
            return true;
        };
        let start = self.bucket_start(level, slot);
        let target = wheel_tick(now);
        start > target || (level == 0 && start == target && self.earliest[slot] > now)
    }

    /// Moves the wheel to `now`, taking out every node whose deadline is
    /// `<= now` and appending it to `due` (its deadline becomes [`NEVER`]);
    /// nodes of passed buckets that are not due yet cascade to finer
    /// levels. Cost: O(due + cascaded + levels).
    pub(crate) fn advance(
        &mut self,
        nodes: &mut impl TimerNodes,
        now: Nanos,
        due: &mut Vec<SlotId>,
    ) {
        let target = wheel_tick(now);
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
                cursor = std::mem::take(nodes.timer_link_mut(id)).next;
                self.len -= 1;
                let deadline = nodes.deadline(id);
                nodes.set_deadline(id, NEVER);
                if deadline <= now {
                    due.push(id);
                } else {
                    self.file(nodes, id, deadline);
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
        now: Nanos,
        due: &mut Vec<SlotId>,
    ) {
        let bit = 1u64 << slot;
        let list = &mut self.buckets[slot];
        let mut earliest = NEVER;
        let mut cursor = list.head;
        while let Some(id) = cursor {
            cursor = nodes.timer_link(id).next;
            let deadline = nodes.deadline(id);
            if deadline <= now {
                list.unlink(&mut TimerLinks(&mut *nodes), id);
                nodes.set_deadline(id, NEVER);
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

    /// Forgets every node, for a caller that drops them all too (their
    /// fields are left as they are). Keeps the wheel's time.
    pub(crate) fn clear(&mut self) {
        self.buckets.fill(List::default());
        self.occupied = [0; LEVELS];
        self.earliest = [NEVER; SLOTS];
        self.sorted = 0;
        self.len = 0;
    }

    /// Bytes of heap the wheel holds: its buckets, whatever it files.
    pub(crate) fn heap_size(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
    }

    /// Checks every invariant in the module docs; returns the scheduled ids.
    ///
    /// # Panics
    /// On any inconsistency.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn validate(&self, nodes: &impl TimerNodes, limit: usize) -> Vec<SlotId> {
        let mut all = Vec::new();
        for level in 0..LEVELS {
            let group = (self.elapsed >> (SLOT_BITS * level as u32)) & SLOT_MASK;
            for slot in 0..SLOTS {
                let bucket = level * SLOTS + slot;
                let ids = self.buckets[bucket].collect(&TimerLinks(nodes), limit);
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
                    let deadline = nodes.deadline(id);
                    assert_ne!(deadline, NEVER, "{id:?} scheduled with NEVER");
                    assert_eq!(
                        self.bucket_of(deadline),
                        bucket,
                        "{id:?} deadline {deadline} misplaced"
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
    use crate::engine::model::WheelHarness;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// Level and slot of each wheel tick from `elapsed`, and the first tick
    /// of that bucket, at every level boundary.
    #[test]
    fn positions_at_every_level_boundary() {
        let wheel = TimerWheel::new(0);
        let mut cases = vec![(0, (0, 0)), (1, (0, 1)), (63, (0, 63))];
        for level in 1..LEVELS {
            let span = 1u64 << (SLOT_BITS * level as u32);
            // The first tick of the level, the last of its first bucket,
            // the first of its second, and its last.
            cases.push((span, (level, 1)));
            cases.push((2 * span - 1, (level, 1)));
            cases.push((2 * span, (level, 2)));
            cases.push((64 * span - 1, (level, 63)));
        }
        // The last wheel tick of the u64 nanosecond range: 44 bits, so the top
        // level uses 2 of its 6.
        cases.push((wheel_tick(NEVER - 1), (LEVELS - 1, 3)));
        for (tick, expected) in cases {
            assert_eq!(wheel.position(tick), expected, "tick {tick:#x}");
            let (level, slot) = expected;
            let start = wheel.bucket_start(level, slot);
            let width = 1u64 << (SLOT_BITS * level as u32);
            assert!(
                start <= tick && tick - start < width,
                "tick {tick:#x} outside its bucket at {start:#x}"
            );
        }
    }

    /// From a non-zero `elapsed`, the level is that of the highest group
    /// that differs, and a bucket is named by the tick's own bits.
    #[test]
    fn positions_relative_to_elapsed() {
        let elapsed: WheelTick = 0x0123_4567_89ab;
        let wheel = TimerWheel::new(elapsed << TICK_SHIFT);
        assert_eq!(wheel.elapsed, elapsed);
        let cases = [
            (elapsed, (0, (elapsed & SLOT_MASK) as usize)),
            // The rest of the level-0 rotation stays at level 0.
            (elapsed | SLOT_MASK, (0, 63)),
            // The next rotation is level 1, named by group 1 of the tick.
            (
                (elapsed | SLOT_MASK) + 1,
                (1, (((elapsed >> 6) + 1) & SLOT_MASK) as usize),
            ),
            // A tick differing only in group 3.
            (
                elapsed + (1 << 18),
                (3, (((elapsed >> 18) + 1) & SLOT_MASK) as usize),
            ),
            // A tick differing in the top group the wheel has.
            (
                elapsed | (1 << 42),
                (7, (((elapsed | (1 << 42)) >> 42) & SLOT_MASK) as usize),
            ),
        ];
        for (tick, expected) in cases {
            assert_eq!(wheel.position(tick), expected, "tick {tick:#x}");
        }
        // A level's bucket starts in the current rotation of that level.
        assert_eq!(wheel.bucket_start(0, 0), elapsed & !SLOT_MASK);
        assert_eq!(
            wheel.bucket_start(2, 5),
            (elapsed & !((1 << 18) - 1)) | (5 << 12)
        );
    }

    /// A deadline exactly on a bucket edge, one before and one after, falls
    /// due at exactly its nanosecond, from every level.
    #[test]
    fn deadlines_on_bucket_edges_fall_due_exactly() {
        for level in 0..LEVELS as u32 {
            let edge: Nanos = 1 << (TICK_SHIFT + SLOT_BITS * level);
            let mut h = WheelHarness::new(3, 0);
            for (index, deadline) in [edge - 1, edge, edge + 1].into_iter().enumerate() {
                h.schedule(index, deadline);
            }
            h.check();
            for now in [edge - 2, edge - 1, edge, edge + 1] {
                h.advance(now, true);
                h.check();
            }
            assert_eq!(h.len(), 0, "level {level}");
        }
    }

    fn random_walk(seed: u64, start: Nanos, steps: usize, n: usize, max_step: u64) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut h = WheelHarness::new(n, start);
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
                    h.advance(now, true);
                }
            }
            if rng.random_ratio(1, 50) {
                h.check();
            }
        }
        h.check();
        h.advance(NEVER - 1, true);
        assert!(h.wheel.is_empty());
        h.check();
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
        let mut h = WheelHarness::new(n, 0);
        for i in 0..n {
            // Deadlines spread over about 17 minutes, some of them shared.
            h.schedule(i, rng.random_range(1..1 << 40));
        }
        for i in (0..n).step_by(3) {
            h.deschedule(i);
        }
        h.check();
        let mut now = 0;
        while h.len() > 0 {
            now += rng.random_range(0..1 << 36);
            h.advance(now, true);
        }
        h.check();
        assert!(h.wheel.is_empty());
    }

    #[test]
    fn nothing_due_costs_no_walk_in_a_big_wheel() {
        // The current bucket holds many entries not yet due: `advance` must
        // not touch them while `earliest` says so.
        let mut h = WheelHarness::new(10_000, 0);
        for i in 0..10_000 {
            h.schedule(i, 500_000 + i as u64);
        }
        assert!(h.wheel.nothing_due(499_999));
        h.advance(499_999, true);
        h.advance(500_000, true);
        assert_eq!(h.len(), 9_999);
        h.check();
    }

    #[test]
    fn sorted_buckets_pop_from_the_front_and_unsorted_are_walked() {
        let mut h = WheelHarness::new(8, 0);
        for (i, d) in [(0, 100), (1, 200), (2, 300)] {
            h.schedule(i, d);
        }
        assert_ne!(h.wheel.sorted & 1, 0);
        h.schedule(3, 150);
        assert_eq!(h.wheel.sorted & 1, 0);
        h.advance(160, true);
        h.advance(250, true);
        h.advance(1 << TICK_SHIFT, true);
        h.check();
        assert!(h.wheel.is_empty());
    }

    #[test]
    fn a_jump_of_years_reaps_everything_due() {
        let mut h = WheelHarness::new(4, 0);
        h.schedule(0, 1);
        h.schedule(1, 1 << 50);
        h.schedule(2, NEVER - 1);
        h.advance(1 << 62, true);
        assert_eq!(h.len(), 1);
        h.check();
        h.advance(NEVER - 1, true);
        assert!(h.wheel.is_empty());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "is not in its bucket")]
    fn descheduling_a_node_its_deadline_does_not_place_is_caught() {
        let mut wheel = TimerWheel::new(0);
        let mut nodes = TimerNodeVec(vec![TimerNode::default(); 3]);
        let id = SlotId::from_index;
        wheel.schedule(&mut nodes, id(0), 10 << TICK_SHIFT);
        wheel.schedule(&mut nodes, id(1), 10 << TICK_SHIFT);
        wheel.schedule(&mut nodes, id(2), 20 << TICK_SHIFT);
        // Someone other than the wheel moves a deadline.
        nodes.set_deadline(id(0), 20 << TICK_SHIFT);
        wheel.deschedule(&mut nodes, id(0));
    }
}
