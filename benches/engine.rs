//! The engine alone, without Python: `flexcache::engine::Cache<u64, u64>`
//! at 1M entries, then get hits at 1k and 100k entries under `lru` and
//! `tinylfu`. Run with `cargo bench --bench engine`; `cargo bench --bench
//! engine -- get-hit` runs only the latter.
//!
//! A plain harness (`harness = false`): each figure is the median of
//! [`REPS`] timed passes over 1M pre-built keys in random order, printed as
//! ns/op. Time is a tick count the bench passes in (the engine never reads a
//! clock), so the expiry figures are exact and nothing sleeps.

// A benchmark's output is its result: the crate's print_stdout lint is for
// library code, not for this binary.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use flexcache::engine::time::{Nanos, NEVER};
use flexcache::engine::{Cache, Config, EvictionPolicy, NewEntry, Released};

const N: u64 = 1_000_000;
const REPS: usize = 5;
const SECOND: Nanos = 1_000_000_000;
/// A ttl long enough that nothing falls due while a figure is timed.
const LONG_TTL: Nanos = 3600 * SECOND;

type Engine = Cache<u64, u64>;

/// splitmix64's finalizer: the engine takes the caller's hash, and the
/// Python binding passes `CPython`'s str hash; this stands in for it.
#[inline]
fn hash(key: u64) -> u64 {
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The keys `base..base + n` in a fixed random order.
fn shuffled(base: u64, n: u64, seed: u64) -> Vec<u64> {
    let mut keys: Vec<u64> = (base..base + n).collect();
    let mut state = seed;
    for i in (1..keys.len()).rev() {
        state = hash(state);
        let j = (state % (i as u64 + 1)) as usize;
        keys.swap(i, j);
    }
    keys
}

fn engine(policy: EvictionPolicy, max_items: u64) -> Engine {
    let config = Config {
        policy,
        max_items,
        max_bytes: 0,
        scan_interval: 0,
    };
    Cache::with_seed(config, 0, 7)
}

fn set(
    cache: &mut Engine,
    key: u64,
    deadline: Nanos,
    now: Nanos,
    released: &mut Released<u64, u64>,
) {
    let new = NewEntry {
        hash: hash(key),
        key,
        value: key,
        size: 1,
        deadline,
        needs_close: false,
    };
    let stored = cache.insert(new, |k| *k == key, now, released);
    debug_assert!(stored.is_ok());
    released.clear();
}

fn filled(policy: EvictionPolicy, max_items: u64, keys: &[u64], ttl: Option<Nanos>) -> Engine {
    let mut cache = engine(policy, max_items);
    let mut released = Released::new();
    let deadline = ttl.unwrap_or(NEVER);
    for &key in keys {
        set(&mut cache, key, deadline, 0, &mut released);
    }
    cache
}

/// Median over [`REPS`] runs of `setup` (untimed) then `run` (timed), in ns per op.
fn measure<S>(ops: u64, mut setup: impl FnMut() -> S, mut run: impl FnMut(&mut S)) -> f64 {
    let mut samples: Vec<f64> = (0..REPS)
        .map(|_| {
            let mut state = setup();
            let start = Instant::now();
            run(&mut state);
            let elapsed = start.elapsed();
            drop(black_box(state));
            elapsed.as_nanos() as f64 / ops as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[REPS / 2]
}

fn report(name: &str, ns: f64) {
    println!("{name:<52} {ns:>9.1} ns/op");
}

/// Get hits on a full cache of `n` entries: `n` lookups drawn uniformly,
/// with repeats (as `bench/profile_loop.py get-hit` does through Python),
/// replayed until about 1M gets, so each figure has the same number of ops.
fn get_hit_ns(policy: EvictionPolicy, n: u64) -> f64 {
    let keys = shuffled(0, n, 4);
    let mut cache = filled(policy, n, &keys, None);
    let mut state = 5;
    let lookups: Vec<u64> = (0..n)
        .map(|_| {
            state = hash(state);
            keys[(state % n) as usize]
        })
        .collect();
    let rounds = (N / n).max(1);
    let mut released = Released::new();
    let mut replay = |cache: &mut Engine| {
        for _ in 0..rounds {
            for &key in &lookups {
                let _ = black_box(cache.get(hash(key), |k| *k == key, 0, &mut released));
            }
        }
    };
    // One untimed replay: the entries settle where the lookups put them
    // (under `tinylfu`, the hit ones into protected).
    replay(&mut cache);
    measure(rounds * n, || (), |()| replay(&mut cache))
}

/// LRU against W-TinyLFU on the hit path, where the sketch's increment and
/// the region's move are all `tinylfu` adds; small sizes keep the entries
/// in the CPU's caches, so the policy's own work shows. The two alternate,
/// so that a neighbour's load shifts both alike.
fn get_hit_table() {
    println!("get hit, lru vs tinylfu, the best of 3 medians of {REPS}");
    for n in [1_000, 100_000] {
        let (mut lru, mut tiny) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            lru.push(get_hit_ns(EvictionPolicy::Lru, n));
            tiny.push(get_hit_ns(EvictionPolicy::TinyLfu, n));
        }
        let best = |samples: &[f64]| samples.iter().copied().fold(f64::INFINITY, f64::min);
        let (lru, tiny) = (best(&lru), best(&tiny));
        report(&format!("get hit, {n} entries, lru"), lru);
        report(&format!("get hit, {n} entries, tinylfu"), tiny);
        println!("  = tinylfu / lru {:.2}x", tiny / lru);
    }
}

#[allow(clippy::too_many_lines, reason = "one table, one row after another")]
fn main() {
    if std::env::args().any(|arg| arg == "get-hit") {
        get_hit_table();
        return;
    }
    let keys = shuffled(0, N, 1);
    let mut inserted: Vec<u64> = keys.clone();
    inserted.sort_unstable();
    let misses = shuffled(N, N, 2);
    let fresh = shuffled(2 * N, N, 3);
    let mut released = Released::new();

    println!("flexcache engine, Cache<u64, u64>, {N} entries, median of {REPS}");

    let ns = measure(
        N,
        || engine(EvictionPolicy::Lru, N),
        |cache| {
            for &key in &keys {
                set(cache, key, NEVER, 0, &mut released);
            }
        },
    );
    report("set new, lru bounded, no ttl", ns);

    let ns = measure(
        N,
        || engine(EvictionPolicy::Lru, N),
        |cache| {
            for &key in &keys {
                set(cache, key, LONG_TTL, 0, &mut released);
            }
        },
    );
    report("set new, lru bounded, ttl (into the wheel)", ns);

    for (name, policy) in [
        ("lru", EvictionPolicy::Lru),
        ("fifo", EvictionPolicy::Fifo),
        ("random", EvictionPolicy::Random),
    ] {
        let ns = measure(
            N,
            || filled(policy, N, &inserted, None),
            |cache| {
                for &key in &fresh {
                    set(cache, key, NEVER, 0, &mut released);
                }
            },
        );
        report(&format!("set at capacity, evicting one each, {name}"), ns);
    }

    let mut lru = filled(EvictionPolicy::Lru, N, &inserted, Some(LONG_TTL));
    let ns = measure(
        N,
        || (),
        |()| {
            for &key in &keys {
                let _ = black_box(lru.get(hash(key), |k| *k == key, 0, &mut released));
            }
        },
    );
    report("get hit, lru bounded (moves to the front)", ns);

    let ns = measure(
        N,
        || (),
        |()| {
            for &key in &misses {
                let _ = black_box(lru.get(hash(key), |k| *k == key, 0, &mut released));
            }
        },
    );
    report("get miss, lru bounded", ns);

    let mut fifo = filled(EvictionPolicy::Fifo, N, &inserted, None);
    let ns = measure(
        N,
        || (),
        |()| {
            for &key in &keys {
                let _ = black_box(fifo.get(hash(key), |k| *k == key, 0, &mut released));
            }
        },
    );
    report("get hit, fifo bounded", ns);
    drop(fifo);

    let ns = measure(
        N,
        || filled(EvictionPolicy::Lru, N, &inserted, Some(LONG_TTL)),
        |cache| {
            for &key in &keys {
                let _ = black_box(cache.remove(hash(key), |k| *k == key, 0, &mut released));
                released.clear();
            }
        },
    );
    report("delete, lru bounded, ttl", ns);

    // One scan with nothing due, at a later `now` each call: the wheel's
    // nothing-due test, whatever the cache's size.
    let ns = measure(
        N,
        || (),
        |()| {
            for now in 1..=N {
                lru.scan(now * 1_000, &mut released);
            }
        },
    );
    debug_assert!(released.is_empty());
    report("scan, nothing due (1M entries in the wheel)", ns);
    drop(lru);

    // Advance past every deadline: one scan reaps all 1M entries. The
    // deadlines rise with the order of the sets over one second, as 1M sets
    // a second with one ttl would give.
    let ns = measure(
        N,
        || {
            let mut cache = engine(EvictionPolicy::Lru, 0);
            let mut released = Released::new();
            for (i, &key) in (0..).zip(&keys) {
                let deadline = SECOND + i * SECOND / N;
                set(&mut cache, key, deadline, i * SECOND / N, &mut released);
            }
            (cache, Released::new())
        },
        |(cache, released)| {
            cache.scan(3 * SECOND, released);
            debug_assert!(cache.is_empty() && released.len() == N as usize);
        },
    );
    report("advance 3 s: one scan reaps 1M due (per entry)", ns);
    println!("  = {:.1} ms for the whole scan", ns * N as f64 / 1e6);

    println!();
    get_hit_table();
}
