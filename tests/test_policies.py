"""The ``lfu`` and ``tinylfu`` policies (SPEC Part 2, "Policies").

``lfu`` is checked exactly against a pure-Python model (count 1 at a store, one more per
hit, the victim the lowest count and among those the least recently used). ``tinylfu``'s
victims are its own choice; what is checked is every rule around them: the limits, closes
and removal causes, ``rejections`` for an entry let go by its own store, scan resistance and
aging with fixed seeds. The engine-level tests (src/engine/tests.rs, the model in
src/engine/model.rs and its fuzz target) check the regions and the sketch after every step.
"""

from __future__ import annotations

import random
from collections import OrderedDict

import pytest
from conftest import POLICIES, Tracker, check_cache, run_threads
from flexcache import FlexCache, RemovalCause


class LfuModel:
    """Exact LFU: ``order`` is least recently used first; the victim is the first entry of
    the lowest count."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self.counts: OrderedDict[object, int] = OrderedDict()

    def access(self, key: object) -> tuple[bool, object | None]:
        """``get``, then ``set`` on a miss: whether it hit, and the key it evicted."""
        if key in self.counts:
            self.counts[key] += 1
            self.counts.move_to_end(key)
            return True, None
        victim = None
        if len(self.counts) == self.max_items:
            lowest = min(self.counts.values())
            victim = next(k for k, count in self.counts.items() if count == lowest)
            del self.counts[victim]
        self.counts[key] = 1
        return False, victim

    def eviction_order(self) -> list[object]:
        return sorted(self.counts, key=self.counts.__getitem__)  # stable: recency breaks ties


@pytest.mark.parametrize("seed", range(4))
def test_lfu_victims_match_the_model_exactly(seed: int) -> None:
    rng = random.Random(seed)
    evicted: list[object] = []
    cache = FlexCache("lfu", max_items=40, on_remove=lambda key, value, cause: evicted.append(key))
    model = LfuModel(40)
    for step in range(6000):
        # Skewed over int, str and tuple keys, so counts spread over many values.
        rank = int(rng.paretovariate(1.1)) % 150
        key = (rank, "t") if rank % 3 == 0 else (str(rank) if rank % 3 == 1 else rank)
        hit, victim = model.access(key)
        got = cache.get(key)
        assert (got is not None) == hit, f"step {step}: hit of {key!r}"
        if not hit:
            cache.set(key, step)
        assert evicted == ([] if victim is None else [victim]), f"step {step}"
        evicted.clear()
        if step % 500 == 0:
            assert cache.keys() == model.eviction_order()
    assert cache.keys() == model.eviction_order()


def test_lfu_ties_go_to_the_least_recently_used() -> None:
    cache = FlexCache("lfu", max_items=3)
    for key in "abc":
        cache[key] = key
    assert cache.get("a") == "a"
    assert cache.get("b") == "b"
    assert cache.get("a") == "a"
    # counts: a 3, b 2, c 1
    assert cache.keys() == ["c", "b", "a"]
    cache["d"] = "d"
    assert "c" not in cache
    cache.get("d")  # d: 2, used after b
    cache["e"] = "e"
    assert "b" not in cache and "d" in cache


def test_lfu_counts_only_hits_not_peek_in_or_misses() -> None:
    cache = FlexCache("lfu", max_items=2)
    cache["a"] = 1
    cache["b"] = 2
    for _ in range(5):
        assert cache.peek("a") == 1
        assert "a" in cache
        assert cache.get("zzz") is None
    cache.get("b")
    cache["c"] = 3
    assert "a" not in cache, "peek and in counted nothing, so a had the lowest count"


def test_lfu_put_starts_the_count_again() -> None:
    cache = FlexCache("lfu", max_items=2)
    cache["a"] = 1
    cache["b"] = 2
    for _ in range(3):
        cache.get("a")
    cache.get("b")
    cache.put("a", 10)  # count 1 again, and now the most recent of count 1
    assert cache.keys() == ["a", "b"]
    cache["c"] = 3
    assert "a" not in cache


def test_lfu_get_many_and_get_or_set_hits_count() -> None:
    cache = FlexCache("lfu", max_items=3)
    for key in "abc":
        cache[key] = key
    cache.get_many(["a", "a", "b"])
    cache.get_or_set("b", lambda: "never")
    cache.get_or_set("c", lambda: "never")
    assert cache.keys() == ["c", "a", "b"]


@pytest.mark.parametrize("policy", ["lfu", "tinylfu"])
def test_policy_name_and_repr(policy: str) -> None:
    cache = FlexCache(policy, max_items=10)
    assert cache.eviction_policy == policy
    assert f"eviction_policy={policy!r}" in repr(cache)


def test_unknown_policy_lists_every_choice() -> None:
    with pytest.raises(ValueError) as info:
        FlexCache("lfuu")
    for choice in POLICIES:
        assert f"'{choice}'" in str(info.value)


# --- tinylfu ----------------------------------------------------------------------------


def reader(cache: FlexCache, key: object) -> bool:
    """What a caller of a cache does: ``get``, and ``set`` on a miss."""
    if cache.get(key) is not None:
        return True
    cache.set(key, key)
    return False


def test_tinylfu_keeps_a_hot_set_through_a_one_off_scan() -> None:
    hot = range(400)
    caches = {policy: FlexCache(policy, max_items=1000) for policy in ("tinylfu", "lru")}
    for cache in caches.values():
        for _ in range(20):
            for key in hot:
                reader(cache, key)
        for key in range(10**6, 10**6 + 5000):  # five times the cache, each key once
            reader(cache, key)
    kept = sum(key in caches["tinylfu"] for key in hot)
    assert kept >= 380, f"tinylfu kept {kept} of 400 hot keys"
    assert not any(key in caches["lru"] for key in hot), "lru keeps none (the contrast)"


def test_tinylfu_lets_a_new_hot_set_replace_an_old_one() -> None:
    rng = random.Random(7)
    cache = FlexCache("tinylfu", max_items=200)
    for _ in range(40_000):
        reader(cache, rng.randrange(200))
    hits = 0
    for step in range(40_000):
        hit = reader(cache, 10_000 + rng.randrange(200))
        hits += hit and step >= 38_000
    assert hits >= 1800, f"the new hot set hit {hits} of its last 2000 reads"


def test_tinylfu_beats_lru_on_a_skewed_trace() -> None:
    rng = random.Random(3)
    weights = [1 / rank**0.9 for rank in range(1, 100_001)]
    trace = rng.choices(range(100_000), weights=weights, k=60_000)
    ratios = {}
    for policy in ("tinylfu", "lru"):
        cache = FlexCache(policy, max_items=300)
        ratios[policy] = sum(reader(cache, key) for key in trace) / len(trace)
    assert ratios["tinylfu"] > ratios["lru"] + 0.01, ratios


def test_tinylfu_rejection_is_closed_counted_and_reported_as_size(tracker: Tracker) -> None:
    removed: list[tuple[object, RemovalCause]] = []
    cache = FlexCache(
        "tinylfu", max_bytes=100, on_remove=lambda key, value, cause: removed.append((key, cause))
    )
    for key in range(100):
        cache.set(key, tracker(str(key), 1))
    for _ in range(5):
        for key in range(100):
            assert cache.get(key) is not None
    assert cache.get("big") is None
    big = tracker("big", 10)  # larger than the window: straight to the admission contest
    cache.set("big", big)
    assert "big" not in cache
    assert big.closes == 1
    assert ("big", RemovalCause.SIZE) in removed
    stats = cache.stats()
    assert stats.rejections == 1
    assert stats.sets == 101
    # The window's entry, pushed out by big, competed too (and may have lost): an eviction.
    assert stats.evictions == len(removed) - 1
    check_cache(cache)


@pytest.mark.parametrize("limits", [{"max_items": 50}, {"max_bytes": 120}, {"max_items": 1}])
def test_tinylfu_closes_every_value_exactly_once(tracker: Tracker, limits: dict[str, int]) -> None:
    rng = random.Random(11)
    cache = FlexCache("tinylfu", **limits)
    values = []
    for step in range(5000):
        key = int(rng.paretovariate(1.0)) % 300
        if cache.get(key) is None:
            value = tracker(f"{key}@{step}", 1 + step % 5)
            values.append(value)
            cache.set(key, value)
        check_cache(cache)
    cache.clear()
    assert all(value.closes == 1 for value in values)


@pytest.mark.parametrize("policy", ["lfu", "tinylfu"])
def test_thread_safe_policies_close_once_and_hold_limits(tracker: Tracker, policy: str) -> None:
    cache = FlexCache(policy, max_items=64, thread_safe=True)
    made = []

    def work(n: int) -> None:
        rng = random.Random(n)
        for step in range(2000):
            key = int(rng.paretovariate(1.0)) % 200
            if cache.get(key) is None:
                value = tracker(f"{n}:{step}")
                made.append(value)
                try:
                    cache.set(key, value)
                except KeyError:
                    value.close()  # another thread stored it first: ours was never held
            assert len(cache) <= 64

    run_threads(work, 4)
    cache.clear()
    assert all(value.closes == 1 for value in made)
