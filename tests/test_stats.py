"""SPEC Part 2, "Statistics": ``stats()``, ``CacheStats``, ``reset_stats()`` and every counter.

``hits``/``misses`` count lookups by ``get``, ``cache[key]``, ``get_many`` (per key) and
``get_or_set``; ``sets`` entries stored; ``evictions`` live entries let go by policy;
``expirations`` expired entries reaped; ``deletions`` live entries removed by a call (or
replaced by ``put``); ``close_errors`` ``close()`` and ``on_remove`` calls that raised.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from conftest import POLICIES
from flexcache import CacheStats, FlexCache
from flexcache.testing import ManualClock

INF = math.inf
FIELDS = (
    "hits",
    "misses",
    "sets",
    "evictions",
    "rejections",
    "expirations",
    "deletions",
    "close_errors",
)
ZERO = CacheStats(0, 0, 0, 0, 0, 0, 0, 0)


class Boom(Exception):
    pass


def counts(**nonzero: int) -> CacheStats:
    """A CacheStats with the given fields and zero elsewhere."""
    return ZERO._replace(**nonzero)


class Failing:
    """A value whose ``close()`` raises."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closes = 0

    def close(self) -> None:
        self.closes += 1
        raise Boom(f"close of {self.name}")


# --- CacheStats ----------------------------------------------------------------------------------


def test_stats_is_a_cache_stats_named_tuple() -> None:
    cache = FlexCache()
    stats = cache.stats()
    assert type(stats) is CacheStats
    assert isinstance(stats, tuple)
    assert CacheStats._fields == FIELDS
    assert stats == ZERO
    assert stats == (0, 0, 0, 0, 0, 0, 0, 0)
    assert tuple(stats) == (0,) * 8
    for field in FIELDS:
        assert getattr(stats, field) == 0
        assert type(getattr(stats, field)) is int


def test_cache_stats_compares_like_a_tuple() -> None:
    stats = CacheStats(1, 2, 3, 4, 5, 6, 7, 8)
    assert stats == (1, 2, 3, 4, 5, 6, 7, 8)
    assert stats == CacheStats(1, 2, 3, 4, 5, 6, 7, 8)
    assert stats != CacheStats(1, 2, 3, 4, 5, 6, 7, 9)
    assert stats != ZERO
    assert stats.hits == 1
    assert stats.close_errors == 8
    assert stats[2] == 3
    hits, misses, *_ = stats
    assert (hits, misses) == (1, 2)


def test_cache_stats_repr_is_a_named_tuples() -> None:
    cache = FlexCache()
    cache.get("missing")
    assert repr(cache.stats()) == (
        "CacheStats(hits=0, misses=1, sets=0, evictions=0, rejections=0, "
        "expirations=0, deletions=0, close_errors=0)"
    )


def test_cache_stats_is_frozen() -> None:
    stats = FlexCache().stats()
    for field in FIELDS:
        with pytest.raises(AttributeError):
            setattr(stats, field, 1)
    with pytest.raises(AttributeError):
        stats.hit_ratio = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        stats[0] = 1  # type: ignore[index]
    assert stats == ZERO


def test_stats_is_a_snapshot() -> None:
    cache = FlexCache()
    before = cache.stats()
    cache.set("k", 1)
    cache.get("k")
    cache.get("zz")
    assert before == ZERO
    assert cache.stats() == counts(hits=1, misses=1, sets=1)
    cache.reset_stats()
    assert before == ZERO


def test_hit_ratio() -> None:
    cache = FlexCache()
    assert cache.stats().hit_ratio == 0.0
    assert type(cache.stats().hit_ratio) is float
    cache.set("k", 1)
    assert cache.stats().hit_ratio == 0.0  # sets are not lookups
    cache.get("k")
    assert cache.stats().hit_ratio == 1.0
    cache.get("zz")
    assert cache.stats().hit_ratio == 0.5
    cache.get("zz")
    cache.get("zz")
    assert cache.stats().hit_ratio == 0.25
    assert CacheStats(3, 1, 0, 0, 0, 0, 0, 0).hit_ratio == 0.75
    assert CacheStats(0, 4, 9, 0, 0, 0, 0, 0).hit_ratio == 0.0
    assert ZERO.hit_ratio == 0.0


