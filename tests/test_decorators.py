"""SPEC Part 2, "Memoizing decorators": ``cached`` and ``cachedmethod``, one test group per clause.

Keys, ``key=``, ``ttl=``, exceptions, ``None`` results, results too large for ``max_bytes``, the
store when another caller got there first, single-flight among threads and among asyncio tasks
(with cancellation), ``functools.wraps`` metadata, ``cache_info()``/``cache_clear()``, the
``cache_args`` form, bare ``@cached``, and ``cachedmethod``. No test sleeps to wait for another
thread or task: they wait on events, and on the wrapper's own miss count to know that every
caller has arrived.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import pytest
from flexcache import CacheInfo, FlexCache, _decorators, cached, cachedmethod
from flexcache.testing import ManualClock

N_CALLERS = 6


class Boom(Exception):
    pass


class Calls:
    """Counts the calls of a decorated function, and the arguments of each."""

    def __init__(self) -> None:
        self.log: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.log.append((args, kwargs))

    @property
    def count(self) -> int:
        return len(self.log)


class Sized:
    """A result that reports ``item_size()`` and counts the calls of it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.size_calls = 0
        self.closes = 0

    def item_size(self) -> int:
        self.size_calls += 1
        return self.size

    def close(self) -> None:
        self.closes += 1


