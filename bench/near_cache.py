"""flexcache.contrib.redis.NearCache next to redis-py with no local cache.

Starts its own redis-server (127.0.0.1, a free port, a temporary directory, no persistence)
and prints two tables:

1. One lookup's cost: a local hit, a read through (GET and PTTL in one round trip, the copy
   kept) and a plain redis-py ``GET`` (one round trip), in ns/op and ops/s, each the median
   of several repetitions of a loop over pre-built keys, the garbage collector off.
2. A Zipf trace (one reader thread) over a key space while a writer thread, on its own
   redis-py client, overwrites keys drawn from the same Zipf at a fixed rate: the reader's
   throughput and the near cache's hit ratio next to plain redis-py. Each write invalidates
   the key, so the hit ratio falls as the write rate grows.

    python bench/near_cache.py [--fast]

The loopback round trip here is the best case for the server: on a network it is 10-100x
longer, and the local hit does not change.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import itertools
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from flexcache.contrib.redis import NearCache


@contextmanager
def redis_server() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not on PATH (bash scripts/dev setup installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with tempfile.TemporaryDirectory() as directory:
        args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", directory]
        args += ["--save", "", "--appendonly", "no"]
        process = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL)
        try:
            probe = redis.Redis(port=port)
            for _ in range(1000):
                try:
                    probe.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.01)
            probe.close()
            yield port
        finally:
            process.terminate()
            process.wait(10)


def timed(loop: Callable[[], None], n: int, repeats: int) -> float:
    """Median ns per operation of ``loop`` (which does ``n`` operations)."""
    samples = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter_ns()
        loop()
        samples.append((time.perf_counter_ns() - start) / n)
    return statistics.median(samples)


def lookup_costs(port: int, fast: bool) -> None:
    repeats = 3 if fast else 5
    n_hit, n_server = (20_000, 1_000) if fast else (300_000, 10_000)
    plain = redis.Redis(port=port)
    keys = [f"key:{i}" for i in range(1000)]
    for k in keys:
        plain.set(k, "x" * 100)
    with NearCache(redis.Redis(port=port), max_items=10_000) as near:
        near.wait_until_tracking()
        hit_keys = [keys[i % len(keys)] for i in range(n_hit)]
        for k in keys:
            near.get(k)
        get = near.get

        def hits() -> None:
            for k in hit_keys:
                get(k)

        server_keys = hit_keys[:n_server]
        drop = near.local.delete
        encoded = [k.encode() for k in server_keys]

        def read_through() -> None:
            # The drop is part of the loop; a local delete costs ~100 ns of the round trip.
            for k, e in zip(server_keys, encoded, strict=True):
                drop(e)
                get(k)

        plain_get = plain.get

        def plain_reads() -> None:
            for k in server_keys:
                plain_get(k)

        gc.disable()
        try:
            rows = [
                ("NearCache.get, local hit", timed(hits, n_hit, repeats)),
                ("NearCache.get, read through (copy kept)", timed(read_through, n_server, repeats)),
                ("redis-py Redis.get (one round trip)", timed(plain_reads, n_server, repeats)),
            ]
        finally:
            gc.enable()
    print("\n## One lookup (100-byte values, loopback)\n")
    print("| lookup | ns/op | ops/s |")
    print("| --- | ---: | ---: |")
    for name, ns in rows:
        print(f"| {name} | {ns:,.0f} | {1e9 / ns:,.0f} |")


def zipf_keys(n_keys: int, n: int, s: float, rng: random.Random) -> list[str]:
    cumulative = list(itertools.accumulate(1 / (i + 1) ** s for i in range(n_keys)))
    total = cumulative[-1]
    return [f"key:{bisect.bisect_left(cumulative, rng.random() * total)}" for _ in range(n)]


def zipf_trace(port: int, fast: bool) -> None:
    n_keys, n_reads = (10_000, 20_000) if fast else (10_000, 100_000)
    rates = (0, 100, 1000) if fast else (0, 100, 1000, 5000)
    rng = random.Random(42)
    trace = zipf_keys(n_keys, n_reads, 1.0, rng)
    writes = zipf_keys(n_keys, 100_000, 1.0, rng)
    setup = redis.Redis(port=port)
    setup.flushall()
    pipe = setup.pipeline(transaction=False)
    for i in range(n_keys):
        pipe.set(f"key:{i}", "x" * 100)
    pipe.execute()

    def run(get: Callable[[str], object], rate: int) -> tuple[float, float]:
        stop = threading.Event()
        done = [0]

        def writer() -> None:
            client = redis.Redis(port=port)
            start = time.monotonic()
            for i, k in enumerate(itertools.cycle(writes)):
                if stop.is_set():
                    break
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                client.set(k, "y" * 100)
                done[0] += 1
            client.close()

        thread = threading.Thread(target=writer) if rate else None
        if thread:
            thread.start()
        start = time.perf_counter()
        for k in trace:
            get(k)
        elapsed = time.perf_counter() - start
        stop.set()
        if thread:
            thread.join()
        return n_reads / elapsed, done[0] / elapsed

    print(f"\n## Zipf(1.0) reads over {n_keys:,} keys, one reader, a writer at a fixed rate\n")
    print("| writes/s asked (done) | client | reads/s | hit ratio |")
    print("| --- | --- | ---: | ---: |")
    for rate in rates:
        plain = redis.Redis(port=port)
        reads, done = run(plain.get, rate)
        print(f"| {rate:,} ({done:,.0f}) | redis-py, no local cache | {reads:,.0f} | 0 |")
        plain.close()
        with NearCache(redis.Redis(port=port), max_items=n_keys) as near:
            near.wait_until_tracking()
            reads, done = run(near.get, rate)
            s = near.stats()
            print(f"| {rate:,} ({done:,.0f}) | NearCache | {reads:,.0f} | {s.hit_ratio:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a smoke run, a few seconds")
    args = parser.parse_args()
    print(f"redis-py {redis.__version__}, Python {sys.version.split()[0]}")
    with redis_server() as port:
        version = redis.Redis(port=port).info("server")["redis_version"]
        print(f"redis-server {version}")
        lookup_costs(port, args.fast)
        zipf_trace(port, args.fast)


if __name__ == "__main__":
    main()
