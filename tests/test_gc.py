"""SPEC "Memory and the garbage collector": cycles through the cache are collected, and
reference counts of keys and values balance once an entry is gone."""

from __future__ import annotations

import gc
import math
import sys
import weakref

import pytest
from flexcache import FlexCache
from flexcache.testing import ManualClock

INF = math.inf


class Node:
    """A weak-referenceable value that can point anywhere."""

    def __init__(self, ref: object = None) -> None:
        self.ref = ref


def fresh_key(text: str) -> str:
    """A key object made at run time, so no other module holds a reference to it."""
    return "".join(["key:", text, ":", str(id(object()))])


def collect() -> None:
    for _ in range(3):
        gc.collect()


def test_cache_is_tracked_by_the_gc() -> None:
    assert gc.is_tracked(FlexCache())


def test_value_referring_to_its_cache_is_collected() -> None:
    cache = FlexCache()
    value = Node(cache)
    cache.set("self", value)
    probe = weakref.ref(value)
    del cache, value
    collect()
    assert probe() is None


def test_cache_stored_in_itself_is_collected() -> None:
    cache = FlexCache()
    marker = Node()
    cache.set("me", cache)
    cache.set("marker", marker)
    probe = weakref.ref(marker)
    del cache, marker
    collect()
    assert probe() is None


@pytest.mark.parametrize("ttl", [None, 10, 1e300])
def test_two_caches_referring_to_each_other(ttl: object) -> None:
    first = FlexCache(max_items=5)
    second = FlexCache("fifo")
    one = Node(second)
    two = Node(first)
    first.set("to-second", one, ttl=ttl)
    second.set("to-first", two, ttl=ttl)
    probes = [weakref.ref(one), weakref.ref(two)]
    del first, second, one, two
    collect()
    assert [probe() for probe in probes] == [None, None]


def test_cycle_through_an_expired_unreaped_entry(clock: ManualClock) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    value = Node(cache)
    cache.set("k", value, ttl=1)
    clock.advance(5)
    assert cache.items == 1
    probe = weakref.ref(value)
    del cache, value
    collect()
    assert probe() is None


def test_cycle_through_a_closable_value_does_not_close_it(tracker) -> None:
    cache = FlexCache()
    value = tracker("v")
    value.ref = cache
    cache.set("v", value)
    probe = weakref.ref(value)
    del cache, value
    collect()
    assert probe() is None
    assert tracker.closed == []


def test_cycle_through_a_bound_close_method_is_collected() -> None:
    closes = []

    class Holder:
        def __init__(self, cache: FlexCache) -> None:
            self.cache = cache

        def close(self) -> None:
            closes.append(self)

    cache = FlexCache()
    holder = Holder(cache)
    cache.set("h", holder)
    probe = weakref.ref(holder)
    del cache, holder
    collect()
    assert probe() is None
    assert closes == []


def test_cache_dropped_releases_values() -> None:
    value = Node()
    key = fresh_key("dropped")
    base_value, base_key = sys.getrefcount(value), sys.getrefcount(key)
    cache = FlexCache()
    cache.set(key, value)
    assert sys.getrefcount(value) > base_value
    del cache
    collect()
    assert sys.getrefcount(value) == base_value
    assert sys.getrefcount(key) == base_key


def refcounts(watched: tuple) -> list[int]:
    """Reference counts of the objects in ``watched`` (passed as one tuple, so the call itself
    adds no reference to them)."""
    return [sys.getrefcount(obj) for obj in watched]


def test_refcounts_set_get_delete() -> None:
    cache = FlexCache()
    key = fresh_key("a")
    lookup = "".join(key)  # equal text, different object
    assert lookup == key
    assert lookup is not key
    value = Node()
    default = Node()
    watched = (key, lookup, value, default)
    before = refcounts(watched)
    cache.set(key, value)
    for _ in range(100):
        assert cache.get(key) is value
        assert cache.get(lookup) is value
        assert cache.get("missing", default) is default
        assert lookup in cache
    try:
        cache.set(lookup, default)
    except KeyError:
        pass
    else:  # pragma: no cover
        pytest.fail("KeyError expected")
    assert cache.delete(lookup) is True
    assert cache.delete(key) is False
    assert refcounts(watched) == before


