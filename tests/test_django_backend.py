"""flexcache.contrib.django.FlexCacheBackend: Django's cache interface over FlexCache.

Django's own BaseCacheTests run against it in tests/django_suite/run.py; these cover what
that suite does not pin down: our timeout mapping under a ManualClock, the OPTIONS and their
refusals, the LOCATION sharing, Django's cull arithmetic per policy, incr under threads, the
async twins. Skipped as a whole where Django is not installed (CI installs it).
"""

from __future__ import annotations

import asyncio
import itertools
import pickle
import subprocess
import sys
import threading
from typing import Any

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(USE_TZ=True)

from django.core.cache import CacheHandler  # noqa: E402
from django.core.cache.backends.base import DEFAULT_TIMEOUT, CacheKeyWarning  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from flexcache.contrib.django import FlexCacheBackend  # noqa: E402
from flexcache.testing import ManualClock  # noqa: E402

BACKEND = "flexcache.contrib.django.FlexCacheBackend"
_locations = itertools.count()


def new_location() -> str:
    """Backends of one LOCATION share one FlexCache for the life of the process: each test
    takes LOCATIONs of its own."""
    return f"test-django-backend-{next(_locations)}"


def backend(location: str | None = None, **params: Any) -> FlexCacheBackend:
    return FlexCacheBackend(new_location() if location is None else location, params)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# --- timeouts ---


def test_default_timeout_is_300_seconds(clock: ManualClock) -> None:
    cache = backend(OPTIONS={"clock": clock})
    cache.set("k", "v")
    assert cache.flexcache.expires_in(cache.make_key("k")) == 300.0
    clock.advance(299.9)
    assert cache.get("k") == "v"
    clock.advance(0.2)
    assert cache.get("k") is None


def test_timeout_from_settings_and_default_timeout_argument(clock: ManualClock) -> None:
    cache = backend(TIMEOUT=10, OPTIONS={"clock": clock})
    assert cache.default_timeout == 10
    cache.set("a", 1)
    cache.set("b", 2, timeout=DEFAULT_TIMEOUT)
    assert cache.add("c", 3)
    cache.set_many({"d": 4})
    clock.advance(9.5)
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert cache.touch("a")  # back to the default: 10 s from now
    clock.advance(1)
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1}
    clock.advance(9)
    assert cache.get("a") is None


def test_timeout_none_is_forever(clock: ManualClock) -> None:
    cache = backend(TIMEOUT=10, OPTIONS={"clock": clock})
    cache.set("k", "v", timeout=None)
    assert cache.add("a", 1, None)
    cache.set("t", "v", timeout=5)
    assert cache.touch("t", timeout=None)
    clock.advance(10**9)
    assert cache.get_many(["k", "a", "t"]) == {"k": "v", "a": 1, "t": "v"}
    forever = backend(TIMEOUT=None, OPTIONS={"clock": clock})
    assert forever.default_timeout is None
    forever.set("k", "v")
    assert forever.flexcache.expires_in(forever.make_key("k")) is None


@pytest.mark.parametrize("timeout", [0, -1, -0.5, 0.0])
def test_zero_or_negative_timeout_stores_nothing_and_removes_the_old_value(
    timeout: float,
) -> None:
    cache = backend()
    cache.set("k", "old")
    cache.set("k", "new", timeout)
    assert cache.get("k") is None and not cache.has_key("k")
    assert len(cache.flexcache) == 0
    # add reports it done (the value expired at once), as Django's own backends do...
    assert cache.add("a", 1, timeout) is True
    assert cache.get("a") is None
    # ...but not over a live key, which stays.
    cache.set("live", "v")
    assert cache.add("live", "other", timeout) is False
    assert cache.get("live") == "v"
    cache.set_many({"live": "x", "m": 2}, timeout)
    assert cache.get_many(["live", "m"]) == {}
    cache.set("t", "v")
    assert cache.touch("t", timeout) is True
    assert cache.get("t") is None
    assert cache.touch("t", timeout) is False


