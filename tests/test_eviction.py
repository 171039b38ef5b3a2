"""SPEC "set" (limits, eviction order): which entries go when a set would exceed a limit."""

from __future__ import annotations

import math
import random
from collections import Counter, OrderedDict
from datetime import timedelta

import pytest
from conftest import POLICIES as ALL_POLICIES
from flexcache import FlexCache
from flexcache.testing import ManualClock

INF = math.inf
POLICIES = pytest.mark.parametrize("policy", ALL_POLICIES)


def fill(cache: FlexCache, tracker, names: str, size: int | None = None) -> dict:
    values = {}
    for name in names:
        values[name] = tracker(name, size)
        cache.set(name, values[name])
    return values


def present(cache: FlexCache, names: str) -> str:
    return "".join(name for name in names if name in cache)


# --- LRU ---------------------------------------------------------------------------------------


def test_lru_evicts_least_recently_set(tracker) -> None:
    cache = FlexCache("lru", max_items=3)
    fill(cache, tracker, "abc")
    cache.set("d", tracker("d"))
    assert tracker.closed == ["a"]
    cache.set("e", tracker("e"))
    assert tracker.closed == ["a", "b"]
    assert present(cache, "abcde") == "cde"


def test_lru_get_hit_refreshes(tracker) -> None:
    cache = FlexCache("lru", max_items=3)
    fill(cache, tracker, "abc")
    assert cache.get("a").name == "a"
    cache.set("d", tracker("d"))
    assert tracker.closed == ["b"]
    cache.get("c")
    cache.set("e", tracker("e"))
    assert tracker.closed == ["b", "a"]
    cache.set("f", tracker("f"))
    assert tracker.closed == ["b", "a", "d"]
    assert present(cache, "abcdef") == "cef"


def test_lru_in_miss_scan_and_refused_set_do_not_refresh(tracker) -> None:
    cache = FlexCache("lru", max_items=3)
    fill(cache, tracker, "abc")
    assert "a" in cache
    assert cache.get("zzz") is None
    assert cache.get("zzz", "default") == "default"
    cache.scan()
    with pytest.raises(KeyError):
        cache.set("a", tracker("a2"))
    assert cache.delete("missing") is False
    cache.set("d", tracker("d"))
    assert tracker.closed == ["a"]


def test_lru_delete_and_set_again_is_most_recent(tracker) -> None:
    cache = FlexCache("lru", max_items=3)
    fill(cache, tracker, "abc")
    cache.delete("a")
    cache.set("a", tracker("A"))
    cache.set("d", tracker("d"))
    assert tracker.closed == ["a", "b"]
    assert present(cache, "abcd") == "acd"


# --- FIFO --------------------------------------------------------------------------------------


def test_fifo_evicts_oldest_set_reads_change_nothing(tracker) -> None:
    cache = FlexCache("fifo", max_items=3)
    fill(cache, tracker, "abc")
    for _ in range(5):
        cache.get("a")
        assert "a" in cache
    cache.get("nope")
    cache.scan()
    with pytest.raises(KeyError):
        cache.set("a", tracker("a2"))
    cache.set("d", tracker("d"))
    assert tracker.closed == ["a"]
    cache.get("b")
    cache.set("e", tracker("e"))
    assert tracker.closed == ["a", "b"]
    cache.delete("c")
    cache.set("c", tracker("C"))
    cache.get("d")
    cache.set("f", tracker("f"))
    assert tracker.closed == ["a", "b", "c", "d"]
    assert present(cache, "abcdef") == "cef"


# --- exact order against a model ---------------------------------------------------------------


