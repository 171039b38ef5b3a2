"""Differential test: FlexCache against cachetools on the same "get; on miss set" trace,
and on traces that also overwrite (``put``, ``cache[k] = v``) with int, float and tuple keys.

A seeded trace of Zipf-distributed keys (s = 1.1 over 20,000 keys) goes through a
cachetools cache and a FlexCache with the same policy and limit. Both are exact LRU or FIFO
with the same eviction rule (evict until the new item fits), so every lookup must hit or miss
on both alike: the hit/miss sequences are compared as bytes, a mismatch reports the first
differing index. Weighted variants limit the sum of per-key weights 1..10 (cachetools
``getsizeof`` against ``max_bytes`` and ``item_size()``).
"""

from __future__ import annotations

import functools
import itertools
import random
from bisect import bisect
from collections.abc import Callable, Sequence

import cachetools
import pytest
from flexcache import FlexCache

N_KEYS = 20_000
N_OPS = 200_000
ZIPF_S = 1.1
SEED = 20_240_601

KEYS = [f"key:{i}" for i in range(N_KEYS)]
_weights = [1.0 / (rank**ZIPF_S) for rank in range(1, N_KEYS + 1)]
ZIPF_CDF = list(itertools.accumulate(_weights))


@functools.cache
def zipf_trace(seed: int, n: int = N_OPS) -> tuple[int, ...]:
    """``n`` key indexes, Zipf-distributed, reproducible from ``seed``."""
    rng = random.Random(seed)
    total = ZIPF_CDF[-1]
    cdf = ZIPF_CDF
    last = N_KEYS - 1
    return tuple(min(bisect(cdf, rng.random() * total), last) for _ in range(n))


class Weighted:
    """A value whose ``item_size()`` is its key's weight."""

    __slots__ = ("weight",)

    def __init__(self, weight: int) -> None:
        self.weight = weight

    def item_size(self) -> int:
        return self.weight


def run_cachetools(
    cache: cachetools.Cache, trace: Sequence[int], values: list[object]
) -> bytearray:
    hits = bytearray(len(trace))
    missing = object()
    get = cache.get
    for i, k in enumerate(trace):
        key = KEYS[k]
        if get(key, missing) is missing:
            cache[key] = values[k]
        else:
            hits[i] = 1
    return hits


def run_flexcache(cache: FlexCache, trace: Sequence[int], values: list[object]) -> bytearray:
    hits = bytearray(len(trace))
    missing = object()
    get, set_ = cache.get, cache.set
    for i, k in enumerate(trace):
        key = KEYS[k]
        value = get(key, missing)
        if value is missing:
            set_(key, values[k])
        else:
            assert value is values[k]
            hits[i] = 1
    return hits


def first_difference(a: bytes, b: bytes) -> int | None:
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))


def compare(
    reference: cachetools.Cache,
    ours: FlexCache,
    trace: Sequence[int],
    values: list[object],
    our_size: Callable[[object], int],
) -> None:
    """Run the trace through both; ``our_size`` is what FlexCache counts for a value."""
    expected = run_cachetools(reference, trace, values)
    got = run_flexcache(ours, trace, values)
    where = first_difference(expected, got)
    assert where is None, (
        f"hit/miss differ first at op {where} (key {KEYS[trace[where]]!r}): cachetools "
        f"{'hit' if expected[where] else 'miss'}, FlexCache {'hit' if got[where] else 'miss'}"
    )
    hits_ref, hits_ours = sum(expected), sum(got)
    assert hits_ours / len(trace) == hits_ref / len(trace)
    # A Zipf trace on a cache much smaller than the key space: neither all hits nor all misses.
    assert 0.02 < hits_ours / len(trace) < 0.99, hits_ours / len(trace)
    # Same final contents, counts and sizes.
    held = set(reference.keys())
    assert ours.items == len(held) == len(reference)
    assert ours.bytes == sum(our_size(reference[k]) for k in held)
    present = {key for key in KEYS if key in ours}
    assert present == held


REFERENCE = {"lru": cachetools.LRUCache, "fifo": cachetools.FIFOCache}


@pytest.mark.parametrize("policy", ["lru", "fifo"])
@pytest.mark.parametrize("max_items", [100, 2_000])
def test_hits_match_cachetools_by_count(policy: str, max_items: int) -> None:
    trace = zipf_trace(SEED)
    values: list[object] = list(range(N_KEYS))
    reference = REFERENCE[policy](maxsize=max_items)
    ours = FlexCache(policy, max_items=max_items)
    compare(reference, ours, trace, values, lambda value: 1)


