"""What pickles, copies and dumps of a FlexCache are made again with.

``FlexCache.__reduce__`` (in Rust) hands ``_rebuild`` the constructor's
keyword arguments and one record per live entry; pickle and ``copy`` call
it by name, so it stays here, importable, under this name.
"""

from __future__ import annotations

from typing import Any

from flexcache._core import FlexCache, ManualClock


def _rebuild(settings: dict[str, Any], records: list[tuple[Any, ...]]) -> FlexCache[Any, Any]:
    """A cache made with ``settings`` (through the constructor and its checks),
    holding ``records`` as ``FlexCache._snapshot()`` made them."""
    cache: FlexCache[Any, Any] = FlexCache(**settings)
    cache._restore(records)
    return cache


def _manual_clock(nanos: int, wall_origin: float) -> ManualClock:
    """A ManualClock at monotonic ``nanos``, its wall at ``wall_origin`` then."""
    return ManualClock._at(nanos, wall_origin)