def test_each_cache_counts_its_own() -> None:
    one, two = FlexCache(), FlexCache()
    one.set("k", 1)
    one.get("k")
    assert two.stats() == ZERO
    assert one.stats() == counts(hits=1, sets=1)


# --- a scripted sequence, counts checked after every step ----------------------------------------


def test_scripted_sequence(clock: ManualClock, tracker) -> None:
    cache = FlexCache("lru", INF, 3, 0, clock=clock)
    expected = dict.fromkeys(FIELDS, 0)

    def step(action: Callable[[], object], **delta: int) -> None:
        action()
        for field, change in delta.items():
            expected[field] += change
        assert cache.stats() == CacheStats(**expected), (action, delta)

    def missing_item() -> None:
        with pytest.raises(KeyError):
            _ = cache["zz"]

    def counting_nothing() -> None:
        assert "a" in cache
        assert "zz" not in cache
        cache.peek("a")
        cache.peek("zz")
        assert cache.expires_in("b") == pytest.approx(5)
        with pytest.raises(KeyError):
            cache.expires_in("zz")
        list(cache)
        cache.keys()
        cache.values()
        assert len(cache) == 2
        repr(cache)

    step(lambda: cache.set("a", tracker("a")), sets=1)
    step(lambda: cache.set("b", tracker("b"), ttl=5), sets=1)
    step(lambda: cache.get("a"), hits=1)
    step(lambda: cache.get("zz"), misses=1)
    step(lambda: cache["a"], hits=1)
    step(missing_item, misses=1)
    step(counting_nothing)
    step(lambda: cache.put("a", tracker("a2")), sets=1, deletions=1)  # order: b, a
    step(lambda: cache.set("c", tracker("c")), sets=1)  # b, a, c
    clock.advance(5)  # b expires
    step(lambda: cache.set("d", tracker("d")), sets=1, expirations=1)  # a, c, d
    step(lambda: cache.set("e", tracker("e")), sets=1, evictions=1)  # c, d, e
    step(lambda: cache.get_many(["c", "zz", "d"]), hits=2, misses=1)  # e, c, d
    step(lambda: cache.get_or_set("e", tracker), hits=1)  # c, d, e
    step(lambda: cache.get_or_set("f", lambda: tracker("f")), misses=1, sets=1, evictions=1)
    step(lambda: cache.delete("d"), deletions=1)  # e, f
    step(lambda: cache.delete("zz"))
    step(lambda: cache.pop("e"), deletions=1)  # f
    step(lambda: cache.pop("zz", None))
    step(lambda: cache.set_many({"g": tracker("g"), "h": tracker("h")}), sets=2)  # f, g, h
    step(
        lambda: cache.put_many({"g": tracker("g2"), "i": tracker("i")}),
        sets=2,
        deletions=1,
        evictions=1,
    )
    step(lambda: cache.delete_many(["h", "zz", "g"]), deletions=2)  # i
    step(lambda: cache.set("j", tracker("j"), ttl=1), sets=1)
    clock.advance(1)
    step(lambda: cache.get("j"), misses=1, expirations=1)
    step(lambda: cache.set("k", tracker("k"), ttl=1), sets=1)
    clock.advance(1)
    step(cache.scan, expirations=1)
    step(lambda: cache.__setitem__("l", tracker("l")), sets=1)
    step(lambda: cache.__delitem__("l"), deletions=1)
    step(cache.clear, deletions=1)  # i
    assert cache.items == 0
    assert cache.stats().rejections == 0
    assert cache.stats().close_errors == 0
    step(cache.reset_stats, **{field: -value for field, value in expected.items()})
    assert cache.stats() == ZERO


