"""SPEC "Concurrency": flexcache.aio.AsyncFlexCache, whose releasing methods are coroutines
that await aclose() (or call close()) of every value they let go, in order, before
returning; get_or_set single-flight among tasks and safe under cancellation; async with."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from flexcache import FlexCache, RemovalCause
from flexcache.aio import AsyncFlexCache
from flexcache.testing import ManualClock


def run(coroutine_function: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(coroutine_function())


class AsyncValue:
    """Records when its aclose() finished, relative to a shared log."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.acloses = 0

    async def aclose(self) -> None:
        await asyncio.sleep(0)  # a real await: the call must wait for it
        self.acloses += 1
        self.log.append(self.name)


class SyncValue:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.closes = 0

    def close(self) -> None:
        self.closes += 1
        self.log.append(self.name)


class BothValue(AsyncValue):
    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name, log)
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


RELEASING = [
    "set",
    "put",
    "get",
    "delete",
    "pop",
    "scan",
    "clear",
    "get_or_set",
    "get_many",
    "set_many",
    "put_many",
    "delete_many",
]


@pytest.mark.parametrize("name", RELEASING)
def test_every_releasing_method_is_a_coroutine(name: str) -> None:
    assert inspect.iscoroutinefunction(getattr(AsyncFlexCache, name))


def test_same_constructor_as_flexcache() -> None:
    clock = ManualClock()
    cache = AsyncFlexCache(
        "fifo", 0.5, 10, 100, clock=clock, weigher=lambda k, v: 2, thread_safe=True
    )
    assert (cache.eviction_policy, cache.scan_interval, cache.max_items, cache.max_bytes) == (
        "fifo",
        0.5,
        10,
        100,
    )
    assert cache.thread_safe and isinstance(cache.sync, FlexCache)
    with pytest.raises(ValueError):
        AsyncFlexCache(max_items=-1)
    with pytest.raises(ValueError):
        AsyncFlexCache("nope")  # type: ignore[arg-type]


def test_aclose_is_awaited_before_the_call_returns() -> None:
    async def main() -> None:
        log: list[str] = []
        cache: AsyncFlexCache[str, object] = AsyncFlexCache()
        value = AsyncValue("v", log)
        await cache.set("k", value)
        assert await cache.get("k") is value
        assert await cache.delete("k") is True
        assert value.acloses == 1 and log == ["v"]  # done when delete returned

    run(main)


def test_close_is_called_when_a_value_has_no_aclose_and_aclose_preferred_when_both() -> None:
    async def main() -> None:
        log: list[str] = []
        cache: AsyncFlexCache[str, object] = AsyncFlexCache()
        plain, both = SyncValue("plain", log), BothValue("both", log)
        await cache.set("plain", plain)
        await cache.set("both", both)
        await cache.clear()
        assert plain.closes == 1
        assert both.acloses == 1 and both.closes == 0

    run(main)


def test_values_are_closed_in_the_order_they_left() -> None:
    async def main() -> None:
        log: list[str] = []
        cache: AsyncFlexCache[str, object] = AsyncFlexCache("lru", max_items=3)
        for name in "abc":
            await cache.set(name, AsyncValue(name, log) if name != "b" else SyncValue(name, log))
        await cache.get("a")  # order now b, c, a
        await cache.set_many({"x": 1, "y": 2, "z": 3})  # evicts b, c, a in that order
        assert log == ["b", "c", "a"]

    run(main)


def test_a_raising_aclose_goes_to_the_unraisable_hook_and_the_call_returns(
    unraisable: list,
) -> None:
    class Failing:
        async def aclose(self) -> None:
            raise OSError("aclose failed")

    async def main() -> None:
        cache: AsyncFlexCache[str, object] = AsyncFlexCache()
        await cache.set("k", Failing())
        assert await cache.delete("k") is True

    run(main)
    assert len(unraisable) == 1 and isinstance(unraisable[0][1], OSError)


def test_values_let_go_by_a_call_that_raises_are_still_closed() -> None:
    async def main() -> None:
        log: list[str] = []
        clock = ManualClock()
        cache: AsyncFlexCache[str, object] = AsyncFlexCache(clock=clock)
        await cache.set("old", AsyncValue("old", log), 1)
        await cache.set("k", 1)
        clock.advance(2)
        with pytest.raises(KeyError):
            await cache.set("k", 2)  # the automatic scan reaped "old" before refusing
        assert log == ["old"]

    run(main)


def test_pop_hands_the_value_back_unclosed() -> None:
    async def main() -> None:
        log: list[str] = []
        cache: AsyncFlexCache[str, object] = AsyncFlexCache()
        value = AsyncValue("v", log)
        await cache.set("k", value)
        assert await cache.pop("k") is value
        assert await cache.pop("k", None) is None
        with pytest.raises(KeyError):
            await cache.pop("k")
        assert value.acloses == 0

    run(main)


@pytest.mark.parametrize("kind", ["coroutine", "plain"])
def test_get_or_set_with_a_coroutine_or_a_plain_factory(kind: str) -> None:
    async def main() -> None:
        cache: AsyncFlexCache[str, int] = AsyncFlexCache()

        async def make_async() -> int:
            await asyncio.sleep(0)
            return 7

        factory = make_async if kind == "coroutine" else (lambda: 7)
        assert await cache.get_or_set("k", factory) == 7
        assert await cache.get_or_set("k", lambda: 8) == 7
        stats = cache.stats()
        assert (stats.hits, stats.misses, stats.sets) == (1, 1, 1)

    run(main)