@pytest.mark.parametrize("policy", ["lru", "fifo"])
@pytest.mark.parametrize("seed", range(6))
def test_order_matches_model(policy: str, seed: int, tracker) -> None:
    """Random set/get/in/miss/scan/delete against an OrderedDict whose front is the victim."""
    rng = random.Random(seed)
    max_items = rng.choice([1, 2, 5, 8])
    max_bytes = rng.choice([0, 0, 12, 30])
    cache = FlexCache(policy, max_items=max_items, max_bytes=max_bytes)
    model: OrderedDict[str, object] = OrderedDict()
    sizes: dict[str, int] = {}
    keys = [f"k{n}" for n in range(14)]
    for step in range(1500):
        before = list(tracker.closed)
        key = rng.choice(keys)
        op = rng.random()
        if op < 0.4:
            size = rng.randint(0, 9)
            value = tracker(f"{key}#{step}", size)
            if key in model:
                with pytest.raises(KeyError):
                    cache.set(key, value)
            elif max_bytes and size > max_bytes:
                with pytest.raises(ValueError):
                    cache.set(key, value)
            else:
                expected = []
                while len(model) + 1 > max_items or (
                    max_bytes and sum(sizes.values()) + size > max_bytes
                ):
                    victim, victim_value = model.popitem(last=False)
                    del sizes[victim]
                    expected.append(victim_value.name)
                cache.set(key, value)
                model[key] = value
                sizes[key] = size
                assert tracker.closed[len(before) :] == expected, step
        elif op < 0.65:
            got = cache.get(key)
            if key in model:
                assert got is model[key]
                if policy == "lru":
                    model.move_to_end(key)
            else:
                assert got is None
        elif op < 0.8:
            assert (key in cache) == (key in model)
        elif op < 0.85:
            cache.scan()
        else:
            deleted = cache.delete(key)
            assert deleted == (key in model)
            if deleted:
                assert model.pop(key).closes == 1
                del sizes[key]
        if not (op < 0.4 or op >= 0.85):
            assert tracker.closed == before, step
        assert cache.items == len(model)
        assert cache.bytes == sum(sizes.values())
    # Drain: fresh sets must evict the remaining entries exactly in model order.
    remaining = [value.name for value in model.values()]
    start = len(tracker.closed)
    for n in range(max_items):
        cache.set(f"drain{n}", tracker(f"drain{n}", 0))
    assert tracker.closed[start:] == remaining


@pytest.mark.parametrize("policy", ["lru", "fifo"])
@pytest.mark.parametrize("seed", range(6))
def test_order_with_expiry_matches_model(policy: str, seed: int, tracker) -> None:
    """As above, with ttls and a moving clock (exact microseconds), scan_interval infinite.

    Expired entries leave only when SPEC says: a scan, a get/delete/set of their key, or a set
    that needs room. In that last case any number of them may go, but no live entry may be
    evicted while an expired one is still held, and live victims follow the policy's order.
    """
    rng = random.Random(1000 + seed)
    clock = ManualClock()
    max_items = rng.choice([2, 4, 7])
    max_bytes = rng.choice([0, 15])
    cache = FlexCache(policy, INF, max_items, max_bytes, clock=clock)
    model: OrderedDict[str, tuple[object, int, float]] = OrderedDict()  # value, size, deadline
    now = 0
    keys = [f"k{n}" for n in range(12)]

    def expired(key: str) -> bool:
        return model[key][2] <= now

    def new_closes(before: int) -> list[str]:
        return tracker.closed[before:]

    for step in range(1500):
        before = len(tracker.closed)
        key = rng.choice(keys)
        roll = rng.random()
        if roll < 0.4:
            size = rng.randint(1, 6)
            ttl = rng.choice([None, 3, 10, 50])
            value = tracker(f"{key}#{step}", size)
            if key in model and not expired(key):
                with pytest.raises(KeyError):
                    cache.set(key, value, ttl=None if ttl is None else timedelta_us(ttl))
                assert new_closes(before) == []
                continue
            cache.set(key, value, ttl=None if ttl is None else timedelta_us(ttl))
            closed = new_closes(before)
            by_name = {entry[0].name: name for name, entry in model.items()}
            if key in model:  # the expired holder is reaped first
                assert model[key][0].name in closed
            reaped = [by_name[name] for name in closed if model[by_name[name]][2] <= now]
            evicted = [by_name[name] for name in closed if model[by_name[name]][2] > now]
            for name in reaped:
                del model[name]
            if evicted:
                assert not any(expired(k) for k in model), "live evicted before expired"
            expected = []
            live = [k for k in model if k not in evicted]
            count, total = len(model), sum(entry[1] for entry in model.values())
            for victim in model:
                if not (count + 1 > max_items or (max_bytes and total + size > max_bytes)):
                    break
                expected.append(victim)
                count -= 1
                total -= model[victim][1]
            assert evicted == expected, (step, evicted, expected, live)
            for name in evicted:
                del model[name]
            model[key] = (value, size, INF if ttl is None else now + ttl)
        elif roll < 0.6:
            got = cache.get(key)
            if key in model and not expired(key):
                assert got is model[key][0]
                if policy == "lru":
                    model.move_to_end(key)
                assert new_closes(before) == []
            else:
                assert got is None
                if key in model:
                    assert new_closes(before) == [model.pop(key)[0].name]
        elif roll < 0.7:
            assert (key in cache) == (key in model and not expired(key))
        elif roll < 0.75:
            cache.scan()
            gone = sorted(k for k in model if expired(k))
            assert sorted(new_closes(before)) == sorted(model[k][0].name for k in gone)
            for k in gone:
                del model[k]
        elif roll < 0.85:
            was_live = key in model and not expired(key)
            assert cache.delete(key) is was_live
            if key in model:
                assert new_closes(before) == [model.pop(key)[0].name]
        else:
            step_us = rng.choice([1, 2, 5, 20])
            clock.advance(timedelta_us(step_us))
            now += step_us
        assert cache.items == len(model)
        assert cache.bytes == sum(entry[1] for entry in model.values())


