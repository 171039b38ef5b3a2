"""Helpers for testing code that uses FlexCache.

The cache reads time in Rust, so freezegun and time-machine cannot move it.
Pass a :class:`ManualClock` instead and move time yourself::

    from datetime import timedelta
    from flexcache import FlexCache
    from flexcache.testing import ManualClock

    clock = ManualClock()
    cache = FlexCache(clock=clock)
    cache.set("k", "v", ttl=timedelta(seconds=5))
    clock.advance(5)
    assert cache.get("k") is None
"""

from flexcache._core import ManualClock

__all__ = ["ManualClock"]
