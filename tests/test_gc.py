"""SPEC "Memory and the garbage collector": cycles through the cache are collected, and
reference counts of keys and values balance once an entry is gone."""

from __future__ import annotations

import gc
import math
import os
import sys
import weakref

import pytest
from conftest import POLICIES, Expect, Val
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


class Owner:
    """An object holding a cache whose callbacks are its own bound methods."""

    def __init__(self) -> None:
        self.cache = FlexCache(max_bytes=100, weigher=self.weigh, on_remove=self.removed)
        self.marker = Node()

    def weigh(self, key: object, value: object) -> int:
        return 1

    def removed(self, key: object, value: object, cause: object) -> None:
        pass


def test_cycle_through_bound_method_callbacks_is_collected() -> None:
    owner = Owner()
    owner.cache.set("k", Node())
    probe = weakref.ref(owner.marker)
    del owner
    collect()
    assert probe() is None


def test_cycle_through_a_closure_callback_is_collected() -> None:
    def make_cycle() -> weakref.ref[Node]:
        marker = Node()
        cache = FlexCache(on_remove=lambda key, value, cause: cache.get(key))
        cache.set("marker", marker)
        return weakref.ref(marker)  # cache -> callback -> its closure cell -> cache

    probe = make_cycle()
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


@pytest.mark.parametrize("policy", POLICIES)
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


# === Moved from test_adversarial.py: memory, refcounts and cycles =================================
# Their helpers (Expect, Val, filled, MISSING) are in conftest.py.

# --- memory ----------------------------------------------------------------------------------

PAGE = os.sysconf("SC_PAGE_SIZE")
SLACK = 4 * 1024 * 1024


def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class Shared:
    """One value object reused for every entry, with a counted ``close()``."""

    __slots__ = ("closes",)

    def __init__(self) -> None:
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


def test_set_delete_cycles_leave_memory_flat() -> None:
    cache = FlexCache()
    key = "".join(["reused-", "key"])  # not interned: its refcount is ours alone
    value = 10**40  # a big int: a fresh object, its refcount ours alone
    keys = [f"m{i}" for i in range(999)] + [key]

    def run(rounds: int) -> None:
        set_, delete = cache.set, cache.delete
        for _ in range(rounds):
            for k in keys:
                set_(k, value)
                delete(k)

    run(200)  # warm-up: the table reaches its size, allocators their pools
    key_refs, value_refs = sys.getrefcount(key), sys.getrefcount(value)
    before = rss()
    run(2000)  # 2M set/delete cycles
    after = rss()
    assert after - before < SLACK, f"RSS grew by {(after - before) / 2**20:.1f} MB"
    assert sys.getrefcount(key) == key_refs
    assert sys.getrefcount(value) == value_refs
    assert cache.items == 0
    assert cache.bytes == 0


def test_two_million_evictions_leave_memory_flat() -> None:
    cache = FlexCache("fifo", max_items=500)
    value = 10**40
    keys = [f"f{i}" for i in range(2000)]
    set_ = cache.set
    for _ in range(50):  # warm-up
        for k in keys:
            set_(k, value)
    value_refs = sys.getrefcount(value)
    before = rss()
    for _ in range(1000):  # 2M sets, each evicting the oldest entry
        for k in keys:
            set_(k, value)
    after = rss()
    assert after - before < SLACK, f"RSS grew by {(after - before) / 2**20:.1f} MB"
    assert sys.getrefcount(value) == value_refs
    expect = Expect(cache)
    for k in keys[-500:]:
        expect.add(k, value)
    expect.verify(absent=keys[:-500])


@pytest.mark.parametrize("policy", POLICIES)
def test_evictions_with_close_balance_refcounts(policy: str) -> None:
    cache = FlexCache(policy, max_items=1000)
    value = Shared()
    keys = [f"e{i}" for i in range(3000)]

    def run(rounds: int) -> int:
        set_, get = cache.set, cache.get
        misses = 0
        for _ in range(rounds):
            for k in keys:
                if get(k) is None:
                    set_(k, value)
                    misses += 1
        return misses

    run(5)  # warm-up
    value_refs = sys.getrefcount(value)
    closes = value.closes
    before = rss()
    misses = run(50)  # 150k lookups, nearly all misses that evict
    after = rss()
    assert after - before < SLACK, f"RSS grew by {(after - before) / 2**20:.1f} MB"
    assert value.closes - closes == misses  # the cache stays full: one eviction per set
    assert sys.getrefcount(value) == value_refs
    cache.clear()
    assert cache.items == 0
    assert value.closes - closes == misses + 1000
    assert sys.getrefcount(value) == value_refs - 1000


def test_refcounts_balance_on_every_path(clock: ManualClock) -> None:
    cache = FlexCache("lru", float("inf"), 2, 10, clock=clock)
    key = "".join(["refcount-", "key"])
    other = "".join(["other-", "key"])
    value = Shared()
    big = Val("big", 11)
    key_refs = sys.getrefcount(key)
    value_refs = sys.getrefcount(value)
    big_refs = sys.getrefcount(big)
    for _ in range(1000):
        cache.set(key, value)
        assert cache.get(key) is value
        with pytest.raises(KeyError):
            cache.set(key, value)
        with pytest.raises(ValueError):
            cache.set(other, big)
        assert cache.delete(key)
        cache.set(key, value, ttl=1)
        clock.advance(1)
        assert cache.get(key) is None  # reaped by get
        cache.set(key, value, ttl=1)
        clock.advance(1)
        cache.set(key, value)  # reaps the expired holder
        cache.set(other, value)
        cache.set("third", value)  # evicts key
        cache.clear()
    assert cache.items == 0
    assert sys.getrefcount(key) == key_refs
    assert sys.getrefcount(value) == value_refs
    assert sys.getrefcount(big) == big_refs


NODE_CLOSES: list[str] = []


class CycleNode:
    """A value that refers back to a cache; logs a (wrong) close() on GC."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cache: FlexCache | None = None

    def close(self) -> None:
        NODE_CLOSES.append(self.name)


def test_cycle_cache_value_cache_is_collected() -> None:
    NODE_CLOSES.clear()
    gc.collect()
    cache = FlexCache()
    node = CycleNode("n")
    node.cache = cache
    cache.set("self", node)
    cache.set("also-the-cache", cache)
    value_ref, cache_ref = weakref.ref(node), weakref.ref(cache)
    del cache, node
    gc.collect()
    assert value_ref() is None
    assert cache_ref() is None
    assert NODE_CLOSES == []  # collection is not a shutdown: no close()


def test_cycle_through_two_caches_is_collected(clock: ManualClock) -> None:
    NODE_CLOSES.clear()
    first, second = FlexCache(clock=clock), FlexCache(clock=clock)
    a, b = CycleNode("a"), CycleNode("b")
    a.cache, b.cache = second, first
    first.set("a", a, ttl=5)
    second.set("b", b)
    clock.advance(10)  # a is expired but not reaped: still held, still traversed
    refs = [weakref.ref(o) for o in (first, second, a, b)]
    del first, second, a, b
    gc.collect()
    assert [r() for r in refs] == [None] * 4
    assert NODE_CLOSES == []