def wait_until(condition: Callable[[], bool]) -> None:
    """Wait (for other threads) until ``condition()`` holds; fail rather than hang."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the other threads never got there"
        time.sleep(0.001)


async def settle_until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition()`` holds; fail rather than hang."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the other tasks never got there")


def start_threads(target: Callable[[], None], count: int) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive(), "a thread hangs: deadlock?"


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


# --- keys -----------------------------------------------------------------------------------------


def test_keyword_arguments_in_any_order_share_an_entry() -> None:
    calls = Calls()

    @cached
    def f(a: int, b: int) -> int:
        calls(a, b)
        return a * 10 + b

    assert f(a=1, b=2) == 12
    assert f(b=2, a=1) == 12
    assert calls.count == 1
    assert len(f.cache) == 1


def test_positional_and_keyword_spellings_are_two_keys() -> None:
    calls = Calls()

    @cached
    def f(x: object, y: object = None) -> object:
        calls(x, y)
        return x

    f(1)
    f(x=1)
    f(1, 2)
    f(1, y=2)
    f(("x", 1))  # looks like a keyword pair, but is a positional argument
    f(("y", 2), 1)
    assert calls.count == 6
    assert len(f.cache) == 6
    f(1)
    f(x=1)
    f(1, y=2)
    assert calls.count == 6


def test_default_key_is_the_positional_arguments_as_a_tuple() -> None:
    @cached
    def f(*args: int) -> int:
        return sum(args)

    f()
    f(1)
    f(1, 2)
    assert sorted(f.cache.keys(), key=len) == [(), (1,), (1, 2)]


def test_equal_arguments_share_an_entry_as_dict_keys_do() -> None:
    calls = Calls()

    @cached
    def f(x: object) -> object:
        calls(x)
        return x

    assert f(1) == 1
    assert f(1.0) == 1  # 1 == 1.0 with one hash: one key, as in a dict or lru_cache
    assert calls.count == 1


def test_keyword_keys_survive_pickle_and_copy() -> None:
    @cached
    def f(*, x: int) -> int:
        return x

    f(x=1)
    [key] = f.cache.keys()
    assert pickle.loads(pickle.dumps(key)) == key
    assert copy.deepcopy(key) == key
    assert copy.copy(key) == key


def test_unhashable_argument_is_type_error_and_the_function_does_not_run() -> None:
    calls = Calls()

    @cached
    def f(x: object) -> object:
        calls(x)
        return x

    with pytest.raises(TypeError):
        f([1, 2])
    assert calls.count == 0
    assert len(f.cache) == 0


def test_custom_key_replaces_the_default() -> None:
    calls = Calls()
    seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def by_user(user: str, *args: object, **kwargs: object) -> str:
        seen.append(((user, *args), kwargs))
        return f"user:{user}"

    @cached(key=by_user)
    def profile(user: str, verbose: bool = False) -> dict[str, object]:
        calls(user, verbose)
        return {"user": user, "verbose": verbose}

    first = profile("ann", verbose=True)
    assert profile("ann") is first  # the key ignores verbose
    assert profile("bob")["user"] == "bob"
    assert calls.count == 2
    assert seen == [(("ann",), {"verbose": True}), (("ann",), {}), (("bob",), {})]
    assert sorted(profile.cache.keys()) == ["user:ann", "user:bob"]


def test_key_must_be_callable() -> None:
    with pytest.raises(TypeError, match="key"):
        cached(key="not callable")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="key"):
        cachedmethod(lambda self: FlexCache(), key=42)  # type: ignore[arg-type]


def test_functions_sharing_a_cache_share_its_keys() -> None:
    shared = FlexCache()

    @cached(shared)
    def double(x: int) -> int:
        return 2 * x

    @cached(shared)
    def negate(x: int) -> int:
        return -x

    @cached(shared, key=lambda x: ("triple", x))
    def triple(x: int) -> int:
        return 3 * x

    assert double(2) == 4
    assert negate(2) == 4  # the default key is the arguments alone: (2,) is double's entry
    assert triple(2) == 6  # a key of its own
    assert shared.get((2,)) == 4 and shared.get(("triple", 2)) == 6


# --- ttl ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [10, 10.0, timedelta(seconds=10)])
def test_ttl_is_given_to_the_store(ttl: object, clock: ManualClock) -> None:
    calls = Calls()

    @cached(FlexCache(clock=clock), ttl=ttl)  # type: ignore[call-overload]
    def f(x: int) -> int:
        calls(x)
        return x

    f(1)
    assert f.cache.expires_in((1,)) == 10.0
    clock.advance(9.5)
    f(1)
    assert calls.count == 1
    clock.advance(0.5)
    f(1)
    assert calls.count == 2  # expired: the function runs again


def test_no_ttl_never_expires(clock: ManualClock) -> None:
    @cached(FlexCache(clock=clock))
    def f() -> str:
        return "v"

    f()
    assert f.cache.expires_in(()) is None


def test_ttl_with_cache_args(clock: ManualClock) -> None:
    calls = Calls()

    @cached(clock=clock, ttl=5)
    def f() -> None:
        calls()

    f()
    clock.advance(4)
    f()
    clock.advance(1)
    f()
    assert calls.count == 2


@pytest.mark.parametrize(
    ("ttl", "error"), [(0, ValueError), (-1, ValueError), ("5", TypeError), (True, TypeError)]
)
def test_bad_ttl_is_refused_when_decorating(ttl: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        cached(ttl=ttl)  # type: ignore[call-overload]
    with pytest.raises(error):
        cachedmethod(lambda self: FlexCache(), ttl=ttl)  # type: ignore[arg-type]


# --- results --------------------------------------------------------------------------------------


def test_exceptions_are_not_cached() -> None:
    calls = Calls()

    @cached
    def flaky(x: int) -> int:
        calls(x)
        if calls.count == 1:
            raise Boom("first call fails")
        return x

    with pytest.raises(Boom):
        flaky(1)
    assert len(flaky.cache) == 0
    assert flaky(1) == 1
    assert flaky(1) == 1
    assert calls.count == 2


def test_none_results_are_cached() -> None:
    calls = Calls()

    @cached
    def nothing(x: int) -> None:
        calls(x)

    assert nothing(1) is None
    assert nothing(1) is None
    assert calls.count == 1
    assert (1,) in nothing.cache


def test_result_too_large_is_returned_and_not_stored() -> None:
    made: list[Sized] = []

    @cached(FlexCache(max_bytes=10))
    def big(x: int) -> Sized:
        made.append(Sized(100))
        return made[-1]

    first = big(1)
    assert first is made[0]
    assert len(big.cache) == 0 and big.cache.bytes == 0
    assert big(1) is made[1]  # not stored, so it runs again
    assert [value.size_calls for value in made] == [1, 1]  # measured once, by the store
    assert [value.closes for value in made] == [0, 0]  # handed back, so not closed


def test_result_that_fits_is_stored_next_to_one_that_does_not() -> None:
    @cached(max_bytes=10)
    def sized(size: int) -> Sized:
        return Sized(size)

    sized(100)
    small = sized(4)
    assert sized.cache.keys() == [(4,)]
    assert sized(4) is small


def test_value_error_of_a_bad_item_size_is_not_swallowed() -> None:
    @cached(max_bytes=10)
    def broken() -> Sized:
        return Sized(-1)

    with pytest.raises(ValueError, match="item_size"):
        broken()


def test_value_error_of_the_function_is_not_swallowed() -> None:
    @cached(max_bytes=10)
    def refuses() -> int:
        raise ValueError("item size 100 is larger than max_bytes (10)")

    with pytest.raises(ValueError, match="larger than max_bytes"):
        refuses()


def test_key_stored_meanwhile_by_someone_else_keeps_their_entry() -> None:
    cache = FlexCache()
    theirs = Sized(1)

    @cached(cache)
    def f(x: int) -> Sized:
        cache.set((x,), theirs)  # as another user of the cache would, while f runs
        return Sized(1)

    mine = f(1)
    assert mine is not theirs and mine.closes == 0
    assert cache.get((1,)) is theirs and theirs.closes == 0
    assert f(1) is theirs


def test_key_error_of_the_function_is_not_swallowed() -> None:
    @cached
    def f(x: int) -> int:
        raise KeyError((x,))

    with pytest.raises(KeyError):
        f(1)


def test_expired_holder_of_the_key_is_replaced(clock: ManualClock) -> None:
    cache = FlexCache(scan_interval=float("inf"), clock=clock)
    cache.set((1,), "old", ttl=1)
    clock.advance(1)

    @cached(cache)
    def f(x: int) -> str:
        return "new"

    assert f(1) == "new"
    assert cache.get((1,)) == "new"


def test_hits_are_lookups_that_refresh_lru_order() -> None:
    calls = Calls()

    @cached(max_items=2)
    def f(x: int) -> int:
        calls(x)
        return x

    f(1)
    f(2)
    f(1)  # a hit: 1 becomes the most recently used
    f(3)  # evicts 2
    f(1)
    assert calls.count == 3
    f(2)
    assert calls.count == 4


def test_the_cache_statistics_count_one_lookup_per_call() -> None:
    @cached
    def f(x: int) -> int:
        return x

    f(1)
    f(1)
    stats = f.cache.stats()
    assert (stats.hits, stats.misses, stats.sets) == (1, 1, 1)


# --- single-flight among threads ------------------------------------------------------------------


def test_threads_with_one_key_run_the_function_once() -> None:
    calls = Calls()
    release = threading.Event()
    results: list[object] = []

    @cached
    def slow(x: int) -> object:
        calls(x)
        release.wait()
        return object()

    threads = start_threads(lambda: results.append(slow(1)), N_CALLERS)
    wait_until(lambda: slow.cache_info().misses == N_CALLERS)
    release.set()
    join(threads)
    assert calls.count == 1
    assert len(results) == N_CALLERS
    assert all(result is results[0] for result in results)
    assert slow(1) is results[0]
    assert slow.cache_info() == CacheInfo(1, N_CALLERS, None, 1)


def test_threads_waiting_for_a_call_that_raises_get_its_exception() -> None:
    calls = Calls()
    release = threading.Event()
    errors: list[BaseException] = []

    @cached
    def failing(x: int) -> int:
        calls(x)
        release.wait()
        raise Boom(x)

    def caller() -> None:
        try:
            failing(1)
        except Boom as error:
            errors.append(error)

    threads = start_threads(caller, N_CALLERS)
    wait_until(lambda: failing.cache_info().misses == N_CALLERS)
    release.set()
    join(threads)
    assert calls.count == 1
    assert len(errors) == N_CALLERS
    assert all(error is errors[0] for error in errors)
    assert len(failing.cache) == 0
    with pytest.raises(Boom):
        failing(1)  # not cached: it runs again
    assert calls.count == 2


def test_a_thread_computing_one_key_does_not_hold_up_another_key() -> None:
    release = threading.Event()

    @cached
    def f(x: int) -> int:
        if x == 1:
            release.wait()
        return x

    [blocked] = start_threads(lambda: f(1), 1)
    wait_until(lambda: f.cache_info().misses == 1)
    other_key_done = threading.Event()
    [other] = start_threads(lambda: f(2) == 2 and other_key_done.set(), 1)
    finished_first = other_key_done.wait(timeout=10)  # no timing: a guard against a hang
    release.set()
    join([blocked, other])
    assert finished_first, "a call of another key waited for the one in flight"
    assert sorted(f.cache.keys()) == [(1,), (2,)]


def test_a_caller_that_misses_just_before_the_call_in_flight_lands_uses_its_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """White-box: hold one caller between its miss and its joining the flights (by wrapping
    the private ``_Memo._join``) while the call in flight stores its result and lands."""
    release = threading.Event()
    calls = Calls()
    results: list[object] = []

    @cached
    def slow(x: int) -> object:
        calls(x)
        release.wait()
        return object()

    [leader] = start_threads(lambda: results.append(slow(1)), 1)
    wait_until(lambda: calls.count == 1)
    original_join = _decorators._Memo._join
    held, go = threading.Event(), threading.Event()

    def held_join(self: Any, *args: Any) -> Any:
        held.set()
        go.wait()
        return original_join(self, *args)

    monkeypatch.setattr(_decorators._Memo, "_join", held_join)
    [late] = start_threads(lambda: results.append(slow(1)), 1)
    assert held.wait(timeout=10)  # late has missed the cache, and waits to join
    release.set()
    join([leader])
    go.set()
    join([late])
    assert calls.count == 1
    assert results[0] is results[1]
    assert slow.cache_info() == CacheInfo(hits=1, misses=1, maxsize=None, currsize=1)


def test_every_key_runs_once_under_heavy_switching(busy_switching: None) -> None:
    runs: dict[int, int] = {}
    runs_lock = threading.Lock()
    start = threading.Barrier(N_CALLERS)

    @cached
    def square(x: int) -> int:
        with runs_lock:
            runs[x] = runs.get(x, 0) + 1
        return x * x

    def caller() -> None:
        start.wait()
        for n in range(300):
            assert square(n % 25) == (n % 25) ** 2

    join(start_threads(caller, N_CALLERS))
    assert runs == dict.fromkeys(range(25), 1)
    info = square.cache_info()
    assert info.hits + info.misses == N_CALLERS * 300


def test_a_call_with_its_own_key_from_inside_the_function_does_not_deadlock() -> None:
    depth = [0]

    @cached
    def recursive(x: int) -> int:
        depth[0] += 1
        if depth[0] == 1:
            return recursive(x) + 1  # waiting for our own flight would never end
        return 10

    result: list[int] = []
    join(start_threads(lambda: result.append(recursive(1)), 1))
    assert result == [11]
    assert depth[0] == 2


def test_the_function_may_call_the_wrapper_with_other_keys() -> None:
    @cached
    def fib(n: int) -> int:
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    assert fib(60) == 1548008755920
    assert fib.cache_info().misses == 61


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_does_not_wait_for_a_call_in_flight_in_its_parent() -> None:
    release = threading.Event()

    @cached
    def f(x: int) -> str:
        release.wait()
        return "parent"

    [blocked] = start_threads(lambda: f(1), 1)
    wait_until(lambda: f.cache_info().misses == 1)
    pid = os.fork()
    if pid == 0:  # the child: the thread running f(1) is not here
        signal.alarm(10)  # a hang ends the child with SIGALRM, and the test fails
        release.set()
        os._exit(0 if f(1) == "parent" and f.cache_info().misses == 2 else 1)
    _, status = os.waitpid(pid, 0)
    release.set()
    join([blocked])
    assert os.waitstatus_to_exitcode(status) == 0


# --- single-flight among asyncio tasks ------------------------------------------------------------


def test_async_wrapper_is_a_coroutine_function() -> None:
    @cached
    async def fetch(x: int) -> int:
        return x

    assert inspect.iscoroutinefunction(fetch)
    assert run(fetch(3)) == 3
    assert run(fetch(3)) == 3  # a hit from another event loop
    assert fetch.cache_info().hits == 1


def test_async_results_none_and_exceptions() -> None:
    calls = Calls()

    @cached
    async def f(x: int) -> None:
        calls(x)
        if x == 0:
            raise Boom

    async def main() -> None:
        assert await f(1) is None
        assert await f(1) is None
        for _ in range(2):
            with pytest.raises(Boom):
                await f(0)

    run(main())
    assert calls.count == 3
    assert f.cache.keys() == [(1,)]


def test_tasks_with_one_key_run_the_function_once() -> None:
    calls = Calls()

    @cached
    async def slow(x: int) -> object:
        calls(x)
        await release.wait()
        return object()

    async def main() -> list[object]:
        tasks = [asyncio.create_task(slow(1)) for _ in range(N_CALLERS)]
        await settle_until(lambda: slow.cache_info().misses == N_CALLERS)
        release.set()
        return await asyncio.gather(*tasks)

    release = asyncio.Event()
    results = run(main())
    assert calls.count == 1
    assert all(result is results[0] for result in results)
    assert slow.cache.get((1,)) is results[0]
    assert slow.cache_info() == CacheInfo(0, N_CALLERS, None, 1)


def test_tasks_waiting_for_a_call_that_raises_all_get_its_exception() -> None:
    calls = Calls()

    @cached
    async def failing(x: int) -> int:
        calls(x)
        await release.wait()
        raise Boom(x)

    async def main() -> list[BaseException]:
        tasks = [asyncio.create_task(failing(1)) for _ in range(N_CALLERS)]
        await settle_until(lambda: failing.cache_info().misses == N_CALLERS)
        release.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    release = asyncio.Event()
    errors = run(main())
    assert calls.count == 1
    assert all(isinstance(error, Boom) for error in errors)
    assert all(error is errors[0] for error in errors)
    assert len(failing.cache) == 0


@pytest.mark.parametrize("cancelled", [0, 1], ids=["first-caller", "a-later-caller"])
def test_a_cancelled_waiter_does_not_cancel_the_computation(cancelled: int) -> None:
    calls = Calls()
    interrupted: list[bool] = []

    @cached
    async def slow(x: int) -> str:
        calls(x)
        try:
            await release.wait()
        except asyncio.CancelledError:
            interrupted.append(True)
            raise
        return "done"

    async def main() -> list[object]:
        tasks = [asyncio.create_task(slow(1)) for _ in range(3)]
        await settle_until(lambda: slow.cache_info().misses == 3)
        tasks[cancelled].cancel()
        await settle_until(tasks[cancelled].done)
        release.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    release = asyncio.Event()
    outcomes = run(main())
    assert isinstance(outcomes.pop(cancelled), asyncio.CancelledError)
    assert outcomes == ["done", "done"]
    assert calls.count == 1 and interrupted == []
    assert slow.cache.get((1,)) == "done"


def test_when_every_waiter_is_cancelled_the_computation_is_cancelled() -> None:
    calls = Calls()
    interrupted: list[bool] = []

    @cached
    async def slow(x: int) -> str:
        calls(x)
        try:
            await release.wait()
        except asyncio.CancelledError:
            interrupted.append(True)
            raise
        return f"run {calls.count}"

    async def main() -> str:
        tasks = [asyncio.create_task(slow(1)) for _ in range(3)]
        await settle_until(lambda: slow.cache_info().misses == 3)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await settle_until(lambda: interrupted == [True])
        assert len(slow.cache) == 0
        release.set()
        return await slow(1)  # a computation of its own, not the cancelled one

    release = asyncio.Event()
    assert run(main()) == "run 2"
    assert slow.cache.get((1,)) == "run 2"


def test_tasks_with_different_keys_run_concurrently() -> None:
    started: set[int] = set()

    @cached
    async def f(x: int) -> int:
        started.add(x)
        await settle_until(lambda: started == {1, 2})  # each waits for the other to start
        return x

    async def main() -> list[int]:
        return await asyncio.gather(f(1), f(2))

    assert run(main()) == [1, 2]


def test_an_async_call_with_its_own_key_from_inside_does_not_deadlock() -> None:
    depth = [0]

    @cached
    async def recursive(x: int) -> int:
        depth[0] += 1
        if depth[0] == 1:
            return await recursive(x) + 1
        return 10

    assert run(asyncio.wait_for(recursive(1), timeout=10)) == 11


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are new in Python 3.12")
def test_single_flight_with_eager_tasks() -> None:
    """Under an eager task factory, the computation's task starts running (and may finish)
    inside ``create_task``, before the wrapper has recorded it."""
    calls = Calls()

    @cached
    async def instant(x: int) -> int:
        calls(x)
        return x  # finishes in its first, eager step

    @cached
    async def slow(x: int) -> int:
        calls(x)
        await asyncio.sleep(0)
        return x

    async def main() -> None:
        asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
        assert await instant(1) == 1
        assert await instant(1) == 1
        assert await asyncio.gather(*(slow(2) for _ in range(N_CALLERS))) == [2] * N_CALLERS
        # White-box: the eager steps marked their flights in their tasks' contexts, not in
        # this caller's (where a later call of the key would run instead of waiting).
        assert _decorators._computing.get() == frozenset()

    run(main())
    assert calls.log == [((1,), {}), ((2,), {})]
    assert slow.cache_info() == CacheInfo(0, N_CALLERS, None, 1)


def test_async_result_too_large_is_returned_and_not_stored() -> None:
    @cached(max_bytes=10)
    async def big() -> Sized:
        return Sized(100)

    value = run(big())
    assert isinstance(value, Sized) and value.size_calls == 1
    assert len(big.cache) == 0


# --- the wrapper ----------------------------------------------------------------------------------


def plain(x: int, y: int = 0) -> int:
    """Adds two numbers."""
    return x + y


async def coroutine(x: int) -> int:
    """Returns x, eventually."""
    return x


@pytest.mark.parametrize("function", [plain, coroutine])
def test_wraps_metadata(function: Callable[..., Any]) -> None:
    wrapper = cached(function)
    assert wrapper.__name__ == function.__name__
    assert wrapper.__qualname__ == function.__qualname__
    assert wrapper.__doc__ == function.__doc__
    assert wrapper.__module__ == function.__module__
    assert wrapper.__wrapped__ is function
    assert inspect.signature(wrapper) == inspect.signature(function)


def test_cache_info_is_a_named_tuple_of_this_wrappers_counts() -> None:
    assert CacheInfo._fields == ("hits", "misses", "maxsize", "currsize")
    cache = FlexCache(max_items=100)

    @cached(cache)
    def f(x: int) -> int:
        return x

    @cached(cache, key=lambda x: ("g", x))
    def g(x: int) -> int:
        return x

    assert f.cache_info() == CacheInfo(hits=0, misses=0, maxsize=100, currsize=0)
    f(1)
    f(1)
    f(2)
    g(1)  # counts for g, not for f; but it shares f's cache
    info = f.cache_info()
    assert isinstance(info, CacheInfo) and isinstance(info, tuple)
    assert info == (1, 2, 100, 3)
    assert (info.hits, info.misses, info.maxsize, info.currsize) == (1, 2, 100, 3)
    assert g.cache_info() == CacheInfo(0, 1, 100, 3)


def test_cache_info_maxsize_is_none_without_an_item_limit() -> None:
    assert cached(plain).cache_info().maxsize is None
    assert cached(max_bytes=50)(plain).cache_info().maxsize is None
    assert cached(max_items=7)(plain).cache_info().maxsize == 7


def test_cache_clear_empties_the_cache_and_resets_the_counts() -> None:
    calls = Calls()
    values: list[Sized] = []

    @cached
    def f(x: int) -> Sized:
        calls(x)
        values.append(Sized(1))
        return values[-1]

    f(1)
    f(1)
    f(2)
    f.cache_clear()
    assert f.cache_info() == CacheInfo(0, 0, None, 0)
    assert len(f.cache) == 0
    assert [value.closes for value in values] == [1, 1]  # the cache let them go
    f(1)
    assert calls.count == 3
    assert f.cache_info() == CacheInfo(0, 1, None, 1)


def test_cache_is_the_flexcache_given() -> None:
    cache = FlexCache()
    assert cached(cache)(plain).cache is cache


def test_cache_args_make_a_flexcache_with_those_settings() -> None:
    @cached(max_items=2, max_bytes=50, eviction_policy="fifo", scan_interval=5)
    def f(x: int) -> int:
        return x

    cache = f.cache
    assert isinstance(cache, FlexCache)
    assert (cache.max_items, cache.max_bytes, cache.eviction_policy, cache.scan_interval) == (
        2,
        50,
        "fifo",
        5.0,
    )
    f(1)
    f(2)
    f(1)
    f(3)  # fifo evicts 1, the oldest, although it was just read
    assert f.cache.keys() == [(2,), (3,)]


def test_each_decoration_makes_its_own_cache() -> None:
    decorator = cached(max_items=3)
    assert decorator(plain).cache is not decorator(coroutine).cache


def test_bad_cache_args_fail_when_decorating() -> None:
    with pytest.raises(ValueError):
        cached(eviction_policy="nope")
    with pytest.raises(TypeError):
        cached(no_such_setting=1)


def test_a_cache_and_cache_args_together_are_type_error() -> None:
    with pytest.raises(TypeError, match="max_items"):
        cached(FlexCache(), max_items=3)


def test_cache_must_be_a_flexcache() -> None:
    with pytest.raises(TypeError, match="FlexCache"):
        cached({})  # type: ignore[call-overload]


def test_cached_by_keyword() -> None:
    cache = FlexCache()
    assert cached(cache=cache)(plain).cache is cache


def test_bare_cached_makes_an_unbounded_cache_of_its_own() -> None:
    calls = Calls()

    @cached
    def f(x: int) -> int:
        calls(x)
        return x

    assert isinstance(f.cache, FlexCache)
    assert (f.cache.max_items, f.cache.max_bytes) == (0, 0)
    f(1)
    f(1)
    assert calls.count == 1
    assert f.__wrapped__.__name__ == "f"


def test_cached_applied_to_a_function_directly_takes_the_other_arguments() -> None:
    wrapper = cached(plain, key=lambda x, y=0: x)
    wrapper(1, 2)
    assert wrapper.cache.keys() == [1]


def test_only_callables_can_be_decorated() -> None:
    with pytest.raises(TypeError, match="callable"):
        cached()(42)  # type: ignore[arg-type]


# --- cachedmethod ---------------------------------------------------------------------------------


class Account:
    """One cache per instance, as ``cachedmethod``'s accessor finds it."""

    def __init__(self, owner: str, cache: FlexCache | None = None) -> None:
        self.owner = owner
        self.cache = FlexCache() if cache is None else cache
        self.calls = Calls()

    @cachedmethod(lambda self: self.cache)
    def balance(self, day: int, *, currency: str = "EUR") -> str:
        """The balance on one day."""
        self.calls(day, currency)
        return f"{self.owner}:{day}:{currency}"

    @cachedmethod(lambda self: self.cache, key=lambda day: ("async", day))
    async def history(self, day: int) -> str:
        """The history of one day."""
        self.calls(day)
        await asyncio.sleep(0)
        return f"{self.owner}:history:{day}"


