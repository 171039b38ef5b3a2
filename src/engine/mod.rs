//! The cache engine, in pure Rust: no Python, no clock, no user code.
//!
//! [`Cache`] keeps entries in an [`arena::Arena`], finds them through a
//! `hashbrown::HashTable` of slot ids keyed by the caller's hash, orders
//! them for eviction with a [`policy::Policy`], and files every entry with
//! a deadline in a [`wheel::TimerWheel`]. Every operation takes `now` and
//! appends the entries it let go to a [`Released`] buffer instead of
//! dropping them, so the caller decides when their values are released
//! (the Python binding calls `close()` only after the engine returns).
//!
//! Keys are compared by a closure the caller passes (`eq`), so the engine
//! works for any key type, including Python strings it cannot hash itself.

pub mod arena;
mod entry;
pub mod list;
pub mod model;
pub mod policy;
pub mod prefetch;
pub mod time;
pub mod wheel;

use hashbrown::{HashMap, HashTable};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use smallvec::SmallVec;

use self::arena::{Arena, SlotId};
pub use self::entry::Entry;
use self::entry::{IndexHash, SIZE_ELSEWHERE};
pub use self::policy::EvictionPolicy;
use self::policy::Policy;
use self::prefetch::prefetch;
use self::time::{Tick, LATEST_NOW, NEVER};
use self::wheel::TimerWheel;

/// Why an entry left the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseReason {
    Expired,
    Evicted,
    Deleted,
    Cleared,
}

/// An entry the cache let go, handed back to the caller.
#[derive(Debug)]
pub struct ReleasedEntry<K, V> {
    pub key: K,
    pub value: V,
    pub tag: bool,
    pub reason: ReleaseReason,
}

/// What one operation let go. Inline for the usual zero to two entries, so
/// a warm cache does not allocate per operation.
pub type Released<K, V> = SmallVec<[ReleasedEntry<K, V>; 2]>;

/// Why `insert` refused; the key and value come back untouched.
#[derive(Debug, PartialEq, Eq)]
pub enum InsertError<K, V> {
    /// A live entry holds the key.
    Occupied { key: K, value: V },
    /// The size alone is over `max_bytes`.
    TooLarge { key: K, value: V },
}

impl<K, V> InsertError<K, V> {
    /// The refused key and value, handed back to the caller.
    pub fn into_entry(self) -> (K, V) {
        match self {
            InsertError::Occupied { key, value } | InsertError::TooLarge { key, value } => {
                (key, value)
            }
        }
    }
}

/// Limits and timing a cache is made with; 0 means "no limit".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub policy: EvictionPolicy,
    pub max_items: u64,
    pub max_bytes: u64,
    /// Minimum time between automatic scans; [`NEVER`] for none.
    pub scan_interval: Tick,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            policy: EvictionPolicy::Lru,
            max_items: 0,
            max_bytes: 0,
            scan_interval: 0,
        }
    }
}

/// A new entry for [`Cache::insert`].
#[derive(Debug)]
pub struct NewEntry<K, V> {
    pub hash: u64,
    pub key: K,
    pub value: V,
    pub size: u64,
    /// Absolute deadline; [`NEVER`] for none.
    pub deadline: Tick,
    /// A flag handed back with the entry when it is released.
    pub tag: bool,
}

#[derive(Debug)]
pub struct Cache<K, V> {
    entries: Arena<Entry<K, V>>,
    index: HashTable<SlotId>,
    wheel: TimerWheel,
    policy: Policy,
    config: Config,
    /// Sum of the sizes held; u128 so that unlimited caches of huge sizes
    /// cannot overflow.
    bytes: u128,
    last_scan: Tick,
    /// The latest `now` seen: time never goes back for the engine.
    latest_now: Tick,
    /// Reused buffer for the wheel's due ids.
    due: Vec<SlotId>,
    /// Sizes that do not fit an entry's 32 bits (`SIZE_ELSEWHERE`): a size
    /// of four billion units or more is rare enough to cost a map lookup.
    large_sizes: HashMap<SlotId, u64>,
    /// Where the index's table lies, for [`Cache::prefetch_probe`].
    index_layout: IndexLayout,
}

