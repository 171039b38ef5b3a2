"""A Django cache backend on FlexCache: ``flexcache.contrib.django.FlexCacheBackend``.

```
CACHES = {
    "default": {
        "BACKEND": "flexcache.contrib.django.FlexCacheBackend",
        "LOCATION": "main",
        "TIMEOUT": 300,
        "OPTIONS": {"eviction_policy": "lru", "MAX_ENTRIES": 10_000},
    }
}
```

What it promises (the README's "Django" section says it at more length):

- Django's whole ``BaseCache`` interface with Django's timeout semantics: a timeout left
  out is the backend's ``TIMEOUT``, ``None`` never expires, ``0`` or a negative number
  stores nothing and removes what the key held.
- Values are stored pickled (``pickle.HIGHEST_PROTOCOL``), as every Django backend stores
  them: what ``get`` returns is a fresh copy, and mutating it changes nothing cached.
- Backends made for one ``LOCATION`` share one thread-safe FlexCache (Django makes a
  backend per thread and per alias); ``close()``, which Django calls after each request,
  keeps the entries.
- Bounds, either Django's or FlexCache's: ``MAX_ENTRIES``/``CULL_FREQUENCY`` cull as
  Django's local-memory backend does (at ``MAX_ENTRIES`` entries, a store of a new key
  first deletes ``len // CULL_FREQUENCY`` of them, the policy's next victims first; ``0``
  clears); or ``max_items``, FlexCache's own eviction of one entry at a time, exactly at
  the limit. ``max_bytes`` bounds the bytes of the pickled values, by FlexCache's eviction.
- Writes take the store's lock, reads do not: ``incr`` is a read, an add and a write, and
  FlexCache has no compare-and-swap, so every write waits for it to finish; a read is one
  FlexCache call, atomic under ``thread_safe=True``.
"""

from __future__ import annotations

import math
import pickle
import random
import threading
from collections.abc import Iterable, Mapping
from typing import Any

try:
    from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
    from django.core.exceptions import ImproperlyConfigured
except ImportError as error:  # pragma: no cover - exercised only without Django
    raise ImportError(
        "flexcache.contrib.django needs Django (pip install django); the rest of flexcache does not"
    ) from error

from flexcache._core import FlexCache, TooLargeError
from flexcache._policy import EvictionPolicy

__all__ = ["FlexCacheBackend"]

_MISSING: Any = object()
# A timeout of 0 or less: the value is not stored, and the key's old value goes.
_EXPIRED: Any = object()

# The OPTIONS that go to FlexCache's constructor as they are.
_FLEXCACHE_OPTIONS = (
    "eviction_policy",
    "scan_interval",
    "max_items",
    "max_bytes",
    "thread_safe",
    "background_scan",
    "clock",
)
# Django's own culling options, which the backend carries out itself.
_CULL_OPTIONS = ("MAX_ENTRIES", "CULL_FREQUENCY")
# Policies whose keys() lists the next victims first, so a cull can take them from the
# front; 'random' culls a uniform sample. 'tinylfu' and policies written in Python pick a
# victim by a contest at the store that needs room, which a cull of many cannot ask for.
_ORDERED_POLICIES = ("lru", "fifo", "lfu")
_CULLING_POLICIES = (*_ORDERED_POLICIES, "random")
# Under Django's culling the FlexCache gets this item limit: never reached (the cull keeps
# the cache at MAX_ENTRIES or a little over), but a cache with a limit keeps its eviction
# order, which an unbounded one does not (it iterates in slot order).
_ORDER_KEEPING_LIMIT = 2**63 - 1


def _pickled_size(key: object, value: bytes) -> int:
    """``max_bytes`` counts the bytes of the pickled value (one shared function, so two
    backends' settings compare equal)."""
    return len(value)


class _Store:
    """One LOCATION's FlexCache, the lock its writers take, and the settings it was made
    with (a second backend for the LOCATION must ask for the same)."""

    __slots__ = ("cache", "lock", "settings")

    def __init__(self, cache: FlexCache[Any, bytes], settings: dict[str, Any]) -> None:
        self.cache = cache
        self.lock = threading.Lock()
        self.settings = settings


# Kept for the life of the process, as Django's local-memory stores are: a server that runs
# each request in a new thread makes a new backend for each, and they must find the data.
_stores: dict[str, _Store] = {}
_stores_lock = threading.Lock()


def _store_for(location: str, settings: dict[str, Any]) -> _Store:
    with _stores_lock:
        store = _stores.get(location)
        if store is None:
            try:
                cache: FlexCache[Any, bytes] = FlexCache(**settings)
            except (TypeError, ValueError, OverflowError) as error:
                raise ImproperlyConfigured(
                    f"FlexCacheBackend {location!r}: OPTIONS refused by FlexCache: {error}"
                ) from error
            store = _stores[location] = _Store(cache, settings)
        elif store.settings != settings:
            differ = sorted(
                name
                for name in settings.keys() | store.settings.keys()
                if settings.get(name) != store.settings.get(name)
            )
            raise ImproperlyConfigured(
                f"FlexCacheBackend: LOCATION {location!r} is already a FlexCache made with "
                f"other settings ({', '.join(differ)} differ); backends of one LOCATION "
                "share one FlexCache, so give them the same OPTIONS or another LOCATION"
            )
        return store