def test_refcounts_with_subclass_keys() -> None:
    class Sub(str):
        pass

    cache = FlexCache()
    key = Sub(fresh_key("sub"))
    plain = str(key)
    value = Node()
    watched = (key, plain, value)
    before = refcounts(watched)
    cache.set(key, value)
    assert cache.get(plain) is value
    assert cache.delete(plain) is True
    cache.set(plain, value)
    assert cache.get(key) is value
    assert cache.delete(key) is True
    assert refcounts(watched) == before


@pytest.mark.parametrize("policy", ["lru", "fifo", "random"])
def test_refcounts_after_eviction(policy: str) -> None:
    cache = FlexCache(policy, max_items=1)
    key, other = fresh_key("evicted"), fresh_key("other")
    value, other_value = Node(), Node()
    watched = (key, value)
    before = refcounts(watched)
    cache.set(key, value)
    cache.set(other, other_value)
    assert key not in cache
    assert refcounts(watched) == before


@pytest.mark.parametrize("how", ["scan", "auto-scan", "get", "delete", "set-over", "evict"])
def test_refcounts_after_expiry(how: str, clock: ManualClock) -> None:
    interval = 0 if how == "auto-scan" else INF
    cache = FlexCache(scan_interval=interval, max_items=1, clock=clock)
    key = fresh_key("expiring")
    value = Node()
    new_value = Node()
    watched = (key, value)
    before = refcounts(watched)
    cache.set(key, value, ttl=1)
    clock.advance(1)
    if how == "scan":
        cache.scan()
    elif how == "auto-scan":
        cache.get("something else")
    elif how == "get":
        assert cache.get(key) is None
    elif how == "delete":
        assert cache.delete(key) is False
    elif how == "set-over":
        cache.set("".join(key), new_value)
        cache.delete(key)
    else:
        cache.set("another", new_value)
    assert refcounts(watched) == before


def test_refcounts_after_clear() -> None:
    cache = FlexCache()
    keys = [fresh_key(str(n)) for n in range(50)]
    values = [Node() for _ in keys]
    watched = (*keys, *values)
    before = refcounts(watched)
    for key, value in zip(keys, values, strict=True):
        cache.set(key, value, ttl=100)
    del key, value
    assert cache.clear() is None
    assert cache.items == 0
    assert cache.bytes == 0
    assert len(cache) == 0
    assert refcounts(watched) == before


def test_refcounts_of_refused_sets(tracker) -> None:
    cache = FlexCache(max_bytes=5)
    held_key = fresh_key("held")
    cache.set(held_key, "x")
    key = fresh_key("refused")
    dup_key = "".join(held_key)
    value = tracker("big", 6)
    small = tracker("small", 1)
    bad_size = tracker.sized("bad", "not an int")
    watched = (key, dup_key, value, small, bad_size)
    before = refcounts(watched)
    with pytest.raises(ValueError):
        cache.set(key, value)
    with pytest.raises(TypeError):
        cache.set(key, bad_size)
    with pytest.raises(ValueError):
        cache.set(key, value, ttl=-1)
    with pytest.raises(TypeError):
        cache.set(key, value, ttl="1")
    try:
        cache.set(dup_key, small)
    except KeyError as error:
        assert error.args == (dup_key,)
        del error
    else:  # pragma: no cover
        pytest.fail("KeyError expected")
    assert refcounts(watched) == before


def test_refcounts_of_callbacks(tracker) -> None:
    cache = FlexCache(max_items=1)
    value = tracker("v", 3)
    watched = (value,)
    before = refcounts(watched)
    cache.set("v", value)
    cache.set("w", 1)
    assert value.closes == 1
    assert refcounts(watched) == before


def test_refcounts_stable_over_many_operations(clock: ManualClock) -> None:
    cache = FlexCache(max_items=10, clock=clock)
    key = fresh_key("loop")
    value = Node()
    watched = (key, value)
    before = refcounts(watched)
    for n in range(2000):
        cache.set(key, value, ttl=1 if n % 3 else None)
        cache.get(key)
        if n % 3:
            clock.advance(1)
            cache.get(key)
        else:
            cache.delete(key)
    assert refcounts(watched) == before


def test_close_result_is_released() -> None:
    returned = Node()
    watched = (returned,)
    before = refcounts(watched)

    class ReturnsSomething:
        def close(self) -> Node:
            return returned

    cache = FlexCache()
    for n in range(100):
        cache.set(str(n), ReturnsSomething())
    cache.clear()
    assert refcounts(watched) == before
