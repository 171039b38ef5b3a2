"""FlexCache: an in-memory cache with a Rust core.

Per-item TTL on a hierarchical timing wheel, exact LRU and FIFO, random
eviction, limits by item count and by units your values report through
``item_size()``, and ``close()`` called on every value the cache lets go.
"""

from flexcache._core import FlexCache

__all__ = ["FlexCache"]
__version__ = "0.1.0"