def test_float_and_huge_timeouts(clock: ManualClock) -> None:
    cache = backend(OPTIONS={"clock": clock})
    cache.set("f", 1, 0.5)
    cache.set("huge", 2, 10**12)
    cache.set("inf", 3, float("inf"))
    assert cache.flexcache.expires_in(cache.make_key("inf")) is None
    clock.advance(0.5)
    assert cache.get_many(["f", "huge", "inf"]) == {"huge": 2, "inf": 3}


def test_bad_timeout_argument_changes_nothing() -> None:
    cache = backend(OPTIONS={"MAX_ENTRIES": 1})
    cache.set("a", 1)
    with pytest.raises(TypeError):
        cache.set("b", 2, timeout="soon")
    with pytest.raises(ValueError):
        cache.set_many({"b": 2}, timeout=float("nan"))
    assert cache.get("a") == 1  # no cull ran for a refused set


def test_incr_and_decr_keep_the_deadline(clock: ManualClock) -> None:
    cache = backend(OPTIONS={"clock": clock})
    cache.set("n", 1, timeout=10)
    clock.advance(4)
    assert cache.incr("n") == 2
    assert cache.decr("n", 5) == -3
    assert cache.flexcache.expires_in(cache.make_key("n")) == pytest.approx(6.0)
    clock.advance(6)
    with pytest.raises(ValueError, match="not found"):
        cache.incr("n")


# --- OPTIONS ---


def test_options_reach_the_flexcache() -> None:
    cache = backend(
        OPTIONS={
            "eviction_policy": "fifo",
            "max_items": 5,
            "max_bytes": 1000,
            "scan_interval": 2.5,
        }
    )
    fc = cache.flexcache
    assert (fc.eviction_policy, fc.max_items, fc.max_bytes, fc.scan_interval) == (
        "fifo",
        5,
        1000,
        2.5,
    )
    assert fc.thread_safe is True  # Django serves requests from threads
    assert cache._max_entries is None  # max_items: FlexCache evicts, Django's cull is off


def test_thread_safe_and_background_scan_options() -> None:
    assert backend(OPTIONS={"thread_safe": False}).flexcache.thread_safe is False
    scanned = backend(OPTIONS={"background_scan": 0.5})
    assert scanned.flexcache.background_scan == 0.5


def test_max_entries_keeps_the_eviction_order_without_a_flexcache_limit() -> None:
    cache = backend(OPTIONS={"MAX_ENTRIES": 30})
    assert cache._max_entries == 30 and cache._cull_frequency == 3
    assert cache.flexcache.max_items == 2**63 - 1
    assert backend(OPTIONS={"MAX_ENTRIES": None}).flexcache.max_items == 0


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"OPTIONS": {"max_itemz": 3}}, "max_itemz"),
        ({"OPTIONS": {"max_items": -1}}, "max_items"),
        ({"OPTIONS": {"max_items": 1.5}}, "max_items"),
        ({"OPTIONS": {"max_bytes": "big"}}, "max_bytes"),
        ({"OPTIONS": {"eviction_policy": "mru"}}, "eviction_policy"),
        ({"OPTIONS": {"eviction_policy": 3}}, "eviction_policy"),
        ({"OPTIONS": {"thread_safe": "yes"}}, "thread_safe"),
        ({"OPTIONS": {"clock": 1}}, "clock"),
        ({"OPTIONS": {"scan_interval": -1}}, "scan_interval"),
        ({"OPTIONS": {"thread_safe": False, "background_scan": 1}}, "background_scan"),
        ({"OPTIONS": {"MAX_ENTRIES": "300"}}, "MAX_ENTRIES"),
        ({"OPTIONS": {"MAX_ENTRIES": 0}}, "MAX_ENTRIES"),
        ({"OPTIONS": {"MAX_ENTRIES": True}}, "MAX_ENTRIES"),
        ({"OPTIONS": {"CULL_FREQUENCY": -1}}, "CULL_FREQUENCY"),
        ({"OPTIONS": {"CULL_FREQUENCY": None}}, "CULL_FREQUENCY"),
        ({"OPTIONS": {"MAX_ENTRIES": 10, "max_items": 10}}, "MAX_ENTRIES"),
        ({"OPTIONS": {"eviction_policy": "tinylfu"}}, "tinylfu"),
        ({"TIMEOUT": "five"}, "TIMEOUT"),
    ],
)
def test_bad_settings_are_improperly_configured_naming_the_option(
    params: dict[str, Any], named: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=named):
        backend(**params)


