"""cache.dump(target, *, serializer) and FlexCache.load(source, *, deserializer,
clock=None, **settings) (SPEC, Persistence; the format: README, Persistence).

Round trips under every policy and key type, ttl kept as wall-clock time,
expired entries skipped unread, settings overridden through the constructor,
atomic writes to a path (an error or a SIGKILL part-way leaves the old file),
and corrupt input refused with ValueError before any deserializer runs.
"""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import POLICIES
from flexcache import FlexCache, RemovalCause
from flexcache.testing import ManualClock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ORDERED = ("lru", "fifo", "lfu")
MAGIC = b"\x89FLEXCACHE\r\n\x1a\n"


class Res:
    """A picklable value with a counted ``close()`` (by name, in order)."""

    closes: list[str] = []  # noqa: RUF012 - shared on purpose
    size_calls = 0

    def __init__(self, name: str, size: int = 1) -> None:
        self.name = name
        self.size = size

    def item_size(self) -> int:
        Res.size_calls += 1
        return self.size

    def close(self) -> None:
        Res.closes.append(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Res) and (self.name, self.size) == (other.name, other.size)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Res({self.name!r})"


@pytest.fixture(autouse=True)
def _fresh_closes() -> None:
    Res.closes.clear()


class Counting:
    """pickle.loads, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, data: bytes) -> Any:
        self.calls += 1
        return pickle.loads(data)


def populated(policy: str, clock: ManualClock | None = None) -> FlexCache:
    cache = FlexCache(
        policy,
        scan_interval=2.5,
        max_items=100,
        max_bytes=10_000,
        clock=clock,
        weigher=lambda k, v: len(repr(v)),
    )
    keys: list[Any] = ["a", 1, (2, "two"), 3.5, b"bytes", "b", 7, ("t", (1, 2)), "", 10**30]
    for n, key in enumerate(keys):
        cache.set(key, Res(f"v{n}", n + 1), ttl=None if n % 3 else 1000 + n)
    for key in ["b", 7, 7, "a", 3.5, 3.5, 3.5, 10**30]:
        assert cache.get(key) is not None
    return cache


def entries(cache: FlexCache) -> list[tuple[Any, Any]]:
    return list(zip(cache.keys(), cache.values(), strict=True))


def dumped(cache: FlexCache, serializer: Any = pickle.dumps) -> bytes:
    target = io.BytesIO()
    cache.dump(target, serializer=serializer)
    return target.getvalue()


@pytest.mark.parametrize("policy", POLICIES)
def test_round_trip_through_a_path(policy: str, tmp_path: Path) -> None:
    source = populated(policy)
    path = tmp_path / "cache.dump"
    assert source.dump(path, serializer=pickle.dumps) == 10
    Res.size_calls = 0
    loaded = FlexCache.load(path, deserializer=pickle.loads, weigher=lambda k, v: 1)
    assert (loaded.eviction_policy, loaded.scan_interval, loaded.max_items, loaded.max_bytes) == (
        policy,
        2.5,
        100,
        10_000,
    )
    assert loaded.bytes == source.bytes  # sizes from the dump, not the weigher
    if policy in ORDERED:
        assert entries(loaded) == entries(source)
    else:
        assert sorted(entries(loaded), key=repr) == sorted(entries(source), key=repr)
    for key in source.keys():
        expected = source.expires_in(key)
        if expected is None:
            assert loaded.expires_in(key) is None
        else:
            assert loaded.expires_in(key) == pytest.approx(expected, abs=0.5)
    assert loaded.stats().sets == 0 and Res.closes == [] and Res.size_calls == 0
    assert os.listdir(tmp_path) == ["cache.dump"]  # no temporary file left


@pytest.mark.parametrize("policy", ORDERED)
def test_loaded_cache_goes_on_as_the_source_would(policy: str) -> None:
    source = FlexCache(policy, max_items=6)
    for n in range(6):
        source[f"k{n}"] = n
    for key in ["k3", "k3", "k1", "k5", "k5", "k5", "k0"]:
        source.get(key)
    loaded = FlexCache.load(io.BytesIO(dumped(source)), deserializer=pickle.loads)
    for cache in (source, loaded):
        cache.get("k2")
        for n in range(6, 10):
            cache[f"k{n}"] = n
    assert loaded.keys() == source.keys()


def test_json_round_trip_and_settings_carried() -> None:
    source = FlexCache("fifo", 0.5, 3, 0, thread_safe=True)
    source["a"] = {"x": [1, 2]}
    source["b"] = "text"
    source["c"] = None
    data = dumped(source, serializer=lambda v: json.dumps(v).encode())
    loaded = FlexCache.load(io.BytesIO(data), deserializer=json.loads)
    assert entries(loaded) == entries(source)
    assert loaded.thread_safe and loaded.scan_interval == 0.5 and loaded.max_items == 3


def test_background_scan_is_carried(tmp_path: Path) -> None:
    with FlexCache(background_scan=0.05) as source:
        source["k"] = 1
        source.dump(tmp_path / "d", serializer=pickle.dumps)
    with FlexCache.load(tmp_path / "d", deserializer=pickle.loads) as loaded:
        assert loaded.background_scan == 0.05 and loaded["k"] == 1


def test_remaining_ttl_is_wall_clock_time() -> None:
    clock = ManualClock()
    source = FlexCache(clock=clock)
    source.set("k", "v", ttl=10)
    source.set("forever", "v")
    clock.advance(3)
    data = dumped(source)
    later = copy.deepcopy(clock)  # the same wall time
    later.step_wall(5)  # five seconds pass before the load
    loaded = FlexCache.load(io.BytesIO(data), deserializer=pickle.loads, clock=later)
    assert loaded._settings()["clock"] is later
    assert loaded.expires_in("k") == pytest.approx(2, abs=1e-3)
    assert loaded.expires_in("forever") is None
    later.advance(2)
    assert "k" not in loaded and "forever" in loaded


def test_expired_entries_are_skipped_unread() -> None:
    clock = ManualClock()
    source = FlexCache("lru", max_items=10, clock=clock)
    source.set("short", Res("short"), ttl=5)
    source.set("long", Res("long"), ttl=50)
    source.set("never", Res("never"))
    data = dumped(source)
    later = copy.deepcopy(clock)
    later.step_wall(10)
    counting = Counting()
    loaded = FlexCache.load(io.BytesIO(data), deserializer=counting, clock=later)
    assert loaded.keys() == ["long", "never"]
    assert counting.calls == 4  # two keys, two values: nothing of "short"
    later.step_wall(1000)
    counting.calls = 0
    assert len(FlexCache.load(io.BytesIO(data), deserializer=counting, clock=later)) == 1
    assert counting.calls == 2
    assert Res.closes == []


@pytest.mark.parametrize("policy", ("lru", "fifo", "lfu", "random", "tinylfu"))
def test_lower_limits_at_load_evict_by_policy_and_close(policy: str) -> None:
    source = FlexCache(policy, max_items=10)
    for n in range(10):
        source[f"k{n}"] = Res(f"k{n}")
    source.get("k0")
    data = dumped(source)
    removed: list[tuple[Any, RemovalCause]] = []
    loaded = FlexCache.load(
        io.BytesIO(data),
        deserializer=pickle.loads,
        max_items=4,
        on_remove=lambda k, v, cause: removed.append((k, cause)),
    )
    assert loaded.items == 4 and loaded.max_items == 4
    assert sorted(Res.closes) == sorted(k for k, _ in removed)
    assert len(removed) == 6 and all(cause == RemovalCause.SIZE for _, cause in removed)
    assert loaded.stats().evictions == 6
    if policy in ("lru", "fifo", "lfu"):
        expected = source.keys()[6:]
        assert loaded.keys() == expected
        assert [k for k, _ in removed] == source.keys()[:6]
    # The source lost nothing.
    assert source.items == 10


def test_max_bytes_lower_at_load() -> None:
    source = FlexCache("lru", max_bytes=100, weigher=lambda k, v: v)
    for n, size in enumerate([30, 5, 60, 1]):
        source[f"k{n}"] = size
    loaded = FlexCache.load(io.BytesIO(dumped(source)), deserializer=pickle.loads, max_bytes=20)
    # 60 alone is over the limit; then the oldest go until 50 holds.
    assert loaded.keys() == ["k1", "k3"] and loaded.bytes == 6


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"max_items": -1}, ValueError),
        ({"max_items": 1.5}, TypeError),
        ({"eviction_policy": "nope"}, ValueError),
        ({"scan_interval": -1}, ValueError),
        ({"thread_safe": False, "background_scan": 1.0}, ValueError),
        ({"weigher": 3}, TypeError),
        ({"no_such_setting": 1}, TypeError),
    ],
)
def test_settings_the_constructor_refuses(overrides: dict[str, Any], error: type) -> None:
    source = FlexCache()
    source["k"] = Res("k")
    data = dumped(source)
    counting = Counting()
    with pytest.raises(error):
        FlexCache.load(io.BytesIO(data), deserializer=counting, **overrides)
    assert counting.calls == 0
    with pytest.raises(error):
        FlexCache(**overrides)


def test_serializer_error_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.dump"
    old = FlexCache()
    old["old"] = 1
    old.dump(path, serializer=pickle.dumps)
    before = path.read_bytes()

    def refuse_some(value: Any) -> bytes:
        if value == "bad":
            raise RuntimeError("refused")
        return pickle.dumps(value)

    cache = FlexCache()
    for n in range(1000):
        cache[f"k{n}"] = n
    cache["bad"] = "bad"
    with pytest.raises(RuntimeError, match="refused"):
        cache.dump(path, serializer=refuse_some)
    with pytest.raises(TypeError, match="bytes"):
        cache.dump(path, serializer=lambda v: "not bytes")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["cache.dump"]
    assert cache.items == 1001


def test_bad_targets_write_nothing(tmp_path: Path) -> None:
    cache = FlexCache()
    cache["k"] = 1
    calls = []

    def serializer(value: Any) -> bytes:
        calls.append(value)
        return pickle.dumps(value)

    with pytest.raises(FileNotFoundError):
        cache.dump(tmp_path / "missing" / "cache.dump", serializer=serializer)
    assert calls == []
    folder = tmp_path / "a_folder"
    folder.mkdir()
    with pytest.raises(OSError):
        cache.dump(folder, serializer=serializer)
    assert sorted(os.listdir(tmp_path)) == ["a_folder"] and os.listdir(folder) == []


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FlexCache.load(tmp_path / "missing", deserializer=pickle.loads)
    (tmp_path / "text").write_text("hello")
    with pytest.raises(ValueError, match="not a FlexCache dump"):
        FlexCache.load(tmp_path / "text", deserializer=pickle.loads)
    with (tmp_path / "text").open() as text, pytest.raises(TypeError, match="binary"):
        FlexCache.load(text, deserializer=pickle.loads)
    with pytest.raises(ValueError, match="not a FlexCache dump"):
        FlexCache.load(io.BytesIO(pickle.dumps({"a": 1})), deserializer=pickle.loads)


def small_dump() -> bytes:
    cache = FlexCache("lfu", max_items=5)
    cache["a"] = 1
    cache[("t", 2)] = [1, 2]
    cache.get("a")
    return dumped(cache)


def test_every_truncation_is_a_value_error() -> None:
    data = small_dump()
    counting = Counting()
    for length in range(len(data)):
        with pytest.raises(ValueError, match="FlexCache dump"):
            FlexCache.load(io.BytesIO(data[:length]), deserializer=counting)
    assert counting.calls == 0
    assert len(FlexCache.load(io.BytesIO(data), deserializer=counting)) == 2


def test_every_flipped_byte_is_a_value_error() -> None:
    data = small_dump()
    counting = Counting()
    for at in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[at] ^= flip
            with pytest.raises(ValueError, match="FlexCache dump"):
                FlexCache.load(io.BytesIO(bytes(bad)), deserializer=counting)
    assert counting.calls == 0
    with pytest.raises(ValueError, match="after its end"):
        FlexCache.load(io.BytesIO(data + b"\0"), deserializer=counting)


def test_wrong_magic_and_newer_version() -> None:
    data = small_dump()
    assert data.startswith(MAGIC)
    with pytest.raises(ValueError, match="wrong magic"):
        FlexCache.load(io.BytesIO(b"\x89FLEXCACHX" + data[10:]), deserializer=pickle.loads)
    newer = data[: len(MAGIC)] + struct.pack("<I", 2) + data[len(MAGIC) + 4 :]
    with pytest.raises(ValueError, match="version 2, newer"):
        FlexCache.load(io.BytesIO(newer), deserializer=pickle.loads)


def record(body: bytes) -> bytes:
    length = struct.pack("<I", len(body))
    return length + body + struct.pack("<I", zlib.crc32(length + body))


def test_the_format_is_as_the_readme_says() -> None:
    """A dump written by hand, as README's Persistence section lays it out."""
    settings_body = (
        b"\x01"
        + b"\x00"
        + struct.pack("<I", 3)
        + b"lru"
        + struct.pack("<dQQ", 0.0, 5, 0)
        + b"\x00"
        + b"\x00"
        + struct.pack("<d", 0.0)
    )
    key, value = pickle.dumps("k"), pickle.dumps("v")
    entry = b"\x02" + struct.pack("<QqQI", 7, 2**63 - 1, 0, len(key)) + key + value
    data = MAGIC + struct.pack("<I", 1) + record(settings_body) + record(entry)
    data += record(b"\x03" + struct.pack("<Q", 1))
    loaded = FlexCache.load(io.BytesIO(data), deserializer=pickle.loads)
    assert loaded.keys() == ["k"] and loaded.bytes == 7 and loaded.max_items == 5
    assert dumped(loaded) == data
    # A record that checksums but counts wrong is still refused.
    wrong_count = data[: -len(record(b"\x03" + struct.pack("<Q", 1)))]
    wrong_count += record(b"\x03" + struct.pack("<Q", 2))
    with pytest.raises(ValueError, match="counts 2 entries"):
        FlexCache.load(io.BytesIO(wrong_count), deserializer=pickle.loads)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    counting = Counting()
    with pytest.raises(ValueError, match="FlexCache dump"):
        FlexCache.load(io.BytesIO(data), deserializer=counting)
    assert counting.calls == 0