def test_cachedmethod_uses_each_instances_cache() -> None:
    ann, bob = Account("ann"), Account("bob")
    assert ann.balance(1) == "ann:1:EUR"
    assert bob.balance(1) == "bob:1:EUR"
    assert ann.balance(1) == "ann:1:EUR"
    assert ann.calls.count == 1 and bob.calls.count == 1
    assert ann.cache.keys() == [(1,)] and bob.cache.keys() == [(1,)]


def test_cachedmethod_leaves_self_out_of_the_key() -> None:
    shared = FlexCache()
    ann, bob = Account("ann", shared), Account("bob", shared)
    assert ann.balance(1) == "ann:1:EUR"
    assert bob.balance(1) == "ann:1:EUR"  # one entry for both: self is not in the key
    assert bob.calls.count == 0
    assert shared.keys() == [(1,)]


def test_cachedmethod_keyword_arguments_follow_the_default_key_rules() -> None:
    ann = Account("ann")
    ann.balance(1, currency="USD")
    ann.balance(day=1, currency="USD")
    ann.balance(currency="USD", day=1)
    assert ann.calls.count == 2


def test_cachedmethod_custom_key_gets_the_arguments_without_self() -> None:
    seen: list[tuple[Any, ...]] = []

    class Thing:
        def __init__(self) -> None:
            self.cache = FlexCache()

        @cachedmethod(lambda self: self.cache, key=lambda *args, **kwargs: seen.append(args) or 1)
        def method(self, a: int, b: int) -> int:
            return a + b

    thing = Thing()
    assert thing.method(1, 2) == 3
    assert thing.method(5, 6) == 3  # one key for all
    assert seen == [(1, 2), (5, 6)]


