"""FlexCache: an in-memory cache with a Rust core.

Any hashable key, per-item TTL on a hierarchical timing wheel, exact LRU and
FIFO, random eviction, limits by item count and by units your values report
through ``item_size()`` (or a ``weigher``), ``close()`` called on every value
the cache lets go, and statistics.
"""

from flexcache._core import FlexCache, TooLargeError
from flexcache._decorators import CacheInfo, cached, cachedmethod
from flexcache._policy import EvictionPolicy
from flexcache._types import CacheStats, RemovalCause

__all__ = [
    "CacheInfo",
    "CacheStats",
    "EvictionPolicy",
    "FlexCache",
    "RemovalCause",
    "TooLargeError",
    "cached",
    "cachedmethod",
]
__version__ = "0.1.0"
