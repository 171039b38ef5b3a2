//! Snapshots of a cache, for copies and dumps: [`Cache::export`] shows the
//! live entries with what a copy needs to stand as the original did (size,
//! deadline, use count, in eviction order), and [`Cache::restore`] files
//! such entries into a new cache as they were, without anything a store
//! does to a new entry (no admission contest, no count starting at 1).

use super::arena::SlotId;
use super::policy::{LfuCursor, Policy};
use super::time::{Nanos, LATEST_NOW};
use super::{Cache, Indexed, KeyMatch, NewEntry, ReleaseReason, Released, ReleasedEntry};

/// A live entry as [`Cache::export`] shows it.
#[derive(Debug)]
pub struct ExportedEntry<'a, K, V> {
    pub key: &'a K,
    pub value: &'a V,
    pub size: u64,
    /// Absolute, on the cache's clock; [`super::time::NEVER`] for none.
    pub deadline: Nanos,
    /// The `lfu` count; 0 under a policy that keeps none.
    pub uses: u64,
}

/// An entry for [`Cache::restore`].
#[derive(Debug)]
pub struct RestoredEntry<K, V> {
    pub entry: NewEntry<K, V>,
    /// The `lfu` count (0 counts as 1); ignored by the other policies.
    pub uses: u64,
}

impl<K, V> Cache<K, V> {
    /// Visits every entry live at `now` in eviction order, the next victim
    /// first (`tinylfu`: probation, protected, then the window; `random`
    /// and a cache without limits: slot order). Changes nothing.
    pub fn export<'a>(&'a self, now: Nanos, mut visit: impl FnMut(ExportedEntry<'a, K, V>)) {
        let now = now.min(LATEST_NOW).max(self.latest_now);
        let mut visit_live = |id: SlotId| {
            let entry = self.entries.get(id);
            if entry.deadline() > now {
                visit(ExportedEntry {
                    key: &entry.key,
                    value: &entry.value,
                    size: self.large_sizes.get(id, entry.size_field()),
                    deadline: entry.deadline(),
                    uses: self.policy.uses_of(id),
                });
            }
        };
        if !self
            .policy
            .for_each_in_victim_order(&self.entries, &mut visit_live)
        {
            for (id, _) in self.entries.iter() {
                visit_live(id);
            }
        }
    }