def test_a_python_policy_under_culling_is_refused() -> None:
    from flexcache import EvictionPolicy

    class Newest(EvictionPolicy):
        def __init__(self) -> None:
            self.keys: list[Any] = []

        def on_insert(self, key: Any) -> None:
            self.keys.append(key)

        def on_remove(self, key: Any) -> None:
            self.keys.remove(key)

        def victim(self) -> Any:
            return self.keys[-1]

    with pytest.raises(ImproperlyConfigured, match="max_items"):
        backend(OPTIONS={"eviction_policy": Newest()})
    cache = backend(OPTIONS={"eviction_policy": Newest(), "max_items": 2})
    cache.set_many({"a": 1, "b": 2})
    cache.set("c", 3)  # the newest held ("b") goes
    assert cache.get_many(["a", "b", "c"]) == {"a": 1, "c": 3}


def test_tinylfu_with_max_items() -> None:
    cache = backend(OPTIONS={"eviction_policy": "tinylfu", "max_items": 100})
    cache.set("k", "v")
    assert cache.get("k") == "v"


def test_one_location_with_other_settings_is_refused() -> None:
    location = new_location()
    backend(location, OPTIONS={"max_items": 10})
    backend(location, OPTIONS={"max_items": 10})  # the same settings: shared
    with pytest.raises(ImproperlyConfigured, match="max_items"):
        backend(location, OPTIONS={"max_items": 20})
    # Django's own options are the backend's, not the FlexCache's: they may differ.
    other = new_location()
    backend(other, OPTIONS={"MAX_ENTRIES": 10})
    backend(other, OPTIONS={"MAX_ENTRIES": 20, "CULL_FREQUENCY": 0})


# --- what is stored ---


def test_values_are_stored_pickled() -> None:
    cache = backend()
    value = {"list": [1, 2]}
    cache.set("k", value)
    value["list"].append(3)  # the caller's object: the cached copy does not change
    got = cache.get("k")
    assert got == {"list": [1, 2]}
    got["list"].append(4)  # a copy that get returned: neither
    assert cache.get("k") == {"list": [1, 2]}
    assert cache.get("k") is not cache.get("k")
    stored = cache.flexcache.get(cache.make_key("k"))
    assert isinstance(stored, bytes)
    assert pickle.loads(stored) == {"list": [1, 2]}


def test_an_unpicklable_value_raises_and_stores_nothing() -> None:
    cache = backend()
    with pytest.raises((TypeError, AttributeError, pickle.PicklingError)):
        cache.set("k", lambda: None)
    with pytest.raises((TypeError, AttributeError, pickle.PicklingError)):
        cache.set_many({"a": 1, "b": lambda: None})
    assert cache.get_many(["k", "a", "b"]) == {}


def test_max_bytes_counts_pickled_bytes_and_a_too_large_value_is_not_stored() -> None:
    cache = backend(OPTIONS={"max_bytes": 200, "max_items": 100})
    cache.set("small", "x")
    assert cache.flexcache.bytes == len(pickle.dumps("x", pickle.HIGHEST_PROTOCOL))
    cache.set("small", "y" * 1000)  # too large: not stored, and the old value goes
    assert cache.get("small") is None
    assert cache.add("big", "z" * 1000) is False
    assert cache.set_many({"ok": 1, "big": "z" * 1000}) == ["big"]
    assert cache.get_many(["ok", "big"]) == {"ok": 1}


# --- keys: versions, prefixes, validation ---


def test_versions_and_key_prefix() -> None:
    location = new_location()
    plain = backend(location)
    prefixed = backend(location, KEY_PREFIX="p", VERSION=2)
    assert plain.make_key("k") == ":1:k" and prefixed.make_key("k") == "p:2:k"
    plain.set("k", "plain")
    prefixed.set("k", "prefixed")
    assert plain.get("k") == "plain" and prefixed.get("k") == "prefixed"
    plain.set("k", "v3", version=3)
    assert plain.get("k", version=3) == "v3" and plain.get("k") == "plain"
    assert plain.incr_version("k") == 2
    assert plain.get("k") is None and plain.get("k", version=2) == "plain"
    assert len(plain.flexcache) == 3  # one FlexCache under both backends


