"""`EvictionPolicy`: the base class of eviction policies written in Python."""

from __future__ import annotations

from collections.abc import Hashable


class EvictionPolicy:
    """A policy that chooses which live entry a full cache lets go.

    Pass an instance as ``FlexCache(eviction_policy=...)``. The cache calls
    these methods outside its own structures (and outside the lock of a
    thread-safe cache), each at most once per entry event:

    - ``on_insert(key)`` after an entry is stored (a ``put`` over a live key
      first tells ``on_remove`` of the entry it replaced);
    - ``on_access(key)`` after a hit (``get``, ``cache[key]``, ``get_many``,
      ``get_or_set``); ``in``, ``peek`` and misses are not accesses;
    - ``on_remove(key)`` after an entry leaves for any reason: eviction,
      expiry, ``delete``, ``pop``, replacement, ``clear``;
    - ``victim()`` when a live entry must go to make room for a store
      (expired entries have gone first): return the key of a live entry
      other than one being stored. It goes at once (``on_remove`` follows),
      and ``victim()`` is asked again while more room is needed.

    An exception from ``on_insert``, ``on_access`` or ``on_remove`` goes to
    ``sys.unraisablehook``; one from ``victim()``, or a wrong answer
    (``ValueError``), stops the store, which then raises and stores nothing.
    Every method here does nothing; ``victim()`` answers ``None``, which is
    never a live key, so a subclass must choose.
    """

    def on_insert(self, key: Hashable) -> None:
        """An entry under ``key`` was stored."""

    def on_access(self, key: Hashable) -> None:
        """A lookup of ``key`` found its live entry."""

    def on_remove(self, key: Hashable) -> None:
        """The entry under ``key`` left the cache."""

    def victim(self) -> Hashable:
        """The key of the live entry to let go next."""
        return None
