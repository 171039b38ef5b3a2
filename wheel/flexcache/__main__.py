"""A tour of FlexCache: ``python -m flexcache``.

The README's examples, run for real (no network: the HTTP fetcher is a stub),
then a TTL under a manual clock and a quick timing next to a plain dict.
"""

from __future__ import annotations

import gc
import time
from datetime import timedelta

from flexcache import FlexCache
from flexcache.testing import ManualClock


def section(title: str) -> None:
    print(f"\n== {title} ==")


# --- (a) HTTP response cache ------------------------------------------------------

fetch_calls = 0


def fetch(url: str) -> dict:
    """Stands in for ``requests.get(url).json()`` and counts how often it runs."""
    global fetch_calls
    fetch_calls += 1
    return {"url": url, "body": f"response #{fetch_calls}"}


response_cache = FlexCache(eviction_policy="lru", max_items=10_000)


def get_api_response(url: str) -> dict:
    cached = response_cache.get(url)
    if cached is not None:
        return cached
    response = fetch(url)
    response_cache.set(url, response, ttl=timedelta(minutes=5))
    return response


def demo_http() -> None:
    section("HTTP response cache (lru, 5 min ttl)")
    url = "https://api.example.com/users/123"
    for attempt in ("first", "second"):
        before = fetch_calls
        response = get_api_response(url)
        how = "miss -> fetched" if fetch_calls > before else "hit  -> from cache"
        print(f"{attempt} call: {how}: {response['body']!r} (fetch calls so far: {fetch_calls})")


# --- (b) session store ------------------------------------------------------------


def demo_sessions() -> None:
    section("Session store (24 h ttl)")
    sessions = FlexCache(eviction_policy="lru", max_items=100_000)
    sessions.set("sess-42", {"user": "alice", "role": "admin"}, ttl=timedelta(hours=24))
    print("after create: get('sess-42') =", sessions.get("sess-42"))
    print("logout:       delete('sess-42') =", sessions.delete("sess-42"))
    print("after logout: get('sess-42') =", sessions.get("sess-42"))
    print("logout again: delete('sess-42') =", sessions.delete("sess-42"))


# --- (c) connection pool with cleanup -----------------------------------------------


class PooledConnection:
    def __init__(self, host: str):
        self.host = host
        print(f"  open  {host}")

    def item_size(self) -> int:
        return 1  # each connection counts as 1

    def close(self) -> None:
        print(f"  close {self.host}  <- close() called by the cache")


def demo_pool() -> None:
    section("Connection pool (lru, max_items=2): close() runs on eviction")
    pool = FlexCache(eviction_policy="lru", max_items=2)

    def get_connection(host: str) -> PooledConnection:
        conn = pool.get(host)
        if conn is None:
            conn = PooledConnection(host)
            pool.set(host, conn, ttl=timedelta(minutes=30))
        else:
            print(f"  reuse {host}")
        return conn

    for host in ("db-a", "db-b", "db-a", "db-c"):
        print(f"get_connection({host!r})")
        get_connection(host)
    print(f"pool holds {sorted(h for h in ('db-a', 'db-b', 'db-c') if h in pool)}: {pool!r}")
    print("clear() for a clean shutdown:")
    pool.clear()


# --- (d) a TTL under a manual clock -------------------------------------------------


def demo_ttl() -> None:
    section("TTL under a ManualClock (no sleeping)")
    clock = ManualClock()
    cache = FlexCache(clock=clock)
    cache.set("db-ttl", PooledConnection("db-ttl"), ttl=timedelta(seconds=30))
    clock.advance(29)
    print(f"t=29 s: 'db-ttl' in cache -> {'db-ttl' in cache}")
    clock.advance(timedelta(seconds=2))
    print("t=31 s: get('db-ttl') ...")
    print(f"        -> {cache.get('db-ttl')}; items = {cache.items}")


# --- (e) a quick timing -------------------------------------------------------------


def time_loop(op, keys: list[str]) -> float:
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for k in keys:
            op(k)
        return (time.perf_counter_ns() - start) / len(keys)
    finally:
        gc.enable()


def demo_timing(n: int = 200_000) -> None:
    section(f"Timing: {n:,} ops next to a plain dict")
    keys = [f"key:{i}" for i in range(n)]
    d: dict[str, int] = {}
    cache = FlexCache(eviction_policy="lru", max_items=n)
    set_dict = time_loop(lambda k: d.__setitem__(k, 1), keys)
    set_cache = time_loop(lambda k: cache.set(k, 1), keys)
    get_dict = time_loop(d.get, keys)
    get_cache = time_loop(cache.get, keys)
    print(f"{'':6}{'dict':>10}{'FlexCache':>12}{'ratio':>8}")
    for name, a, b in (("set", set_dict, set_cache), ("get", get_dict, get_cache)):
        print(f"{name:6}{a:>7.0f} ns{b:>9.0f} ns{b / a:>7.2f}x")
    print("(one run, loop overhead included; see bench/bench.py for the full table)")


def main() -> None:
    print("FlexCache demo")
    demo_http()
    demo_sessions()
    demo_pool()
    demo_ttl()
    demo_timing()


if __name__ == "__main__":
    main()
