//! W-TinyLFU, the policy of Caffeine (Einziger, Friedman and Manes): a
//! small LRU window admits every new entry; an entry the window lets go is
//! a candidate for the main space, a segmented LRU of probation and
//! protected entries, and gets in only if the frequency sketch estimates
//! it more popular than the main space's victim (probation's LRU end).
//! A hit in probation promotes to protected; protected's overflow is
//! demoted back to probation's most recent end.
//!
//! The window starts at 1% of the capacity and protected at 80% of the
//! rest; then the boundary between window and main space moves with the
//! workload, as ARC sizes its two lists: each region keeps the hashes of
//! the keys it let go lately (its ghosts), and a miss on a key in the
//! window's ghosts (a candidate that lost admission, or a window entry
//! let go, and was wanted again: a larger window would have hit) grows
//! the window, one in the main space's ghosts shrinks it. A shifting hot
//! set, whose new keys keep losing to the old ones' counts, so turns the
//! cache towards LRU within a few hundred misses, and a stable skewed one
//! keeps the window small. (Caffeine's hill climber, which measures the
//! hit ratio each sample period and steps the window by 6.25% of the
//! capacity, was tried first: on a hot set that shifts every few sample
//! periods it adapted too late, and on Zipf traces its noisy steps cost
//! a point or more of hit ratio; see `bench/hit_ratio.py`.)
//!
//! Sizes are in units: a cache limited by `max_bytes` sizes its regions in
//! the units its entries weigh, otherwise in entries.
//!
//! All three regions are lists over the entries' one order link; each
//! entry's region sits in a side vector by slot, one byte an entry so
//! that a hit's read of it stays in the CPU's caches, and under
//! `max_bytes` its units in another, which only a move between regions
//! reads.
//!
//! Protected is ordered as CLOCK orders a cache, not as an LRU: a hit
//! there only marks the entry referenced, and protected's overflow gives
//! the referenced entries at its least recent end a second chance (clears
//! the mark and moves each to the most recent end) before it demotes the
//! first unmarked one to probation. A hit, most often one in protected,
//! then writes one byte instead of the links of three entries. The cost
//! in hit ratio (`engine::tests::hit_ratio_table`) is on a shifting hot
//! set, whose formerly hot entries a second chance keeps for one more
//! round of protected: 0.1-0.2 points; none on the other traces.

use rand::rngs::SmallRng;
use rand::Rng;

use super::super::arena::{Arena, SlotId};
use super::super::entry::{Entry, OrderLinks};
use super::super::index::IndexHash;
use super::super::list::{Links, List};
use super::ghost::Ghosts;
use super::sketch::FrequencySketch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Region {
    Window = 0,
    Probation = 1,
    Protected = 2,
}

/// An entry's region (bits 0-1) and, in protected, whether it was hit
/// since it last went to protected's most recent end (bit 2).
#[derive(Clone, Copy, Debug, Default)]
struct Member(u8);

const REGION_MASK: u8 = 3;
const REFERENCED: u8 = 4;

impl Member {
    #[inline(always)]
    fn new(region: Region) -> Self {
        Member(region as u8)
    }

    #[inline(always)]
    fn region(self) -> Region {
        match self.0 & REGION_MASK {
            0 => Region::Window,
            1 => Region::Probation,
            _ => Region::Protected,
        }
    }

    #[inline(always)]
    fn is_referenced(self) -> bool {
        self.0 & REFERENCED != 0
    }
}

/// How many referenced entries one demotion from protected gives a second
/// chance at most before it demotes the least recent entry all the same:
/// without a bound, a demotion after every protected entry was hit would
/// walk them all.
const SECOND_CHANCES: u32 = 32;

/// A candidate that is at least this popular and still loses wins one
/// time in 128 at random: without it, an attacker who knows the hash
/// could keep a victim's estimate high and lock a hot key out for good.
const ADMIT_ATTACK_THRESHOLD: u64 = 6;

