"""Adversarial inputs: hostile ``item_size()``/``close()``, odd keys and ttls, threads
without a lock, and memory over millions of operations.

Every test ends by checking the cache against what the test tracked: ``items`` equals the
number of live keys, ``bytes`` the sum of their sizes, every tracked key ``get``-able as its
value and every other key absent (see :class:`Expect`).
"""

from __future__ import annotations

import gc
import os
import random
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, timezone, tzinfo
from datetime import time as dtime
from decimal import Decimal
from fractions import Fraction

import pytest
from conftest import check_cache
from flexcache import FlexCache
from flexcache.testing import ManualClock

MISSING = object()


class Expect:
    """What a test believes the cache holds: key -> (value, size)."""

    def __init__(self, cache: FlexCache) -> None:
        self.cache = cache
        self.live: dict[str, tuple[object, int]] = {}

    def add(self, key: str, value: object, size: int = 1) -> None:
        self.live[key] = (value, size)

    def remove(self, key: str) -> None:
        del self.live[key]

    def set(self, key: str, value: object, size: int = 1, **kwargs: object) -> None:
        self.cache.set(key, value, **kwargs)
        self.add(key, value, size)

    def verify(self, absent: Iterable[str] = ()) -> None:
        cache = self.cache
        check_cache(cache)
        assert cache.items == len(self.live), (cache, sorted(self.live))
        assert cache.bytes == sum(size for _, size in self.live.values())
        for key, (value, _) in self.live.items():
            assert key in cache, key
            assert cache.get(key, MISSING) is value, key
        for key in absent:
            if key not in self.live:
                assert key not in cache, key
                assert cache.get(key, MISSING) is MISSING, key


class Val:
    """A value whose ``item_size()`` returns (or raises) ``size``, with a counted ``close()``."""

    def __init__(
        self,
        name: str,
        size: object = 1,
        on_close: Callable[[Val], object] | None = None,
    ) -> None:
        self.name = name
        self.size = size
        self.size_calls = 0
        self.closes = 0
        self.on_close = on_close

    def item_size(self) -> object:
        self.size_calls += 1
        if isinstance(self.size, BaseException):
            raise self.size
        return self.size

    def close(self) -> None:
        self.closes += 1
        if self.on_close is not None:
            self.on_close(self)

    def __repr__(self) -> str:
        return f"<Val {self.name} closes={self.closes}>"


def filled(max_items: int = 3, max_bytes: int = 0, **kwargs: object) -> tuple[Expect, list[Val]]:
    """A cache at its item limit with values a, b, c of size 1 (oldest first)."""
    cache = FlexCache("lru", max_items=max_items, max_bytes=max_bytes, **kwargs)
    expect = Expect(cache)
    values = [Val(name, 1) for name in "abc"]
    for value in values:
        expect.set(value.name, value, 1)
    return expect, values


# --- item_size() -----------------------------------------------------------------------------


class IntSub(int):
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
        (IntSub(-1), ValueError),
        (IntSub(2**70), ValueError),
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
    expect.set("k", Val("k", IntSub(3)), 3)
    expect.set("j", Val("j", IntSub(7)), 7)
    expect.verify()
    big = Val("big", IntSub(11))
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


# --- keys ------------------------------------------------------------------------------------

NON_STR_KEYS = [b"a", bytearray(b"a"), 1, 1.0, None, object(), ("a",), True, memoryview(b"a")]


@pytest.mark.parametrize("key", NON_STR_KEYS, ids=lambda k: type(k).__name__)
def test_non_str_keys_are_type_errors_and_change_nothing(key: object) -> None:
    expect, old = filled()
    value = Val("new", 1)
    with pytest.raises(TypeError):
        expect.cache.set(key, value)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        expect.cache.get(key)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        expect.cache.get(key, "default")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        expect.cache.delete(key)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _ = key in expect.cache
    assert value.closes == 0
    assert all(v.closes == 0 for v in old)
    expect.verify()


class HostileStr(str):
    """A str subclass whose every str hook raises: the cache must use the text only."""

    def __hash__(self) -> int:
        raise RuntimeError("__hash__ called")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__ called")

    def __ne__(self, other: object) -> bool:
        raise RuntimeError("__ne__ called")

    def __str__(self) -> str:
        raise RuntimeError("__str__ called")

    def __len__(self) -> int:
        raise RuntimeError("__len__ called")

    def encode(self, *args: object, **kwargs: object) -> bytes:
        raise RuntimeError("encode called")