# --- which calls count lookups -------------------------------------------------------------------


def test_lookups_that_count(clock: ManualClock) -> None:
    cache = FlexCache(scan_interval=INF, clock=clock)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.get("a")
    cache.get("a", "default")
    cache.get("zz", "default")
    assert cache.stats() == counts(sets=2, hits=2, misses=1)
    assert cache["b"] == 2
    with pytest.raises(KeyError):
        _ = cache["zz"]
    assert cache.stats() == counts(sets=2, hits=3, misses=2)
    assert cache.get_many(["a", "b", "x", "y", "z"]) == {"a": 1, "b": 2}
    assert cache.stats() == counts(sets=2, hits=5, misses=5)
    assert cache.get_or_set("a", lambda: 0) == 1
    assert cache.get_or_set("new", lambda: 3) == 3
    assert cache.stats() == counts(sets=3, hits=6, misses=6)


def test_calls_that_count_nothing(clock: ManualClock) -> None:
    cache = FlexCache("lru", INF, 10, clock=clock)
    cache.set("a", 1, ttl=5)
    cache.set("b", 2)
    before = cache.stats()
    assert "a" in cache
    assert "zz" not in cache
    assert cache.peek("a") == 1
    assert cache.peek("zz") is None
    assert cache.expires_in("a") == pytest.approx(5)
    assert cache.expires_in("b") is None
    with pytest.raises(KeyError):
        cache.expires_in("zz")
    assert cache.touch("b", 9) is True
    assert cache.touch("zz") is False
    assert sorted(cache) == ["a", "b"]
    assert sorted(cache.keys()) == ["a", "b"]
    assert sorted(cache.values()) == [1, 2]
    assert len(cache) == 2
    assert cache.items == 2
    assert cache.bytes == 2
    cache.scan()
    repr(cache)
    assert cache.stats() == before


def test_refused_calls_count_nothing(tracker) -> None:
    cache = FlexCache(max_items=3, max_bytes=10)
    cache.set("a", 1)
    before = cache.stats()
    with pytest.raises(KeyError):
        cache.set("a", 2)
    with pytest.raises(ValueError):
        cache.set("big", tracker("big", 11))
    with pytest.raises(ValueError):
        cache.put("a", tracker("big", 11))
    with pytest.raises(ValueError):
        cache.set("t", 1, ttl=-1)
    with pytest.raises(TypeError):
        cache.get([])
    with pytest.raises(KeyError):
        cache.set_many({"x": 1, "a": 2})
    with pytest.raises(ValueError):
        cache.set_many({"x": 1, "y": 2, "z": 3, "w": 4})
    with pytest.raises(KeyError):
        cache.pop("zz")
    with pytest.raises(KeyError):
        del cache["zz"]
    assert cache.stats() == before


# --- sets ----------------------------------------------------------------------------------------


def test_sets_count_every_entry_stored(tracker) -> None:
    cache = FlexCache(max_items=100)
    cache.set("a", 1)
    cache.put("b", 2)
    cache["c"] = 3
    cache.get_or_set("d", lambda: 4)
    cache.get_or_set("d", lambda: 5)  # a hit: nothing stored
    cache.set_many({"e": 5, "f": 6, "g": 7})
    cache.put_many([("h", 8), ("i", 9)])
    assert cache.stats().sets == 9
    cache.get_or_set("big", lambda: tracker("big", 2**62))  # stored: no max_bytes here
    assert cache.stats().sets == 10


def test_result_too_large_is_not_a_set(tracker) -> None:
    cache = FlexCache(max_bytes=5)
    cache.get_or_set("k", lambda: tracker("big", 6))
    assert cache.stats() == counts(misses=1)


def test_put_of_the_very_same_object_counts_a_set_and_a_deletion(tracker) -> None:
    cache = FlexCache()
    value = tracker("v")
    cache.set("k", value)
    cache.put("k", value)
    assert cache.stats() == counts(sets=2, deletions=1)
    assert value.closes == 0


