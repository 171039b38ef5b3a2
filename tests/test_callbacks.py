"""SPEC "Values: item_size() and close()" and the size rules of "set"."""

from __future__ import annotations

import gc
import io
import math
import sys
import types
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import pytest
from conftest import MISSING, Expect, Val, check_cache, filled
from conftest import POLICIES as ALL_POLICIES
from flexcache import FlexCache
from flexcache.testing import ManualClock

INF = math.inf
I64_MAX = 2**63 - 1
POLICIES = pytest.mark.parametrize("policy", ALL_POLICIES)


class IntSub(int):
    pass


class Boom(Exception):
    pass


class BaseBoom(BaseException):
    pass


# --- item_size ---------------------------------------------------------------------------------


@POLICIES
def test_item_size_called_exactly_once(policy: str, clock: ManualClock, tracker) -> None:
    cache = FlexCache(policy, max_items=3, max_bytes=100, clock=clock)
    value = tracker("v", 7)
    cache.set("v", value)
    assert value.size_calls == 1
    assert cache.bytes == 7
    for _ in range(3):
        assert cache.get("v") is value
        assert "v" in cache
    cache.scan()
    with pytest.raises(KeyError):
        cache.set("v", tracker("dup", 1))
    cache.set("a", tracker("a", 1))
    cache.set("b", tracker("b", 1), ttl=1)
    clock.advance(1)
    cache.scan()
    cache.set("c", tracker("c", 1))
    cache.set("d", tracker("d", 1))
    cache.clear()
    assert value.size_calls == 1
    assert value.closes == 1


def test_item_size_called_at_most_once_by_refused_set(tracker) -> None:
    cache = FlexCache()
    cache.set("k", 1)
    value = tracker("v", 3)
    with pytest.raises(KeyError):
        cache.set("k", value)
    assert value.size_calls <= 1
    assert value.closes == 0


def test_size_is_fixed_when_stored(tracker) -> None:
    cache = FlexCache(max_bytes=100)
    value = tracker("v", 10)
    cache.set("v", value)
    value.size = 90
    cache.set("w", tracker("w", 5))
    assert cache.bytes == 15
    cache.delete("v")
    assert cache.bytes == 5


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, 0), (1, 1), (12345, 12345), (IntSub(5), 5), (I64_MAX, I64_MAX)],
    ids=repr,
)
def test_item_size_accepted(size: int, expected: int, tracker) -> None:
    cache = FlexCache()
    value = tracker("v", size)
    cache.set("v", value)
    assert cache.bytes == expected
    assert type(cache.bytes) is int
    cache.delete("v")
    assert cache.bytes == 0


BAD_SIZES = [
    ("3", TypeError),
    (b"3", TypeError),
    (3.0, TypeError),
    (0.0, TypeError),
    (math.nan, TypeError),
    (None, TypeError),
    (True, TypeError),
    (False, TypeError),
    ([3], TypeError),
    (Decimal(3), TypeError),
    (object(), TypeError),
    (-1, ValueError),
    (-(2**63), ValueError),
    (-(2**70), ValueError),
    (I64_MAX + 1, ValueError),
    (2**64, ValueError),
    (10**100, ValueError),
]


def _full_cache(tracker) -> tuple[FlexCache, dict]:
    cache = FlexCache(max_items=2)
    held = {"a": tracker("a", 1), "b": tracker("b", 2)}
    for key, value in held.items():
        cache.set(key, value)
    return cache, held


def _assert_unchanged(cache: FlexCache, held: dict, tracker) -> None:
    assert cache.items == 2
    assert cache.bytes == 3
    for key, value in held.items():
        assert cache.get(key) is value
    assert "new" not in cache
    assert tracker.closed == []


@pytest.mark.parametrize(("size", "exc"), BAD_SIZES, ids=repr)
def test_item_size_bad_value(size: object, exc: type[Exception], tracker) -> None:
    cache, held = _full_cache(tracker)
    value = tracker.sized("new", size)
    with pytest.raises(exc):
        cache.set("new", value)
    assert value.size_calls == 1
    assert value.closes == 0
    _assert_unchanged(cache, held, tracker)
    cache.delete("a")
    cache.set("new", 5)
    assert cache.get("new") == 5


@pytest.mark.parametrize(
    "error", [Boom("b"), KeyError("inner"), ValueError("v"), TypeError("t"), BaseBoom("base")]
)
def test_item_size_exception_propagates(error: BaseException, tracker) -> None:
    cache, held = _full_cache(tracker)

    def raise_it(value: object) -> None:
        raise error

    value = tracker("new", 1, on_size=raise_it)
    with pytest.raises(type(error)) as info:
        cache.set("new", value, ttl=10)
    assert info.value is error
    assert value.size_calls == 1
    assert value.closes == 0
    _assert_unchanged(cache, held, tracker)


