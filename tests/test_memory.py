"""Memory the cache holds: nothing left behind per call, and what `sys.getsizeof` reports.

SPEC "Memory and the garbage collector": once an entry is gone, the cache holds no
reference to its key or its value. The fast entries of `get`, `set` and `delete`
(src/py/fastcall.rs) must release at once whatever their bodies drop, errors they
build and discard included, without waiting for a later call through pyo3's own
wrapper (`len`, `in`, `scan`) to drain pyo3's deferred reference pool.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest
from flexcache import FlexCache

PAIRS = 100_000
# Blocks a run of 100k calls may leave behind (interpreter noise); a leak of one
# object per call leaves a hundred times more.
BLOCK_TOLERANCE = 1_000


@pytest.fixture
def no_automatic_gc() -> Iterator[None]:
    """Counts of allocated blocks without a collection running in the middle."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "ttl",
    # Each makes the ttl conversion build an error and discard it: an int out of
    # u64, and a datetime so early that `timestamp()` overflows.
    [2**64, 10**30, datetime.min],
    ids=["2**64", "10**30", "naive-datetime.min"],
)
def test_set_and_delete_hold_no_memory_per_call(ttl: object, no_automatic_gc: None) -> None:
    cache = FlexCache()
    set_, delete = cache.set, cache.delete
    for _ in range(1_000):
        set_("k", None, ttl)
        delete("k")
    before = sys.getallocatedblocks()
    for _ in range(PAIRS):
        set_("k", None, ttl)
        delete("k")
    grown = sys.getallocatedblocks() - before
    assert grown < BLOCK_TOLERANCE


def test_get_holds_no_memory_per_call(no_automatic_gc: None) -> None:
    cache = FlexCache()
    cache.set("k", "v", 2**64)
    get = cache.get
    for _ in range(1_000):
        get("k")
        get("missing", 0)
    before = sys.getallocatedblocks()
    for _ in range(PAIRS):
        get("k")
        get("missing", 0)
    assert sys.getallocatedblocks() - before < BLOCK_TOLERANCE


# --- sys.getsizeof ------------------------------------------------------------------------------

ENTRIES = 100_000


def _filled(entries: int) -> FlexCache:
    cache = FlexCache(max_items=entries, max_bytes=10 * entries)
    for i in range(entries):
        cache.set(f"key:{i}", i, 3600)
    return cache


def test_getsizeof_counts_the_native_memory() -> None:
    empty = sys.getsizeof(FlexCache())
    assert empty > sys.getsizeof(object())
    small = sys.getsizeof(_filled(1_000))
    large = sys.getsizeof(_filled(ENTRIES))
    assert empty < small < large
    # An entry's slot and its index bucket take tens of bytes of native memory.
    assert large - empty > 32 * ENTRIES


def test_getsizeof_is_an_int_and_does_not_change_the_cache() -> None:
    cache = _filled(10)
    size = cache.__sizeof__()
    assert isinstance(size, int)
    assert sys.getsizeof(cache) >= size
    assert cache.items == 10
    assert cache.__sizeof__() == size


def test_clear_gives_the_memory_back() -> None:
    empty = sys.getsizeof(FlexCache(max_items=ENTRIES, max_bytes=10 * ENTRIES))
    cache = _filled(ENTRIES)
    cache.clear()
    assert cache.items == 0
    # As `dict.clear()` does: back to about the size of a cache never filled.
    assert sys.getsizeof(cache) - empty < 64 * 1024