def test_cachedmethod_async() -> None:
    ann = Account("ann")

    async def main() -> list[str]:
        return await asyncio.gather(ann.history(3), ann.history(3), ann.history(4))

    assert inspect.iscoroutinefunction(Account.history)
    assert run(main()) == ["ann:history:3", "ann:history:3", "ann:history:4"]
    assert ann.calls.count == 2
    assert sorted(ann.cache.keys()) == [("async", 3), ("async", 4)]
    assert run(ann.history(3)) == "ann:history:3"
    assert ann.calls.count == 2


class Gated:
    """A method that, for an instance given a gate, blocks until the gate opens."""

    def __init__(self, owner: str, gate: threading.Event | None = None) -> None:
        self.owner = owner
        self.gate = gate
        self.started = threading.Event()
        self.cache = FlexCache()

    @cachedmethod(lambda self: self.cache)
    def value(self, n: int) -> str:
        self.started.set()
        if self.gate is not None:
            self.gate.wait()
        return f"{self.owner}:{n}"


def test_cachedmethod_single_flight_is_per_cache() -> None:
    gate = threading.Event()
    slow, other = Gated("slow", gate), Gated("other")
    [blocked] = start_threads(lambda: slow.value(1), 1)
    assert slow.started.wait(timeout=10)
    # Same key, another cache: it must neither wait for slow's call nor get its result.
    answers: list[str] = []
    done = threading.Event()
    [second] = start_threads(lambda: answers.append(other.value(1)) or done.set(), 1)
    finished_first = done.wait(timeout=10)  # no timing: a guard against a hang
    gate.set()
    join([blocked, second])
    assert finished_first, "a call on another cache waited for the one in flight"
    assert answers == ["other:1"]
    assert slow.cache.get((1,)) == "slow:1"


