"""The plain-Python types of the API: statistics and removal causes.

They are defined here rather than in Rust so that they are ordinary Python
classes (a named tuple, a str enum) that pickle, compare and print as users
expect; the native module imports them when it first needs one.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["CacheStats", "RemovalCause"]


class CacheStats(NamedTuple):
    """A snapshot of a cache's counts since it was made or since ``reset_stats()``."""

    hits: int
    misses: int
    sets: int
    evictions: int
    rejections: int
    expirations: int
    deletions: int
    close_errors: int

    @property
    def hit_ratio(self) -> float:
        """``hits / (hits + misses)``, or ``0.0`` before any lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


class RemovalCause(str, enum.Enum):
    """Why an entry left the cache, as ``on_remove`` is told."""

    EXPLICIT = "explicit"
    """``delete``, ``del cache[key]``, ``pop``, ``delete_many``."""
    REPLACED = "replaced"
    """``put`` over a live entry, or ``get_or_set``'s discarded result."""
    EXPIRED = "expired"
    """Its ttl ran out and a scan or a lookup reaped it."""
    SIZE = "size"
    """Evicted by the policy to make room (or refused by admission)."""
    CLEARED = "cleared"
    """``clear()``."""

    def __str__(self) -> str:
        return self.value
