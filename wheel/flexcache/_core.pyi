"""Type stubs for the native module ``flexcache._core``."""

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from os import PathLike
from types import GenericAlias, TracebackType
from typing import Any, Generic, Literal, TypeVar, final, overload

from _typeshed import SupportsRead, SupportsWrite

from flexcache._policy import EvictionPolicy
from flexcache._types import CacheStats, RemovalCause

__all__ = ["CachedCall", "FlexCache", "FlexCacheKeyIterator", "ManualClock", "TooLargeError"]

_K = TypeVar("_K")
_V = TypeVar("_V")
_T = TypeVar("_T")

_Ttl = timedelta | datetime | int | float | None
_Policy = Literal["lru", "fifo", "random", "lfu", "tinylfu"]
_Entries = Mapping[_K, _V] | Iterable[tuple[_K, _V]]
_Record = tuple[Any, Any, int, int | None, int]
_Target = str | PathLike[str] | SupportsWrite[bytes]
_Source = str | PathLike[str] | SupportsRead[bytes]

@final
class ManualClock:
    """A clock that only moves when told to, for tests of expiry.

    Monotonic time starts at 0 seconds; wall time starts at ``time.time()``
    when the clock is made and moves with it.
    """

    def __new__(cls) -> ManualClock: ...
    def advance(self, delta: timedelta | int | float) -> None:
        """Move time forward by ``delta`` (seconds or a timedelta, ``>= 0``)."""
    def step_wall(self, seconds: float) -> None:
        """Step the wall clock alone (either way); monotonic time stays."""
    def monotonic(self) -> float:
        """Seconds advanced since the clock was made."""
    def time(self) -> float:
        """The clock's wall time, in seconds since the Unix epoch."""
    def __reduce__(self) -> tuple[Callable[[int, float], ManualClock], tuple[int, float]]:
        """Pickles and copies as a new clock at the same times."""
    @staticmethod
    def _at(nanos: int, wall_origin: float) -> ManualClock:
        """A clock at monotonic ``nanos``, whose wall read ``wall_origin`` at 0."""

@final
class FlexCacheKeyIterator(Generic[_K]):
    """``iter(cache)``: the live keys when it was made; a change to the cache
    makes its next step raise ``RuntimeError``."""

    def __class_getitem__(cls, item: Any) -> GenericAlias: ...
    def __iter__(self) -> FlexCacheKeyIterator[_K]: ...
    def __next__(self) -> _K: ...

