//! The cache engine, in pure Rust: no Python, no clock, no user code.
//!
//! [`Cache`] keeps entries in an arena, finds them through an index of slot
//! ids keyed by the caller's hash, orders them for eviction with a policy,
//! and files every entry with a deadline in a hierarchical timing wheel.
//! Every operation takes `now` and appends the entries it let go to a
//! [`Released`] buffer instead of dropping them, so the caller decides when
//! their values are released (the Python binding calls `close()` only
//! after the engine returns).
//!
//! Keys are compared by a closure the caller passes (`eq`), so the engine
//! works for any key type, including Python objects it cannot hash itself.

mod arena;
mod entry;
mod index;
mod list;
#[cfg(any(test, fuzzing))]
pub mod model;
mod policy;
mod prefetch;
mod sizes;
pub mod time;
mod wheel;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use smallvec::SmallVec;

use self::arena::{Arena, SlotId};
use self::entry::Entry;
use self::index::{Index, IndexHash};
pub use self::policy::EvictionPolicy;
use self::policy::Policy;
pub use self::prefetch::prefetch;
use self::sizes::LargeSizes;
use self::time::{Nanos, LATEST_NOW, NEVER};
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
    /// As the entry was stored with (see [`NewEntry::needs_close`]).
    pub needs_close: bool,
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
    pub scan_interval: Nanos,
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
    pub deadline: Nanos,
    /// Whether the caller must close the value when the cache lets it go
    /// (the binding: the value has `close()`). The engine only hands it
    /// back, in [`ReleasedEntry::needs_close`].
    pub needs_close: bool,
}

/// The cache. Between operations these hold:
/// - every live slot of `entries` is filed in `index` under its stored
///   hash, and `index` files nothing else;
/// - an entry is in `wheel` exactly when its deadline is not [`NEVER`];
/// - under a bounded policy every entry is one of `policy`'s members;
/// - `bytes` is the sum of the entries' sizes, read through `large_sizes`
///   for those whose size does not fit their field;
/// - `latest_now` never decreases, and no deadline `<= latest_now` is
///   returned by a lookup;
/// - when a limit is set, `entries.len()` and `bytes` are within it.
#[derive(Debug)]
pub struct Cache<K, V> {
    entries: Arena<Entry<K, V>>,
    index: Index,
    wheel: TimerWheel,
    policy: Policy,
    config: Config,
    /// u128 so that unlimited caches of huge sizes cannot overflow.
    bytes: u128,
    /// When every due entry was last reaped (the `scan_interval` gate).
    last_scan: Nanos,
    /// The latest `now` seen: time never goes back for the engine.
    latest_now: Nanos,
    /// Reused buffer for the wheel's due ids.
    due: Vec<SlotId>,
    large_sizes: LargeSizes,
}

/// Whether a released entry is still filed in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Indexed {
    Yes,
    /// Taken out already, by the probe that found it or by a clear of the
    /// whole index.
    No,
}

impl<K, V> Cache<K, V> {
    /// A cache whose clock starts at `now`; `random` gets an OS-seeded RNG.
    #[must_use]
    pub fn new(config: Config, now: Nanos) -> Self {
        Self::with_rng(config, now, SmallRng::from_os_rng())
    }

    /// As [`Cache::new`] with a seeded RNG, for reproducible tests.
    #[must_use]
    pub fn with_seed(config: Config, now: Nanos, seed: u64) -> Self {
        Self::with_rng(config, now, SmallRng::seed_from_u64(seed))
    }

    fn with_rng(config: Config, now: Nanos, rng: SmallRng) -> Self {
        let now = now.min(LATEST_NOW);
        Cache {
            entries: Arena::new(),
            index: Index::default(),
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
            large_sizes: LargeSizes::default(),
        }
    }

    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Entries held, expired but unreaped ones included.
    #[inline]
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of the sizes of the entries held.
    #[inline]
    #[must_use]
    pub fn bytes(&self) -> u128 {
        self.bytes
    }