def test_custom_key_function() -> None:
    cache = backend(KEY_FUNCTION=lambda key, prefix, version: f"{key}@{version}")
    cache.set("k", 1)
    assert cache.flexcache.keys() == ["k@1"]


@pytest.mark.parametrize(
    ("operation", "args"),
    [
        ("add", ("bad key", 1)),
        ("get", ("bad key",)),
        ("set", ("bad key", 1)),
        ("touch", ("bad key",)),
        ("delete", ("bad key",)),
        ("has_key", ("bad key",)),
        ("get_many", (["bad key"],)),
        ("set_many", ({"bad key": 1},)),
        ("delete_many", (["bad key"],)),
    ],
)
def test_keys_memcached_would_refuse_warn(operation: str, args: tuple[Any, ...]) -> None:
    cache = backend()
    with pytest.warns(CacheKeyWarning, match="memcached"):
        getattr(cache, operation)(*args)


# --- culling (Django's MAX_ENTRIES / CULL_FREQUENCY arithmetic) ---


def fill(cache: FlexCacheBackend, count: int) -> int:
    """Django's cull case: sets cull1..cull{count - 1}, then counts how many are left."""
    for n in range(1, count):
        cache.set(f"cull{n}", "value", 1000)
    return sum(cache.has_key(f"cull{n}") for n in range(1, count))


@pytest.mark.parametrize("policy", ["lru", "fifo", "lfu", "random"])
def test_cull_arithmetic(policy: str) -> None:
    # 30 entries, a new key: 30 // 3 = 10 go, 21 left; ... 49 keys leave 29.
    assert fill(backend(OPTIONS={"MAX_ENTRIES": 30, "eviction_policy": policy}), 50) == 29
    zero = backend(OPTIONS={"MAX_ENTRIES": 30, "CULL_FREQUENCY": 0, "eviction_policy": policy})
    assert fill(zero, 50) == 19  # at 30: everything goes, then 19 more keys
    one = backend(OPTIONS={"MAX_ENTRIES": 10, "CULL_FREQUENCY": 1, "eviction_policy": policy})
    assert fill(one, 12) == 1  # at 10: 10 // 1 go


def test_cull_when_max_entries_is_below_cull_frequency() -> None:
    # 2 // 3 == 0: nothing to cull until the cache holds 3 (Django's locmem does the same).
    cache = backend(OPTIONS={"MAX_ENTRIES": 2, "CULL_FREQUENCY": 3})
    for n in range(10):
        cache.set(n, n)
        assert len(cache.flexcache) <= 3


def test_lru_cull_takes_the_least_recently_used() -> None:
    cache = backend(OPTIONS={"MAX_ENTRIES": 9})
    for key in range(9):
        cache.set(key, key)
    for key in range(6):
        assert cache.get(key) == key
    cache.set(9, 9)  # 9 // 3 = 3 go: 6, 7, 8, read least recently
    assert cache.get_many(range(10)) == {k: k for k in (0, 1, 2, 3, 4, 5, 9)}
    cache.set(6, 6)
    cache.set(7, 7)
    assert len(cache.flexcache) == 9
    cache.set(0, "again")  # a set of a held key at MAX_ENTRIES culls nothing
    assert len(cache.flexcache) == 9


def test_fifo_cull_takes_the_oldest() -> None:
    cache = backend(OPTIONS={"MAX_ENTRIES": 9, "eviction_policy": "fifo"})
    for key in range(9):
        cache.set(key, key)
    for key in range(6):
        cache.get(key)
    cache.set(9, 9)
    assert sorted(cache.get_many(range(10))) == [3, 4, 5, 6, 7, 8, 9]


