"""FlexCache next to a plain dict and the other Python caches: ns/op and ratio to dict.

Run ``python bench/compare.py`` (about ten minutes), ``--fast`` for a smoke
run of under a minute (3 repetitions, small sizes), or ``--only WORKLOAD``
for one table (names: see --help). Peers come from
``bench/requirements.txt``; one that is missing or fails to import is printed
as ``not installed: <reason>`` in every table.

How it times: keys are pre-built str objects whose hashes are already cached;
each figure is the median of 5 repetitions of one loop, timed with
``perf_counter_ns`` while the garbage collector is off. Every implementation
runs the same loop function for its calling style, with its operation bound
to a local name (``get = c.get``); the figures include that loop. Peers whose
API is a mapping are driven the way their users write it: ``c.get(k)``,
``c[k] = v`` and ``del c[k]``, exactly as the dict floor is; the rest call
their methods (``set``, ``insert``, ``delete``, ``remove``). Each table names
the class and the call used.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import itertools
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

# bench/ is on sys.path when this script runs. The loops are bench.py's, so
# both scripts time the very same code; VALUE is the value every timed set stores.
from bench import VALUE, cpu_model, loop_call1, loop_call2

TTL_SECONDS = 300.0
TTL_DELTA = timedelta(minutes=5)
SEED = 1234

# Roles: what a workload asks an implementation for.
LRU, FIFO, RANDOM, UNBOUNDED = "lru", "fifo", "random", "unbounded"
LFU, TINYLFU = "lfu", "tinylfu"
TTL, TTL_FLOAT = "ttl", "ttl-float"  # bounded, with a per-item ttl on every set
POLICY_ROLES = (LRU, FIFO, RANDOM, LFU, TINYLFU, UNBOUNDED)
EVICTING_ROLES = (LRU, FIFO, RANDOM, LFU, TINYLFU)
NO_TTL = {"lru-dict"}  # peers without any ttl: timed with their LRU class where a ttl is asked


# =========================================================================== registry


@dataclass(frozen=True)
class Variant:
    """One class of one implementation, and how a loop drives it."""

    impl: str
    label: str  # class and call, as printed
    make: Callable[[int], Any]  # capacity -> empty cache
    set_method: str | None = None  # None: mapping style, c[k] = v
    ttl: object = None  # third argument of set_method, when not None
    delete_method: str | None = None  # None: del c[k]
    get_tuple: bool = False  # get(k) returns (value, found) instead of value-or-None
    dispose: Callable[[Any], None] | None = None  # stop a cache's background work


@dataclass(frozen=True)
class ExpiryCase:
    """How one implementation is made to reap n due entries at once."""

    impl: str
    label: str
    how: str
    # keys -> (the timed call that reaps, a count of what is left afterwards)
    prepare: Callable[[list[str]], tuple[Callable[[], object], Callable[[], int]]]


@dataclass(frozen=True)
class ScanCase:
    """A cache filled with entries that have a long ttl, and the call that reaps."""

    variant: Variant  # its ttl (or its class's global ttl) is 3600 s
    call: Callable[[Any], Callable[[], object]]  # cache -> the timed call


@dataclass
class Impl:
    name: str
    version: str = ""
    error: str | None = None  # "not installed: ..." when the package is unusable
    variants: dict[str, Variant] = field(default_factory=dict)
    expiry: list[ExpiryCase] = field(default_factory=list)
    scans: list[ScanCase] = field(default_factory=list)


class FakeTimer:
    """A clock for cachetools' ``timer=`` argument that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def load(dist: str, module: str) -> tuple[Any, str, str | None]:
    """(module or None, version, error) for one peer package."""
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # an import can fail in many ways; report, never drop
        return None, "", f"not installed: {type(exc).__name__}: {exc}"
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = str(getattr(mod, "__version__", "?"))
    return mod, version, None


def real_clock_case(
    impl: str,
    label: str,
    make: Callable[[int, float], Any],  # (n, ttl) -> empty cache
    fill: Callable[[Any, list[str], float], None],
    force: str,
    count: Callable[[Any], int],
    slack: float,
) -> ExpiryCase:
    """Fill with a short real-clock ttl, sleep ``slack`` past it, time ``cache.<force>()``."""

    def prepare(keys: list[str]) -> tuple[Callable[[], object], Callable[[], int]]:
        ttl = 0.1 if len(keys) <= 100_000 else 1.0  # longer than the fill takes
        cache = make(len(keys), ttl)
        fill(cache, keys, ttl)
        time.sleep(ttl + slack)
        return getattr(cache, force), lambda: count(cache)

    how = f"real clock, t = 1 s (0.1 s up to 100k): sleep t + {slack} s; time {force}()"
    return ExpiryCase(impl, label, how, prepare)


def fill_store(cache: Any, keys: list[str], _ttl: float) -> None:
    value = VALUE
    for k in keys:
        cache[k] = value


def fill_method(name: str) -> Callable[[Any, list[str], float], None]:
    def fill(cache: Any, keys: list[str], ttl: float) -> None:
        set_, value = getattr(cache, name), VALUE
        for k in keys:
            set_(k, value, ttl)

    return fill