def test_item_size_not_callable_or_wrong_signature(tracker) -> None:
    cache, held = _full_cache(tracker)

    class NotCallable:
        item_size = 5

    class NeedsArgument:
        def item_size(self, unit: int) -> int:
            return unit

    with pytest.raises(TypeError):
        cache.set("new", NotCallable())
    with pytest.raises(TypeError):
        cache.set("new", NeedsArgument())
    _assert_unchanged(cache, held, tracker)


def test_total_bytes_never_wraps(tracker) -> None:
    """Each size is legal; the sum exceeds 64 bits. Either stored and counted, or refused."""
    cache = FlexCache()
    stored = []
    for n in range(3):
        value = tracker(str(n), I64_MAX)
        try:
            cache.set(str(n), value)
        except (ValueError, OverflowError):
            assert str(n) not in cache
            assert value.closes == 0
        else:
            stored.append(value)
        assert cache.items == len(stored)
        assert cache.bytes == I64_MAX * len(stored)
    assert stored
    cache.clear()
    assert cache.bytes == 0


def test_callbacks_found_on_the_instance(tracker) -> None:
    closes = []
    value = types.SimpleNamespace(item_size=lambda: 4, close=lambda: closes.append("closed"))
    cache = FlexCache()
    cache.set("v", value)
    assert cache.bytes == 4
    cache.delete("v")
    assert closes == ["closed"]


class NoneOnTheClass:
    item_size = None
    close = None


class CallbacksOnTheClass:
    def item_size(self) -> int:
        return 7

    def close(self) -> None:
        raise AssertionError("close() is set to None on the instance")


def _with_none(where: str, attributes: tuple[str, ...]) -> object:
    """A value whose `attributes` are None, on its class or on the instance."""
    if where == "class":
        return type("NoneCallbacks", (), dict.fromkeys(attributes))()
    value = CallbacksOnTheClass()
    for name in attributes:
        setattr(value, name, None)
    return value


@pytest.mark.parametrize("where", ["class", "instance"])
@pytest.mark.parametrize("attributes", [("item_size",), ("close",), ("item_size", "close")])
def test_callback_set_to_none_counts_as_absent(
    where: str, attributes: tuple[str, ...], unraisable
) -> None:
    """SPEC: an attribute that is None counts as absent: size 1, nothing to close."""
    cache = FlexCache(max_items=1)
    value = _with_none(where, attributes)
    cache.set("v", value)
    expected_size = 1 if "item_size" in attributes or where == "class" else 7
    assert cache.bytes == expected_size
    if "close" in attributes:
        cache.set("other", 1)  # evicts "v"
        assert "v" not in cache
        cache.set("v", value)
        assert cache.delete("v") is True
        cache.set("v", value)
        cache.clear()
    assert unraisable == []


def test_callbacks_set_to_none_on_the_class_are_absent(unraisable) -> None:
    cache = FlexCache(max_items=1)
    cache.set("v", NoneOnTheClass())
    assert cache.bytes == 1
    cache.set("w", NoneOnTheClass())  # evicts "v", closing nothing
    assert cache.delete("w") is True
    assert unraisable == []


def test_builtin_values_with_close_are_closed() -> None:
    cache = FlexCache(max_items=1)
    stream = io.BytesIO(b"data")
    cache.set("s", stream)
    assert not stream.closed
    cache.set("t", io.StringIO())
    assert stream.closed


def test_values_without_callbacks() -> None:
    cache = FlexCache(max_items=2, max_bytes=5)
    for n, value in enumerate([1, "s", None, (), object()]):
        cache.set(str(n), value)
    assert cache.items == 2
    assert cache.bytes == 2
    cache.clear()


# --- close() exactly once ----------------------------------------------------------------------


def _evict(cache, clock, tracker):
    cache.set("x", tracker("x"))
    cache.set("y", tracker("y"))


def _expire_scan(cache, clock, tracker):
    clock.advance(10)
    cache.scan()


def _expire_auto(cache, clock, tracker):
    clock.advance(10)
    cache.get("unrelated")


def _delete(cache, clock, tracker):
    assert cache.delete("a") is True


def _delete_expired(cache, clock, tracker):
    clock.advance(10)
    assert cache.delete("a") is False


def _clear(cache, clock, tracker):
    cache.clear()


def _get_expired(cache, clock, tracker):
    clock.advance(10)
    assert cache.get("a", "dflt") == "dflt"


def _set_over_expired(cache, clock, tracker):
    clock.advance(10)
    cache.set("a", tracker("a2"))
    assert cache.get("a").name == "a2"


RELEASES = [
    _evict,
    _expire_scan,
    _expire_auto,
    _delete,
    _delete_expired,
    _clear,
    _get_expired,
    _set_over_expired,
]


