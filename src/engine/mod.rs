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
mod snapshot;
pub mod time;
mod wheel;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use smallvec::SmallVec;

use self::arena::{Arena, SlotId};
use self::entry::Entry;
use self::index::{Index, IndexHash};
pub use self::policy::EvictionPolicy;
use self::policy::{Admitted, Policy};
pub use self::prefetch::prefetch;
use self::sizes::LargeSizes;
pub use self::snapshot::{ExportedEntry, RestoredEntry};
use self::time::{Nanos, LATEST_NOW, NEVER};
use self::wheel::TimerWheel;

/// Why an entry left the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseReason {
    Expired,
    Evicted,
    /// Removed by the caller (`remove`).
    Deleted,
    /// Replaced by [`Cache::put`] of an equal key.
    Replaced,
    Cleared,
    /// Let go by admission at its own store (`tinylfu`): the entry lost to
    /// the main space's victim.
    Rejected,
}

impl ReleaseReason {
    const COUNT: usize = 6;
}

/// How a stored key compares with the key an operation looks for, as the
/// caller's comparison answers. `Unknown` is for a comparison the caller
/// cannot make while the engine is borrowed (it would run user code): an
/// operation that meets one and finds no `Same` key changes nothing and
/// returns [`Undecided`], so that the caller can compare the candidates
/// (see [`Cache::candidates`]) and start the operation again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMatch {
    Same,
    Different,
    Unknown,
}

impl From<bool> for KeyMatch {
    #[inline]
    fn from(same: bool) -> Self {
        if same {
            KeyMatch::Same
        } else {
            KeyMatch::Different
        }
    }
}

/// An operation met a stored key its comparison answered
/// [`KeyMatch::Unknown`] for, found no match, and changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Undecided;

/// Counts of what the cache did, since it was made (see [`Cache::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lookups by [`Cache::get`] that found a live entry.
    pub hits: u64,
    /// Lookups by [`Cache::get`] that did not.
    pub misses: u64,
    /// Entries stored.
    pub sets: u64,
    /// Live entries let go to make room.
    pub evictions: u64,
    /// Entries let go by admission at their own store (`tinylfu`).
    pub rejections: u64,
    /// Expired entries reaped (by a scan, a lookup or a clear).
    pub expirations: u64,
    /// Live entries removed by the caller, replaced, or cleared.
    pub deletions: u64,
    /// Failures the caller reported ([`Cache::count_close_errors`]).
    pub close_errors: u64,
}

impl Stats {
    /// Every count minus `base`'s (the counts at the last reset).
    #[must_use]
    pub fn since(self, base: Stats) -> Stats {
        Stats {
            hits: self.hits - base.hits,
            misses: self.misses - base.misses,
            sets: self.sets - base.sets,
            evictions: self.evictions - base.evictions,
            rejections: self.rejections - base.rejections,
            expirations: self.expirations - base.expirations,
            deletions: self.deletions - base.deletions,
            close_errors: self.close_errors - base.close_errors,
        }
    }
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
    /// See [`Undecided`].
    Undecided { key: K, value: V },
    /// Under [`EvictionPolicy::External`], the entry needs room that only
    /// the caller's evictions can make (expired entries are gone already).
    NeedsRoom { key: K, value: V },
}

impl<K, V> InsertError<K, V> {
    /// The refused key and value, handed back to the caller.
    pub fn into_entry(self) -> (K, V) {
        match self {
            InsertError::Occupied { key, value }
            | InsertError::TooLarge { key, value }
            | InsertError::Undecided { key, value }
            | InsertError::NeedsRoom { key, value } => (key, value),
        }
    }
}

/// Why [`Cache::store_batch`] refused a batch. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// A live entry holds the key of the batch's entry at this position
    /// (refused only when not replacing).
    Occupied(usize),
    /// The entry at this position alone is over `max_bytes`.
    TooLarge(usize),
    /// The batch on its own is over `max_items` or `max_bytes`.
    DoesNotFit,
    /// See [`Undecided`].
    Undecided,
    /// See [`InsertError::NeedsRoom`].
    NeedsRoom,
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
    counters: Counters,
    /// The counts [`Cache::stats`] reports from (the last reset).
    stats_base: Stats,
}

