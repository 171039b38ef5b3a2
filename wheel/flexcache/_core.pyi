"""Type stubs for the native module ``flexcache._core``."""

from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, final, overload

__all__ = ["FlexCache", "ManualClock"]

_T = TypeVar("_T")

_Ttl = timedelta | datetime | int | float | None

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

@final
class FlexCache:
    """An in-memory cache keyed by ``str``."""

    def __new__(
        cls,
        eviction_policy: Literal["lru", "fifo", "random"] = "lru",
        scan_interval: float = 0.0,
        max_items: int = 0,
        max_bytes: int = 0,
        *,
        clock: ManualClock | None = None,
    ) -> FlexCache: ...
    def set(self, key: str, value: Any, ttl: _Ttl = None) -> None:
        """Store ``value`` under ``key``; ``KeyError`` if a live entry holds the key."""
    @overload
    def get(self, key: str) -> Any | None: ...
    @overload
    def get(self, key: str, default: _T) -> Any | _T: ...
    def delete(self, key: str) -> bool:
        """Remove ``key``, closing its value; ``False`` if no live entry held it."""
    def scan(self) -> None:
        """Reap every expired entry now, whatever ``scan_interval`` says."""
    def clear(self) -> None:
        """Remove every entry, closing each value."""
    @property
    def items(self) -> int:
        """Number of entries held (expired ones count until reaped)."""
    @property
    def bytes(self) -> int:
        """Sum of the sizes of the entries held."""
    @property
    def eviction_policy(self) -> str: ...
    @property
    def scan_interval(self) -> float: ...
    @property
    def max_items(self) -> int: ...
    @property
    def max_bytes(self) -> int: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __sizeof__(self) -> int:
        """The object's size plus the native memory of its tables (not keys or values)."""