def test_hostile_str_subclass_keys_work_by_text() -> None:
    cache = FlexCache("lru", max_items=10)
    expect = Expect(cache)
    plain = Val("plain")
    expect.set("abc", plain)
    assert cache.get(HostileStr("abc")) is plain
    assert HostileStr("abc") in cache
    with pytest.raises(KeyError) as info:
        cache.set(HostileStr("abc"), Val("dup"))
    assert type(info.value.args[0]) is HostileStr
    sub = Val("sub")
    cache.set(HostileStr("xyz"), sub)
    expect.add("xyz", sub)
    assert cache.get("xyz") is sub
    with pytest.raises(KeyError):
        cache.set("xyz", Val("dup"))
    expect.verify(absent=["ab", "abcd", ""])
    assert cache.delete(HostileStr("abc")) is True
    expect.remove("abc")
    assert plain.closes == 1
    assert cache.delete("xyz") is True
    expect.remove("xyz")
    expect.verify(absent=["abc", "xyz"])
    assert cache.delete(HostileStr("abc")) is False
    assert HostileStr("") not in cache


SURROGATES = ["\ud800", "\udfff", "a\udcff", "\ud83d\ude00", "\ude00\ud83d", "\ud800\x00"]


def test_lone_surrogate_keys() -> None:
    cache = FlexCache()
    expect = Expect(cache)
    for i, key in enumerate(SURROGATES):
        expect.set(key, Val(f"s{i}"))
    # "\ud83d\ude00" is two lone surrogates, not the emoji they would encode in UTF-16.
    expect.verify(absent=["\U0001f600", "a", "", "\ud801", "\x00"])
    for key in SURROGATES[::2]:
        assert cache.delete(key)
        expect.remove(key)
    expect.verify(absent=SURROGATES)


def test_ten_megabyte_keys() -> None:
    cache = FlexCache(max_items=2)
    expect = Expect(cache)
    big = "k" * 10_000_000
    other = big[:-1] + "j"  # same length, differs only at the end
    expect.set(big, Val("big"))
    expect.set(other, Val("other"))
    expect.verify(absent=[big[:-1], big + "k"])
    # A different object with the same 10 MB text finds the entry.
    copy = "".join(["k" * 5_000_000, "k" * 5_000_000])
    assert copy is not big
    assert cache.delete(copy)
    expect.remove(big)
    expect.verify(absent=[big])


def test_a_million_distinct_keys() -> None:
    n = 1_000_000
    keys = [f"key-{i}" for i in range(n)]
    cache = FlexCache()
    set_, get, delete = cache.set, cache.get, cache.delete
    for i, key in enumerate(keys):
        set_(key, i)
    assert cache.items == n
    assert cache.bytes == n
    assert all(get(key) == i for i, key in enumerate(keys))
    assert "key-1000000" not in cache
    assert all(delete(key) for key in keys)
    assert cache.items == 0
    assert cache.bytes == 0
    assert not any(key in cache for key in keys[::1000])


# --- ttl -------------------------------------------------------------------------------------

TTL_VALUE_ERRORS = [
    0,
    -1,
    -(10**100),
    0.0,
    -0.0,
    -1e-300,
    -5.0,
    float("nan"),
    float("inf"),
    float("-inf"),
    timedelta(0),
    timedelta(microseconds=-1),
    timedelta.min,
]

TTL_TYPE_ERRORS = [
    True,
    False,
    "5",
    b"5",
    Decimal(5),
    Fraction(5),
    complex(5),
    date(2999, 1, 1),
    dtime(12, 0),
    [5],
    (5,),
    object(),
    timezone.utc,
]


@pytest.mark.parametrize(
    ("ttl", "exc"),
    [(t, ValueError) for t in TTL_VALUE_ERRORS] + [(t, TypeError) for t in TTL_TYPE_ERRORS],
    ids=repr,
)
def test_rejected_ttls_change_nothing(ttl: object, exc: type[Exception], clock) -> None:
    expect, old = filled(clock=clock)
    value = Val("new", 1)
    with pytest.raises(exc):
        expect.cache.set("new", value, ttl=ttl)
    assert value.closes == 0
    assert all(v.closes == 0 for v in old)
    expect.verify(absent=["new"])