def timedelta_us(n: int) -> timedelta:
    return timedelta(microseconds=n)


# --- random ------------------------------------------------------------------------------------


def test_random_never_evicts_the_new_entry(tracker) -> None:
    for trial in range(300):
        cache = FlexCache("random", max_items=3)
        fill(cache, tracker, "abc")
        cache.set("n", tracker(f"n{trial}"))
        assert "n" in cache
        assert cache.items == 3
    cache = FlexCache("random", max_items=1)
    for n in range(50):
        cache.set(str(n), n)
        assert cache.get(str(n)) == n
        assert cache.items == 1


def test_random_is_roughly_uniform(tracker) -> None:
    """4 candidates, 4000 trials: each expected 1000 times; the bounds are 7 standard deviations."""
    counts: Counter[str] = Counter()
    for _ in range(4000):
        cache = FlexCache("random", max_items=4)
        for name in "abcd":
            cache.set(name, name)
        cache.get("a")  # neither LRU nor FIFO must show through
        cache.set("new", "new")
        gone = [name for name in "abcd" if name not in cache]
        assert len(gone) == 1
        assert "new" in cache
        counts[gone[0]] += 1
    assert set(counts) == set("abcd")
    for name in "abcd":
        assert 800 <= counts[name] <= 1200, counts


def test_random_is_uniform_in_a_long_running_cache() -> None:
    """Victims drawn from a cache that has churned for a while, by insertion age bucket."""
    cache = FlexCache("random", max_items=8)
    serial = 0
    ages: Counter[int] = Counter()
    for name in range(8):
        cache.set(f"k{name}", name)
    inserted = {f"k{n}": n for n in range(8)}
    for _ in range(8000):
        serial += 1
        key = f"k{serial + 7}"
        cache.set(key, serial)
        inserted[key] = serial + 7
        gone = [k for k in inserted if k not in cache]
        assert len(gone) == 1
        assert gone[0] != key
        rank = sorted(inserted.values()).index(inserted[gone[0]])
        ages[rank] += 1
        del inserted[gone[0]]
    # rank 8 is the new entry: never evicted. Ranks 0..7 expected 1000 each.
    assert ages[8] == 0
    for rank in range(8):
        assert 800 <= ages[rank] <= 1200, ages