# --- evictions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES)
def test_evictions_under_each_policy(policy: str, tracker) -> None:
    cache = FlexCache(policy, max_items=2)
    for name in "abcde":
        cache.set(name, tracker(name))
    assert cache.stats() == counts(sets=5, evictions=3)
    assert len(tracker.closed) == 3


def test_one_set_evicting_several(tracker) -> None:
    cache = FlexCache("lru", max_bytes=10)
    for name in "abcde":
        cache.set(name, tracker(name, 2))
    cache.set("big", tracker("big", 7))
    assert cache.stats() == counts(sets=6, evictions=4)
    assert tracker.closed == ["a", "b", "c", "d"]


@pytest.mark.parametrize("bulk", ["set_many", "put_many"])
def test_bulk_calls_count_evictions(bulk: str, tracker) -> None:
    cache = FlexCache("fifo", max_items=3)
    for name in "abc":
        cache.set(name, tracker(name))
    getattr(cache, bulk)([("x", 1), ("y", 2)])
    assert cache.stats() == counts(sets=5, evictions=2)


def test_expired_entries_making_room_are_expirations_not_evictions(
    clock: ManualClock, tracker
) -> None:
    cache = FlexCache("lru", INF, 2, clock=clock)
    cache.set("a", tracker("a"), ttl=1)
    cache.set("b", tracker("b"))
    clock.advance(1)
    cache.set("c", tracker("c"))
    assert cache.stats() == counts(sets=3, expirations=1)
    assert tracker.closed == ["a"]


# --- expirations ---------------------------------------------------------------------------------


def _expiring(clock: ManualClock, tracker, interval: float = INF) -> FlexCache:
    cache = FlexCache("lru", interval, 10, clock=clock)
    cache.set("x", tracker("x"), ttl=1)
    cache.set("y", tracker("y"), ttl=1)
    cache.set("live", tracker("live"))
    cache.reset_stats()
    clock.advance(1)
    return cache


def test_expirations_by_scan(clock: ManualClock, tracker) -> None:
    cache = _expiring(clock, tracker)
    cache.scan()
    assert cache.stats() == counts(expirations=2)


def test_expirations_by_the_automatic_scan(clock: ManualClock, tracker) -> None:
    cache = _expiring(clock, tracker, interval=0)
    assert cache.get("live").name == "live"
    assert cache.stats() == counts(hits=1, expirations=2)
    assert sorted(tracker.closed) == ["x", "y"]


LOOKUPS_OF_AN_EXPIRED_ENTRY = [
    pytest.param(lambda c: c.get("x"), counts(misses=1, expirations=1), id="get"),
    pytest.param(
        lambda c: c.get_many(["x", "live"]), counts(hits=1, misses=1, expirations=1), id="get_many"
    ),
    pytest.param(
        lambda c: c.get_or_set("x", object),
        counts(misses=1, sets=1, expirations=1),
        id="get_or_set",
    ),
    pytest.param(lambda c: c.set("x", 1), counts(sets=1, expirations=1), id="set"),
    pytest.param(lambda c: c.put("x", 1), counts(sets=1, expirations=1), id="put"),
    pytest.param(lambda c: c.__setitem__("x", 1), counts(sets=1, expirations=1), id="setitem"),
    pytest.param(lambda c: c.set_many({"x": 1}), counts(sets=1, expirations=1), id="set_many"),
    pytest.param(lambda c: c.put_many({"x": 1}), counts(sets=1, expirations=1), id="put_many"),
    pytest.param(lambda c: c.delete("x"), counts(expirations=1), id="delete"),
    pytest.param(lambda c: c.pop("x", None), counts(expirations=1), id="pop"),
    pytest.param(lambda c: c.delete_many(["x"]), counts(expirations=1), id="delete_many"),
    pytest.param(lambda c: c.touch("x", 5), counts(expirations=1), id="touch"),
]