@pytest.mark.parametrize("release", RELEASES, ids=lambda f: f.__name__.strip("_"))
@POLICIES
def test_close_exactly_once(
    release: Callable, policy: str, clock: ManualClock, tracker, check
) -> None:
    interval = 0 if release is _expire_auto else INF
    cache = FlexCache(policy, interval, max_items=2, clock=clock)
    a = tracker("a")
    cache.set("a", a, ttl=10)
    if policy == "random" and release is _evict:
        cache.set("x", tracker("x"))
        cache.set("y", tracker("y"))
        cache.set("z", tracker("z"))
        # with random eviction "a" may survive a few sets; push until it is gone
        n = 0
        while "a" in cache:
            cache.set(f"more{n}", tracker(f"more{n}"))
            n += 1
    else:
        assert a.closes == 0
        release(cache, clock, tracker)
    assert a.closes == 1
    assert "a" not in cache or cache.get("a") is not a
    check(cache)
    # Nothing the cache does afterwards closes it again.
    clock.advance(100)
    cache.scan()
    cache.get("a")
    cache.delete("a")
    cache.clear()
    assert a.closes == 1
    assert cache.items == 0


def test_close_not_called_while_held(clock: ManualClock, tracker) -> None:
    cache = FlexCache(clock=clock)
    value = tracker("v")
    cache.set("v", value, ttl=10)
    for _ in range(3):
        cache.get("v")
        assert "v" in cache
        cache.scan()
        clock.advance(3)
    with pytest.raises(KeyError):
        cache.set("v", tracker("other"))
    assert tracker.closed == []
    assert value.closes == 0


def test_close_not_called_for_refused_values(clock: ManualClock, tracker) -> None:
    cache = FlexCache(max_bytes=10, clock=clock)
    cache.set("k", tracker("held", 1))
    refused = [
        (tracker("dup"), "k", None, KeyError),
        (tracker("big", 11), "big", None, ValueError),
        (tracker("bad-ttl"), "t", 0, ValueError),
        (tracker("bad-ttl-type"), "t", "1", TypeError),
        (tracker("bad-size", -1), "s", None, ValueError),
    ]
    for value, key, ttl, exc in refused:
        with pytest.raises(exc):
            cache.set(key, value, ttl=ttl)
    with pytest.raises(TypeError):
        cache.set(["unhashable"], tracker("bad-key"))
    cache.clear()
    assert tracker.closed == ["held"]


def test_close_not_called_when_cache_is_collected(tracker) -> None:
    cache = FlexCache()
    values = [tracker(str(n)) for n in range(5)]
    for value in values:
        cache.set(value.name, value)
    del cache
    gc.collect()
    assert tracker.closed == []


# --- close() raising ----------------------------------------------------------------------------

RAISERS = pytest.mark.parametrize(
    "error_type", [Boom, RuntimeError, KeyError, KeyboardInterrupt, SystemExit, BaseBoom]
)


def _raising(tracker, name: str, error_type: type[BaseException], size=None):
    def fail(value: object) -> None:
        raise error_type(f"close of {name}")

    return tracker(name, size, on_close=fail)


def _reported(unraisable, error_type: type[BaseException], count: int) -> None:
    assert len(unraisable) == count
    for exc_type, exc_value, _obj in unraisable:
        assert exc_type is error_type
        assert isinstance(exc_value, error_type)


@RAISERS
def test_raising_close_on_delete(error_type, unraisable, tracker) -> None:
    cache = FlexCache()
    cache.set("a", _raising(tracker, "a", error_type))
    cache.set("b", "b")
    assert cache.delete("a") is True
    assert "a" not in cache
    assert cache.items == 1
    assert tracker.closed == ["a"]
    _reported(unraisable, error_type, 1)
    assert "close of a" in str(unraisable[0][1])


@RAISERS
def test_raising_close_on_clear_closes_all(error_type, unraisable, tracker) -> None:
    cache = FlexCache()
    for name in "abc":
        cache.set(name, _raising(tracker, name, error_type))
    cache.set("plain", tracker("plain"))
    assert cache.clear() is None
    assert cache.items == 0
    assert cache.bytes == 0
    assert sorted(tracker.closed) == ["a", "b", "c", "plain"]
    _reported(unraisable, error_type, 3)


