"""Shared fixtures for the FlexCache test suite.

Values
    ``tracker(name, size=None, on_close=None)`` makes a :class:`Closable` value.
    Every ``close()`` call is counted on the value (``value.closes``) and logged
    by name, in order, in ``tracker.closed``. With ``size`` given the value also
    has ``item_size()`` (calls counted in ``value.size_calls``); without it the
    value has no ``item_size`` attribute at all, so the cache must count it as 1.
    ``tracker.sized(name, size)`` always has ``item_size()``, returning ``size`` as is.
    The tracker keeps no reference to the values it makes (the GC tests rely on
    that).

Time
    ``clock`` is a fresh :class:`flexcache.testing.ManualClock`; no test sleeps
    to make an entry expire.

Tracked expectations (importable: ``from conftest import Expect, Val, filled, MISSING``)
    ``Expect(cache)`` records what a test believes the cache holds; ``verify()`` then checks
    the cache against it: ``items`` equals the number of live keys, ``bytes`` the sum of
    their sizes, every tracked key ``get``-able as its value and every other key absent.
    ``Val(name, size)`` is a value whose ``item_size()`` returns (or raises) ``size``, with a
    counted ``close()``; ``filled()`` is a cache at its item limit holding a, b, c.

Unraisable errors
    ``unraisable`` installs a recording ``sys.unraisablehook`` for one test and
    returns the list of ``UnraisableHookArgs`` it received (as plain tuples of
    ``(exc_type, exc_value, object)``). Tests that do not ask for it run under
    pytest's own hook, which turns any unraisable error into a failing warning.

Consistency
    ``check`` is a function ``check(cache)`` that asserts the invariants SPEC
    states for every cache at rest: ``len == items``, counts non-negative, and
    the configured limits respected.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator

import pytest
from flexcache import FlexCache
from flexcache.testing import ManualClock

#: Every built-in eviction policy, for the suites that must hold under each.
POLICIES = ("lru", "fifo", "random", "lfu", "tinylfu")


class Closable:
    """A cache value that records every call of its ``close()``."""

    def __init__(
        self,
        name: str,
        tracker: Tracker,
        on_close: Callable[[Closable], object] | None = None,
    ) -> None:
        self.name = name
        self.closes = 0
        self._tracker = tracker
        self._on_close = on_close

    def close(self) -> None:
        self.closes += 1
        self._tracker.closed.append(self.name)
        if self._on_close is not None:
            self._on_close(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} closes={self.closes}>"


class SizedClosable(Closable):
    """A :class:`Closable` that also reports ``item_size()``."""

    def __init__(
        self,
        name: str,
        tracker: Tracker,
        size: object,
        on_close: Callable[[Closable], object] | None = None,
        on_size: Callable[[SizedClosable], object] | None = None,
    ) -> None:
        super().__init__(name, tracker, on_close)
        self.size = size
        self.size_calls = 0
        self._on_size = on_size

    def item_size(self) -> object:
        self.size_calls += 1
        if self._on_size is not None:
            self._on_size(self)
        return self.size


class Tracker:
    """Factory of :class:`Closable` values and log of their ``close()`` calls."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    def __call__(
        self,
        name: str = "v",
        size: object = None,
        *,
        on_close: Callable[[Closable], object] | None = None,
        on_size: Callable[[SizedClosable], object] | None = None,
    ) -> Closable:
        if size is None and on_size is None:
            return Closable(name, self, on_close)
        return SizedClosable(name, self, 1 if size is None else size, on_close, on_size)

    def sized(
        self,
        name: str,
        size: object,
        *,
        on_close: Callable[[Closable], object] | None = None,
    ) -> SizedClosable:
        """A value whose ``item_size()`` returns ``size`` whatever it is, ``None`` included."""
        return SizedClosable(name, self, size, on_close)

    def count(self, name: str) -> int:
        """How many times a value called ``name`` was closed."""
        return self.closed.count(name)


@pytest.fixture
def tracker() -> Tracker:
    return Tracker()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[tuple[type, BaseException, object]]:
    reports: list[tuple[type, BaseException, object]] = []

    def hook(args: sys.UnraisableHookArgs) -> None:
        reports.append((args.exc_type, args.exc_value, args.object))

    monkeypatch.setattr(sys, "unraisablehook", hook)
    return reports


def check_cache(cache: FlexCache) -> None:
    assert len(cache) == cache.items
    assert cache.items >= 0
    assert cache.bytes >= 0
    if cache.max_items:
        assert cache.items <= cache.max_items
    if cache.max_bytes:
        assert cache.bytes <= cache.max_bytes


@pytest.fixture
def check() -> Callable[[FlexCache], None]:
    return check_cache


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads far more often than usual, to provoke interleavings."""
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(saved)


class ShiftedStr(str):
    """A str subclass with a hash unlike the plain str's and an ``==`` that says yes to
    anything: the cache must identify it by its text alone (test_keys, test_hashable_keys)."""

    def __hash__(self) -> int:
        return str.__hash__(self) ^ 0x5F5F

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False


# --- Tracked expectations (the tests moved from test_adversarial.py use them) ---

MISSING = object()


class Expect:
    """What a test believes the cache holds: key -> (value, size)."""

    def __init__(self, cache: FlexCache) -> None:
        self.cache = cache
        self.live: dict[str, tuple[object, int]] = {}

    def add(self, key: str, value: object, size: int = 1) -> None:
        self.live[key] = (value, size)

    def remove(self, key: str) -> None:
        del self.live[key]

    def set(self, key: str, value: object, size: int = 1, **kwargs: object) -> None:
        self.cache.set(key, value, **kwargs)
        self.add(key, value, size)

    def verify(self, absent: Iterable[str] = ()) -> None:
        cache = self.cache
        check_cache(cache)
        assert cache.items == len(self.live), (cache, sorted(self.live))
        assert cache.bytes == sum(size for _, size in self.live.values())
        for key, (value, _) in self.live.items():
            assert key in cache, key
            assert cache.get(key, MISSING) is value, key
        for key in absent:
            if key not in self.live:
                assert key not in cache, key
                assert cache.get(key, MISSING) is MISSING, key


class Val:
    """A value whose ``item_size()`` returns (or raises) ``size``, with a counted ``close()``."""

    def __init__(
        self,
        name: str,
        size: object = 1,
        on_close: Callable[[Val], object] | None = None,
    ) -> None:
        self.name = name
        self.size = size
        self.size_calls = 0
        self.closes = 0
        self.on_close = on_close

    def item_size(self) -> object:
        self.size_calls += 1
        if isinstance(self.size, BaseException):
            raise self.size
        return self.size

    def close(self) -> None:
        self.closes += 1
        if self.on_close is not None:
            self.on_close(self)

    def __repr__(self) -> str:
        return f"<Val {self.name} closes={self.closes}>"


def filled(max_items: int = 3, max_bytes: int = 0, **kwargs: object) -> tuple[Expect, list[Val]]:
    """A cache at its item limit with values a, b, c of size 1 (oldest first)."""
    cache = FlexCache("lru", max_items=max_items, max_bytes=max_bytes, **kwargs)
    expect = Expect(cache)
    values = [Val(name, 1) for name in "abc"]
    for value in values:
        expect.set(value.name, value, 1)
    return expect, values


def run_threads(target: Callable[[int], None], count: int = 8) -> None:
    """Runs ``target(n)`` for ``n`` in ``range(count)``, each in its own thread, and joins
    them, failing on a thread that hangs."""
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a thread hangs: deadlock?"