def test_random_evicts_by_bytes_never_the_new(tracker) -> None:
    for trial in range(200):
        cache = FlexCache("random", max_bytes=10)
        fill(cache, tracker, "abcde", 2)
        big = tracker(f"big{trial}", 7)
        cache.set("big", big)
        assert cache.get("big") is big
        assert cache.bytes <= 10
        assert sum(name in cache for name in "abcde") == 1


# --- limits -----------------------------------------------------------------------------------


@POLICIES
def test_max_items_one(policy: str, tracker) -> None:
    cache = FlexCache(policy, max_items=1)
    previous = None
    for n in range(20):
        value = tracker(str(n))
        cache.set(str(n), value)
        assert cache.items == 1
        assert cache.get(str(n)) is value
        if previous is not None:
            assert previous.closes == 1
        previous = value


@POLICIES
def test_unlimited_by_default(policy: str, tracker) -> None:
    cache = FlexCache(policy)
    for n in range(5000):
        cache.set(str(n), tracker(str(n), 10**9))
    assert cache.items == 5000
    assert cache.bytes == 5000 * 10**9
    assert tracker.closed == []


@POLICIES
def test_max_bytes_evicts_several_until_it_fits(policy: str, tracker) -> None:
    cache = FlexCache(policy, max_bytes=10)
    fill(cache, tracker, "abcde", 2)
    assert cache.bytes == 10
    big = tracker("big", 7)
    cache.set("big", big)
    if policy == "tinylfu" and "big" not in cache:
        # Larger than the window, big competed for its place and lost (SPEC: a set may let
        # go of the entry it stored): closed once, counted, and the limit holds.
        assert big.closes == 1
        assert cache.stats().rejections == 1
        assert cache.bytes <= 10
        return
    assert cache.bytes == 9
    assert len(tracker.closed) == 4
    assert cache.items == 2
    if policy != "random":
        assert tracker.closed == ["a", "b", "c", "d"]
        assert present(cache, "abcde") == "e"


@POLICIES
def test_size_equal_to_max_bytes_evicts_all_others(policy: str, tracker) -> None:
    cache = FlexCache(policy, max_bytes=10)
    fill(cache, tracker, "abc", 3)
    whole = tracker("whole", 10)
    cache.set("whole", whole)
    if policy == "tinylfu" and "whole" not in cache:
        # Lost its admission contest (SPEC: a set may let go of the entry it stored).
        assert whole.closes == 1
        assert cache.stats().rejections == 1
        assert cache.bytes <= 10
        return
    assert cache.items == 1
    assert cache.bytes == 10
    assert cache.get("whole") is whole
    assert sorted(tracker.closed) == ["a", "b", "c"]


@POLICIES
def test_zero_size_values_only_count_items(policy: str, tracker) -> None:
    cache = FlexCache(policy, max_bytes=1)
    for n in range(100):
        cache.set(str(n), tracker(str(n), 0))
    assert cache.items == 100
    assert cache.bytes == 0
    cache.set("one", tracker("one", 1))
    assert cache.items == 101
    cache.set("two", tracker("two", 1))
    assert cache.bytes == 1
    assert "two" in cache


@POLICIES
def test_default_size_is_one_for_max_bytes(policy: str) -> None:
    cache = FlexCache(policy, max_bytes=3)
    for n in range(10):
        cache.set(str(n), object())
        assert cache.bytes == min(n + 1, 3)
    assert cache.items == 3


@POLICIES
@pytest.mark.parametrize("size", [11, 12, 1000, 2**63 - 1])
def test_size_over_max_bytes_is_refused(policy: str, size: int, tracker) -> None:
    cache = FlexCache(policy, max_items=3, max_bytes=10)
    old = fill(cache, tracker, "abc", 3)
    value = tracker("huge", size)
    with pytest.raises(ValueError):
        cache.set("huge", value)
    assert value.size_calls == 1
    assert value.closes == 0
    assert "huge" not in cache
    assert cache.items == 3
    assert cache.bytes == 9
    assert tracker.closed == []
    for name, held in old.items():
        assert cache.get(name) is held