def flexcache_impl() -> Impl:
    from flexcache import FlexCache
    from flexcache.testing import ManualClock

    def bounded(policy: str) -> Callable[[int], Any]:
        return lambda n: FlexCache(policy, max_items=n)

    impl = Impl("FlexCache", importlib.metadata.version("flexcache"))
    calls = {"set_method": "set", "delete_method": "delete"}
    lru = "FlexCache('lru', max_items=n)"
    impl.variants = {
        LRU: Variant("FlexCache", lru, bounded("lru"), **calls),
        FIFO: Variant("FlexCache", "FlexCache('fifo', max_items=n)", bounded("fifo"), **calls),
        RANDOM: Variant(
            "FlexCache", "FlexCache('random', max_items=n)", bounded("random"), **calls
        ),
        LFU: Variant("FlexCache", "FlexCache('lfu', max_items=n)", bounded("lfu"), **calls),
        TINYLFU: Variant(
            "FlexCache", "FlexCache('tinylfu', max_items=n)", bounded("tinylfu"), **calls
        ),
        UNBOUNDED: Variant("FlexCache", "FlexCache()", lambda n: FlexCache(), **calls),
        TTL: Variant(
            "FlexCache", f"{lru}, ttl=timedelta(minutes=5)", bounded("lru"), ttl=TTL_DELTA, **calls
        ),
        TTL_FLOAT: Variant(
            "FlexCache", f"{lru}, ttl=300.0", bounded("lru"), ttl=TTL_SECONDS, **calls
        ),
    }

    def prepare(keys: list[str]) -> tuple[Callable[[], object], Callable[[], int]]:
        clock = ManualClock()
        cache = FlexCache("lru", clock=clock)
        set_, value = cache.set, VALUE
        for k in keys:
            set_(k, value, 1)
        clock.advance(2)
        return cache.scan, lambda: len(cache)

    label = "FlexCache('lru', clock=ManualClock()), ttl=1"
    impl.expiry = [ExpiryCase("FlexCache", label, "clock.advance(2); time scan()", prepare)]
    long_ttl = Variant("FlexCache", f"{lru}, ttl=3600.0 → scan()", bounded("lru"), "set", 3600.0)
    impl.scans = [ScanCase(long_ttl, lambda c: c.scan)]
    return impl


def dict_impl() -> Impl:
    impl = Impl("dict", platform.python_version())
    label = "dict: d.get / d[k] = v / del d[k]"
    impl.variants = {UNBOUNDED: Variant("dict", label, lambda n: {})}
    return impl


def cachetools_impl() -> Impl:
    mod, version, error = load("cachetools", "cachetools")
    impl = Impl("cachetools", version, error)
    if mod is None:
        return impl

    def ttu(_key: object, _value: object, now: float) -> float:
        return now + TTL_SECONDS

    impl.variants = {
        LRU: Variant("cachetools", "LRUCache(n): c.get / c[k] = v / del c[k]", mod.LRUCache),
        FIFO: Variant("cachetools", "FIFOCache(n): mapping style", mod.FIFOCache),
        RANDOM: Variant("cachetools", "RRCache(n): mapping style", mod.RRCache),
        LFU: Variant("cachetools", "LFUCache(n): mapping style", mod.LFUCache),
        TTL: Variant(
            "cachetools",
            "TLRUCache(n, ttu=now+300): mapping style",
            lambda n: mod.TLRUCache(n, ttu),
        ),
    }

    def timer_case(label: str, make: Callable[[int, FakeTimer], Any]) -> ExpiryCase:
        def prepare(keys: list[str]) -> tuple[Callable[[], object], Callable[[], int]]:
            timer = FakeTimer()
            cache = make(len(keys), timer)
            fill_store(cache, keys, 1.0)
            timer.now += 2.0
            return cache.expire, lambda: len(cache)

        how = "built with timer=FakeTimer() (no sleep): timer.now += 2; time expire()"
        return ExpiryCase("cachetools", label, how, prepare)

    def ttu1(_key: object, _value: object, now: float) -> float:
        return now + 1.0

    impl.expiry = [
        timer_case("TTLCache(n, ttl=1)", lambda n, t: mod.TTLCache(n, 1.0, timer=t)),
        timer_case("TLRUCache(n, ttu=now+1)", lambda n, t: mod.TLRUCache(n, ttu1, timer=t)),
    ]
    long_ttl = Variant(
        "cachetools", "TTLCache(n, ttl=3600) → expire()", lambda n: mod.TTLCache(n, 3600.0)
    )
    impl.scans = [ScanCase(long_ttl, lambda c: c.expire)]
    return impl


def cachebox_impl() -> Impl:
    mod, version, error = load("cachebox", "cachebox")
    impl = Impl("cachebox", version, error)
    if mod is None:
        return impl
    impl.variants = {
        LRU: Variant("cachebox", "LRUCache(n): c.get / c[k] = v / del c[k]", mod.LRUCache),
        FIFO: Variant("cachebox", "FIFOCache(n): mapping style", mod.FIFOCache),
        RANDOM: Variant("cachebox", "RRCache(n): mapping style", mod.RRCache),
        LFU: Variant("cachebox", "LFUCache(n): mapping style", mod.LFUCache),
        UNBOUNDED: Variant("cachebox", "Cache(0): mapping style", lambda n: mod.Cache(0)),
        TTL: Variant(
            "cachebox", "VTTLCache(n): c.insert(k, v, 300.0)", mod.VTTLCache, "insert", TTL_SECONDS
        ),
    }

    def global_ttl(seconds: float) -> Callable[[int], Any]:
        return lambda n: mod.TTLCache(n, seconds)

    impl.expiry = [
        real_clock_case(
            "cachebox",
            "TTLCache(n, global_ttl=t)",
            lambda n, t: mod.TTLCache(n, t),
            fill_store,
            "expire",
            len,
            0.05,
        ),
        real_clock_case(
            "cachebox",
            "VTTLCache(n), insert(k, v, t)",
            lambda n, t: mod.VTTLCache(n),
            fill_method("insert"),
            "expire",
            len,
            0.05,
        ),
    ]
    impl.scans = [
        ScanCase(
            Variant("cachebox", "TTLCache(n, global_ttl=3600) → expire()", global_ttl(3600.0)),
            lambda c: c.expire,
        ),
        ScanCase(
            Variant(
                "cachebox", "VTTLCache(n), ttl=3600 → expire()", mod.VTTLCache, "insert", 3600.0
            ),
            lambda c: c.expire,
        ),
    ]
    return impl


