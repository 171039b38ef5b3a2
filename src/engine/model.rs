//! Reference models of the cache and of the timing wheel, and byte-driven
//! runners that check the engine against them after every step. Compiled
//! only for tests and for the fuzzers (`--cfg fuzzing`, which cargo-fuzz
//! sets); `fuzz/fuzz_targets/*.rs` are thin shells over [`run`] and
//! [`run_wheel`].
//!
//! The cache model is meant to be obviously right rather than fast: a `Vec`
//! of entries in eviction order (front = next LRU/FIFO victim), linear
//! scans, and the behaviour contract (the project's SPEC) written out step by
//! step. Every difference the comparison tolerates carries its reason:
//! - entries released together by one reap (a scan, a lookup of an expired
//!   key) have no defined order, so they are compared as multisets;
//!   evictions come last and in policy order, and are compared in order;
//! - `random` picks its victims with the engine's RNG, so the model takes
//!   the engine's victims and checks that each was a live entry, not the new
//!   one, and that the engine evicted exactly as many as the limits needed.
//!
//! The wheel model is a `BTreeSet` of `(deadline, id)`.
//!
//! Both runners decode the input a byte at a time and read zeros once it is
//! exhausted, so every byte string is a valid test case.

#![cfg(any(test, fuzzing))]

use std::collections::{BTreeSet, VecDeque};

use super::arena::SlotId;
use super::time::{Nanos, LATEST_NOW, NEVER};
use super::wheel::{TimerNode, TimerNodeVec, TimerNodes, TimerWheel, TICK_SHIFT};
use super::{Cache, Config, EvictionPolicy, InsertError, NewEntry, ReleaseReason, Released};

/// Keys are `0..KEYS`: few enough that operations keep hitting each other.
const KEYS: u8 = 16;

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

type Release = (u8, u64, ReleaseReason);

/// One step of a cache run, for failure messages (formatted only then).
#[derive(Clone, Copy, Debug)]
enum Op {
    New,
    Insert { key: u8, size: u64, deadline: Nanos },
    Get(u8),
    Contains(u8),
    Remove(u8),
    Scan,
    Clear,
    Advance,
}

/// Why an insert was refused, as both sides report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Occupied,
    TooLarge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ModelEntry {
    key: u8,
    value: u64,
    size: u64,
    deadline: Nanos,
}

/// The cache as the contract describes it.
#[derive(Debug)]
struct Model {
    config: Config,
    /// Every entry held, expired ones included, in eviction order for
    /// `lru`/`fifo`: a set appends, an LRU hit moves to the back.
    entries: Vec<ModelEntry>,
    /// The latest `now` seen, clamped to `LATEST_NOW`: time never goes back.
    now: Nanos,
    /// When expired entries were last all reaped.
    last_scan: Nanos,
}

impl Model {
    fn new(config: Config, now: Nanos) -> Self {
        let now = now.min(LATEST_NOW);
        Model {
            config,
            entries: Vec::new(),
            now,
            last_scan: now,
        }
    }

    fn observe(&mut self, now: Nanos) {
        self.now = self.now.max(now.min(LATEST_NOW));
    }

    fn is_live(&self, entry: &ModelEntry) -> bool {
        entry.deadline > self.now
    }

    fn position(&self, key: u8) -> Option<usize> {
        self.entries.iter().position(|entry| entry.key == key)
    }

    fn bytes(&self) -> u128 {
        self.entries
            .iter()
            .map(|entry| u128::from(entry.size))
            .sum()
    }

    fn take(&mut self, index: usize, reason: ReleaseReason, out: &mut Vec<Release>) {
        let entry = self.entries.remove(index);
        out.push((entry.key, entry.value, reason));
    }

    /// Reaps every entry whose deadline has come.
    fn reap_expired(&mut self, out: &mut Vec<Release>) {
        self.last_scan = self.now;
        let mut index = 0;
        while index < self.entries.len() {
            if self.is_live(&self.entries[index]) {
                index += 1;
            } else {
                self.take(index, ReleaseReason::Expired, out);
            }
        }
    }

    /// The scan that `get`, `insert` and `remove` begin with.
    fn auto_scan(&mut self, out: &mut Vec<Release>) {
        if self.now - self.last_scan >= self.config.scan_interval {
            self.reap_expired(out);
        }
    }

    fn over_limits(&self, extra_items: u64, extra_bytes: u64) -> bool {
        let items = self.entries.len() as u64 + extra_items;
        let bytes = self.bytes() + u128::from(extra_bytes);
        (self.config.max_items > 0 && items > self.config.max_items)
            || (self.config.max_bytes > 0 && bytes > u128::from(self.config.max_bytes))
    }

