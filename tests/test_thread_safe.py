"""SPEC "Concurrency", thread_safe=True: every operation atomic under the cache's own lock,
callbacks run with the lock released (they may block or call back into the cache), counts
and close() exact, and get_or_set single-flight across threads."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from conftest import Closable, Tracker, check_cache, run_threads
from flexcache import FlexCache

N_THREADS = 8


def run_flight(caller: Callable[[int], None], started: threading.Event, release: threading.Event):
    """Starts ``caller(0)``, whose factory sets ``started`` and waits for ``release``; then
    the other callers, which join its flight; then releases the factory and joins all."""
    leader = threading.Thread(target=caller, args=(0,))
    leader.start()
    assert started.wait(timeout=30)
    others = [threading.Thread(target=caller, args=(n,)) for n in range(1, N_THREADS)]
    for thread in others:
        thread.start()
    time.sleep(0.3)  # let the others reach the flight (a late one finds what it left)
    release.set()
    for thread in [leader, *others]:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a thread hangs: deadlock?"


def test_thread_safe_is_off_by_default_and_reported() -> None:
    assert FlexCache().thread_safe is False
    assert FlexCache(thread_safe=True).thread_safe is True
    assert FlexCache("lru", max_items=3, thread_safe=False).thread_safe is False


def test_thread_safe_none_is_the_default() -> None:
    assert FlexCache(thread_safe=None).thread_safe is False


@pytest.mark.parametrize("bad", [1, "yes", 0.0])
def test_thread_safe_must_be_a_bool(bad: object) -> None:
    with pytest.raises(TypeError):
        FlexCache(thread_safe=bad)  # type: ignore[arg-type]


def test_two_threads_setting_one_key_store_one_value_and_raise_one_key_error() -> None:
    for round_ in range(200):
        cache = FlexCache(thread_safe=True)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def store(
            n: int,
            cache: FlexCache = cache,
            barrier: threading.Barrier = barrier,
            outcomes: list[str] = outcomes,
        ) -> None:
            barrier.wait()
            try:
                cache.set("k", n)
                outcomes.append("stored")
            except KeyError:
                outcomes.append("KeyError")

        run_threads(store, 2)
        assert sorted(outcomes) == ["KeyError", "stored"], round_
        assert cache.get("k") in (0, 1)
        assert len(cache) == 1


@pytest.mark.parametrize("policy", ["lru", "fifo", "random"])
def test_many_threads_with_blocking_callbacks_never_fail_and_close_each_value_once(
    policy: str, busy_switching: None, tracker: Tracker
) -> None:
    """Values whose item_size() and close() give the GIL away, and an on_remove that reads the
    cache: under thread_safe=True no call raises RuntimeError, nothing deadlocks, and at the
    end every value created was closed exactly once, except those pop() handed back."""
    removed: Counter[str] = Counter()

    def on_remove(key: object, value: object, cause: object) -> None:
        removed[str(cause)] += 1
        cache.peek(key)  # a callback calling back into the cache

    cache = FlexCache(policy, max_items=40, max_bytes=150, on_remove=on_remove, thread_safe=True)
    created: list[Closable] = []
    popped: list[object] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def make(name: str, rng: random.Random) -> Closable:
        value = tracker(
            name,
            size=rng.randint(1, 6),
            on_close=lambda v: time.sleep(0),
            on_size=lambda v: time.sleep(0),
        )
        with lock:
            created.append(value)
        return value

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for i in range(1_500):
                key = f"k{rng.randrange(60)}"
                roll = rng.random()
                if roll < 0.25:
                    value = make(f"{seed}-{i}", rng)
                    try:
                        cache.set(key, value)
                    except KeyError:  # refused: the value stays the caller's, never closed
                        with lock:
                            created.remove(value)
                elif roll < 0.45:
                    cache.put(key, make(f"{seed}-{i}", rng))
                elif roll < 0.55:
                    cache.get_or_set(key, lambda s=seed, n=i: make(f"{s}-{n}g", rng))
                elif roll < 0.65:
                    cache.delete(key)
                elif roll < 0.72:
                    value = cache.pop(key, None)
                    if value is not None:
                        with lock:
                            popped.append(value)
                elif roll < 0.75:
                    cache.scan()
                else:
                    cache.get(key)
        except BaseException as error:  # any failure at all is the test's finding
            failures.append(error)

    run_threads(worker)
    assert failures == []
    check_cache(cache)
    # Every removal told (a factory result that lost to a live entry is told too, as
    # replaced, though it was never an entry, so never counted as one).
    assert sum(removed.values()) >= sum(cache.stats()[3:7])
    cache.clear()
    popped_ids = {id(v) for v in popped}
    for value in created:
        expected = 0 if id(value) in popped_ids else 1
        assert value.closes == expected, value
    stats = cache.stats()
    # Every stored entry left once, counted once (pop and clear count as deletions).
    assert stats.sets == stats.deletions + stats.evictions + stats.expirations


def test_get_or_set_runs_one_factory_for_concurrent_callers() -> None:
    cache = FlexCache(thread_safe=True)
    calls: list[int] = []
    release = threading.Event()
    started = threading.Event()
    results: list[object] = []
    result = object()

    def factory() -> object:
        calls.append(1)
        started.set()
        release.wait(timeout=30)
        return result

    def caller(n: int) -> None:
        results.append(cache.get_or_set("k", factory))

    run_flight(caller, started, release)
    assert calls == [1]
    assert len(results) == N_THREADS and all(r is result for r in results)
    assert cache.get("k") is result
    stats = cache.stats()
    assert stats.sets == 1 and stats.misses >= 2


def test_get_or_set_waiters_get_the_factorys_exception_and_nothing_is_stored() -> None:
    cache = FlexCache(thread_safe=True)
    release = threading.Event()
    started = threading.Event()
    errors: list[BaseException] = []

    class Failed(Exception):
        pass

    def factory() -> object:
        started.set()
        release.wait(timeout=30)
        raise Failed("no value")

    def caller(n: int) -> None:
        try:
            cache.get_or_set("k", factory)
        except Failed as error:
            errors.append(error)

    run_flight(caller, started, release)
    assert len(errors) == N_THREADS  # every caller raised
    shared = Counter(id(error) for error in errors).most_common(1)[0][1]
    assert shared >= 2, "no caller shared the computing call's exception"
    assert "k" not in cache and len(cache) == 0


def test_get_or_set_factory_asking_for_its_own_key_raises_instead_of_waiting_forever() -> None:
    cache = FlexCache(thread_safe=True)

    def factory() -> object:
        return cache.get_or_set("k", lambda: "inner")

    with pytest.raises(RuntimeError, match="re-entered"):
        cache.get_or_set("k", factory)
    assert "k" not in cache
    assert cache.get_or_set("k", lambda: "later") == "later"  # the flight was cleared


def test_get_or_set_factory_may_use_the_cache_for_other_keys() -> None:
    cache = FlexCache(thread_safe=True)

    def factory() -> str:
        cache.set("other", 1)
        return cache.get_or_set("inner", lambda: "x") + "!"

    assert cache.get_or_set("k", factory) == "x!"
    assert cache.get("other") == 1 and cache.get("inner") == "x" and cache.get("k") == "x!"


def test_get_or_set_single_flight_keys_differ_by_equality_not_identity() -> None:
    """Two equal keys that are different objects share one flight."""
    cache = FlexCache(thread_safe=True)
    release = threading.Event()
    started = threading.Event()
    calls: list[int] = []

    def factory() -> int:
        calls.append(1)
        started.set()
        release.wait(timeout=30)
        return 7

    key_a = "".join(["sha", "red"])
    key_b = "".join(["sh", "ared"])
    assert key_a == key_b and key_a is not key_b
    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(cache.get_or_set(key_a, factory)))
    first.start()
    assert started.wait(timeout=30)
    second = threading.Thread(target=lambda: results.append(cache.get_or_set(key_b, factory)))
    second.start()
    time.sleep(0.2)
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert results == [7, 7] and calls == [1]


def test_thread_safe_cache_without_contention_behaves_as_the_plain_one(tracker: Tracker) -> None:
    """The lock changes nothing a single thread can see."""
    for thread_safe in (False, True):
        cache = FlexCache("lru", max_items=2, thread_safe=thread_safe)
        a, b, c = tracker("a"), tracker("b"), tracker("c")
        cache.set("a", a)
        cache.set("b", b)
        cache.get("a")
        cache.set("c", c)  # evicts b, the least recently used
        assert list(cache.keys()) == ["a", "c"]
        assert b.closes == 1 and a.closes == 0
        cache.clear()
        assert a.closes == 1 and c.closes == 1


def test_a_blocking_close_does_not_block_other_threads_gets() -> None:
    """close() runs with the lock released: while one thread's close() sleeps, another
    thread's gets proceed."""
    cache = FlexCache(thread_safe=True)
    closing = threading.Event()
    closed = threading.Event()
    gets_during_close: list[int] = []

    class Slow:
        def close(self) -> None:
            closing.set()
            time.sleep(0.2)  # blocks this thread, with the GIL released
            closed.set()

    cache.set("slow", Slow())
    cache.set("other", 1)

    def reader() -> None:
        assert closing.wait(timeout=30)
        count = 0
        while not closed.is_set():
            assert cache.get("other") == 1
            count += 1
        gets_during_close.append(count)

    thread = threading.Thread(target=reader)
    thread.start()
    assert cache.delete("slow")  # runs Slow.close() in this thread
    thread.join(timeout=30)
    assert gets_during_close and gets_during_close[0] > 0


