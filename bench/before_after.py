"""Two builds of FlexCache side by side: the hot paths' ns/op, and the ratio.

    python bench/before_after.py BEFORE_PYTHON AFTER_PYTHON [--rounds 7]

Each argument is an interpreter with a build of flexcache installed (for
instance the `python` of a venv made in a `git worktree` of the old commit).
Every round runs each workload once in a fresh subprocess of each build,
taking turns at going first; a workload's figure is its best round (the
least disturbed, on a shared machine). The ratio is after / before: under
1.00 is faster. Nothing here asserts: it prints a table.
"""

from __future__ import annotations

import argparse
import gc
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta

TTL = timedelta(minutes=5)


def _keys(prefix: str, n: int) -> list[str]:
    keys = [f"{prefix}:{i:09d}" for i in range(n)]
    for k in keys:
        hash(k)  # str hashes are cached: every run starts with them computed
    return keys


def _timed(loop: Callable[[], None], ops: int) -> float:
    gc.disable()
    start = time.perf_counter_ns()
    loop()
    elapsed = time.perf_counter_ns() - start
    gc.enable()
    return elapsed / ops


def get_hit(n: int) -> float:
    from flexcache import FlexCache

    cache = FlexCache("lru", max_items=n)
    keys = _keys("key", n)
    for k in keys:
        cache.set(k, 1)
    lookups = random.Random(1).choices(keys, k=max(n, 200_000))
    get = cache.get

    def loop() -> None:
        for k in lookups:
            get(k)

    return _timed(loop, len(lookups))


def get_miss(n: int) -> float:
    from flexcache import FlexCache

    cache = FlexCache("lru", max_items=n)
    for k in _keys("key", n):
        cache.set(k, 1)
    misses = _keys("miss", 200_000)
    get = cache.get

    def loop() -> None:
        for k in misses:
            get(k)

    return _timed(loop, len(misses))


def set_new(n: int, ttl: object = None) -> float:
    from flexcache import FlexCache

    keys = _keys("new", n)
    rounds = max(1, 200_000 // n)
    caches = [FlexCache("lru", max_items=n) for _ in range(rounds)]

    def loop() -> None:
        for cache in caches:
            set_ = cache.set
            for k in keys:
                set_(k, 1, ttl)

    return _timed(loop, rounds * n)


def set_evict(policy: str, n: int) -> float:
    from flexcache import FlexCache

    cache = FlexCache(policy, max_items=n)
    for k in _keys("fill", n):
        cache.set(k, 1)
    keys = _keys("evict", 200_000)
    set_ = cache.set

    def loop() -> None:
        for k in keys:
            set_(k, 1)

    return _timed(loop, len(keys))


def delete(n: int) -> float:
    from flexcache import FlexCache

    keys = _keys("del", n)
    rounds = max(1, 200_000 // n)
    caches = [FlexCache("lru", max_items=n) for _ in range(rounds)]
    for cache in caches:
        for k in keys:
            cache.set(k, 1)

    def loop() -> None:
        for cache in caches:
            delete_ = cache.delete
            for k in keys:
                delete_(k)

    return _timed(loop, rounds * n)


WORKLOADS: dict[str, Callable[[], float]] = {
    "get hit, lru, 1k": lambda: get_hit(1_000),
    "get hit, lru, 100k": lambda: get_hit(100_000),
    "get miss, lru, 100k": lambda: get_miss(100_000),
    "set new, lru, 1k": lambda: set_new(1_000),
    "set new with a ttl, 1k": lambda: set_new(1_000, TTL),
    "set evicting, lru, 1k": lambda: set_evict("lru", 1_000),
    "set evicting, random, 1k": lambda: set_evict("random", 1_000),
    "delete, 1k": lambda: delete(1_000),
}


def _run(python: str, workload: str) -> float:
    out = subprocess.run(
        [python, __file__, "--worker", workload],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "0", "PATH": ""},
    )
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", nargs="?", help="interpreter with the old build")
    parser.add_argument("after", nargs="?", help="interpreter with the new build")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(WORKLOADS[args.worker]())
        return
    if not (args.before and args.after):
        parser.error("give the two interpreters")
    best: dict[tuple[str, str], float] = {}
    for round_ in range(args.rounds):
        for workload in WORKLOADS:
            order = (args.before, args.after) if round_ % 2 == 0 else (args.after, args.before)
            for python in order:
                ns = _run(python, workload)
                slot = (workload, python)
                best[slot] = min(best.get(slot, ns), ns)
    print(f"best of {args.rounds} rounds, ns per call (after / before: under 1.00 is faster)\n")
    print("| workload | before | after | after / before |")
    print("| --- | ---: | ---: | ---: |")
    for workload in WORKLOADS:
        before, after = best[(workload, args.before)], best[(workload, args.after)]
        print(f"| {workload} | {before:.1f} | {after:.1f} | {after / before:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
