"""SPEC "Construction": every accepted and rejected argument, by position and by keyword."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from conftest import POLICIES
from flexcache import FlexCache
from flexcache.testing import ManualClock

I64_MAX = 2**63 - 1
ARG_NAMES = ("eviction_policy", "scan_interval", "max_items", "max_bytes")
DEFAULTS = {"eviction_policy": "lru", "scan_interval": 0.0, "max_items": 0, "max_bytes": 0}


def build(form: str, **kwargs: object) -> FlexCache:
    """Construct with ``kwargs`` either all by keyword or all by position (defaults filled in)."""
    if form == "keyword":
        return FlexCache(**kwargs)
    args = [kwargs.get(name, DEFAULTS[name]) for name in ARG_NAMES]
    return FlexCache(*args)


FORMS = pytest.mark.parametrize("form", ["positional", "keyword"])


class StrSub(str):
    pass


class IntSub(int):
    pass


class FloatSub(float):
    pass


def test_defaults() -> None:
    cache = FlexCache()
    assert cache.eviction_policy == "lru"
    assert cache.scan_interval == 0.0
    assert cache.max_items == 0
    assert cache.max_bytes == 0
    assert cache.items == 0
    assert cache.bytes == 0
    assert len(cache) == 0


def test_all_positional_in_order() -> None:
    cache = FlexCache("fifo", 2.5, 10, 100)
    assert cache.eviction_policy == "fifo"
    assert cache.scan_interval == 2.5
    assert cache.max_items == 10
    assert cache.max_bytes == 100


def test_all_keyword_any_order() -> None:
    cache = FlexCache(max_bytes=100, max_items=10, scan_interval=2.5, eviction_policy="random")
    assert cache.eviction_policy == "random"
    assert cache.scan_interval == 2.5
    assert cache.max_items == 10
    assert cache.max_bytes == 100


def test_mixed_positional_and_keyword() -> None:
    cache = FlexCache("fifo", max_bytes=7)
    assert cache.eviction_policy == "fifo"
    assert cache.scan_interval == 0.0
    assert cache.max_items == 0
    assert cache.max_bytes == 7


def test_too_many_positional_arguments() -> None:
    with pytest.raises(TypeError):
        FlexCache("lru", 0.0, 0, 0, ManualClock())


def test_clock_is_keyword_only() -> None:
    clock = ManualClock()
    FlexCache(clock=clock)
    FlexCache("lru", 0.0, 0, 0, clock=clock)
    FlexCache(clock=None)


@pytest.mark.parametrize("bad", [object(), 0, "clock", 1.0])
def test_clock_of_wrong_type(bad: object) -> None:
    with pytest.raises(TypeError):
        FlexCache(clock=bad)


def test_unknown_keyword() -> None:
    with pytest.raises(TypeError):
        FlexCache(policy="lru")
    with pytest.raises(TypeError):
        FlexCache(maxitems=3)


def test_argument_given_twice() -> None:
    with pytest.raises(TypeError):
        FlexCache("lru", eviction_policy="fifo")
    with pytest.raises(TypeError):
        FlexCache("lru", 0.0, 5, max_items=5)


# --- eviction_policy -------------------------------------------------------------------------


@FORMS
@pytest.mark.parametrize("policy", POLICIES)
def test_policy_accepted(form: str, policy: str) -> None:
    cache = build(form, eviction_policy=policy)
    assert cache.eviction_policy == policy
    assert type(cache.eviction_policy) is str


def test_policy_str_subclass_accepted() -> None:
    cache = FlexCache(StrSub("fifo"))
    assert cache.eviction_policy == "fifo"


@FORMS
@pytest.mark.parametrize(
    "policy", ["", "LRU", "Lru", " lru", "lru ", "lru\x00", "lfu2", "mru", "least-recently-used"]
)
def test_policy_unknown_string_is_value_error_naming_choices(form: str, policy: str) -> None:
    with pytest.raises(ValueError) as info:
        build(form, eviction_policy=policy)
    message = str(info.value)
    for choice in POLICIES:
        assert f"'{choice}'" in message


@FORMS
@pytest.mark.parametrize("policy", [None, 0, 1, 1.5, b"lru", bytearray(b"lru"), ["lru"], True])
def test_policy_non_str_is_type_error(form: str, policy: object) -> None:
    with pytest.raises(TypeError):
        build(form, eviction_policy=policy)


# --- scan_interval ---------------------------------------------------------------------------


@FORMS
@pytest.mark.parametrize(
    "interval",
    [0, 0.0, -0.0, 1, 2.5, 1e-9, 10**6, 10**30, 1e300, math.inf, IntSub(3), FloatSub(0.25)],
)
def test_scan_interval_accepted(form: str, interval: float) -> None:
    cache = build(form, scan_interval=interval)
    assert cache.scan_interval == float(interval)
    assert type(cache.scan_interval) is float


@FORMS
@pytest.mark.parametrize("interval", [10**400, 2**1024], ids=["10**400", "2**1024"])
def test_scan_interval_int_beyond_float_range_accepted(form: str, interval: int) -> None:
    """An int >= 0 is a valid interval however large; it means "practically never"."""
    cache = build(form, scan_interval=interval)
    assert cache.scan_interval >= 1e300


@FORMS
@pytest.mark.parametrize("interval", [-1, -0.5, -1e-300, -math.inf, math.nan, -(10**30)])
def test_scan_interval_negative_or_nan_is_value_error(form: str, interval: float) -> None:
    with pytest.raises(ValueError):
        build(form, scan_interval=interval)


@FORMS
@pytest.mark.parametrize(
    "interval",
    [
        True,
        False,
        None,
        "1",
        "inf",
        b"1",
        [1],
        Decimal("1"),
        Fraction(1, 2),
        1j,
        timedelta(seconds=1),
        object(),
    ],
)
def test_scan_interval_bool_or_other_type_is_type_error(form: str, interval: object) -> None:
    with pytest.raises(TypeError):
        build(form, scan_interval=interval)


# --- max_items and max_bytes -------------------------------------------------------------------

LIMITS = pytest.mark.parametrize("limit", ["max_items", "max_bytes"])


@FORMS
@LIMITS
@pytest.mark.parametrize("value", [0, 1, 2, 1000, 2**32, I64_MAX, IntSub(5)])
def test_limit_accepted(form: str, limit: str, value: int) -> None:
    cache = build(form, **{limit: value})
    assert getattr(cache, limit) == value
    assert type(getattr(cache, limit)) is int


@FORMS
@LIMITS
@pytest.mark.parametrize("value", [-1, -2, -(2**31), -(2**63), -(2**64), -(10**30)])
def test_limit_negative_is_value_error(form: str, limit: str, value: int) -> None:
    with pytest.raises(ValueError):
        build(form, **{limit: value})


@FORMS
@LIMITS
@pytest.mark.parametrize("value", [I64_MAX + 1, 2**64, 2**64 + 1, 10**100])
def test_limit_too_large_is_overflow_or_value_error(form: str, limit: str, value: int) -> None:
    with pytest.raises((OverflowError, ValueError)):
        build(form, **{limit: value})


@FORMS
@LIMITS
@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        1.0,
        0.0,
        math.inf,
        math.nan,
        "1",
        b"1",
        None,
        [1],
        Decimal(1),
        Fraction(1),
        timedelta(seconds=1),
    ],
)
def test_limit_bool_float_or_other_type_is_type_error(form: str, limit: str, value: object) -> None:
    with pytest.raises(TypeError):
        build(form, **{limit: value})


# --- properties and repr -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["eviction_policy", "scan_interval", "max_items", "max_bytes", "items", "bytes"],
)
def test_properties_are_read_only(name: str) -> None:
    cache = FlexCache("fifo", 1.0, 3, 4)
    before = getattr(cache, name)
    with pytest.raises(AttributeError):
        setattr(cache, name, before)
    with pytest.raises(AttributeError):
        delattr(cache, name)
    assert getattr(cache, name) == before


def test_failed_construction_does_not_affect_other_caches() -> None:
    cache = FlexCache("fifo", max_items=2)
    with pytest.raises(ValueError):
        FlexCache("fifo", max_items=-1)
    cache.set("a", 1)
    assert cache.max_items == 2
    assert cache.get("a") == 1


def test_repr_shows_policy_limits_and_counts() -> None:
    cache = FlexCache("lru", 0.0, 987654, 8642097)
    for n in range(17):
        cache.set(f"key{n}", n)
    text = repr(cache)
    assert "lru" in text
    assert "987654" in text
    assert "8642097" in text
    assert "17" in text
    cache.set("one more", 1)
    assert "18" in repr(cache)


@pytest.mark.parametrize("policy", ["fifo", "random"])
def test_repr_shows_other_policies(policy: str) -> None:
    assert policy in repr(FlexCache(policy, max_items=31337))
    assert "31337" in repr(FlexCache(policy, max_items=31337))


def test_len_equals_items() -> None:
    cache = FlexCache()
    for n in range(5):
        assert len(cache) == cache.items == n
        cache.set(str(n), n)
    cache.delete("0")
    assert len(cache) == cache.items == 4