def test_cachedmethod_threads_share_one_computation() -> None:
    release = threading.Event()
    results: list[str] = []
    calls = Calls()

    class Report:
        def __init__(self) -> None:
            self.cache = FlexCache()

        @cachedmethod(lambda self: self.cache)
        def build(self, n: int) -> str:
            calls(n)
            release.wait()
            return f"report {n}"

    report = Report()
    threads = start_threads(lambda: results.append(report.build(7)), N_CALLERS)
    # Every caller has missed the cache: without single-flight, each would run build().
    wait_until(lambda: report.cache.stats().misses == N_CALLERS)
    release.set()
    join(threads)
    assert calls.count == 1
    assert results == ["report 7"] * N_CALLERS


def test_cachedmethod_ttl(clock: ManualClock) -> None:
    class Clocked:
        def __init__(self) -> None:
            self.cache = FlexCache(clock=clock)
            self.calls = Calls()

        @cachedmethod(lambda self: self.cache, ttl=timedelta(seconds=3))
        def value(self) -> int:
            self.calls()
            return self.calls.count

    thing = Clocked()
    assert thing.value() == 1
    assert thing.cache.expires_in(()) == 3.0
    clock.advance(3)
    assert thing.value() == 2


def test_cachedmethod_metadata_and_binding() -> None:
    method = Account.__dict__["balance"]
    assert method.__name__ == "balance"
    assert method.__doc__ == "The balance on one day."
    assert method.__qualname__ == "Account.balance"
    assert method.__wrapped__.__name__ == "balance"
    assert not hasattr(method, "cache_info") and not hasattr(method, "cache_clear")
    ann = Account("ann")
    assert Account.balance(ann, 2) == ann.balance(2)
    assert ann.calls.count == 1


