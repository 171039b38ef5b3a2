"""One FlexCache loop, alone, for a profiler to watch.

    valgrind --tool=callgrind python bench/profile_loop.py get-hit --n 1000
    perf record -g python bench/profile_loop.py set-evict-random

Each workload builds its cache and keys first (cheap next to the loop), then
runs the loop `--rounds` times over its keys. Subtract a run with
`--rounds 0` to take the set-up out of a callgrind count (`delete` refills
its cache each round: subtract `set-new` at the same `--n` and `--rounds`
instead). Nothing is timed
or printed: this is the thing to profile, not a benchmark (`bench.py` and
`compare.py` are those).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from datetime import timedelta

from flexcache import FlexCache

TTL = timedelta(minutes=5)


def get_hit(n: int, rounds: int, policy: str = "lru") -> None:
    cache = FlexCache(policy, max_items=n)
    keys = [f"key:{i:09d}" for i in range(n)]
    for k in keys:
        cache.set(k, 1)
    lookups = random.Random(1).choices(keys, k=n)
    get = cache.get
    for _ in range(rounds):
        for k in lookups:
            get(k)


def set_new(n: int, rounds: int, ttl: object = None) -> None:
    keys = [f"new:{i:09d}" for i in range(n)]
    for _ in range(rounds):
        cache = FlexCache("lru", max_items=n)
        set_ = cache.set
        for k in keys:
            set_(k, 1, ttl)


def set_evict(policy: str) -> Callable[[int, int], None]:
    def run(n: int, rounds: int) -> None:
        cache = FlexCache(policy, max_items=n)
        for i in range(n):
            cache.set(f"fill:{i:09d}", 1)
        keys = [f"evict:{i:09d}" for i in range(n * max(rounds, 0))]
        set_ = cache.set
        for k in keys:
            set_(k, 1)

    return run


def delete(n: int, rounds: int) -> None:
    keys = [f"del:{i:09d}" for i in range(n)]
    order = keys[:]
    random.Random(1).shuffle(order)
    for _ in range(rounds):
        cache = FlexCache("lru", max_items=n)
        for k in keys:
            cache.set(k, 1)
        remove = cache.delete
        for k in order:
            remove(k)


WORKLOADS: dict[str, Callable[[int, int], None]] = {
    "get-hit": get_hit,
    "get-hit-lfu": lambda n, rounds: get_hit(n, rounds, "lfu"),
    "get-hit-tinylfu": lambda n, rounds: get_hit(n, rounds, "tinylfu"),
    "set-new": set_new,
    "set-new-ttl": lambda n, rounds: set_new(n, rounds, TTL),
    "set-evict-lru": set_evict("lru"),
    "set-evict-random": set_evict("random"),
    "set-evict-lfu": set_evict("lfu"),
    "set-evict-tinylfu": set_evict("tinylfu"),
    "delete": delete,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--n", type=int, default=100_000, help="keys (and capacity)")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the keys")
    args = parser.parse_args()
    WORKLOADS[args.workload](args.n, args.rounds)


if __name__ == "__main__":
    main()
