"""dump + load of a FlexCache next to pickle.dump + pickle.load of a dict.

Run with ``python bench/persistence.py`` (1M entries, about a minute) or
``--fast`` (100k entries). The cache and the dict hold the same items (str
keys, small str values); both write to a file in one folder of the same file
system and read it back. Each row is the median of ``--repeat`` runs (3 by
default), the garbage collector off inside a timing. No assertion: the issue's
targets (dump + load at most 1.5x pickle of the dict; a load of a file whose
entries have all expired at most 0.1x) are printed next to the ratios.

Rows:
- pickle.dump/load of the dict: the baseline (no fsync, as pickle.dump
  does not; a row with one shows what dump()'s atomic write adds).
- FlexCache dump/load with ``pickle.dumps``/``pickle.loads`` per key and value
  (what the README shows), and with ``marshal`` (a codec that runs no user
  code, for comparison: the serializer calls themselves are most of the cost).
- The serializer and deserializer calls alone, in a Python loop over the same
  items: the floor any per-entry codec pays.
- A load of a dump whose entries have all expired (the ManualClock's wall
  stepped past their ttl): no deserializer call at all.
"""

from __future__ import annotations

import argparse
import gc
import marshal
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from flexcache import FlexCache
from flexcache.testing import ManualClock


def timed(work: Callable[[], object], repeat: int) -> float:
    """Median wall seconds of ``work()`` over ``repeat`` runs, gc off inside."""
    times = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        try:
            work()
        finally:
            gc.enable()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="100k entries instead of 1M")
    parser.add_argument("-n", type=int, default=None, help="number of entries")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="folder for the files (default: a temp dir)")
    args = parser.parse_args()
    n = args.n or (100_000 if args.fast else 1_000_000)

    items = {f"user:{i:08d}": f"v{i}" for i in range(n)}
    clock = ManualClock()
    cache: FlexCache[str, str] = FlexCache("lru", max_items=n, clock=clock)
    cache.put_many(items)
    expiring: FlexCache[str, str] = FlexCache("lru", max_items=n, clock=clock)
    expiring.put_many(items, ttl=60)

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        dict_path = os.path.join(folder, "dict.pickle")
        cache_path = os.path.join(folder, "cache.dump")
        expired_path = os.path.join(folder, "expired.dump")

        def pickle_dump() -> None:
            with open(dict_path, "wb") as file:
                pickle.dump(items, file, protocol=pickle.HIGHEST_PROTOCOL)

        def pickle_dump_synced() -> None:
            with open(dict_path, "wb") as file:
                pickle.dump(items, file, protocol=pickle.HIGHEST_PROTOCOL)
                file.flush()
                os.fsync(file.fileno())  # as dump() does for its atomic write

        def pickle_load() -> object:
            with open(dict_path, "rb") as file:
                return pickle.load(file)

        def cache_dump(serializer: Callable[[object], bytes]) -> Callable[[], int]:
            return lambda: cache.dump(cache_path, serializer=serializer)

        def cache_load(deserializer: Callable[[bytes], object]) -> Callable[[], object]:
            return lambda: FlexCache.load(cache_path, deserializer=deserializer)

        rows: list[tuple[str, float]] = []
        base_dump = timed(pickle_dump, args.repeat)
        base_load = timed(pickle_load, args.repeat)
        base = base_dump + base_load
        rows.append(("pickle.dump of the dict", base_dump))
        rows.append(("pickle.load of the dict", base_load))
        rows.append(("pickle dump + load (baseline)", base))
        synced = timed(pickle_dump_synced, args.repeat)
        rows.append(("  pickle.dump of the dict, then fsync (what dump() pays)", synced))

        dumps = pickle.dumps
        loads = pickle.loads
        pairs = list(items.items())
        for name, serializer, deserializer in (
            ("pickle.dumps/loads", dumps, loads),
            ("marshal.dumps/loads", marshal.dumps, marshal.loads),
        ):
            dump_s = timed(cache_dump(serializer), args.repeat)
            size = os.path.getsize(cache_path)
            load_s = timed(cache_load(deserializer), args.repeat)
            rows.append((f"FlexCache.dump, {name} ({size / 1e6:.1f} MB)", dump_s))
            rows.append((f"FlexCache.load, {name}", load_s))
            rows.append((f"FlexCache dump + load, {name}", dump_s + load_s))

            def codec_only(
                serializer: Callable[[object], bytes] = serializer,
                deserializer: Callable[[bytes], object] = deserializer,
            ) -> None:
                for key, value in pairs:
                    deserializer(serializer(key))
                    deserializer(serializer(value))

            rows.append((f"  the {name} calls alone (2 per entry)", timed(codec_only, args.repeat)))

        expiring.dump(expired_path, serializer=dumps)
        later = ManualClock._at(0, clock.time() + 3600)  # an hour later: every ttl has passed

        def load_expired() -> object:
            loaded = FlexCache.load(expired_path, deserializer=loads, clock=later)
            assert len(loaded) == 0
            return loaded

        expired_s = timed(load_expired, args.repeat)
        rows.append(("FlexCache.load of a dump whose entries all expired", expired_s))

    print(
        f"# persistence, {n:,} entries (str keys, small str values), median of {args.repeat}; "
        f"CPython {platform.python_version()} on {platform.machine()}, {sys.platform}"
    )
    print(f"| {'step':<62} | {'seconds':>8} | {'vs pickle dump+load':>19} |")
    print(f"| {'-' * 62} | {'-' * 8}: | {'-' * 19}: |")
    for name, seconds in rows:
        print(f"| {name:<62} | {seconds:8.3f} | {seconds / base:18.2f}x |")
    print("targets: dump + load <= 1.5x; load of an all-expired dump <= 0.1x")


if __name__ == "__main__":
    main()
