"""pickle, copy.copy and copy.deepcopy of a FlexCache (SPEC, Persistence).

A copy has the source's settings, its live entries in eviction order with
their policy state (lru/fifo order, lfu counts; tinylfu and random keep the
same entries), their sizes (no ``item_size()`` call) and their remaining
time to live, counted from the copy; expired entries stay behind and the
statistics start at zero. Nothing a copy does closes a value of the source.
"""

from __future__ import annotations

import copy
import gc
import io
import pickle
import sys
import threading
from datetime import timedelta
from typing import Any

import pytest
from conftest import POLICIES
from flexcache import FlexCache, RemovalCause
from flexcache.testing import ManualClock
from hypothesis import given, settings
from hypothesis import strategies as st

ORDERED = ("lru", "fifo", "lfu")
COPIES = ("pickle", "copy", "deepcopy")


class Res:
    """A picklable value with a counted ``close()`` and ``item_size()``."""

    closes: list[str] = []  # noqa: RUF012 - shared on purpose: every close, in order

    def __init__(self, name: str, size: int = 1) -> None:
        self.name = name
        self.size = size
        self.size_calls = 0

    def item_size(self) -> int:
        self.size_calls += 1
        return self.size

    def close(self) -> None:
        Res.closes.append(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Res) and (self.name, self.size) == (other.name, other.size)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Res({self.name!r}, {self.size})"


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("this value cannot be pickled")


def weigh(key: object, value: object) -> int:
    return 3


def listen(key: object, value: object, cause: RemovalCause) -> None:
    pass


@pytest.fixture(autouse=True)
def _no_closes_leak_between_tests() -> None:
    Res.closes.clear()


def make_copy(cache: FlexCache, how: str) -> FlexCache:
    if how == "pickle":
        return pickle.loads(pickle.dumps(cache))
    if how == "copy":
        return copy.copy(cache)
    return copy.deepcopy(cache)


def populated(policy: str, clock: ManualClock, **settings: Any) -> FlexCache:
    """A cache with sized values, some ttls, mixed key types and some hits."""
    cache = FlexCache(policy, max_items=100, max_bytes=10_000, clock=clock, **settings)
    keys: list[Any] = ["a", 1, (2, "two"), 3.5, b"bytes", "b", 7, ("t",), "c", 10**30]
    for n, key in enumerate(keys):
        cache.set(key, Res(f"v{n}", size=n + 1), ttl=None if n % 3 else 10 + n)
    for key in ["b", 7, 7, "a", 3.5, 3.5, 3.5, 10**30]:
        assert cache.get(key) is not None
    clock.advance(2)
    return cache


def entries(cache: FlexCache) -> list[tuple[Any, Any, float | None]]:
    return [(k, v, cache.expires_in(k)) for k, v in zip(cache.keys(), cache.values(), strict=True)]


def settings_of(cache: FlexCache) -> tuple[Any, ...]:
    return (
        cache.eviction_policy,
        cache.scan_interval,
        cache.max_items,
        cache.max_bytes,
        cache.thread_safe,
        cache.background_scan,
    )


@pytest.mark.parametrize("how", COPIES)
@pytest.mark.parametrize("policy", POLICIES)
def test_copy_has_the_settings_entries_order_sizes_and_ttls(policy: str, how: str) -> None:
    clock = ManualClock()
    source = populated(policy, clock)
    before = entries(source)
    sizes_called = [v.size_calls for v in source.values()]
    copied = make_copy(source, how)
    assert settings_of(copied) == settings_of(source)
    assert copied.items == source.items and copied.bytes == source.bytes
    after = entries(copied)
    if policy in ORDERED:
        assert after == before
    else:
        assert sorted(after, key=repr) == sorted(before, key=repr)
    # Sizes are carried, never asked again (of the source's values, or the copies).
    assert [v.size_calls for v in source.values()] == sizes_called
    if policy in ORDERED:
        assert [v.size_calls for v in copied.values()] == sizes_called
    assert copied.stats() == type(copied.stats())(0, 0, 0, 0, 0, 0, 0, 0)
    assert Res.closes == []
    values_shared = [a is b for a, b in zip(copied.values(), source.values(), strict=True)]
    if how == "copy" and policy in ORDERED:
        assert all(values_shared)
    elif how != "copy":
        assert not any(values_shared)