    /// Evicts one entry: the front for `lru`/`fifo`; for `random` the next
    /// of the engine's victims, which must be live and not `protected`.
    fn evict_one(
        &mut self,
        chosen: &mut VecDeque<u8>,
        protected: Option<u8>,
        out: &mut Vec<Release>,
    ) {
        let index = match self.config.policy {
            EvictionPolicy::Lru | EvictionPolicy::Fifo => 0,
            EvictionPolicy::Random => {
                let key = chosen
                    .pop_front()
                    .expect("random: the engine evicted fewer entries than the limits need");
                assert_ne!(
                    Some(key),
                    protected,
                    "random: the engine evicted the entry being inserted"
                );
                let index = self
                    .position(key)
                    .expect("random: the engine evicted a key it does not hold");
                assert!(
                    self.is_live(&self.entries[index]),
                    "random: the engine evicted an expired entry"
                );
                index
            }
        };
        self.take(index, ReleaseReason::Evicted, out);
    }

    fn get(&mut self, key: u8, now: Nanos, out: &mut Vec<Release>) -> Option<u64> {
        self.observe(now);
        self.auto_scan(out);
        let index = self.position(key)?;
        if !self.is_live(&self.entries[index]) {
            self.take(index, ReleaseReason::Expired, out);
            return None;
        }
        let entry = self.entries[index];
        if self.config.policy == EvictionPolicy::Lru {
            self.entries.remove(index);
            self.entries.push(entry);
        }
        Some(entry.value)
    }

    fn contains(&self, key: u8, now: Nanos) -> bool {
        let now = now.min(LATEST_NOW).max(self.now);
        self.entries
            .iter()
            .any(|entry| entry.key == key && entry.deadline > now)
    }

    fn insert(
        &mut self,
        new: ModelEntry,
        now: Nanos,
        chosen: &mut VecDeque<u8>,
        out: &mut Vec<Release>,
    ) -> Result<(), Refusal> {
        self.observe(now);
        self.auto_scan(out);
        if self.config.max_bytes > 0 && new.size > self.config.max_bytes {
            return Err(Refusal::TooLarge);
        }
        if let Some(index) = self.position(new.key) {
            if self.is_live(&self.entries[index]) {
                return Err(Refusal::Occupied);
            }
            self.take(index, ReleaseReason::Expired, out);
        }
        if self.over_limits(1, new.size) {
            // Expired entries go first; live ones only if still needed.
            self.reap_expired(out);
            while self.over_limits(1, new.size) {
                self.evict_one(chosen, Some(new.key), out);
            }
        }
        self.entries.push(new);
        Ok(())
    }

    fn remove(&mut self, key: u8, now: Nanos, out: &mut Vec<Release>) -> bool {
        self.observe(now);
        self.auto_scan(out);
        let Some(index) = self.position(key) else {
            return false;
        };
        let live = self.is_live(&self.entries[index]);
        let reason = if live {
            ReleaseReason::Deleted
        } else {
            ReleaseReason::Expired
        };
        self.take(index, reason, out);
        live
    }

    fn scan(&mut self, now: Nanos, chosen: &mut VecDeque<u8>, out: &mut Vec<Release>) {
        self.observe(now);
        self.reap_expired(out);
        while self.over_limits(0, 0) {
            self.evict_one(chosen, None, out);
        }
    }

    fn clear(&mut self, now: Nanos, out: &mut Vec<Release>) {
        self.observe(now);
        while !self.entries.is_empty() {
            self.take(0, ReleaseReason::Cleared, out);
        }
    }
}

