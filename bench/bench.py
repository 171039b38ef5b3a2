"""FlexCache next to a plain dict: ns/op and the ratio to the dict baseline.

Run with ``python bench/bench.py`` (about two minutes) or ``--fast`` for a
smoke run of a few seconds. Every figure is the median of several repetitions
of a loop over a pre-built list of str keys, timed with ``perf_counter_ns``
while the garbage collector is off. The dict and the cache run the *same* loop
function with the operation bound to a local name (``get = d.get`` /
``get = cache.get``), so the loop overhead is the same on both sides.

The set baselines are the ``d[k] = v`` statement, which makes no method call;
the cache's ``set`` cannot avoid one, so those ratios include it.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import NamedTuple

from flexcache import FlexCache

VALUE = "payload"
TTL = timedelta(minutes=5)


# --------------------------------------------------------------------------- loops
# Each loop is a function of (operation, keys) so the dict and the cache run
# byte-for-byte the same code; only the bound operation differs.


def loop_call1(op: Callable, keys: list[str]) -> None:
    for k in keys:
        op(k)


def loop_call2(op: Callable, keys: list[str]) -> None:
    value = VALUE
    for k in keys:
        op(k, value)


def loop_call3(op: Callable, keys: list[str]) -> None:
    value, ttl = VALUE, TTL
    for k in keys:
        op(k, value, ttl)


def loop_store(d: dict, keys: list[str]) -> None:
    value = VALUE
    for k in keys:
        d[k] = value


def loop_empty(op: Callable, keys: list[str]) -> None:
    for _k in keys:  # the body is intentionally empty
        pass


# --------------------------------------------------------------------------- timing


def time_ns_per_op(loop: Callable, op: object, keys: list[str]) -> float:
    """One timed run of ``loop(op, keys)`` with the collector off."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        loop(op, keys)
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return elapsed / len(keys)


def make_keys(prefix: str, n: int) -> list[str]:
    keys = [f"{prefix}:{i:09d}" for i in range(n)]
    for k in keys:  # cache each str's hash so neither side pays for it first
        hash(k)
    return keys


class Row(NamedTuple):
    workload: str
    n: int | None  # entries in the structure, where that is fixed
    dict_ns: float
    cache_ns: float


