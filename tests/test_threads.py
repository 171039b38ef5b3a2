"""SPEC "Threads": without a lock, calls from several threads work or raise RuntimeError and
never corrupt the cache; with the README's external lock, the cache works from any thread."""

from __future__ import annotations

import gc
import random
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from conftest import Expect, check_cache, run_threads
from flexcache import FlexCache
from flexcache.testing import ManualClock

N_THREADS = 8


@pytest.mark.parametrize("policy", ["lru", "random"])
def test_no_lock_works_or_raises_runtime_error(
    policy: str, busy_switching: None, tracker, check
) -> None:
    cache = FlexCache(policy, 0, 40, 150)
    stored: list = []
    errors: list[BaseException] = []
    outcomes: Counter[str] = Counter()
    barrier = threading.Barrier(N_THREADS)
    deadline = [0.0]

    def yield_gil(value: object) -> None:
        time.sleep(0)  # let another thread run while the cache is inside a callback

    def peek(value: object) -> None:
        time.sleep(0)
        cache.get("k1")
        _ = cache.items

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        if seed == 0:
            deadline[0] = time.monotonic() + 0.5
        while not deadline[0]:
            time.sleep(0)
        while time.monotonic() < deadline[0]:
            key = f"k{rng.randrange(60)}"
            roll = rng.random()
            try:
                if roll < 0.4:
                    value = tracker(
                        f"{key}@{seed}",
                        rng.choice([0, 1, 3, 8]),
                        on_close=rng.choice([None, yield_gil, peek]),
                        on_size=rng.choice([None, yield_gil]),
                    )
                    cache.set(key, value, ttl=rng.choice([None, None, 0.001, 0.05]))
                    stored.append(value)
                elif roll < 0.65:
                    cache.get(key)
                elif roll < 0.75:
                    cache.delete(key)
                elif roll < 0.82:
                    _ = key in cache
                elif roll < 0.88:
                    cache.scan()
                elif roll < 0.885:
                    cache.clear()
                else:
                    _ = (cache.items, cache.bytes, len(cache), repr(cache), cache.max_items)
                outcomes["ok"] += 1
            except RuntimeError:
                outcomes["RuntimeError"] += 1
            except KeyError:
                if roll >= 0.4:
                    errors.append(AssertionError(f"KeyError from a non-set operation {roll}"))
                outcomes["KeyError"] += 1
            except BaseException as error:
                errors.append(error)

    run_threads(worker)
    assert errors == []
    assert outcomes["ok"] > 1000
    check(cache)
    assert all(value.closes <= 1 for value in stored)
    held = [value for value in stored if value.closes == 0]
    assert cache.items == len(held)
    assert cache.bytes == sum(value.size for value in held)
    for value in held:
        assert value.name.split("@")[0] in cache or cache.get(value.name.split("@")[0]) is None
    cache.clear()
    assert cache.items == 0
    assert cache.bytes == 0
    assert all(value.closes == 1 for value in stored)


def test_readme_external_lock_from_many_threads() -> None:
    # As in the README's "Thread Safety" section.
    cache = FlexCache(eviction_policy="lru", max_items=1000)
    lock = threading.Lock()

    def cached_get(key):
        with lock:
            return cache.get(key)

    def cached_set(key, value, ttl=None):
        with lock:
            cache.set(key, value, ttl=ttl)

    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(120):
                cached_set(f"t{n}:{i}", (n, i), ttl=3600 if i % 2 else None)
            for i in range(120):
                assert cached_get(f"t{n}:{i}") == (n, i)
            for i in range(0, 120, 3):
                with lock:
                    assert cache.delete(f"t{n}:{i}") is True
        except BaseException as error:  # pragma: no cover
            errors.append(error)

    run_threads(worker)
    assert errors == []
    assert cache.items == N_THREADS * 80
    assert len(cache) == cache.items


