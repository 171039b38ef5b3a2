"""``AsyncFlexCache``: a FlexCache for asyncio code, which awaits ``aclose()``.

Every method that can let a value go is a coroutine. Before it returns, it awaits
``aclose()`` of each value it let go (or calls ``close()`` when the value has no
``aclose()``), in the order they left; errors go to ``sys.unraisablehook``. The cache
underneath is a plain ``FlexCache`` (``.sync``), made with the same arguments, whose
closing is handed to this wrapper.

``get_or_set(key, factory)`` takes a coroutine function or a plain one and is
single-flight among the tasks of one event loop: callers that miss on one key at the same
time run one ``factory()``; the others await it and get its result or its exception
(then nothing is stored). A cancelled caller does not cancel the shared computation while
others still wait for it; when the last one is cancelled, the computation is cancelled
too, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Generic, TypeVar

from flexcache._aclose import aclose_reporting, close_reporting, report_never_awaited
from flexcache._core import FlexCache
from flexcache._flights import SharedTask
from flexcache._types import CacheStats, RemovalCause
from flexcache.testing import ManualClock

_Ttl = timedelta | datetime | int | float | None
_K = TypeVar("_K")
_V = TypeVar("_V")
_MISSING: Any = object()

__all__ = ["AsyncFlexCache"]


class AsyncFlexCache(Generic[_K, _V]):
    """A FlexCache whose releasing methods are coroutines that await ``aclose()``."""

    def __init__(
        self,
        eviction_policy: str = "lru",
        scan_interval: float = 0.0,
        max_items: int = 0,
        max_bytes: int = 0,
        *,
        clock: ManualClock | None = None,
        weigher: Callable[[_K, _V], int] | None = None,
        on_remove: Callable[[_K, _V, RemovalCause], object] | None = None,
        thread_safe: bool | None = None,
        background_scan: float | None = None,
    ) -> None:
        self._local = threading.local()
        self._on_remove = on_remove
        # The loop of the latest call: where a value let go outside any call (by the
        # background scan thread, say) has its aclose() scheduled.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flights: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, SharedTask]]
        self._flights = weakref.WeakKeyDictionary()
        self.sync: FlexCache[_K, _V] = FlexCache(
            eviction_policy,  # type: ignore[arg-type]
            scan_interval,
            max_items,
            max_bytes,
            clock=clock,
            weigher=weigher,
            on_remove=on_remove,
            thread_safe=thread_safe,
            background_scan=background_scan,
            _closer=self._let_go,
        )

    # ------------------------------------------------------------------ closing

    def _let_go(self, value: object) -> None:
        """The cache's closer: collect for the call in progress, or close now."""
        pending: list[object] | None = getattr(self._local, "pending", None)
        if pending is not None:
            pending.append(value)
        else:
            self._close_outside_a_call(value)

    def _close_outside_a_call(self, value: object) -> None:
        aclose = getattr(value, "aclose", None)
        if aclose is None:
            close_reporting(value, _CLOSE_FAILED)
            return
        loop = self._loop
        if loop is not None and loop.is_running() and not loop.is_closed():
            future = asyncio.run_coroutine_threadsafe(aclose_reporting(value, _ACLOSE_FAILED), loop)
            del future  # the loop holds the task until it ends
            return
        if getattr(value, "close", None) is not None:
            close_reporting(value, _CLOSE_FAILED)
            return
        report_never_awaited(
            value,
            "an AsyncFlexCache let the value go outside any call, with no running event loop "
            "to await it on",
        )

    @contextlib.contextmanager
    def _collecting(self) -> Iterator[list[object]]:
        """Collects, for the call made inside, the values the cache lets go."""
        released: list[object] = []
        outer = getattr(self._local, "pending", None)
        self._local.pending = released
        try:
            yield released
        finally:
            self._local.pending = outer

    async def _call(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)`` on the cache; then, whether it returned or raised, the values it
        let go are closed, in the order they left, awaiting each ``aclose()``."""
        self._loop = asyncio.get_running_loop()
        released: list[object] = []
        try:
            with self._collecting() as released:
                return call(*args)
        finally:
            await _close_all(released)

    def _sync_call(self, call: Callable[..., Any], *args: Any) -> Any:
        """For the few methods that are not coroutines: what they let go is closed now."""
        released: list[object] = []
        try:
            with self._collecting() as released:
                return call(*args)
        finally:
            for value in released:
                self._close_outside_a_call(value)

    # ------------------------------------------------------------------ coroutines

    async def set(self, key: _K, value: _V, ttl: _Ttl = None) -> None:
        await self._call(self.sync.set, key, value, ttl)

    async def put(self, key: _K, value: _V, ttl: _Ttl = None) -> None:
        await self._call(self.sync.put, key, value, ttl)

    async def get(self, key: _K, default: Any = None) -> Any:
        return await self._call(self.sync.get, key, default)

    async def delete(self, key: _K) -> bool:
        return bool(await self._call(self.sync.delete, key))

    async def pop(self, key: _K, default: Any = _MISSING) -> Any:
        if default is _MISSING:
            return await self._call(self.sync.pop, key)
        return await self._call(self.sync.pop, key, default)

    async def scan(self) -> None:
        await self._call(self.sync.scan)

    async def clear(self) -> None:
        await self._call(self.sync.clear)

    async def get_many(self, keys: Iterable[_K]) -> dict[_K, _V]:
        return dict(await self._call(self.sync.get_many, keys))

    async def set_many(
        self, entries: Mapping[_K, _V] | Iterable[tuple[_K, _V]], ttl: _Ttl = None
    ) -> None:
        await self._call(self.sync.set_many, entries, ttl)

    async def put_many(
        self, entries: Mapping[_K, _V] | Iterable[tuple[_K, _V]], ttl: _Ttl = None
    ) -> None:
        await self._call(self.sync.put_many, entries, ttl)

    async def delete_many(self, keys: Iterable[_K]) -> int:
        return int(await self._call(self.sync.delete_many, keys))

    async def get_or_set(
        self,
        key: _K,
        factory: Callable[[], Awaitable[_V]] | Callable[[], _V],
        ttl: _Ttl = None,
    ) -> _V:
        """The live value of ``key``; otherwise ``factory()``'s (awaited if it is a
        coroutine), stored as ``set`` stores it. Single-flight among this loop's tasks."""
        FlexCache._check_ttl(ttl)  # raise before anything runs, as get_or_set does
        found = await self._call(self.sync.get, key, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[no-any-return]
        loop = asyncio.get_running_loop()
        flights = self._flights.setdefault(loop, {})
        flight = flights.get(key)
        if flight is None:
            task = loop.create_task(self._compute(key, factory, ttl))
            flight = flights[key] = SharedTask(task)
            task.add_done_callback(lambda _task: _forget(flights, key, flight))
        made: _V = await flight.wait(abandoned=partial(_forget, flights, key, flight))
        return made

    async def _compute(self, key: _K, factory: Callable[[], Any], ttl: _Ttl) -> Any:
        made = factory()
        if inspect.isawaitable(made):
            made = await made
        return await self._call(self.sync._store_made, key, made, ttl)

    # ------------------------------------------------------------------ async with

    async def __aenter__(self) -> AsyncFlexCache[_K, _V]:
        return self

    async def __aexit__(self, *exc: object) -> bool:
        """Stops the background scan and clears the cache, awaiting every ``aclose()``."""
        await self._call(self._stop_and_clear)
        return False

    def _stop_and_clear(self) -> None:
        self.sync.__exit__(None, None, None)

    # ------------------------------------------------------------------ plain methods

    def peek(self, key: _K, default: Any = None) -> Any:
        return self.sync.peek(key, default)

    def touch(self, key: _K, ttl: _Ttl = None) -> bool:
        return bool(self._sync_call(self.sync.touch, key, ttl))

    def expires_in(self, key: _K) -> float | None:
        return self.sync.expires_in(key)

    def keys(self) -> list[_K]:
        return self.sync.keys()

    def values(self) -> list[_V]:
        return self.sync.values()

    def stats(self) -> CacheStats:
        return self.sync.stats()

    def reset_stats(self) -> None:
        self.sync.reset_stats()

    def __len__(self) -> int:
        return len(self.sync)

    def __contains__(self, key: object) -> bool:
        return key in self.sync

    def __iter__(self) -> Iterator[_K]:
        return iter(self.sync)

    def __repr__(self) -> str:
        return f"Async{self.sync!r}"

    @property
    def items(self) -> int:
        return self.sync.items

    @property
    def bytes(self) -> int:
        return self.sync.bytes

    @property
    def eviction_policy(self) -> str:
        return self.sync.eviction_policy

    @property
    def scan_interval(self) -> float:
        return self.sync.scan_interval

    @property
    def max_items(self) -> int:
        return self.sync.max_items

    @property
    def max_bytes(self) -> int:
        return self.sync.max_bytes

    @property
    def thread_safe(self) -> bool:
        return self.sync.thread_safe

    @property
    def background_scan(self) -> float | None:
        return self.sync.background_scan


def _forget(flights: dict[Any, SharedTask], key: object, flight: SharedTask) -> None:
    if flights.get(key) is flight:
        del flights[key]


_ACLOSE_FAILED = "Exception ignored in aclose() of a value an AsyncFlexCache let go"
_CLOSE_FAILED = "Exception ignored in close() of a value an AsyncFlexCache let go"


async def _close_all(values: list[object]) -> None:
    for value in values:
        if getattr(value, "aclose", None) is not None:
            await aclose_reporting(value, _ACLOSE_FAILED)
        else:
            close_reporting(value, _CLOSE_FAILED)