#[derive(Debug)]
pub(crate) struct TinyLfu {
    window: List,
    probation: List,
    protected: List,
    members: Vec<Member>,
    /// Each entry's units, by slot, under `max_bytes`; empty otherwise
    /// (every entry weighs one).
    units: Vec<u64>,
    window_units: u64,
    probation_units: u64,
    protected_units: u64,
    capacity: u64,
    /// Whether entries weigh their size (a `max_bytes` cache) or 1.
    sized_in_bytes: bool,
    window_max: u64,
    protected_max: u64,
    sketch: FrequencySketch,
    /// The first entry the current store's window overflow moved into
    /// probation that has not yet won admission; the candidates are it and
    /// the entries after it, at probation's most recent end. `None` outside
    /// a store's admission (see [`TinyLfu::prepare_admission`]).
    candidate: Option<SlotId>,
    /// The stored hash of the entry being stored, while it competes itself
    /// (it is larger than the whole window): the last candidate.
    incoming: Option<u32>,
    /// The stored hash of the key of the last miss, so that the store that
    /// usually follows it is not counted as a second access.
    last_miss: Option<u32>,
    /// The cache's lookups at the last miss: the clock ghosts are
    /// recorded by, to tell how long ago a key was let go.
    lookups: u64,
    /// The keys the window let go (rejected candidates and entries it
    /// evicted itself) and those the main space let go.
    window_ghosts: Ghosts,
    main_ghosts: Ghosts,
    rng: SmallRng,
}