class OddZone(tzinfo):
    """A tzinfo whose ``utcoffset`` raises, returns None or returns an offset."""

    def __init__(self, offset: object = None, error: BaseException | None = None) -> None:
        self.offset = offset
        self.error = error

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        if self.error is not None:
            raise self.error
        return self.offset  # type: ignore[return-value]

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str:
        return "Odd"


@pytest.mark.parametrize(
    "error",
    [
        ZeroDivisionError("utcoffset failed"),
        RuntimeError("utcoffset failed"),
        KeyboardInterrupt(),
        # Regression: these three were once taken for the datetime range's own
        # overflow and swallowed, ignoring the zone.
        ValueError("utcoffset failed"),
        OverflowError("utcoffset failed"),
        OSError("utcoffset failed"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_tzinfo_whose_utcoffset_raises(error: BaseException, clock: ManualClock) -> None:
    expect, old = filled(clock=clock)
    value = Val("new", 1)
    moment = datetime(2999, 1, 1, tzinfo=OddZone(error=error))
    with pytest.raises(type(error)) as info:
        expect.cache.set("new", value, ttl=moment)
    assert info.value is error
    assert value.closes == 0
    assert all(v.closes == 0 for v in old)
    expect.verify(absent=["new"])


def test_tzinfo_with_an_invalid_offset_is_rejected(clock: ManualClock) -> None:
    expect, _ = filled(clock=clock)
    moment = datetime(2999, 1, 1, tzinfo=OddZone(offset=timedelta(hours=30)))
    with pytest.raises(ValueError):
        expect.cache.set("new", Val("new"), ttl=moment)
    expect.verify(absent=["new"])


def test_tzinfo_with_a_non_timedelta_offset_is_type_error(clock: ManualClock) -> None:
    expect, _ = filled(clock=clock)
    moment = datetime(2999, 1, 1, tzinfo=OddZone(offset=3600))
    with pytest.raises(TypeError):
        expect.cache.set("new", Val("new"), ttl=moment)
    expect.verify(absent=["new"])


def test_tzinfo_whose_utcoffset_is_none_is_naive(clock: ManualClock) -> None:
    cache = FlexCache(clock=clock)
    expect = Expect(cache)
    naive = datetime.fromtimestamp(clock.time() + 100)
    value = Val("odd")
    expect.set("odd", value, ttl=naive.replace(tzinfo=OddZone(offset=None)))
    clock.advance(99)
    expect.verify()
    clock.advance(2)
    assert cache.get("odd", MISSING) is MISSING  # expired, and reaped by this get
    expect.remove("odd")
    expect.verify(absent=["odd"])
    assert value.closes == 1


PLUS_14 = timezone(timedelta(hours=14))
MINUS_14 = timezone(timedelta(hours=-14))
NEVER_EXPIRING = [
    timedelta.max,
    datetime.max,
    datetime.max.replace(tzinfo=PLUS_14),
    datetime.max.replace(tzinfo=MINUS_14),
    datetime.max.replace(tzinfo=timezone.utc),
    1e300,
    10**100,
    2**64,
    float(2**64),
    timedelta(days=999_999_999),
]
ALREADY_EXPIRED = [
    datetime.min,
    datetime.min.replace(tzinfo=PLUS_14),
    datetime.min.replace(tzinfo=MINUS_14),
    datetime(1970, 1, 1, tzinfo=timezone.utc),
    datetime(1970, 1, 1),
    datetime(1969, 12, 31, 23, 59, 59),
]


@pytest.mark.parametrize("ttl", NEVER_EXPIRING, ids=repr)
def test_distant_expiry_never_expires(ttl: object, clock: ManualClock) -> None:
    cache = FlexCache("lru", 0, clock=clock)
    expect = Expect(cache)
    value = Val("far")
    expect.set("far", value, ttl=ttl)
    for step in (1, 10**6, 10**9, 10**10):
        clock.advance(step)
        cache.scan()
        expect.verify()
    assert value.closes == 0


@pytest.mark.parametrize("ttl", ALREADY_EXPIRED, ids=repr)
@pytest.mark.parametrize("reap", ["scan", "get", "delete", "set"])
def test_past_datetime_is_already_expired(ttl: object, reap: str, clock: ManualClock) -> None:
    cache = FlexCache("lru", float("inf"), clock=clock)
    expect = Expect(cache)
    value = Val("old")
    cache.set("old", value, ttl=ttl)  # returns normally
    assert "old" not in cache
    assert cache.items == 1  # counted until reaped
    assert value.closes == 0
    if reap == "scan":
        cache.scan()
    elif reap == "get":
        assert cache.get("old", MISSING) is MISSING
    elif reap == "delete":
        assert cache.delete("old") is False
    else:
        expect.set("old", Val("new"))
    assert value.closes == 1
    expect.verify(absent=["old"] if reap != "set" else [])


def test_past_datetime_expired_on_a_saturated_clock(clock: ManualClock) -> None:
    cache = FlexCache(clock=clock)
    clock.advance(1e300)
    value = Val("old")
    cache.set("old", value, ttl=datetime(2000, 1, 1))
    assert "old" not in cache
    assert cache.get("old") is None
    cache.scan()
    assert value.closes == 1


# --- threads ---------------------------------------------------------------------------------


class ThreadVal:
    __slots__ = ("closes", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.closes = 0

    def item_size(self) -> int:
        if self.size == 3:
            time.sleep(0)  # yield the GIL before the cache is touched
        return self.size

    def close(self) -> None:
        self.closes += 1
        if self.size == 2:
            time.sleep(0)  # yield the GIL after the cache let go


@pytest.mark.parametrize("policy", ["lru", "fifo", "random"])
def test_threads_without_a_lock(policy: str, busy_switching: None) -> None:
    clock = ManualClock()
    cache = FlexCache(policy, 0.5, 16, 40, clock=clock)
    keys = [f"t{i}" for i in range(64)]
    accepted: list[ThreadVal] = []
    refused: list[ThreadVal] = []
    unexpected: list[BaseException] = []
    runtime_errors = [0]
    stop_at = time.monotonic() + 0.6  # three policies: ~2 s in all

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while time.monotonic() < stop_at:
                for _ in range(50):
                    op = rng.random()
                    key = rng.choice(keys)
                    try:
                        if op < 0.35:
                            value = ThreadVal(rng.randint(0, 4))
                            ttl = rng.choice([None, None, 0.25, 1, timedelta(seconds=2)])
                            try:
                                cache.set(key, value, ttl=ttl)
                            except (KeyError, RuntimeError):
                                refused.append(value)
                                raise
                            accepted.append(value)
                        elif op < 0.6:
                            got = cache.get(key)
                            assert got is None or isinstance(got, ThreadVal)
                        elif op < 0.75:
                            cache.delete(key)
                        elif op < 0.85:
                            assert isinstance(key in cache, bool)
                        elif op < 0.9:
                            cache.scan()
                        elif op < 0.95:
                            assert len(cache) >= 0
                            assert cache.bytes >= 0
                        elif op < 0.99:
                            clock.advance(0.05)
                        else:
                            cache.clear()
                    except KeyError:
                        pass
                    except RuntimeError:
                        runtime_errors[0] += 1
        except BaseException as error:  # pragma: no cover - reported below
            unexpected.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a thread hangs: deadlock?"
    assert unexpected == []
    assert len(accepted) > 100

    # Consistent afterwards: after a scan, every counted entry is live and get-able.
    cache.scan()
    check_cache(cache)
    expect = Expect(cache)
    for key in keys:
        if key in cache:
            value = cache.get(key)
            assert isinstance(value, ThreadVal)
            assert value.closes == 0
            expect.add(key, value, value.size)
    expect.verify(absent=keys)
    # Every value the cache took is closed exactly once by the end; refused ones never.
    cache.clear()
    assert cache.items == 0
    assert cache.bytes == 0
    assert all(v.closes == 1 for v in accepted), [v.closes for v in accepted if v.closes != 1]
    assert all(v.closes == 0 for v in refused)


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


@pytest.mark.parametrize("policy", ["lru", "fifo", "random"])
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


class Node:
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
    node = Node("n")
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
    a, b = Node("a"), Node("b")
    a.cache, b.cache = second, first
    first.set("a", a, ttl=5)
    second.set("b", b)
    clock.advance(10)  # a is expired but not reaped: still held, still traversed
    refs = [weakref.ref(o) for o in (first, second, a, b)]
    del first, second, a, b
    gc.collect()
    assert [r() for r in refs] == [None] * 4
    assert NODE_CLOSES == []