@RAISERS
def test_raising_close_on_scan(error_type, unraisable, clock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    for name in "abc":
        cache.set(name, _raising(tracker, name, error_type), ttl=1)
    cache.set("live", "live")
    clock.advance(1)
    assert cache.scan() is None
    assert cache.items == 1
    assert sorted(tracker.closed) == ["a", "b", "c"]
    _reported(unraisable, error_type, 3)


@RAISERS
def test_raising_close_on_get_and_set_of_expired(error_type, unraisable, clock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    cache.set("a", _raising(tracker, "a", error_type), ttl=1)
    cache.set("b", _raising(tracker, "b", error_type), ttl=1)
    clock.advance(1)
    assert cache.get("a", "dflt") == "dflt"
    _reported(unraisable, error_type, 1)
    new = tracker("new")
    assert cache.set("b", new) is None
    assert cache.get("b") is new
    assert cache.items == 1
    _reported(unraisable, error_type, 2)


@RAISERS
def test_raising_close_on_eviction(error_type, unraisable, tracker) -> None:
    cache = FlexCache("fifo", max_items=2, max_bytes=10)
    cache.set("a", _raising(tracker, "a", error_type, 5))
    cache.set("b", _raising(tracker, "b", error_type, 5))
    big = tracker("big", 10)
    assert cache.set("big", big) is None
    assert cache.get("big") is big
    assert cache.items == 1
    assert cache.bytes == 10
    assert sorted(tracker.closed) == ["a", "b"]
    _reported(unraisable, error_type, 2)


def test_raising_close_with_automatic_scan(unraisable, clock, tracker) -> None:
    cache = FlexCache(scan_interval=0, clock=clock)
    cache.set("a", _raising(tracker, "a", Boom), ttl=1)
    cache.set("keep", 1)
    clock.advance(1)
    assert cache.get("keep") == 1
    cache.set("x", 2)
    assert cache.delete("x") is True
    _reported(unraisable, Boom, 1)


# --- re-entrant close() --------------------------------------------------------------------------


def _snapshot(cache: FlexCache, name: str) -> dict:
    return {
        "present": name in cache,
        "get": cache.get(name, "missing"),
        "items": cache.items,
        "len": len(cache),
        "bytes": cache.bytes,
        "repr": repr(cache),
        "policy": cache.eviction_policy,
        "max_items": cache.max_items,
        "max_bytes": cache.max_bytes,
        "interval": cache.scan_interval,
    }


def test_close_sees_a_consistent_cache_on_delete(tracker) -> None:
    cache = FlexCache(max_items=10)
    seen = []
    cache.set("a", tracker("a", 3, on_close=lambda v: seen.append(_snapshot(cache, "a"))))
    cache.set("b", tracker("b", 4))
    cache.delete("a")
    (inside,) = seen
    assert inside["present"] is False
    assert inside["get"] == "missing"
    assert inside["items"] == inside["len"] == 1
    assert inside["bytes"] == 4
    assert inside["max_items"] == 10


@pytest.mark.parametrize("how", ["evict", "expire", "clear", "get-expired", "set-expired"])
def test_close_sees_a_consistent_cache(how: str, clock: ManualClock, tracker) -> None:
    cache = FlexCache(max_items=3, clock=clock)
    seen = []

    def look(value) -> None:
        snap = _snapshot(cache, value.name)
        seen.append(snap)
        assert snap["items"] == snap["len"]
        assert snap["items"] <= 3
        if how != "set-expired":  # there the new value may already hold the key
            assert snap["present"] is False
            assert snap["get"] == "missing"

    cache.set("a", tracker("a", on_close=look), ttl=5)
    cache.set("b", tracker("b"))
    cache.set("c", tracker("c"))
    if how == "evict":
        cache.set("d", tracker("d"))
    elif how == "expire":
        clock.advance(5)
        cache.scan()
    elif how == "clear":
        cache.clear()
    elif how == "get-expired":
        clock.advance(5)
        cache.get("a")
    else:
        clock.advance(5)
        cache.set("a", tracker("a-new"))
    assert len(seen) == 1


@POLICIES
def test_close_calls_everything(policy: str, clock: ManualClock, tracker, check) -> None:
    cache = FlexCache(policy, 0, 4, 50, clock=clock)

    def busy(value) -> None:
        cache.get("b")
        cache.get(value.name)
        assert value.name not in cache
        cache.set(f"from-{value.name}", tracker(f"from-{value.name}", 2))
        cache.delete("c")
        cache.scan()
        _ = (cache.items, cache.bytes, len(cache), repr(cache), cache.max_bytes)

    cache.set("a", tracker("a", 5, on_close=busy))
    cache.set("b", tracker("b", 5))
    cache.set("c", tracker("c", 5))
    cache.delete("a")
    check(cache)
    assert tracker.count("a") == 1
    assert tracker.count("c") == 1
    assert "from-a" in cache
    assert "c" not in cache
    assert cache.items == 2
    assert cache.bytes == 7


def test_close_sets_its_own_key_again_on_delete(tracker) -> None:
    cache = FlexCache()
    cache.set("a", tracker("a", on_close=lambda v: cache.set("a", "again")))
    assert cache.delete("a") is True
    assert cache.get("a") == "again"
    assert cache.items == 1


def test_close_sets_its_own_key_again_on_expiry(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    cache.set("a", tracker("a", on_close=lambda v: cache.set("a", "again", ttl=5)), ttl=5)
    clock.advance(5)
    cache.scan()
    assert cache.get("a") == "again"
    clock.advance(5)
    cache.scan()
    assert "a" not in cache
    assert cache.items == 0
    assert tracker.closed == ["a"]


def test_close_sets_its_own_key_again_on_get_and_set_of_expired(
    clock: ManualClock, tracker, unraisable
) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    cache.set("a", tracker("a", on_close=lambda v: cache.set("a", "again")), ttl=5)
    cache.set("b", tracker("b", on_close=lambda v: cache.set("b", "from close")), ttl=5)
    clock.advance(5)
    assert cache.get("a", "dflt") == "dflt"
    assert cache.get("a") == "again"
    # The set of "b" reaps the expired entry; its close() then finds "b" taken by the new value
    # (KeyError, reported as unraisable) or stores first and the outer set fails: either way one
    # value under "b", consistent counts.
    try:
        cache.set("b", "outer")
    except KeyError:
        assert cache.get("b") == "from close"
        assert unraisable == []
    else:
        assert cache.get("b") == "outer"
        assert len(unraisable) == 1
        assert unraisable[0][0] is KeyError
    assert cache.items == len(cache) == 2
    assert sorted(tracker.closed) == ["a", "b"]


@POLICIES
def test_close_sets_its_own_key_again_on_eviction(policy: str, tracker, check) -> None:
    cache = FlexCache(policy, max_items=2)
    cache.set("a", tracker("a", on_close=lambda v: cache.set("a", "again")))
    cache.set("b", tracker("b"))
    cache.set("c", tracker("c"))
    check(cache)
    assert cache.items == 2
    assert tracker.closed.count("a") <= 1
    assert tracker.closed.count("b") <= 1
    assert "c" in cache or tracker.count("c") == 1
    if tracker.count("a") == 1:
        assert "a" in cache


def test_close_sets_its_own_key_on_clear(tracker, check) -> None:
    cache = FlexCache()
    made = {}

    def reset(value) -> None:
        made[value.name] = tracker(f"{value.name}-2")
        cache.set(value.name, made[value.name])

    for name in "abc":
        cache.set(name, tracker(name, on_close=reset))
    cache.clear()
    check(cache)
    assert [tracker.count(name) for name in "abc"] == [1, 1, 1]
    for name, again in made.items():
        # Either the new value survived the clear, or the clear took it too (and closed it).
        assert (cache.get(name) is again) == (again.closes == 0)
        assert again.closes <= 1
    assert cache.items == sum(again.closes == 0 for again in made.values())


@POLICIES
def test_close_that_evicts_others(policy: str, tracker, check) -> None:
    cache = FlexCache(policy, max_items=3)

    def flood(value) -> None:
        for n in range(5):
            cache.set(f"{value.name}-flood{n}", tracker(f"{value.name}-flood{n}"))

    for name in "abc":
        cache.set(name, tracker(name, on_close=flood if name == "a" else None))
    cache.delete("a")
    check(cache)
    assert cache.items == 3
    assert all(tracker.count(name) <= 1 for name in set(tracker.closed))
    assert len(tracker.closed) == 1 + 4  # "a", then one eviction for each flood after the first


def test_close_that_clears_during_eviction(tracker, check) -> None:
    cache = FlexCache("lru", max_items=2)
    cache.set("a", tracker("a", on_close=lambda v: cache.clear()))
    cache.set("b", tracker("b"))
    cache.set("c", tracker("c"))
    check(cache)
    assert tracker.count("a") == 1
    assert tracker.count("b") == 1
    assert tracker.count("c") <= 1
    assert ("c" in cache) == (tracker.count("c") == 0)
    assert cache.items == ("c" in cache)


def test_close_that_scans_during_scan(clock: ManualClock, tracker, check) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    for n in range(20):
        cache.set(f"k{n}", tracker(f"k{n}", on_close=lambda v: cache.scan()), ttl=1 + n % 3)
    cache.set("live", tracker("live"))
    clock.advance(3)
    cache.scan()
    check(cache)
    assert sorted(tracker.closed) == sorted(f"k{n}" for n in range(20))
    assert cache.items == 1


def test_close_deletes_a_sibling_in_the_same_batch(clock: ManualClock, tracker, check) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    cache.set("a", tracker("a", on_close=lambda v: cache.delete("b")))
    cache.set("b", tracker("b", on_close=lambda v: cache.delete("a")))
    cache.set("c", tracker("c"))
    cache.clear()
    check(cache)
    assert sorted(tracker.closed) == ["a", "b", "c"]
    assert cache.items == 0

    cache.set("a", tracker("a2", on_close=lambda v: cache.delete("b")), ttl=1)
    cache.set("b", tracker("b2", on_close=lambda v: cache.delete("a")), ttl=1)
    clock.advance(1)
    cache.scan()
    assert tracker.count("a2") == 1
    assert tracker.count("b2") == 1
    assert cache.items == 0


# --- re-entrant item_size() ----------------------------------------------------------------------


def test_item_size_calls_everything(tracker, check) -> None:
    cache = FlexCache(max_items=5)
    cache.set("a", tracker("a"))
    cache.set("b", tracker("b"))

    def busy(value) -> None:
        cache.get("a")
        "a" in cache  # noqa: B015
        cache.set("inner", tracker("inner"))
        cache.delete("b")
        cache.scan()
        _ = (cache.items, cache.bytes, len(cache), repr(cache))

    outer = tracker("outer", 2, on_size=busy)
    cache.set("outer", outer)
    check(cache)
    assert cache.get("outer") is outer
    assert "inner" in cache
    assert "b" not in cache
    assert tracker.closed == ["b"]
    assert cache.items == 3
    assert cache.bytes == 4


def test_item_size_clears_the_cache(tracker, check) -> None:
    cache = FlexCache(max_items=2)
    cache.set("a", tracker("a"))
    cache.set("b", tracker("b"))
    outer = tracker("outer", 1, on_size=lambda v: cache.clear())
    cache.set("outer", outer)
    check(cache)
    assert sorted(tracker.closed) == ["a", "b"]
    assert cache.get("outer") is outer
    assert cache.items == 1


def test_item_size_fills_the_cache(tracker, check) -> None:
    cache = FlexCache("fifo", max_items=2)

    def fill(value) -> None:
        cache.set("x", tracker("x"))
        cache.set("y", tracker("y"))

    outer = tracker("outer", 1, on_size=fill)
    cache.set("outer", outer)
    check(cache)
    assert cache.get("outer") is outer
    assert tracker.closed == ["x"]
    assert cache.items == 2


def test_item_size_sets_the_same_key(tracker, check) -> None:
    cache = FlexCache()
    inner = tracker("inner")
    outer = tracker("outer", 1, on_size=lambda v: cache.set("k", inner))
    try:
        cache.set("k", outer)
    except KeyError:
        assert cache.get("k") is inner
        assert outer.closes == 0
    else:
        assert cache.get("k") is outer
        assert inner.closes == 1
    check(cache)
    assert cache.items == 1
    assert inner.closes + outer.closes <= 1


# === Moved from test_adversarial.py: hostile item_size() and close() ==============================
# Their helpers (Expect, Val, filled, MISSING) are in conftest.py.

# --- item_size() -----------------------------------------------------------------------------


class LyingIntSub(int):
    """An int subclass that lies through every conversion hook: its value still counts."""

    def __int__(self) -> int:
        return 999

    def __index__(self) -> int:
        return 999

    def __eq__(self, other: object) -> bool:
        raise AssertionError("__eq__ must not be called")

    __hash__ = int.__hash__


@pytest.mark.parametrize(
    ("result", "exc"),
    [
        (RuntimeError("item_size failed"), RuntimeError),
        (KeyboardInterrupt(), KeyboardInterrupt),
        (-1, ValueError),
        (-(2**80), ValueError),
        (2**80, ValueError),
        (2**63, ValueError),
        (2**64, ValueError),
        (1.5, TypeError),
        (1.0, TypeError),
        (None, TypeError),
        (True, TypeError),
        (False, TypeError),
        ("3", TypeError),
        (Decimal(3), TypeError),
        (Fraction(3), TypeError),
        (LyingIntSub(-1), ValueError),
        (LyingIntSub(2**70), ValueError),
    ],
    ids=repr,
)
def test_bad_item_size_changes_nothing(result: object, exc: type[BaseException]) -> None:
    expect, old = filled()
    bad = Val("bad", result)
    with pytest.raises(exc):
        expect.cache.set("bad", bad)
    assert bad.size_calls == 1
    assert bad.closes == 0
    assert all(value.closes == 0 for value in old)
    expect.verify(absent=["bad"])


def test_item_size_int_subclass_counts_as_its_value() -> None:
    cache = FlexCache(max_bytes=10)
    expect = Expect(cache)
    expect.set("k", Val("k", LyingIntSub(3)), 3)
    expect.set("j", Val("j", LyingIntSub(7)), 7)
    expect.verify()
    big = Val("big", LyingIntSub(11))
    with pytest.raises(ValueError):
        cache.set("big", big)
    expect.verify(absent=["big"])


def test_item_size_max_u63_accepted_when_unlimited() -> None:
    cache = FlexCache()
    expect = Expect(cache)
    top = 2**63 - 1
    for name in "abc":
        expect.set(name, Val(name, top), top)
    expect.verify()
    assert cache.bytes == 3 * top  # no wrap-around
    assert cache.delete("b")
    expect.remove("b")
    expect.verify(absent=["b"])


def test_item_size_max_u63_against_max_bytes() -> None:
    top = 2**63 - 1
    cache = FlexCache("fifo", max_bytes=top)
    expect = Expect(cache)
    first = Val("first", top)
    expect.set("first", first, top)
    second = Val("second", top)
    expect.set("second", second, top)  # evicts first
    expect.remove("first")
    assert first.closes == 1
    zero = Val("zero", 0)
    expect.set("zero", zero, 0)  # 0 more fits beside a full budget
    expect.verify(absent=["first"])


class NotCallableSize:
    item_size = 5
    closes = 0

    def close(self) -> None:
        self.closes += 1


def test_item_size_not_callable_is_type_error() -> None:
    expect, old = filled()
    value = NotCallableSize()
    with pytest.raises(TypeError):
        expect.cache.set("nc", value)
    assert value.closes == 0
    assert all(v.closes == 0 for v in old)
    expect.verify(absent=["nc"])


class HostileAttributes:
    """``item_size``/``close`` lookups that raise something other than AttributeError."""

    def __init__(self, bad: str) -> None:
        self.bad = bad
        self.closes = 0

    def __getattr__(self, name: str) -> object:
        if name == self.bad:
            raise RuntimeError(f"looking up {name}")
        raise AttributeError(name)


@pytest.mark.parametrize("bad", ["item_size", "close"])
def test_attribute_lookup_that_raises_refuses_the_set(bad: str) -> None:
    expect, old = filled()
    with pytest.raises(RuntimeError, match=bad):
        expect.cache.set("h", HostileAttributes(bad))
    assert all(v.closes == 0 for v in old)
    expect.verify(absent=["h"])


class CloseNotCallable:
    close = 5


def test_close_not_callable_is_reported_when_released(unraisable: list) -> None:
    expect, _ = filled()
    value = CloseNotCallable()
    expect.set("nc", value)  # evicts a
    expect.remove("a")
    assert expect.cache.delete("nc")
    expect.remove("nc")
    assert len(unraisable) == 1
    assert unraisable[0][0] is TypeError
    expect.verify(absent=["a", "nc"])


# --- close() ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [RuntimeError("close failed"), KeyboardInterrupt(), SystemExit(3), GeneratorExit()]
)
@pytest.mark.parametrize("path", ["evict", "delete", "get_expired", "scan", "clear", "set_expired"])
def test_raising_close_is_reported_and_operation_completes(
    error: BaseException, path: str, unraisable: list, clock: ManualClock
) -> None:
    def boom(value: Val) -> None:
        raise error

    cache = FlexCache("lru", float("inf"), 2, clock=clock)
    expect = Expect(cache)
    a, b = Val("a", on_close=boom), Val("b", on_close=boom)
    expect.set("a", a, ttl=5)
    expect.set("b", b)
    if path == "evict":
        expect.set("c", Val("c"))
        expect.remove("a")
    elif path == "delete":
        assert cache.delete("a") is True
        expect.remove("a")
    elif path == "get_expired":
        clock.advance(5)
        assert cache.get("a", MISSING) is MISSING
        expect.remove("a")
    elif path == "scan":
        clock.advance(5)
        cache.scan()
        expect.remove("a")
    elif path == "set_expired":
        clock.advance(5)
        new = Val("new")
        cache.set("a", new)
        expect.add("a", new)
    else:
        cache.clear()
        expect.live.clear()
    closed = [v for v in (a, b) if v.closes]
    assert closed == ([a, b] if path == "clear" else [a])
    assert all(v.closes == 1 for v in closed)
    assert [report[1] for report in unraisable] == [error] * len(closed)
    expect.verify(absent=["a", "b", "c"])


def test_close_calls_back_into_everything(clock: ManualClock) -> None:
    cache = FlexCache("lru", 0, 4, clock=clock)
    expect = Expect(cache)
    seen: list[object] = []

    def busy(value: Val) -> None:
        # The cache is consistent while close() runs: a is gone already.
        assert "a" not in cache
        check_cache(cache)
        seen.append(cache.get("b"))
        cache.set("from_close", "x")
        assert cache.delete("c") is True
        cache.scan()
        seen.append((cache.items, cache.bytes, len(cache), "d" in cache, repr(cache)))

    a, b, c, d = Val("a", on_close=busy), Val("b"), Val("c"), Val("d")
    for value in (a, b, c, d):
        expect.set(value.name, value)
    assert cache.delete("a") is True
    expect.remove("a")
    expect.remove("c")
    expect.add("from_close", "x")
    assert seen[0] is b
    assert seen[1][:4] == (3, 3, 3, True)
    assert (a.closes, b.closes, c.closes, d.closes) == (1, 0, 1, 0)
    expect.verify(absent=["a", "c"])


def test_close_clears_the_cache() -> None:
    cache = FlexCache()
    expect = Expect(cache)
    values = [Val(str(i)) for i in range(5)]
    values[0].on_close = lambda v: cache.clear()
    for value in values:
        expect.set(value.name, value)
    assert cache.delete("0")
    expect.live.clear()
    assert all(v.closes == 1 for v in values)
    expect.verify(absent=[v.name for v in values])


def test_close_deletes_its_own_key() -> None:
    cache = FlexCache()
    expect = Expect(cache)
    results: list[bool] = []
    a = Val("a", on_close=lambda v: results.append(cache.delete("a")))
    expect.set("a", a)
    expect.set("b", Val("b"))
    assert cache.delete("a")
    expect.remove("a")
    assert results == [False]
    assert a.closes == 1
    expect.verify(absent=["a"])


@pytest.mark.parametrize("how", ["delete", "evict", "expire", "clear"])
def test_close_stores_itself_again(how: str, clock: ManualClock) -> None:
    cache = FlexCache("fifo", 0, 2, clock=clock)
    expect = Expect(cache)

    def again(value: Val) -> None:
        if value.closes == 1:
            cache.set("a", value)

    a = Val("a", on_close=again)
    expect.set("a", a, ttl=10)
    expect.set("b", Val("b"))
    if how == "delete":
        assert cache.delete("a")
    elif how == "evict":
        expect.set("c", Val("c"))  # evicts a; a comes back and evicts b
        expect.remove("b")
    elif how == "expire":
        clock.advance(10)
        cache.scan()
    else:
        cache.clear()
        expect.live.clear()
    expect.add("a", a)
    assert a.closes == 1
    expect.verify(absent=["b", "c"] if how != "delete" and how != "expire" else [])
    # The second entry of the same object closes it a second time, and not again.
    assert cache.delete("a")
    expect.remove("a")
    assert a.closes == 2
    expect.verify(absent=["a"])


@pytest.mark.parametrize("policy", ["lru", "fifo"])
def test_close_of_one_value_evicts_others(policy: str) -> None:
    cache = FlexCache(policy, max_items=3)
    expect = Expect(cache)
    order: list[str] = []

    def fill(value: Val) -> None:
        order.append(value.name)
        if value.name == "a":
            cache.set("x", Val("x", on_close=fill))  # fits: a is gone
            cache.set("y", Val("y", on_close=fill))  # evicts b, whose close() runs nested
            cache.set("z", Val("z", on_close=fill))  # evicts c

    values = [Val(n, on_close=fill) for n in "abc"]
    for value in values:
        expect.set(value.name, value)
    assert cache.delete("a")
    assert order == ["a", "b", "c"]
    assert [v.closes for v in values] == [1, 1, 1]
    expect.live.clear()
    for name in "xyz":
        value = cache.get(name)
        assert isinstance(value, Val)
        assert value.closes == 0
        expect.add(name, value)
    expect.verify(absent=list("abc"))


def test_close_evicts_in_a_chain_within_a_byte_limit() -> None:
    """Every close() sets a new value into a full cache, evicting the next one: a chain of
    nested evictions that ends when the values stop refilling."""
    cache = FlexCache("fifo", max_bytes=10)
    budget = [30]

    def refill(value: Val) -> None:
        if budget[0] > 0:
            budget[0] -= 1
            cache.set(f"r{budget[0]}", Val(f"r{budget[0]}", 5, on_close=refill))

    for i in range(2):
        cache.set(f"s{i}", Val(f"s{i}", 5, on_close=refill))
    cache.set("go", Val("go", 5, on_close=refill))
    check_cache(cache)
    assert cache.bytes == 10
    assert cache.items == 2
    expect = Expect(cache)
    for key in [f"r{i}" for i in range(30)] + ["go", "s0", "s1"]:
        value = cache.get(key, MISSING)
        if value is not MISSING:
            assert isinstance(value, Val)
            assert value.closes == 0
            expect.add(key, value, 5)
    expect.verify()


def test_deep_chain_of_close_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each close() deletes the next key: the nesting hits the recursion limit. No crash; the
    RecursionError is reported; every value is closed at most once and the cache agrees with
    what was closed."""
    reports: list[sys.UnraisableHookArgs] = []
    # A C-level hook: a Python one could not even be called at the recursion limit.
    monkeypatch.setattr(sys, "unraisablehook", reports.append)
    cache = FlexCache()
    n = 3000

    def next_one(value: Val) -> None:
        index = int(value.name) + 1
        if index < n:
            cache.delete(str(index))

    values = [Val(str(i), on_close=next_one) for i in range(n)]
    expect = Expect(cache)
    for value in values:
        expect.set(value.name, value)
    assert cache.delete("0")
    closed = [v for v in values if v.closes]
    assert all(v.closes == 1 for v in closed)
    assert [v.name for v in closed] == [str(i) for i in range(len(closed))]
    if len(closed) < n:
        assert [r.exc_type for r in reports] == [RecursionError]
    for value in closed:
        expect.remove(value.name)
    expect.verify(absent=[v.name for v in closed])
