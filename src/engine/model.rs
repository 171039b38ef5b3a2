//! Reference models of the cache and of the timing wheel, and byte-driven
//! runners that check the engine against them after every step. Compiled
//! only for tests and for the fuzzers (`--cfg fuzzing`, which cargo-fuzz
//! sets); `fuzz/fuzz_targets/*.rs` are thin shells over [`run`] and
//! [`run_wheel`].
//!
//! The cache model is meant to be obviously right rather than fast: a `Vec`
//! of entries in eviction order (front = next LRU/FIFO victim), linear
//! scans, its own statistics, and the behaviour contract (the project's
//! SPEC, and the engine's doc comments for what the binding builds on)
//! written out step by step. Every difference the comparison tolerates
//! carries its reason:
//! - entries released together by one operation (a scan, a lookup of an
//!   expired key, a replacement) have no defined order, so they are
//!   compared as multisets; evictions come last and in policy order, and
//!   are compared in order;
//! - `random` picks its victims with the engine's RNG, so the model takes
//!   the engine's victims and checks that each was a live entry, not a new
//!   one, and that the engine evicted exactly as many as the limits needed;
//! - `tinylfu` picks its victims by a frequency sketch, so the model takes
//!   them from the engine as for `random`, except that the entry being
//!   stored may be one: it lost its admission, is released as `Rejected`
//!   and not stored (counted as stored and let go); everything else
//!   (counts, limits, reaping before evicting, what is live) the model
//!   checks as for the other policies;
//! - `for_each_live` has an order only where the policy keeps one (bounded
//!   `lru`/`fifo`/`lfu`); elsewhere it is compared as a set.
//!
//! Keys are key *objects* ([`Key`]): a logical key (which decides the hash
//! and equality) and an identity, so that "the same object" and "an equal
//! key" differ, as they do in Python. Some objects are foreign: compared
//! with anything but themselves, the harness's comparison answers
//! [`KeyMatch::Unknown`] on a first try, as the binding's does for a key
//! with its own `__eq__`; the harness then settles the candidates itself
//! and tries again, as the binding does (`with_key`, `settle`).
//!
//! The wheel model is a `BTreeSet` of `(deadline, id)`.
//!
//! Both runners decode the input a byte at a time and read zeros once it is
//! exhausted, so every byte string is a valid test case.

#![cfg(any(test, fuzzing))]

use std::collections::{BTreeSet, VecDeque};
use std::fmt::Debug;

use super::arena::SlotId;
use super::index::IndexHash;
use super::time::{Nanos, LATEST_NOW, NEVER};
use super::wheel::{TimerNode, TimerNodeVec, TimerNodes, TimerWheel, TICK_SHIFT};
use super::{
    BatchError, Cache, Config, EvictionPolicy, InsertError, KeyMatch, NewEntry, ReleaseReason,
    Released, Stats, Undecided,
};

/// Logical keys are `0..KEYS`: few enough that operations keep hitting
/// each other.
const KEYS: u8 = 16;

/// The most entries a decoded batch holds.
const BATCH: u8 = 4;

/// Width of a level-0 wheel bucket in nanoseconds.
const BUCKET: u64 = 1 << TICK_SHIFT;

/// The input, one number at a time; zeros once it runs out.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&first, rest)) => {
                self.data = rest;
                first
            }
            None => 0,
        }
    }

    fn below(&mut self, bound: u8) -> u8 {
        self.byte() % bound
    }

    /// `count` bytes, little-endian.
    fn bytes(&mut self, count: u32) -> u64 {
        (0..count).fold(0, |acc, i| acc | u64::from(self.byte()) << (8 * i))
    }

    fn u64(&mut self) -> u64 {
        self.bytes(8)
    }
}

/// A deadline relative to `now`, from the input: none, small, on or next to
/// a bucket edge, distant, already past, or at the very end of time.
fn decode_deadline(input: &mut Input, now: Nanos) -> Nanos {
    match input.below(10) {
        0 | 1 => NEVER,
        2 => now.saturating_add(input.bytes(2)),
        3 => now.saturating_add(u64::from(input.byte()) * BUCKET),
        4 => (now.saturating_add(u64::from(input.byte()) * BUCKET) & !(BUCKET - 1))
            .saturating_add(u64::from(input.below(3)))
            .saturating_sub(1),
        5 => now.saturating_add(1 << input.below(64)),
        6 => now.saturating_add(input.u64()),
        // Already expired (or, with 0, expiring right now).
        7 => now.saturating_sub(input.bytes(2)),
        8 => u64::from(input.byte()),
        _ => NEVER - u64::from(input.below(4)),
    }
}

/// A later `now`: small steps, bucket steps, exactly onto (or next to) a
/// held deadline, huge jumps, and up to the end of the clock's range.
fn decode_advance(input: &mut Input, now: Nanos, deadlines: &[Nanos]) -> Nanos {
    let deadline_near = |pick: u8, offset: i64| {
        let deadline = deadlines
            .iter()
            .copied()
            .filter(|&d| d != NEVER)
            .nth(usize::from(pick))?;
        Some(deadline.saturating_add_signed(offset))
    };
    match input.below(10) {
        0 => now.saturating_add(u64::from(input.byte())),
        1 => now.saturating_add(input.bytes(2) << 4),
        2 => now.saturating_add(u64::from(input.below(70)) * BUCKET),
        3 | 4 => {
            let (pick, offset) = (input.below(KEYS), i64::from(input.below(3)) - 1);
            deadline_near(pick, offset).unwrap_or(now.saturating_add(1))
        }
        5 => now.saturating_add(1 << input.below(64)),
        6 => now.saturating_add(input.u64()),
        7 => NEVER - u64::from(input.byte()),
        8 => now.saturating_add(input.bytes(4) << 20),
        _ => now,
    }
    .max(now)
}

/// A key object: `logical` is the key it stands for (it decides the hash
/// and equality), `id` its identity (each `id` is one object), and a
/// `foreign` object can be compared with another only outside the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    logical: u8,
    id: u32,
    foreign: bool,
}