SMALL = small_dump()


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(SMALL) - 1), st.integers(1, 255)), min_size=1, max_size=8
    ),
    st.integers(0, len(SMALL)),
    st.binary(max_size=16),
)
def test_fuzz_mutated_dumps(flips: list[tuple[int, int]], cut: int, tail: bytes) -> None:
    bad = bytearray(SMALL)
    for at, mask in flips:
        bad[at] ^= mask
    bad = bad[:cut] + tail
    counting = Counting()
    try:
        loaded = FlexCache.load(io.BytesIO(bytes(bad)), deserializer=counting)
    except ValueError as error:
        assert "FlexCache dump" in str(error)
        assert counting.calls == 0
    else:
        # Only the untouched dump loads (flips that cancel out, no cut).
        assert bytes(bad) == SMALL and len(loaded) == 2


def test_dump_and_load_never_close_source_values_and_refcounts_balance() -> None:
    key, value = ("ref", "key"), Res("kept")
    cache = FlexCache("lru", max_items=10)
    cache.set(key, value)
    cache.set("other", Res("other"), ttl=100)
    before = sys.getrefcount(key), sys.getrefcount(value)
    for _ in range(3):
        data = dumped(cache)
        loaded = FlexCache.load(io.BytesIO(data), deserializer=pickle.loads, max_items=1)
        del loaded
    assert (sys.getrefcount(key), sys.getrefcount(value)) == before
    # The loads' own evictions closed their own copies, never the source's.
    assert Res.closes == ["kept"] * 3
    assert cache.items == 2


