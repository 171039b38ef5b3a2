"""A tour of FlexCache: ``python -m flexcache``.

The README's examples run for real (the HTTP fetcher is a stub: no network),
then a TTL under a manual clock, statistics, threads, asyncio, a memoized function, the hit
ratios of the eviction policies on one trace (and one written in Python), and a quick
timing next to a plain dict.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from datetime import timedelta

from flexcache import EvictionPolicy, FlexCache, cached
from flexcache.aio import AsyncFlexCache
from flexcache.testing import ManualClock


def section(title: str) -> None:
    print(f"\n== {title} ==")


fetched: list[str] = []  # every URL the stub fetcher "downloads": no network here


def fetch(url: str) -> dict:
    fetched.append(url)
    return {"url": url, "body": f"response #{len(fetched)}"}


response_cache = FlexCache(eviction_policy="lru", max_items=10_000)


def get_api_response(url: str) -> dict:
    cached = response_cache.get(url)
    if cached is not None:
        return cached
    response = fetch(url)
    response_cache.set(url, response, ttl=timedelta(minutes=5))
    return response


def demo_http() -> None:
    section("(a) HTTP response cache: lru, ttl 5 min")
    url = "https://api.example.com/users/123"
    for attempt in ("first ", "second"):
        before = len(fetched)
        body = get_api_response(url)["body"]
        how = "miss, fetched" if len(fetched) > before else "hit, from the cache"
        print(f"{attempt} call: {how:<19} {body!r}   fetch() calls so far: {len(fetched)}")


def demo_sessions() -> None:
    section("(b) Session store: ttl 24 h")
    sessions = FlexCache(eviction_policy="lru", max_items=100_000)
    sessions.set("sess-42", {"user": "alice", "role": "admin"}, ttl=timedelta(hours=24))
    print("create        get('sess-42')    ->", sessions.get("sess-42"))
    print("logout        delete('sess-42') ->", sessions.delete("sess-42"))
    print("after logout  get('sess-42')    ->", sessions.get("sess-42"))
    print("logout again  delete('sess-42') ->", sessions.delete("sess-42"))


class PooledConnection:
    def __init__(self, host: str):
        self.host = host
        print(f"  open  {host}")

    def item_size(self) -> int:
        return 1  # each connection counts as 1

    def close(self) -> None:
        print(f"  close {self.host}   <- close() called by the cache")


def demo_pool() -> None:
    section("(c) Connection pool: lru, max_items=2, close() on eviction")
    pool = FlexCache(eviction_policy="lru", max_items=2)

    def get_connection(host: str) -> PooledConnection:
        conn = pool.get(host)
        if conn is None:
            conn = PooledConnection(host)
            pool.set(host, conn, ttl=timedelta(minutes=30))
        else:
            print(f"  reuse {host}")
        return conn

    for host in ("db-a", "db-b", "db-a", "db-c"):  # db-b is the least recently used
        print(f"get_connection({host!r})")
        get_connection(host)
    print(pool)
    print("clear() for a clean shutdown:")
    pool.clear()


def demo_ttl() -> None:
    section("(d) A TTL under a ManualClock: no sleeping")
    clock = ManualClock()
    cache = FlexCache(clock=clock)
    cache.set("db-ttl", PooledConnection("db-ttl"), ttl=timedelta(seconds=30))
    clock.advance(29)
    print(f"t=29 s  'db-ttl' in cache -> {'db-ttl' in cache}")
    clock.advance(timedelta(seconds=2))
    print("t=31 s  get('db-ttl') ...")
    print(f"        -> {cache.get('db-ttl')}, items = {cache.items}")


def demo_stats() -> None:
    section("(e) Statistics of the HTTP cache above")
    stats = response_cache.stats()
    print(f"  {stats}")
    print(f"  hit ratio {stats.hit_ratio:.2f}")


def demo_threads() -> None:
    section("(f) thread_safe=True: eight threads ask for one report, one builds it")
    reports = FlexCache(eviction_policy="lru", max_items=100, thread_safe=True)
    built: list[str] = []

    def build_report() -> str:
        built.append("report")
        time.sleep(0.05)  # slow work: the other threads wait for this one
        return "quarterly numbers"

    def handle_request() -> None:
        assert reports.get_or_set("q3", build_report) == "quarterly numbers"

    threads = [threading.Thread(target=handle_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"  8 requests, build_report() ran {len(built)} time(s); {reports.stats()}")


def demo_asyncio() -> None:
    section("(g) asyncio: AsyncFlexCache awaits aclose() before a call returns")

    class Session:
        def __init__(self, user: str) -> None:
            self.user = user

        async def aclose(self) -> None:
            await asyncio.sleep(0)
            print(f"  aclose() of {self.user}'s session, awaited by the cache")

    async def main() -> None:
        async with AsyncFlexCache(eviction_policy="lru", max_items=1) as sessions:
            await sessions.set("alice", Session("alice"))
            print("  set('bob') evicts alice ...")
            await sessions.set("bob", Session("bob"))
            print("  ... and set('bob') returned after alice's aclose(); leaving `async with`:")

    asyncio.run(main())


def demo_decorators() -> None:
    section("(h) @cached: memoize a function, with a ttl and cache_info()")

    @cached(max_items=128, ttl=timedelta(minutes=10))
    def exchange_rate(base: str, *, quote: str) -> float:
        print(f"  computing {base}/{quote} ...")
        return {"EUR": 1.08, "GBP": 1.27}[base]

    for base in ("EUR", "EUR", "GBP", "EUR"):
        print(f"  exchange_rate({base!r}, quote='USD') -> {exchange_rate(base, quote='USD')}")
    print(f"  {exchange_rate.cache_info()}")


def demo_policies() -> None:
    section("(i) Policies: one skewed trace with a one-off scan in the middle, cache of 500")
    import random

    rng = random.Random(42)
    weights = [1 / rank**0.9 for rank in range(1, 50_001)]
    popular = rng.choices(range(50_000), weights=weights, k=40_000)
    trace = popular[:20_000] + list(range(10**6, 10**6 + 5_000)) + popular[20_000:]

    # A policy written in Python that knows this trace: its popular keys are the small
    # numbers, so the largest key goes first.
    class LargestKeyFirst(EvictionPolicy):
        def __init__(self) -> None:
            self.keys: set[int] = set()

        def on_insert(self, key: int) -> None:
            self.keys.add(key)

        def on_remove(self, key: int) -> None:
            self.keys.discard(key)

        def victim(self) -> int:
            return max(self.keys)

    policies: list[tuple[str, str | EvictionPolicy]] = [
        (name, name) for name in ("lru", "fifo", "random", "lfu", "tinylfu")
    ]
    policies.append(("python", LargestKeyFirst()))
    for label, policy in policies:
        cache = FlexCache(policy, max_items=500)
        for key in trace:
            if cache.get(key) is None:
                cache.set(key, key)
        stats = cache.stats()
        note = "LargestKeyFirst, an EvictionPolicy written in Python; " if label == "python" else ""
        print(
            f"  {label:8} hit ratio {stats.hit_ratio:6.1%}"
            f"  ({note}evictions {stats.evictions}, rejections {stats.rejections})"
        )


ROUNDS = 5


def per_op_ns(loop, n: int) -> float:
    start = time.perf_counter_ns()
    loop()
    return (time.perf_counter_ns() - start) / n


def demo_timing(n: int = 100_000, small: int = 1_000, rounds: int = ROUNDS) -> None:
    section(f"(j) Timing next to a plain dict: {n:,} ops a loop, best of {rounds} rounds")
    keys = [f"key:{i}" for i in range(n)]
    few = keys[:small] * (n // small)  # the same `small` keys again and again: n lookups
    for k in keys:
        hash(k)  # str hashes are cached: compute them before either side is timed
    d: dict[str, int] = {}
    cache = FlexCache(eviction_policy="lru", max_items=n)
    d_small = dict.fromkeys(keys[:small], 1)
    cache_small = FlexCache(eviction_policy="lru", max_items=small)
    for k in keys[:small]:
        cache_small.set(k, 1)
    d_get, c_get, c_set = d.get, cache.get, cache.set
    ds_get, cs_get = d_small.get, cache_small.get

    def dict_set() -> None:
        for k in keys:
            d[k] = 1

    def cache_set() -> None:
        for k in keys:
            c_set(k, 1)

    def dict_get() -> None:
        for k in keys:
            d_get(k)

    def cache_get() -> None:
        for k in keys:
            c_get(k)

    def dict_get_few() -> None:
        for k in few:
            ds_get(k)

    def cache_get_few() -> None:
        for k in few:
            cs_get(k)

    # A warm-up round for both sides, then `rounds` rounds; in each, dict and FlexCache take
    # turns going first, and the set loop starts from an empty container (a FlexCache set
    # of a live key is a KeyError, and a dict overwrite would be a different operation).
    # Each loop keeps its best round, as timeit advises: slower rounds measure interference.
    loops = {
        f"set, new key ({n:,} keys)": (dict_set, cache_set),
        f"get, hit ({small:,} keys)": (dict_get_few, cache_get_few),
        f"get, hit ({n:,} keys)": (dict_get, cache_get),
    }
    best = {name: [float("inf"), float("inf")] for name in loops}
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as timeit does: no collection pauses inside a timed loop
    try:
        for round_ in range(rounds + 1):
            d.clear()
            cache.clear()
            order = (0, 1) if round_ % 2 else (1, 0)
            for name, pair in loops.items():
                for side in order:
                    ns = per_op_ns(pair[side], n)
                    if round_ > 0:  # round 0 is the warm-up
                        best[name][side] = min(best[name][side], ns)
    finally:
        if gc_was_enabled:
            gc.enable()

    width = max(map(len, loops))
    print(f"{'':{width}}{'dict':>10}{'FlexCache':>12}{'ratio':>8}")
    for name, (a, b) in best.items():
        print(f"{name:{width}}{a:>7.0f} ns{b:>9.0f} ns{b / a:>7.2f}x")
    print(f"(ns per op, loop included: the best of {rounds} interleaved rounds after a warm-up.")
    print(" With many keys, memory latency weighs on both; bench/bench.py has the full table)")


def main() -> None:
    print("FlexCache demo")
    demo_http()
    demo_sessions()
    demo_pool()
    demo_ttl()
    demo_stats()
    demo_threads()
    demo_asyncio()
    demo_decorators()
    demo_policies()
    demo_timing()


if __name__ == "__main__":
    main()