@pytest.mark.parametrize(("call", "expected"), LOOKUPS_OF_AN_EXPIRED_ENTRY)
def test_expirations_by_a_call_on_the_expired_key(
    call: Callable[[FlexCache], object], expected: CacheStats, clock: ManualClock, tracker
) -> None:
    cache = _expiring(clock, tracker)
    call(cache)
    assert cache.stats() == expected
    assert tracker.closed == ["x"]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param(lambda c: c["x"], counts(misses=1, expirations=1), id="getitem"),
        pytest.param(lambda c: c.__delitem__("x"), counts(expirations=1), id="delitem"),
        pytest.param(lambda c: c.pop("x"), counts(expirations=1), id="pop_no_default"),
    ],
)
def test_expirations_by_item_access_of_the_expired_key(
    call: Callable[[FlexCache], object], expected: CacheStats, clock: ManualClock, tracker
) -> None:
    cache = _expiring(clock, tracker)
    with pytest.raises(KeyError):
        call(cache)
    assert cache.stats() == expected
    assert tracker.closed == ["x"]


def test_peek_and_expires_in_of_an_expired_entry_reap_nothing(clock: ManualClock, tracker) -> None:
    cache = _expiring(clock, tracker)
    cache.peek("x")
    with pytest.raises(KeyError):
        cache.expires_in("x")
    list(cache)
    cache.keys()
    cache.values()
    assert cache.stats() == ZERO
    assert tracker.closed == []


# --- deletions -----------------------------------------------------------------------------------


def test_deletions_by_each_call(tracker) -> None:
    cache = FlexCache(max_items=20)
    for name in "abcdefgh":
        cache.set(name, tracker(name))
    cache.reset_stats()
    assert cache.delete("a") is True
    assert cache.stats().deletions == 1
    del cache["b"]
    assert cache.stats().deletions == 2
    cache.pop("c")
    assert cache.stats().deletions == 3
    assert cache.delete_many(["d", "e", "zz"]) == 2
    assert cache.stats().deletions == 5
    cache.put("f", tracker("f2"))
    assert cache.stats().deletions == 6
    cache["g"] = tracker("g2")
    assert cache.stats().deletions == 7
    cache.put_many({"h": tracker("h2"), "new": 1})
    assert cache.stats().deletions == 8
    cache.clear()  # f2, g2, h2, new
    assert cache.stats() == counts(deletions=12, sets=4)


def test_misses_of_removal_calls_count_nothing() -> None:
    cache = FlexCache()
    cache.set("a", 1)
    cache.reset_stats()
    assert cache.delete("zz") is False
    assert cache.pop("zz", None) is None
    assert cache.delete_many(["zz", "yy"]) == 0
    assert cache.stats() == ZERO


def test_clear_counts_live_entries_as_deletions_and_expired_ones_as_expirations(
    clock: ManualClock, tracker
) -> None:
    cache = FlexCache("lru", INF, 10, clock=clock)
    cache.set("x", tracker("x"), ttl=1)
    cache.set("live1", tracker("live1"))
    cache.set("live2", tracker("live2"), ttl=10)
    cache.reset_stats()
    clock.advance(1)
    cache.clear()
    assert cache.stats() == counts(deletions=2, expirations=1)
    assert sorted(tracker.closed) == ["live1", "live2", "x"]


# --- close_errors --------------------------------------------------------------------------------


def test_close_errors_count_and_still_reach_the_unraisable_hook(
    clock: ManualClock, unraisable
) -> None:
    cache = FlexCache("lru", INF, 2, clock=clock)
    cache.set("a", Failing("a"))
    assert cache.delete("a") is True
    assert cache.stats().close_errors == 1
    assert len(unraisable) == 1
    assert unraisable[0][0] is Boom
    assert "close of a" in str(unraisable[0][1])
    cache.set("b", Failing("b"))
    cache.set("c", 1)
    cache.set("d", 1)  # evicts b
    assert cache.stats().close_errors == 2
    cache.put("c", Failing("c2"))
    cache.put("c", 1)  # replaces c2
    assert cache.stats().close_errors == 3
    cache.set("e", Failing("e"), ttl=1)  # evicts d
    clock.advance(1)
    cache.scan()
    assert cache.stats().close_errors == 4
    for name in ("f", "g"):
        cache.set_many({name: Failing(name)})
    cache.clear()
    assert cache.stats().close_errors == 6
    assert len(unraisable) == 6
    assert all(exc_type is Boom for exc_type, _, _ in unraisable)
    assert cache.items == 0