def test_cull_reaps_expired_entries_before_live_ones(clock: ManualClock) -> None:
    cache = backend(OPTIONS={"MAX_ENTRIES": 6, "clock": clock, "scan_interval": float("inf")})
    for key in range(3):
        cache.set(key, key, timeout=1)
    for key in range(3, 6):
        cache.set(key, key, timeout=None)
    clock.advance(2)
    assert len(cache.flexcache) == 6  # expired, not reaped yet
    cache.set(6, 6)
    assert cache.get_many(range(7)) == {3: 3, 4: 4, 5: 5, 6: 6}


def test_max_entries_changed_on_the_instance_is_read_at_each_set() -> None:
    cache = backend(OPTIONS={"MAX_ENTRIES": 30})
    cache._max_entries = -1  # what Django's test_cull_delete_when_store_empty does
    cache.set("k", "v")
    assert cache.has_key("k")


def test_max_items_evicts_one_at_a_time() -> None:
    cache = backend(OPTIONS={"max_items": 30})
    assert fill(cache, 50) == 30


# --- threads ---


def test_incr_is_atomic_under_threads() -> None:
    location = new_location()
    backend(location).set("n", 0)
    per_thread, threads = 300, 8

    def work(n: int) -> None:
        cache = backend(location)  # as Django does: a backend per thread, one FlexCache
        for _ in range(per_thread):
            if n % 2:
                cache.incr("n", 2)
                cache.decr("n")
            else:
                cache.incr("n")

    run = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in run:
        thread.start()
    for thread in run:
        thread.join(timeout=60)
    assert backend(location).get("n") == threads * per_thread


def test_add_has_one_winner_under_threads() -> None:
    location = new_location()
    wins: list[int] = []
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        cache = backend(location)
        barrier.wait()
        if cache.add("k", n):
            wins.append(n)

    run = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in run:
        thread.start()
    for thread in run:
        thread.join(timeout=60)
    assert len(wins) == 1 and backend(location).get("k") == wins[0]


def test_django_makes_a_backend_per_thread_and_they_share_the_entries() -> None:
    location = new_location()
    handler = CacheHandler({"default": {"BACKEND": BACKEND, "LOCATION": location}})
    handler["default"].set("k", "main thread")
    seen: list[Any] = []

    def other() -> None:
        mine = handler["default"]
        seen.append(mine is not main and mine.get("k"))

    main = handler["default"]
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == ["main thread"]


def test_close_keeps_the_entries() -> None:
    cache = backend()
    cache.set("k", "v")
    cache.close()
    asyncio.run(cache.aclose())
    assert cache.get("k") == "v"


def test_stats_of_the_shared_flexcache() -> None:
    cache = backend()
    cache.set("k", "v")
    cache.get("k")
    cache.get("nope")
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.sets) == (1, 1, 1)


# --- async ---


def test_async_variants() -> None:
    cache = backend()

    async def main() -> None:
        await cache.aset("k", "v")
        assert await cache.aget("k") == "v"
        assert await cache.aget("nope", "default") == "default"
        assert await cache.aadd("k", "other") is False
        assert await cache.aadd("n", 1) is True
        assert await cache.aincr("n", 10) == 11
        assert await cache.adecr("n") == 10
        assert await cache.ahas_key("n") is True
        assert await cache.aset_many({"a": 1, "b": 2}) == []
        assert await cache.aget_many(["a", "b", "c"]) == {"a": 1, "b": 2}
        assert await cache.atouch("a", None) is True
        assert await cache.adelete("a") is True
        await cache.adelete_many(["b"])
        assert await cache.aget_or_set("g", lambda: "made") == "made"
        assert await cache.aget_or_set("g", "ignored") == "made"
        assert await cache.aincr_version("g") == 2
        assert await cache.aget("g", version=2) == "made"
        await cache.aclear()
        assert await cache.aget_many(["k", "n", "g"]) == {}

    asyncio.run(main())


def test_get_or_set_goes_through_add() -> None:
    class Refusing(FlexCacheBackend):
        def add(self, *args: Any, **kwargs: Any) -> bool:
            return False  # as if another caller added first

    cache = Refusing(new_location(), {})
    assert cache.get_or_set("k", "default") == "default"
    assert cache.get("k") is None


def test_importing_flexcache_does_not_import_django() -> None:
    code = "import sys, flexcache, flexcache.contrib; assert 'django' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