@POLICIES
def test_both_limits(policy: str, tracker) -> None:
    cache = FlexCache(policy, max_items=4, max_bytes=10)
    fill(cache, tracker, "abcd", 1)
    cache.set("e", tracker("e", 1))
    assert cache.items == 4
    cache.set("f", tracker("f", 7))
    assert cache.items <= 4
    assert cache.bytes <= 10
    assert "f" in cache


# --- expired entries go first ------------------------------------------------------------------


@POLICIES
@pytest.mark.parametrize("interval", [10, INF])
def test_expired_entry_goes_before_live_ones(
    policy: str, interval: float, clock: ManualClock, tracker
) -> None:
    for _trial in range(30 if policy == "random" else 1):
        cache = FlexCache(policy, scan_interval=interval, max_items=3, clock=clock)
        fill(cache, tracker, "ab")
        cache.set("c", tracker("c"), ttl=5)  # the most recent: no policy would pick it
        clock.advance(5)
        before = len(tracker.closed)
        cache.set("d", tracker("d"))
        assert tracker.closed[before:] == ["c"]
        assert present(cache, "abcd") == "abd"
        cache.clear()


@POLICIES
def test_expired_entry_goes_first_for_max_bytes(policy: str, clock: ManualClock, tracker) -> None:
    cache = FlexCache(policy, scan_interval=INF, max_bytes=10, clock=clock)
    fill(cache, tracker, "ab", 3)
    cache.set("c", tracker("c", 4), ttl=1)
    clock.advance(1)
    cache.set("d", tracker("d", 4))
    assert tracker.closed == ["c"]
    assert present(cache, "abcd") == "abd"
    assert cache.bytes == 10


# --- the invariant after every set -------------------------------------------------------------


@POLICIES
@pytest.mark.parametrize("seed", range(4))
def test_limits_hold_after_every_set(policy: str, seed: int, tracker, check) -> None:
    rng = random.Random(seed * 7919 + len(policy))
    clock = ManualClock()
    max_items = rng.choice([0, 1, 3, 10, 40])
    max_bytes = rng.choice([0, 1, 8, 50, 200])
    interval = rng.choice([0, 0.5, 10, INF])
    cache = FlexCache(policy, interval, max_items, max_bytes, clock=clock)
    latest: dict[str, object] = {}
    held: list = []
    for step in range(3000):
        key = f"k{rng.randrange(60)}"
        roll = rng.random()
        if roll < 0.6:
            size = rng.choice([None, 0, 1, 2, 5, 13, 60, 250])
            value = tracker(f"{key}#{step}", size)
            ttl = rng.choice([None, None, 0.1, 1, 5, 30])
            try:
                cache.set(key, value, ttl=ttl)
            except KeyError:
                assert key in cache
            except ValueError:
                assert max_bytes
                assert (1 if size is None else size) > max_bytes
            else:
                latest[key] = value
                held.append(value)
            check(cache)
        elif roll < 0.75:
            got = cache.get(key)
            assert got is None or got is latest.get(key)
        elif roll < 0.85:
            cache.delete(key)
        elif roll < 0.9:
            cache.scan()
        else:
            clock.advance(rng.choice([0.01, 0.3, 2, 20]))
        held = [value for value in held if value.closes == 0]
        assert all(value.closes <= 1 for value in latest.values())
        assert cache.items == len(held)
        assert cache.bytes == sum(getattr(v, "size", 1) for v in held)
        for value in held:
            assert latest[value.name.split("#")[0]] is value
    cache.clear()
    assert all(value.closes == 1 for value in held)
    assert cache.items == 0
    assert cache.bytes == 0