@pytest.mark.parametrize("policy", ["lru", "fifo"])
@pytest.mark.parametrize("max_bytes", [37, 5_000])
def test_hits_match_cachetools_by_weight(policy: str, max_bytes: int) -> None:
    rng = random.Random(SEED - max_bytes)
    weights = [rng.randint(1, 10) for _ in range(N_KEYS)]
    assert max(weights) <= max_bytes  # cachetools refuses an item larger than maxsize
    values: list[object] = [Weighted(w) for w in weights]
    trace = zipf_trace(SEED + 1)
    reference = REFERENCE[policy](maxsize=max_bytes, getsizeof=lambda value: value.weight)
    ours = FlexCache(policy, max_bytes=max_bytes)
    compare(reference, ours, trace, values, lambda value: value.weight)


@pytest.mark.parametrize("policy", ["lru", "fifo"])
def test_hits_match_cachetools_both_limits(policy: str) -> None:
    """Both limits at once: cachetools has one limit, so the item limit is made the binding
    one by weights that can never fill ``max_bytes`` before ``max_items`` is reached."""
    rng = random.Random(SEED + 7)
    weights = [rng.randint(1, 10) for _ in range(N_KEYS)]
    values: list[object] = [Weighted(w) for w in weights]
    trace = zipf_trace(SEED + 2)
    reference = REFERENCE[policy](maxsize=300)
    ours = FlexCache(policy, max_items=300, max_bytes=3_000)
    compare(reference, ours, trace, values, lambda value: value.weight)
    assert ours.bytes <= 3_000


# --------------------------------------------------------------------------- overwrites, key kinds

KEY_KINDS: dict[str, Callable[[int], object]] = {
    "str": lambda i: KEYS[i],
    "int": lambda i: i * 7_919 - 10**9,  # negative and positive, none of them small
    "float-int": lambda i: float(i) if i % 2 else i,  # 3 and 3.0 are one key, as in a dict
    "tuple": lambda i: (f"user:{i}", i),
    "nested": lambda i: (i % 7, (f"k{i}", b"x" * (i % 3)), None),
}


def overwrite_trace(seed: int) -> list[tuple[int, bool]]:
    """(key index, overwrite?) pairs: a Zipf key, and one op in five an unconditional store."""
    rng = random.Random(seed)
    return [(k, rng.random() < 0.2) for k in zipf_trace(seed, 60_000)]


@pytest.mark.parametrize("policy", ["lru", "fifo"])
@pytest.mark.parametrize("kind", sorted(KEY_KINDS))
@pytest.mark.parametrize("store", ["put", "setitem"])
def test_overwrites_and_key_kinds_match_cachetools(policy: str, kind: str, store: str) -> None:
    """cachetools' ``c[k] = v`` overwrites (and refreshes the key's place, under both LRU and
    FIFO): FlexCache's ``put`` and ``cache[k] = v`` must hit, miss and hold exactly alike, with
    int, mixed int/float and tuple keys as well as str."""
    make_key = KEY_KINDS[kind]
    keys = [make_key(i) for i in range(N_KEYS)]
    trace = overwrite_trace(SEED + len(kind))
    reference = REFERENCE[policy](maxsize=500)
    ours = FlexCache(policy, max_items=500)
    put = ours.put if store == "put" else ours.__setitem__
    expected, got = bytearray(len(trace)), bytearray(len(trace))
    missing = object()
    for i, (k, overwrite) in enumerate(trace):
        key, value = keys[k], (k, i)
        if overwrite:
            reference[key] = value
            put(key, value)
            continue
        theirs = reference.get(key, missing)
        mine = ours.get(key, missing)
        if theirs is missing:
            reference[key] = value
        else:
            expected[i] = 1
        if mine is missing:
            ours.set(key, value)
        else:
            got[i] = 1
            assert mine == theirs, (i, key)
    where = first_difference(expected, got)
    assert where is None, f"hit/miss differ first at op {where} (key {keys[trace[where][0]]!r})"
    assert 0.05 < sum(got) / len(trace) < 0.95
    assert len(ours) == len(reference)
    # Checked before items(), whose lookups reorder cachetools' LRU. cachetools iterates in
    # insertion order; its eviction order is a private OrderedDict, oldest first, as
    # FlexCache's keys() of a bounded lru/fifo cache is.
    order = getattr(reference, f"_{type(reference).__name__}__order", None)
    if order is not None:
        assert list(ours.keys()) == list(order)
    assert dict(zip(ours.keys(), ours.values(), strict=True)) == dict(reference.items())