/// The addresses hashbrown's table keeps its control bytes and slots at,
/// learnt from the last insert (the table moves only when an insert grows
/// it). Used only to prefetch, which is harmless at any address, so a
/// stale or wrong layout costs speed, never correctness.
#[derive(Clone, Copy, Debug, Default)]
struct IndexLayout {
    /// Address of the control bytes; slot `i` lies just below, at
    /// `ctrl - (i + 1) * size_of::<SlotId>()`. 0 for "do not prefetch".
    ctrl: usize,
    bucket_mask: usize,
}

/// hashbrown reads control bytes a group of 16 at a time (SSE2).
const GROUP: usize = 16;

/// The addresses of the first group a probe reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FirstProbe {
    /// Its control bytes.
    ctrl: usize,
    /// Its slots (the lowest address; they run up from here).
    slots: usize,
}

impl IndexLayout {
    /// A smaller index (5 bytes a bucket: under 320 KiB) stays in the
    /// CPU's caches, where the prefetch would only add its ~8 instructions.
    const PREFETCH_FROM_BUCKETS: usize = 1 << 16;

    /// The layout, from where the slot of bucket `bucket_index` is, in a
    /// table of `buckets` buckets; or "do not prefetch" for a small table.
    fn learn(bucket_index: usize, slot: *const SlotId, buckets: usize) -> Self {
        if buckets < Self::PREFETCH_FROM_BUCKETS {
            return IndexLayout::default();
        }
        IndexLayout {
            ctrl: slot.addr() + (bucket_index + 1) * std::mem::size_of::<SlotId>(),
            bucket_mask: buckets - 1,
        }
    }

    /// hashbrown probes from bucket `hash & bucket_mask` (its `h1` is the
    /// hash itself), and the slot of bucket `i` is the `i + 1`-th below
    /// the control bytes.
    #[inline]
    fn first_probe(self, hash: IndexHash) -> Option<FirstProbe> {
        if self.ctrl == 0 {
            return None;
        }
        let position = hash.full as usize & self.bucket_mask;
        Some(FirstProbe {
            ctrl: self.ctrl + position,
            slots: self
                .ctrl
                .wrapping_sub((position + GROUP) * std::mem::size_of::<SlotId>()),
        })
    }
}

impl<K, V> Cache<K, V> {
    /// A cache whose clock starts at `now`; `random` gets an OS-seeded RNG.
    pub fn new(config: Config, now: Tick) -> Self {
        Self::with_rng(config, now, SmallRng::from_os_rng())
    }

    /// As [`Cache::new`] with a seeded RNG, for reproducible tests.
    pub fn with_seed(config: Config, now: Tick, seed: u64) -> Self {
        Self::with_rng(config, now, SmallRng::seed_from_u64(seed))
    }

