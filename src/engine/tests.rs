//! Engine tests with `u64`-like string keys and a tick clock: no sleeping.

use super::time::NEVER;
use super::*;

const SECOND: Nanos = 1_000_000_000;

/// A thin driver over the engine with `&'static str` keys and `u32` values.
struct Driver {
    cache: Cache<&'static str, u32>,
    now: Nanos,
    released: Vec<(&'static str, u32, ReleaseReason)>,
}

fn hash_of(key: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
}

impl Driver {
    fn new(policy: EvictionPolicy, max_items: u64, max_bytes: u64) -> Self {
        Self::with_config(Config {
            policy,
            max_items,
            max_bytes,
            scan_interval: 0,
        })
    }

    fn with_config(config: Config) -> Self {
        Driver {
            cache: Cache::with_seed(config, 0, 1),
            now: 0,
            released: Vec::new(),
        }
    }

    fn collect(&mut self, released: Released<&'static str, u32>) {
        self.released
            .extend(released.into_iter().map(|r| (r.key, r.value, r.reason)));
    }

    fn set(
        &mut self,
        key: &'static str,
        value: u32,
        size: u64,
        ttl: Option<Nanos>,
    ) -> Result<(), &'static str> {
        let mut released = Released::new();
        let deadline = ttl.map_or(NEVER, |ttl| self.now.saturating_add(ttl));
        let new = NewEntry {
            hash: hash_of(key),
            key,
            value,
            size,
            deadline,
            needs_close: false,
        };
        let result = self
            .cache
            .insert(new, |k| *k == key, self.now, &mut released);
        self.collect(released);
        self.cache.validate();
        result.map_err(|error| match error {
            InsertError::Occupied { .. } => "occupied",
            InsertError::TooLarge { .. } => "too large",
            InsertError::Undecided { .. } => "undecided",
            InsertError::NeedsRoom { .. } => "needs room",
        })
    }

    fn get(&mut self, key: &'static str) -> Option<u32> {
        let mut released = Released::new();
        let value = self
            .cache
            .get(hash_of(key), |k| *k == key, self.now, &mut released)
            .expect("decided")
            .copied();
        self.collect(released);
        self.cache.validate();
        value
    }

    fn delete(&mut self, key: &'static str) -> bool {
        let mut released = Released::new();
        let removed = self
            .cache
            .remove(hash_of(key), |k| *k == key, self.now, &mut released)
            .expect("decided");
        let live = removed
            .as_ref()
            .is_some_and(|entry| entry.reason == ReleaseReason::Deleted);
        released.extend(removed);
        self.collect(released);
        self.cache.validate();
        live
    }

    fn scan(&mut self) {
        let mut released = Released::new();
        self.cache.scan(self.now, &mut released);
        self.collect(released);
        self.cache.validate();
    }

    fn contains(&self, key: &'static str) -> bool {
        self.cache
            .contains(hash_of(key), |k| *k == key, self.now)
            .expect("decided")
    }

    fn take_released(&mut self) -> Vec<(&'static str, ReleaseReason)> {
        self.released
            .drain(..)
            .map(|(k, _, reason)| (k, reason))
            .collect()
    }

    fn order(&mut self) -> Vec<&'static str> {
        self.cache.eviction_order().into_iter().copied().collect()
    }
}

#[test]
fn lru_evicts_least_recently_used_and_get_refreshes() {
    let mut d = Driver::new(EvictionPolicy::Lru, 3, 0);
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        d.set(key, i as u32, 1, None).unwrap();
    }
    assert_eq!(d.get("a"), Some(0));
    assert!(d.contains("b"));
    assert_eq!(d.get("zzz"), None);
    assert_eq!(d.order(), ["b", "c", "a"]);
    d.set("d", 3, 1, None).unwrap();
    assert_eq!(d.take_released(), [("b", ReleaseReason::Evicted)]);
    assert_eq!(d.order(), ["c", "a", "d"]);
}

#[test]
fn fifo_ignores_reads() {
    let mut d = Driver::new(EvictionPolicy::Fifo, 2, 0);
    d.set("a", 0, 1, None).unwrap();
    d.set("b", 1, 1, None).unwrap();
    assert_eq!(d.get("a"), Some(0));
    d.set("c", 2, 1, None).unwrap();
    assert_eq!(d.take_released(), [("a", ReleaseReason::Evicted)]);
    assert_eq!(d.order(), ["b", "c"]);
}