    /// Bytes of heap memory the cache's own structures hold (not the keys'
    /// and values' own memory, which the caller owns).
    #[must_use]
    pub fn heap_size(&self) -> usize {
        self.entries.heap_size()
            + self.index.heap_size()
            + self.wheel.heap_size()
            + self.due.capacity() * std::mem::size_of::<SlotId>()
            + self.large_sizes.heap_size()
    }

    /// False when the time cannot matter to a lookup: no entry has a
    /// deadline, and the automatic scan runs either always (interval 0) or
    /// never (interval [`NEVER`]), so a scan at a stale time is the same as
    /// one at the true time. The caller may then pass
    /// [`Cache::latest_now`] instead of reading its clock. With a finite
    /// interval the gate itself needs the true time (SPEC: the interval
    /// counts from the last scan, even one that found nothing).
    #[inline]
    #[must_use]
    pub fn needs_time(&self) -> bool {
        !self.wheel.is_empty()
            || (self.config.scan_interval != 0 && self.config.scan_interval != NEVER)
    }

    /// The latest `now` any operation has passed.
    #[inline]
    #[must_use]
    pub fn latest_now(&self) -> Nanos {
        self.latest_now
    }

    /// Clamps `now` into the engine's range and keeps it from going back.
    #[inline]
    fn observe(&mut self, now: Nanos) -> Nanos {
        self.latest_now = self.latest_now.max(now.min(LATEST_NOW));
        self.latest_now
    }

    /// The index hash of a caller's key hash, with the index already
    /// loading what a probe for it reads first.
    #[inline]
    fn start_probe(&self, hash: u64) -> IndexHash {
        let hash = IndexHash::of_key(hash);
        self.index.prefetch(hash);
        hash
    }

    #[inline]
    fn find(&self, hash: u64, eq: impl FnMut(&K) -> bool) -> Option<SlotId> {
        let hash = self.start_probe(hash);
        self.index.find(hash, holds_key(&self.entries, hash, eq))
    }

    /// The live value of a key; a hit counts as a use under LRU. An expired
    /// entry found here is reaped into `released`.
    #[inline]
    pub fn get(
        &mut self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> Option<&V> {
        let now = self.observe(now);
        self.auto_scan(now, released);
        let id = self.find(hash, eq)?;
        if self.entries.get(id).deadline() <= now {
            self.release(id, Indexed::Yes, ReleaseReason::Expired, released);
            return None;
        }
        self.policy.on_hit(&mut self.entries, id);
        Some(&self.entries.get(id).value)
    }

    /// True when a live entry holds the key. Changes nothing.
    #[inline]
    pub fn contains(&self, hash: u64, eq: impl FnMut(&K) -> bool, now: Nanos) -> bool {
        let now = now.min(LATEST_NOW).max(self.latest_now);
        self.find(hash, eq)
            .is_some_and(|id| self.entries.get(id).deadline() > now)
    }

    /// Stores a new entry. `eq` must match the new key. Refuses a key held
    /// by a live entry and a size over `max_bytes`; otherwise reaps an
    /// expired holder of the key, makes room and stores the entry.
    ///
    /// # Errors
    /// [`InsertError`], handing the key and value back, when it refuses.
    pub fn insert(
        &mut self,
        new: NewEntry<K, V>,
        eq: impl FnMut(&K) -> bool,
        now: Nanos,
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
            if self.entries.get(id).deadline() > now {
                return Err(InsertError::Occupied {
                    key: new.key,
                    value: new.value,
                });
            }
            self.release(id, Indexed::Yes, ReleaseReason::Expired, released);
        }
        self.make_room(1, new.size, now, released);
        self.store(new);
        Ok(())
    }