def test_cachedmethod_needs_a_function_of_self() -> None:
    with pytest.raises(TypeError, match="cache\\(self\\)"):
        cachedmethod(FlexCache())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cache\\(self\\)"):
        cachedmethod(None)  # type: ignore[arg-type]


def test_counts_go_on_after_cache_clear_and_after_reads() -> None:
    @cached
    def double(x: int) -> int:
        return 2 * x

    double(1)
    double(1)
    assert double.cache_info()[:2] == (1, 1)
    assert double.cache_info()[:2] == (1, 1)  # reading twice changes nothing
    double.cache_clear()
    assert double.cache_info()[:2] == (0, 0)
    double(1)
    double(1)
    double(1)
    assert double.cache_info()[:2] == (2, 1)


@cached(max_items=64)
def module_level_add(a: int, b: int) -> int:
    return a + b


def test_the_native_hit_path_keeps_a_functions_surface() -> None:
    """With the default key the wrapper is native (flexcache._core.CachedCall): it must still
    look, bind, pickle and count like the function it wraps."""
    assert module_level_add(1, 2) == 3
    assert module_level_add(1, 2) == 3
    assert module_level_add.__name__ == "module_level_add"
    assert module_level_add.__qualname__ == "module_level_add"
    assert module_level_add.__module__ == __name__
    assert inspect.signature(module_level_add) == inspect.signature(module_level_add.__wrapped__)
    assert pickle.loads(pickle.dumps(module_level_add)) is module_level_add
    assert copy.deepcopy(module_level_add) is module_level_add
    info = module_level_add.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    # Keyword arguments take the Python path and share the counts.
    assert module_level_add(a=1, b=2) == 3 and module_level_add(b=2, a=1) == 3
    assert module_level_add.cache_info()[:2] == (2, 2)
    module_level_add.cache_clear()
    assert module_level_add.cache_info()[:2] == (0, 0)
    module_level_add(5, 5)
    module_level_add(5, 5)
    assert module_level_add.cache_info()[:2] == (1, 1)


def test_cached_on_a_method_binds_like_a_function() -> None:
    class Counter:
        def __init__(self) -> None:
            self.runs = 0

        @cached
        def twice(self, x: int) -> int:
            self.runs += 1
            return 2 * x

    counter = Counter()
    assert counter.twice(3) == 6 and counter.twice(3) == 6
    assert counter.runs == 1  # self is part of the key: one run for (counter, 3)
    assert Counter.twice(counter, 3) == 6 and counter.runs == 1
