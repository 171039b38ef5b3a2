"""A tour of FlexCache: ``python -m flexcache``.

The README's examples run for real (the HTTP fetcher is a stub: no network),
then a TTL under a manual clock and a quick timing next to a plain dict.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flexcache import FlexCache
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


def per_op_ns(loop, n: int) -> float:
    start = time.perf_counter_ns()
    loop()
    return (time.perf_counter_ns() - start) / n


def demo_timing(n: int = 200_000) -> None:
    section(f"(e) Timing: {n:,} ops next to a plain dict")
    keys = [f"key:{i}" for i in range(n)]
    for k in keys:
        hash(k)  # str hashes are cached: compute them before either side is timed
    d: dict[str, int] = {}
    cache = FlexCache(eviction_policy="lru", max_items=n)
    d_get, c_get, c_set = d.get, cache.get, cache.set

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

    print(f"{'':6}{'dict':>10}{'FlexCache':>12}{'ratio':>8}")
    for name, on_dict, on_cache in (("set", dict_set, cache_set), ("get", dict_get, cache_get)):
        a, b = per_op_ns(on_dict, n), per_op_ns(on_cache, n)
        print(f"{name:6}{a:>7.0f} ns{b:>9.0f} ns{b / a:>7.2f}x")
    print("(one run each, loop included; python bench/bench.py prints the full table)")


def main() -> None:
    print("FlexCache demo")
    demo_http()
    demo_sessions()
    demo_pool()
    demo_ttl()
    demo_timing()


if __name__ == "__main__":
    main()