/// A deliberately collision-prone hash, so that `eq` has work to do.
fn hash_of(key: u8) -> u64 {
    u64::from(key % 6).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The engine and the model side by side, over one clock.
struct Harness {
    cache: Cache<u8, u64>,
    model: Model,
    /// The driver's clock; it may reach `u64::MAX`, which both clamp.
    now: Nanos,
    next_value: u64,
    step: usize,
    /// The step being checked, for failure messages.
    op: Op,
}

impl Harness {
    fn new(config: Config, now: Nanos, seed: u64) -> Self {
        Harness {
            cache: Cache::with_seed(config, now, seed),
            model: Model::new(config, now),
            now,
            next_value: 0,
            step: 0,
            op: Op::New,
        }
    }

    /// The engine's released entries as `(key, value, reason)`, checking
    /// that each `needs_close` came back with its value.
    fn unpack(released: Released<u8, u64>) -> Vec<Release> {
        released
            .into_iter()
            .map(|r| {
                assert_eq!(
                    r.needs_close,
                    r.value % 2 == 1,
                    "needs_close of {} came back changed",
                    r.key
                );
                (r.key, r.value, r.reason)
            })
            .collect()
    }

    /// The engine's evictions, which `random` hands to the model.
    fn chosen(&self, engine: &[Release]) -> VecDeque<u8> {
        match self.model.config.policy {
            EvictionPolicy::Random => engine
                .iter()
                .filter(|r| r.2 == ReleaseReason::Evicted)
                .map(|r| r.0)
                .collect(),
            EvictionPolicy::Lru | EvictionPolicy::Fifo => VecDeque::new(),
        }
    }

    /// Same entries released for the same reasons: reaps as multisets,
    /// evictions in order and after every reap.
    fn compare_released(&self, engine: &[Release], model: &[Release], chosen: &VecDeque<u8>) {
        let (step, what, now) = (self.step, self.op, self.now);
        assert!(
            chosen.is_empty(),
            "step {step} {what:?} at {now}: the engine evicted more than needed: {engine:?}"
        );
        let first_eviction = engine
            .iter()
            .position(|r| r.2 == ReleaseReason::Evicted)
            .unwrap_or(engine.len());
        assert!(
            engine[first_eviction..]
                .iter()
                .all(|r| r.2 == ReleaseReason::Evicted),
            "step {step} {what:?} at {now}: an eviction before a reap: {engine:?}"
        );
        let split = |released: &[Release]| {
            let mut reaped: Vec<Release> = released
                .iter()
                .copied()
                .filter(|r| r.2 != ReleaseReason::Evicted)
                .collect();
            reaped.sort_unstable_by_key(|&(key, value, reason)| (key, value, reason as u8));
            let evicted: Vec<Release> = released
                .iter()
                .copied()
                .filter(|r| r.2 == ReleaseReason::Evicted)
                .collect();
            (reaped, evicted)
        };
        let (engine_reaped, engine_evicted) = split(engine);
        let (model_reaped, model_evicted) = split(model);
        assert_eq!(
            engine_reaped, model_reaped,
            "step {step} {what:?} at {now}: reaped entries (engine left, model right)"
        );
        assert_eq!(
            engine_evicted, model_evicted,
            "step {step} {what:?} at {now}: evictions (engine left, model right)"
        );
    }

    /// Everything the engine shows must match the model.
    fn check(&mut self) {
        let (step, what, now) = (self.step, self.op, self.now);
        assert_eq!(
            self.cache.latest_now(),
            self.model.now,
            "step {step} {what:?} at {now}: latest_now"
        );
        assert_eq!(
            self.cache.len(),
            self.model.entries.len(),
            "step {step} {what:?} at {now}: len"
        );
        assert_eq!(
            self.cache.bytes(),
            self.model.bytes(),
            "step {step} {what:?} at {now}: bytes"
        );
        let config = self.model.config;
        if config.max_items > 0 {
            assert!(
                self.cache.len() as u64 <= config.max_items,
                "step {step} {what:?} at {now}: over max_items"
            );
        }
        if config.max_bytes > 0 {
            assert!(
                self.cache.bytes() <= u128::from(config.max_bytes),
                "step {step} {what:?} at {now}: over max_bytes"
            );
        }
        for key in 0..KEYS {
            assert_eq!(
                self.cache.contains(hash_of(key), |k| *k == key, self.now),
                Ok(self.model.contains(key, self.now)),
                "step {step} {what:?} at {now}: contains({key})"
            );
        }
        // A cache without limits keeps no eviction order (it never evicts).
        let bounded = config.max_items > 0 || config.max_bytes > 0;
        if bounded && config.policy != EvictionPolicy::Random {
            let order: Vec<u8> = self.cache.eviction_order().into_iter().copied().collect();
            let expected: Vec<u8> = self.model.entries.iter().map(|entry| entry.key).collect();
            assert_eq!(
                order, expected,
                "step {step} {what:?} at {now}: eviction order"
            );
        }
        // `validate` walks every wheel bucket, most of a step's cost; the
        // steps that cannot change the engine (`contains` takes `&self`)
        // skip it.
        if !matches!(what, Op::Advance | Op::Contains(_)) {
            self.cache.validate();
        }
    }

    /// Applies `op` to both sides and compares what they report.
    #[allow(clippy::too_many_lines, reason = "one arm per operation, each short")]
    fn apply(&mut self, op: Op) {
        self.step += 1;
        self.op = op;
        let now = self.now;
        let mut released = Released::new();
        let mut model = Vec::new();
        let step = self.step;
        match op {
            Op::New | Op::Advance => {}
            Op::Insert {
                key,
                size,
                deadline,
            } => {
                let value = self.next_value;
                self.next_value += 1;
                let new = NewEntry {
                    hash: hash_of(key),
                    key,
                    value,
                    size,
                    deadline,
                    needs_close: value % 2 == 1,
                };
                let result = match self.cache.insert(new, |k| *k == key, now, &mut released) {
                    Ok(()) => Ok(()),
                    Err(InsertError::Occupied { key: k, value: v }) => {
                        assert_eq!(
                            (k, v),
                            (key, value),
                            "step {step} {op:?}: Occupied handed back another entry"
                        );
                        Err(Refusal::Occupied)
                    }
                    Err(InsertError::TooLarge { key: k, value: v }) => {
                        assert_eq!(
                            (k, v),
                            (key, value),
                            "step {step} {op:?}: TooLarge handed back another entry"
                        );
                        Err(Refusal::TooLarge)
                    }
                    Err(InsertError::Undecided { .. }) => {
                        panic!("step {step} {op:?}: a comparison in Rust decides")
                    }
                };
                let engine = Self::unpack(released);
                let mut chosen = self.chosen(&engine);
                let entry = ModelEntry {
                    key,
                    value,
                    size,
                    deadline,
                };
                let expected = self.model.insert(entry, now, &mut chosen, &mut model);
                assert_eq!(result, expected, "step {step} {op:?} at {now}: result");
                self.compare_released(&engine, &model, &chosen);
            }
            Op::Get(key) => {
                let got = self
                    .cache
                    .get(hash_of(key), |k| *k == key, now, &mut released)
                    .expect("a comparison in Rust decides")
                    .copied();
                let engine = Self::unpack(released);
                let expected = self.model.get(key, now, &mut model);
                assert_eq!(got, expected, "step {step} {op:?} at {now}: value");
                self.compare_released(&engine, &model, &VecDeque::new());
            }
            Op::Contains(key) => {
                let got = self.cache.contains(hash_of(key), |k| *k == key, now);
                assert_eq!(
                    got,
                    Ok(self.model.contains(key, now)),
                    "step {step} {op:?} at {now}"
                );
            }
            Op::Remove(key) => {
                let removed = self
                    .cache
                    .remove(hash_of(key), |k| *k == key, now, &mut released)
                    .expect("a comparison in Rust decides");
                let live = removed
                    .as_ref()
                    .is_some_and(|entry| entry.reason == ReleaseReason::Deleted);
                released.extend(removed);
                let engine = Self::unpack(released);
                let expected = self.model.remove(key, now, &mut model);
                assert_eq!(live, expected, "step {step} {op:?} at {now}: result");
                self.compare_released(&engine, &model, &VecDeque::new());
            }
            Op::Scan => {
                self.cache.scan(now, &mut released);
                let engine = Self::unpack(released);
                let mut chosen = self.chosen(&engine);
                self.model.scan(now, &mut chosen, &mut model);
                self.compare_released(&engine, &model, &chosen);
            }
            Op::Clear => {
                self.cache.clear(now, &mut released);
                let engine = Self::unpack(released);
                self.model.clear(now, &mut model);
                self.compare_released(&engine, &model, &VecDeque::new());
            }
        }
        self.check();
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
    let policy = EvictionPolicy::ALL[usize::from(input.below(3))];
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
        let op = match input.below(16) {
            0..=4 => {
                let key = input.below(KEYS);
                // Mostly small; sometimes around and past the 32 bits an
                // entry stores a size in, and sometimes anything.
                let size = match input.below(16) {
                    0 => u64::from(u32::MAX) - 1 + u64::from(input.below(3)),
                    1 => input.u64(),
                    _ => u64::from(input.below(13)),
                };
                let deadline = decode_deadline(&mut input, harness.now);
                Op::Insert {
                    key,
                    size,
                    deadline,
                }
            }
            5..=7 => Op::Get(input.below(KEYS)),
            8 => Op::Contains(input.below(KEYS)),
            9 | 10 => Op::Remove(input.below(KEYS)),
            // A clear is rarer than the rest: it empties everything it follows.
            12 if input.below(4) == 0 => Op::Clear,
            11 | 12 => Op::Scan,
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
