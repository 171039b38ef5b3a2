"""Threads, thread_safe=True and the memoizing decorators, next to their peers, in one run.

    python bench/concurrency.py [--fast]

Three tables:
1. One thread: ``thread_safe=True`` against ``False`` on a get hit and a set (ratio).
2. Four threads on one cache, a Zipf(1.0) get-or-set with a 300 s ttl over 100k keys
   (capacity 10k): aggregate ops/s, FlexCache(thread_safe=True).get_or_set next to theine
   and moka-py (thread-safe themselves) and cachetools' TTLCache behind a threading.Lock.
3. The hit path of a memoized function of two int arguments: flexcache.cached next to
   functools.lru_cache, cachetools.cached and cachebox.cached; and for ``async def``,
   next to async_lru.alru_cache and cachebox.cached.

Best of the repetitions, ratios against the first row of each table. Peers come from
``bench/requirements.txt``; one that is missing is printed as such. Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib
import itertools
import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flexcache import FlexCache, cached

VALUE = "payload"
TTL_SECONDS = 300.0


def best_ns_per_op(run: Callable[[], object], ops: int, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        gc.collect()
        gc.disable()
        start = time.perf_counter_ns()
        run()
        best = min(best, (time.perf_counter_ns() - start) / ops)
        gc.enable()
    return best


def optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print(f"\n## {title}\n")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


# ---------------------------------------------------------------- 1. one thread


def single_thread(reps: int) -> None:
    n = 1_000
    keys = [f"key:{i:06d}" for i in range(n)]
    lookups = random.Random(1).choices(keys, k=200_000)
    new_keys = [f"new:{i:06d}" for i in range(200_000)]
    rows = []
    results: dict[str, list[float]] = {}
    for thread_safe in (False, True):
        cache = FlexCache("lru", max_items=n, thread_safe=thread_safe)
        for k in keys:
            cache.set(k, VALUE)
        get = cache.get

        def gets(get: Callable[[str], object] = get) -> None:
            for k in lookups:
                get(k)

        def sets(thread_safe: bool = thread_safe) -> None:
            set_ = FlexCache("lru", max_items=n, thread_safe=thread_safe).set
            for k in new_keys:
                set_(k, VALUE)

        results[str(thread_safe)] = [
            best_ns_per_op(gets, len(lookups), reps),
            best_ns_per_op(sets, len(new_keys), reps),
        ]
    plain, safe = results["False"], results["True"]
    for name, a, b in (
        ("get hit, 1k keys", plain[0], safe[0]),
        ("set, evicting", plain[1], safe[1]),
    ):
        rows.append([name, f"{a:.1f}", f"{b:.1f}", f"{b / a:.2f}x"])
    table(
        "one thread: thread_safe=True against False (ns/op)",
        ["workload", "False", "True", "ratio"],
        rows,
    )


# ---------------------------------------------------------------- 2. four threads


def zipf_trace(universe: int, ops: int) -> list[str]:
    keys = [f"z:{i:07d}" for i in range(universe)]
    weights = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(universe)))
    return random.Random(7).choices(keys, cum_weights=weights, k=ops)


def four_threads(reps: int, fast: bool) -> None:
    universe, per_thread, threads = 100_000, (50_000 if fast else 200_000), 4
    capacity = universe // 10
    trace = zipf_trace(universe, per_thread * threads)
    slices = [trace[i * per_thread : (i + 1) * per_thread] for i in range(threads)]
    contenders: list[tuple[str, Callable[[], Callable[[list[str]], None]]]] = []

    def flexcache_runner() -> Callable[[list[str]], None]:
        cache = FlexCache("lru", max_items=capacity, thread_safe=True)
        get_or_set = cache.get_or_set

        def make() -> str:
            return VALUE

        def run(keys: list[str]) -> None:
            for k in keys:
                get_or_set(k, make, TTL_SECONDS)

        return run

    contenders.append(("FlexCache('lru', thread_safe=True).get_or_set", flexcache_runner))

    theine = optional("theine")
    if theine is not None:

        def theine_runner() -> Callable[[list[str]], None]:
            cache = theine.Cache(capacity)
            ttl = timedelta(seconds=TTL_SECONDS)

            def run(keys: list[str]) -> None:
                get, set_ = cache.get, cache.set
                for k in keys:
                    _, found = get(k)
                    if not found:
                        set_(k, VALUE, ttl)

            return run

        contenders.append(("theine Cache(n): get, on a miss set", theine_runner))

    moka = optional("moka_py")
    if moka is not None:

        def moka_runner() -> Callable[[list[str]], None]:
            cache = moka.Moka(capacity, policy="lru")

            def run(keys: list[str]) -> None:
                get, set_ = cache.get, cache.set
                for k in keys:
                    if get(k) is None:
                        set_(k, VALUE, TTL_SECONDS)

            return run

        contenders.append(("moka-py Moka(n, policy='lru'): get, on a miss set", moka_runner))

    cachetools = optional("cachetools")
    if cachetools is not None:

        def cachetools_runner() -> Callable[[list[str]], None]:
            cache = cachetools.TTLCache(capacity, TTL_SECONDS)
            lock = threading.Lock()

            def run(keys: list[str]) -> None:
                for k in keys:
                    with lock:
                        if cache.get(k) is None:
                            cache[k] = VALUE

            return run

        contenders.append(("cachetools TTLCache(n, 300) + threading.Lock", cachetools_runner))

    rows = []
    base = None
    for label, make_runner in contenders:
        best = 0.0
        for _ in range(reps):
            run = make_runner()
            barrier = threading.Barrier(threads + 1)

            def worker(
                keys: list[str],
                run: Callable[[list[str]], None] = run,
                barrier: threading.Barrier = barrier,
            ) -> None:
                barrier.wait()
                run(keys)

            workers = [threading.Thread(target=worker, args=(s,)) for s in slices]
            for w in workers:
                w.start()
            barrier.wait()
            start = time.perf_counter()
            for w in workers:
                w.join()
            best = max(best, len(trace) / (time.perf_counter() - start))
        base = base or best
        rows.append([label, f"{best / 1e6:.2f}", f"{best / base:.2f}x"])
    for name in ("theine", "moka_py", "cachetools"):
        if optional(name) is None:
            rows.append([f"{name}: not installed", "-", "-"])
    table(
        f"{threads} threads, Zipf get-or-set with a ttl: {universe:,} keys, capacity "
        f"{capacity:,}, {len(trace):,} ops (aggregate M ops/s)",
        ["implementation", "M ops/s", "vs FlexCache"],
        rows,
    )


# ---------------------------------------------------------------- 3. decorators


def decorators(reps: int) -> None:
    pairs = [(i % 40, i // 40) for i in range(1_000)]
    calls = random.Random(3).choices(pairs, k=200_000)

    def add(a: int, b: int) -> int:
        return a + b

    contenders: list[tuple[str, Callable[..., int]]] = [
        ("functools.lru_cache(4096)", functools.lru_cache(maxsize=4096)(add)),
        ("flexcache.cached(max_items=4096)", cached(max_items=4096)(add)),
    ]
    cachetools = optional("cachetools")
    if cachetools is not None:
        contenders.append(
            ("cachetools.cached(LRUCache(4096))", cachetools.cached(cachetools.LRUCache(4096))(add))
        )
    cachebox = optional("cachebox")
    if cachebox is not None:
        contenders.append(
            ("cachebox.cached(LRUCache(4096))", cachebox.cached(cachebox.LRUCache(4096))(add))
        )
    rows = []
    base = None
    for label, function in contenders:
        for a, b in pairs:
            function(a, b)  # warm: every timed call is a hit

        def run(function: Callable[..., int] = function) -> None:
            for a, b in calls:
                function(a, b)

        ns = best_ns_per_op(run, len(calls), reps)
        base = base or ns
        rows.append([label, f"{ns:.1f}", f"{ns / base:.2f}x"])
    table(
        "memoized f(a, b) of two ints, hit path (ns/call)",
        ["decorator", "ns/call", "vs lru_cache"],
        rows,
    )

    async def add_async(a: int, b: int) -> int:
        return a + b

    async_contenders: list[tuple[str, Callable[..., Any]]] = [
        ("flexcache.cached(max_items=4096)", cached(max_items=4096)(add_async)),
    ]
    async_lru = optional("async_lru")
    if async_lru is not None:
        async_contenders.append(
            ("async_lru.alru_cache(4096)", async_lru.alru_cache(maxsize=4096)(add_async))
        )
    if cachebox is not None:
        async_contenders.append(
            ("cachebox.cached(LRUCache(4096))", cachebox.cached(cachebox.LRUCache(4096))(add_async))
        )
    rows = []
    base = None
    for label, function in async_contenders:

        async def warm_and_time(function: Callable[..., Any] = function) -> float:
            for a, b in pairs:
                await function(a, b)
            best = float("inf")
            for _ in range(reps):
                gc.collect()
                gc.disable()
                start = time.perf_counter_ns()
                for a, b in calls:
                    await function(a, b)
                best = min(best, (time.perf_counter_ns() - start) / len(calls))
                gc.enable()
            return best

        ns = asyncio.run(warm_and_time())
        base = base or ns
        rows.append([label, f"{ns:.1f}", f"{ns / base:.2f}x"])
    if async_lru is None:
        rows.append(["async_lru: not installed", "-", "-"])
    table(
        "memoized async def f(a, b), hit path (ns/await)",
        ["decorator", "ns/await", "vs flexcache"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a smoke run: fewer repetitions")
    args = parser.parse_args()
    reps = 2 if args.fast else 5
    single_thread(reps)
    four_threads(reps, args.fast)
    decorators(reps)


if __name__ == "__main__":
    main()