def test_a_deserializer_error_closes_what_it_made() -> None:
    source = FlexCache("fifo", max_items=10)
    for n in range(5):
        source[f"k{n}"] = Res(f"v{n}")
    data = dumped(source)
    made = []

    def fail_on_the_fourth_value(raw: bytes) -> Any:
        obj = pickle.loads(raw)
        if isinstance(obj, Res):
            if obj.name == "v3":
                raise RuntimeError("cannot")
            made.append(obj)
        return obj

    with pytest.raises(RuntimeError, match="cannot"):
        FlexCache.load(io.BytesIO(data), deserializer=fail_on_the_fourth_value)
    assert Res.closes == ["v0", "v1", "v2"]
    Res.closes.clear()
    # A key that cannot be a key (a list): TypeError, and every value closed.
    listing = FlexCache("fifo", max_items=10)
    listing[("a",)] = Res("only")
    data = dumped(listing)
    with pytest.raises(TypeError):
        FlexCache.load(
            io.BytesIO(data),
            deserializer=lambda raw: (
                list(obj) if isinstance(obj := pickle.loads(raw), tuple) else obj
            ),
        )
    assert Res.closes == ["only"]


def test_keys_equal_after_loading_keep_the_last_and_close_the_other() -> None:
    source = FlexCache("lru", max_items=10)
    source["1"] = Res("first")
    source["x"] = Res("x")
    source["01"] = Res("second")
    loaded = FlexCache.load(
        io.BytesIO(dumped(source)),
        deserializer=lambda raw: (
            int(obj) if isinstance(obj := pickle.loads(raw), str) and obj.isdigit() else obj
        ),
    )
    assert loaded.keys() == ["x", 1] and loaded[1].name == "second"
    assert Res.closes == ["first"]