/// A deliberately collision-prone hash, so that `eq` has work to do: equal
/// logical keys hash alike, and so do some different ones.
fn hash_of(logical: u8) -> u64 {
    u64::from(logical % 6).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The hash bits the engine's index keeps: it compares only the stored keys
/// whose bits equal the key's (see `Cache::candidates`).
fn stored_bits(logical: u8) -> u32 {
    IndexHash::of_key(hash_of(logical)).stored
}

/// The comparison an engine call gets, as the binding's `Matcher`: on a
/// first try the same object is `Same`, a foreign object on either side is
/// `Unknown`, and other keys compare by their logical key; once settled
/// (the harness compared the candidates itself) the winner is `Same` and
/// what was `Unknown` is `Different`.
#[derive(Clone, Copy, Debug)]
struct Matcher {
    key: Key,
    verdict: Verdict,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// A first try.
    Pending,
    /// Settled: the id of the candidate found equal, if any.
    Settled(Option<u32>),
}

impl Matcher {
    fn first(key: Key) -> Self {
        Matcher {
            key,
            verdict: Verdict::Pending,
        }
    }

    fn settled(key: Key, winner: Option<u32>) -> Self {
        Matcher {
            key,
            verdict: Verdict::Settled(winner),
        }
    }

    fn compare(&self, stored: Key) -> KeyMatch {
        if stored.id == self.key.id || self.verdict == Verdict::Settled(Some(stored.id)) {
            return KeyMatch::Same;
        }
        if stored.foreign || self.key.foreign {
            return match self.verdict {
                Verdict::Pending => KeyMatch::Unknown,
                Verdict::Settled(_) => KeyMatch::Different,
            };
        }
        KeyMatch::from(stored.logical == self.key.logical)
    }
}

type Release = (Key, u64, ReleaseReason);

/// One step of a cache run, for failure messages (formatted only then).
#[derive(Clone, Debug)]
enum Op {
    New,
    Insert(ModelEntry),
    Put(ModelEntry),
    Get(Key),
    Peek(Key),
    Contains(Key),
    DeadlineOf(Key),
    Touch {
        key: Key,
        deadline: Nanos,
    },
    Remove(Key),
    StoreBatch {
        replace: bool,
        entries: Vec<ModelEntry>,
    },
    Scan,
    Clear,
    ResetStats,
    CloseErrors(u64),
    LiveOrder,
    Advance,
}

impl Op {
    /// Whether the engine's call takes `&self` or only moves counters, so
    /// that `Cache::validate` (most of a step's cost) can be skipped.
    fn cannot_change_structures(&self) -> bool {
        matches!(
            self,
            Op::Advance
                | Op::Peek(_)
                | Op::Contains(_)
                | Op::DeadlineOf(_)
                | Op::ResetStats
                | Op::CloseErrors(_)
                | Op::LiveOrder
        )
    }
}

/// Why an insert or a put was refused, as both sides report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Occupied,
    TooLarge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ModelEntry {
    key: Key,
    value: u64,
    size: u64,
    deadline: Nanos,
    /// The LFU count: 1 when stored, one more per hit.
    count: u64,
}

impl ModelEntry {
    fn new_entry(self) -> NewEntry<Key, u64> {
        NewEntry {
            hash: hash_of(self.key.logical),
            key: self.key,
            value: self.value,
            size: self.size,
            deadline: self.deadline,
            needs_close: self.value % 2 == 1,
        }
    }
}

/// The cache as the contract describes it.
#[derive(Debug)]
struct Model {
    config: Config,
    /// Every entry held, expired ones included, in eviction order for
    /// `lru`/`fifo`: a store appends, an LRU hit moves to the back. Under
    /// `lfu` in order of last use (a hit moves to the back too): the
    /// victim is the first entry of the lowest count.
    entries: Vec<ModelEntry>,
    /// The latest `now` seen, clamped to `LATEST_NOW`: time never goes back.
    now: Nanos,
    /// When expired entries were last all reaped.
    last_scan: Nanos,
    /// The counts since the start or the last reset (SPEC, "Statistics").
    stats: Stats,
    /// Entries stored and taken out in the current step: the generation
    /// must change exactly when this is not 0.
    changes: u64,
}

impl Model {
    fn new(config: Config, now: Nanos) -> Self {
        let now = now.min(LATEST_NOW);
        Model {
            config,
            entries: Vec::new(),
            now,
            last_scan: now,
            stats: Stats::default(),
            changes: 0,
        }
    }

    fn observe(&mut self, now: Nanos) {
        self.now = self.now.max(now.min(LATEST_NOW));
    }

    /// The time a call that observes nothing (`peek`, `for_each_live`)
    /// judges liveness at.
    fn unobserved(&self, now: Nanos) -> Nanos {
        now.min(LATEST_NOW).max(self.now)
    }

    fn is_live(&self, entry: &ModelEntry) -> bool {
        entry.deadline > self.now
    }

    fn bounded(&self) -> bool {
        self.config.max_items > 0 || self.config.max_bytes > 0
    }

    fn bytes(&self) -> u128 {
        self.entries
            .iter()
            .map(|entry| u128::from(entry.size))
            .sum()
    }

    fn too_large(&self, size: u64) -> bool {
        self.config.max_bytes > 0 && size > self.config.max_bytes
    }

    /// The entry a call with `matcher` finds, as the engine's probe does:
    /// among the entries whose stored hash bits equal the key's, the one
    /// `Same` answers for; none if there is none; `Undecided` if there is
    /// none but an `Unknown` was met. Expired entries count: only the
    /// caller tells live from expired.
    fn probe(&self, matcher: &Matcher) -> Result<Option<usize>, Undecided> {
        let bits = stored_bits(matcher.key.logical);
        let mut unknown = false;
        for (index, entry) in self.entries.iter().enumerate() {
            if stored_bits(entry.key.logical) != bits {
                continue;
            }
            match matcher.compare(entry.key) {
                KeyMatch::Same => return Ok(Some(index)),
                KeyMatch::Unknown => unknown = true,
                KeyMatch::Different => {}
            }
        }
        if unknown {
            Err(Undecided)
        } else {
            Ok(None)
        }
    }

    /// The stored keys `matcher` answers `Unknown` for, sorted.
    fn candidates(&self, matcher: &Matcher) -> Vec<Key> {
        let bits = stored_bits(matcher.key.logical);
        let mut keys: Vec<Key> = self
            .entries
            .iter()
            .filter(|entry| {
                stored_bits(entry.key.logical) == bits
                    && matcher.compare(entry.key) == KeyMatch::Unknown
            })
            .map(|entry| entry.key)
            .collect();
        keys.sort_unstable();
        keys
    }

    /// The live entry of a logical key at `now`, unobserved (the checks).
    fn live_entry(&self, logical: u8, now: Nanos) -> Option<&ModelEntry> {
        let now = self.unobserved(now);
        self.entries
            .iter()
            .find(|entry| entry.key.logical == logical && entry.deadline > now)
    }

    /// Whether the policy has an eviction order the engine reports.
    fn keeps_order(&self) -> bool {
        matches!(
            self.config.policy,
            EvictionPolicy::Lru | EvictionPolicy::Fifo | EvictionPolicy::Lfu
        )
    }

    /// The entries in eviction order (for a policy that keeps one): the
    /// next victim first.
    fn in_eviction_order(&self) -> impl Iterator<Item = &ModelEntry> {
        let mut ordered: Vec<&ModelEntry> = self.entries.iter().collect();
        if self.config.policy == EvictionPolicy::Lfu {
            ordered.sort_by_key(|entry| entry.count); // stable: last use breaks ties
        }
        ordered.into_iter()
    }

    /// The live entries at `now`, unobserved, in eviction order.
    fn live(&self, now: Nanos) -> Vec<(Key, u64)> {
        let now = self.unobserved(now);
        self.in_eviction_order()
            .filter(|entry| entry.deadline > now)
            .map(|entry| (entry.key, entry.value))
            .collect()
    }

    fn store(&mut self, mut entry: ModelEntry) {
        entry.count = 1;
        self.entries.push(entry);
        self.stats.sets += 1;
        self.changes += 1;
    }

    /// Takes out the entry at `index`, counting it by `reason`.
    fn take(&mut self, index: usize, reason: ReleaseReason) -> ModelEntry {
        let entry = self.entries.remove(index);
        let count = match reason {
            ReleaseReason::Expired => &mut self.stats.expirations,
            ReleaseReason::Evicted => &mut self.stats.evictions,
            ReleaseReason::Rejected => &mut self.stats.rejections,
            ReleaseReason::Deleted | ReleaseReason::Replaced => &mut self.stats.deletions,
            ReleaseReason::Cleared => unreachable!("a clear counts its entries itself"),
        };
        *count += 1;
        self.changes += 1;
        entry
    }

    fn release(&mut self, index: usize, reason: ReleaseReason, out: &mut Vec<Release>) {
        let entry = self.take(index, reason);
        out.push((entry.key, entry.value, reason));
    }

    /// Takes out the live holder at `index` for `new`, which keeps the
    /// holder's key object; the released entry carries the new key.
    fn replace(&mut self, index: usize, new: &mut ModelEntry, out: &mut Vec<Release>) {
        let old = self.take(index, ReleaseReason::Replaced);
        out.push((new.key, old.value, ReleaseReason::Replaced));
        new.key = old.key;
    }

    /// Reaps every entry whose deadline has come.
    fn reap_expired(&mut self, out: &mut Vec<Release>) {
        self.last_scan = self.now;
        let mut index = 0;
        while index < self.entries.len() {
            if self.is_live(&self.entries[index]) {
                index += 1;
            } else {
                self.release(index, ReleaseReason::Expired, out);
            }
        }
    }

    /// The scan that every call observing `now` begins with.
    fn auto_scan(&mut self, out: &mut Vec<Release>) {
        if self.now - self.last_scan >= self.config.scan_interval {
            self.reap_expired(out);
        }
    }

    /// `observe` and `auto_scan`: how `get`, `insert`, `put`, `touch` and
    /// `remove` begin.
    fn begin(&mut self, now: Nanos, out: &mut Vec<Release>) {
        self.observe(now);
        self.auto_scan(out);
    }

    fn over_limits(&self, extra_items: u64, extra_bytes: u128) -> bool {
        let items = self.entries.len() as u64 + extra_items;
        let bytes = self.bytes() + extra_bytes;
        (self.config.max_items > 0 && items > self.config.max_items)
            || (self.config.max_bytes > 0 && bytes > u128::from(self.config.max_bytes))
    }

    /// Evicts one entry: the front for `lru`/`fifo`, the first of the
    /// lowest count for `lfu`; for `random` and `tinylfu` the next of the
    /// engine's victims, which must be live and not one being stored
    /// (`protected`).
    fn evict_one(&mut self, chosen: &mut VecDeque<Key>, protected: &[u8], out: &mut Vec<Release>) {
        let index = match self.config.policy {
            EvictionPolicy::Lru | EvictionPolicy::Fifo => 0,
            EvictionPolicy::Lfu => {
                let lowest = self.entries.iter().map(|entry| entry.count).min();
                self.entries
                    .iter()
                    .position(|entry| Some(entry.count) == lowest)
                    .expect("lfu: over a limit with no entry")
            }
            EvictionPolicy::External => unreachable!("the model runs the named policies"),
            EvictionPolicy::Random | EvictionPolicy::TinyLfu => {
                let key = chosen
                    .pop_front()
                    .expect("the engine evicted fewer entries than the limits need");
                assert!(
                    !protected.contains(&key.logical),
                    "the engine evicted an entry being stored"
                );
                let index = self
                    .entries
                    .iter()
                    .position(|entry| entry.key == key)
                    .expect("the engine evicted a key it does not hold");
                assert!(
                    self.is_live(&self.entries[index]),
                    "the engine evicted an expired entry"
                );
                index
            }
        };
        self.release(index, ReleaseReason::Evicted, out);
    }

    /// Room for `items` more entries of `bytes`: expired entries go first,
    /// live ones only if still needed.
    fn make_room(
        &mut self,
        items: u64,
        bytes: u128,
        chosen: &mut VecDeque<Key>,
        protected: &[u8],
        out: &mut Vec<Release>,
    ) {
        if self.over_limits(items, bytes) {
            self.reap_expired(out);
            while self.over_limits(items, bytes) {
                self.evict_one(chosen, protected, out);
            }
        }
    }

    /// `tinylfu`'s room for `new`: as `make_room`, except that the
    /// engine may let go of `new` itself instead (false: not stored).
    fn admit(
        &mut self,
        new: ModelEntry,
        chosen: &mut VecDeque<Key>,
        out: &mut Vec<Release>,
    ) -> bool {
        let size = u128::from(new.size);
        if self.over_limits(1, size) {
            self.reap_expired(out);
            while self.over_limits(1, size) {
                if chosen.front() == Some(&new.key) {
                    chosen.pop_front();
                    self.stats.sets += 1;
                    self.stats.rejections += 1;
                    self.changes += 2;
                    out.push((new.key, new.value, ReleaseReason::Rejected));
                    return false;
                }
                self.evict_one(chosen, &[new.key.logical], out);
            }
        }
        true
    }

    /// `get`: a hit counts and is a use under LRU; a miss counts; an
    /// expired holder is reaped (a miss).
    fn get(
        &mut self,
        matcher: &Matcher,
        now: Nanos,
        out: &mut Vec<Release>,
    ) -> Result<Option<u64>, Undecided> {
        self.begin(now, out);
        let found = self.probe(matcher)?;
        let Some(index) = found.filter(|&index| self.is_live(&self.entries[index])) else {
            if let Some(index) = found {
                self.release(index, ReleaseReason::Expired, out);
            }
            self.stats.misses += 1;
            return Ok(None);
        };
        self.stats.hits += 1;
        let mut entry = self.entries[index];
        if matches!(
            self.config.policy,
            EvictionPolicy::Lru | EvictionPolicy::Lfu
        ) {
            entry.count += 1;
            self.entries.remove(index);
            self.entries.push(entry);
        }
        Ok(Some(entry.value))
    }

    /// The live entry `peek`, `contains` and `deadline_of` read: they
    /// observe nothing, reap nothing, count nothing.
    fn find_unreaped(
        &self,
        matcher: &Matcher,
        now: Nanos,
    ) -> Result<Option<ModelEntry>, Undecided> {
        let now = self.unobserved(now);
        Ok(self
            .probe(matcher)?
            .map(|index| self.entries[index])
            .filter(|entry| entry.deadline > now))
    }

    /// `touch`: a live holder gets the new deadline and keeps its place; an
    /// expired one is reaped.
    fn touch(
        &mut self,
        matcher: &Matcher,
        deadline: Nanos,
        now: Nanos,
        out: &mut Vec<Release>,
    ) -> Result<bool, Undecided> {
        self.begin(now, out);
        let Some(index) = self.probe(matcher)? else {
            return Ok(false);
        };
        if !self.is_live(&self.entries[index]) {
            self.release(index, ReleaseReason::Expired, out);
            return Ok(false);
        }
        self.entries[index].deadline = deadline;
        Ok(true)
    }

    /// `insert` (`replace` false: a live holder refuses it) and `put`
    /// (`replace` true: a live holder is replaced). Too large refuses
    /// either, after the automatic scan and before the lookup.
    fn store_one(
        &mut self,
        mut new: ModelEntry,
        replace: bool,
        matcher: &Matcher,
        now: Nanos,
        chosen: &mut VecDeque<Key>,
        out: &mut Vec<Release>,
    ) -> Result<Result<(), Refusal>, Undecided> {
        self.begin(now, out);
        if self.too_large(new.size) {
            return Ok(Err(Refusal::TooLarge));
        }
        if let Some(index) = self.probe(matcher)? {
            if !self.is_live(&self.entries[index]) {
                self.release(index, ReleaseReason::Expired, out);
            } else if replace {
                self.replace(index, &mut new, out);
            } else {
                return Ok(Err(Refusal::Occupied));
            }
        }
        if self.config.policy == EvictionPolicy::TinyLfu {
            if self.admit(new, chosen, out) {
                self.store(new);
            }
        } else {
            self.make_room(1, u128::from(new.size), chosen, &[new.key.logical], out);
            self.store(new);
        }
        Ok(Ok(()))
    }

    /// `remove`: true for a live holder (deleted); an expired one is reaped.
    fn remove(
        &mut self,
        matcher: &Matcher,
        now: Nanos,
        out: &mut Vec<Release>,
    ) -> Result<bool, Undecided> {
        self.begin(now, out);
        let Some(index) = self.probe(matcher)? else {
            return Ok(false);
        };
        let live = self.is_live(&self.entries[index]);
        let reason = if live {
            ReleaseReason::Deleted
        } else {
            ReleaseReason::Expired
        };
        self.release(index, reason, out);
        Ok(live)
    }

    /// `store_batch`, all or nothing: every refusal is decided before
    /// anything changes (and before the automatic scan): an entry too large
    /// (the first), a batch over the limits on its own, and then, key by
    /// key in order, a lookup that cannot decide or (not replacing) a live
    /// holder. Then holders go (replaced, or reaped when expired), the
    /// automatic scan runs, room is made for the whole batch, and every
    /// entry is stored in order.
    fn store_batch(
        &mut self,
        batch: &[ModelEntry],
        matchers: &[Matcher],
        replace: bool,
        now: Nanos,
        chosen: &mut VecDeque<Key>,
        out: &mut Vec<Release>,
    ) -> Result<Result<(), BatchError>, Undecided> {
        self.observe(now);
        if let Some(position) = batch.iter().position(|new| self.too_large(new.size)) {
            return Ok(Err(BatchError::TooLarge(position)));
        }
        let total: u128 = batch.iter().map(|new| u128::from(new.size)).sum();
        let items = batch.len() as u64;
        if (self.config.max_items > 0 && items > self.config.max_items)
            || (self.config.max_bytes > 0 && total > u128::from(self.config.max_bytes))
        {
            return Ok(Err(BatchError::DoesNotFit));
        }
        let mut holders = Vec::new();
        for (position, matcher) in matchers.iter().enumerate() {
            if let Some(index) = self.probe(matcher)? {
                let holder = self.entries[index];
                if self.is_live(&holder) && !replace {
                    return Ok(Err(BatchError::Occupied(position)));
                }
                holders.push((position, holder.key));
            }
        }
        let mut batch = batch.to_vec();
        for (position, held) in holders {
            let index = self
                .entries
                .iter()
                .position(|entry| entry.key == held)
                .expect("a holder went away");
            if self.is_live(&self.entries[index]) {
                self.replace(index, &mut batch[position], out);
            } else {
                self.release(index, ReleaseReason::Expired, out);
            }
        }
        self.auto_scan(out);
        let logicals: Vec<u8> = batch.iter().map(|new| new.key.logical).collect();
        self.make_room(items, total, chosen, &logicals, out);
        for new in batch {
            self.store(new);
        }
        Ok(Ok(()))
    }

    fn scan(&mut self, now: Nanos, chosen: &mut VecDeque<Key>, out: &mut Vec<Release>) {
        self.observe(now);
        self.reap_expired(out);
        while self.over_limits(0, 0) {
            self.evict_one(chosen, &[], out);
        }
    }

    /// Every entry goes, released as `Cleared`; the statistics count the
    /// live ones as deletions and the expired ones as expirations.
    fn clear(&mut self, now: Nanos, out: &mut Vec<Release>) {
        self.observe(now);
        for entry in std::mem::take(&mut self.entries) {
            if self.is_live(&entry) {
                self.stats.deletions += 1;
            } else {
                self.stats.expirations += 1;
            }
            self.changes += 1;
            out.push((entry.key, entry.value, ReleaseReason::Cleared));
        }
    }
}

/// Whether a release made room (an eviction, or a rejection by admission).
fn is_eviction(reason: ReleaseReason) -> bool {
    matches!(reason, ReleaseReason::Evicted | ReleaseReason::Rejected)
}

/// A size from the input: mostly small; sometimes around and past the 32
/// bits an entry stores a size in, and sometimes anything.
fn decode_size(input: &mut Input) -> u64 {
    match input.below(16) {
        0 => u64::from(u32::MAX) - 1 + u64::from(input.below(3)),
        1 => input.u64(),
        _ => u64::from(input.below(13)),
    }
}

/// What the engine shows from outside, before a call that may be undecided.
#[derive(Clone, Copy, Debug)]
struct Snapshot {
    len: usize,
    bytes: u128,
    generation: u64,
    stats: Stats,
}

/// The engine and the model side by side, over one clock.
struct Harness {
    cache: Cache<Key, u64>,
    model: Model,
    /// The driver's clock; it may reach `u64::MAX`, which both clamp.
    now: Nanos,
    next_value: u64,
    next_id: u32,
    /// The key object last made for each logical key.
    last: [Option<Key>; KEYS as usize],
    step: usize,
    /// The step being checked, for failure messages.
    op: Op,
    /// `Cache::generation` when the step began.
    generation: u64,
}

impl Harness {
    fn new(config: Config, now: Nanos, seed: u64) -> Self {
        let cache = Cache::with_seed(config, now, seed);
        Harness {
            generation: cache.generation(),
            cache,
            model: Model::new(config, now),
            now,
            next_value: 0,
            next_id: 0,
            last: [None; KEYS as usize],
            step: 0,
            op: Op::New,
        }
    }

    /// The step, for failure messages (formatted only on failure).
    fn context(&self) -> String {
        format!("step {} {:?} at {}", self.step, self.op, self.now)
    }

    /// A key object for `logical`: the one stored (the same object), the
    /// one last made (held or not), or a new one, plain or foreign.
    fn decode_key(&mut self, input: &mut Input, logical: u8) -> Key {
        let reuse = match input.below(8) {
            0 | 1 => self
                .model
                .entries
                .iter()
                .find(|entry| entry.key.logical == logical)
                .map(|entry| entry.key),
            2 => self.last[usize::from(logical)],
            _ => None,
        };
        if let Some(key) = reuse {
            return key;
        }
        let key = Key {
            logical,
            id: self.next_id,
            foreign: input.below(5) == 0,
        };
        self.next_id += 1;
        self.last[usize::from(logical)] = Some(key);
        key
    }

    fn decode_any_key(&mut self, input: &mut Input) -> Key {
        let logical = input.below(KEYS);
        self.decode_key(input, logical)
    }

    fn new_value(&mut self) -> u64 {
        self.next_value += 1;
        self.next_value
    }

    fn decode_entry(
        &mut self,
        input: &mut Input,
        logical: u8,
        deadline: Option<Nanos>,
    ) -> ModelEntry {
        let key = self.decode_key(input, logical);
        let size = decode_size(input);
        let deadline = deadline.unwrap_or_else(|| decode_deadline(input, self.now));
        ModelEntry {
            key,
            value: self.new_value(),
            size,
            deadline,
            count: 1,
        }
    }

    /// A batch of one to [`BATCH`] entries of distinct logical keys (the
    /// engine requires distinct keys) and one deadline.
    fn decode_batch(&mut self, input: &mut Input) -> Op {
        let replace = input.below(2) == 1;
        let count = 1 + input.below(BATCH);
        let deadline = decode_deadline(input, self.now);
        let mut logicals = Vec::new();
        for _ in 0..count {
            let mut logical = input.below(KEYS);
            while logicals.contains(&logical) {
                logical = (logical + 1) % KEYS;
            }
            logicals.push(logical);
        }
        let entries = logicals
            .into_iter()
            .map(|logical| self.decode_entry(input, logical, Some(deadline)))
            .collect();
        Op::StoreBatch { replace, entries }
    }

    /// The engine's released entries as `(key, value, reason)`, checking
    /// that each `needs_close` came back with its value.
    fn unpack(released: Released<Key, u64>) -> Vec<Release> {
        released
            .into_iter()
            .map(|r| {
                assert_eq!(
                    r.needs_close,
                    r.value % 2 == 1,
                    "needs_close of {:?} came back changed",
                    r.key
                );
                (r.key, r.value, r.reason)
            })
            .collect()
    }

    /// The engine's evictions (and rejections), which `random` and
    /// `tinylfu` hand to the model.
    fn chosen(&self, engine: &[Release]) -> VecDeque<Key> {
        match self.model.config.policy {
            EvictionPolicy::Random | EvictionPolicy::TinyLfu => engine
                .iter()
                .filter(|r| is_eviction(r.2))
                .map(|r| r.0)
                .collect(),
            EvictionPolicy::Lru | EvictionPolicy::Fifo | EvictionPolicy::Lfu => VecDeque::new(),
            EvictionPolicy::External => unreachable!("the model runs the named policies"),
        }
    }

    /// Same entries released for the same reasons: the rest as multisets,
    /// evictions in order and after everything else.
    fn compare_released(&self, engine: &[Release], model: &[Release], chosen: &VecDeque<Key>) {
        assert!(
            chosen.is_empty(),
            "{}: the engine evicted more than needed: {engine:?}",
            self.context()
        );
        let first_eviction = engine
            .iter()
            .position(|r| is_eviction(r.2))
            .unwrap_or(engine.len());
        assert!(
            engine[first_eviction..].iter().all(|r| is_eviction(r.2)),
            "{}: an eviction before a reap: {engine:?}",
            self.context()
        );
        let split = |released: &[Release]| {
            let mut reaped: Vec<Release> = released
                .iter()
                .copied()
                .filter(|r| !is_eviction(r.2))
                .collect();
            reaped.sort_unstable_by_key(|&(key, value, reason)| (key, value, reason as u8));
            let evicted: Vec<Release> = released
                .iter()
                .copied()
                .filter(|r| is_eviction(r.2))
                .collect();
            (reaped, evicted)
        };
        let (engine_reaped, engine_evicted) = split(engine);
        let (model_reaped, model_evicted) = split(model);
        assert_eq!(
            engine_reaped,
            model_reaped,
            "{}: released entries (engine left, model right)",
            self.context()
        );
        assert_eq!(
            engine_evicted,
            model_evicted,
            "{}: evictions (engine left, model right)",
            self.context()
        );
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            len: self.cache.len(),
            bytes: self.cache.bytes(),
            generation: self.cache.generation(),
            stats: self.cache.stats(),
        }
    }

    /// Runs an operation on the keys `keys` on both sides, as the binding
    /// does: a first try; when the engine answers undecided, a check that
    /// it changed nothing but what its automatic scan reaped, the
    /// candidates of every key settled here by the real key, and a second
    /// try, which must decide. Each try's result and releases must match
    /// the model's.
    fn keyed<R, E, M>(&mut self, keys: &[Key], mut engine: E, mut model: M)
    where
        R: PartialEq + Debug,
        E: FnMut(&mut Cache<Key, u64>, &[Matcher], &mut Released<Key, u64>) -> Result<R, Undecided>,
        M: FnMut(
            &mut Model,
            &[Matcher],
            &mut VecDeque<Key>,
            &mut Vec<Release>,
        ) -> Result<R, Undecided>,
    {
        let first: Vec<Matcher> = keys.iter().copied().map(Matcher::first).collect();
        let before = self.snapshot();
        let held = self.model.entries.clone();
        let Err(reaped) = self.attempt(&first, &mut engine, &mut model) else {
            return;
        };
        self.check_unchanged(&before, &held, &reaped);
        let settled: Vec<Matcher> = first.iter().map(|matcher| self.settle(matcher)).collect();
        let decided = self.attempt(&settled, &mut engine, &mut model).is_ok();
        assert!(
            decided,
            "{}: undecided with every candidate settled",
            self.context()
        );
    }

    /// One try of [`Harness::keyed`]; `Err` with what the engine released
    /// when both sides answered undecided.
    fn attempt<R, E, M>(
        &mut self,
        matchers: &[Matcher],
        engine: &mut E,
        model: &mut M,
    ) -> Result<(), Vec<Release>>
    where
        R: PartialEq + Debug,
        E: FnMut(&mut Cache<Key, u64>, &[Matcher], &mut Released<Key, u64>) -> Result<R, Undecided>,
        M: FnMut(
            &mut Model,
            &[Matcher],
            &mut VecDeque<Key>,
            &mut Vec<Release>,
        ) -> Result<R, Undecided>,
    {
        let mut released = Released::new();
        let got = engine(&mut self.cache, matchers, &mut released);
        let released = Self::unpack(released);
        let mut chosen = self.chosen(&released);
        let mut out = Vec::new();
        let expected = model(&mut self.model, matchers, &mut chosen, &mut out);
        assert_eq!(
            got,
            expected,
            "{}: result with {matchers:?} (engine left, model right)",
            self.context()
        );
        self.compare_released(&released, &out, &chosen);
        match got {
            Ok(_) => Ok(()),
            Err(Undecided) => Err(released),
        }
    }

    /// An undecided call changed nothing beyond what its automatic scan
    /// reaped (`reaped`, of the entries `held` before it): not the items,
    /// the bytes, the statistics or the generation.
    fn check_unchanged(&self, before: &Snapshot, held: &[ModelEntry], reaped: &[Release]) {
        let context = || self.context();
        assert!(
            reaped.iter().all(|r| r.2 == ReleaseReason::Expired),
            "{}: an undecided call released more than expired entries: {reaped:?}",
            context()
        );
        let reaped_bytes: u128 = reaped
            .iter()
            .map(|r| {
                let entry = held.iter().find(|entry| entry.value == r.1);
                u128::from(entry.expect("reaped an entry not held").size)
            })
            .sum();
        assert_eq!(
            self.cache.len(),
            before.len - reaped.len(),
            "{}: len after an undecided call",
            context()
        );
        assert_eq!(
            self.cache.bytes(),
            before.bytes - reaped_bytes,
            "{}: bytes after an undecided call",
            context()
        );
        let mut stats = before.stats;
        stats.expirations += reaped.len() as u64;
        assert_eq!(
            self.cache.stats(),
            stats,
            "{}: statistics after an undecided call",
            context()
        );
        let generation = self.cache.generation();
        let reaped_any = !reaped.is_empty();
        assert!(
            generation >= before.generation && (generation != before.generation) == reaped_any,
            "{}: generation {} -> {generation} after an undecided call that reaped {}",
            context(),
            before.generation,
            reaped.len()
        );
    }

    /// The binding's settling of one key: the engine's candidates (which
    /// must be the model's), compared here by the real key; the matcher for
    /// the second try names the one found equal.
    fn settle(&self, first: &Matcher) -> Matcher {
        let mut candidates = Vec::new();
        self.cache.candidates(
            hash_of(first.key.logical),
            |stored| first.compare(*stored),
            |stored| candidates.push(*stored),
        );
        candidates.sort_unstable();
        assert_eq!(
            candidates,
            self.model.candidates(first),
            "{}: candidates of {:?} (engine left, model right)",
            self.context(),
            first.key
        );
        let winner = candidates
            .iter()
            .find(|stored| stored.logical == first.key.logical)
            .map(|stored| stored.id);
        Matcher::settled(first.key, winner)
    }

    /// Everything the engine shows must match the model.
    fn check(&mut self) {
        let context = || self.context();
        assert_eq!(
            self.cache.latest_now(),
            self.model.now,
            "{}: latest_now",
            context()
        );
        assert_eq!(
            self.cache.len(),
            self.model.entries.len(),
            "{}: len",
            context()
        );
        assert_eq!(
            self.cache.bytes(),
            self.model.bytes(),
            "{}: bytes",
            context()
        );
        assert_eq!(
            self.cache.stats(),
            self.model.stats,
            "{}: statistics (engine left, model right)",
            context()
        );
        let generation = self.cache.generation();
        assert!(
            generation >= self.generation
                && (generation != self.generation) == (self.model.changes > 0),
            "{}: generation {} -> {generation} with {} entries stored or taken out",
            context(),
            self.generation,
            self.model.changes
        );
        let config = self.model.config;
        if config.max_items > 0 {
            assert!(
                self.cache.len() as u64 <= config.max_items,
                "{}: over max_items",
                context()
            );
        }
        if config.max_bytes > 0 {
            assert!(
                self.cache.bytes() <= u128::from(config.max_bytes),
                "{}: over max_bytes",
                context()
            );
        }
        let now = self.now;
        for logical in 0..KEYS {
            let hash = hash_of(logical);
            let eq = |stored: &Key| stored.logical == logical;
            let expected = self.model.live_entry(logical, now);
            assert_eq!(
                self.cache.peek(hash, eq, now).map(Option::<&u64>::copied),
                Ok(expected.map(|entry| entry.value)),
                "{}: peek({logical})",
                context()
            );
            assert_eq!(
                self.cache.deadline_of(hash, eq, now),
                Ok(expected.map(|entry| entry.deadline)),
                "{}: deadline_of({logical})",
                context()
            );
        }
        // A cache without limits keeps no eviction order (it never evicts).
        if self.model.bounded() && self.model.keeps_order() {
            let order: Vec<Key> = self.cache.eviction_order().into_iter().copied().collect();
            let expected: Vec<Key> = self
                .model
                .in_eviction_order()
                .map(|entry| entry.key)
                .collect();
            assert_eq!(order, expected, "{}: eviction order", context());
            let front = self.model.in_eviction_order().next();
            assert_eq!(
                self.cache
                    .upcoming_victim()
                    .map(|(key, value)| (*key, *value)),
                front.map(|entry| (entry.key, entry.value)),
                "{}: upcoming victim",
                context()
            );
        }
        // The binding skips reading its clock when the time cannot matter.
        let timed = self
            .model
            .entries
            .iter()
            .any(|entry| entry.deadline != NEVER);
        let gated = config.scan_interval != 0 && config.scan_interval != NEVER;
        assert_eq!(
            self.cache.needs_time(),
            timed || gated,
            "{}: needs_time",
            context()
        );
        if !self.op.cannot_change_structures() {
            self.cache.validate();
        }
    }

    /// Applies `op` to both sides and compares what they report.
    fn apply(&mut self, op: Op) {
        self.step += 1;
        self.op = op.clone();
        self.generation = self.cache.generation();
        self.model.changes = 0;
        match op {
            Op::New | Op::Advance => {}
            Op::Insert(entry) => self.store_one(entry, false),
            Op::Put(entry) => self.store_one(entry, true),
            Op::Get(key) => self.get(key),
            Op::Peek(key) => self.peek(key),
            Op::Contains(key) => self.contains(key),
            Op::DeadlineOf(key) => self.deadline_of(key),
            Op::Touch { key, deadline } => self.touch(key, deadline),
            Op::Remove(key) => self.remove(key),
            Op::StoreBatch { replace, entries } => self.store_batch(&entries, replace),
            Op::Scan => self.scan(),
            Op::Clear => self.clear(),
            Op::ResetStats => {
                self.cache.reset_stats();
                self.model.stats = Stats::default();
            }
            Op::CloseErrors(errors) => {
                self.cache.count_close_errors(errors);
                self.model.stats.close_errors += errors;
            }
            Op::LiveOrder => self.live_order(),
        }
        self.check();
    }

    /// `insert`, or `put` when `replace`.
    fn store_one(&mut self, entry: ModelEntry, replace: bool) {
        let (now, step) = (self.now, self.step);
        self.keyed(
            &[entry.key],
            |cache, matchers, released| {
                let matcher = matchers[0];
                let eq = |stored: &Key| matcher.compare(*stored);
                let result = if replace {
                    cache.put(entry.new_entry(), eq, now, released)
                } else {
                    cache.insert(entry.new_entry(), eq, now, released)
                };
                let Err(refused) = result else {
                    return Ok(Ok(()));
                };
                let refusal = match &refused {
                    InsertError::Occupied { .. } => Some(Refusal::Occupied),
                    InsertError::TooLarge { .. } => Some(Refusal::TooLarge),
                    InsertError::Undecided { .. } => None,
                    InsertError::NeedsRoom { .. } => unreachable!("only under External"),
                };
                assert_eq!(
                    refused.into_entry(),
                    (entry.key, entry.value),
                    "step {step}: the refused entry came back changed"
                );
                refusal.map(Err).ok_or(Undecided)
            },
            |model, matchers, chosen, out| {
                model.store_one(entry, replace, &matchers[0], now, chosen, out)
            },
        );
    }

    fn get(&mut self, key: Key) {
        let now = self.now;
        self.keyed(
            &[key],
            |cache, matchers, released| {
                let eq = |stored: &Key| matchers[0].compare(*stored);
                Ok(cache.get(hash_of(key.logical), eq, now, released)?.copied())
            },
            |model, matchers, _, out| model.get(&matchers[0], now, out),
        );
    }

    fn peek(&mut self, key: Key) {
        let now = self.now;
        self.keyed(
            &[key],
            |cache, matchers, _| {
                let eq = |stored: &Key| matchers[0].compare(*stored);
                Ok(cache.peek(hash_of(key.logical), eq, now)?.copied())
            },
            |model, matchers, _, _| {
                Ok(model
                    .find_unreaped(&matchers[0], now)?
                    .map(|entry| entry.value))
            },
        );
    }

    fn contains(&mut self, key: Key) {
        let now = self.now;
        self.keyed(
            &[key],
            |cache, matchers, _| {
                let eq = |stored: &Key| matchers[0].compare(*stored);
                cache.contains(hash_of(key.logical), eq, now)
            },
            |model, matchers, _, _| Ok(model.find_unreaped(&matchers[0], now)?.is_some()),
        );
    }

    fn deadline_of(&mut self, key: Key) {
        let now = self.now;
        self.keyed(
            &[key],
            |cache, matchers, _| {
                let eq = |stored: &Key| matchers[0].compare(*stored);
                cache.deadline_of(hash_of(key.logical), eq, now)
            },
            |model, matchers, _, _| {
                Ok(model
                    .find_unreaped(&matchers[0], now)?
                    .map(|entry| entry.deadline))
            },
        );
    }

    fn touch(&mut self, key: Key, deadline: Nanos) {
        let now = self.now;
        self.keyed(
            &[key],
            |cache, matchers, released| {
                let eq = |stored: &Key| matchers[0].compare(*stored);
                cache.touch(hash_of(key.logical), eq, deadline, now, released)
            },
            |model, matchers, _, out| model.touch(&matchers[0], deadline, now, out),
        );
    }

    fn remove(&mut self, key: Key) {
        let now = self.now;
        self.keyed(
            &[key],
            |cache, matchers, released| {
                let eq = |stored: &Key| matchers[0].compare(*stored);
                let removed = cache.remove(hash_of(key.logical), eq, now, released)?;
                let live = removed
                    .as_ref()
                    .is_some_and(|entry| entry.reason == ReleaseReason::Deleted);
                released.extend(removed);
                Ok(live)
            },
            |model, matchers, _, out| model.remove(&matchers[0], now, out),
        );
    }

    fn store_batch(&mut self, entries: &[ModelEntry], replace: bool) {
        let (now, step) = (self.now, self.step);
        let keys: Vec<Key> = entries.iter().map(|entry| entry.key).collect();
        let pairs: Vec<(Key, u64)> = entries.iter().map(|e| (e.key, e.value)).collect();
        self.keyed(
            &keys,
            |cache, matchers, released| {
                let batch = entries.iter().map(|entry| entry.new_entry()).collect();
                let eq = |position: usize, stored: &Key| matchers[position].compare(*stored);
                match cache.store_batch(batch, eq, replace, now, released) {
                    Ok(()) => Ok(Ok(())),
                    Err((error, back)) => {
                        let back: Vec<(Key, u64)> =
                            back.into_iter().map(|new| (new.key, new.value)).collect();
                        assert_eq!(
                            back, pairs,
                            "step {step}: the refused batch came back changed"
                        );
                        if error == BatchError::Undecided {
                            Err(Undecided)
                        } else {
                            Ok(Err(error))
                        }
                    }
                }
            },
            |model, matchers, chosen, out| {
                model.store_batch(entries, matchers, replace, now, chosen, out)
            },
        );
    }

    fn scan(&mut self) {
        let mut released = Released::new();
        self.cache.scan(self.now, &mut released);
        let engine = Self::unpack(released);
        let mut chosen = self.chosen(&engine);
        let mut model = Vec::new();
        self.model.scan(self.now, &mut chosen, &mut model);
        self.compare_released(&engine, &model, &chosen);
    }

    fn clear(&mut self) {
        let mut released = Released::new();
        self.cache.clear(self.now, &mut released);
        let engine = Self::unpack(released);
        let mut model = Vec::new();
        self.model.clear(self.now, &mut model);
        self.compare_released(&engine, &model, &VecDeque::new());
    }

    /// `for_each_live`: the model's live entries, in eviction order where
    /// the policy keeps one (bounded `lru`/`fifo`), as a set otherwise.
    fn live_order(&mut self) {
        let mut got = Vec::new();
        self.cache
            .for_each_live(self.now, |key, value| got.push((*key, *value)));
        let mut expected = self.model.live(self.now);
        if !self.model.bounded() || !self.model.keeps_order() {
            got.sort_unstable();
            expected.sort_unstable();
        }
        assert_eq!(
            got,
            expected,
            "{}: live entries (engine left, model right)",
            self.context()
        );
    }

    fn advance(&mut self, input: &mut Input) {
        let deadlines: Vec<Nanos> = self
            .model
            .entries
            .iter()
            .map(|entry| entry.deadline)
            .collect();
        self.now = decode_advance(input, self.now, &deadlines);
        self.apply(Op::Advance);
    }
}