class Bench:
    def __init__(self, ops: int, reps: int, sizes: list[int], capacity: int):
        self.ops, self.reps, self.sizes, self.capacity = ops, reps, sizes, capacity
        self.rng = random.Random(1234)  # the same key orders on every run

    def add(self, workload: str, n: int | None, dict_runs: list[float], cache_runs: list[float]):
        print_row(Row(workload, n, statistics.median(dict_runs), statistics.median(cache_runs)))

    # ----------------------------------------------------------------------- workloads

    def get_hit(self) -> None:
        """get of a present key, keys drawn at random from the n stored."""
        for n in self.sizes:
            keys = make_keys("key", n)
            lookups = self.rng.choices(keys, k=self.ops)
            d = dict.fromkeys(keys, VALUE)
            caches = {
                "get hit, lru bounded": FlexCache("lru", max_items=n),
                "get hit, fifo bounded": FlexCache("fifo", max_items=n),
                "get hit, unbounded": FlexCache(),
            }
            for cache in caches.values():
                for k in keys:
                    cache.set(k, VALUE)
            for name, cache in caches.items():
                dict_runs, cache_runs = [], []
                for _ in range(self.reps):
                    dict_runs.append(time_ns_per_op(loop_call1, d.get, lookups))
                    cache_runs.append(time_ns_per_op(loop_call1, cache.get, lookups))
                self.add(name, n, dict_runs, cache_runs)
            del caches, d

    def get_miss(self) -> None:
        """get of an absent key in a cache of 100k entries."""
        n = min(100_000, max(self.sizes))
        keys = make_keys("key", n)
        misses = make_keys("miss", self.ops)
        d = dict.fromkeys(keys, VALUE)
        cache = FlexCache("lru", max_items=n)
        for k in keys:
            cache.set(k, VALUE)
        dict_runs, cache_runs = [], []
        for _ in range(self.reps):
            dict_runs.append(time_ns_per_op(loop_call1, d.get, misses))
            cache_runs.append(time_ns_per_op(loop_call1, cache.get, misses))
        self.add("get miss, lru bounded", n, dict_runs, cache_runs)

    def set_new(self) -> None:
        """set of ``ops`` new keys into an empty unbounded cache, without and with a ttl."""
        keys = make_keys("new", self.ops)
        for name, loop in (("set new, no ttl", loop_call2), ("set new, ttl=5 min", loop_call3)):
            dict_runs, cache_runs = [], []
            for _ in range(self.reps):
                d: dict[str, str] = {}
                dict_runs.append(time_ns_per_op(loop_store, d, keys))
                cache = FlexCache()
                cache_runs.append(time_ns_per_op(loop, cache.set, keys))
                del d, cache
            self.add(name, None, dict_runs, cache_runs)

    def delete(self) -> None:
        """delete of every key, in random order, vs ``d.pop(k)``."""
        keys = make_keys("del", self.ops)
        order = keys[:]
        self.rng.shuffle(order)
        dict_runs, cache_runs = [], []
        for _ in range(self.reps):
            d = dict.fromkeys(keys, VALUE)
            cache = FlexCache("lru", max_items=len(keys))
            for k in keys:
                cache.set(k, VALUE)
            dict_runs.append(time_ns_per_op(loop_call1, d.pop, order))
            cache_runs.append(time_ns_per_op(loop_call1, cache.delete, order))
            del d, cache
        self.add("delete, lru bounded", len(keys), dict_runs, cache_runs)

    def set_evict(self) -> None:
        """set of new keys into a full cache: every set evicts one entry (dict: plain store)."""
        cap = self.capacity
        fill = make_keys("fill", cap)
        keys = make_keys("evict", self.ops)
        for policy in ("lru", "fifo", "random"):
            dict_runs, cache_runs = [], []
            for _ in range(self.reps):
                d = dict.fromkeys(fill, VALUE)
                dict_runs.append(time_ns_per_op(loop_store, d, keys))
                cache = FlexCache(policy, max_items=cap)
                for k in fill:
                    cache.set(k, VALUE)
                cache_runs.append(time_ns_per_op(loop_call2, cache.set, keys))
                del d, cache
            self.add(f"set evicting, {policy}", cap, dict_runs, cache_runs)


# --------------------------------------------------------------------------- output


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


HEADER = f"{'workload':<24} {'n':>9} {'dict ns/op':>11} {'FlexCache ns/op':>16} {'ratio':>7}"


def print_row(row: Row) -> None:
    n = f"{row.n:,}" if row.n is not None else "-"
    ratio = row.cache_ns / row.dict_ns
    print(
        f"{row.workload:<24} {n:>9} {row.dict_ns:>11.1f} {row.cache_ns:>16.1f} {ratio:>6.2f}x",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="smoke run: fewer ops, 3 repetitions")
    args = parser.parse_args()

    if args.fast:
        bench = Bench(ops=100_000, reps=3, sizes=[1_000, 100_000], capacity=10_000)
    else:
        bench = Bench(ops=1_000_000, reps=5, sizes=[1_000, 100_000, 1_000_000], capacity=100_000)

    print(f"machine: {platform.platform()}")
    print(f"cpu:     {cpu_model()}")
    print(f"python:  {sys.version.split()[0]} ({platform.python_implementation()})")
    if hasattr(os, "getloadavg"):  # other work on the machine shows up as noise
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load:    {load} (1, 5, 15 min) on {os.cpu_count()} cpus")
    print(f"ops per timing: {bench.ops:,}; median of {bench.reps} repetitions; gc off while timing")
    keys = make_keys("loop", bench.ops)
    empty = statistics.median(time_ns_per_op(loop_empty, None, keys) for _ in range(bench.reps))
    print(f"empty loop (included in every figure): {empty:.1f} ns/op")
    print()
    print(HEADER)
    print("-" * len(HEADER))
    started = time.perf_counter()
    bench.get_hit()
    bench.get_miss()
    bench.set_new()
    bench.delete()
    bench.set_evict()
    print("-" * len(HEADER))
    print("ratio = FlexCache / dict. Baselines: d.get(k); d[k] = v (also for 'set evicting',")
    print("where the dict just grows); d.pop(k) for delete. Keys are looked up in random order.")
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