@pytest.mark.parametrize("how", COPIES)
@pytest.mark.parametrize("policy", ORDERED)
def test_copy_goes_on_as_the_source_would(policy: str, how: str) -> None:
    """The same operations after the copy evict the same keys: the order and
    the lfu counts came along."""
    clock = ManualClock()
    source = FlexCache(policy, max_items=6, clock=clock)
    for n in range(6):
        source[f"k{n}"] = n
    for key in ["k3", "k3", "k1", "k5", "k5", "k5", "k0"]:
        source.get(key)
    copied = make_copy(source, how)
    for cache in (source, copied):
        cache.get("k2")
        for n in range(6, 10):
            cache[f"k{n}"] = n
    assert copied.keys() == source.keys()


@pytest.mark.parametrize("how", COPIES)
def test_remaining_ttl_counts_from_the_copy(how: str) -> None:
    clock = ManualClock()
    source = FlexCache(clock=clock)
    source.set("short", 1, ttl=10)
    source.set("long", 2, ttl=timedelta(hours=1))
    source.set("never", 3)
    clock.advance(4)
    copied = make_copy(source, how)
    assert copied.expires_in("short") == 6.0
    assert copied.expires_in("long") == 3596.0
    assert copied.expires_in("never") is None
    copied_clock = copied._settings()["clock"]
    if how == "copy":
        # A shallow copy shares the ManualClock, as it shares the values.
        assert copied_clock is clock
        clock.advance(6)
    else:
        assert copied_clock is not clock
        assert copied_clock.monotonic() == clock.monotonic() == 4.0
        assert copied_clock.time() == clock.time()
        clock.advance(100)  # the source's clock alone
        assert copied.expires_in("short") == 6.0
        copied_clock.advance(6)
    assert "short" not in copied and copied.get("long") == 2


@pytest.mark.parametrize("how", COPIES)
def test_expired_entries_are_not_copied(how: str) -> None:
    clock = ManualClock()
    source = FlexCache("lru", max_items=10, clock=clock)
    expired, live = Res("expired"), Res("live")
    source.set("expired", expired, ttl=1)
    source.set("live", live)
    clock.advance(1)
    copied = make_copy(source, how)
    assert copied.keys() == ["live"] and copied.items == 1
    # The source still holds its expired entry (a copy reaps nothing).
    assert source.items == 2 and Res.closes == []


def test_copy_without_limits_and_with_callbacks() -> None:
    log: list[Any] = []
    source = FlexCache(weigher=lambda k, v: 5, on_remove=lambda k, v, c: log.append((k, c)))
    source["a"] = b"x"
    copied = copy.copy(source)
    assert copied.bytes == 5 and copied["a"] == b"x"
    copied.delete("a")
    assert log == [("a", RemovalCause.EXPLICIT)]
    assert source["a"] == b"x"


def test_pickle_carries_callbacks_by_name_and_refuses_lambdas() -> None:
    source = FlexCache(max_bytes=100, weigher=weigh, on_remove=listen)
    source["k"] = "v"
    copied = pickle.loads(pickle.dumps(source))
    settings = copied._settings()
    assert settings["weigher"] is weigh and settings["on_remove"] is listen
    assert copied.bytes == 3
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(FlexCache(weigher=lambda k, v: 1))


@pytest.mark.parametrize("how", COPIES)
def test_thread_safe_and_background_scan_come_along(how: str) -> None:
    clock = ManualClock()
    source = FlexCache(clock=clock, thread_safe=True)
    assert make_copy(source, how).thread_safe
    with FlexCache(clock=clock, background_scan=0.01) as scanning:
        scanning.set("k", Res("k"), ttl=1)
        copied = make_copy(scanning, how)
        try:
            assert copied.background_scan == 0.01 and copied.thread_safe
            names = [t.name for t in threading.enumerate()]
            assert names.count("flexcache-scan") >= 2
        finally:
            copied.__exit__(None, None, None)


def test_unpicklable_value_makes_dumps_raise_and_changes_nothing() -> None:
    cache = FlexCache("lru", max_items=10)
    cache["ok"] = Res("ok")
    cache["bad"] = Unpicklable()
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(cache)
    assert cache.keys() == ["ok", "bad"] and Res.closes == []
    # copy.copy never pickles a value: it works.
    assert copy.copy(cache).keys() == ["ok", "bad"]


def test_deepcopy_keeps_shared_objects_shared() -> None:
    shared = [1, 2]
    cache = FlexCache("fifo", max_items=10)
    cache["a"] = shared
    cache["b"] = shared
    cache["c"] = {"inner": shared}
    copied_cache, copied_shared = copy.deepcopy((cache, shared))
    a, b, c = copied_cache.values()
    assert a is b is c["inner"] is copied_shared
    assert a is not shared and a == shared


