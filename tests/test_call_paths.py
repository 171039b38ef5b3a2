"""`get`, `set` and `delete` have two entry points (see src/py/fastcall.rs).

Positional calls (and `set`'s `ttl=`) take a hand-written fast entry; other
keywords or a wrong number of arguments go to pyo3's generated wrapper. These tests hold
the two to the same behaviour: results, errors, the method metadata, and
the moment values are released.
"""

from __future__ import annotations

import gc
import inspect
import sys
import weakref
from datetime import datetime, timedelta, tzinfo

import pytest
from flexcache import FlexCache


class Value:
    """A value that can be weakly referenced and has no close()."""


@pytest.fixture
def cache() -> FlexCache:
    cache = FlexCache(max_items=10)
    cache.set("a", 1)
    return cache


def test_get_every_call_shape(cache: FlexCache) -> None:
    marker = object()
    assert cache.get("a") == 1
    assert cache.get("a", marker) == 1
    assert cache.get("a", default=marker) == 1
    assert cache.get(key="a") == 1
    assert cache.get(key="a", default=marker) == 1
    assert cache.get(default=marker, key="a") == 1
    assert cache.get("b") is None
    assert cache.get("b", marker) is marker
    assert cache.get("b", None) is None
    assert cache.get("b", default=marker) is marker
    assert cache.get(key="b", default=marker) is marker
    assert FlexCache.get(cache, "a") == 1
    assert FlexCache.get(cache, "b", marker) is marker


def test_delete_every_call_shape(cache: FlexCache) -> None:
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    cache.set("a", 2)
    assert cache.delete(key="a") is True
    assert cache.delete(key="a") is False
    cache.set("a", 3)
    assert FlexCache.delete(cache, "a") is True
    assert FlexCache.delete(cache, "a") is False


def test_set_every_call_shape(clock) -> None:
    cache = FlexCache(clock=clock)
    cache.set("p2", 1)
    cache.set("p3", 2, 10)
    cache.set("kw_ttl", 3, ttl=10)
    cache.set("p3_none", 4, None)
    cache.set("kw_none", 5, ttl=None)
    cache.set("kw_value", value=6, ttl=10)
    cache.set(key="kw_all", value=7, ttl=10)
    cache.set(ttl=10, value=8, key="kw_reordered")
    cache.set("kw_runtime_name", 9, **{"".join(["t", "t", "l"]): 10})
    FlexCache.set(cache, "unbound", 10, 10)
    assert cache.items == 10
    clock.advance(10)
    cache.scan()
    assert sorted(
        k for k in ("p2", "p3", "kw_ttl", "p3_none", "kw_none", "kw_value", "kw_all") if k in cache
    ) == ["kw_none", "p2", "p3_none"]
    assert cache.items == 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.set("k"), "missing 1 required positional argument: 'value'"),
        (lambda c: c.set("k", 1, 2, 3), "takes from 2 to 3 positional arguments"),
        (lambda c: c.set("k", 1, 2, ttl=2), "multiple values for argument 'ttl'"),
        (lambda c: c.set("k", 1, tll=2), "unexpected keyword argument 'tll'"),
        (lambda c: c.set("k", 1, ttl=2, extra=1), "unexpected keyword argument 'extra'"),
        (lambda c: c.set([1], 1), "unhashable type: 'list'"),
        (lambda c: c.set([1], 1, ttl=5), "unhashable type: 'list'"),
        (lambda c: c.set("k", 1, -1), "ttl must be > 0"),
        (lambda c: c.set("k", 1, ttl="5"), "ttl must be"),
        (lambda c: c.set("a", 1), "'a'"),
    ],
)
def test_bad_sets_raise_and_change_nothing(cache: FlexCache, call: object, message: str) -> None:
    with pytest.raises((TypeError, ValueError, KeyError), match=message):
        call(cache)  # type: ignore[operator]
    assert cache.items == 1
    assert "k" not in cache
    assert cache.get("a") == 1