def theine_impl() -> Impl:
    mod, version, error = load("theine", "theine")
    impl = Impl("theine", version, error)
    if mod is None:
        return impl

    def make(n: int) -> Any:
        return mod.Cache(n, nolock=True)  # nolock: its single-thread mode

    def close(cache: Any) -> None:
        cache.close()  # ends the cache's maintenance task on theine's background loop

    calls = {"set_method": "set", "delete_method": "delete", "get_tuple": True, "dispose": close}
    impl.variants = {
        TINYLFU: Variant("theine", "Cache(n, nolock=True) [its only policy]", make, **calls),
        TTL: Variant(
            "theine",
            "Cache(n, nolock=True), ttl=timedelta(minutes=5)",
            make,
            ttl=TTL_DELTA,
            **calls,
        ),
    }
    return impl


def moka_impl() -> Impl:
    mod, version, error = load("moka-py", "moka_py")
    impl = Impl("moka-py", version, error)
    if mod is None:
        return impl

    def make(n: int) -> Any:
        return mod.Moka(n, policy="lru")

    calls = {"set_method": "set", "delete_method": "remove"}
    impl.variants = {
        LRU: Variant("moka-py", "Moka(n, policy='lru'): set / remove", make, **calls),
        TINYLFU: Variant(
            "moka-py",
            "Moka(n, policy='tiny_lfu'): set / remove",
            lambda n: mod.Moka(n, policy="tiny_lfu"),
            **calls,
        ),
        TTL: Variant(
            "moka-py", "Moka(n, policy='lru'), set(k, v, 300.0)", make, ttl=TTL_SECONDS, **calls
        ),
    }
    impl.expiry = [
        # its timer wheel's finest level ticks about once a second: sleep 1.2 s past the ttl
        real_clock_case(
            "moka-py",
            "Moka(n), set(k, v, t)",
            lambda n, t: mod.Moka(n),
            fill_method("set"),
            "run_pending_tasks",
            lambda c: c.count(),
            1.2,
        )
    ]
    return impl


def lru_dict_impl() -> Impl:
    mod, version, error = load("lru-dict", "lru")
    impl = Impl("lru-dict", version, error)
    if mod is None:
        return impl
    impl.variants = {LRU: Variant("lru-dict", "LRU(n): c.get / c[k] = v / del c[k]", mod.LRU)}
    return impl


BUILDERS: dict[str, Callable[[], Impl]] = {
    "dict": dict_impl,
    "FlexCache": flexcache_impl,
    "cachetools": cachetools_impl,
    "cachebox": cachebox_impl,
    "theine": theine_impl,
    "moka-py": moka_impl,
    "lru-dict": lru_dict_impl,
}


def build_registry() -> list[Impl]:
    """The dict floor, FlexCache, then each peer (missing peers keep their error)."""
    return [build() for build in BUILDERS.values()]


def variants(registry: list[Impl], role: str) -> list[Variant]:
    return [impl.variants[role] for impl in registry if role in impl.variants]


def missing_rows(registry: list[Impl], width: int) -> list[list[str]]:
    """A row for each peer that could not be used, padded to the table's width."""
    return [[i.name, i.error, *["-"] * (width - 2)] for i in registry if i.error]


# =========================================================================== loops
# One function per operation; every implementation runs the same one, with its
# operation passed in (and so bound to a local name). get(k), delete(k) and
# set(k, v) use bench.py's loop_call1 and loop_call2.


def loop_set_ttl(set_: Callable, keys: list[str], ttl: object) -> None:
    value = VALUE
    for k in keys:
        set_(k, value, ttl)


def loop_store(c: Any, keys: list[str]) -> None:  # mapping style: c[k] = v
    value = VALUE
    for k in keys:
        c[k] = value


def loop_del(c: Any, keys: list[str]) -> None:  # mapping style: del c[k]
    for k in keys:
        del c[k]


def loop_mix_store(get: Callable, c: Any, keys: list[str]) -> int:
    value, hits = VALUE, 0
    for k in keys:
        if get(k) is None:
            c[k] = value
        else:
            hits += 1
    return hits


def loop_mix_set(get: Callable, set_: Callable, keys: list[str], ttl: object) -> int:
    value, hits = VALUE, 0
    for k in keys:
        if get(k) is None:
            set_(k, value, ttl)
        else:
            hits += 1
    return hits


def loop_mix_set_tuple(get: Callable, set_: Callable, keys: list[str], ttl: object) -> int:
    value, hits = VALUE, 0
    for k in keys:
        if not get(k)[1]:  # theine: get returns (value, found)
            set_(k, value, ttl)
        else:
            hits += 1
    return hits


def loop_repeat(op: Callable[[], object], calls: range) -> None:
    for _ in calls:
        op()


def do_set(v: Variant, cache: Any, keys: list[str]) -> None:
    if v.set_method is None:
        loop_store(cache, keys)
    elif v.ttl is None:
        loop_call2(getattr(cache, v.set_method), keys)
    else:
        loop_set_ttl(getattr(cache, v.set_method), keys, v.ttl)