    /// Removes the key's entry and hands it back: reason `Deleted` when it
    /// was live, `Expired` when it had expired (it is reaped all the same).
    /// What the automatic scan reaped first goes to `released`. The entry
    /// comes back apart from `released` because a delete releases exactly
    /// one, and a push into the buffer and a drain out of it cost a delete
    /// more than the rest of its release (bench/README.md has the count).
    pub fn remove(
        &mut self,
        hash: u64,
        eq: impl FnMut(&K) -> bool,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> Option<ReleasedEntry<K, V>> {
        let now = self.observe(now);
        self.auto_scan(now, released);
        let hash = self.start_probe(hash);
        let id = self
            .index
            .remove_match(hash, holds_key(&self.entries, hash, eq))?;
        let reason = if self.entries.get(id).deadline() > now {
            ReleaseReason::Deleted
        } else {
            ReleaseReason::Expired
        };
        Some(self.take(id, Indexed::No, reason))
    }

    /// Reaps every expired entry, then enforces the limits.
    pub fn scan(&mut self, now: Nanos, released: &mut Released<K, V>) {
        let now = self.observe(now);
        self.expire_due(now, released);
        self.make_room(0, 0, now, released);
    }

    /// Removes every entry into `released`, giving the memory of the
    /// cache's tables back (as `dict.clear()` does).
    pub fn clear(&mut self, released: &mut Released<K, V>) {
        let entries = std::mem::take(&mut self.entries);
        released.reserve(entries.len());
        released.extend(entries.into_values().map(|entry| ReleasedEntry {
            needs_close: entry.needs_close(),
            key: entry.key,
            value: entry.value,
            reason: ReleaseReason::Cleared,
        }));
        self.index.reset();
        self.wheel.clear();
        self.policy.clear();
        self.large_sizes.reset();
        self.due = Vec::new();
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
    fn auto_scan(&mut self, now: Nanos, released: &mut Released<K, V>) {
        if now - self.last_scan >= self.config.scan_interval {
            self.expire_due(now, released);
        }
    }

    /// Reaps every entry due by `now`.
    #[inline]
    fn expire_due(&mut self, now: Nanos, released: &mut Released<K, V>) {
        self.last_scan = now;
        if !self.wheel.nothing_due(now) {
            self.expire_from_wheel(now, released);
        }
    }

    #[inline(never)]
    fn expire_from_wheel(&mut self, now: Nanos, released: &mut Released<K, V>) {
        let mut due = std::mem::take(&mut self.due);
        self.wheel.advance(&mut self.entries, now, &mut due);
        released.reserve(due.len());
        // Everything due (a burst of entries with one ttl): one clear of the
        // index instead of a random-access probe per entry.
        let indexed = if due.len() == self.entries.len() {
            self.index.clear();
            Indexed::No
        } else {
            Indexed::Yes
        };
        for id in due.drain(..) {
            self.release(id, indexed, ReleaseReason::Expired, released);
        }
        self.due = due;
    }

    /// Makes room for `items` more entries of `bytes` more units: expired
    /// entries go first, then victims by policy until the limits hold.
    /// Inline, as the test alone is what most inserts pay.
    #[inline(always)]
    fn make_room(&mut self, items: u64, bytes: u64, now: Nanos, released: &mut Released<K, V>) {
        if !self.over_limits(items, bytes) {
            return;
        }
        self.expire_due(now, released);
        while self.over_limits(items, bytes) {
            let victim = self
                .next_victim()
                .expect("over a limit with no entry to evict");
            self.release(victim, Indexed::Yes, ReleaseReason::Evicted, released);
        }
    }

    /// Files a new entry in every structure; there is room for it.
    #[inline]
    fn store(&mut self, new: NewEntry<K, V>) {
        let NewEntry {
            hash,
            key,
            value,
            size,
            deadline,
            needs_close,
        } = new;
        let hash = IndexHash::of_key(hash);
        let size_field = LargeSizes::field_of(size);
        let id = self
            .entries
            .insert(Entry::new(key, value, hash, needs_close, size_field));
        self.large_sizes.store(id, size);
        let entries = &self.entries;
        self.index
            .insert(hash, id, |other| entries.get(other).stored_hash());
        self.policy.on_insert(&mut self.entries, id);
        self.wheel.schedule(&mut self.entries, id, deadline);
        self.bytes += u128::from(size);
    }

    /// Whether `extra_items` more items of `extra_bytes` would break a limit.
    #[inline(always)]
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
    #[must_use]
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
            large_sizes.relocate(from, to, entry.size_field());
            index.repoint(entry.index_hash(), from, to);
            wheel.relocate(entries, from, to);
        });
    }

    /// [`Cache::take`] into `released`.
    #[inline]
    fn release(
        &mut self,
        id: SlotId,
        indexed: Indexed,
        reason: ReleaseReason,
        released: &mut Released<K, V>,
    ) {
        let entry = self.take(id, indexed, reason);
        released.push(entry);
    }

    /// The one way out of the cache: takes `id` out of every structure
    /// (the index too, unless it is out already) and hands its key and
    /// value back.
    #[inline]
    fn take(&mut self, id: SlotId, indexed: Indexed, reason: ReleaseReason) -> ReleasedEntry<K, V> {
        if indexed == Indexed::Yes {
            let hash = self.entries.get(id).index_hash();
            self.index.prefetch(hash);
            self.index.remove(hash, id);
        }
        self.wheel.deschedule(&mut self.entries, id);
        self.policy.on_remove(&mut self.entries, id);
        let entry = self.entries.remove(id);
        self.bytes -= u128::from(self.large_sizes.take(id, entry.size_field()));
        ReleasedEntry {
            needs_close: entry.needs_close(),
            key: entry.key,
            value: entry.value,
            reason,
        }
    }

    /// Keys in eviction order (LRU/FIFO: next victim first; random: slot
    /// order); empty for a cache without limits, which keeps no order.
    #[cfg(any(test, fuzzing))]
    #[must_use]
    pub fn eviction_order(&self) -> Vec<&K> {
        let ids = self.policy.validate(&self.entries).unwrap_or_default();
        ids.into_iter()
            .map(|id| &self.entries.get(id).key)
            .collect()
    }

    /// Checks every structure against the others (the invariants listed
    /// on [`Cache`]).
    ///
    /// # Panics
    /// On any inconsistency, naming it.
    #[cfg(any(test, fuzzing))]
    pub fn validate(&self) {
        self.entries.validate();
        let count = self.entries.len();
        assert_eq!(self.index.len(), count, "index size");
        let mut bytes = 0u128;
        let mut timed = 0;
        let mut large = 0;
        let ids: Vec<SlotId> = self.entries.iter().map(|(id, _)| id).collect();
        for &id in &ids {
            let entry = self.entries.get(id);
            large += usize::from(LargeSizes::is_elsewhere(entry.size_field()));
            bytes += u128::from(self.large_sizes.get(id, entry.size_field()));
            assert!(
                self.index.holds(entry.index_hash(), id),
                "{id:?} not indexed"
            );
            timed += usize::from(entry.deadline() != NEVER);
        }
        assert_eq!(bytes, self.bytes, "byte sum");
        assert_eq!(large, self.large_sizes.len(), "large size table");
        if let Some(mut members) = self.policy.validate(&self.entries) {
            members.sort_unstable();
            assert_eq!(members, ids, "policy members");
        }
        let scheduled = self.wheel.validate(&self.entries, count + 1);
        assert_eq!(scheduled.len(), timed, "wheel size");
        assert!(self.latest_now <= LATEST_NOW, "latest_now past the clock");
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
}

/// The test an index slot passes when it holds the entry of the key that
/// `eq` matches and whose index hash is `hash`.
#[inline]
fn holds_key<'a, K, V>(
    entries: &'a Arena<Entry<K, V>>,
    hash: IndexHash,
    mut eq: impl FnMut(&K) -> bool + 'a,
) -> impl FnMut(SlotId) -> bool + 'a {
    move |id| {
        let entry = entries.get(id);
        entry.stored_hash() == hash.stored && eq(&entry.key)
    }
}

#[cfg(test)]
mod tests;