CHILD = textwrap.dedent(
    """
    import os, pickle, sys, time
    from flexcache import FlexCache

    path, stop_at = sys.argv[1], int(sys.argv[2])
    cache = FlexCache("lru", max_items=300_000)
    for n in range(200_000):
        cache[f"key-{n}"] = ("new", n, "x" * 40)
    calls = 0

    def serializer(obj):
        global calls
        calls += 1
        if calls == stop_at:
            print("at", flush=True)
            time.sleep(60)
        return pickle.dumps(obj)

    print("ready", flush=True)
    cache.dump(path, serializer=serializer)
    print("done", flush=True)
    """
)


def old_content() -> FlexCache:
    cache = FlexCache()
    for n in range(10):
        cache[f"old-{n}"] = n
    return cache


@pytest.mark.parametrize("stop_at", [1, 2, 5_000, 150_001, 399_999, 0])
def test_sigkill_during_a_dump_leaves_the_old_file_or_the_new(stop_at: int, tmp_path: Path) -> None:
    path = tmp_path / "cache.dump"
    old_content().dump(path, serializer=pickle.dumps)
    old = path.read_bytes()
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(stop_at)],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        if stop_at:
            assert child.stdout.readline() == "at\n"
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=120)
    loaded = FlexCache.load(path, deserializer=pickle.loads)
    if stop_at:
        assert child.returncode == -signal.SIGKILL
        assert path.read_bytes() == old and loaded.keys() == old_content().keys()
    else:
        assert child.returncode == 0 and loaded.items == 200_000
        assert loaded["key-7"] == ("new", 7, "x" * 40)


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.4, 0.6, 0.8])
def test_sigkill_at_a_random_moment_leaves_a_file_that_loads(delay: float, tmp_path: Path) -> None:
    """Killed at a moment of the clock, not of the serializer: anywhere in the
    dump, the fsync or the rename. The file is then the old or the new."""
    import time

    path = tmp_path / "cache.dump"
    old_content().dump(path, serializer=pickle.dumps)
    old = path.read_bytes()
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), "-1"], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=120)
    loaded = FlexCache.load(path, deserializer=pickle.loads)
    if path.read_bytes() == old:
        assert loaded.keys() == old_content().keys()
    else:
        assert loaded.items == 200_000
