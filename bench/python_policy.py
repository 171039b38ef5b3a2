"""What a policy written in Python costs: ``set`` at capacity, next to the built-in ``lru``.

    python bench/python_policy.py [--n 10000] [--reps 5]

Every ``set`` of a new key into a full cache evicts one entry. The Python
policy is an LRU kept in an ``OrderedDict`` (the cheapest honest one: each
set is one ``victim()``, one ``on_remove`` and one ``on_insert`` call), and
cachetools' ``LRUCache`` (LRU written in Python, if installed) is the
yardstick of a pure-Python cache. Medians of ``--reps`` runs, ns per set;
the last column is the ratio to FlexCache ``lru``.
"""

from __future__ import annotations

import argparse
import statistics
from collections import OrderedDict
from collections.abc import Callable, Hashable

from flexcache import EvictionPolicy, FlexCache

from bench import loop_call1, loop_call2, make_keys, time_ns_per_op


class OrderedDictLru(EvictionPolicy):
    def __init__(self) -> None:
        self.order: OrderedDict[Hashable, None] = OrderedDict()

    def on_insert(self, key: Hashable) -> None:
        self.order[key] = None

    def on_access(self, key: Hashable) -> None:
        self.order.move_to_end(key)

    def on_remove(self, key: Hashable) -> None:
        del self.order[key]

    def victim(self) -> Hashable:
        return next(iter(self.order))


def full_cache(make: Callable[[int], object], n: int, store: str) -> tuple[object, Callable]:
    cache = make(n)
    op = getattr(cache, store)
    for key in make_keys("fill", n):
        op(key, 0)
    return cache, op


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="capacity")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    n = args.n
    rows: list[tuple[str, str, Callable[[int], object], str]] = [
        ("FlexCache('lru')", "set", lambda n: FlexCache("lru", max_items=n), "set"),
        (
            "FlexCache(OrderedDictLru())",
            "set",
            lambda n: FlexCache(OrderedDictLru(), max_items=n),
            "set",
        ),
    ]
    try:
        import cachetools

        rows.append(("cachetools.LRUCache", "c[k] = v", cachetools.LRUCache, "__setitem__"))
    except ImportError as error:
        print(f"cachetools: not installed ({error})")
    results: list[tuple[str, str, float]] = []
    for label, call, make, store in rows:
        samples = []
        for rep in range(args.reps):
            _, op = full_cache(make, n, store)
            keys = make_keys(f"new{rep}", n)
            samples.append(time_ns_per_op(loop_call2, op, keys))
        results.append((label, call, statistics.median(samples)))
    # The loop alone, for the reader to subtract.
    empty = statistics.median(
        time_ns_per_op(loop_call1, lambda k: None, make_keys("e", n)) for _ in range(args.reps)
    )
    base = results[0][2]
    print(f"set of a new key into a full cache of {n} entries (ns per set, median of {args.reps})")
    print(f"{'cache':32} {'call':10} {'ns':>8} {'x lru':>7}")
    for label, call, ns in results:
        print(f"{label:32} {call:10} {ns:8.1f} {ns / base:7.2f}")
    print(f"{'(a call of lambda k: None)':32} {'':10} {empty:8.1f}")
    overhead = results[1][2] - base
    print(f"Python policy overhead per set: {overhead:.0f} ns (three hook calls and a check)")


if __name__ == "__main__":
    main()