    /// Files `batch`, in eviction order (the next victim first), into this
    /// cache, which must be empty: each entry with its own size, deadline
    /// and (`lfu`) count; `tinylfu` rebuilds its regions from the order.
    /// `eq(i, key)` compares a filed key with the key of `batch[i]`; of
    /// keys it finds the same, the one filed later (in eviction order)
    /// stays and the earlier is let go as replaced. A comparison it cannot decide counts as different: the
    /// caller settles such keys before. The statistics then start from
    /// zero, and what no longer fits the limits goes as a scan would let it
    /// go (expired entries first, then victims by policy; an entry larger
    /// than `max_bytes` on its own is not filed at all), into `released`
    /// and counted as evictions and expirations.
    ///
    /// # Errors
    /// The batch, untouched, when the cache is not empty.
    pub fn restore<M: Into<KeyMatch>>(
        &mut self,
        batch: Vec<RestoredEntry<K, V>>,
        mut eq: impl FnMut(usize, &K) -> M,
        now: Nanos,
        released: &mut Released<K, V>,
    ) -> Result<(), Vec<RestoredEntry<K, V>>> {
        if !self.is_empty() {
            return Err(batch);
        }
        let now = self.observe(now);
        let mut order: Vec<usize> = (0..batch.len()).collect();
        if matches!(self.policy, Policy::Lfu(_)) {
            // Stable: the order among equal counts is the order of use. A
            // batch from an `lfu` export is sorted already (a linear pass).
            order.sort_by_key(|&position| batch[position].uses.max(1));
        }
        // Same size as the batch (the entry's flag leaves a niche), so
        // this collects in place.
        let mut batch: Vec<Option<RestoredEntry<K, V>>> = batch.into_iter().map(Some).collect();
        let entries = &self.entries;
        self.index
            .reserve(batch.len(), |id| entries.get(id).stored_hash());
        self.entries.reserve(batch.len());
        let max_bytes = self.config.max_bytes;
        let mut too_large = Vec::new();
        let mut cursor = LfuCursor::default();
        for position in order {
            let Some(RestoredEntry { entry, uses }) = batch[position].take() else {
                continue;
            };
            if max_bytes > 0 && entry.size > max_bytes {
                too_large.push(entry);
                continue;
            }
            // The probe reads the group the insert below writes: no miss
            // of its own.
            let earlier = self.find(entry.hash, |stored| match eq(position, stored).into() {
                KeyMatch::Same => KeyMatch::Same,
                KeyMatch::Different | KeyMatch::Unknown => KeyMatch::Different,
            });
            if let Ok(Some(id)) = earlier {
                self.release(id, Indexed::Yes, ReleaseReason::Replaced, released);
                cursor.reset();
            }
            self.file(entry, |policy, entries, id, size| {
                policy.on_restore(entries, id, size, uses, &mut cursor);
            });
        }
        self.reset_stats();
        released.reserve(too_large.len());
        for entry in too_large {
            self.counters.removed[ReleaseReason::Evicted as usize] += 1;
            released.push(ReleasedEntry {
                key: entry.key,
                value: entry.value,
                needs_close: entry.needs_close,
                reason: ReleaseReason::Evicted,
            });
        }
        self.expire_due(now, released);
        self.make_room(0, 0, None, now, released);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::time::NEVER;
    use super::super::{Config, EvictionPolicy, KeyMatch};
    use super::*;

    type TestCache = Cache<u32, u32>;

    fn config(policy: EvictionPolicy, max_items: u64, max_bytes: u64) -> Config {
        Config {
            policy,
            max_items,
            max_bytes,
            scan_interval: 0,
        }
    }

    fn hash_of(key: u32) -> u64 {
        u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    fn new_entry(key: u32, size: u64, deadline: Nanos) -> NewEntry<u32, u32> {
        NewEntry {
            hash: hash_of(key),
            key,
            value: key + 1000,
            size,
            deadline,
            needs_close: key % 2 == 0,
        }
    }

    fn get(cache: &mut TestCache, key: u32, now: Nanos) -> bool {
        let mut released = Released::new();
        let found = cache
            .get(
                hash_of(key),
                |k| KeyMatch::from(*k == key),
                now,
                &mut released,
            )
            .unwrap()
            .is_some();
        assert!(released.is_empty());
        found
    }

    /// (key, value, size, deadline, uses) of each exported entry.
    fn exported(cache: &TestCache, now: Nanos) -> Vec<(u32, u32, u64, Nanos, u64)> {
        let mut all = Vec::new();
        cache.export(now, |e| {
            all.push((*e.key, *e.value, e.size, e.deadline, e.uses));
        });
        all
    }

    fn as_batch(entries: &[(u32, u32, u64, Nanos, u64)]) -> Vec<RestoredEntry<u32, u32>> {
        entries
            .iter()
            .map(|&(key, _, size, deadline, uses)| RestoredEntry {
                entry: new_entry(key, size, deadline),
                uses,
            })
            .collect()
    }

    /// The comparison of a restore of `entries`: by key.
    fn same_keys(entries: &[(u32, u32, u64, Nanos, u64)]) -> impl FnMut(usize, &u32) -> bool + '_ {
        |position, stored| entries[position].0 == *stored
    }

    /// A cache of 20 entries of mixed sizes and deadlines, some hit.
    fn populated(policy: EvictionPolicy) -> TestCache {
        let mut cache = Cache::with_seed(config(policy, 64, 1000), 0, 7);
        let mut released = Released::new();
        for key in 0..20 {
            let deadline = if key % 3 == 0 {
                500 + u64::from(key)
            } else {
                NEVER
            };
            let new = new_entry(key, u64::from(key % 5) + 1, deadline);
            cache
                .insert(new, |k| KeyMatch::from(*k == key), 0, &mut released)
                .unwrap();
        }
        assert!(released.is_empty());
        for key in [3, 5, 5, 7, 7, 7, 1] {
            assert!(get(&mut cache, key, 1));
        }
        cache
    }

    #[test]
    fn restore_keeps_order_sizes_deadlines_and_counts() {
        for policy in EvictionPolicy::ALL {
            let source = populated(policy);
            let before = exported(&source, 10);
            let mut copy = Cache::with_seed(*source.config(), 10, 7);
            let mut released = Released::new();
            copy.restore(as_batch(&before), same_keys(&before), 10, &mut released)
                .unwrap();
            assert!(released.is_empty(), "{policy:?}");
            copy.validate();
            let after = exported(&copy, 10);
            assert_eq!(copy.len(), 20, "{policy:?}");
            assert_eq!(copy.bytes(), source.bytes(), "{policy:?}");
            assert_eq!(copy.stats(), super::super::Stats::default(), "{policy:?}");
            if policy == EvictionPolicy::Random {
                let mut a = before.clone();
                let mut b = after.clone();
                a.sort_unstable();
                b.sort_unstable();
                assert_eq!(a, b);
            } else {
                assert_eq!(before, after, "{policy:?}");
            }
            if policy == EvictionPolicy::Lfu {
                let seven = after.iter().find(|e| e.0 == 7).unwrap();
                assert_eq!(seven.4, 4);
                assert_eq!(after.last().unwrap().0, 7, "the most used goes last");
            }
        }
    }

    #[test]
    fn restore_under_lower_limits_lets_the_next_victims_go() {
        for policy in [
            EvictionPolicy::Lru,
            EvictionPolicy::Fifo,
            EvictionPolicy::Lfu,
            EvictionPolicy::TinyLfu,
        ] {
            let source = populated(policy);
            let before = exported(&source, 10);
            let mut copy = Cache::with_seed(config(policy, 5, 0), 10, 7);
            let mut released = Released::new();
            copy.restore(as_batch(&before), same_keys(&before), 10, &mut released)
                .unwrap();
            copy.validate();
            assert_eq!(copy.len(), 5);
            assert_eq!(released.len(), 15);
            assert!(released.iter().all(|r| r.reason == ReleaseReason::Evicted));
            let gone: Vec<u32> = released.iter().map(|r| r.key).collect();
            let expected: Vec<u32> = before[..15].iter().map(|e| e.0).collect();
            assert_eq!(gone, expected, "{policy:?}: victims in export order");
            assert_eq!(copy.stats().evictions, 15);
            assert_eq!(copy.stats().sets, 0);
        }
    }

    #[test]
    fn restore_lets_go_what_is_due_and_what_is_too_large() {
        let mut cache: TestCache = Cache::with_seed(config(EvictionPolicy::Lru, 0, 10), 100, 1);
        let batch = vec![
            RestoredEntry {
                entry: new_entry(1, 11, NEVER),
                uses: 0,
            },
            RestoredEntry {
                entry: new_entry(2, 1, 50),
                uses: 0,
            },
            RestoredEntry {
                entry: new_entry(3, 4, 200),
                uses: 0,
            },
        ];
        let mut released = Released::new();
        cache
            .restore(batch, |_, _| false, 100, &mut released)
            .unwrap();
        cache.validate();
        let reasons: Vec<(u32, ReleaseReason)> =
            released.iter().map(|r| (r.key, r.reason)).collect();
        assert_eq!(
            reasons,
            [(1, ReleaseReason::Evicted), (2, ReleaseReason::Expired)]
        );
        assert!(released[0].needs_close.eq(&false));
        assert_eq!(exported(&cache, 100), [(3, 1003, 4, 200, 0)]);
    }

    #[test]
    fn restore_refuses_a_cache_that_holds_entries() {
        let mut cache = populated(EvictionPolicy::Lru);
        let mut released = Released::new();
        let batch = as_batch(&[(99, 0, 1, NEVER, 0)]);
        let refused = cache
            .restore(batch, |_, _| false, 10, &mut released)
            .unwrap_err();
        assert_eq!(refused.len(), 1);
        assert_eq!(cache.len(), 20);
        assert!(released.is_empty());
    }

    #[test]
    fn restore_of_the_same_key_twice_keeps_the_later() {
        let mut cache: TestCache = Cache::with_seed(config(EvictionPolicy::Lfu, 10, 0), 0, 1);
        let rows = [
            (1, 0, 1, NEVER, 5),
            (2, 0, 1, NEVER, 1),
            (1, 0, 3, NEVER, 2),
        ];
        let mut released = Released::new();
        cache
            .restore(as_batch(&rows), same_keys(&rows), 0, &mut released)
            .unwrap();
        cache.validate();
        // Count order first: the count-2 copy of key 1 is filed before the
        // count-5 one, which replaces it.
        let reasons: Vec<(u32, u64, ReleaseReason)> = released
            .iter()
            .map(|r| (r.key, r.value.into(), r.reason))
            .collect();
        assert_eq!(reasons, [(1, 1001, ReleaseReason::Replaced)]);
        let order: Vec<(u32, u64)> = exported(&cache, 0).iter().map(|e| (e.0, e.4)).collect();
        assert_eq!(order, [(2, 1), (1, 5)]);
        assert_eq!(cache.bytes(), 2);
    }

    #[test]
    fn lfu_restore_sorts_a_batch_out_of_count_order() {
        let mut cache: TestCache = Cache::with_seed(config(EvictionPolicy::Lfu, 10, 0), 0, 1);
        let batch = as_batch(&[
            (1, 0, 1, NEVER, 3),
            (2, 0, 1, NEVER, 1),
            (3, 0, 1, NEVER, 0),
            (4, 0, 1, NEVER, 3),
        ]);
        let mut released = Released::new();
        cache
            .restore(batch, |_, _| false, 0, &mut released)
            .unwrap();
        cache.validate();
        let order: Vec<(u32, u64)> = exported(&cache, 0).iter().map(|e| (e.0, e.4)).collect();
        assert_eq!(order, [(2, 1), (3, 1), (1, 3), (4, 3)]);
    }
}