/// What [`Stats`] is computed from: each count kept where it is cheapest
/// to bump (a removal indexes by its reason).
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    hits: u64,
    misses: u64,
    sets: u64,
    /// Entries taken out, by [`ReleaseReason`] (a clear files its expired
    /// entries under `Expired`).
    removed: [u64; ReleaseReason::COUNT],
    close_errors: u64,
}

impl Counters {
    fn stats(&self) -> Stats {
        let removed = |reason: ReleaseReason| self.removed[reason as usize];
        Stats {
            hits: self.hits,
            misses: self.misses,
            sets: self.sets,
            evictions: removed(ReleaseReason::Evicted),
            rejections: removed(ReleaseReason::Rejected),
            expirations: removed(ReleaseReason::Expired),
            deletions: removed(ReleaseReason::Deleted)
                + removed(ReleaseReason::Replaced)
                + removed(ReleaseReason::Cleared),
            close_errors: self.close_errors,
        }
    }
}

/// What [`Cache::make_room`] made of its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Room {
    Made,
    /// The admission policy let go of the incoming entry instead.
    Rejected,
    /// Under [`EvictionPolicy::External`]: the caller must evict.
    Needed,
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
            policy: Policy::new(config.policy, config.max_items, config.max_bytes, rng),
            config,
            bytes: 0,
            last_scan: now,
            latest_now: now,
            due: Vec::new(),
            large_sizes: LargeSizes::default(),
            counters: Counters::default(),
            stats_base: Stats::default(),
        }
    }

    /// The counts since the cache was made or since [`Cache::reset_stats`].
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.counters.stats().since(self.stats_base)
    }

    /// Starts every count of [`Cache::stats`] again from zero.
    pub fn reset_stats(&mut self) {
        self.stats_base = self.counters.stats();
    }

    /// Counts failures of the caller's own clean-up of released entries
    /// (the binding: `close()` or `on_remove` raising).
    pub fn count_close_errors(&mut self, errors: u64) {
        self.counters.close_errors += errors;
    }

    /// A number that changes whenever an entry is stored or taken out, and
    /// only then: a caller that compared keys outside the engine reads it
    /// before and after to learn whether the cache changed meanwhile.
    /// Reordering (a hit under LRU) is not a change.
    #[inline]
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.counters.sets + self.counters.removed.iter().sum::<u64>()
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
            + self.policy.heap_size()
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

    /// The entry of the key `eq` matches (see [`KeyMatch`]).
    #[inline(always)]
    fn find<M: Into<KeyMatch>>(
        &self,
        hash: u64,
        mut eq: impl FnMut(&K) -> M,
    ) -> Result<Option<SlotId>, Undecided> {
        let hash = self.start_probe(hash);
        let mut unknown = false;
        let found = self.index.find(
            hash,
            holds_key(&self.entries, hash, |key| {
                decide(eq(key).into(), &mut unknown)
            }),
        );
        undecided_if(found, unknown)
    }

    /// The entry of the key `eq` matches when it is live; an expired one
    /// is reaped into `released`.
    #[inline(always)]
    fn find_live<M: Into<KeyMatch>>(
        &mut self,
        hash: u64,
        eq: impl FnMut(&K) -> M,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> Result<Option<SlotId>, Undecided> {
        let Some(id) = self.find(hash, eq)? else {
            return Ok(None);
        };
        if self.entries.get(id).deadline() <= now {
            self.release(id, Indexed::Yes, ReleaseReason::Expired, released);
            return Ok(None);
        }
        Ok(Some(id))
    }

    /// The live value of a key; a hit counts as a use under LRU and in the
    /// statistics, as a miss does. An expired entry found here is reaped
    /// into `released`.
    ///
    /// # Errors
    /// [`Undecided`], having counted nothing.
    #[inline(always)]
    pub fn get<M: Into<KeyMatch>>(
        &mut self,
        hash: u64,
        eq: impl FnMut(&K) -> M,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> Result<Option<&V>, Undecided> {
        let now = self.observe(now);
        self.auto_scan(now, released);
        let Some(id) = self.find_live(hash, eq, now, released)? else {
            self.counters.misses += 1;
            let lookups = self.counters.hits + self.counters.misses;
            self.policy.on_miss(&mut self.entries, hash, lookups);
            return Ok(None);
        };
        self.counters.hits += 1;
        self.policy.on_hit(&mut self.entries, id, hash);
        Ok(Some(&self.entries.get(id).value))
    }

    /// The live value of a key. Changes nothing: no order, no count, and an
    /// expired entry stays until something reaps it.
    ///
    /// # Errors
    /// [`Undecided`].
    #[inline]
    pub fn peek<M: Into<KeyMatch>>(
        &self,
        hash: u64,
        eq: impl FnMut(&K) -> M,
        now: Nanos,
    ) -> Result<Option<&V>, Undecided> {
        Ok(self
            .find_unreaped(hash, eq, now)?
            .map(|id| &self.entries.get(id).value))
    }

    /// True when a live entry holds the key. Changes nothing.
    ///
    /// # Errors
    /// [`Undecided`].
    #[inline]
    pub fn contains<M: Into<KeyMatch>>(
        &self,
        hash: u64,
        eq: impl FnMut(&K) -> M,
        now: Nanos,
    ) -> Result<bool, Undecided> {
        Ok(self.find_unreaped(hash, eq, now)?.is_some())
    }

    /// The deadline of the key's live entry ([`NEVER`] for none), or `None`
    /// when no live entry holds it. Changes nothing.
    ///
    /// # Errors
    /// [`Undecided`].
    pub fn deadline_of<M: Into<KeyMatch>>(
        &self,
        hash: u64,
        eq: impl FnMut(&K) -> M,
        now: Nanos,
    ) -> Result<Option<Nanos>, Undecided> {
        Ok(self
            .find_unreaped(hash, eq, now)?
            .map(|id| self.entries.get(id).deadline()))
    }

    /// The key's live entry, found without reaping or observing `now`.
    #[inline]
    fn find_unreaped<M: Into<KeyMatch>>(
        &self,
        hash: u64,
        eq: impl FnMut(&K) -> M,
        now: Nanos,
    ) -> Result<Option<SlotId>, Undecided> {
        let now = now.min(LATEST_NOW).max(self.latest_now);
        Ok(self
            .find(hash, eq)?
            .filter(|&id| self.entries.get(id).deadline() > now))
    }

    /// Gives the key's live entry the deadline `deadline` ([`NEVER`]: it no
    /// longer expires) and changes nothing else; false when no live entry
    /// holds the key (an expired one is reaped into `released`).
    ///
    /// # Errors
    /// [`Undecided`].
    pub fn touch<M: Into<KeyMatch>>(
        &mut self,
        hash: u64,
        eq: impl FnMut(&K) -> M,
        deadline: Nanos,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> Result<bool, Undecided> {
        let now = self.observe(now);
        self.auto_scan(now, released);
        let Some(id) = self.find_live(hash, eq, now, released)? else {
            return Ok(false);
        };
        self.wheel.reschedule(&mut self.entries, id, deadline);
        Ok(true)
    }

    /// The stored keys `eq` answers [`KeyMatch::Unknown`] for: those the
    /// caller must compare itself before it tries an operation again. Only
    /// keys whose stored hash bits equal the key's are offered.
    pub fn candidates<'a, M: Into<KeyMatch>>(
        &'a self,
        hash: u64,
        mut eq: impl FnMut(&K) -> M,
        mut visit: impl FnMut(&'a K),
    ) {
        let hash = IndexHash::of_key(hash);
        let entries = &self.entries;
        self.index.find(hash, |id| {
            let entry = entries.get(id);
            if entry.stored_hash() == hash.stored && eq(&entry.key).into() == KeyMatch::Unknown {
                visit(&entry.key);
            }
            false
        });
    }

    /// Stores a new entry. `eq` must match the new key. Refuses a key held
    /// by a live entry and a size over `max_bytes`; otherwise reaps an
    /// expired holder of the key, makes room and stores the entry.
    ///
    /// # Errors
    /// [`InsertError`], handing the key and value back, when it refuses.
    #[inline(always)]
    pub fn insert<M: Into<KeyMatch>>(
        &mut self,
        new: NewEntry<K, V>,
        eq: impl FnMut(&K) -> M,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> Result<(), InsertError<K, V>> {
        self.store_one(new, eq, false, now, released)
    }

    /// Stores an entry whether or not a live entry holds its key. A live
    /// holder is taken out first (reason `Replaced`) and the new entry keeps
    /// the holder's key object, as a dict keeps its first key: the key
    /// handed back in `released` is the new one. Refuses (changing nothing)
    /// only a size over `max_bytes`.
    ///
    /// # Errors
    /// [`InsertError::TooLarge`] or [`InsertError::Undecided`], handing the
    /// key and value back.
    #[inline(always)]
    pub fn put<M: Into<KeyMatch>>(
        &mut self,
        new: NewEntry<K, V>,
        eq: impl FnMut(&K) -> M,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> Result<(), InsertError<K, V>> {
        self.store_one(new, eq, true, now, released)
    }

    /// [`Cache::insert`] (`replace` false) and [`Cache::put`] (true): the
    /// one path that stores a single entry. Inline, so that each caller's
    /// constant `replace` folds away.
    #[inline(always)]
    fn store_one<M: Into<KeyMatch>>(
        &mut self,
        mut new: NewEntry<K, V>,
        eq: impl FnMut(&K) -> M,
        replace: bool,
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
        match self.find_live(new.hash, eq, now, released) {
            Ok(None) => {}
            Ok(Some(id)) if replace => {
                // The caller must evict first, and the holder must stay
                // until the store can go ahead.
                if self.caller_evicts() && self.needs_room_replacing(id, new.size, now, released) {
                    return Err(InsertError::NeedsRoom {
                        key: new.key,
                        value: new.value,
                    });
                }
                let mut old = self.take(id, Indexed::Yes, ReleaseReason::Replaced);
                std::mem::swap(&mut old.key, &mut new.key);
                released.push(old);
            }
            Ok(Some(_)) => {
                return Err(InsertError::Occupied {
                    key: new.key,
                    value: new.value,
                })
            }
            Err(Undecided) => {
                return Err(InsertError::Undecided {
                    key: new.key,
                    value: new.value,
                })
            }
        }
        match self.make_room(1, new.size, Some(&new), now, released) {
            Room::Made => {}
            Room::Rejected => {
                self.reject(new, released);
                return Ok(());
            }
            Room::Needed => {
                return Err(InsertError::NeedsRoom {
                    key: new.key,
                    value: new.value,
                })
            }
        }
        self.store(new);
        Ok(())
    }

    /// Removes the key's entry and hands it back: reason `Deleted` when it
    /// was live, `Expired` when it had expired (it is reaped all the same).
    /// What the automatic scan reaped first goes to `released`. The entry
    /// comes back apart from `released` because a delete releases exactly
    /// one, and a push into the buffer and a drain out of it cost a delete
    /// more than the rest of its release (bench/README.md has the count).
    ///
    /// # Errors
    /// [`Undecided`].
    #[inline(always)]
    pub fn remove<M: Into<KeyMatch>>(
        &mut self,
        hash: u64,
        mut eq: impl FnMut(&K) -> M,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> Result<Option<ReleasedEntry<K, V>>, Undecided> {
        let now = self.observe(now);
        self.auto_scan(now, released);
        let hash = self.start_probe(hash);
        let mut unknown = false;
        let found = self.index.remove_match(
            hash,
            holds_key(&self.entries, hash, |key| {
                decide(eq(key).into(), &mut unknown)
            }),
        );
        let Some(id) = undecided_if(found, unknown)? else {
            return Ok(None);
        };
        let reason = if self.entries.get(id).deadline() > now {
            ReleaseReason::Deleted
        } else {
            ReleaseReason::Expired
        };
        Ok(Some(self.take_inline(id, Indexed::No, reason)))
    }

    /// Stores every entry of `batch`, all or nothing: a refusal changes
    /// nothing and hands the batch back. `eq(i, key)` compares a stored key
    /// with the key of `batch[i]`; the keys of a batch must differ from
    /// each other. Replacing (`put` for each), a live holder is taken out
    /// as [`Cache::put`] takes it; otherwise a live holder refuses the
    /// batch. Room is made for the whole batch before any of it is stored,
    /// so no entry of it is evicted to make room for another.
    ///
    /// # Errors
    /// [`BatchError`], with the batch.
    #[allow(clippy::type_complexity)]
    pub fn store_batch<M: Into<KeyMatch>>(
        &mut self,
        mut batch: Vec<NewEntry<K, V>>,
        mut eq: impl FnMut(usize, &K) -> M,
        replace: bool,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> Result<(), (BatchError, Vec<NewEntry<K, V>>)> {
        let now = self.observe(now);
        let max_bytes = self.config.max_bytes;
        if let Some(position) = batch
            .iter()
            .position(|new| max_bytes > 0 && new.size > max_bytes)
        {
            return Err((BatchError::TooLarge(position), batch));
        }
        let total: u128 = batch.iter().map(|new| u128::from(new.size)).sum();
        if (self.config.max_items > 0 && batch.len() as u64 > self.config.max_items)
            || (max_bytes > 0 && total > u128::from(max_bytes))
        {
            return Err((BatchError::DoesNotFit, batch));
        }
        let external = self.caller_evicts();
        if external
            && self.over_limits(batch.len() as u64, u64::try_from(total).unwrap_or(u64::MAX))
        {
            // Expired entries go before the caller is asked for victims,
            // and before the holders are found: none of those is then due.
            self.expire_due(now, released);
        }
        // Every holder first, changing nothing, so that a refusal leaves
        // the cache as it was.
        let mut holders = Vec::with_capacity(batch.len());
        for (position, new) in batch.iter().enumerate() {
            let found = match self.find(new.hash, |key| eq(position, key)) {
                Ok(found) => found,
                Err(Undecided) => return Err((BatchError::Undecided, batch)),
            };
            let Some(id) = found else { continue };
            let live = self.entries.get(id).deadline() > now;
            if live && !replace {
                return Err((BatchError::Occupied(position), batch));
            }
            holders.push((position, id, live));
        }
        // Keys that differ yet match one stored key (a comparison that is
        // not an equivalence): the caller must decide again.
        let mut ids: Vec<SlotId> = holders.iter().map(|&(_, id, _)| id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err((BatchError::Undecided, batch));
        }
        if external {
            let mut after_items = self.entries.len() as u64 + batch.len() as u64;
            let mut after_bytes = self.bytes + total;
            for &(_, id, _) in &holders {
                after_items -= 1;
                after_bytes -= u128::from(self.size_of(id));
            }
            if self.exceeds(after_items, after_bytes) {
                return Err((BatchError::NeedsRoom, batch));
            }
        }
        for (position, id, live) in holders {
            if live {
                let mut old = self.take(id, Indexed::Yes, ReleaseReason::Replaced);
                std::mem::swap(&mut old.key, &mut batch[position].key);
                released.push(old);
            } else {
                self.release(id, Indexed::Yes, ReleaseReason::Expired, released);
            }
        }
        self.auto_scan(now, released);
        let total = u64::try_from(total).unwrap_or(u64::MAX);
        // Room for the whole batch: no entry of it competes for its place.
        let room = self.make_room(batch.len() as u64, total, None, now, released);
        debug_assert_eq!(
            room,
            Room::Made,
            "a batch's room is made, or was found missing above"
        );
        for new in batch {
            self.store(new);
        }
        Ok(())
    }

    /// Reaps every expired entry, then enforces the limits.
    pub fn scan(&mut self, now: Nanos, released: &mut Released<K, V>) {
        let now = self.observe(now);
        self.expire_due(now, released);
        // Nothing to store: under `External` nothing can be missing.
        self.make_room(0, 0, None, now, released);
    }

    /// Removes every entry into `released`, giving the memory of the
    /// cache's tables back (as `dict.clear()` does). The statistics count
    /// the entries that had expired by `now` as expirations.
    pub fn clear(&mut self, now: Nanos, released: &mut Released<K, V>) {
        let now = self.observe(now);
        let entries = std::mem::take(&mut self.entries);
        released.reserve(entries.len());
        let removed = &mut self.counters.removed;
        released.extend(entries.into_values().map(|entry| {
            let counted_as = if entry.deadline() > now {
                ReleaseReason::Cleared
            } else {
                ReleaseReason::Expired
            };
            removed[counted_as as usize] += 1;
            ReleasedEntry {
                needs_close: entry.needs_close(),
                key: entry.key,
                value: entry.value,
                reason: ReleaseReason::Cleared,
            }
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

    /// Visits the key and value of every entry live at `now`, in eviction
    /// order (the next victim first) under a policy that keeps one; in
    /// slot order otherwise (random, or a cache without limits). Changes
    /// nothing: expired entries are skipped, not reaped.
    pub fn for_each_live<'a>(&'a self, now: Nanos, mut visit: impl FnMut(&'a K, &'a V)) {
        let now = now.min(LATEST_NOW).max(self.latest_now);
        let mut visit_live = |id: SlotId| {
            let entry = self.entries.get(id);
            if entry.deadline() > now {
                visit(&entry.key, &entry.value);
            }
        };
        if !self
            .policy
            .for_each_in_order(&self.entries, &mut visit_live)
        {
            for (id, _) in self.entries.iter() {
                visit_live(id);
            }
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
    /// For a single store, `incoming` is the entry about to be stored: a
    /// policy that admits (`tinylfu`) may then refuse it. Under
    /// [`EvictionPolicy::External`] no victim is taken: the room still missing is
    /// `Needed`. Inline, as the test alone is what most inserts pay.
    #[inline(always)]
    fn make_room(
        &mut self,
        items: u64,
        bytes: u64,
        incoming: Option<&NewEntry<K, V>>,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> Room {
        if !self.over_limits(items, bytes) {
            return Room::Made;
        }
        self.expire_due(now, released);
        if self.caller_evicts() {
            return if self.over_limits(items, bytes) {
                Room::Needed
            } else {
                Room::Made
            };
        }
        if let Some(new) = incoming {
            if self.policy.admission().is_some() {
                return if self.admit(new.hash, new.size, released) {
                    Room::Made
                } else {
                    Room::Rejected
                };
            }
        }
        while self.over_limits(items, bytes) {
            let victim = self
                .next_victim()
                .expect("over a limit with no entry to evict");
            self.release(victim, Indexed::Yes, ReleaseReason::Evicted, released);
        }
        Room::Made
    }

    /// Under [`EvictionPolicy::External`], whether a store of `size` over the live
    /// entry `holder` still needs room once expired entries are gone (the
    /// holder's own room counts as made). Reaps only entries that are due,
    /// so `holder` stays.
    #[cold]
    fn needs_room_replacing(
        &mut self,
        holder: SlotId,
        size: u64,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> bool {
        let fits_now = |cache: &Self| {
            let bytes = cache.bytes - u128::from(cache.size_of(holder)) + u128::from(size);
            !cache.exceeds(cache.entries.len() as u64, bytes)
        };
        if fits_now(self) {
            return false;
        }
        self.expire_due(now, released);
        !fits_now(self)
    }

    /// Takes the live entry of the key `eq` matches out as a victim (for
    /// a caller that chooses victims, see [`EvictionPolicy::External`]).
    /// False, changing nothing, when no live entry holds the key.
    ///
    /// # Errors
    /// [`Undecided`].
    pub fn evict<M: Into<KeyMatch>>(
        &mut self,
        hash: u64,
        eq: impl FnMut(&K) -> M,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> Result<bool, Undecided> {
        let now = self.observe(now);
        match self.find(hash, eq)? {
            Some(id) if self.entries.get(id).deadline() > now => {
                self.release(id, Indexed::Yes, ReleaseReason::Evicted, released);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Makes room for one new entry of `size` and key `hash` by admission
    /// (see [`Policy::admission`]): the window's overflow and, when it is
    /// larger than the window, the entry itself compete with the main
    /// space's victims. False when the new entry lost.
    #[inline(never)]
    fn admit(&mut self, hash: u64, size: u64, released: &mut Released<K, V>) -> bool {
        let stored = IndexHash::of_key(hash).stored;
        let Some(admission) = self.policy.admission() else {
            unreachable!("admit under a policy without admission");
        };
        admission.prepare_admission(&mut self.entries, size, stored);
        let mut admitted = true;
        while self.over_limits(1, size) {
            let Some(admission) = self.policy.admission() else {
                unreachable!("the policy changed");
            };
            match admission.admission_victim(&self.entries) {
                Admitted::Evict(victim) => {
                    self.release(victim, Indexed::Yes, ReleaseReason::Evicted, released);
                }
                Admitted::Rejected => {
                    admitted = false;
                    break;
                }
                Admitted::Nothing => unreachable!("over a limit with no entry to evict"),
            }
        }
        if let Some(admission) = self.policy.admission() {
            admission.end_admission();
        }
        admitted
    }

    /// Lets go of a new entry that lost its admission: counted as stored
    /// and let go (SPEC: a `set` may let go of the entry it stored).
    #[inline(never)]
    fn reject(&mut self, new: NewEntry<K, V>, released: &mut Released<K, V>) {
        self.counters.sets += 1;
        self.counters.removed[ReleaseReason::Rejected as usize] += 1;
        released.push(ReleasedEntry {
            key: new.key,
            value: new.value,
            needs_close: new.needs_close,
            reason: ReleaseReason::Rejected,
        });
    }

    /// Files a new entry in every structure; there is room for it.
    #[inline(always)]
    fn store(&mut self, new: NewEntry<K, V>) {
        self.file(new, |policy, entries, id, size| {
            policy.on_insert(entries, id, size);
        });
    }

    /// [`Cache::store`], the policy told of the entry by `file_in_policy`
    /// (a restore files it with its use count).
    #[inline(always)]
    fn file(
        &mut self,
        new: NewEntry<K, V>,
        file_in_policy: impl FnOnce(&mut Policy, &mut Arena<Entry<K, V>>, SlotId, u64),
    ) {
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
        file_in_policy(&mut self.policy, &mut self.entries, id, size);
        self.wheel.schedule(&mut self.entries, id, deadline);
        self.bytes += u128::from(size);
        self.counters.sets += 1;
    }

    /// Whether `extra_items` more items of `extra_bytes` would break a limit.
    #[inline(always)]
    fn over_limits(&self, extra_items: u64, extra_bytes: u64) -> bool {
        self.exceeds(
            self.entries.len() as u64 + extra_items,
            self.bytes + u128::from(extra_bytes),
        )
    }

    /// True under [`EvictionPolicy::External`]: the caller evicts.
    #[inline]
    fn caller_evicts(&self) -> bool {
        self.config.policy == EvictionPolicy::External
    }

    /// The size of the entry at `id`.
    #[inline]
    fn size_of(&self, id: SlotId) -> u64 {
        self.large_sizes.get(id, self.entries.get(id).size_field())
    }

    /// Whether `items` entries of `bytes` in all would break a limit.
    #[inline(always)]
    fn exceeds(&self, items: u64, bytes: u128) -> bool {
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
    /// value back. Out of line: inlined into the release loops and into
    /// `store_one`, it pushed the list, wheel and index calls it makes out
    /// of line instead (an eviction paid ~100 instructions more).
    #[inline(never)]
    fn take(&mut self, id: SlotId, indexed: Indexed, reason: ReleaseReason) -> ReleasedEntry<K, V> {
        self.take_inline(id, indexed, reason)
    }

    /// [`Cache::take`], always inline: for `remove`, whose whole cost it
    /// nearly is (out of line, its call cost a delete ~10 instructions).
    #[inline(always)]
    fn take_inline(
        &mut self,
        id: SlotId,
        indexed: Indexed,
        reason: ReleaseReason,
    ) -> ReleasedEntry<K, V> {
        if indexed == Indexed::Yes {
            let hash = self.entries.get(id).index_hash();
            self.index.prefetch(hash);
            self.index.remove(hash, id);
        }
        self.wheel.deschedule(&mut self.entries, id);
        self.policy.on_remove(&mut self.entries, id);
        let entry = self.entries.remove(id);
        self.bytes -= u128::from(self.large_sizes.take(id, entry.size_field()));
        self.counters.removed[reason as usize] += 1;
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
            bytes += u128::from(self.size_of(id));
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

/// `Same` as a match; `Unknown` as no match, remembered in `unknown`.
#[inline(always)]
fn decide(answer: KeyMatch, unknown: &mut bool) -> bool {
    match answer {
        KeyMatch::Same => true,
        KeyMatch::Different => false,
        KeyMatch::Unknown => {
            *unknown = true;
            false
        }
    }
}

/// What a probe found, or [`Undecided`] when it found nothing but met a key
/// it could not compare.
#[inline(always)]
fn undecided_if(found: Option<SlotId>, unknown: bool) -> Result<Option<SlotId>, Undecided> {
    match found {
        None if unknown => Err(Undecided),
        found => Ok(found),
    }
}

/// The test an index slot passes when it holds the entry of the key that
/// `eq` matches and whose index hash is `hash`.
#[inline(always)]
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