/// The sketch's hash of a key, from the bits the entry stores.
#[inline(always)]
fn sketch_hash(stored: u32) -> u64 {
    u64::from(stored).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl TinyLfu {
    /// A policy for `capacity` units, in bytes when `sized_in_bytes`;
    /// `max_items` bounds the sketch's size (0: the cache has no item
    /// limit, and the sketch grows with it).
    pub(crate) fn new(capacity: u64, sized_in_bytes: bool, max_items: u64, rng: SmallRng) -> Self {
        let capacity = capacity.max(1);
        let window_max = capacity.div_ceil(100);
        let main = capacity - window_max;
        TinyLfu {
            window: List::default(),
            probation: List::default(),
            protected: List::default(),
            members: Vec::new(),
            units: Vec::new(),
            window_units: 0,
            probation_units: 0,
            protected_units: 0,
            capacity,
            sized_in_bytes,
            window_max,
            protected_max: protected_share(main),
            sketch: FrequencySketch::new(max_items),
            candidate: None,
            incoming: None,
            last_miss: None,
            lookups: 0,
            window_ghosts: Ghosts::default(),
            main_ghosts: Ghosts::default(),
            rng,
        }
    }

    #[inline(always)]
    fn region(&self, id: SlotId) -> Region {
        self.members[id.index()].region()
    }

    fn units_of(&self, id: SlotId) -> u64 {
        if self.sized_in_bytes {
            self.units[id.index()]
        } else {
            1
        }
    }

    /// Records `id` in `region`, not referenced.
    #[inline(always)]
    fn set_region(&mut self, id: SlotId, region: Region) {
        self.members[id.index()] = Member::new(region);
    }

    fn list_mut(&mut self, region: Region) -> (&mut List, &mut u64) {
        match region {
            Region::Window => (&mut self.window, &mut self.window_units),
            Region::Probation => (&mut self.probation, &mut self.probation_units),
            Region::Protected => (&mut self.protected, &mut self.protected_units),
        }
    }

    /// Moves `id` from its region to the most recent end of `to`.
    fn move_to<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, id: SlotId, to: Region) {
        let (units, region) = (self.units_of(id), self.region(id));
        let links = &mut OrderLinks(entries);
        let (from_list, from_units) = self.list_mut(region);
        from_list.unlink(links, id);
        *from_units -= units;
        let (to_list, to_units) = self.list_mut(to);
        to_list.push_back(links, id);
        *to_units += units;
        self.set_region(id, to);
    }

    /// A new entry of `size`: the most recent of the window; the window's
    /// overflow goes to probation (where an entry larger than the window
    /// goes itself, having won its admission). Out of line, as are the
    /// other hooks the policy's dispatch calls: inlined there, they slowed
    /// the LRU paths.
    #[inline(never)]
    pub(crate) fn insert<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, id: SlotId, size: u64) {
        let units = if self.sized_in_bytes { size } else { 1 };
        let index = id.index();
        if index >= self.members.len() {
            self.members.resize(index + 1, Member::default());
            if self.sized_in_bytes {
                self.units.resize(index + 1, 0);
            }
        }
        if self.sized_in_bytes {
            self.units[index] = units;
        }
        self.set_region(id, Region::Window);
        self.window.push_back(&mut OrderLinks(&mut *entries), id);
        self.window_units += units;
        self.count_store(entries.get(id).stored_hash());
        self.sketch.grow_for(entries.len() as u64);
        self.overflow_window(entries, 0, false);
    }

    /// Counts a store of the key of `stored` in the sketch, unless it
    /// follows a miss of that key (counted already: one access).
    fn count_store(&mut self, stored: u32) {
        if self.last_miss.take() != Some(stored) {
            self.sketch.increment(sketch_hash(stored));
        }
    }

    /// Begins the admission of an entry of `size` whose key has the stored
    /// hash `stored`, about to be stored in a full cache: the window makes
    /// room for it, and what it lets go goes to probation as candidates,
    /// to compete with the main space's victims (see
    /// [`TinyLfu::admission_victim`]). An entry larger than the whole
    /// window competes itself, after them.
    pub(crate) fn prepare_admission<K, V>(
        &mut self,
        entries: &mut Arena<Entry<K, V>>,
        size: u64,
        stored: u32,
    ) {
        let units = if self.sized_in_bytes { size } else { 1 };
        // Counted now, for the contest; `insert` then counts it no more.
        self.count_store(stored);
        self.last_miss = Some(stored);
        self.candidate = None;
        self.overflow_window(entries, units, true);
        self.incoming = (units > self.window_max).then_some(stored);
    }

    /// Moves the window's least recent entries to probation until the
    /// window fits its size with `room` units to spare. During an
    /// admission (`candidates`) the first one moved is the candidate.
    fn overflow_window<K, V>(
        &mut self,
        entries: &mut Arena<Entry<K, V>>,
        room: u64,
        candidates: bool,
    ) {
        while self.window_units.saturating_add(room) > self.window_max {
            let Some(oldest) = self.window.head else {
                break;
            };
            self.move_to(entries, oldest, Region::Probation);
            if candidates {
                self.candidate.get_or_insert(oldest);
            }
        }
    }

    /// Protected's least recent entries back to probation until protected
    /// fits its size, but for referenced ones: a second chance.
    fn demote_protected<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>) {
        let mut chances = SECOND_CHANCES;
        while self.protected_units > self.protected_max {
            let Some(oldest) = self.oldest_protected(entries, &mut chances) else {
                break;
            };
            self.move_to(entries, oldest, Region::Probation);
        }
    }

    /// Protected's least recent entry, once the referenced entries at that
    /// end have had their second chance, `chances` of them at most
    /// (counted down).
    fn oldest_protected<K, V>(
        &mut self,
        entries: &mut Arena<Entry<K, V>>,
        chances: &mut u32,
    ) -> Option<SlotId> {
        loop {
            let oldest = self.protected.head?;
            if *chances == 0 || !self.members[oldest.index()].is_referenced() {
                return Some(oldest);
            }
            *chances -= 1;
            self.protected
                .move_to_back(&mut OrderLinks(&mut *entries), oldest);
            self.set_region(oldest, Region::Protected);
        }
    }

    /// A hit on `id`, whose key has `hash`.
    #[inline(never)]
    pub(crate) fn hit<K, V>(
        &mut self,
        entries: &mut Arena<Entry<K, V>>,
        id: SlotId,
        hash: IndexHash,
    ) {
        debug_assert_eq!(entries.get(id).stored_hash(), hash.stored, "the hit's hash");
        let member = &mut self.members[id.index()];
        let protected = member.region() == Region::Protected;
        if protected {
            member.0 |= REFERENCED;
        }
        let period_over = self.sketch.record(sketch_hash(hash.stored));
        if period_over || !protected {
            self.finish_hit(entries, id, period_over);
        }
    }

    /// The rest of a hit outside protected or at the end of the sketch's
    /// sample period: out of line, so that the usual hit, in protected,
    /// needs few registers and a small stack frame.
    #[inline(never)]
    fn finish_hit<K, V>(
        &mut self,
        entries: &mut Arena<Entry<K, V>>,
        id: SlotId,
        period_over: bool,
    ) {
        if period_over {
            self.sketch.age();
        }
        match self.region(id) {
            Region::Protected => {}
            Region::Window => self.window.move_to_back(&mut OrderLinks(entries), id),
            Region::Probation => {
                self.move_to(entries, id, Region::Protected);
                self.demote_protected(entries);
            }
        }
    }

    #[inline(never)]
    pub(crate) fn miss<K, V>(
        &mut self,
        entries: &mut Arena<Entry<K, V>>,
        hash: IndexHash,
        lookups: u64,
    ) {
        self.sketch.increment(sketch_hash(hash.stored));
        self.last_miss = Some(hash.stored);
        self.lookups = lookups;
        self.resize_by_ghosts(entries, hash.stored);
    }

    /// ARC's rule: a miss on a key the window let go grows the window, one
    /// on a key the main space let go shrinks it, by one entry's units
    /// times the ratio of the other ghosts to these (at least one).
    #[inline]
    fn resize_by_ghosts<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, stored: u32) {
        let grow = if let Some(let_go_at) = self.window_ghosts.take(stored) {
            // A key back after more lookups than the cache holds entries
            // (a loop a little larger than the cache) misses in an LRU
            // window of any size: it speaks for the main space, whose
            // frequency filter can keep part of such a loop (loop 1.1x at
            // 100 entries: 0.2% when it grew the window instead).
            if self.lookups - let_go_at > entries.len() as u64 {
                return;
            }
            true
        } else if self.main_ghosts.take(stored).is_some() {
            false
        } else {
            return;
        };
        let (these, others) = if grow {
            (self.window_ghosts.len(), self.main_ghosts.len())
        } else {
            (self.main_ghosts.len(), self.window_ghosts.len())
        };
        let ratio = (others / these.max(1)).max(1) as u64;
        // Shrinking steps twice as far as growing: the frequency-filtered
        // main space is the better default, and a recency-heavy trace
        // keeps proving its case with every miss on a ghost.
        let steps = if grow { ratio } else { 2 * ratio };
        let units = self.mean_units(entries.len()).saturating_mul(steps);
        if grow {
            self.grow_window(entries, units);
        } else {
            self.shrink_window(entries, units);
        }
    }

    /// The mean units of an entry held (1 when the cache counts items).
    fn mean_units(&self, len: usize) -> u64 {
        let held = self.window_units + self.probation_units + self.protected_units;
        (held / (len as u64).max(1)).max(1)
    }

    #[inline(never)]
    pub(crate) fn remove<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, id: SlotId) {
        if self.candidate == Some(id) {
            self.candidate = OrderLinks(&*entries).link(id).next;
        }
        let (units, region) = (self.units_of(id), self.region(id));
        let (list, region_units) = self.list_mut(region);
        list.unlink(&mut OrderLinks(entries), id);
        *region_units -= units;
    }

    /// The entry to let go next, outside an admission: probation's least
    /// recent entry, then protected's, then the window's.
    #[inline(never)]
    pub(crate) fn victim<K, V>(&mut self, entries: &Arena<Entry<K, V>>) -> Option<SlotId> {
        let victim = self.oldest_of_all()?;
        let ghosts = if self.region(victim) == Region::Window {
            &mut self.window_ghosts
        } else {
            &mut self.main_ghosts
        };
        ghosts.record(
            entries.get(victim).stored_hash(),
            ghost_capacity(entries),
            self.lookups,
        );
        Some(victim)
    }

    /// Visits the members in the order successive [`TinyLfu::victim`]s
    /// would take them: probation, then protected, then the window, each
    /// least recent first.
    pub(crate) fn for_each_in_victim_order<K, V>(
        &self,
        entries: &Arena<Entry<K, V>>,
        mut visit: impl FnMut(SlotId),
    ) {
        for list in [self.probation, self.protected, self.window] {
            list.for_each(&OrderLinks(entries), &mut visit);
        }
    }

    fn oldest_of_all(&self) -> Option<SlotId> {
        self.probation
            .head
            .or(self.protected.head)
            .or(self.window.head)
    }

    /// The entry to let go next during an admission (see
    /// [`TinyLfu::prepare_admission`]), or `Rejected` for the entry being
    /// stored. While a candidate is left, it and probation's least recent
    /// entry compete and the less popular goes; a candidate that wins stays
    /// in probation and the next one competes, the entry being stored last
    /// when it competes at all. Otherwise as [`TinyLfu::victim`].
    #[inline(never)]
    pub(crate) fn admission_victim<K, V>(&mut self, entries: &Arena<Entry<K, V>>) -> Admitted {
        let hash_of = |id: SlotId| entries.get(id).stored_hash();
        let capacity = ghost_capacity(entries);
        let oldest = self.probation.head;
        let verdict = match (self.candidate, oldest) {
            // Only candidates are left in probation: nothing to beat.
            (Some(candidate), Some(oldest)) if candidate == oldest => Admitted::Evict(candidate),
            (Some(candidate), Some(oldest)) => {
                let (challenger, holder) = (hash_of(candidate), hash_of(oldest));
                if self.admit(challenger, holder) {
                    self.candidate = OrderLinks(entries).link(candidate).next;
                    self.main_ghosts.record(holder, capacity, self.lookups);
                    return Admitted::Evict(oldest);
                }
                Admitted::Evict(candidate)
            }
            _ => match (self.incoming, self.oldest_of_all()) {
                (Some(incoming), Some(oldest)) if self.admit(incoming, hash_of(oldest)) => {
                    self.main_ghosts
                        .record(hash_of(oldest), capacity, self.lookups);
                    return Admitted::Evict(oldest);
                }
                (Some(incoming), _) => {
                    self.window_ghosts.record(incoming, capacity, self.lookups);
                    // Not stored after all: a later store of it counts.
                    self.last_miss = None;
                    return Admitted::Rejected;
                }
                (None, Some(oldest)) => {
                    self.main_ghosts
                        .record(hash_of(oldest), capacity, self.lookups);
                    return Admitted::Evict(oldest);
                }
                (None, None) => return Admitted::Nothing,
            },
        };
        if let Admitted::Evict(loser) = verdict {
            self.window_ghosts
                .record(hash_of(loser), capacity, self.lookups);
        }
        verdict
    }

    /// Whether the key of `challenger` (stored hash bits) beats that of
    /// `holder` by the sketch's estimates.
    fn admit(&mut self, challenger: u32, holder: u32) -> bool {
        let candidate = self.sketch.frequency(sketch_hash(challenger));
        let victim = self.sketch.frequency(sketch_hash(holder));
        self.wins(candidate, victim)
    }

    fn wins(&mut self, candidate: u64, victim: u64) -> bool {
        if candidate > victim {
            return true;
        }
        candidate >= ADMIT_ATTACK_THRESHOLD && self.rng.random_range(0..128) == 0
    }

    /// Ends the current store's admission: what is left of its candidates
    /// won their place.
    pub(crate) fn end_admission(&mut self) {
        self.candidate = None;
        self.incoming = None;
    }

    /// Moves `units` of size from protected to the window, then fills the
    /// window from the main space's least recent entries.
    fn grow_window<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, units: u64) {
        // The main space keeps 1% at least: without one, no main ghost
        // could ever shrink the window back.
        let main_min = self.capacity.div_ceil(100);
        let units = units.min(self.capacity.saturating_sub(main_min + self.window_max));
        if units == 0 {
            return;
        }
        self.window_max += units;
        self.protected_max = protected_share(self.capacity - self.window_max);
        self.demote_protected(entries);
        let mut chances = SECOND_CHANCES;
        loop {
            let oldest = match self.probation.head {
                Some(oldest) => oldest,
                None => match self.oldest_protected(entries, &mut chances) {
                    Some(oldest) => oldest,
                    None => break,
                },
            };
            if self.window_units + self.units_of(oldest) > self.window_max {
                break;
            }
            self.move_to(entries, oldest, Region::Window);
        }
    }

    /// Moves `units` of size from the window to protected; the window's
    /// overflow goes to probation.
    fn shrink_window<K, V>(&mut self, entries: &mut Arena<Entry<K, V>>, units: u64) {
        let units = units.min(self.window_max.saturating_sub(1));
        if units == 0 {
            return;
        }
        self.window_max -= units;
        self.protected_max = protected_share(self.capacity - self.window_max);
        while self.window_units > self.window_max {
            let Some(oldest) = self.window.head else {
                break;
            };
            self.move_to(entries, oldest, Region::Probation);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.window = List::default();
        self.probation = List::default();
        self.protected = List::default();
        self.members = Vec::new();
        self.units = Vec::new();
        self.window_units = 0;
        self.probation_units = 0;
        self.protected_units = 0;
        self.candidate = None;
        self.incoming = None;
        self.window_ghosts.clear();
        self.main_ghosts.clear();
    }

    pub(crate) fn heap_size(&self) -> usize {
        self.members.capacity() * std::mem::size_of::<Member>()
            + self.units.capacity() * std::mem::size_of::<u64>()
            + self.sketch.heap_size()
            + self.window_ghosts.heap_size()
            + self.main_ghosts.heap_size()
    }

    /// Every member, window first, then probation, then protected.
    ///
    /// # Panics
    /// On an entry in a region its tag does not name, unit sums that do
    /// not add up, a region over its size, or region sizes over capacity.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn validate<K, V>(&self, entries: &Arena<Entry<K, V>>) -> Vec<SlotId> {
        let limit = entries.len() + 1;
        let mut all = Vec::new();
        for (list, region, units) in [
            (self.window, Region::Window, self.window_units),
            (self.probation, Region::Probation, self.probation_units),
            (self.protected, Region::Protected, self.protected_units),
        ] {
            let members = list.collect(&OrderLinks(entries), limit);
            let mut sum = 0;
            for &id in &members {
                assert_eq!(self.region(id), region, "{id:?} in the wrong region");
                sum += self.units_of(id);
            }
            assert_eq!(sum, units, "{region:?} units");
            if region != Region::Protected {
                assert!(
                    members
                        .iter()
                        .all(|&id| !self.members[id.index()].is_referenced()),
                    "a {region:?} entry marked referenced"
                );
            }
            all.extend(members);
        }
        assert!(self.window_units <= self.window_max, "window over its size");
        assert!(
            self.protected_units <= self.protected_max,
            "protected over its size"
        );
        assert!(
            self.window_max + self.protected_max <= self.capacity,
            "regions over capacity"
        );
        assert!(self.window_max >= 1, "window below one unit");
        assert_eq!(self.candidate, None, "a candidate outside admission");
        assert_eq!(self.incoming, None, "an incoming entry outside admission");
        self.sketch.validate();
        all
    }
}

/// What an admission lets go next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// This entry, to make room.
    Evict(SlotId),
    /// The entry being stored: it lost its admission.
    Rejected,
    /// Nothing is left to let go.
    Nothing,
}

/// Each ghost history remembers half the entries held: ghosts that
/// remember the whole cache's worth answer for a window twice as large,
/// which on a stable skewed trace grew it past its best size.
fn ghost_capacity<K, V>(entries: &Arena<Entry<K, V>>) -> usize {
    (entries.len() / 2).max(1)
}

/// Protected's size in a main space of `main` units: 80%, rounded down.
fn protected_share(main: u64) -> u64 {
    u64::try_from(u128::from(main) * 4 / 5).unwrap_or(u64::MAX)
}