@final
class FlexCache(Generic[_K, _V]):
    """An in-memory cache keyed by any hashable object."""

    def __new__(
        cls,
        eviction_policy: _Policy | EvictionPolicy = "lru",
        scan_interval: float = 0.0,
        max_items: int = 0,
        max_bytes: int = 0,
        *,
        clock: ManualClock | None = None,
        weigher: Callable[[_K, _V], int] | None = None,
        on_remove: Callable[[_K, _V, RemovalCause], object] | None = None,
        thread_safe: bool | None = None,
        background_scan: float | None = None,
        _closer: Callable[[Any], object] | None = None,
    ) -> FlexCache[_K, _V]: ...
    def __init__(
        self,
        eviction_policy: _Policy | EvictionPolicy = "lru",
        scan_interval: float = 0.0,
        max_items: int = 0,
        max_bytes: int = 0,
        *,
        clock: ManualClock | None = None,
        weigher: Callable[[_K, _V], int] | None = None,
        on_remove: Callable[[_K, _V, RemovalCause], object] | None = None,
        thread_safe: bool | None = None,
        background_scan: float | None = None,
        _closer: Callable[[Any], object] | None = None,
    ) -> None: ...
    def __enter__(self) -> FlexCache[_K, _V]: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> Literal[False]: ...
    def __class_getitem__(cls, item: Any) -> GenericAlias: ...
    def __reduce__(
        self,
    ) -> tuple[Callable[..., FlexCache[_K, _V]], tuple[dict[str, Any], list[_Record]]]:
        """Pickles, copies and deep-copies the settings and the live entries."""
    def _settings(self) -> dict[str, Any]:
        """The constructor's keyword arguments that remake these settings."""
    def _snapshot(self) -> list[_Record]:
        """``(key, value, size, remaining_ns, uses)`` per live entry, in eviction order."""
    def _restore(self, records: Iterable[_Record]) -> None:
        """Files ``_snapshot()`` records into this cache, which must be empty."""
    def dump(self, target: _Target, *, serializer: Callable[[Any], bytes]) -> int:
        """Write every live entry and the settings to ``target`` (a path, written
        atomically, or a binary file); the number of entries written."""
    @classmethod
    def load(
        cls,
        source: _Source,
        *,
        deserializer: Callable[[bytes], Any],
        clock: ManualClock | None = None,
        **settings: Any,
    ) -> FlexCache[Any, Any]:
        """A new cache holding what ``dump`` wrote, less what has expired since;
        ``settings`` override the dumped ones."""
    def _store_made(self, key: _K, made: _V, ttl: _Ttl = None) -> _V:
        """``get_or_set``'s store, for a value made elsewhere (``flexcache.aio``)."""
    @staticmethod
    def _check_ttl(ttl: _Ttl = None) -> None:
        """Raises what ``set`` would raise for ``ttl``."""
    def set(self, key: _K, value: _V, ttl: _Ttl = None) -> None:
        """Store ``value`` under ``key``; ``KeyError`` if a live entry holds the key."""
    def put(self, key: _K, value: _V, ttl: _Ttl = None) -> None:
        """Store ``value`` under ``key``, replacing (and closing) a live entry's value."""
    @overload
    def get(self, key: _K, default: None = None) -> _V | None: ...
    @overload
    def get(self, key: _K, default: _V | _T) -> _V | _T: ...
    @overload
    def peek(self, key: _K, default: None = None) -> _V | None: ...
    @overload
    def peek(self, key: _K, default: _V | _T) -> _V | _T: ...
    @overload
    def pop(self, key: _K) -> _V: ...
    @overload
    def pop(self, key: _K, default: _V | _T) -> _V | _T: ...
    def get_or_set(self, key: _K, factory: Callable[[], _V], ttl: _Ttl = None) -> _V:
        """The live value of ``key``, or ``factory()``'s result, stored."""
    def delete(self, key: _K) -> bool:
        """Remove ``key``, closing its value; ``False`` if no live entry held it."""
    def touch(self, key: _K, ttl: _Ttl = None) -> bool:
        """Give a live entry a new ttl; ``False`` if no live entry holds ``key``."""
    def expires_in(self, key: _K) -> float | None:
        """Seconds until the live entry expires (``None``: never); ``KeyError`` if none."""
    def get_many(self, keys: Iterable[_K]) -> dict[_K, _V]:
        """``{key: value}`` for the live entries among ``keys``."""
    def set_many(
        self, entries: Mapping[_K, _V] | Iterable[tuple[_K, _V]], ttl: _Ttl = None
    ) -> None:
        """Store every entry, all or nothing, as ``set`` would."""
    def put_many(
        self, entries: Mapping[_K, _V] | Iterable[tuple[_K, _V]], ttl: _Ttl = None
    ) -> None:
        """Store every entry, all or nothing, as ``put`` would."""
    def delete_many(self, keys: Iterable[_K]) -> int:
        """Delete each key; the number of live entries removed."""
    def scan(self) -> None:
        """Reap every expired entry now, whatever ``scan_interval`` says."""
    def clear(self) -> None:
        """Remove every entry, closing each value."""
    def stats(self) -> CacheStats:
        """Counts since the cache was made or since ``reset_stats()``."""
    def reset_stats(self) -> None:
        """Start every count of ``stats()`` again from zero."""
    def keys(self) -> list[_K]:
        """The live keys, the next victim first (lru, fifo, lfu)."""
    def values(self) -> list[_V]:
        """The live values, in the order of ``keys()``."""
    @property
    def items(self) -> int:
        """Number of entries held (expired ones count until reaped)."""
    @property
    def bytes(self) -> int:
        """Sum of the sizes of the entries held."""
    @property
    def eviction_policy(self) -> str | EvictionPolicy: ...
    @property
    def scan_interval(self) -> float: ...
    @property
    def max_items(self) -> int: ...
    @property
    def max_bytes(self) -> int: ...
    @property
    def thread_safe(self) -> bool:
        """Whether every operation is atomic under the cache's own lock."""
    @property
    def background_scan(self) -> float | None:
        """Seconds between the background thread's scans, or None."""
    def __getitem__(self, key: _K, /) -> _V: ...
    def __setitem__(self, key: _K, value: _V, /) -> None: ...
    def __delitem__(self, key: _K, /) -> None: ...
    def __iter__(self) -> FlexCacheKeyIterator[_K]: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __sizeof__(self) -> int:
        """The object's size plus the native memory of its tables (not keys or values)."""

@final
class CachedCall:
    """``flexcache.cached``'s native hit path for a plain function with the default key."""

    def __new__(cls, cache: FlexCache[Any, Any], slow: Callable[..., Any]) -> CachedCall: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __get__(self, instance: object, owner: object = None, /) -> Any: ...
    def __reduce__(self) -> str: ...
    @property
    def hits(self) -> int:
        """Calls answered here, from the cache."""

class TooLargeError(ValueError):
    """A value larger than the cache's ``max_bytes`` on its own."""