/// Decodes `data` into a cache configuration and a run of operations, and
/// drives [`Cache`] and the model side by side, comparing them after every
/// step.
///
/// # Panics
/// When the engine and the model disagree, or `Cache::validate` fails.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let policy = EvictionPolicy::ALL[usize::from(input.below(EvictionPolicy::ALL.len() as u8))];
    let max_items = u64::from(input.below(9));
    let max_bytes = u64::from(input.below(31));
    let scan_interval = match input.below(4) {
        0 => 0,
        1 => u64::from(input.byte()) + 1,
        2 => input.bytes(2) << 8,
        _ => NEVER,
    };
    let start = match input.below(4) {
        0 => 0,
        1 => input.bytes(4),
        2 => NEVER - (1 << 40) + input.bytes(4),
        _ => input.u64(),
    };
    let seed = u64::from(input.byte());
    let config = Config {
        policy,
        max_items,
        max_bytes,
        scan_interval,
    };
    let mut harness = Harness::new(config, start, seed);
    harness.apply(Op::New);
    while !input.is_empty() {
        let op = match input.below(32) {
            0..=5 => {
                let logical = input.below(KEYS);
                Op::Insert(harness.decode_entry(&mut input, logical, None))
            }
            6..=8 => {
                let logical = input.below(KEYS);
                Op::Put(harness.decode_entry(&mut input, logical, None))
            }
            9..=11 => Op::Get(harness.decode_any_key(&mut input)),
            12 => Op::Contains(harness.decode_any_key(&mut input)),
            13 => Op::Peek(harness.decode_any_key(&mut input)),
            14 => Op::DeadlineOf(harness.decode_any_key(&mut input)),
            15 | 16 => Op::Remove(harness.decode_any_key(&mut input)),
            17 => {
                let key = harness.decode_any_key(&mut input);
                let deadline = decode_deadline(&mut input, harness.now);
                Op::Touch { key, deadline }
            }
            18 | 19 => harness.decode_batch(&mut input),
            20 => Op::LiveOrder,
            21 if input.below(2) == 0 => Op::ResetStats,
            21 => Op::CloseErrors(u64::from(input.below(3))),
            // A clear is rarer than the rest: it empties everything it follows.
            22 if input.below(4) == 0 => Op::Clear,
            22 | 23 => Op::Scan,
            _ => {
                harness.advance(&mut input);
                continue;
            }
        };
        harness.apply(op);
    }
    harness.now = NEVER;
    harness.apply(Op::Scan);
    assert!(
        harness
            .model
            .entries
            .iter()
            .all(|entry| entry.deadline == NEVER),
        "a deadline outlived the clock"
    );
    harness.apply(Op::LiveOrder);
    harness.apply(Op::Clear);
}