def do_delete(v: Variant, cache: Any, keys: list[str]) -> None:
    if v.delete_method is None:
        loop_del(cache, keys)
    else:
        loop_call1(getattr(cache, v.delete_method), keys)


def do_mix(v: Variant, cache: Any, keys: list[str]) -> int:
    if v.set_method is None:
        return loop_mix_store(cache.get, cache, keys)
    loop = loop_mix_set_tuple if v.get_tuple else loop_mix_set
    return loop(cache.get, getattr(cache, v.set_method), keys, v.ttl)


def present(v: Variant, cache: Any, keys: list[str]) -> int:
    get = cache.get
    if v.get_tuple:
        return sum(1 for k in keys if get(k)[1])
    return sum(1 for k in keys if get(k) is not None)


def filled(v: Variant, n: int, keys: list[str]) -> Any:
    cache = v.make(n)
    do_set(v, cache, keys)
    return cache


def dispose(v: Variant, cache: Any) -> None:
    if v.dispose is not None:
        v.dispose(cache)


# =========================================================================== timing


def timed_ns(run: Callable[[], object]) -> int:
    """One run of ``run``; the collector is off for the whole benchmark."""
    start = time.perf_counter_ns()
    run()
    return time.perf_counter_ns() - start


def median_ns_per_op(samples: list[int], ops: int) -> float:
    return statistics.median(samples) / ops


def collect() -> None:
    """Reclaim what the last row left (cycles in peers' linked lists) between rows."""
    gc.collect()


def make_keys(prefix: str, n: int) -> list[str]:
    keys = [f"{prefix}:{i:09d}" for i in range(n)]
    for k in keys:  # cache each str's hash so no implementation pays for it first
        hash(k)
    return keys


@dataclass(frozen=True)
class Scale:
    reps: int
    hit_sizes: tuple[int, ...]
    ops: int  # lookups or sets per timing
    miss_size: int
    capacity: int  # for set-at-capacity
    delete_size: int
    zipf_universe: int
    zipf_ops: int
    scan_sizes: tuple[int, ...]
    scan_calls: int
    peer_scan_max: int
    expire_size: int
    memory_size: int


FULL = Scale(
    reps=5,
    hit_sizes=(1_000, 100_000, 1_000_000),
    ops=300_000,
    miss_size=100_000,
    capacity=100_000,
    delete_size=300_000,
    zipf_universe=1_000_000,
    zipf_ops=1_000_000,
    scan_sizes=(10_000, 100_000, 1_000_000, 10_000_000),
    scan_calls=100_000,
    peer_scan_max=1_000_000,
    expire_size=1_000_000,
    memory_size=1_000_000,
)
FAST = Scale(  # a smoke run: 3 repetitions, small sizes
    reps=3,
    hit_sizes=(1_000, 100_000),
    ops=50_000,
    miss_size=100_000,
    capacity=10_000,
    delete_size=50_000,
    zipf_universe=50_000,
    zipf_ops=60_000,
    scan_sizes=(10_000, 100_000, 1_000_000),
    scan_calls=20_000,
    peer_scan_max=100_000,
    expire_size=50_000,
    memory_size=100_000,
)


# =========================================================================== output


def print_table(title: str, header: list[str], rows: list[list[str]], notes: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}"
        rest = "  ".join(f"{c:>{w}}" for c, w in zip(cells[2:], widths[2:], strict=True))
        return f"{first}  {rest}".rstrip()

    print(f"\n## {title}\n")
    print(line(header))
    print("-" * len(line(header)))
    for row in rows:
        print(line(row))
    for note in notes:
        print(f"  {note}")
    sys.stdout.flush()


def fmt_ns(ns: float) -> str:
    return f"{ns:,.1f}"


def fmt_ratio(ns: float, base: float) -> str:
    return f"{ns / base:.2f}x"


def fmt_n(n: int) -> str:
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


# =========================================================================== workloads


