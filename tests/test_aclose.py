"""Values with only ``aclose()`` let go by the synchronous FlexCache (README, "Values with
only aclose()"): scheduled on the running event loop, or reported as never awaited."""

from __future__ import annotations

import asyncio

from flexcache import FlexCache
from flexcache._aclose import NeverAwaitedWarning


class AsyncOnly:
    def __init__(self) -> None:
        self.acloses = 0

    async def aclose(self) -> None:
        await asyncio.sleep(0)
        self.acloses += 1


class Both(AsyncOnly):
    def __init__(self) -> None:
        super().__init__()
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


def test_without_a_running_loop_an_aclose_only_value_is_reported_never_awaited(
    unraisable: list,
) -> None:
    cache = FlexCache()
    value = AsyncOnly()
    cache.set("k", value)
    assert cache.delete("k")
    assert value.acloses == 0
    assert len(unraisable) == 1
    assert isinstance(unraisable[0][1], NeverAwaitedWarning)
    assert "aclose() was never awaited" in str(unraisable[0][1])
    assert cache.stats().close_errors == 0  # a report, not a failed close()


def test_with_a_running_loop_aclose_is_scheduled_on_it(unraisable: list) -> None:
    values = [AsyncOnly() for _ in range(3)]

    async def main() -> None:
        cache = FlexCache("lru", max_items=1)
        cache.set("a", values[0])
        cache.set("b", values[1])  # evicts "a": its aclose() is scheduled, not awaited yet
        cache.clear()  # lets "b" go
        cache.set("c", values[2])
        cache.pop("c")  # pop hands the value back: never closed
        for _ in range(10):
            await asyncio.sleep(0)

    asyncio.run(main())
    assert [v.acloses for v in values] == [1, 1, 0]
    assert unraisable == []


def test_a_scheduled_aclose_that_raises_goes_to_the_unraisable_hook(unraisable: list) -> None:
    class Failing:
        async def aclose(self) -> None:
            raise ValueError("aclose failed")

    async def main() -> None:
        cache = FlexCache()
        cache.set("k", Failing())
        cache.delete("k")
        for _ in range(5):
            await asyncio.sleep(0)

    asyncio.run(main())
    assert len(unraisable) == 1 and isinstance(unraisable[0][1], ValueError)


def test_a_value_with_close_and_aclose_is_closed_synchronously(unraisable: list) -> None:
    cache = FlexCache()
    value = Both()
    cache.set("k", value)
    cache.delete("k")
    assert value.closes == 1 and value.acloses == 0 and unraisable == []


def test_the_private_closer_replaces_close() -> None:
    seen: list[object] = []
    cache = FlexCache(_closer=seen.append)
    both, only_async, plain = Both(), AsyncOnly(), object()
    cache.set("both", both)
    cache.set("async", only_async)
    cache.set("plain", plain)
    cache.clear()
    assert seen == [both, only_async]  # values without close()/aclose() are not handed over
    assert both.closes == 0