def test_get_or_set_is_single_flight_among_tasks() -> None:
    async def main() -> None:
        cache: AsyncFlexCache[str, object] = AsyncFlexCache()
        calls: list[int] = []
        release = asyncio.Event()
        result = object()

        async def factory() -> object:
            calls.append(1)
            await release.wait()
            return result

        tasks = [asyncio.create_task(cache.get_or_set("k", factory)) for _ in range(10)]
        await asyncio.sleep(0.01)
        release.set()
        results = await asyncio.gather(*tasks)
        assert calls == [1]
        assert all(r is result for r in results)
        assert cache.stats().misses == 10 and cache.stats().sets == 1

    run(main)


def test_get_or_set_waiters_share_the_exception_and_nothing_is_stored() -> None:
    async def main() -> None:
        cache: AsyncFlexCache[str, object] = AsyncFlexCache()
        release = asyncio.Event()

        async def factory() -> object:
            await release.wait()
            raise LookupError("no value")

        tasks = [asyncio.create_task(cache.get_or_set("k", factory)) for _ in range(5)]
        await asyncio.sleep(0.01)
        release.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(o, LookupError) for o in outcomes)
        assert len({id(o) for o in outcomes}) == 1  # one computation, one exception
        assert "k" not in cache

    run(main)


def test_a_cancelled_waiter_does_not_cancel_the_shared_computation() -> None:
    async def main() -> None:
        cache: AsyncFlexCache[str, str] = AsyncFlexCache()
        release = asyncio.Event()
        finished: list[bool] = []

        async def factory() -> str:
            await release.wait()
            finished.append(True)
            return "done"

        first = asyncio.create_task(cache.get_or_set("k", factory))
        second = asyncio.create_task(cache.get_or_set("k", factory))
        await asyncio.sleep(0.01)
        first.cancel()  # the caller that started the computation leaves
        with pytest.raises(asyncio.CancelledError):
            await first
        release.set()
        assert await second == "done"
        assert finished == [True]
        assert await cache.get("k") == "done"

    run(main)


def test_when_the_last_waiter_is_cancelled_the_computation_is_too() -> None:
    async def main() -> None:
        cache: AsyncFlexCache[str, str] = AsyncFlexCache()
        started = asyncio.Event()
        cancelled: list[bool] = []

        async def factory() -> str:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            return "never"

        only = asyncio.create_task(cache.get_or_set("k", factory))
        await started.wait()
        only.cancel()
        with pytest.raises(asyncio.CancelledError):
            await only
        for _ in range(5):
            await asyncio.sleep(0)
        assert cancelled == [True]
        assert "k" not in cache
        # The key is free again: a new call computes afresh.
        assert await cache.get_or_set("k", lambda: "again") == "again"

    run(main)


def test_get_or_set_made_value_loses_to_an_entry_stored_meanwhile_and_is_aclosed() -> None:
    async def main() -> None:
        log: list[str] = []
        removed: list[tuple[object, object]] = []
        cache: AsyncFlexCache[str, object] = AsyncFlexCache(
            on_remove=lambda key, value, cause: removed.append((key, cause))
        )
        made = AsyncValue("made", log)
        winner = object()

        async def factory() -> object:
            await cache.set("k", winner)  # someone stores the key while we compute
            return made

        assert await cache.get_or_set("k", factory) is winner
        assert made.acloses == 1 and removed == [("k", RemovalCause.REPLACED)]

    run(main)


def test_get_or_set_result_too_large_is_returned_not_stored_not_closed() -> None:
    async def main() -> None:
        log: list[str] = []
        cache: AsyncFlexCache[str, object] = AsyncFlexCache(max_bytes=10)

        class Huge(AsyncValue):
            def item_size(self) -> int:
                return 100

        huge = Huge("huge", log)
        assert await cache.get_or_set("k", lambda: huge) is huge
        assert "k" not in cache and huge.acloses == 0

    run(main)


def test_get_or_set_bad_ttl_raises_before_the_factory_runs() -> None:
    async def main() -> None:
        cache: AsyncFlexCache[str, int] = AsyncFlexCache()
        calls: list[int] = []
        with pytest.raises(ValueError):
            await cache.get_or_set("k", lambda: calls.append(1) or 1, ttl=-1)
        assert calls == []

    run(main)


def test_async_with_clears_awaiting_every_aclose() -> None:
    async def main() -> None:
        log: list[str] = []
        async with AsyncFlexCache() as cache:
            for name in "abc":
                await cache.set(name, AsyncValue(name, log))
        assert sorted(log) == ["a", "b", "c"] and len(cache) == 0

    run(main)


def test_a_plain_method_that_reaps_closes_at_once() -> None:
    async def main() -> None:
        log: list[str] = []
        clock = ManualClock()
        cache: AsyncFlexCache[str, object] = AsyncFlexCache(clock=clock)
        await cache.set("k", SyncValue("k", log), 1)
        clock.advance(2)
        assert cache.touch("k", 10) is False  # expired: reaped, not renewed
        assert log == ["k"]

    run(main)


def test_background_scan_values_have_aclose_scheduled_on_the_loop() -> None:
    async def main() -> None:
        log: list[str] = []
        clock = ManualClock()
        cache: AsyncFlexCache[str, object] = AsyncFlexCache(clock=clock, background_scan=0.01)
        value = AsyncValue("v", log)
        await cache.set("k", value, 1)
        clock.advance(2)
        deadline = time.monotonic() + 20
        while value.acloses == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert value.acloses == 1
        await cache.__aexit__(None, None, None)

    run(main)
