"""SPEC Part 2, "The mapping protocol and everyday operations": one test group per row.

``cache[key]``, ``cache[key] = value``, ``del cache[key]``, ``put``, ``pop``, ``peek``,
``get_or_set``, ``touch``, ``expires_in``, ``get_many``, ``set_many``, ``put_many``,
``delete_many``, ``iter(cache)``, ``keys()``, ``values()``; and FlexCache as the cache of
``cachetools.cached`` / ``cachetools.cachedmethod``. Time is a ManualClock and, unless a test
says otherwise, ``scan_interval`` is infinite so that only the call under test reaps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

import cachetools
import pytest
from conftest import POLICIES as ALL_POLICIES
from flexcache import FlexCache
from flexcache.testing import ManualClock

INF = math.inf
ORDERED = pytest.mark.parametrize("policy", ["lru", "fifo"])
POLICIES = pytest.mark.parametrize("policy", ALL_POLICIES)


class Boom(Exception):
    pass


def abc(tracker, policy: str = "lru", clock: ManualClock | None = None, **kwargs) -> FlexCache:
    """A cache at its limit of three items holding a, b, c (set in that order)."""
    kwargs.setdefault("max_items", 3)
    cache = FlexCache(policy, INF, clock=clock, **kwargs)
    for name in "abc":
        cache.set(name, tracker(name))
    return cache


def victims(cache: FlexCache, tracker, count: int) -> list[str]:
    """Store ``count`` new entries and return the names they evicted, in order."""
    start = len(tracker.closed)
    for n in range(count):
        cache.set(f"new{n}", tracker(f"new{n}"))
    return tracker.closed[start:]


def state(cache: FlexCache) -> tuple[object, ...]:
    """What a refused call must leave as it was (``keys()`` is the eviction order)."""
    return (
        cache.items,
        cache.bytes,
        [id(key) for key in cache.keys()],
        [id(value) for value in cache.values()],
        cache.stats(),
    )


# --- cache[key] ----------------------------------------------------------------------------------


def test_getitem_returns_the_live_value(tracker) -> None:
    cache = abc(tracker)
    assert cache["b"].name == "b"
    assert cache["b"] is cache.get("b")


def test_getitem_missing_is_key_error_with_the_key(tracker) -> None:
    cache = abc(tracker)
    with pytest.raises(KeyError) as info:
        _ = cache["zz"]
    assert info.value.args == ("zz",)
    with pytest.raises(KeyError) as info:
        _ = cache[("t", 1)]
    assert info.value.args == (("t", 1),)
    assert cache.items == 3


def test_getitem_of_a_stored_none() -> None:
    cache = FlexCache()
    cache.set("none", None)
    assert cache["none"] is None


def test_getitem_expired_is_key_error_and_reaps(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    value = tracker("v")
    cache.set("k", value, ttl=5)
    cache.set("other", tracker("other"), ttl=5)
    clock.advance(5)
    with pytest.raises(KeyError) as info:
        _ = cache["k"]
    assert info.value.args == ("k",)
    assert value.closes == 1
    assert cache.items == 1  # "other" is expired too, but nobody looked it up
    assert tracker.closed == ["v"]


def test_getitem_hit_refreshes_like_get(tracker) -> None:
    cache = abc(tracker)
    _ = cache["a"]
    assert victims(cache, tracker, 3) == ["b", "c", "a"]


# --- cache[key] = value --------------------------------------------------------------------------


def test_setitem_is_put(clock: ManualClock, tracker) -> None:
    cache = FlexCache("lru", INF, 3, 0, clock=clock)
    first = tracker("first")
    cache["k"] = first
    assert cache.get("k") is first
    second = tracker("second")
    cache["k"] = second  # overwrites: no KeyError
    assert cache.get("k") is second
    assert first.closes == 1
    cache["k"] = second  # the very same object: kept, not closed
    assert second.closes == 0
    assert cache.items == 1
    cache.set("t", tracker("t"), ttl=1)
    clock.advance(1)
    cache["t"] = tracker("t2")  # over an expired holder
    assert cache.get("t").name == "t2"
    assert tracker.closed == ["first", "t"]


def test_setitem_refused_like_put(tracker) -> None:
    cache = FlexCache(max_bytes=5)
    old = tracker("old", 2)
    cache["k"] = old
    with pytest.raises(ValueError):
        cache["k"] = tracker("big", 6)
    assert cache["k"] is old
    assert cache.bytes == 2
    assert tracker.closed == []


# --- del cache[key] ------------------------------------------------------------------------------


def test_delitem_removes_and_closes(tracker) -> None:
    cache = abc(tracker)
    del cache["b"]
    assert "b" not in cache
    assert cache.items == 2
    assert tracker.closed == ["b"]


def test_delitem_missing_is_key_error(tracker) -> None:
    cache = abc(tracker)
    with pytest.raises(KeyError) as info:
        del cache["zz"]
    assert info.value.args == ("zz",)
    assert cache.items == 3
    assert tracker.closed == []


def test_delitem_expired_reaps_and_is_key_error(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    value = tracker("v")
    cache.set("k", value, ttl=1)
    clock.advance(1)
    with pytest.raises(KeyError) as info:
        del cache["k"]
    assert info.value.args == ("k",)
    assert value.closes == 1
    assert cache.items == 0
    with pytest.raises(KeyError):
        del cache["k"]
    assert value.closes == 1


# --- put -----------------------------------------------------------------------------------------


def test_put_stores_a_new_key(tracker) -> None:
    cache = FlexCache()
    value = tracker("v", 4)
    assert cache.put("k", value) is None
    assert cache.get("k") is value
    assert cache.items == 1
    assert cache.bytes == 4
    assert value.size_calls == 1


def test_put_overwrites_and_closes_the_old_value_once(tracker) -> None:
    cache = FlexCache(max_bytes=100)
    old = tracker("old", 3)
    new = tracker("new", 7)
    cache.set("k", old)
    cache.set("other", tracker("other", 1))
    cache.put("k", new)
    assert cache.get("k") is new
    assert old.closes == 1
    assert new.closes == 0
    assert cache.items == 2
    assert cache.bytes == 8
    assert new.size_calls == 1
    cache.put("k", tracker("newer", 1))
    assert new.closes == 1
    assert old.closes == 1
    assert tracker.closed == ["old", "new"]


def test_put_of_the_very_same_object_does_not_close_it(tracker) -> None:
    cache = FlexCache()
    value = tracker("v", 2)
    cache.set("k", value)
    for _ in range(3):
        cache.put("k", value)
        cache["k"] = value
    assert value.closes == 0
    assert cache.get("k") is value
    assert cache.items == 1
    assert cache.bytes == 2
    cache.delete("k")
    assert value.closes == 1


@pytest.mark.parametrize("same", [False, True], ids=["new_value", "same_value"])
@ORDERED
def test_put_over_a_live_entry_makes_it_the_newest(policy: str, same: bool, tracker) -> None:
    """lru: the most recent; fifo: the newest. Either way "a" is now the last victim."""
    cache = abc(tracker, policy)
    value = cache.peek("a") if same else tracker("A")
    if policy == "lru":
        cache.get("b")  # b is the most recent now; the put must still move "a" behind it
    cache.put("a", value)
    expected = ["c", "b", "a"] if policy == "lru" else ["b", "c", "a"]
    if not same:
        expected[-1] = "A"
    assert tracker.closed == ([] if same else ["a"])
    assert victims(cache, tracker, 3) == expected


def test_put_over_a_live_entry_in_a_full_cache_evicts_nothing(tracker) -> None:
    cache = abc(tracker)
    cache.put("b", tracker("B"))
    assert cache.items == 3
    assert tracker.closed == ["b"]
    assert [cache.get(name).name for name in "abc"] == ["a", "B", "c"]


def test_put_of_a_new_key_in_a_full_cache_evicts_by_policy(tracker) -> None:
    cache = abc(tracker)
    cache.put("d", tracker("d"))
    assert tracker.closed == ["a"]
    assert cache.items == 3


def test_put_that_grows_an_entry_evicts_others_not_itself(tracker) -> None:
    cache = FlexCache("lru", max_bytes=8)
    cache.set("a", tracker("a", 3))
    cache.set("b", tracker("b", 3))
    grown = tracker("A", 6)
    cache.put("a", grown)
    assert cache.get("a") is grown
    assert "b" not in cache
    assert cache.items == 1
    assert cache.bytes == 6
    assert sorted(tracker.closed) == ["a", "b"]


def test_put_replaces_the_ttl(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    cache.set("k", tracker("v1"))
    cache.put("k", tracker("v2"), ttl=5)
    assert cache.expires_in("k") == pytest.approx(5)
    cache.put("k", tracker("v3"))
    assert cache.expires_in("k") is None
    clock.advance(100)
    assert cache.get("k").name == "v3"


def test_put_over_an_expired_holder(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    old = tracker("old")
    cache.set("k", old, ttl=1)
    clock.advance(1)
    new = tracker("new")
    cache.put("k", new)
    assert cache.get("k") is new
    assert old.closes == 1
    assert cache.items == 1


class _Sized:
    """A value whose ``item_size()`` raises ``error`` (or returns it, when it is not one)."""

    def __init__(self, outcome: object) -> None:
        self.outcome = outcome
        self.closes = 0

    def item_size(self) -> object:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def close(self) -> None:
        self.closes += 1


REFUSED_PUTS = [
    pytest.param(lambda: (_Sized(1), -1), ValueError, id="negative_ttl"),
    pytest.param(lambda: (_Sized(1), 0), ValueError, id="zero_ttl"),
    pytest.param(lambda: (_Sized(1), math.nan), ValueError, id="nan_ttl"),
    pytest.param(lambda: (_Sized(1), "5"), TypeError, id="str_ttl"),
    pytest.param(lambda: (_Sized(1), True), TypeError, id="bool_ttl"),
    pytest.param(lambda: (_Sized(Boom("size")), None), Boom, id="item_size_raises"),
    pytest.param(lambda: (_Sized("3"), None), TypeError, id="item_size_str"),
    pytest.param(lambda: (_Sized(-1), None), ValueError, id="item_size_negative"),
    pytest.param(lambda: (_Sized(2**63), None), ValueError, id="item_size_huge"),
    pytest.param(lambda: (_Sized(11), None), ValueError, id="too_large"),
]


@pytest.mark.parametrize(("make", "exc"), REFUSED_PUTS)
def test_refused_put_leaves_the_old_entry_as_it_was(
    make: Callable[[], tuple[_Sized, object]],
    exc: type[BaseException],
    clock: ManualClock,
    tracker,
) -> None:
    cache = FlexCache("lru", INF, 3, 10, clock=clock)
    old = tracker("a", 2)
    cache.set("a", old, ttl=50)
    cache.set("b", tracker("b", 2))
    cache.set("c", tracker("c", 2))
    before = state(cache)
    new, ttl = make()
    with pytest.raises(exc):
        cache.put("a", new, ttl=ttl)
    assert state(cache) == before
    assert cache.peek("a") is old
    assert cache.expires_in("a") == pytest.approx(50)
    assert old.closes == 0
    assert new.closes == 0
    # "a" was not made the most recent: it is still the first victim.
    assert victims(cache, tracker, 1) == ["a"]


# --- pop -----------------------------------------------------------------------------------------


def test_pop_returns_the_value_without_closing_it(tracker) -> None:
    cache = FlexCache(max_bytes=100)
    value = tracker("v", 5)
    cache.set("k", value)
    cache.set("other", tracker("other", 1))
    assert cache.pop("k") is value
    assert value.closes == 0
    assert "k" not in cache
    assert cache.items == 1
    assert cache.bytes == 1
    # The caller owns it now: nothing the cache does later closes it.
    cache.clear()
    assert value.closes == 0
    assert tracker.closed == ["other"]


def test_pop_with_a_default(tracker) -> None:
    cache = abc(tracker)
    sentinel = object()
    assert cache.pop("zz", sentinel) is sentinel
    assert cache.pop("zz", None) is None
    assert cache.items == 3
    assert cache.pop("a", sentinel).name == "a"
    assert tracker.closed == []


def test_pop_missing_without_a_default_is_key_error(tracker) -> None:
    cache = abc(tracker)
    with pytest.raises(KeyError) as info:
        cache.pop("zz")
    assert info.value.args == ("zz",)
    assert cache.items == 3


def test_pop_of_a_stored_none() -> None:
    cache = FlexCache()
    cache.set("k", None)
    assert cache.pop("k", "default") is None
    assert "k" not in cache


@pytest.mark.parametrize("with_default", [True, False])
def test_pop_expired_reaps_and_closes(with_default: bool, clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    value = tracker("v")
    cache.set("k", value, ttl=1)
    clock.advance(1)
    if with_default:
        assert cache.pop("k", "default") == "default"
    else:
        with pytest.raises(KeyError) as info:
            cache.pop("k")
        assert info.value.args == ("k",)
    assert value.closes == 1
    assert cache.items == 0


def test_popped_value_can_be_stored_again(tracker) -> None:
    cache = FlexCache()
    value = tracker("v")
    cache.set("k", value)
    cache.set("j", cache.pop("k"))
    assert cache.get("j") is value
    cache.delete("j")
    assert value.closes == 1


# --- peek ----------------------------------------------------------------------------------------


def test_peek_returns_the_live_value_or_the_default(tracker) -> None:
    cache = abc(tracker)
    assert cache.peek("a").name == "a"
    assert cache.peek("zz") is None
    sentinel = object()
    assert cache.peek("zz", sentinel) is sentinel
    cache.set("none", None)  # evicts "a"
    assert cache.peek("none", sentinel) is None


def test_peek_changes_no_order(tracker) -> None:
    cache = abc(tracker)
    for _ in range(3):
        cache.peek("a")
    assert cache.keys() == ["a", "b", "c"]
    assert victims(cache, tracker, 3) == ["a", "b", "c"]


def test_peek_changes_no_statistic(tracker) -> None:
    cache = abc(tracker)
    cache.get("a")
    cache.get("zz")
    before = cache.stats()
    cache.peek("a")
    cache.peek("zz")
    cache.peek("zz", 1)
    assert cache.stats() == before


def test_peek_reaps_nothing(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    value = tracker("v")
    cache.set("k", value, ttl=1)
    clock.advance(1)
    assert cache.peek("k") is None
    assert cache.peek("k", "default") == "default"
    assert cache.items == 1
    assert value.closes == 0
    assert cache.stats().expirations == 0
    assert cache.get("k") is None
    assert value.closes == 1


# --- get_or_set ----------------------------------------------------------------------------------


def test_get_or_set_hit_does_not_call_the_factory(tracker) -> None:
    cache = abc(tracker)

    def factory() -> object:
        raise AssertionError("factory called on a hit")

    assert cache.get_or_set("a", factory).name == "a"
    assert cache.items == 3


def test_get_or_set_hit_refreshes_like_get(tracker) -> None:
    cache = abc(tracker)
    cache.get_or_set("a", object)
    assert victims(cache, tracker, 3) == ["b", "c", "a"]


def test_get_or_set_miss_calls_the_factory_once_with_no_arguments(tracker) -> None:
    cache = FlexCache(max_items=3)
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []
    made = tracker("made", 4)

    def factory(*args: object, **kwargs: object) -> object:
        calls.append((args, kwargs))
        return made

    assert cache.get_or_set("k", factory) is made
    assert calls == [((), {})]
    assert cache.get("k") is made
    assert cache.bytes == 4
    assert made.size_calls == 1
    assert cache.get_or_set("k", factory) is made
    assert calls == [((), {})]


def test_get_or_set_stores_with_the_ttl(clock: ManualClock) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    assert cache.get_or_set("k", lambda: "v", ttl=timedelta(seconds=3)) == "v"
    assert cache.expires_in("k") == pytest.approx(3)
    clock.advance(3)
    assert "k" not in cache
    assert cache.get_or_set("k", lambda: "w", ttl=2) == "w"
    assert cache.get("k") == "w"


def test_get_or_set_over_an_expired_entry(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    old = tracker("old")
    cache.set("k", old, ttl=1)
    clock.advance(1)
    new = tracker("new")
    assert cache.get_or_set("k", lambda: new) is new
    assert old.closes == 1
    assert cache.get("k") is new
    assert cache.items == 1


def test_get_or_set_new_entry_evicts_by_policy(tracker) -> None:
    cache = abc(tracker)
    cache.get_or_set("d", lambda: tracker("d"))
    assert tracker.closed == ["a"]
    assert victims(cache, tracker, 3) == ["b", "c", "d"]


@pytest.mark.parametrize(
    ("ttl", "exc"),
    [
        (-1, ValueError),
        (0, ValueError),
        (math.inf, ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
    ids=repr,
)
def test_get_or_set_bad_ttl_raises_before_the_factory(ttl: object, exc: type, tracker) -> None:
    cache = abc(tracker)
    calls: list[int] = []

    def factory() -> object:
        calls.append(1)
        return tracker("made")

    with pytest.raises(exc):
        cache.get_or_set("k", factory, ttl=ttl)
    assert calls == []
    assert "k" not in cache
    assert cache.items == 3


def test_get_or_set_factory_raising_stores_nothing(tracker) -> None:
    cache = abc(tracker)
    before = state(cache)[:4]
    error = Boom("factory")

    def factory() -> object:
        raise error

    with pytest.raises(Boom) as info:
        cache.get_or_set("k", factory)
    assert info.value is error
    assert "k" not in cache
    assert state(cache)[:4] == before
    assert tracker.closed == []
    assert cache.get_or_set("k", lambda: 5) == 5


@pytest.mark.parametrize("store", ["set", "put"])
def test_get_or_set_factory_that_stores_the_key_itself(store: str, tracker) -> None:
    cache = FlexCache(max_items=5)
    inner = tracker("inner")
    outer = tracker("outer")

    def factory() -> object:
        getattr(cache, store)("k", inner)
        return outer

    assert cache.get_or_set("k", factory) is inner
    assert cache.get("k") is inner
    assert outer.closes == 1
    assert inner.closes == 0
    assert cache.items == 1
    assert tracker.closed == ["outer"]


def test_get_or_set_result_too_large_is_returned_not_stored(tracker) -> None:
    cache = FlexCache("lru", max_bytes=10)
    cache.set("a", tracker("a", 4))
    cache.set("b", tracker("b", 4))
    big = tracker("big", 11)
    assert cache.get_or_set("k", lambda: big) is big
    assert "k" not in cache
    assert big.closes == 0
    assert cache.items == 2
    assert cache.bytes == 8
    assert tracker.closed == []


# --- touch ---------------------------------------------------------------------------------------


def test_touch_gives_a_new_ttl(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    value = tracker("v")
    cache.set("k", value, ttl=1)
    assert cache.touch("k", 10) is True
    clock.advance(5)
    assert cache.get("k") is value
    assert cache.touch("k", timedelta(seconds=2)) is True
    clock.advance(1.5)
    assert cache.get("k") is value
    clock.advance(0.5)
    assert cache.get("k") is None
    assert value.closes == 1


def test_touch_with_none_never_expires(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    value = tracker("v")
    cache.set("k", value, ttl=1)
    assert cache.touch("k") is True
    assert cache.expires_in("k") is None
    clock.advance(10**6)
    cache.scan()
    assert cache.get("k") is value
    assert cache.touch("k", None) is True
    assert cache.touch("k", 5) is True
    assert cache.expires_in("k") == pytest.approx(5)


def test_touch_missing_is_false(tracker) -> None:
    cache = abc(tracker)
    assert cache.touch("zz") is False
    assert cache.touch("zz", 5) is False
    assert "zz" not in cache
    assert cache.items == 3


def test_touch_expired_reaps_and_is_false(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    value = tracker("v")
    cache.set("k", value, ttl=1)
    clock.advance(1)
    assert cache.touch("k", 100) is False
    assert value.closes == 1
    assert cache.items == 0
    assert "k" not in cache


@ORDERED
def test_touch_changes_no_order(policy: str, tracker) -> None:
    cache = abc(tracker, policy)
    assert cache.touch("a", 100) is True
    assert cache.touch("a") is True
    assert cache.keys() == ["a", "b", "c"]
    assert victims(cache, tracker, 3) == ["a", "b", "c"]


def test_touch_changes_nothing_else(tracker) -> None:
    cache = FlexCache(max_bytes=100)
    value = tracker("v", 7)
    cache.set("k", value)
    cache.get("k")
    before = state(cache)
    assert cache.touch("k", 9) is True
    assert state(cache) == before
    assert value.size_calls == 1
    assert value.closes == 0


@pytest.mark.parametrize(
    ("ttl", "exc"),
    [
        (-1, ValueError),
        (0, ValueError),
        (math.nan, ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
    ids=repr,
)
def test_touch_bad_ttl_changes_nothing(ttl: object, exc: type, clock: ManualClock) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    cache.set("k", "v", ttl=5)
    with pytest.raises(exc):
        cache.touch("k", ttl)
    assert cache.expires_in("k") == pytest.approx(5)


# --- expires_in ----------------------------------------------------------------------------------


def test_expires_in_counts_down(clock: ManualClock) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    cache.set("k", "v", ttl=10)
    remaining = cache.expires_in("k")
    assert type(remaining) is float
    assert remaining == pytest.approx(10)
    clock.advance(2.5)
    assert cache.expires_in("k") == pytest.approx(7.5)
    clock.advance(7)
    later = cache.expires_in("k")
    assert later == pytest.approx(0.5)
    assert later > 0
    cache.set("t", "v", ttl=timedelta(minutes=2))
    assert cache.expires_in("t") == pytest.approx(120)


def test_expires_in_is_none_without_a_ttl() -> None:
    cache = FlexCache()
    cache.set("k", "v")
    assert cache.expires_in("k") is None


def test_expires_in_missing_is_key_error(tracker) -> None:
    cache = abc(tracker)
    with pytest.raises(KeyError) as info:
        cache.expires_in("zz")
    assert info.value.args == ("zz",)


def test_expires_in_expired_is_key_error_and_reaps_nothing(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    value = tracker("v")
    cache.set("k", value, ttl=3)
    clock.advance(3)
    with pytest.raises(KeyError) as info:
        cache.expires_in("k")
    assert info.value.args == ("k",)
    assert cache.items == 1
    assert value.closes == 0


def test_expires_in_changes_no_order_and_no_statistic(clock: ManualClock, tracker) -> None:
    cache = abc(tracker, clock=clock)
    before = cache.stats()
    assert cache.expires_in("a") is None
    assert cache.stats() == before
    assert victims(cache, tracker, 3) == ["a", "b", "c"]


# --- get_many ------------------------------------------------------------------------------------


def test_get_many_returns_the_live_entries_only(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    a, b = tracker("a"), tracker("b")
    cache.set("a", a)
    cache.set("b", b)
    cache.set("none", None)
    cache.set("gone", tracker("gone"), ttl=1)
    clock.advance(1)
    got = cache.get_many(["b", "zz", "gone", "a", "none"])
    assert type(got) is dict
    assert got == {"b": b, "a": a, "none": None}
    assert list(got) == ["b", "a", "none"]  # in the order of the given keys
    assert cache.get_many([]) == {}
    assert cache.get_many(["zz"]) == {}


def test_get_many_takes_any_iterable(tracker) -> None:
    cache = abc(tracker)
    assert set(cache.get_many(name for name in "cxa")) == {"c", "a"}
    assert set(cache.get_many(("b",))) == {"b"}


def test_get_many_is_keyed_by_the_callers_key_objects() -> None:
    cache = FlexCache()
    stored = int("12345678901234567890")
    cache.set(stored, "v")
    asked = int("12345678901234567890")
    got = cache.get_many([asked])
    assert next(iter(got)) is asked
    assert got[asked] == "v"


def test_get_many_reaps_expired_entries_as_get_does(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    value = tracker("v")
    cache.set("k", value, ttl=1)
    cache.set("other", tracker("other"), ttl=1)
    clock.advance(1)
    assert cache.get_many(["k"]) == {}
    assert value.closes == 1
    assert cache.items == 1


def test_get_many_refreshes_like_get(tracker) -> None:
    cache = abc(tracker)
    assert set(cache.get_many(["b", "a"])) == {"a", "b"}
    assert victims(cache, tracker, 3) == ["c", "b", "a"]


def test_get_many_on_fifo_changes_no_order(tracker) -> None:
    cache = abc(tracker, "fifo")
    cache.get_many(["a", "b"])
    assert victims(cache, tracker, 3) == ["a", "b", "c"]


# --- set_many ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["dict", "list_of_pairs", "generator", "dict_items"])
def test_set_many_accepts_a_mapping_or_pairs(shape: str, tracker) -> None:
    cache = FlexCache(max_items=10, max_bytes=100)
    values = {"x": tracker("x", 2), "y": tracker("y", 3), ("t", 1): tracker("t", 4)}
    entries: object
    if shape == "dict":
        entries = dict(values)
    elif shape == "list_of_pairs":
        entries = list(values.items())
    elif shape == "generator":
        entries = ((key, value) for key, value in values.items())
    else:
        entries = values.items()
    assert cache.set_many(entries) is None
    assert cache.items == 3
    assert cache.bytes == 9
    for key, value in values.items():
        assert cache.get(key) is value
        assert value.size_calls == 1
    assert cache.keys() == ["x", "y", ("t", 1)]  # stored in the order given


def test_set_many_with_a_ttl(clock: ManualClock) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    cache.set_many({"a": 1, "b": 2}, ttl=4)
    cache.set_many({"c": 3})
    assert cache.expires_in("a") == pytest.approx(4)
    assert cache.expires_in("b") == pytest.approx(4)
    assert cache.expires_in("c") is None
    clock.advance(4)
    assert cache.get_many(["a", "b", "c"]) == {"c": 3}


def test_set_many_empty() -> None:
    cache = FlexCache()
    cache.set_many({})
    cache.set_many([])
    assert cache.items == 0


def test_set_many_evicts_by_policy_never_the_batch(tracker) -> None:
    cache = abc(tracker, max_items=4)
    cache.get("a")  # order: b, c, a
    cache.set_many([("x", tracker("x")), ("y", tracker("y"))])
    assert tracker.closed == ["b"]
    assert cache.keys() == ["c", "a", "x", "y"]
    cache.set_many([(name, tracker(name)) for name in "pqrs"])  # exactly max_items
    assert tracker.closed == ["b", "c", "a", "x", "y"]
    assert cache.keys() == ["p", "q", "r", "s"]


def test_set_many_over_an_expired_holder(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    old = tracker("old")
    cache.set("k", old, ttl=1)
    clock.advance(1)
    new = tracker("new")
    cache.set_many({"k": new, "j": 1})
    assert cache.get("k") is new
    assert old.closes == 1
    assert cache.items == 2


def _raising_size() -> object:
    class RaisingSize:
        closes = 0

        def item_size(self) -> int:
            raise Boom("item_size")

        def close(self) -> None:
            type(self).closes += 1

    return RaisingSize()


# Each: the batch (a function of the tracker), the ttl, the exception. The base cache holds
# a (2), b (3), c (4), lru order b, c, a, limits 4 items and 20 bytes.
BAD_BATCHES = [
    pytest.param(lambda t: [("x", t("x", 1)), ("b", t("b2", 1))], None, KeyError, id="live"),
    pytest.param(lambda t: {"x": t("x", 1), "c": t("c2", 1)}, None, KeyError, id="live_dict"),
    pytest.param(lambda t: [("x", t("x", 1)), ("x", t("x2", 1))], None, KeyError, id="twice"),
    pytest.param(lambda t: [(1, t("x", 1)), (1.0, t("x2", 1))], None, KeyError, id="twice_1_1.0"),
    pytest.param(
        lambda t: [("x", t("x", 1)), ("y", _raising_size())], None, Boom, id="size_raises"
    ),
    pytest.param(
        lambda t: [("x", t("x", 1)), ("y", t.sized("y", "3"))], None, TypeError, id="size_str"
    ),
    pytest.param(
        lambda t: [("x", t("x", 1)), ("y", t.sized("y", -1))], None, ValueError, id="size_neg"
    ),
    pytest.param(lambda t: [("x", t("x", 1)), ("y", t("y", 21))], None, ValueError, id="too_large"),
    pytest.param(
        lambda t: [("x", t("x", 11)), ("y", t("y", 10))], None, ValueError, id="bytes_alone"
    ),
    pytest.param(lambda t: [(n, t(str(n))) for n in range(5)], None, ValueError, id="items_alone"),
    pytest.param(lambda t: [("x", t("x", 1)), ([], t("y", 1))], None, TypeError, id="unhashable"),
    pytest.param(lambda t: [("x", t("x", 1))], -1, ValueError, id="ttl_negative"),
    pytest.param(lambda t: [("x", t("x", 1))], 0, ValueError, id="ttl_zero"),
    pytest.param(lambda t: [("x", t("x", 1))], math.nan, ValueError, id="ttl_nan"),
    pytest.param(lambda t: [("x", t("x", 1))], "1", TypeError, id="ttl_str"),
    pytest.param(lambda t: [("x", t("x", 1))], True, TypeError, id="ttl_bool"),
]


def _base(tracker, clock: ManualClock) -> FlexCache:
    cache = FlexCache("lru", INF, 4, 20, clock=clock)
    cache.set("a", tracker("a", 2))
    cache.set("b", tracker("b", 3))
    cache.set("c", tracker("c", 4))
    cache.get("a")
    return cache


@pytest.mark.parametrize(("make", "ttl", "exc"), BAD_BATCHES)
def test_set_many_is_all_or_nothing(
    make: Callable, ttl: object, exc: type[BaseException], clock: ManualClock, tracker
) -> None:
    cache = _base(tracker, clock)
    before = state(cache)
    batch = make(tracker)
    with pytest.raises(exc):
        cache.set_many(batch, ttl=ttl)
    assert state(cache) == before
    assert tracker.closed == []
    assert "x" not in cache
    assert 0 not in cache
    assert cache.keys() == ["b", "c", "a"]
    assert cache.peek("b").name == "b"
    assert victims(cache, tracker, 3) == ["b", "c"]  # the first fits


@pytest.mark.parametrize(
    ("make", "ttl", "exc"), [p for p in BAD_BATCHES if p.values[2] is not KeyError]
)
def test_put_many_is_all_or_nothing(
    make: Callable, ttl: object, exc: type[BaseException], clock: ManualClock, tracker
) -> None:
    cache = _base(tracker, clock)
    before = state(cache)
    batch = make(tracker)
    if isinstance(batch, list):
        batch = [("a", tracker("a2", 1)), *batch]  # a live holder put_many would replace
    with pytest.raises(exc):
        cache.put_many(batch, ttl=ttl)
    assert state(cache) == before
    assert tracker.closed == []
    assert cache.peek("a").name == "a"
    assert victims(cache, tracker, 3) == ["b", "c"]  # the first fits


def test_set_many_malformed_pair_stores_nothing(tracker) -> None:
    cache = abc(tracker, max_items=5)
    with pytest.raises((TypeError, ValueError)):
        cache.set_many([("x", 1), ("y",)])  # type: ignore[list-item]
    with pytest.raises((TypeError, ValueError)):
        cache.set_many([("x", 1), ("y", 2, 3)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        cache.set_many([("x", 1), 5])  # type: ignore[list-item]
    assert cache.items == 3
    assert "x" not in cache


# --- put_many ------------------------------------------------------------------------------------


def test_put_many_replaces(tracker) -> None:
    cache = FlexCache("lru", max_items=4)
    for name in "abc":
        cache.set(name, tracker(name))
    a2, d = tracker("a2"), tracker("d")
    b_same = cache.get("b")
    cache.put_many({"a": a2, "b": b_same, "d": d})
    assert cache.get("a") is a2
    assert cache.get("b") is b_same
    assert cache.get("d") is d
    assert tracker.closed == ["a"]  # b was put as the very same object
    assert cache.items == 4
    assert cache.keys() == ["c", "a", "b", "d"]


def test_put_many_key_given_twice_last_wins(tracker) -> None:
    cache = FlexCache(max_items=10)
    first, last = tracker("first"), tracker("last")
    cache.put_many([("k", first), ("j", 1), ("k", last)])
    assert cache.get("k") is last
    assert cache.items == 2
    assert first.closes <= 1
    assert last.closes == 0
    cache.put_many([(1, "int"), (1.0, "float"), (True, "bool")])
    assert cache.get(1) == "bool"
    assert cache.items == 3


def test_put_many_with_a_ttl(clock: ManualClock) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    cache.set("a", 1)
    cache.put_many({"a": 2, "b": 3}, ttl=6)
    assert cache.expires_in("a") == pytest.approx(6)
    assert cache.expires_in("b") == pytest.approx(6)


# --- delete_many ---------------------------------------------------------------------------------


def test_delete_many_counts_the_live_entries_removed(clock: ManualClock, tracker) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    for name in "abc":
        cache.set(name, tracker(name))
    cache.set("old", tracker("old"), ttl=1)
    clock.advance(1)
    assert cache.delete_many(["a", "zz", "c", "old"]) == 2
    assert tracker.closed == ["a", "c", "old"]
    assert cache.items == 1
    assert cache.get("b").name == "b"


def test_delete_many_edge_cases(tracker) -> None:
    cache = abc(tracker)
    assert cache.delete_many([]) == 0
    assert cache.delete_many(["a", "a"]) == 1
    assert cache.delete_many(name for name in "bz") == 1
    assert tracker.closed == ["a", "b"]
    assert cache.delete_many(("c",)) == 1
    assert cache.items == 0


# --- iteration: iter(cache), keys(), values() ----------------------------------------------------


def test_keys_and_values_are_lists_in_step() -> None:
    cache = FlexCache(max_items=10)
    for n in range(5):
        cache.set(f"k{n}", n * 10)
    keys, values = cache.keys(), cache.values()
    assert type(keys) is list
    assert type(values) is list
    assert [cache.peek(key) for key in keys] == values
    assert list(cache) == keys


def test_unbounded_cache_iterates_over_its_live_keys() -> None:
    cache = FlexCache()
    keys = ["a", 1, ("t", 2), b"b", None]
    for key in keys:
        cache.set(key, repr(key))
    assert sorted(map(repr, cache)) == sorted(map(repr, keys))
    assert sorted(map(repr, cache.keys())) == sorted(map(repr, keys))
    assert sorted(cache.values()) == sorted(repr(key) for key in keys)


def test_lru_order_is_the_eviction_order(tracker) -> None:
    cache = abc(tracker, max_items=4)
    assert cache.keys() == ["a", "b", "c"]
    cache.get("a")
    assert cache.keys() == ["b", "c", "a"]
    assert [value.name for value in cache.values()] == ["b", "c", "a"]
    cache.put("b", tracker("B"))
    assert list(cache) == ["c", "a", "b"]
    cache.set("d", tracker("d"))
    _ = cache["c"]
    assert cache.keys() == ["a", "b", "d", "c"]
    assert victims(cache, tracker, 4) == ["a", "B", "d", "c"]


def test_fifo_order_is_the_eviction_order(tracker) -> None:
    cache = abc(tracker, "fifo", max_items=4)
    cache.get("a")
    assert cache.keys() == ["a", "b", "c"]
    cache.put("a", tracker("A"))
    assert cache.keys() == ["b", "c", "a"]
    assert [value.name for value in cache.values()] == ["b", "c", "A"]
    cache.set("d", tracker("d"))
    assert list(cache) == ["b", "c", "a", "d"]
    assert victims(cache, tracker, 4) == ["b", "c", "A", "d"]


def test_random_policy_iterates_over_its_live_keys(tracker) -> None:
    cache = abc(tracker, "random", max_items=5)
    assert sorted(cache) == ["a", "b", "c"]
    assert sorted(cache.keys()) == ["a", "b", "c"]
    assert sorted(value.name for value in cache.values()) == ["a", "b", "c"]


@ORDERED
def test_iteration_skips_expired_entries_and_reaps_nothing(
    policy: str, clock: ManualClock, tracker
) -> None:
    cache = FlexCache(policy, INF, 5, clock=clock)
    cache.set("a", tracker("a"))
    cache.set("gone", tracker("gone"), ttl=1)
    cache.set("b", tracker("b"))
    cache.set("later", tracker("later"), ttl=10)
    clock.advance(1)
    assert list(cache) == ["a", "b", "later"]
    assert cache.keys() == ["a", "b", "later"]
    assert [value.name for value in cache.values()] == ["a", "b", "later"]
    assert cache.items == 4
    assert tracker.closed == []
    assert cache.stats().expirations == 0


def test_iteration_counts_nothing(tracker) -> None:
    cache = abc(tracker)
    before = cache.stats()
    list(cache)
    cache.keys()
    cache.values()
    assert cache.stats() == before
    assert victims(cache, tracker, 3) == ["a", "b", "c"]


def test_iter_yields_the_stored_key_objects() -> None:
    cache = FlexCache(max_items=5)
    key = ("t", int("12345678901234567890"))
    cache.set(key, 1)
    assert next(iter(cache)) is key
    assert cache.keys()[0] is key


Change = Callable[[FlexCache, ManualClock], object]

CHANGES: list[tuple[str, Change]] = [
    ("set", lambda c, clock: c.set("new", 1)),
    ("set_evicting", lambda c, clock: [c.set(f"n{i}", i) for i in range(3)]),
    ("put_new", lambda c, clock: c.put("new", 1)),
    ("put_over", lambda c, clock: c.put("a", 1)),
    ("setitem", lambda c, clock: c.__setitem__("b", 2)),
    ("delete", lambda c, clock: c.delete("b")),
    ("delitem", lambda c, clock: c.__delitem__("b")),
    ("pop", lambda c, clock: c.pop("c")),
    ("clear", lambda c, clock: c.clear()),
    ("set_many", lambda c, clock: c.set_many({"new": 1})),
    ("put_many", lambda c, clock: c.put_many({"a": 1})),
    ("delete_many", lambda c, clock: c.delete_many(["a"])),
    ("get_or_set_miss", lambda c, clock: c.get_or_set("new", object)),
    ("scan_reaping", lambda c, clock: (clock.advance(5), c.scan())),
    ("get_reaping", lambda c, clock: (clock.advance(5), c.get("t"))),
]


@pytest.mark.parametrize("change", [f for _, f in CHANGES], ids=[n for n, _ in CHANGES])
@pytest.mark.parametrize("started", [False, True], ids=["before_first_step", "mid_iteration"])
def test_changing_the_cache_invalidates_an_iterator(
    change: Change, started: bool, clock: ManualClock
) -> None:
    cache = FlexCache("lru", INF, 5, clock=clock)
    for name in "abc":
        cache.set(name, name.upper())
    cache.set("t", "T", ttl=5)
    iterator = iter(cache)
    if started:
        assert next(iterator) == "a"
    change(cache, clock)
    with pytest.raises(RuntimeError):
        next(iterator)


NON_CHANGES: list[tuple[str, Change]] = [
    ("get_hit", lambda c, clock: c.get("a")),
    ("getitem_hit", lambda c, clock: c["b"]),
    ("get_many_hits", lambda c, clock: c.get_many(["a", "c"])),
    ("get_or_set_hit", lambda c, clock: c.get_or_set("a", object)),
    ("get_miss", lambda c, clock: c.get("zz")),
    ("contains", lambda c, clock: "a" in c),
    ("peek", lambda c, clock: c.peek("a")),
    ("expires_in", lambda c, clock: c.expires_in("t")),
    ("keys", lambda c, clock: (c.keys(), c.values(), list(c))),
    ("stats", lambda c, clock: (c.stats(), len(c), c.items, c.bytes)),
    ("scan_reaping_nothing", lambda c, clock: c.scan()),
]


@pytest.mark.parametrize("change", [f for _, f in NON_CHANGES], ids=[n for n, _ in NON_CHANGES])
def test_lookups_do_not_invalidate_an_iterator(change: Change, clock: ManualClock) -> None:
    cache = FlexCache("lru", INF, 5, clock=clock)
    for name in "abc":
        cache.set(name, name.upper())
    cache.set("t", "T", ttl=5)
    iterator = iter(cache)
    assert next(iterator) == "a"
    change(cache, clock)
    assert list(iterator) == ["b", "c", "t"]  # the snapshot taken by iter()


def test_iterator_of_an_empty_cache() -> None:
    cache = FlexCache(max_items=2)
    assert list(cache) == []
    assert cache.keys() == []
    assert cache.values() == []
    iterator = iter(cache)
    with pytest.raises(StopIteration):
        next(iterator)


# --- cachetools ----------------------------------------------------------------------------------


def test_cachetools_cached_with_flexcache() -> None:
    cache = FlexCache(max_items=2)
    calls: list[int] = []

    @cachetools.cached(cache=cache)
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    assert square(2) == 4
    assert square(2) == 4
    assert square(3) == 9
    assert calls == [2, 3]
    assert len(cache) == 2
    assert cachetools.keys.hashkey(2) in cache
    assert square(4) == 16  # evicts 2, the least recently used
    assert calls == [2, 3, 4]
    assert cachetools.keys.hashkey(2) not in cache
    assert square(3) == 9
    assert square(2) == 4
    assert calls == [2, 3, 4, 2]


def test_cachetools_cached_result_too_large_is_not_stored() -> None:
    class Big:
        def item_size(self) -> int:
            return 10

    cache = FlexCache(max_bytes=5)
    calls: list[int] = []

    @cachetools.cached(cache=cache)
    def make(n: int) -> Big:
        calls.append(n)
        return Big()

    first = make(1)
    assert isinstance(first, Big)
    assert make(1) is not first
    assert calls == [1, 1]
    assert len(cache) == 0


def test_cachetools_cachedmethod_with_flexcache() -> None:
    class Repository:
        def __init__(self) -> None:
            self.cache = FlexCache(max_items=8)
            self.loads: list[int] = []

        @cachetools.cachedmethod(lambda self: self.cache)
        def load(self, n: int) -> str:
            self.loads.append(n)
            return f"row {n}"

    one, two = Repository(), Repository()
    assert one.load(1) == "row 1"
    assert one.load(1) == "row 1"
    assert one.load(2) == "row 2"
    assert two.load(1) == "row 1"
    assert one.loads == [1, 2]
    assert two.loads == [1]
    assert len(one.cache) == 2
    assert len(two.cache) == 1


def test_a_value_too_large_for_max_bytes_is_a_too_large_error() -> None:
    from flexcache import TooLargeError

    class Big:
        def item_size(self) -> int:
            return 11

    cache = FlexCache(max_bytes=10)
    for store in (cache.set, cache.put):
        with pytest.raises(TooLargeError, match="larger than max_bytes"):
            store("k", Big())
    with pytest.raises(TooLargeError):
        cache.set_many({"k": Big()})
    assert issubclass(TooLargeError, ValueError) and len(cache) == 0
