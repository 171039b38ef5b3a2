"""Hit ratios: FlexCache's lru, lfu and tinylfu next to theine, moka-py, cachetools and two bounds.

Run ``python bench/hit_ratio.py`` (5-7 minutes on 2 cores), ``--fast`` for a smoke
run of under a minute (short traces, sizes 100 and 1k), ``--markdown`` to
print everything as Markdown (the tables as pipe tables, for the README).

Every implementation replays the same traces through the same read-through
loop, with its methods bound to local names: ``get(k)``, and on a miss
``set(k, v)``. A cell is hits / accesses in percent, from a cold cache. The
two models are driven by that loop too, as objects with ``get`` and ``set``:
- Bélády's MIN, the optimum for a cache that may decline to store a key:
  on a miss it stores the key only if the key is used again sooner than the
  resident key used farthest in the future, which it then evicts. No
  implementation can beat it; each run checks that none does.
- an exact LFU in pure Python: count 1 when stored, +1 a hit, evict the
  lowest count, the least recently used among equal counts. FlexCache
  ``lfu`` must give the same hits and keep the same keys: one line a cell.

Traces are generated with fixed seeds (``random.Random``; numpy is not
needed). Two real traces come from the sdist of libcachesim on PyPI, which
ships them under ``data/``: the script downloads it with pip the first time
into ``bench/.traces`` (git ignores it) and prints why if it cannot. Peers
come from ``bench/requirements.txt``; a missing one prints as
``n/a (not installed: <reason>)``. The peers' classes and the other small
helpers are compare.py's, so both scripts build each peer the same way.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import heapq
import itertools
import os
import platform
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# bench/ is on sys.path when this script runs (ruff takes bench for this project's package).
from compare import (
    LFU,
    LRU,
    TINYLFU,
    Impl,
    Variant,
    cachetools_impl,
    collect,
    dispose,
    flexcache_impl,
    fmt_n,
    make_keys,
    moka_impl,
    theine_impl,
)

from bench import VALUE, cpu_model

SEED = 1234
TRACES_DIR = Path(__file__).resolve().parent / ".traces"
# The real traces: libcachesim's sdist ships libCacheSim's sample data. Pinned, so
# that every run reads the same bytes.
LIBCACHESIM = "libcachesim==0.3.5"
LIBCACHESIM_DATA = "libcachesim-0.3.5/src/libCacheSim/data/"
MIN_DISTINCT_PER_SLOT = 1.25  # a size is run where the trace has 1.25x as many keys
MIN_LENGTH_PER_SLOT = 10  # a trace built for a size is run where it is 10x as long


# =========================================================================== the loop
# One loop for every implementation and model; theine's get returns (value,
# found), so it has the same loop with that test.


def read_through(get: Callable, set_: Callable, trace: list[str]) -> int:
    value, hits = VALUE, 0
    for k in trace:
        if get(k) is None:
            set_(k, value)
        else:
            hits += 1
    return hits


def read_through_found(get: Callable, set_: Callable, trace: list[str]) -> int:
    value, hits = VALUE, 0
    for k in trace:
        if not get(k)[1]:  # theine: get(k) returns (value, found)
            set_(k, value)
        else:
            hits += 1
    return hits


# =========================================================================== models


class ExactLFU:
    """Exact LFU: count 1 when stored, +1 a hit; evict the lowest count, LRU among ties.

    Frequency buckets, each an OrderedDict of its keys from least to most
    recently used; a hit moves its key to the end of the next bucket, so the
    order inside a bucket is the order of the keys' last use. ``set`` is
    only called after a miss of its key (the loop's contract).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.count: dict[str, int] = {}
        self.buckets: dict[int, OrderedDict[str, None]] = {}
        self.low = 0  # the lowest count held

    def get(self, key: str) -> object:
        count = self.count.get(key)
        if count is None:
            return None
        bucket = self.buckets[count]
        del bucket[key]
        if not bucket:
            del self.buckets[count]
            if self.low == count:
                self.low = count + 1
        self.count[key] = count + 1
        higher = self.buckets.get(count + 1)
        if higher is None:
            higher = self.buckets[count + 1] = OrderedDict()
        higher[key] = None
        return VALUE

    def set(self, key: str, _value: object) -> None:
        if len(self.count) >= self.n:
            bucket = self.buckets[self.low]
            victim, _ = bucket.popitem(last=False)
            if not bucket:
                del self.buckets[self.low]
            del self.count[victim]
        self.count[key] = 1
        ones = self.buckets.get(1)
        if ones is None:
            ones = self.buckets[1] = OrderedDict()
        ones[key] = None
        self.low = 1

    def keys(self) -> Iterable[str]:
        return self.count.keys()


def next_uses(trace: list[str]) -> list[int]:
    """For each access, the index of the next access to its key.

    A key that is never used again gets len(trace) + its own index, so every
    value is distinct (no ties in the heap) and past every real index.
    """
    end = len(trace)
    nxt = [0] * end
    last: dict[str, int] = {}
    for i in range(end - 1, -1, -1):
        k = trace[i]
        nxt[i] = last.get(k, end + i)
        last[k] = i
    return nxt


class Belady:
    """Bélády's MIN with bypass: the hit ratio no cache of n entries can beat on this trace.

    Driven by the same loop as the caches: each ``get`` is the next access of
    the trace it was built for. The resident keys map to their next use; a
    max-heap of (-next use, key) finds the one used farthest ahead, skipping
    entries a later hit made stale (lazy deletion, compacted when it grows).
    """

    def __init__(self, n: int, trace: list[str]) -> None:
        self.n = n
        self.end = len(trace)
        self.next_use = next_uses(trace)
        self.pos = -1
        self.resident: dict[str, int] = {}
        self.heap: list[tuple[int, str]] = []

    def get(self, key: str) -> object:
        self.pos += 1
        if key not in self.resident:
            return None
        nxt = self.next_use[self.pos]
        self.resident[key] = nxt
        heapq.heappush(self.heap, (-nxt, key))
        if len(self.heap) > 4 * self.n + 64:
            self.heap = [(-use, k) for k, use in self.resident.items()]
            heapq.heapify(self.heap)
        return VALUE

    def set(self, key: str, _value: object) -> None:
        nxt = self.next_use[self.pos]
        if nxt >= self.end:
            return  # never used again: storing it cannot win a hit
        resident, heap = self.resident, self.heap
        if len(resident) >= self.n:
            while resident.get(heap[0][1]) != -heap[0][0]:
                heapq.heappop(heap)  # stale: that key was used since, or evicted
            farthest, victim = heap[0]
            if -farthest < nxt:
                return  # every resident key is needed before this one: bypass
            heapq.heappop(heap)
            del resident[victim]
        resident[key] = nxt
        heapq.heappush(heap, (-nxt, key))

    def keys(self) -> Iterable[str]:
        return self.resident.keys()


# =========================================================================== columns


@dataclass(frozen=True)
class Column:
    """One implementation or model, as a column of the table."""

    header: str
    label: str  # the class and calls, for the legend
    make: Callable[[int, list[str]], Any] | None  # (size, trace) -> empty cache
    error: str | None = None  # "not installed: ..."
    found_tuple: bool = False  # get returns (value, found)
    set_method: str | None = "set"  # None: mapping style, set_ = c.__setitem__
    variant: Variant | None = None  # compare.py's, for dispose


def peer_column(header: str, impl: Impl, role: str) -> Column:
    if impl.error is not None or role not in impl.variants:
        reason = impl.error or f"no {role} class"
        return Column(header, impl.name, None, error=reason)
    v = impl.variants[role]
    cls = v.label.split(":")[0]  # compare.py's label names the class, then its own calls
    if v.get_tuple:
        calls = f"get(k)[1], on a miss {v.set_method}(k, v)"
    elif v.set_method is None:
        calls = "get(k), on a miss __setitem__(k, v) (bound, like the others' set)"
    else:
        calls = f"get(k), on a miss {v.set_method}(k, v)"
    return Column(
        header,
        f"{impl.name} {cls}: {calls}",
        lambda n, _trace, v=v: v.make(n),
        found_tuple=v.get_tuple,
        set_method=v.set_method,
        variant=v,
    )


def build_columns() -> tuple[list[Column], list[Impl]]:
    fc, theine, moka, ct = flexcache_impl(), theine_impl(), moka_impl(), cachetools_impl()
    columns = [
        peer_column("FC lru", fc, LRU),
        peer_column("FC lfu", fc, LFU),
        peer_column("FC tinylfu", fc, TINYLFU),
        peer_column("theine", theine, TINYLFU),
        peer_column("moka tlfu", moka, TINYLFU),
        peer_column("moka lru", moka, LRU),
        peer_column("ct LRU", ct, LRU),
        peer_column("ct LFU", ct, LFU),
        Column(
            "LFU model",
            "exact LFU in Python (this script's ExactLFU): the model FC lfu must match",
            lambda n, _trace: ExactLFU(n),
        ),
        Column(
            "Bélády",
            "Bélády's MIN with bypass (this script's Belady): the optimum",
            Belady,
        ),
    ]
    return columns, [fc, theine, moka, ct]


# =========================================================================== traces


@dataclass(frozen=True)
class Trace:
    name: str
    about: str
    sizes: tuple[int, ...]
    fixed: list[str] | None = None  # the accesses, or None: built for each size by build
    build: Callable[[int], list[str]] | None = None

    def accesses(self, n: int) -> list[str]:
        if self.fixed is not None:
            return self.fixed
        assert self.build is not None
        return self.build(n)


@dataclass(frozen=True)
class Scale:
    length: int  # accesses per generated trace
    universe: int  # keys the Zipf traces draw from
    sizes: tuple[int, ...]
    real_length: int | None  # the real traces cut to this many accesses (None: whole)


# 400k accesses, not 1M: with 1M the run took over 20 minutes on the project's 2-core machine
# (shared with builds); 400k keeps it near 10. The real traces are replayed whole.
FULL = Scale(length=400_000, universe=1_000_000, sizes=(1_000, 10_000, 100_000), real_length=None)
FAST = Scale(length=40_000, universe=100_000, sizes=(100, 1_000), real_length=40_000)


def zipf_trace(keys: list[str], skew: float, length: int, seed: int) -> list[str]:
    """``length`` draws from ``keys``, rank r with weight 1 / (r + 1)^skew (inverse CDF)."""
    cum = list(itertools.accumulate((rank + 1) ** -skew for rank in range(len(keys))))
    return random.Random(seed).choices(keys, cum_weights=cum, k=length)


def sizes_for(trace: list[str], sizes: tuple[int, ...]) -> tuple[int, ...]:
    distinct = len(set(trace))
    return tuple(n for n in sizes if distinct >= MIN_DISTINCT_PER_SLOT * n)


def sizes_built(length: int, sizes: tuple[int, ...]) -> tuple[int, ...]:
    """The sizes a trace built for its size runs at: long enough for its pattern to repeat."""
    return tuple(n for n in sizes if length >= MIN_LENGTH_PER_SLOT * n)


def synthetic_traces(scale: Scale) -> list[Trace]:
    length = scale.length
    universe = make_keys("k", scale.universe)
    traces = []
    zipf_1: list[str] = []
    for i, skew in enumerate((0.6, 0.8, 1.0, 1.2)):
        accesses = zipf_trace(universe, skew, length, SEED + i)
        if skew == 1.0:
            zipf_1 = accesses
        traces.append(
            Trace(
                f"zipf {skew}",
                f"Zipf, skew {skew}, over {scale.universe:,} keys",
                sizes_for(accesses, scale.sizes),
                fixed=accesses,
            )
        )

    def loop(n: int) -> list[str]:
        cycle = universe[: n + n // 10]
        return (cycle * (length // len(cycle) + 1))[:length]

    traces.append(
        Trace(
            "loop",
            "the same 1.1 x size keys in a cycle",
            sizes_built(length, scale.sizes),
            build=loop,
        )
    )

    one_offs = make_keys("scan", length)  # never repeated: each is used once at most

    def scans(n: int) -> list[str]:
        out: list[str] = []
        zipf_at = scan_at = 0
        while len(out) < length:
            out += zipf_1[zipf_at : zipf_at + 2 * n]
            zipf_at += 2 * n
            out += one_offs[scan_at : scan_at + n]
            scan_at += n
        return out[:length]

    traces.append(
        Trace(
            "scan pollution",
            "zipf 1.0's accesses, 2 x size at a time, each run followed by size one-off keys",
            sizes_built(length, scale.sizes),
            build=scans,
        )
    )

    def shifting(n: int) -> list[str]:
        rng = random.Random(SEED + n)
        hot, phase = max(n // 2, 1), 4 * n
        out = []
        for i in range(length):
            if rng.random() < 0.9:
                start = (i // phase) * hot % (len(universe) - hot)
                out.append(universe[start + rng.randrange(hot)])
            else:
                out.append(universe[rng.randrange(len(universe))])
        return out

    traces.append(
        Trace(
            "shifting hot set",
            "90% uniform over a hot set of size/2 keys that moves to the next keys every"
            " 4 x size accesses, 10% uniform over all keys",
            sizes_built(length, scale.sizes),
            build=shifting,
        )
    )
    return traces


# --------------------------------------------------------------------------- real traces


@dataclass(frozen=True)
class RealFile:
    name: str
    file: str  # under LIBCACHESIM_DATA
    about: str
    parse: Callable[[str], str]  # one line -> its key ("" for a line to skip)


REAL_FILES = (
    RealFile(
        "twitter c52",
        "twitter_cluster52.csv",
        "Twitter's cache cluster 52 (Twemcache production trace), 1M requests, object ids",
        lambda line: "" if line.startswith("#") else line.split(",", 2)[1].strip(),
    ),
    RealFile(
        "cloudphysics",
        "cloudPhysicsIO.txt",
        "a CloudPhysics block I/O trace (one VM's disk), logical block numbers",
        lambda line: line.strip(),
    ),
)


def fetch_real_traces() -> str | None:
    """Put the real trace files in TRACES_DIR; None, or why they could not be had."""
    if all((TRACES_DIR / f.file).is_file() for f in REAL_FILES):
        return None
    TRACES_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TRACES_DIR) as tmp:
        # --no-binary: the wheel has no data/, only the sdist has it
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "libcachesim"]
        cmd += ["--quiet", "-d", tmp, LIBCACHESIM]
        print(f"fetching the real traces: {' '.join(cmd[2:])}", flush=True)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"pip download {LIBCACHESIM} failed: {exc}"
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).split()[-30:])
            return f"pip download {LIBCACHESIM} exited {done.returncode}: {tail}"
        sdists = list(Path(tmp).glob("libcachesim-*.tar.gz"))
        if not sdists:
            return f"pip download {LIBCACHESIM} brought no sdist"
        with tarfile.open(sdists[0]) as tar:
            for f in REAL_FILES:
                member = tar.extractfile(LIBCACHESIM_DATA + f.file)
                if member is None:
                    return f"{sdists[0].name} has no {LIBCACHESIM_DATA}{f.file}"
                with member, open(TRACES_DIR / f.file, "wb") as out:
                    shutil.copyfileobj(member, out)
    return None


def real_traces(scale: Scale) -> tuple[list[Trace], list[str]]:
    """The real traces and what to print about them."""
    error = fetch_real_traces()
    if error is not None:
        return [], [f"real traces: none loaded ({error})"]
    traces, notes = [], []
    for f in REAL_FILES:
        path = TRACES_DIR / f.file
        canonical: dict[str, str] = {}  # one str object per key, as the generated traces
        with open(path, encoding="ascii") as lines:
            accesses = [canonical.setdefault(k, k) for k in map(f.parse, lines) if k]
        for k in canonical:
            hash(k)
        if scale.real_length is not None:
            accesses = accesses[: scale.real_length]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        notes.append(
            f"{f.name}: {LIBCACHESIM} sdist, {LIBCACHESIM_DATA}{f.file}"
            f" (sha256 {digest}...), {f.about}"
        )
        traces.append(Trace(f.name, f.about, sizes_for(accesses, scale.sizes), fixed=accesses))
    return traces, notes


# =========================================================================== running


@dataclass
class Cell:
    hits: int
    seconds: float
    keys: set[str] | None = None  # the resident keys after the run (lfu check only)


def run_cell(col: Column, n: int, trace: list[str], keep_keys: bool) -> Cell:
    assert col.make is not None
    cache = col.make(n, trace)
    get = cache.get
    set_ = cache.__setitem__ if col.set_method is None else getattr(cache, col.set_method)
    loop = read_through_found if col.found_tuple else read_through
    random.seed(SEED)  # theine draws its read-buffer stripe from the global generator
    start = time.perf_counter()
    hits = loop(get, set_, trace)
    seconds = time.perf_counter() - start
    keys = set(cache.keys()) if keep_keys else None
    if col.variant is not None:
        dispose(col.variant, cache)
    del cache, get, set_
    collect()
    return Cell(hits, seconds, keys)


def overfill(col: Column, n: int = 100) -> int:
    """How many of n + n/10 distinct keys, each just set, ``col`` still returns."""
    keys = make_keys("probe", n + n // 10)
    cache = col.make(n, keys) if col.make is not None else None
    if cache is None:
        return 0
    set_ = cache.__setitem__ if col.set_method is None else getattr(cache, col.set_method)
    for k in keys:
        set_(k, VALUE)
    found = [cache.get(k) for k in keys]
    kept = sum(f[1] if col.found_tuple else f is not None for f in found)
    if col.variant is not None:
        dispose(col.variant, cache)
    return kept


def pct(hits: int, accesses: int) -> str:
    return f"{100.0 * hits / accesses:.2f}"


class Out:
    """Prints sections, tables and notes as plain text or as Markdown."""

    def __init__(self, markdown: bool) -> None:
        self.md = markdown

    def title(self, text: str) -> None:
        print(f"\n## {text}\n")

    def line(self, text: str) -> None:
        print(f"- {text}" if self.md else text, flush=True)

    def table(self, header: list[str], rows: list[list[str]], left: int = 2) -> None:
        if self.md:
            print("| " + " | ".join(header) + " |")
            print("| " + " | ".join(["---"] * left + ["---:"] * (len(header) - left)) + " |")
            for row in rows:
                print("| " + " | ".join(row) + " |")
            print()
            return
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

        def fmt(cells: list[str]) -> str:
            parts = [
                f"{c:<{w}}" if i < left else f"{c:>{w}}"
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ]
            return "  ".join(parts).rstrip()

        print(fmt(header))
        print("-" * len(fmt(header)))
        for row in rows:
            print(fmt(row))
        sys.stdout.flush()


def print_machine(out: Out, impls: list[Impl]) -> None:
    out.line(f"machine: {platform.platform()}")
    out.line(f"cpu: {cpu_model()} ({os.cpu_count()} cpus)")
    out.line(f"python: {sys.version.split()[0]} ({platform.python_implementation()})")
    if hasattr(os, "getloadavg"):
        out.line("load: " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)")
    for impl in impls:
        out.line(f"{impl.name}: {impl.error or impl.version}")
    seed = os.environ.get("PYTHONHASHSEED", "random")
    out.line(
        f"PYTHONHASHSEED: {seed} (str hashes are salted per process unless set: the columns"
        " that hash keys into a sketch, tinylfu's, move a little from run to run)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="smoke run, under a minute")
    parser.add_argument("--markdown", action="store_true", help="print as Markdown")
    args = parser.parse_args()
    scale = FAST if args.fast else FULL
    out = Out(args.markdown)
    started = time.perf_counter()

    columns, impls = build_columns()
    print_machine(out, impls)
    traces = synthetic_traces(scale)
    real, real_notes = real_traces(scale)
    traces += real
    for note in real_notes:
        out.line(note)
    out.line(f"traces ready in {time.perf_counter() - started:.0f} s")

    gc.disable()  # collect() runs between cells, never inside a run
    live = [c for c in columns if c.make is not None]
    rows: list[list[str]] = []
    ratios: dict[tuple[str, int], dict[str, float]] = {}
    lfu_lines: list[str] = []
    totals = {c.header: [0, 0.0] for c in live}  # accesses, seconds
    for trace in traces:
        for n in trace.sizes:
            accesses = trace.accesses(n)
            cells = {c.header: run_cell(c, n, accesses, c.header in LFU_PAIR) for c in live}
            for header, cell in cells.items():
                totals[header][0] += len(accesses)
                totals[header][1] += cell.seconds
            ratios[(trace.name, n)] = {h: 100.0 * c.hits / len(accesses) for h, c in cells.items()}
            row = [trace.name, fmt_n(n)]
            for c in columns:
                cell = cells.get(c.header)
                row.append("n/a" if cell is None else pct(cell.hits, len(accesses)))
            rows.append(row)
            lfu_lines.append(lfu_check(trace.name, n, cells))
            print(
                f"  {trace.name}, {fmt_n(n)}: {len(accesses):,} accesses,"
                f" {len(set(accesses)):,} keys ({time.perf_counter() - started:.0f} s): "
                + " ".join(row[2:]),
                file=sys.stderr,
                flush=True,
            )

    out.title("hit ratio, % (hits / accesses; get, and on a miss set; cold start)")
    out.table(["trace", "size", *[c.header for c in columns]], rows)
    for c in columns:
        out.line(f"{c.header}: {c.label if c.make else 'n/a (' + str(c.error) + ')'}")
    for trace in traces:
        skipped = [fmt_n(n) for n in scale.sizes if n not in trace.sizes]
        why = "too short" if trace.build is not None else "too few keys"
        note = f"; not run at {', '.join(skipped)} ({why})" if skipped else ""
        out.line(f"{trace.name}: {trace.about}{note}")
    out.line(
        f"a size runs where the trace has at least {MIN_DISTINCT_PER_SLOT}x as many distinct"
        " keys; loop, scan pollution and shifting hot set are built for each size and run"
        f" where they are {MIN_LENGTH_PER_SLOT}x as long as the size"
    )
    for c in live:
        if c.variant is not None and (kept := overfill(c)) > 100:
            out.line(
                f"{c.header} holds more than its size between its maintenance runs:"
                f" size 100, 110 keys set, then {kept} of them found"
            )

    out.title("ops/s (accesses per second over the whole run, the loop included)")
    for c in columns:
        if c.make is None:
            out.line(f"{c.header}: n/a ({c.error})")
        else:
            count, seconds = totals[c.header]
            rate = count / seconds / 1e6
            out.line(f"{c.header}: {rate:.2f} M ops/s ({count:,} accesses in {seconds:.1f} s)")

    out.title("FlexCache lfu against the exact LFU model")
    for line in lfu_lines:
        out.line(line)

    out.title("targets")
    matched = sum(" MATCH " in line for line in lfu_lines)
    out.line(f"FC lfu equal to the exact LFU model: {matched} of {len(lfu_lines)} cells")
    for line in targets(ratios):
        out.line(line)
    out.line(f"total {time.perf_counter() - started:.0f} s")


LFU_PAIR = ("FC lfu", "LFU model")


def lfu_check(trace: str, n: int, cells: dict[str, Cell]) -> str:
    fc, model = cells.get(LFU_PAIR[0]), cells.get(LFU_PAIR[1])
    if fc is None or model is None:
        return f"{trace}, {fmt_n(n)}: n/a"
    same_keys = fc.keys == model.keys
    verdict = "MATCH" if fc.hits == model.hits and same_keys else "DIFFER"
    return (
        f"{trace}, {fmt_n(n)}: {verdict} (FlexCache lfu {fc.hits:,} hits, model {model.hits:,};"
        f" resident keys {'the same' if same_keys else 'differ'})"
    )


def targets(ratios: dict[tuple[str, int], dict[str, float]]) -> list[str]:
    """The lead's checks, computed from the cells as printed (before rounding)."""
    lines = []
    over = [
        f"{h} {r[h]:.2f} > Bélády {r['Bélády']:.2f} at {t}, {fmt_n(n)}"
        for (t, n), r in ratios.items()
        for h in r
        if "Bélády" in r and r[h] > r["Bélády"] + 1e-9
    ]
    lines.append(
        "no column above Bélády: " + ("holds" if not over else "FAILS: " + "; ".join(over))
    )
    if "FC tinylfu" not in next(iter(ratios.values()), {}):
        return [*lines, "FlexCache tinylfu did not run"]
    for peer in ("theine", "moka tlfu"):
        behind = [
            f"{t}, {fmt_n(n)}: {r['FC tinylfu'] - r[peer]:+.2f}"
            for (t, n), r in ratios.items()
            if peer in r and r["FC tinylfu"] < r[peer] - 0.5
        ]
        worst = min(
            ((r["FC tinylfu"] - r[peer], t, n) for (t, n), r in ratios.items() if peer in r),
            default=None,
        )
        if worst is None:
            lines.append(f"FC tinylfu within 0.5 of {peer} or ahead: n/a ({peer} did not run)")
            continue
        lines.append(
            f"FC tinylfu within 0.5 of {peer} or ahead, every cell: "
            + ("holds" if not behind else "FAILS at " + "; ".join(behind))
            + f" (worst: {worst[0]:+.2f} at {worst[1]}, {fmt_n(worst[2])})"
        )
        scan = [
            f"{fmt_n(n)}: {r['FC tinylfu'] - r[peer]:+.2f}"
            for (t, n), r in ratios.items()
            if t == "scan pollution" and peer in r
        ]
        held = all(
            r["FC tinylfu"] >= r[peer] + 2.0
            for (t, _n), r in ratios.items()
            if t == "scan pollution" and peer in r
        )
        lines.append(
            f"FC tinylfu ahead of {peer} by >= 2 on scan pollution: "
            + ("holds" if held else "FAILS")
            + f" ({'; '.join(scan)})"
        )
    below = [
        f"{t}, {fmt_n(n)}: {r['FC tinylfu'] - r['FC lru']:+.2f}"
        for (t, n), r in ratios.items()
        if r["FC tinylfu"] < r["FC lru"] - 3.0
    ]
    worst_lru = min((r["FC tinylfu"] - r["FC lru"], t, n) for (t, n), r in ratios.items())
    lines.append(
        "FC tinylfu never more than 3 below FC lru: "
        + ("holds" if not below else "FAILS at " + "; ".join(below))
        + f" (worst: {worst_lru[0]:+.2f} at {worst_lru[1]}, {fmt_n(worst_lru[2])})"
    )
    return lines


if __name__ == "__main__":
    main()