def test_pickle_keeps_a_clock_shared_with_other_objects() -> None:
    clock = ManualClock()
    clock.advance(5)
    first = FlexCache(clock=clock)
    second = FlexCache(clock=clock)
    first.set("k", 1, ttl=10)
    first2, second2, clock2 = pickle.loads(pickle.dumps((first, second, clock)))
    assert first2._settings()["clock"] is clock2 is second2._settings()["clock"]
    clock2.advance(10)
    assert "k" not in first2 and "k" in first


def test_manual_clock_pickles_at_its_times() -> None:
    clock = ManualClock()
    clock.advance(12.5)
    clock.step_wall(-3600)
    for copied in (pickle.loads(pickle.dumps(clock)), copy.copy(clock), copy.deepcopy(clock)):
        assert copied is not clock
        assert copied.monotonic() == 12.5 and copied.time() == clock.time()
        copied.advance(1)
        assert clock.monotonic() == 12.5


@pytest.mark.parametrize("how", COPIES)
def test_copies_never_close_and_refcounts_balance(how: str) -> None:
    key, value = ("ref", "key"), Res("counted")
    cache = FlexCache("lru", max_items=10)
    cache.set(key, value)
    gc.collect()
    before = sys.getrefcount(key), sys.getrefcount(value)
    for _ in range(3):
        copied = make_copy(cache, how)
        del copied
    gc.collect()
    assert (sys.getrefcount(key), sys.getrefcount(value)) == before
    assert Res.closes == []
    cache.clear()
    assert Res.closes == ["counted"]


def test_a_copy_lets_go_of_its_own_values_only() -> None:
    cache = FlexCache("lru", max_items=10)
    cache["a"] = Res("a")
    deep = copy.deepcopy(cache)
    shallow = copy.copy(cache)
    deep.clear()
    assert Res.closes == ["a"]  # the deep copy's own value
    shallow.clear()
    assert Res.closes == ["a", "a"]  # the shared one: closed by the copy that held it
    assert cache["a"].name == "a"


def test_restore_needs_an_empty_cache() -> None:
    cache = FlexCache()
    cache["a"] = 1
    with pytest.raises(RuntimeError, match="empty"):
        cache._restore([("b", 2, 1, None, 0)])
    assert cache.keys() == ["a"]


def test_restore_of_equal_keys_keeps_the_last() -> None:
    cache = FlexCache("lru", max_items=5)
    cache._restore([(1, "int", 1, None, 0), (1.0, "float", 1, None, 0), ("x", "x", 1, None, 0)])
    assert cache.items == 2 and cache.keys() == [1, "x"] and cache[1] == "float"


OPS = st.lists(
    st.tuples(
        st.sampled_from(["set", "get", "delete", "advance"]),
        st.integers(0, 12),
        st.sampled_from([None, 1, 5, 30]),
    ),
    max_size=60,
)


def apply(cache: FlexCache, clock: ManualClock, ops: list[tuple[str, int, int | None]]) -> None:
    for op, key, ttl in ops:
        if op == "set":
            cache.put(key, f"v{key}", ttl=ttl)
        elif op == "get":
            cache.get(key)
        elif op == "delete":
            cache.delete(key)
        else:
            clock.advance(key / 4)


def dump_load(cache: FlexCache) -> FlexCache:
    buffer = io.BytesIO()
    cache.dump(buffer, serializer=pickle.dumps)
    clock = cache._settings()["clock"]
    return FlexCache.load(io.BytesIO(buffer.getvalue()), deserializer=pickle.loads, clock=clock)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ORDERED), st.integers(1, 8), OPS, OPS)
def test_a_copy_behaves_as_its_source(policy: str, max_items: int, before: Any, after: Any) -> None:
    """Random operations, a copy (each kind, and a dump and load), then the
    same operations on both: the same entries in the same order throughout."""
    for how in (*COPIES, "dump"):
        clock = ManualClock()
        source = FlexCache(policy, max_items=max_items, clock=clock)
        apply(source, clock, before)
        copied = dump_load(source) if how == "dump" else make_copy(source, how)
        # A deep copy or a pickle has a clock of its own, at the same time:
        # both clocks move together from here.
        clocks = {id(clock): clock, id(copied._settings()["clock"]): copied._settings()["clock"]}
        assert entries(copied) == entries(source), how
        for op in after:
            for cache in (source, copied):
                apply(cache, ManualClock(), [op] if op[0] != "advance" else [])
            if op[0] == "advance":
                for each in clocks.values():
                    each.advance(op[1] / 4)
        assert entries(copied) == entries(source), how