class Bench:
    def __init__(self, scale: Scale, registry: list[Impl]):
        self.s = scale
        self.registry = registry
        self.rng = random.Random(SEED)

    def reps(self, run: Callable[[], object]) -> list[int]:
        return [timed_ns(run) for _ in range(self.s.reps)]

    def fresh_reps(
        self, v: Variant, setup: Callable[[], Any], run: Callable[[Any], object]
    ) -> list[int]:
        """Median-able samples of ``run(cache)`` on a new cache each repetition."""
        samples = []
        for _ in range(self.s.reps):
            cache = setup()
            samples.append(timed_ns(lambda c=cache: run(c)))
            dispose(v, cache)
            del cache
            collect()
        return samples

    # ----------------------------------------------------------------------- get hit

    def get_hit(self) -> None:
        """get of a stored key, keys drawn at random from the n stored; nothing evicted."""
        roles = [(role, v) for role in POLICY_ROLES for v in variants(self.registry, role)]
        results: dict[tuple[str, str, str], dict[int, float]] = {}
        short: list[str] = []
        for n in self.s.hit_sizes:
            keys = make_keys("key", n)
            lookups = self.rng.choices(keys, k=self.s.ops)
            for role, v in roles:
                cache = filled(v, n, keys)
                kept = present(v, cache, keys)
                if kept != n:
                    short.append(f"{v.impl} {v.label} at n={fmt_n(n)} kept {kept:,} of {n:,}")
                get = cache.get
                samples = self.reps(lambda g=get, ks=lookups: loop_call1(g, ks))
                ns = median_ns_per_op(samples, len(lookups))
                results.setdefault((role, v.impl, v.label), {})[n] = ns
                dispose(v, cache)
                del cache, get
                collect()
            del keys, lookups
            collect()
        floor = variants(self.registry, UNBOUNDED)[0]
        base = results[(UNBOUNDED, floor.impl, floor.label)]
        header = ["implementation", "class (role)"]
        for n in self.s.hit_sizes:
            header += [f"{fmt_n(n)} ns/op", "vs dict"]
        rows = []
        for role, v in roles:
            row = [v.impl, f"{v.label} [{role}]"]
            for n in self.s.hit_sizes:
                ns = results[(role, v.impl, v.label)][n]
                row += [fmt_ns(ns), fmt_ratio(ns, base[n])]
            rows.append(row)
        rows += missing_rows(self.registry, len(header))
        notes = [
            f"{self.s.ops:,} lookups per timing, keys drawn at random from the n stored;",
            "bounded caches hold n, so nothing is evicted; every one is timed on c.get(k).",
            *short,
        ]
        print_table("get hit", header, rows, notes)

    # ----------------------------------------------------------------------- key types

    def key_types(self) -> None:
        """get hit with int keys and with (str, int) tuple keys, next to dict.get."""
        kinds: dict[str, Callable[[int], list[Any]]] = {
            "int": lambda n: self.rng.sample(range(10**12), n),
            "(str, int)": lambda n: [(f"user:{i:09d}", i) for i in range(n)],
        }
        dict_variant = variants(self.registry, UNBOUNDED)[0]
        contenders = [*variants(self.registry, UNBOUNDED), *variants(self.registry, LRU)]
        header = ["key", "implementation", "class"]
        for n in self.s.hit_sizes[:2]:
            header += [f"{fmt_n(n)} ns/op", "vs dict"]
        rows = []
        for kind, make in kinds.items():
            results: dict[tuple[str, str], dict[int, float]] = {}
            for n in self.s.hit_sizes[:2]:
                keys = make(n)
                lookups = self.rng.choices(keys, k=self.s.ops)
                for v in contenders:
                    cache = filled(v, n, keys)
                    get = cache.get
                    samples = self.reps(lambda g=get, ks=lookups: loop_call1(g, ks))
                    results.setdefault((v.impl, v.label), {})[n] = median_ns_per_op(
                        samples, len(lookups)
                    )
                    dispose(v, cache)
                    del cache, get
                    collect()
                del keys, lookups
                collect()
            base = results[(dict_variant.impl, dict_variant.label)]
            for v in contenders:
                row = [kind, v.impl, v.label]
                for n in self.s.hit_sizes[:2]:
                    ns = results[(v.impl, v.label)][n]
                    row += [fmt_ns(ns), fmt_ratio(ns, base[n])]
                rows.append(row)
        rows += missing_rows(self.registry, len(header))
        notes = [
            f"{self.s.ops:,} lookups per timing, drawn at random from the n stored keys;",
            "int keys are random below 10**12; a tuple's hash is not cached, so every",
            "implementation (dict too) hashes the tuple on each lookup. An exact-LRU hit",
            "also moves the entry to the back of its list, which an unbounded cache skips.",
        ]
        print_table("get hit by key type", header, rows, notes)

    # ----------------------------------------------------------------------- bulk calls

    def bulk(self) -> None:
        """Bulk calls of 100 keys against the loops of single calls they replace, per key."""
        from flexcache import FlexCache

        batch = 100
        n = self.s.capacity
        keys = make_keys("bulk", n)
        others = make_keys("other", n)
        groups = [keys[i : i + batch] for i in range(0, n, batch)]
        value = VALUE
        mappings = [dict.fromkeys(group, value) for group in groups]

        def empty() -> Any:
            return FlexCache("lru", max_items=n)

        def holding(stored: list[str]) -> Callable[[], Any]:
            def make() -> Any:
                cache = empty()
                cache.set_many(dict.fromkeys(stored, value))
                return cache

            return make

        def key_loop(name: str) -> Callable[[Any], None]:
            def run(cache: Any) -> None:
                call = getattr(cache, name)
                for group in groups:
                    for k in group:
                        call(k)

            return run

        def keys_call(name: str) -> Callable[[Any], None]:
            def run(cache: Any) -> None:
                call = getattr(cache, name)
                for group in groups:
                    call(group)

            return run

        def get_dict_loop(cache: Any) -> None:
            get = cache.get
            for group in groups:
                {k: v for k in group if (v := get(k)) is not None}

        def call_loop(name: str) -> Callable[[Any], None]:
            def run(cache: Any) -> None:
                call = getattr(cache, name)
                for mapping in mappings:
                    for k, v in mapping.items():
                        call(k, v)

            return run

        def many_call(name: str) -> Callable[[Any], None]:
            def run(cache: Any) -> None:
                call = getattr(cache, name)
                for mapping in mappings:
                    call(mapping)

            return run

        flex = next(v for v in variants(self.registry, LRU) if v.impl == "FlexCache")
        cases = [
            ("get_many, all hits", "get(k)", key_loop("get"), keys_call("get_many"), holding(keys)),
            (
                "get_many, all hits",
                "{k: v ... get(k)} (the same dict)",
                get_dict_loop,
                keys_call("get_many"),
                holding(keys),
            ),
            (
                "set_many into an empty cache",
                "set(k, v)",
                call_loop("set"),
                many_call("set_many"),
                empty,
            ),
            (
                "set_many into a full cache (evicting)",
                "set(k, v)",
                call_loop("set"),
                many_call("set_many"),
                holding(others),
            ),
            (
                "put_many over live keys",
                "put(k, v)",
                call_loop("put"),
                many_call("put_many"),
                holding(keys),
            ),
            (
                "delete_many, all live",
                "delete(k)",
                key_loop("delete"),
                keys_call("delete_many"),
                holding(keys),
            ),
        ]
        rows = []
        for name, loop_label, loop, many, setup in cases:
            loop_ns = median_ns_per_op(self.fresh_reps(flex, setup, loop), n)
            many_ns = median_ns_per_op(self.fresh_reps(flex, setup, many), n)
            rows.append(
                [name, loop_label, fmt_ns(loop_ns), fmt_ns(many_ns), f"{loop_ns / many_ns:.2f}x"]
            )
        header = ["bulk call", "the loop it replaces", "loop ns/key", "bulk ns/key", "speed-up"]
        notes = [
            f"FlexCache('lru', max_items={fmt_n(n)}); {n:,} keys in batches of {batch},",
            "a fresh cache for each repetition; the loops bind the method once, as users do.",
        ]
        print_table("bulk calls (FlexCache)", header, rows, notes)

    # ----------------------------------------------------------------------- get miss

    def get_miss(self) -> None:
        """get of a key that is not stored, in a cache of miss_size entries."""
        n = self.s.miss_size
        keys = make_keys("key", n)
        misses = make_keys("miss", self.s.ops)
        rows_ns: list[tuple[Variant, float]] = []
        for v in [*variants(self.registry, UNBOUNDED), *variants(self.registry, LRU)]:
            cache = filled(v, n, keys)
            get = cache.get
            samples = self.reps(lambda g=get: loop_call1(g, misses))
            rows_ns.append((v, median_ns_per_op(samples, len(misses))))
            dispose(v, cache)
            del cache, get
            collect()
        base = rows_ns[0][1]
        rows = [[v.impl, v.label, fmt_ns(ns), fmt_ratio(ns, base)] for v, ns in rows_ns]
        header = ["implementation", "class", "ns/op", "vs dict"]
        rows += missing_rows(self.registry, len(header))
        notes = [f"{fmt_n(n)} entries stored; {self.s.ops:,} lookups of keys never stored."]
        print_table(f"get miss (n={fmt_n(n)})", header, rows, notes)

    # ----------------------------------------------------------------------- set new

    def set_new(self) -> None:
        """set of new keys into an empty cache sized to hold them all (nothing evicted)."""
        n = self.s.ops
        keys = make_keys("new", n)
        chosen = [
            *variants(self.registry, UNBOUNDED),
            *variants(self.registry, LRU),
            *variants(self.registry, TTL),
            *variants(self.registry, TTL_FLOAT),
        ]
        rows_ns: list[tuple[Variant, float]] = []
        for v in chosen:
            samples = self.fresh_reps(v, lambda v=v: v.make(n), lambda c, v=v: do_set(v, c, keys))
            rows_ns.append((v, median_ns_per_op(samples, n)))
        base = rows_ns[0][1]
        rows = [
            [
                v.impl,
                v.label,
                "yes" if v.ttl is not None or "ttu" in v.label else "no",
                fmt_ns(ns),
                fmt_ratio(ns, base),
            ]
            for v, ns in rows_ns
        ]
        header = ["implementation", "class, call", "ttl", "ns/op", "vs dict"]
        rows += missing_rows(self.registry, len(header))
        notes = [
            f"{n:,} new keys into an empty cache with max size {fmt_n(n)}; dict floor: d[k] = v.",
            "Mapping-style peers use c[k] = v (no method call); the others call set/insert.",
        ]
        print_table(f"set new ({fmt_n(n)} keys)", header, rows, notes)

    # ----------------------------------------------------------------------- set evicting

    def set_evict(self) -> None:
        """set of new keys into a full cache: every set evicts one entry."""
        cap, n = self.s.capacity, self.s.ops
        fill = make_keys("fill", cap)
        keys = make_keys("evict", n)
        rows_ns: list[tuple[str, Variant, float]] = []
        groups = [(UNBOUNDED, variants(self.registry, UNBOUNDED)[:1])]
        groups += [(role, variants(self.registry, role)) for role in EVICTING_ROLES]
        for role, vs in groups:
            for v in vs:
                samples = self.fresh_reps(
                    v, lambda v=v: filled(v, cap, fill), lambda c, v=v: do_set(v, c, keys)
                )
                rows_ns.append((role, v, median_ns_per_op(samples, n)))
        base = rows_ns[0][2]
        rows = [
            [v.impl, f"{v.label} [{role}]", fmt_ns(ns), fmt_ratio(ns, base)]
            for role, v, ns in rows_ns
        ]
        header = ["implementation", "class [policy]", "ns/op", "vs dict"]
        rows += missing_rows(self.registry, len(header))
        notes = [
            f"capacity {fmt_n(cap)}, full before timing; {n:,} sets of new keys, each evicts one.",
            "dict floor: d[k] = v into a dict of the same entries, which just grows.",
            "theine admits by W-TinyLFU (a new key may be refused); moka's eviction is batched.",
        ]
        print_table(f"set at capacity with eviction (capacity {fmt_n(cap)})", header, rows, notes)

    # ----------------------------------------------------------------------- delete

    def delete(self) -> None:
        """delete of every stored key, in random order."""
        n = self.s.delete_size
        keys = make_keys("del", n)
        order = keys[:]
        self.rng.shuffle(order)
        rows_ns: list[tuple[Variant, float]] = []
        for v in [*variants(self.registry, UNBOUNDED)[:1], *variants(self.registry, LRU)]:
            samples = self.fresh_reps(
                v, lambda v=v: filled(v, n, keys), lambda c, v=v: do_delete(v, c, order)
            )
            rows_ns.append((v, median_ns_per_op(samples, n)))
        base = rows_ns[0][1]
        rows = [
            [v.impl, v.label, v.delete_method or "del c[k]", fmt_ns(ns), fmt_ratio(ns, base)]
            for v, ns in rows_ns
        ]
        header = ["implementation", "class", "call", "ns/op", "vs dict"]
        rows += missing_rows(self.registry, len(header))
        notes = [f"{n:,} entries, each deleted once in random order (all hits); dict: del d[k]."]
        print_table(f"delete ({fmt_n(n)} entries)", header, rows, notes)

    # ----------------------------------------------------------------------- zipf mix

    def zipf(self) -> None:
        """get; on a miss, set with a ttl. Zipf(1.0) keys, capacity 10% of the key space."""
        universe, ops = self.s.zipf_universe, self.s.zipf_ops
        cap = universe // 10
        space = make_keys("z", universe)
        weights = itertools.accumulate(1.0 / (rank + 1) for rank in range(universe))
        trace = random.Random(SEED).choices(space, cum_weights=list(weights), k=ops)
        chosen = [
            *variants(self.registry, UNBOUNDED)[:1],
            *variants(self.registry, TTL),
            *variants(self.registry, TTL_FLOAT),
            *[
                v
                for v in variants(self.registry, LRU)
                if v.impl not in {"FlexCache", "theine", "moka-py"}
            ],
        ]
        results: list[tuple[Variant, float, float]] = []
        for v in chosen:
            hits: list[int] = []

            def run(cache: Any, v: Variant = v, hits: list[int] = hits) -> None:
                hits.append(do_mix(v, cache, trace))

            samples = self.fresh_reps(v, lambda v=v: v.make(cap), run)
            results.append((v, median_ns_per_op(samples, ops), hits[-1] / ops))
        base = results[0][1]
        rows = [
            [v.impl, v.label, f"{1e3 / ns:.2f}", fmt_ns(ns), fmt_ratio(ns, base), f"{ratio:.4f}"]
            for v, ns, ratio in results
        ]
        header = ["implementation", "class, set call", "M ops/s", "ns/op", "vs dict", "hit ratio"]
        rows += missing_rows(self.registry, len(header))
        exact = [
            (v.impl, ratio)
            for v, _, ratio in results
            if v.impl in {"FlexCache", "lru-dict"} or v.label.startswith(("LRUCache", "TLRUCache"))
        ]
        ratios = sorted({f"{ratio:.4f}" for _, ratio in exact})
        notes = [
            f"{ops:,} requests over {universe:,} keys (Zipf s=1.0), capacity {fmt_n(cap)}, cold;",
            "loop: if get(k) is None: set(k, v, ttl) (mapping style: c[k] = v; theine: get(k)[1]).",
            "dict: unbounded, so its hit ratio is the ceiling. lru-dict and LRUCache: no ttl.",
            f"exact-LRU rows ({len(exact)}: FlexCache, cachetools, cachebox LRUCache, lru-dict): "
            + ("hit ratio all " if len(ratios) == 1 else "hit ratios DIFFER: ")
            + ", ".join(ratios),
        ]
        print_table(
            f"Zipf mix: get, on miss set with ttl (capacity {fmt_n(cap)})", header, rows, notes
        )

    # ----------------------------------------------------------------------- scan

    def scan(self) -> None:
        """scan() with nothing due, at several sizes; peers' expire() with nothing due."""
        calls = range(self.s.scan_calls)
        largest_flex = max(self.s.scan_sizes)
        cases = [
            (case, largest_flex if impl.name == "FlexCache" else self.s.peer_scan_max)
            for impl in self.registry
            for case in impl.scans
        ]
        results: dict[str, dict[int, float]] = {}
        for n in self.s.scan_sizes:
            keys = make_keys("scan", n)
            for case, limit in cases:
                if n > limit:
                    continue
                cache = filled(case.variant, n, keys)
                op = case.call(cache)
                samples = self.reps(lambda op=op: loop_repeat(op, calls))
                results.setdefault(case.variant.label, {})[n] = median_ns_per_op(
                    samples, len(calls)
                )
                del cache, op
                collect()
            del keys
            collect()
        smallest, largest = self.s.scan_sizes[0], self.s.scan_sizes[-1]
        header = ["implementation", "class → timed call"]
        header += [f"{fmt_n(n)} ns/call" for n in self.s.scan_sizes]
        header.append(f"{fmt_n(largest)} / {fmt_n(smallest)}")
        rows = []
        for case, _ in cases:
            by_n = results[case.variant.label]
            row = [case.variant.impl, case.variant.label]
            row += [fmt_ns(by_n[n]) if n in by_n else "-" for n in self.s.scan_sizes]
            row.append(fmt_ratio(by_n[largest], by_n[smallest]) if largest in by_n else "-")
            rows.append(row)
        for impl in self.registry:
            if not impl.scans and not impl.error and impl.name != "dict":
                rows.append(
                    [
                        impl.name,
                        "n/a: no call that reaps expired entries",
                        *["-"] * (len(header) - 2),
                    ]
                )
        rows += missing_rows(self.registry, len(header))
        notes = [
            f"{len(calls):,} calls per timing; every entry has a ttl of 3600 s (in FlexCache:",
            f"in its timing wheel). Peers are timed up to {fmt_n(self.s.peer_scan_max)} entries.",
        ]
        print_table("scan with nothing due", header, rows, notes)

    # ----------------------------------------------------------------------- expire

    def expire(self) -> None:
        """Reaping n entries that are all due, in one forced pass."""
        n = self.s.expire_size
        keys = make_keys("exp", n)
        rows = []
        hows = []
        for impl in self.registry:
            if impl.error:
                continue
            if not impl.expiry and impl.name != "dict":
                why = (
                    "n/a: no ttl"
                    if impl.name == "lru-dict"
                    else "n/a: expiry only on its own timer"
                )
                rows.append([impl.name, why, "-", "-", "-"])
            for case in impl.expiry:
                samples, left = [], []
                for _ in range(self.s.reps):
                    force, count = case.prepare(keys)
                    samples.append(timed_ns(force))
                    left.append(count())
                    del force, count
                    collect()
                ns = statistics.median(samples)
                rows.append(
                    [case.impl, case.label, f"{ns / 1e6:,.2f}", fmt_ns(ns / n), f"{max(left):,}"]
                )
                hows.append(f"{case.impl} {case.label}: {case.how}")
        header = ["implementation", "class", "ms per pass", "ns/entry", "left after"]
        rows += missing_rows(self.registry, len(header))
        notes = [
            f"{n:,} entries, all due; one timed call reaps them (filling and waiting not timed).",
            "theine reaps only on its own background timer (once a second): no call to time.",
            *hows,
        ]
        print_table(f"expiring {fmt_n(n)} due entries", header, rows, notes)

    # ----------------------------------------------------------------------- memory

    def memory(self) -> None:
        """RSS growth per entry, each implementation in a fresh interpreter."""
        n = self.s.memory_size
        chosen = [(UNBOUNDED, v) for v in variants(self.registry, UNBOUNDED)[:1]]
        chosen += [(LRU, v) for v in variants(self.registry, LRU)[:1]]
        chosen += [(TTL, v) for v in variants(self.registry, TTL)]
        chosen += [(LRU, v) for v in variants(self.registry, LRU)[1:] if v.impl in NO_TTL]
        results = []
        for role, v in chosen:
            out = subprocess.run(
                [sys.executable, __file__, "--memory-child", v.impl, role, str(n)],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                results.append((v, None, out.stderr.strip().splitlines()[-1:]))
            else:
                results.append((v, float(out.stdout.split()[-1]), []))
        base = results[0][1]
        header = ["implementation", "class", "ttl", "B/entry", "vs dict"]
        rows = []
        for v, per, err in results:
            ttl = "yes" if v.ttl is not None or "ttu" in v.label else "no"
            if per is None:
                rows.append([v.impl, v.label, ttl, f"failed: {err}", "-"])
            else:
                rows.append(
                    [v.impl, v.label, ttl, f"{per:,.1f}", fmt_ratio(per, base) if base else "-"]
                )
        rows += missing_rows(self.registry, len(header))
        notes = [
            f"{n:,} entries; keys and values built before the baseline RSS reading, so they are",
            "not counted: the figure is what the structure itself costs per entry (RSS delta / n).",
        ]
        print_table(f"memory per entry ({fmt_n(n)} entries)", header, rows, notes)


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(impl_name: str, role: str, n: int) -> None:
    """In a fresh interpreter: fill a cache with n pre-built entries; print RSS growth / n."""
    v = BUILDERS[impl_name]().variants[role]  # imports only this implementation
    keys = make_keys("mem", n)
    values = [str(i) for i in range(n)]  # distinct objects, built before the baseline
    cache = v.make(n)
    gc.collect()
    before = rss_bytes()
    if v.set_method is None:
        for k, x in zip(keys, values, strict=True):
            cache[k] = x
    elif v.ttl is None:
        set_ = getattr(cache, v.set_method)
        for k, x in zip(keys, values, strict=True):
            set_(k, x)
    else:
        set_, ttl = getattr(cache, v.set_method), v.ttl
        for k, x in zip(keys, values, strict=True):
            set_(k, x, ttl)
    gc.collect()
    after = rss_bytes()
    print((after - before) / n)


# =========================================================================== main


WORKLOADS = {
    "get-hit": Bench.get_hit,
    "get-miss": Bench.get_miss,
    "key-types": Bench.key_types,
    "bulk": Bench.bulk,
    "set-new": Bench.set_new,
    "set-evict": Bench.set_evict,
    "delete": Bench.delete,
    "zipf": Bench.zipf,
    "scan": Bench.scan,
    "expire": Bench.expire,
    "memory": Bench.memory,
}


def print_machine(registry: list[Impl], scale: Scale) -> None:
    print(f"machine: {platform.platform()}")
    print(f"cpu:     {cpu_model()} ({os.cpu_count()} cpus)")
    print(f"python:  {sys.version.split()[0]} ({platform.python_implementation()})")
    if hasattr(os, "getloadavg"):
        print("load:    " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)")
    for impl in registry[1:]:
        print(f"{impl.name + ':':<12}{impl.error or impl.version}")
    print(f"median of {scale.reps} repetitions; garbage collector off while timing")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="smoke run, under a minute")
    parser.add_argument("--only", choices=sorted(WORKLOADS), help="run one workload")
    parser.add_argument(
        "--memory-child", nargs=3, metavar=("IMPL", "ROLE", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.memory_child:
        impl, role, n = args.memory_child
        memory_child(impl, role, int(n))
        return

    scale = FAST if args.fast else FULL
    registry = build_registry()
    print_machine(registry, scale)
    gc.disable()  # collect() runs between rows, never inside a timing
    started = time.perf_counter()
    bench = Bench(scale, registry)
    for name, workload in WORKLOADS.items():
        if args.only in (None, name):
            start = time.perf_counter()
            workload(bench)
            print(f"  ({name}: {time.perf_counter() - start:.0f} s)")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