/// A [`TimerWheel`] over a vector of nodes and its model, a `BTreeSet` of
/// `(deadline, id)`, driven side by side: the one wheel model, for the
/// fuzzer ([`run_wheel`]) and the wheel's own tests.
pub(crate) struct WheelHarness {
    pub(crate) wheel: TimerWheel,
    nodes: TimerNodeVec,
    model: BTreeSet<(Nanos, usize)>,
    pub(crate) now: Nanos,
    /// Operations so far, for failure messages.
    step: usize,
}

impl WheelHarness {
    /// A wheel over nodes `0..ids`, whose clock starts at `now`.
    pub(crate) fn new(ids: usize, now: Nanos) -> Self {
        WheelHarness {
            wheel: TimerWheel::new(now),
            nodes: TimerNodeVec(vec![TimerNode::default(); ids]),
            model: BTreeSet::new(),
            now,
            step: 0,
        }
    }

    /// Nodes scheduled, by the model.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.model.len()
    }

    /// Gives node `index` the deadline `deadline`, scheduled or not before.
    pub(crate) fn schedule(&mut self, index: usize, deadline: Nanos) {
        self.step += 1;
        let id = SlotId::from_index(index);
        self.forget(index);
        self.wheel.reschedule(&mut self.nodes, id, deadline);
        if deadline != NEVER {
            self.model.insert((deadline, index));
        }
        assert_eq!(
            TimerWheel::is_scheduled(&self.nodes, id),
            deadline != NEVER,
            "step {}: #{index} scheduled",
            self.step
        );
    }

    /// Takes node `index` out, whether or not it is in the wheel.
    pub(crate) fn deschedule(&mut self, index: usize) {
        self.step += 1;
        let id = SlotId::from_index(index);
        self.forget(index);
        self.wheel.deschedule(&mut self.nodes, id);
        assert!(
            !TimerWheel::is_scheduled(&self.nodes, id),
            "step {}: #{index} still scheduled",
            self.step
        );
    }

    /// Takes node `index` out of the model.
    fn forget(&mut self, index: usize) {
        let deadline = self.nodes.deadline(SlotId::from_index(index));
        if deadline != NEVER {
            assert!(
                self.model.remove(&(deadline, index)),
                "step {}: #{index} unknown to the model",
                self.step
            );
        }
    }

    /// Forgets every node, as the cache's `clear` does (it drops them).
    pub(crate) fn clear(&mut self) {
        self.step += 1;
        self.wheel.clear();
        self.model.clear();
        self.nodes.0.fill(TimerNode::default());
    }

    /// Moves the clock to `now`. With `always`, advances the wheel; without,
    /// only when `nothing_due` says to look, as the cache does (a skipped
    /// advance leaves the wheel behind the clock). Checks the due ids.
    pub(crate) fn advance(&mut self, now: Nanos, always: bool) {
        self.step += 1;
        let step = self.step;
        self.now = now;
        if !always && self.wheel.nothing_due(now) {
            return;
        }
        let mut due = Vec::new();
        self.wheel.advance(&mut self.nodes, now, &mut due);
        let mut got: Vec<usize> = due.iter().map(|id| id.index()).collect();
        got.sort_unstable();
        let mut expected = Vec::new();
        while self
            .model
            .first()
            .is_some_and(|&(deadline, _)| deadline <= now)
        {
            expected.extend(self.model.pop_first().map(|(_, index)| index));
        }
        expected.sort_unstable();
        assert_eq!(got, expected, "step {step}: due ids at {now}");
        for id in due {
            assert!(
                !TimerWheel::is_scheduled(&self.nodes, id),
                "step {step}: due {id:?} still scheduled"
            );
        }
    }

    /// `nothing_due` tells the truth, and the wheel's own invariants hold
    /// over exactly the nodes the model has scheduled.
    pub(crate) fn check(&self) {
        let step = self.step;
        if self.wheel.nothing_due(self.now) {
            assert!(
                self.model
                    .first()
                    .is_none_or(|&(deadline, _)| deadline > self.now),
                "step {step}: nothing_due({}) lied",
                self.now
            );
        }
        let mut scheduled: Vec<usize> = self
            .wheel
            .validate(&self.nodes, self.nodes.0.len() + 1)
            .into_iter()
            .map(SlotId::index)
            .collect();
        scheduled.sort_unstable();
        let expected: BTreeSet<usize> = self.model.iter().map(|&(_, index)| index).collect();
        assert_eq!(
            scheduled,
            expected.into_iter().collect::<Vec<_>>(),
            "step {step}: scheduled ids"
        );
        assert_eq!(
            self.wheel.len(),
            self.model.len(),
            "step {step}: wheel length"
        );
    }

    /// The deadlines scheduled, soonest first.
    fn deadlines(&self) -> Vec<Nanos> {
        self.model.iter().map(|&(deadline, _)| deadline).collect()
    }
}