def test_item_size_and_close_may_reenter_the_cache_from_the_same_thread() -> None:
    cache = FlexCache("lru", max_items=2, thread_safe=True)

    class Reentrant:
        def __init__(self, name: str) -> None:
            self.name = name
            self.closed = False

        def item_size(self) -> int:
            cache.get("anything")  # the same cache, from inside set()
            return 1

        def close(self) -> None:
            # The same cache, from inside the release of this value: a read and a store.
            self.seen = cache.peek("b")
            cache.put("note", self.name)
            self.closed = True

    first, second = Reentrant("a"), object()
    cache.set("a", first)
    cache.set("b", second)
    cache.set("c", 3)  # evicts "a", whose close() reads "b" and stores a note (evicting "b")
    assert first.closed and first.seen is second
    assert cache.get("note") == "a"


def test_get_or_set_on_different_keys_runs_in_parallel() -> None:
    """Two factories for two keys each wait for the other to start: they can only both
    finish if neither waits for the other's flight."""
    cache = FlexCache(thread_safe=True)
    started = {"a": threading.Event(), "b": threading.Event()}
    results: dict[str, str] = {}

    def factory(mine: str, theirs: str) -> str:
        started[mine].set()
        assert started[theirs].wait(timeout=30), "the other key's factory never started"
        return mine

    def caller(key: str, other: str) -> None:
        results[key] = cache.get_or_set(key, lambda: factory(key, other))

    threads = [
        threading.Thread(target=caller, args=("a", "b")),
        threading.Thread(target=caller, args=("b", "a")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert results == {"a": "a", "b": "b"}