def test_created_in_one_thread_used_and_dropped_in_another(tracker) -> None:
    made: list[FlexCache] = []
    errors: list[BaseException] = []

    def make(_: int) -> None:
        cache = FlexCache(max_items=3)
        cache.set("from-thread", tracker("from-thread"))
        made.append(cache)

    run_threads(make, 1)
    assert made[0].get("from-thread").name == "from-thread"
    made[0].set("main", tracker("main"))
    lock = threading.Lock()

    def use(n: int) -> None:
        try:
            with lock:
                made[0].set(f"w{n}", tracker(f"w{n}"))
                made[0].get("main")
                made[0].scan()
        except BaseException as error:  # pragma: no cover
            errors.append(error)

    run_threads(use, 4)
    assert errors == []
    assert made[0].items == 3
    assert len(tracker.closed) == 3

    def drop(_: int) -> None:
        made.pop().clear()
        gc.collect()

    run_threads(drop, 1)
    gc.collect()
    assert made == []
    assert len(tracker.closed) == 6


# === Moved from test_adversarial.py: threads without a lock =======================================
# Their helpers (Expect, Val, filled, MISSING) are in conftest.py.

# --- threads ---------------------------------------------------------------------------------


class ThreadVal:
    __slots__ = ("closes", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.closes = 0

    def item_size(self) -> int:
        if self.size == 3:
            time.sleep(0)  # yield the GIL before the cache is touched
        return self.size

    def close(self) -> None:
        self.closes += 1
        if self.size == 2:
            time.sleep(0)  # yield the GIL after the cache let go


@pytest.mark.parametrize("policy", ["lru", "fifo", "random"])
def test_threads_without_a_lock(policy: str, busy_switching: None) -> None:
    clock = ManualClock()
    cache = FlexCache(policy, 0.5, 16, 40, clock=clock)
    keys = [f"t{i}" for i in range(64)]
    accepted: list[ThreadVal] = []
    refused: list[ThreadVal] = []
    unexpected: list[BaseException] = []
    runtime_errors = [0]
    stop_at = time.monotonic() + 0.6  # three policies: ~2 s in all

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while time.monotonic() < stop_at:
                for _ in range(50):
                    op = rng.random()
                    key = rng.choice(keys)
                    try:
                        if op < 0.35:
                            value = ThreadVal(rng.randint(0, 4))
                            ttl = rng.choice([None, None, 0.25, 1, timedelta(seconds=2)])
                            try:
                                cache.set(key, value, ttl=ttl)
                            except (KeyError, RuntimeError):
                                refused.append(value)
                                raise
                            accepted.append(value)
                        elif op < 0.6:
                            got = cache.get(key)
                            assert got is None or isinstance(got, ThreadVal)
                        elif op < 0.75:
                            cache.delete(key)
                        elif op < 0.85:
                            assert isinstance(key in cache, bool)
                        elif op < 0.9:
                            cache.scan()
                        elif op < 0.95:
                            assert len(cache) >= 0
                            assert cache.bytes >= 0
                        elif op < 0.99:
                            clock.advance(0.05)
                        else:
                            cache.clear()
                    except KeyError:
                        pass
                    except RuntimeError:
                        runtime_errors[0] += 1
        except BaseException as error:  # pragma: no cover - reported below
            unexpected.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a thread hangs: deadlock?"
    assert unexpected == []
    assert len(accepted) > 100

    # Consistent afterwards: after a scan, every counted entry is live and get-able.
    cache.scan()
    check_cache(cache)
    expect = Expect(cache)
    for key in keys:
        if key in cache:
            value = cache.get(key)
            assert isinstance(value, ThreadVal)
            assert value.closes == 0
            expect.add(key, value, value.size)
    expect.verify(absent=keys)
    # Every value the cache took is closed exactly once by the end; refused ones never.
    cache.clear()
    assert cache.items == 0
    assert cache.bytes == 0
    assert all(v.closes == 1 for v in accepted), [v.closes for v in accepted if v.closes != 1]
    assert all(v.closes == 0 for v in refused)