def _int_option(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ImproperlyConfigured(
            f"FlexCacheBackend OPTIONS {name!r} must be an int, not {type(value).__name__}"
        )
    if value < minimum:
        raise ImproperlyConfigured(f"FlexCacheBackend OPTIONS {name!r} must be >= {minimum}")
    return value


class FlexCacheBackend(BaseCache):
    """Django's cache interface over one FlexCache shared by the backends of a LOCATION."""

    pickle_protocol = pickle.HIGHEST_PROTOCOL

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        timeout = params.get("timeout", params.get("TIMEOUT", 300))
        # BaseCache turns a TIMEOUT it cannot read into 300 without a word; refuse it.
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float)
        ):
            raise ImproperlyConfigured(
                "FlexCacheBackend TIMEOUT must be a number of seconds or None, "
                f"not {type(timeout).__name__}"
            )
        super().__init__(params)
        options = dict(params.get("OPTIONS") or {})
        unknown = sorted(set(options) - {*_FLEXCACHE_OPTIONS, *_CULL_OPTIONS}, key=str)
        if unknown:
            raise ImproperlyConfigured(
                f"FlexCacheBackend OPTIONS: unknown {', '.join(map(repr, unknown))}; "
                f"known: {', '.join((*_FLEXCACHE_OPTIONS, *_CULL_OPTIONS))}"
            )
        settings = {name: options[name] for name in _FLEXCACHE_OPTIONS if name in options}
        settings.setdefault("thread_safe", True)
        if not isinstance(settings["thread_safe"], bool):
            # FlexCache's own message for this one does not name the argument.
            raise ImproperlyConfigured(
                "FlexCacheBackend OPTIONS 'thread_safe' must be True or False, "
                f"not {type(settings['thread_safe']).__name__}"
            )
        policy = settings.get("eviction_policy", "lru")

        self._max_entries: int | None
        if "max_items" in settings:
            given = [name for name in _CULL_OPTIONS if name in options]
            if given:
                raise ImproperlyConfigured(
                    f"FlexCacheBackend OPTIONS: {' and '.join(given)} with max_items; give "
                    "MAX_ENTRIES (Django's culling) or max_items (FlexCache's eviction)"
                )
            self._max_entries = None
        else:
            max_entries = options.get("MAX_ENTRIES", 300)
            if max_entries is None:
                self._max_entries = None
            else:
                self._max_entries = _int_option("MAX_ENTRIES", max_entries, 1)
                # Another string or type is FlexCache's to refuse, with its own message.
                if policy == "tinylfu" or isinstance(policy, EvictionPolicy):
                    raise ImproperlyConfigured(
                        f"FlexCacheBackend OPTIONS eviction_policy {policy!r} cannot order a "
                        "MAX_ENTRIES cull (it picks one victim by a contest at each store): "
                        f"give max_items instead, or MAX_ENTRIES None, or a policy among "
                        f"{', '.join(_CULLING_POLICIES)}"
                    )
                settings["max_items"] = _ORDER_KEEPING_LIMIT
        self._cull_frequency = _int_option("CULL_FREQUENCY", options.get("CULL_FREQUENCY", 3), 0)
        if settings.get("max_bytes"):
            settings["weigher"] = _pickled_size
        self._ordered_cull = policy in _ORDERED_POLICIES

        store = _store_for(location, settings)
        self._store = store
        self._cache = store.cache
        self._lock = store.lock

    @property
    def flexcache(self) -> FlexCache[Any, bytes]:
        """The FlexCache underneath (shared by the backends of this LOCATION); its values
        are the pickled bytes."""
        return self._cache

    def stats(self) -> Any:
        """The shared FlexCache's ``stats()``: hits and misses of ``get``/``get_many``, ..."""
        return self._cache.stats()

    # --- helpers; the ones named _locked_* expect the store's lock held ---

    def _ttl(self, timeout: Any) -> Any:
        """A Django timeout as a FlexCache ttl: None (forever), seconds, or _EXPIRED."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return None
        if isinstance(timeout, bool):
            timeout = int(timeout)
        if isinstance(timeout, int | float):
            if timeout <= 0:
                return _EXPIRED
            if math.isinf(timeout):
                return None
        # Refuse a bad timeout (wrong type, NaN) here, before the lock and before any cull.
        FlexCache._check_ttl(timeout)
        return timeout

    def _locked_make_room(self) -> None:
        """Django's culling, before a new key is stored: at MAX_ENTRIES entries, delete
        len // CULL_FREQUENCY of them, the policy's next victims first (0: all of them)."""
        max_entries = self._max_entries
        cache = self._cache
        if max_entries is None or len(cache) < max_entries:
            return
        # Expired entries still count in len() until reaped: reap them before deleting
        # live entries, as FlexCache's own eviction does (Django's locmem counts them).
        cache.scan()
        held = len(cache)
        if held < max_entries:
            return
        if self._cull_frequency == 0:
            cache.clear()
            return
        count = held // self._cull_frequency
        if count == 0:
            return
        keys = cache.keys()
        victims = keys[:count] if self._ordered_cull else random.sample(keys, count)
        cache.delete_many(victims)

    def _locked_store(self, key: Any, pickled: bytes, ttl: Any) -> bool:
        """``set`` of one made key; False when the value is larger than max_bytes (then
        the key's old value goes, as memcached does, so no stale value is served)."""
        cache = self._cache
        if ttl is _EXPIRED:
            cache.delete(key)
            return True
        if key not in cache:
            self._locked_make_room()
        try:
            cache.put(key, pickled, ttl)
        except TooLargeError:
            cache.delete(key)
            return False
        return True

    # --- BaseCache ---

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        key = self.make_and_validate_key(key, version=version)
        pickled = pickle.dumps(value, self.pickle_protocol)
        ttl = self._ttl(timeout)
        with self._lock:
            cache = self._cache
            if key in cache:
                return False
            if ttl is _EXPIRED:
                # Django's backends report an add with timeout 0 as done (it expired at once).
                return True
            self._locked_make_room()
            try:
                cache.set(key, pickled, ttl)
            except TooLargeError:
                return False
            return True

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        pickled = self._cache.get(key, _MISSING)
        if pickled is _MISSING:
            return default
        return pickle.loads(pickled)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        key = self.make_and_validate_key(key, version=version)
        # Pickled before the lock: pickling runs the value's own code, which may be slow
        # or use this cache.
        pickled = pickle.dumps(value, self.pickle_protocol)
        ttl = self._ttl(timeout)
        with self._lock:
            self._locked_store(key, pickled, ttl)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        ttl = self._ttl(timeout)
        with self._lock:
            if ttl is _EXPIRED:
                return self._cache.delete(key)
            return self._cache.touch(key, ttl)

    def delete(self, key: Any, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        with self._lock:
            return self._cache.delete(key)

    def has_key(self, key: Any, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return key in self._cache

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        cache = self._cache
        with self._lock:
            pickled = cache.get(key, _MISSING)
            if pickled is _MISSING:
                raise ValueError(f"Key '{key}' not found")
            new_value = pickle.loads(pickled) + delta
            new_pickled = pickle.dumps(new_value, self.pickle_protocol)
            try:
                # Read last, so the new value keeps the old deadline to within the
                # microseconds until put (memcached and locmem keep it too).
                ttl = cache.expires_in(key)
            except KeyError:
                raise ValueError(f"Key '{key}' not found (it expired)") from None
            try:
                cache.put(key, new_pickled, ttl)
            except TooLargeError:
                cache.delete(key)
                raise
        return new_value

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        made = {self.make_and_validate_key(key, version=version): key for key in keys}
        found = self._cache.get_many(made)
        return {made[key]: pickle.loads(pickled) for key, pickled in found.items()}

    def set_many(
        self,
        data: Mapping[Any, Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[Any]:
        ttl = self._ttl(timeout)
        entries = [
            (
                self.make_and_validate_key(key, version=version),
                key,
                pickle.dumps(value, self.pickle_protocol),
            )
            for key, value in data.items()
        ]
        failed = []
        with self._lock:
            for made, key, pickled in entries:
                if not self._locked_store(made, pickled, ttl):
                    failed.append(key)
        return failed

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        made = [self.make_and_validate_key(key, version=version) for key in keys]
        with self._lock:
            self._cache.delete_many(made)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def close(self, **kwargs: Any) -> None:
        """Django calls this after every request: the entries stay (it is a cache in this
        process's memory, not a connection)."""

    # The async variants call the sync methods directly. BaseCache's defaults hop to a
    # thread through sync_to_async (thread_sensitive: all behind one thread), which costs
    # far more than an in-memory step that never waits on I/O; a write waits at most for
    # another thread's write. Calling self.<method> keeps a subclass's override of the
    # sync method in force for its async twin. aget_or_set, adecr, aincr_version and
    # adecr_version are BaseCache's, built on these.

    async def aadd(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return self.add(key, value, timeout, version)

    async def aget(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self.get(key, default, version)

    async def aset(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        return self.set(key, value, timeout, version)

    async def atouch(
        self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return self.touch(key, timeout, version)

    async def adelete(self, key: Any, version: int | None = None) -> bool:
        return self.delete(key, version)

    async def aget_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        return self.get_many(keys, version)

    async def aset_many(
        self,
        data: Mapping[Any, Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[Any]:
        return self.set_many(data, timeout, version)

    async def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        return self.delete_many(keys, version)

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        return self.has_key(key, version)

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        return self.incr(key, delta, version)

    async def aclear(self) -> None:
        return self.clear()

    async def aclose(self, **kwargs: Any) -> None:
        return self.close(**kwargs)