#[test]
fn random_never_evicts_the_new_entry_and_covers_all_members() {
    let keys: [&'static str; 4] = ["a", "b", "c", "d"];
    let mut evicted = std::collections::HashMap::new();
    for seed in 0..400 {
        let mut d = Driver::with_config(Config {
            policy: EvictionPolicy::Random,
            max_items: 3,
            ..Config::default()
        });
        d.cache = Cache::with_seed(*d.cache.config(), 0, seed);
        for (i, key) in keys.iter().enumerate() {
            d.set(key, i as u32, 1, None).unwrap();
        }
        let released = d.take_released();
        assert_eq!(released.len(), 1);
        assert_ne!(released[0].0, "d");
        *evicted.entry(released[0].0).or_insert(0) += 1;
    }
    for key in ["a", "b", "c"] {
        let count = evicted[key];
        assert!(
            (80..=190).contains(&count),
            "{key} evicted {count} times of 400"
        );
    }
}

/// Under `max_bytes`, entries can leave without new ones taking their
/// slots, so the arena random eviction draws from goes sparse; the next
/// eviction compacts it. Every moved entry must still be found, expire on
/// time and keep its size, and the victim must stay uniform.
#[test]
fn random_eviction_compacts_a_sparse_arena_and_stays_uniform() {
    const LARGE: u64 = 1 << 33;
    const KEYS: [&str; 16] = [
        "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11", "k12", "k13",
        "k14", "k15",
    ];
    let kept = ["k3", "k7", "k11", "k15"];
    let mut evicted = std::collections::HashMap::new();
    for seed in 0..200 {
        let mut d = Driver::new(EvictionPolicy::Random, 0, 10 * LARGE);
        d.cache = Cache::with_seed(*d.cache.config(), 0, seed);
        for (i, key) in KEYS.into_iter().enumerate() {
            let size = if i % 4 == 3 { LARGE } else { 1 };
            // Odd keys share one wheel bucket, so moved nodes have neighbours.
            let ttl = (i % 2 == 1).then_some(10 * SECOND + i as Nanos);
            d.set(key, i as u32, size, ttl).unwrap();
        }
        for key in KEYS.into_iter().filter(|key| !kept.contains(key)) {
            assert!(d.delete(key));
        }
        d.take_released();
        assert_eq!(d.cache.entries.capacity_used(), 16);
        d.set("big", 99, 7 * LARGE, None).unwrap();
        assert_eq!(
            d.cache.entries.capacity_used(),
            4,
            "compacted; the new entry took the victim's slot"
        );
        let released = d.take_released();
        assert_eq!(released.len(), 1);
        let victim = released[0].0;
        assert!(kept.contains(&victim), "{victim} was not a member");
        *evicted.entry(victim).or_insert(0) += 1;
        assert_eq!(d.cache.bytes(), u128::from(10 * LARGE));
        for key in kept.into_iter().filter(|&key| key != victim) {
            let value = KEYS.iter().position(|&k| k == key).unwrap() as u32;
            assert_eq!(d.get(key), Some(value), "{key} after compaction");
        }
        // The kept keys' deadlines are 10 s + 3, 7, 11 and 15 ns.
        for (now, due) in [(7, ["k3", "k7"]), (15, ["k11", "k15"])] {
            d.now = 10 * SECOND + now;
            d.scan();
            let mut expired = d.take_released();
            expired.sort_unstable_by_key(|&(key, _)| key);
            let expected: Vec<_> = due
                .into_iter()
                .filter(|&key| key != victim)
                .map(|key| (key, ReleaseReason::Expired))
                .collect();
            assert_eq!(expired, expected, "at 10 s + {now} ns");
        }
        assert_eq!(d.cache.len(), 1);
        assert_eq!(d.get("big"), Some(99));
    }
    for key in kept {
        let count = evicted.get(key).copied().unwrap_or(0);
        assert!(
            (25..=80).contains(&count),
            "{key} evicted {count} times of 200"
        );
    }
}

/// `upcoming_victim` names what the next eviction takes, so the binding's
/// prefetch is of the right objects; for `random` it is known after the
/// first eviction, from the draw made ahead.
#[test]
fn upcoming_victim_is_the_next_one_evicted() {
    const KEYS: [&str; 24] = [
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r",
        "s", "t", "u", "v", "w", "x",
    ];
    for policy in EvictionPolicy::ALL {
        let mut d = Driver::new(policy, 8, 0);
        for (i, key) in KEYS.into_iter().enumerate() {
            let upcoming = d.cache.upcoming_victim().map(|(key, _)| *key);
            d.set(key, i as u32, 1, None).unwrap();
            let evicted: Vec<_> = d.take_released().into_iter().map(|(key, _)| key).collect();
            match (i, policy) {
                // Unknown before the first draw, and under `tinylfu` before
                // its admission contest.
                (_, EvictionPolicy::TinyLfu) | (0, _) | (1..8, EvictionPolicy::Random) => {
                    assert_eq!(upcoming, None);
                }
                (1..8, _) => assert_eq!(upcoming, Some(KEYS[0])),
                (8, EvictionPolicy::Random) => assert_eq!(evicted.len(), 1),
                _ => assert_eq!(evicted, [upcoming.unwrap()], "{policy:?} at {key}"),
            }
        }
    }
    let mut unbounded = Driver::new(EvictionPolicy::Lru, 0, 0);
    unbounded.set("a", 0, 1, None).unwrap();
    assert!(unbounded.cache.upcoming_victim().is_none());
}

#[test]
fn max_bytes_evicts_until_the_new_entry_fits() {
    let mut d = Driver::new(EvictionPolicy::Lru, 0, 10);
    d.set("a", 0, 4, None).unwrap();
    d.set("b", 1, 4, None).unwrap();
    d.set("c", 2, 2, None).unwrap();
    assert!(d.take_released().is_empty());
    d.set("d", 3, 7, None).unwrap();
    assert_eq!(
        d.take_released(),
        [("a", ReleaseReason::Evicted), ("b", ReleaseReason::Evicted)]
    );
    assert_eq!(d.cache.bytes(), 9);
    assert_eq!(d.set("big", 9, 11, None), Err("too large"));
    assert!(d.take_released().is_empty());
    assert_eq!(d.cache.len(), 2);
}

#[test]
fn expired_entries_go_before_live_ones() {
    let mut d = Driver::with_config(Config {
        max_items: 3,
        scan_interval: NEVER,
        ..Config::default()
    });
    d.set("old", 0, 1, None).unwrap();
    d.set("short", 1, 1, Some(SECOND)).unwrap();
    d.set("live", 2, 1, None).unwrap();
    d.now = 2 * SECOND;
    d.set("new", 3, 1, None).unwrap();
    assert_eq!(d.take_released(), [("short", ReleaseReason::Expired)]);
    assert_eq!(d.order(), ["old", "live", "new"]);
}

#[test]
fn expiry_is_exact_whatever_the_wheel_granularity() {
    let mut d = Driver::with_config(Config {
        scan_interval: NEVER,
        ..Config::default()
    });
    d.set("k", 1, 1, Some(1_500)).unwrap();
    d.now = 1_499;
    assert!(d.contains("k"));
    assert_eq!(d.get("k"), Some(1));
    d.now = 1_500;
    assert!(!d.contains("k"));
    assert_eq!(d.cache.len(), 1, "not reaped before a lookup or scan");
    assert_eq!(d.get("k"), None);
    assert_eq!(d.take_released(), [("k", ReleaseReason::Expired)]);
}

#[test]
fn scan_reaps_entries_due_inside_the_current_bucket() {
    let mut d = Driver::with_config(Config {
        scan_interval: NEVER,
        ..Config::default()
    });
    d.set("a", 1, 1, Some(10)).unwrap();
    d.set("b", 1, 1, Some(20)).unwrap();
    d.now = 15;
    d.scan();
    assert_eq!(d.take_released(), [("a", ReleaseReason::Expired)]);
    assert_eq!(d.cache.len(), 1);
}

#[test]
fn scan_interval_gates_automatic_scans() {
    let mut d = Driver::with_config(Config {
        scan_interval: 10 * SECOND,
        ..Config::default()
    });
    d.set("a", 1, 1, Some(SECOND)).unwrap();
    d.now = 5 * SECOND;
    assert_eq!(d.get("other"), None);
    assert_eq!(d.cache.len(), 1);
    d.now = 10 * SECOND;
    assert_eq!(d.get("other"), None);
    assert_eq!(d.take_released(), [("a", ReleaseReason::Expired)]);
}

#[test]
fn set_over_an_expired_holder_reaps_it_and_a_live_holder_refuses() {
    let mut d = Driver::with_config(Config {
        scan_interval: NEVER,
        ..Config::default()
    });
    d.set("k", 1, 1, Some(SECOND)).unwrap();
    assert_eq!(d.set("k", 2, 1, None), Err("occupied"));
    assert!(d.take_released().is_empty());
    d.now = SECOND;
    d.set("k", 3, 1, None).unwrap();
    assert_eq!(d.take_released(), [("k", ReleaseReason::Expired)]);
    assert_eq!(d.get("k"), Some(3));
}

#[test]
fn delete_reports_live_and_reaps_expired() {
    let mut d = Driver::with_config(Config {
        scan_interval: NEVER,
        ..Config::default()
    });
    d.set("live", 1, 1, None).unwrap();
    d.set("gone", 2, 1, Some(1)).unwrap();
    d.now = 1;
    assert!(d.delete("live"));
    assert!(!d.delete("gone"));
    assert!(!d.delete("missing"));
    assert_eq!(
        d.take_released(),
        [
            ("live", ReleaseReason::Deleted),
            ("gone", ReleaseReason::Expired)
        ]
    );
    assert!(d.cache.is_empty());
}

#[test]
fn clear_releases_everything_and_the_cache_stays_usable() {
    let mut d = Driver::new(EvictionPolicy::Random, 10, 0);
    d.set("a", 1, 1, Some(5)).unwrap();
    d.set("b", 2, 3, None).unwrap();
    let mut released = Released::new();
    d.cache.clear(d.now, &mut released);
    assert_eq!(released.len(), 2);
    assert!(released.iter().all(|r| r.reason == ReleaseReason::Cleared));
    assert_eq!((d.cache.len(), d.cache.bytes()), (0, 0));
    d.cache.validate();
    d.set("a", 3, 1, Some(5)).unwrap();
    d.now = 10;
    d.scan();
    assert_eq!(d.take_released(), [("a", ReleaseReason::Expired)]);
}

#[test]
fn distant_deadlines_never_overflow() {
    let mut d = Driver::with_config(Config::default());
    d.now = NEVER - 5;
    d.set("far", 1, 1, Some(u64::MAX)).unwrap();
    d.set("near", 2, 1, Some(2)).unwrap();
    d.now = NEVER;
    d.scan();
    assert_eq!(d.take_released(), [("near", ReleaseReason::Expired)]);
    assert_eq!(d.get("far"), Some(1));
}

#[test]
fn arena_slots_are_reused_after_churn() {
    const KEYS: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let mut d = Driver::new(EvictionPolicy::Lru, 4, 0);
    for round in 0..100 {
        for (i, key) in KEYS.iter().enumerate() {
            let _ = d.set(key, (round * 8 + i) as u32, 1, Some(3));
        }
        d.now += 1;
    }
    assert!(
        d.cache.entries.capacity_used() <= 5,
        "arena grew to {}",
        d.cache.entries.capacity_used()
    );
}

#[test]
fn entry_is_one_cache_line() {
    // An entry's size is most of the cache's memory per item: keep it from
    // creeping up unnoticed. Python keys and values are non-null pointers,
    // like `Box` here, and the arena's vacant slots hide in that niche.
    assert_eq!(std::mem::size_of::<Entry<Box<u8>, Box<u8>>>(), 48);
    assert_eq!(arena::slot_size::<Entry<Box<u8>, Box<u8>>>(), 48);
}

#[test]
fn heap_size_follows_the_entries_and_clear_gives_it_back() {
    let config = Config {
        max_items: 200_000,
        ..Config::default()
    };
    let mut cache: Cache<u64, u64> = Cache::with_seed(config, 0, 1);
    let empty = cache.heap_size();
    let mut released = Released::new();
    let count = 100_000u64;
    for key in 0..count {
        let new = NewEntry {
            hash: key,
            key,
            value: key,
            size: if key % 1000 == 0 { u64::MAX } else { 1 },
            deadline: if key % 2 == 0 { NEVER } else { SECOND },
            needs_close: false,
        };
        cache.insert(new, |&k| k == key, 0, &mut released).unwrap();
    }
    let full = cache.heap_size();
    let per_entry = std::mem::size_of::<Entry<u64, u64>>() + std::mem::size_of::<SlotId>();
    assert!(
        full >= empty + count as usize * per_entry,
        "{full} bytes for {count} entries"
    );
    cache.clear(0, &mut released);
    assert_eq!(released.len(), count as usize);
    assert_eq!(cache.heap_size(), empty, "clear keeps memory");
    cache.validate();
}

/// A cache of `u64` keys and values, for the policy tests that need many
/// keys; `access` is what a reader does: `get`, and `insert` on a miss.
struct Numbers {
    cache: Cache<u64, u64>,
    released: Vec<(u64, ReleaseReason)>,
}

impl Numbers {
    fn new(policy: EvictionPolicy, max_items: u64, max_bytes: u64) -> Self {
        Numbers {
            cache: Cache::with_seed(
                Config {
                    policy,
                    max_items,
                    max_bytes,
                    scan_interval: NEVER,
                },
                0,
                7,
            ),
            released: Vec::new(),
        }
    }

    fn hash(key: u64) -> u64 {
        key.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
    }

    fn get(&mut self, key: u64) -> bool {
        let mut released = Released::new();
        let hit = self
            .cache
            .get(Self::hash(key), |k| *k == key, 0, &mut released)
            .expect("decided")
            .is_some();
        self.collect(released);
        hit
    }

    fn insert(&mut self, key: u64, size: u64) {
        let mut released = Released::new();
        let new = NewEntry {
            hash: Self::hash(key),
            key,
            value: key,
            size,
            deadline: NEVER,
            needs_close: false,
        };
        self.cache
            .insert(new, |k| *k == key, 0, &mut released)
            .expect("stored");
        self.collect(released);
    }

    fn access(&mut self, key: u64) -> bool {
        let hit = self.get(key);
        if !hit {
            self.insert(key, 1);
        }
        hit
    }

    fn contains(&self, key: u64) -> bool {
        self.cache
            .contains(Self::hash(key), |k| *k == key, 0)
            .expect("decided")
    }

    fn collect(&mut self, released: Released<u64, u64>) {
        self.released
            .extend(released.into_iter().map(|r| (r.key, r.reason)));
    }
}

/// A small deterministic generator for the policy tests' traces.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

#[test]
fn lfu_evicts_the_lowest_count_then_the_least_recently_used() {
    let mut d = Numbers::new(EvictionPolicy::Lfu, 3, 0);
    for key in [1, 2, 3] {
        d.insert(key, 1);
    }
    assert!(d.get(1) && d.get(1) && d.get(2)); // counts: 1 -> 3, 2 -> 2, 3 -> 1
    d.insert(4, 1);
    assert_eq!(d.released, [(3, ReleaseReason::Evicted)]);
    assert!(d.get(4)); // 4 -> 2, used after 2
    d.insert(5, 1);
    assert_eq!(
        d.released[1],
        (2, ReleaseReason::Evicted),
        "the older of count 2"
    );
    assert_eq!(d.cache.eviction_order(), [&5, &4, &1]);
    d.cache.validate();
}

/// LFU's victims against a brute force over many keys and counts: the
/// lowest count, ties to the least recent use.
#[test]
fn lfu_victims_match_a_brute_force_on_a_long_trace() {
    let mut d = Numbers::new(EvictionPolicy::Lfu, 50, 0);
    // key -> (count, last use)
    let mut model: std::collections::HashMap<u64, (u64, u64)> = std::collections::HashMap::new();
    let mut rng = Lcg(3);
    for tick in 0..20_000 {
        // Skewed: small keys are hot, so counts spread over many nodes.
        let spread = 1 + rng.below(300);
        let key = rng.below(spread);
        let before = d.released.len();
        let hit = d.access(key);
        assert_eq!(hit, model.contains_key(&key), "hit of {key} at {tick}");
        if hit {
            let entry = model.get_mut(&key).expect("held");
            *entry = (entry.0 + 1, tick);
            assert_eq!(d.released.len(), before);
            continue;
        }
        if model.len() == 50 {
            let (&victim, _) = model
                .iter()
                .min_by_key(|(_, &(count, used))| (count, used))
                .expect("full");
            model.remove(&victim);
            assert_eq!(
                d.released[before..],
                [(victim, ReleaseReason::Evicted)],
                "victim at {tick}"
            );
        }
        model.insert(key, (1, tick));
        if tick % 997 == 0 {
            d.cache.validate();
        }
    }
    d.cache.validate();
}

/// A hot set survives a long scan of keys seen once (five times the
/// cache, which leaves LRU nothing): their windowed entries lose admission
/// to the hot main space. (A scan many sample periods long would age the
/// hot set's counts down to a one-off key's, by design.)
#[test]
fn tinylfu_keeps_a_hot_set_through_a_one_off_scan() {
    let mut d = Numbers::new(EvictionPolicy::TinyLfu, 1000, 0);
    let hot = 0..500;
    for _ in 0..20 {
        for key in hot.clone() {
            d.access(key);
        }
    }
    for key in 1_000_000..1_005_000 {
        d.access(key);
    }
    let kept = hot.clone().filter(|&key| d.contains(key)).count();
    assert!(kept >= 475, "only {kept} of 500 hot keys survived the scan");
    let mut lru = Numbers::new(EvictionPolicy::Lru, 1000, 0);
    for key in hot.clone().cycle().take(10_000).chain(1_000_000..1_005_000) {
        lru.access(key);
    }
    assert_eq!(
        hot.filter(|&key| lru.contains(key)).count(),
        0,
        "lru loses them all"
    );
    d.cache.validate();
}

/// A formerly hot key set loses to a new one once it is no longer read:
/// aging halves its counts, so the new set gets in within a bounded number
/// of accesses.
#[test]
fn tinylfu_ages_out_a_formerly_hot_set() {
    let mut d = Numbers::new(EvictionPolicy::TinyLfu, 200, 0);
    let mut rng = Lcg(11);
    for _ in 0..40_000 {
        d.access(rng.below(200));
    }
    // A new hot set of 200 keys, read with the same skew-free pattern.
    let mut hits = 0;
    let accesses = 40_000;
    for i in 0..accesses {
        let hit = d.access(10_000 + rng.below(200));
        if i >= accesses - 2_000 {
            hits += u32::from(hit);
        }
    }
    assert!(
        hits >= 1_800,
        "the new hot set hits {hits} of its last 2000 reads"
    );
    let new_held = (10_000..10_200).filter(|&key| d.contains(key)).count();
    assert!(new_held >= 180, "{new_held} of the new hot set held");
    d.cache.validate();
}

/// Under `max_bytes` an entry larger than the window goes straight to the
/// admission contest, and may lose it at its own store: `Rejected`.
#[test]
fn tinylfu_may_reject_the_entry_being_stored() {
    let mut d = Numbers::new(EvictionPolicy::TinyLfu, 0, 100);
    for key in 0..100 {
        d.insert(key, 1);
    }
    for _ in 0..5 {
        for key in 0..100 {
            assert!(d.get(key));
        }
    }
    d.get(500);
    d.insert(500, 10);
    assert!(!d.contains(500));
    assert!(d.released.contains(&(500, ReleaseReason::Rejected)));
    let stats = d.cache.stats();
    assert_eq!(stats.rejections, 1);
    assert_eq!(stats.sets, 101);
    assert!(d.cache.bytes() <= 100);
    d.cache.validate();
}

/// The regions, the sketch and the unit sums hold after every step of a
/// mixed run under both limits (`Cache::validate` checks them).
#[test]
fn tinylfu_invariants_hold_on_a_mixed_run() {
    for (max_items, max_bytes) in [(64, 0), (0, 200), (40, 300), (1, 0), (2, 0)] {
        let mut d = Numbers::new(EvictionPolicy::TinyLfu, max_items, max_bytes);
        let mut rng = Lcg(max_items + max_bytes);
        for step in 0..30_000 {
            let spread = 1 + rng.below(400);
            let key = rng.below(spread);
            match rng.below(10) {
                0 => {
                    let mut released = Released::new();
                    let _ = d
                        .cache
                        .remove(Numbers::hash(key), |k| *k == key, 0, &mut released);
                    d.collect(released);
                }
                1 if !d.get(key) => d.insert(key, 1 + rng.below(30)),
                _ => {
                    if !d.get(key) {
                        d.insert(key, if max_bytes > 0 { 1 + rng.below(8) } else { 1 });
                    }
                }
            }
            if step % 101 == 0 {
                d.cache.validate();
            }
        }
        d.cache.validate();
    }
}

impl Driver {
    fn put(&mut self, key: &'static str, value: u32, size: u64) -> Result<(), &'static str> {
        let mut released = Released::new();
        let new = NewEntry {
            hash: hash_of(key),
            key,
            value,
            size,
            deadline: NEVER,
            needs_close: false,
        };
        let result = self.cache.put(new, |k| *k == key, self.now, &mut released);
        self.collect(released);
        self.cache.validate();
        result.map_err(|error| match error {
            InsertError::NeedsRoom { .. } => "needs room",
            _ => "refused",
        })
    }

    fn evict(&mut self, key: &'static str) -> bool {
        let mut released = Released::new();
        let evicted = self
            .cache
            .evict(hash_of(key), |k| *k == key, self.now, &mut released)
            .expect("decided");
        self.collect(released);
        self.cache.validate();
        evicted
    }

    fn store_batch(
        &mut self,
        batch: &[(&'static str, u64)],
        replace: bool,
    ) -> Result<(), BatchError> {
        let mut released = Released::new();
        let entries = batch
            .iter()
            .map(|&(key, size)| NewEntry {
                hash: hash_of(key),
                key,
                value: 0,
                size,
                deadline: NEVER,
                needs_close: false,
            })
            .collect();
        let result = self.cache.store_batch(
            entries,
            |position, k| *k == batch[position].0,
            replace,
            self.now,
            &mut released,
        );
        self.collect(released);
        self.cache.validate();
        result.map_err(|(error, _)| error)
    }
}

#[test]
fn external_policy_refuses_a_store_that_needs_room_and_evicts_by_key() {
    let mut d = Driver::new(EvictionPolicy::External, 2, 0);
    d.set("a", 1, 1, None).unwrap();
    d.set("b", 2, 1, None).unwrap();
    assert_eq!(d.set("c", 3, 1, None), Err("needs room"));
    assert_eq!(d.cache.len(), 2);
    assert!(d.take_released().is_empty(), "a refusal lets nothing go");
    assert!(!d.evict("c"), "no entry holds c");
    assert!(d.evict("b"));
    assert_eq!(d.take_released(), [("b", ReleaseReason::Evicted)]);
    assert_eq!(d.cache.stats().evictions, 1);
    d.set("c", 3, 1, None).unwrap();
    assert!(d.contains("a") && d.contains("c"));
}

#[test]
fn external_policy_reaps_expired_entries_before_it_asks_for_room() {
    let mut d = Driver::new(EvictionPolicy::External, 2, 0);
    d.set("a", 1, 1, Some(SECOND)).unwrap();
    d.set("b", 2, 1, None).unwrap();
    d.now += 2 * SECOND;
    assert!(!d.evict("a"), "an expired entry is no victim");
    d.set("c", 3, 1, None).unwrap();
    assert_eq!(d.take_released(), [("a", ReleaseReason::Expired)]);
}

#[test]
fn external_policy_keeps_a_replaced_holder_until_the_store_fits() {
    let mut d = Driver::new(EvictionPolicy::External, 0, 10);
    d.set("a", 1, 4, None).unwrap();
    d.set("b", 2, 4, None).unwrap();
    // Replacing a (4) by 6 needs 10: fits, its own room counts.
    d.put("a", 5, 6).unwrap();
    assert_eq!(d.take_released(), [("a", ReleaseReason::Replaced)]);
    // Replacing a (6) by 7 needs 11: the holder stays.
    assert_eq!(d.put("a", 6, 7), Err("needs room"));
    assert_eq!(d.cache.bytes(), 10);
    assert!(d.take_released().is_empty());
    assert_eq!(d.get("a"), Some(5));
}

#[test]
fn external_policy_asks_for_room_for_a_whole_batch_before_it_changes_anything() {
    let mut d = Driver::new(EvictionPolicy::External, 3, 0);
    d.set("a", 1, 1, None).unwrap();
    d.set("b", 2, 1, None).unwrap();
    assert_eq!(
        d.store_batch(&[("c", 1), ("d", 1)], false),
        Err(BatchError::NeedsRoom)
    );
    assert_eq!(d.cache.len(), 2);
    // Replacing b frees its room: a, b', c fit.
    d.store_batch(&[("b", 1), ("c", 1)], true).unwrap();
    assert_eq!(d.take_released(), [("b", ReleaseReason::Replaced)]);
    assert_eq!(d.cache.len(), 3);
}

/// A seeded generator for the hit-ratio traces: splitmix64.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Ranks `0..keys` drawn with probability proportional to `1 / (rank + 1)^skew`.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(keys: usize, skew: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=keys)
            .map(|rank| {
                total += (rank as f64).powf(-skew);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn draw(&self, rng: &mut SplitMix) -> u64 {
        let target = rng.unit() * self.cumulative[self.cumulative.len() - 1];
        self.cumulative.partition_point(|&c| c <= target) as u64
    }
}

const TRACE_KEYS: usize = 1_000_000;
const TRACE_LENGTH: usize = 2_000_000;

fn zipf_trace(skew: f64, seed: u64) -> Vec<u64> {
    let zipf = Zipf::new(TRACE_KEYS, skew);
    let mut rng = SplitMix(seed);
    (0..TRACE_LENGTH).map(|_| zipf.draw(&mut rng)).collect()
}

/// Zipf 1.0, and every 100k requests a scan of `scan` keys never seen
/// before or after.
fn zipf_with_scans(scan: u64, seed: u64) -> Vec<u64> {
    let zipf = Zipf::new(TRACE_KEYS, 1.0);
    let mut rng = SplitMix(seed);
    let mut fresh = 1u64 << 40;
    let mut trace = Vec::with_capacity(TRACE_LENGTH);
    while trace.len() < TRACE_LENGTH {
        trace.extend((0..100_000).map(|_| zipf.draw(&mut rng)));
        trace.extend(fresh..fresh + scan);
        fresh += scan;
    }
    trace.truncate(TRACE_LENGTH);
    trace
}

/// Zipf 1.0 whose ranks map to a new set of keys every 250k requests.
fn shifting_hot_set(seed: u64) -> Vec<u64> {
    let zipf = Zipf::new(TRACE_KEYS, 1.0);
    let mut rng = SplitMix(seed);
    (0..TRACE_LENGTH)
        .map(|i| zipf.draw(&mut rng) + (i / 250_000) as u64 * TRACE_KEYS as u64)
        .collect()
}

fn looping(keys: u64) -> Vec<u64> {
    (0..keys).cycle().take(TRACE_LENGTH).collect()
}

/// The hit ratio of a read-through reader (`get`, and on a miss `insert`).
fn hit_ratio(policy: EvictionPolicy, capacity: u64, trace: &[u64]) -> f64 {
    let mut d = Numbers::new(policy, capacity, 0);
    let hits = trace.iter().filter(|&&key| d.access(key)).count();
    hits as f64 / trace.len() as f64
}

/// The hit ratios of `lru` and `tinylfu` on fixed-seed traces, printed as a
/// table: run before and after a change to either policy, to see that it
/// costs no hit ratio. `cargo test --release -- --ignored hit_ratio --nocapture`
#[test]
#[ignore = "a measurement, not a check: tens of seconds in release"]
#[allow(clippy::print_stdout, reason = "the table is the result")]
fn hit_ratio_table() {
    println!(
        "{:<28} {:>7} {:>8} {:>8}",
        "trace", "cache", "lru %", "tinylfu %"
    );
    for capacity in [100, 1_000, 10_000] {
        let traces: Vec<(String, Vec<u64>)> = vec![
            ("zipf 0.8".into(), zipf_trace(0.8, 1)),
            ("zipf 1.0".into(), zipf_trace(1.0, 2)),
            ("zipf 1.2".into(), zipf_trace(1.2, 3)),
            ("loop 1.1x cache".into(), looping(capacity * 11 / 10)),
            (
                "zipf 1.0 + scans (5x cache)".into(),
                zipf_with_scans(5 * capacity, 4),
            ),
            ("shifting hot set".into(), shifting_hot_set(5)),
        ];
        for (name, trace) in &traces {
            let lru = hit_ratio(EvictionPolicy::Lru, capacity, trace);
            let tiny = hit_ratio(EvictionPolicy::TinyLfu, capacity, trace);
            println!(
                "{name:<28} {capacity:>7} {:>8.2} {:>8.2}",
                lru * 100.0,
                tiny * 100.0
            );
        }
    }
}