def test_close_errors_from_bulk_calls_and_get_or_set(unraisable) -> None:
    cache = FlexCache(max_items=10)
    cache.set_many({"a": Failing("a"), "b": Failing("b"), "c": 1})
    assert cache.delete_many(["a", "b", "c"]) == 3
    assert cache.stats().close_errors == 2
    discarded = Failing("discarded")

    def factory() -> object:
        cache.set("k", "stored by the factory")
        return discarded

    assert cache.get_or_set("k", factory) == "stored by the factory"
    assert discarded.closes == 1
    assert cache.stats().close_errors == 3
    assert len(unraisable) == 3


def test_pop_calls_no_close_so_counts_no_close_error(unraisable) -> None:
    cache = FlexCache()
    value = Failing("v")
    cache.set("k", value)
    assert cache.pop("k") is value
    assert value.closes == 0
    assert cache.stats().close_errors == 0
    assert unraisable == []


def test_close_errors_count_raising_on_remove(unraisable, tracker) -> None:
    def on_remove(key: object, value: object, cause: object) -> None:
        raise Boom(f"on_remove of {key}")

    cache = FlexCache(max_items=10, on_remove=on_remove)
    cache.set("a", tracker("a"))
    cache.set("b", Failing("b"))
    assert cache.delete("a") is True
    assert cache.stats().close_errors == 1
    assert tracker.closed == ["a"]  # closed all the same
    assert cache.delete("b") is True  # on_remove and close() both raise
    assert cache.stats().close_errors == 3
    assert len(unraisable) == 3
    assert all(exc_type is Boom for exc_type, _, _ in unraisable)


def test_no_close_errors_for_values_that_close_cleanly(tracker, unraisable) -> None:
    cache = FlexCache(max_items=1)
    cache.set("a", tracker("a"))
    cache.set("b", tracker("b"))
    cache.delete("b")
    assert cache.stats().close_errors == 0
    assert unraisable == []


# --- reset_stats, repr ---------------------------------------------------------------------------


def test_reset_stats_zeroes_everything_and_keeps_the_entries(
    clock: ManualClock, tracker, unraisable
) -> None:
    cache = FlexCache("lru", INF, 2, clock=clock)
    cache.set("a", tracker("a"), ttl=1)
    cache.set("b", Failing("b"))
    cache.get("b")
    cache.get("zz")
    cache.set("c", tracker("c"))  # evicts a
    cache.delete("b")
    cache.set("d", 1, ttl=1)
    clock.advance(1)
    cache.scan()
    cache.put("c", 2)
    stats = cache.stats()._asdict()
    assert stats.pop("rejections") == 0
    assert all(value > 0 for value in stats.values()), stats
    assert cache.reset_stats() is None
    assert cache.stats() == ZERO
    assert cache.stats().hit_ratio == 0.0
    assert cache.items == 1
    assert cache.get("c") == 2
    assert cache.stats() == counts(hits=1)


def test_repr_shows_policy_limits_items_and_bytes(tracker) -> None:
    cache = FlexCache("fifo", 0.0, 987654, 8642097)
    for n in range(17):
        cache.set(f"key{n}", tracker(str(n), 3))
    text = repr(cache)
    assert "fifo" in text
    assert "987654" in text
    assert "8642097" in text
    assert "items=17" in text
    assert "bytes=51" in text
    # Lookups change statistics, not the repr.
    cache.get("key1")
    cache.get("zz")
    assert repr(cache) == text