    fn with_rng(config: Config, now: Tick, rng: SmallRng) -> Self {
        let now = now.min(LATEST_NOW);
        Cache {
            entries: Arena::new(),
            index: HashTable::new(),
            wheel: TimerWheel::new(now),
            policy: Policy::new(
                config.policy,
                config.max_items > 0 || config.max_bytes > 0,
                rng,
            ),
            config,
            bytes: 0,
            last_scan: now,
            latest_now: now,
            due: Vec::new(),
            large_sizes: HashMap::new(),
            index_layout: IndexLayout::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Entries held, expired but unreaped ones included.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of the sizes of the entries held.
    #[inline]
    pub fn bytes(&self) -> u128 {
        self.bytes
    }

    /// False when the time cannot matter to a lookup: no entry has a
    /// deadline, and the automatic scan runs either always (interval 0) or
    /// never (interval [`NEVER`]), so a scan at a stale time is the same as
    /// one at the true time. The caller may then pass
    /// [`Cache::latest_now`] instead of reading its clock. With a finite
    /// interval the gate itself needs the true time (SPEC: the interval
    /// counts from the last scan, even one that found nothing).
    #[inline]
    pub fn needs_time(&self) -> bool {
        !self.wheel.is_empty()
            || (self.config.scan_interval != 0 && self.config.scan_interval != NEVER)
    }

    /// The latest `now` any operation has passed.
    #[inline]
    pub fn latest_now(&self) -> Tick {
        self.latest_now
    }

    /// Clamps `now` into the engine's range and keeps it from going back.
    #[inline]
    fn observe(&mut self, now: Tick) -> Tick {
        self.latest_now = self.latest_now.max(now.min(LATEST_NOW));
        self.latest_now
    }

    /// Starts loading the control group and the slot ids a probe for
    /// `hash` reads first. A lookup reads the group, then a slot id, then
    /// the entry, each a likely cache miss in a large cache; the first two
    /// addresses follow from the hash alone, so their misses can overlap.
    #[inline]
    fn prefetch_probe(&self, hash: IndexHash) {
        if let Some(probe) = self.index_layout.first_probe(hash) {
            prefetch(std::ptr::without_provenance(probe.ctrl), GROUP);
            prefetch(
                std::ptr::without_provenance(probe.slots),
                GROUP * std::mem::size_of::<SlotId>(),
            );
        }
    }

    /// The index hash of a caller's key hash, its first probe already
    /// being loaded (see [`Cache::prefetch_probe`]).
    #[inline]
    fn start_probe(&self, hash: u64) -> IndexHash {
        let hash = IndexHash::of_key(hash);
        self.prefetch_probe(hash);
        hash
    }

    #[inline]
    fn find(&self, hash: u64, eq: impl FnMut(&K) -> bool) -> Option<SlotId> {
        let hash = self.start_probe(hash);
        self.index
            .find(hash.full, holds_key(&self.entries, hash, eq))
            .copied()
    }

    /// The live value of a key; a hit counts as a use under LRU. An expired
    /// entry found here is reaped into `released`.
    #[inline]
    pub fn get(
        &mut self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
        now: Tick,
        released: &mut Released<K, V>,
    ) -> Option<&V> {
        let now = self.observe(now);
        self.auto_scan(now, released);
        let id = self.find(hash, eq)?;
        if self.entries.get(id).deadline <= now {
            self.release(id, ReleaseReason::Expired, released);
            return None;
        }
        self.policy.on_hit(&mut self.entries, id);
        Some(&self.entries.get(id).value)
    }

    /// True when a live entry holds the key. Changes nothing.
    #[inline]
    pub fn contains(&self, hash: u64, eq: impl FnMut(&K) -> bool, now: Tick) -> bool {
        let now = now.min(LATEST_NOW).max(self.latest_now);
        self.find(hash, eq)
            .is_some_and(|id| self.entries.get(id).deadline > now)
    }

    /// Stores a new entry. `eq` must match the new key. Refuses a key held
    /// by a live entry and a size over `max_bytes`; otherwise reaps an
    /// expired holder of the key, makes room (expired entries first, then
    /// victims by policy, never the new entry) and inserts.
    pub fn insert(
        &mut self,
        new: NewEntry<K, V>,
        eq: impl FnMut(&K) -> bool,
        now: Tick,
        released: &mut Released<K, V>,
    ) -> Result<(), InsertError<K, V>> {
        let now = self.observe(now);
        self.auto_scan(now, released);
        if self.config.max_bytes > 0 && new.size > self.config.max_bytes {
            return Err(InsertError::TooLarge {
                key: new.key,
                value: new.value,
            });
        }
        if let Some(id) = self.find(new.hash, eq) {
            if self.entries.get(id).deadline > now {
                return Err(InsertError::Occupied {
                    key: new.key,
                    value: new.value,
                });
            }
            self.release(id, ReleaseReason::Expired, released);
        }
        if self.over_limits(1, new.size) {
            self.reap_expired(now, released);
            while self.over_limits(1, new.size) {
                let victim = self
                    .next_victim()
                    .expect("over a limit with no entry to evict");
                self.release(victim, ReleaseReason::Evicted, released);
            }
        }
        let NewEntry {
            hash,
            key,
            value,
            size,
            deadline,
            tag,
        } = new;
        let hash = IndexHash::of_key(hash);
        let stored_size = u32::try_from(size)
            .ok()
            .filter(|&small| small != SIZE_ELSEWHERE)
            .unwrap_or(SIZE_ELSEWHERE);
        let id = self.entries.insert(Entry {
            key,
            value,
            hash_and_tag: Entry::<K, V>::pack_hash_and_tag(hash, tag),
            size: stored_size,
            deadline: NEVER,
            timer_link: Default::default(),
            order: Default::default(),
        });
        if stored_size == SIZE_ELSEWHERE {
            self.large_sizes.insert(id, size);
        }
        let entries = &self.entries;
        let inserted = self.index.insert_unique(hash.full, id, |&id| {
            IndexHash::of_short(entries.get(id).hash()).full
        });
        let (bucket_index, slot) = (inserted.bucket_index(), std::ptr::from_ref(inserted.get()));
        self.index_layout = IndexLayout::learn(bucket_index, slot, self.index.num_buckets());
        self.policy.on_insert(&mut self.entries, id);
        if deadline != NEVER {
            self.wheel.schedule(&mut self.entries, id, deadline);
        }
        self.bytes += u128::from(size);
        Ok(())
    }

    /// Removes the key's entry and hands it back: reason `Deleted` when it
    /// was live, `Expired` when it had expired (it is reaped all the same).
    /// What the automatic scan reaped first goes to `released`. The entry
    /// comes back apart from `released` because a delete releases exactly
    /// one, and a push into the buffer and a drain out of it cost more than
    /// the rest of the release.
    pub fn remove(
        &mut self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
        now: Tick,
        released: &mut Released<K, V>,
    ) -> Option<ReleasedEntry<K, V>> {
        let now = self.observe(now);
        self.auto_scan(now, released);
        // One probe finds and unindexes the entry (a delete is mostly
        // memory misses, and a second probe by slot id would double them).
        let hash = self.start_probe(hash);
        let found = self
            .index
            .find_entry(hash.full, holds_key(&self.entries, hash, eq))
            .ok()?;
        let (id, _) = found.remove();
        let reason = if self.entries.get(id).deadline > now {
            ReleaseReason::Deleted
        } else {
            ReleaseReason::Expired
        };
        Some(self.take_unindexed(id, reason))
    }

    /// Reaps every expired entry, then enforces the limits.
    pub fn scan(&mut self, now: Tick, released: &mut Released<K, V>) {
        let now = self.observe(now);
        self.reap_expired(now, released);
        while self.over_limits(0, 0) {
            let victim = self
                .next_victim()
                .expect("over a limit with no entry to evict");
            self.release(victim, ReleaseReason::Evicted, released);
        }
    }

    /// Removes every entry into `released`.
    pub fn clear(&mut self, released: &mut Released<K, V>) {
        released.reserve(self.entries.len());
        self.entries.drain_into(|entry| {
            let tag = entry.tag();
            released.push(ReleasedEntry {
                key: entry.key,
                value: entry.value,
                tag,
                reason: ReleaseReason::Cleared,
            });
        });
        self.index.clear();
        self.wheel.clear();
        self.policy.clear();
        self.large_sizes.clear();
        self.bytes = 0;
    }

    /// Visits every key and value (for the garbage collector).
    pub fn for_each(&self, mut visit: impl FnMut(&K, &V)) {
        for (_, entry) in self.entries.iter() {
            visit(&entry.key, &entry.value);
        }
    }

    /// The automatic scan at the start of `get`/`insert`/`remove`, gated by
    /// `scan_interval`. Nothing due costs a few bitmap tests, inline.
    #[inline]
    fn auto_scan(&mut self, now: Tick, released: &mut Released<K, V>) {
        if now - self.last_scan >= self.config.scan_interval {
            self.reap_expired(now, released);
        }
    }

    #[inline]
    fn reap_expired(&mut self, now: Tick, released: &mut Released<K, V>) {
        self.last_scan = now;
        if !self.wheel.nothing_due(now) {
            self.release_due(now, released);
        }
    }

    #[inline(never)]
    fn release_due(&mut self, now: Tick, released: &mut Released<K, V>) {
        let mut due = std::mem::take(&mut self.due);
        self.wheel.advance(&mut self.entries, now, &mut due);
        released.reserve(due.len());
        if due.len() == self.entries.len() {
            // Everything is due (a burst of entries with one ttl): one clear
            // of the index instead of a random-access probe per entry.
            self.index.clear();
            for id in due.drain(..) {
                self.release_unindexed(id, ReleaseReason::Expired, released);
            }
        } else {
            for id in due.drain(..) {
                self.release(id, ReleaseReason::Expired, released);
            }
        }
        self.due = due;
    }

    /// Whether `extra_items` more items of `extra_bytes` would break a limit.
    #[inline]
    fn over_limits(&self, extra_items: u64, extra_bytes: u64) -> bool {
        let items = self.entries.len() as u64 + extra_items;
        let bytes = self.bytes + u128::from(extra_bytes);
        (self.config.max_items > 0 && items > self.config.max_items)
            || (self.config.max_bytes > 0 && bytes > u128::from(self.config.max_bytes))
    }

    /// The entry the policy evicts next. A policy that draws arena slots
    /// gets a compacted arena when under half of it is occupied: a draw then
    /// hits an entry with probability over 1/2, and since the arena was
    /// last dense at least half its slots have been emptied, which pays for
    /// the O(slots) compaction.
    #[inline]
    fn next_victim(&mut self) -> Option<SlotId> {
        if self.policy.samples_slots() && self.entries.is_sparse() {
            self.compact();
        }
        self.policy.victim(&self.entries)
    }

    /// The key and value the next eviction would release, when the policy
    /// knows it without drawing, so that a caller who will drop them can
    /// prefetch them now (see [`prefetch`]). Changes nothing.
    #[inline]
    pub fn upcoming_victim(&self) -> Option<(&K, &V)> {
        let entry = self
            .entries
            .get(self.policy.upcoming_victim(&self.entries)?);
        Some((&entry.key, &entry.value))
    }

    /// Compacts the arena and re-points the index, the wheel and the side
    /// table of large sizes at every entry it moved. Only for a policy that
    /// keeps no ids of its own.
    #[cold]
    fn compact(&mut self) {
        debug_assert!(
            self.policy.samples_slots(),
            "the policy's ids would go stale"
        );
        let Cache {
            entries,
            index,
            wheel,
            large_sizes,
            ..
        } = self;
        entries.compact(|entries, from, to| {
            let entry = entries.get(to);
            let hash = IndexHash::of_short(entry.hash()).full;
            if entry.size == SIZE_ELSEWHERE {
                let size = large_sizes
                    .remove(&from)
                    .expect("a large size is in the side table");
                large_sizes.insert(to, size);
            }
            *index
                .find_mut(hash, |&id| id == from)
                .expect("a moved entry is indexed") = to;
            wheel.relocate(entries, from, to);
        });
    }

    /// Unlinks `id` from every structure and hands its key and value back.
    fn release(&mut self, id: SlotId, reason: ReleaseReason, released: &mut Released<K, V>) {
        let hash = IndexHash::of_short(self.entries.get(id).hash());
        self.prefetch_probe(hash);
        match self.index.find_entry(hash.full, |&other| other == id) {
            Ok(found) => {
                found.remove();
            }
            Err(_) => unreachable!("{id:?} missing from the index"),
        }
        self.release_unindexed(id, reason, released);
    }

    /// [`Cache::release`] for an entry already taken out of the index.
    #[inline]
    fn release_unindexed(
        &mut self,
        id: SlotId,
        reason: ReleaseReason,
        released: &mut Released<K, V>,
    ) {
        let entry = self.take_unindexed(id, reason);
        released.push(entry);
    }

    /// Unlinks `id`, already out of the index, from everything else, and
    /// hands its key and value back.
    #[inline]
    fn take_unindexed(&mut self, id: SlotId, reason: ReleaseReason) -> ReleasedEntry<K, V> {
        self.wheel.deschedule(&mut self.entries, id);
        self.policy.on_remove(&mut self.entries, id);
        let entry = self.entries.remove(id);
        let size = match entry.size {
            SIZE_ELSEWHERE => self
                .large_sizes
                .remove(&id)
                .expect("a large size is in the side table"),
            small => u64::from(small),
        };
        self.bytes -= u128::from(size);
        let tag = entry.tag();
        ReleasedEntry {
            key: entry.key,
            value: entry.value,
            tag,
            reason,
        }
    }

    /// Keys in eviction order (LRU/FIFO: next victim first; random: member
    /// order); empty for a cache without limits, which keeps no order. For
    /// tests.
    pub fn eviction_order(&mut self) -> Vec<&K> {
        let ids = self.policy.validate(&mut self.entries).unwrap_or_default();
        ids.into_iter()
            .map(|id| &self.entries.get(id).key)
            .collect()
    }

    /// Checks every structure against the others.
    ///
    /// # Panics
    /// On any inconsistency, naming it.
    pub fn validate(&mut self) {
        self.entries.validate();
        let count = self.entries.len();
        assert_eq!(self.index.len(), count, "index size");
        let mut bytes = 0u128;
        let mut timed = 0;
        let mut large = 0;
        let ids: Vec<SlotId> = self.entries.iter().map(|(id, _)| id).collect();
        for &id in &ids {
            let entry = self.entries.get(id);
            let size = match entry.size {
                SIZE_ELSEWHERE => {
                    large += 1;
                    *self.large_sizes.get(&id).expect("large size recorded")
                }
                small => u64::from(small),
            };
            bytes += u128::from(size);
            assert!(
                self.index
                    .find(IndexHash::of_short(entry.hash()).full, |&other| other == id)
                    .is_some(),
                "{id:?} not indexed"
            );
            let has_deadline = entry.deadline != NEVER;
            let scheduled = self.wheel.is_scheduled(&mut self.entries, id);
            assert_eq!(scheduled, has_deadline, "{id:?} wheel membership");
            timed += usize::from(scheduled);
        }
        assert_eq!(bytes, self.bytes, "byte sum");
        assert_eq!(large, self.large_sizes.len(), "large size table");
        if let Some(mut members) = self.policy.validate(&mut self.entries) {
            members.sort_unstable();
            assert_eq!(members, ids, "policy members");
        }
        let mut scheduled = self.wheel.validate(&mut self.entries, count + 1);
        scheduled.sort_unstable();
        assert_eq!(scheduled.len(), timed, "wheel size");
        if self.config.max_items > 0 {
            assert!(
                count as u64 <= self.config.max_items,
                "items over max_items"
            );
        }
        if self.config.max_bytes > 0 {
            assert!(
                self.bytes <= u128::from(self.config.max_bytes),
                "bytes over max_bytes"
            );
        }
    }

    /// Bytes of heap memory the cache's own structures hold: the arena's
    /// slots, the index table, the wheel's buckets, the `due` buffer and
    /// the side table of large sizes. What keys and values own is not
    /// counted. For the binding's `__sizeof__`.
    ///
    /// A straightforward version added from the binding's side; the engine
    /// refactor owns the exact one. The arena counts the slots it has used,
    /// not its Vec's capacity (the arena does not expose it), and the
    /// wheel's bucket count follows from its occupancy bitmaps, one `u64`
    /// a level, one bit a bucket.
    pub fn heap_size(&self) -> usize {
        use std::mem::size_of;
        let arena = self.entries.capacity_used() * arena::slot_size::<Entry<K, V>>();
        let wheel_buckets = wheel::LEVELS * u64::BITS as usize;
        let wheel = wheel_buckets * size_of::<list::List>();
        let due = self.due.capacity() * size_of::<SlotId>();
        arena + self.index.allocation_size() + wheel + due + self.large_sizes.allocation_size()
    }
}

/// The test an index slot passes when it holds the entry of the key that
/// `eq` matches and whose index hash is `hash`.
#[inline]
fn holds_key<'a, K, V>(
    entries: &'a Arena<Entry<K, V>>,
    hash: IndexHash,
    mut eq: impl FnMut(&K) -> bool + 'a,
) -> impl FnMut(&SlotId) -> bool + 'a {
    move |&id| {
        let entry = entries.get(id);
        entry.hash() == hash.short && eq(&entry.key)
    }
}

#[cfg(test)]
mod tests;