@pytest.mark.parametrize("keyword", [False, True])
def test_refused_set_releases_the_value_before_returning(keyword: bool) -> None:
    cache = FlexCache(max_bytes=5)
    cache.set("k", 1)
    value = Value()
    alive = weakref.ref(value)
    with pytest.raises(KeyError):
        if keyword:
            cache.set("k", value, ttl=None)
        else:
            cache.set("k", value)
    del value
    assert alive() is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.get(), "missing 1 required positional argument: 'key'"),
        (lambda c: c.get("a", None, None), "takes from 1 to 2 positional arguments"),
        (lambda c: c.get("a", key="a"), "multiple values for argument 'key'"),
        (lambda c: c.get("a", dflt=1), "unexpected keyword argument 'dflt'"),
        (lambda c: c.delete(), "missing 1 required positional argument: 'key'"),
        (lambda c: c.delete("a", "b"), "takes 1 positional argument"),
        (lambda c: c.delete(k="a"), "unexpected keyword argument 'k'"),
        (lambda c: c.get([1]), "unhashable type: 'list'"),
        (lambda c: c.get(bytearray(b"a"), 1), "unhashable type: 'bytearray'"),
        (lambda c: c.delete({}), "unhashable type: 'dict'"),
        (lambda c: c.get(key=[1]), "unhashable type: 'list'"),
        (lambda c: c.delete(key=("a", [1])), "unhashable type: 'list'"),
    ],
)
def test_bad_calls_raise_type_error_and_change_nothing(
    cache: FlexCache, call: object, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        call(cache)  # type: ignore[operator]
    assert cache.items == 1
    assert cache.get("a") == 1


@pytest.mark.parametrize("name", ["get", "set", "delete"])
def test_unbound_method_checks_self(name: str) -> None:
    method = getattr(FlexCache, name)
    with pytest.raises(TypeError, match="FlexCache"):
        method(object(), "a")
    with pytest.raises(TypeError):
        method()


def test_method_metadata_is_kept() -> None:
    assert FlexCache.get.__name__ == "get"
    assert FlexCache.delete.__name__ == "delete"
    assert FlexCache.set.__name__ == "set"
    assert FlexCache.get.__qualname__ == "FlexCache.get"
    assert "default" in (FlexCache.get.__doc__ or "")
    assert str(inspect.signature(FlexCache.get)) == "(self, /, key, default=None)"
    assert str(inspect.signature(FlexCache.delete)) == "(self, /, key)"
    assert str(inspect.signature(FlexCache.set)) == "(self, /, key, value, ttl=None)"
    assert type(FlexCache.get).__name__ == "method_descriptor"
    assert "get" in dir(FlexCache())


def test_bound_methods_work_when_stored() -> None:
    cache = FlexCache()
    get, delete = cache.get, cache.delete
    cache.set("k", "v")
    assert get("k") == "v"
    assert delete("k") is True
    assert get("k", 0) == 0


@pytest.mark.parametrize("keyword", [False, True])
def test_delete_releases_the_value_before_returning(keyword: bool) -> None:
    cache = FlexCache()
    value = Value()
    alive = weakref.ref(value)
    cache.set("k", value)
    del value
    assert cache.delete(key="k") if keyword else cache.delete("k")
    assert alive() is None


@pytest.mark.parametrize("keyword", [False, True])
def test_get_reaping_an_expired_entry_releases_it_before_returning(keyword: bool, clock) -> None:
    cache = FlexCache(clock=clock)
    value = Value()
    alive = weakref.ref(value)
    cache.set("k", value, ttl=1)
    del value
    clock.advance(2)
    assert (cache.get(key="k") if keyword else cache.get("k")) is None
    assert alive() is None


# The same body runs behind the fast entry (positional arguments) and behind pyo3's
# wrapper (a call shape the fast entry hands on); both must release what they let go
# before the call returns.
SHAPES = pytest.mark.parametrize("shape", ["fast", "wrapper"])


def _set(cache: FlexCache, shape: str, key: str, value: object, ttl: object = None) -> None:
    if shape == "fast":
        cache.set(key, value, ttl)
    else:
        cache.set(key, value=value, ttl=ttl)


@SHAPES
def test_set_evicting_releases_the_victim_before_returning(shape: str) -> None:
    cache = FlexCache(max_items=1)
    value = Value()
    alive = weakref.ref(value)
    cache.set("victim", value)
    del value
    _set(cache, shape, "new", 1)
    assert "victim" not in cache
    assert alive() is None


@SHAPES
def test_set_too_large_releases_the_value_before_returning(shape: str) -> None:
    class Large:
        def item_size(self) -> int:
            return 10

    cache = FlexCache(max_bytes=5)
    value = Large()
    alive = weakref.ref(value)
    with pytest.raises(ValueError, match="larger than max_bytes"):
        _set(cache, shape, "k", value)
    del value
    assert alive() is None


class Discarded(ValueError):
    """An error the ttl conversion catches and drops (weakly referenceable, unlike builtins)."""


class OffsetOnceZone(tzinfo):
    """A zone whose `utcoffset()` answers once, then raises `Discarded`.

    Its datetime in year 9999 makes `set` read the offset, then call `timestamp()`,
    which raises; the conversion then counts days instead and drops the error.
    """

    def __init__(self) -> None:
        self.answered = False
        self.raised: list[weakref.ref[Discarded]] = []

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if not self.answered:
            self.answered = True
            return timedelta(0)
        raise self._new_error()

    def _new_error(self) -> Discarded:
        # Made here, not as a local of `utcoffset`, whose frame the traceback keeps.
        error = Discarded("no offset this time")
        self.raised.append(weakref.ref(error))
        return error

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


@SHAPES
def test_set_releases_an_error_it_discards_before_returning(shape: str) -> None:
    cache = FlexCache()
    zone = OffsetOnceZone()
    _set(cache, shape, "k", 1, datetime(9999, 12, 31, tzinfo=zone))
    assert zone.raised
    assert [ref() for ref in zone.raised] == [None] * len(zone.raised)
    assert cache.items == 1


def test_failed_calls_leak_no_references(cache: FlexCache) -> None:
    key = [12345678]
    default = object()
    before = sys.getrefcount(key), sys.getrefcount(default)
    for _ in range(1000):
        with pytest.raises(TypeError):
            cache.get(key, default)
        with pytest.raises(TypeError):
            cache.delete(key)
    gc.collect()
    assert (sys.getrefcount(key), sys.getrefcount(default)) == before


def test_hits_and_misses_leak_no_references() -> None:
    cache = FlexCache(max_items=10)
    key = "".join(["k", "e", "y"])
    value, default = object(), object()
    cache.set(key, value)
    before = [sys.getrefcount(o) for o in (key, value, default)]
    for _ in range(1000):
        assert cache.get(key, default) is value
        assert cache.get("other", default) is default
        assert cache.get(key) is value
    assert [sys.getrefcount(o) for o in (key, value, default)] == before