/// Decodes `data` into a run of schedule/deschedule/advance/clear calls on
/// a [`TimerWheel`] over a few ids, and checks after every step that it
/// agrees with its model (see [`WheelHarness`]). The run ends with an
/// advance to the end of time, which must leave the wheel empty.
///
/// # Panics
/// When the wheel and the model disagree, or `TimerWheel::validate` fails.
pub fn run_wheel(data: &[u8]) {
    const IDS: usize = 24;
    let mut input = Input::new(data);
    let start = match input.below(4) {
        0 => 0,
        1 => input.bytes(5),
        2 => LATEST_NOW - input.bytes(5),
        _ => input.u64().min(LATEST_NOW),
    };
    let mut harness = WheelHarness::new(IDS, start);
    while !input.is_empty() {
        match input.below(8) {
            // 0-2 (re)schedule a node, 3 only takes it off.
            action @ 0..=3 => {
                let index = usize::from(input.byte()) % IDS;
                if action < 3 {
                    // The cache never files a NEVER deadline.
                    let deadline = decode_deadline(&mut input, harness.now).min(LATEST_NOW);
                    harness.schedule(index, deadline);
                } else {
                    harness.deschedule(index);
                }
            }
            // Rarer than the rest.
            4 => {
                if input.below(4) == 0 {
                    harness.clear();
                }
            }
            _ => {
                let deadlines = harness.deadlines();
                let now = decode_advance(&mut input, harness.now, &deadlines).min(LATEST_NOW);
                harness.advance(now, input.below(2) == 0);
            }
        }
        harness.check();
    }
    harness.advance(LATEST_NOW, false);
    harness.check();
    assert!(
        harness.wheel.is_empty(),
        "entries left after advancing to the end of time"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn random_inputs(seed: u64, count: usize, max_len: usize, mut each: impl FnMut(&[u8])) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut data = Vec::with_capacity(max_len);
        for _ in 0..count {
            let len = rng.random_range(0..=max_len);
            data.clear();
            data.extend((0..len).map(|_| rng.random::<u8>()));
            each(&data);
        }
    }

    #[test]
    fn cache_agrees_with_the_model_on_random_inputs() {
        random_inputs(1, 2_500, 250, run);
    }

    #[test]
    fn wheel_agrees_with_the_model_on_random_inputs() {
        random_inputs(2, 2_500, 300, run_wheel);
    }

    #[test]
    fn empty_and_tiny_inputs_run() {
        run(&[]);
        run_wheel(&[]);
        for byte in 0..=255 {
            run(&[byte]);
            run_wheel(&[byte]);
        }
    }
}
