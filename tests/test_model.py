"""A stateful model test: FlexCache and a small pure-Python model, step by step.

Hypothesis drives one cache (policy, limits and ``scan_interval`` drawn per run, a
:class:`ManualClock`) and :class:`Model` with the same operations: ``set`` (ttl ``None``,
seconds, ``timedelta`` or a past ``datetime``), ``get``, ``delete``, ``in``, ``scan``,
``clear`` and ``clock.advance`` (small steps, exact deadline hits, huge jumps). After every
step both must agree on results, counts and on exactly which values were closed.

Model semantics (SPEC plus README's "Semantics we chose"):

- time is kept in integer nanoseconds; an entry is expired when ``now >= deadline``;
- ``get``/``set``/``delete`` begin with an automatic scan when ``now - last_scan >=
  scan_interval``; every reap of all expired entries (explicit ``scan()``, an automatic scan,
  a ``set`` that needs room) is a scan and sets ``last_scan``;
- ``set``: a size over ``max_bytes`` is ``ValueError``, a live holder ``KeyError``, an expired
  holder is reaped; then, if over a limit, every expired entry is reaped and live ones are
  evicted by policy (LRU: ``set`` and a ``get`` hit refresh; FIFO: insertion order; LFU: the
  lowest count, 1 at ``set`` and one more per ``get`` hit, ties to the least recently used;
  random: any live entry but the new one: the model accepts the victim the cache reports
  through the ``close()`` log and checks that it was a legal choice and that no more were
  evicted than needed); ``tinylfu`` as random, except that the new entry competes for its
  place too and may be the one that goes (it lost its admission: closed, not stored) -- the
  model checks everything but which entry was chosen;
- ``python-lru``: an ``EvictionPolicy`` written in Python that keeps an exact LRU order; the
  model expects exactly the victims of ``lru``, and every other rule as for the rest;
- ``in`` never reaps and never refreshes;
- within one operation values are closed in the order they left: expired (and deleted or
  cleared) ones first, in any order, then eviction victims in eviction order.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from conftest import POLICIES
from flexcache import EvictionPolicy, FlexCache
from flexcache.testing import ManualClock
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

NS = 1_000_000_000
KEYS = ["a", "b", "c", "d", "e", "", "\ud800"]
INTERVALS = [0, 1.5, math.inf]
HUGE_STEP_NS = 10**8 * NS  # ~3 years: everything set so far expires; 50 of them fit in u64 ns

#: A policy written in Python, run by the model as ``lru``.
PYTHON_LRU = "python-lru"


class PythonLru(EvictionPolicy):
    """LRU kept by the hooks alone: what the cache tells it must be exactly right."""

    def __init__(self) -> None:
        self.order: OrderedDict[Hashable, None] = OrderedDict()

    def on_insert(self, key: Hashable) -> None:
        assert key not in self.order, f"on_insert({key!r}) of a key already held"
        self.order[key] = None

    def on_access(self, key: Hashable) -> None:
        self.order.move_to_end(key)

    def on_remove(self, key: Hashable) -> None:
        del self.order[key]

    def victim(self) -> Hashable:
        return next(iter(self.order))


# Counters over the whole session, for a look at what the runs covered.
STATS = {"runs": 0, "steps": 0, "let_go": 0, "evicted": 0}


class Value:
    """A cached value: a drawn ``item_size()`` (or none) and a ``close()`` that is logged."""

    def __init__(self, uid: int, size: int | None, log: list[Value]) -> None:
        self.uid = uid
        self.size = size
        self.size_calls = 0
        self.closes = 0
        self._log = log

    def close(self) -> None:
        self.closes += 1
        self._log.append(self)

    def __repr__(self) -> str:
        return f"<Value #{self.uid} size={self.size} closes={self.closes}>"


class SizedValue(Value):
    def item_size(self) -> int:
        self.size_calls += 1
        assert self.size is not None
        return self.size


def make_value(uid: int, size: int | None, log: list[Value]) -> Value:
    return Value(uid, None, log) if size is None else SizedValue(uid, size, log)


@dataclass
class Entry:
    value: Value
    size: int
    deadline: int | None  # ns on the manual clock; None: never
    count: int = 1  # lfu: 1 when stored, one more per hit


class Model:
    """The obviously-right cache the real one is compared with."""

    def __init__(self, policy: str, scan_interval: float, max_items: int, max_bytes: int) -> None:
        self.policy = policy
        self.interval = None if math.isinf(scan_interval) else round(scan_interval * NS)
        self.max_items = max_items
        self.max_bytes = max_bytes
        # LRU/FIFO: next victim first; LFU: least recently used first (the victim is the
        # first of the lowest count).
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.clock = 0
        self.last_scan = 0
        # What the current operation let go: unordered (expired, deleted, cleared) + victims.
        self.gone: list[Value] = []
        self.victims: list[Value] = []
        # The cache's close() log of the current operation, to learn random victims.
        self.observed: list[Value] = []

    # -- helpers ---------------------------------------------------------------------------

    def begin(self, observed: list[Value]) -> None:
        self.gone = []
        self.victims = []
        self.observed = observed

    def expired(self, entry: Entry, now: int) -> bool:
        return entry.deadline is not None and now >= entry.deadline

    def items(self) -> int:
        return len(self.entries)

    def bytes(self) -> int:
        return sum(entry.size for entry in self.entries.values())

    def over(self, extra_items: int, extra_bytes: int) -> bool:
        return bool(
            (self.max_items and self.items() + extra_items > self.max_items)
            or (self.max_bytes and self.bytes() + extra_bytes > self.max_bytes)
        )

    def release(self, key: str) -> Value:
        entry = self.entries.pop(key)
        return entry.value

    def reap_expired(self, now: int) -> None:
        self.last_scan = now
        for key in [k for k, e in self.entries.items() if self.expired(e, now)]:
            self.gone.append(self.release(key))

    def auto_scan(self, now: int) -> None:
        if self.interval is not None and now - self.last_scan >= self.interval:
            self.reap_expired(now)

    def evict(self, extra_items: int, extra_bytes: int) -> None:
        while self.over(extra_items, extra_bytes):
            self.evict_one()

    def evict_one(self) -> None:
        if self.policy in ("random", "tinylfu"):
            index = len(self.gone) + len(self.victims)
            assert index < len(self.observed), (
                f"{self.policy}: the cache evicted too few entries to get under the limits"
            )
            chosen = self.observed[index]
            keys = [k for k, e in self.entries.items() if e.value is chosen]
            assert keys, f"{self.policy}: the cache closed {chosen!r}, not a live entry"
            key = keys[0]
        elif self.policy == "lfu":
            lowest = min(entry.count for entry in self.entries.values())
            key = next(k for k, e in self.entries.items() if e.count == lowest)
        else:
            key = next(iter(self.entries))
        self.victims.append(self.release(key))

    # -- operations ------------------------------------------------------------------------

    def set(self, key: str, value: Value, size: int, ttl_ns: int | None, past: bool) -> str:
        """Returns 'ok', 'KeyError' or 'ValueError'."""
        now = self.clock
        self.auto_scan(now)
        if self.max_bytes and size > self.max_bytes:
            return "ValueError"
        holder = self.entries.get(key)
        if holder is not None:
            if not self.expired(holder, now):
                return "KeyError"
            self.gone.append(self.release(key))
        deadline = now if past else (None if ttl_ns is None else now + ttl_ns)
        if self.policy == "tinylfu" and self.over(1, size):
            # The new entry competes for its place too: it may be the one that goes.
            self.reap_expired(now)
            while self.over(1, size):
                index = len(self.gone) + len(self.victims)
                if index < len(self.observed) and self.observed[index] is value:
                    self.victims.append(value)
                    return "ok"
                self.evict_one()
            self.entries[key] = Entry(value, size, deadline)
            return "ok"
        if self.over(1, size):
            self.reap_expired(now)
            self.evict(1, size)
        self.entries[key] = Entry(value, size, deadline)
        return "ok"

    def get(self, key: str) -> Value | None:
        now = self.clock
        self.auto_scan(now)
        entry = self.entries.get(key)
        if entry is None:
            return None
        if self.expired(entry, now):
            self.gone.append(self.release(key))
            return None
        if self.policy in ("lru", "lfu"):
            entry.count += 1
            self.entries.move_to_end(key)
        return entry.value

    def delete(self, key: str) -> bool:
        now = self.clock
        self.auto_scan(now)
        entry = self.entries.get(key)
        if entry is None:
            return False
        self.gone.append(self.release(key))
        return not self.expired(entry, now)

    def contains(self, key: str) -> bool:
        entry = self.entries.get(key)
        return entry is not None and not self.expired(entry, self.clock)

    def scan(self) -> None:
        now = self.clock
        self.reap_expired(now)
        self.evict(0, 0)

    def clear(self) -> None:
        for key in list(self.entries):
            self.gone.append(self.release(key))

    def advance(self, ns: int) -> None:
        self.clock += ns


# ttl choices, turned into real ttl objects at the time of the set (a past datetime is
# relative to the clock's own wall time).
TTLS = st.one_of(
    st.just(("none", 0)),
    st.tuples(st.just("int"), st.integers(1, 5)),
    st.tuples(st.just("float"), st.sampled_from([0.25, 0.5, 1.25, 2.5])),
    st.tuples(st.just("timedelta"), st.integers(1, 4000)),  # milliseconds
    st.tuples(st.just("wide"), st.integers(1, 2**42)),  # microseconds: up to ~50 days
    st.tuples(st.just("past_naive"), st.integers(1, 3600)),  # seconds before now
    st.tuples(st.just("past_aware"), st.integers(1, 3600)),
)

ADVANCES = st.one_of(
    st.tuples(st.just("small"), st.integers(0, 16)),  # quarter seconds
    st.tuples(st.just("deadline"), st.integers(-1, 1)),  # exact hit, 1 us before, 1 us after
    st.tuples(st.just("micro"), st.integers(1, 3)),  # microseconds
    st.tuples(st.just("wide"), st.integers(0, 2**40)),  # microseconds: up to ~13 days
    st.tuples(st.just("huge"), st.just(0)),
)


def advance_arg(ns: int) -> object:
    """A ``clock.advance`` argument that is exactly ``ns`` nanoseconds."""
    if ns % NS == 0:
        return ns // NS
    if ns % (NS // 4) == 0:
        return ns / NS  # quarters of a second are exact floats
    assert ns % 1000 == 0
    return timedelta(microseconds=ns // 1000)


class CacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[Value] = []
        self.values: list[Value] = []
        self.released: set[int] = set()  # uids of values the model let go
        STATS["runs"] += 1

    @initialize(
        policy=st.sampled_from((*POLICIES, PYTHON_LRU)),
        max_items=st.integers(0, 6),
        max_bytes=st.integers(0, 20),
        scan_interval=st.sampled_from(INTERVALS),
    )
    def setup(self, policy: str, max_items: int, max_bytes: int, scan_interval: float) -> None:
        self.clock = ManualClock()
        if policy == PYTHON_LRU:
            self.policy = PythonLru()
            self.cache = FlexCache(
                self.policy, scan_interval, max_items, max_bytes, clock=self.clock
            )
            policy = "lru"
        else:
            self.cache = FlexCache(policy, scan_interval, max_items, max_bytes, clock=self.clock)
        self.model = Model(policy, scan_interval, max_items, max_bytes)

    # -- plumbing --------------------------------------------------------------------------

    def start(self) -> None:
        STATS["steps"] += 1
        self.log.clear()
        self.model.begin(self.log)

    def finish(self) -> None:
        """Compare what the cache closed in this operation with what the model let go."""
        model = self.model
        got = list(self.log)
        n = len(model.gone)
        expected_uids = sorted(v.uid for v in model.gone)
        assert sorted(v.uid for v in got[:n]) == expected_uids, (
            f"reaped/removed {got[:n]} but the model let go {model.gone} (then {got[n:]})"
        )
        assert [v.uid for v in got[n:]] == [v.uid for v in model.victims], (
            f"evicted {got[n:]}, the model evicted {model.victims}"
        )
        for value in model.gone + model.victims:
            self.released.add(value.uid)
        STATS["let_go"] += len(model.gone)
        STATS["evicted"] += len(model.victims)

    # -- rules -----------------------------------------------------------------------------

    @rule(
        key=st.sampled_from(KEYS),
        size=st.one_of(st.none(), st.integers(0, 8)),
        ttl=TTLS,
    )
    def set(self, key: str, size: int | None, ttl: tuple[str, int]) -> None:
        self.start()
        value = make_value(len(self.values), size, self.log)
        self.values.append(value)
        kind, amount = ttl
        ttl_obj: object = None
        ttl_ns: int | None = None
        past = False
        if kind == "int":
            ttl_obj, ttl_ns = amount, amount * NS
        elif kind == "float":
            ttl_obj, ttl_ns = float(amount), round(amount * NS)
        elif kind == "timedelta":
            ttl_obj, ttl_ns = timedelta(milliseconds=amount), amount * 1_000_000
        elif kind == "wide":
            ttl_obj, ttl_ns = timedelta(microseconds=amount), amount * 1000
        elif kind == "past_naive":
            ttl_obj, past = datetime.fromtimestamp(self.clock.time() - amount), True
        elif kind == "past_aware":
            ttl_obj = datetime.fromtimestamp(self.clock.time() - amount, tz=timezone.utc)
            past = True
        try:
            self.cache.set(key, value, ttl=ttl_obj)
            outcome = "ok"
        except KeyError as error:
            assert error.args == (key,)
            outcome = "KeyError"
        except ValueError:
            outcome = "ValueError"
        expected = self.model.set(key, value, 1 if size is None else size, ttl_ns, past)
        assert outcome == expected, f"set({key!r}, {value!r}, ttl={ttl_obj!r})"
        if size is not None:
            assert value.size_calls == 1
        self.finish()

    # Hypothesis picks among rules uniformly: extra entry points make sets and gets the
    # common steps, so that the limits are reached and LRU order matters.
    @rule(key=st.sampled_from(KEYS), size=st.integers(0, 8), ttl=TTLS)
    def set_sized(self, key: str, size: int, ttl: tuple[str, int]) -> None:
        self.set(key, size, ttl)

    @rule(key=st.sampled_from(KEYS), size=st.integers(0, 4))
    def set_forever(self, key: str, size: int) -> None:
        self.set(key, size, ("none", 0))

    @rule(key=st.sampled_from(KEYS))
    def get_again(self, key: str) -> None:
        self.get(key)

    @rule(key=st.sampled_from(KEYS))
    def get(self, key: str) -> None:
        self.start()
        default = object()
        got = self.cache.get(key, default)
        expected = self.model.get(key)
        if expected is None:
            assert got is default, f"get({key!r}) returned {got!r}, the model has no entry"
        else:
            assert got is expected, f"get({key!r}) returned {got!r}, the model has {expected!r}"
        self.finish()

    @rule(key=st.sampled_from(KEYS))
    def delete(self, key: str) -> None:
        self.start()
        got = self.cache.delete(key)
        assert got == self.model.delete(key), f"delete({key!r})"
        self.finish()

    @rule(key=st.sampled_from(KEYS))
    def contains(self, key: str) -> None:
        self.start()
        assert (key in self.cache) == self.model.contains(key), f"{key!r} in cache"
        self.finish()

    @rule(rare=st.integers(0, 7))
    def scan_or_clear(self, rare: int) -> None:
        """``scan()``; one time in eight ``clear()`` instead (it wipes the state the other
        rules build up, so not too often)."""
        self.start()
        if rare:
            self.cache.scan()
            self.model.scan()
        else:
            self.cache.clear()
            self.model.clear()
        self.finish()

    @rule(step=ADVANCES)
    def advance(self, step: tuple[str, int]) -> None:
        self.start()
        kind, amount = step
        model = self.model
        if kind == "small":
            ns = amount * NS // 4
        elif kind in ("micro", "wide"):
            ns = amount * 1000
        elif kind == "huge":
            ns = HUGE_STEP_NS
        else:
            pending = sorted(
                e.deadline
                for e in model.entries.values()
                if e.deadline is not None and e.deadline > model.clock
            )
            if not pending:
                ns = NS
            else:
                ns = max(0, pending[0] - model.clock + amount * 1000)
        self.clock.advance(advance_arg(ns))
        model.advance(ns)
        assert self.clock.monotonic() == pytest.approx(model.clock / NS, rel=1e-9)
        self.finish()

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def consistent(self) -> None:
        if not hasattr(self, "cache"):
            return
        cache, model = self.cache, self.model
        assert cache.items == model.items(), f"items {cache.items} != model {model.items()}"
        assert len(cache) == cache.items
        assert cache.bytes == model.bytes(), f"bytes {cache.bytes} != model {model.bytes()}"
        if model.max_items:
            assert cache.items <= model.max_items
        if model.max_bytes:
            assert cache.bytes <= model.max_bytes
        if isinstance(getattr(self, "policy", None), PythonLru):
            # Told of every entry that came and went: it holds exactly the cache's keys.
            assert sorted(self.policy.order) == sorted(model.entries)
        live = {id(e.value) for e in model.entries.values()}
        for value in self.values:
            if id(value) in live:
                assert value.closes == 0, f"{value!r} is held but was closed"
            elif value.uid in self.released:
                assert value.closes == 1, f"{value!r} left the cache, closed {value.closes}x"
            else:
                assert value.closes == 0, f"{value!r} was refused but closed"

    def teardown(self) -> None:
        # No assertions here: a failure in teardown would hide the step that failed.
        if hasattr(self, "cache"):
            self.cache.clear()


CacheMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCacheModel = CacheMachine.TestCase


def test_auto_scan_interval_counts_from_a_scan_that_found_nothing() -> None:
    """Regression (found by the model): get/set/delete begin with an automatic scan when
    scan_interval has passed since the last scan, even one that found nothing to reap."""
    clock = ManualClock()
    cache = FlexCache("lru", 1.5, clock=clock)
    log: list[Value] = []
    clock.advance(2)
    cache.get("x")  # t=2: 2 s since the start: an automatic scan (nothing to reap)
    clock.advance(1)
    value = make_value(0, None, log)
    cache.set("a", value, ttl=0.5)  # t=3: 1 s since the last scan: none; a expires at 3.5
    clock.advance(0.5)
    cache.get("b")  # t=3.5: 1.5 s since the scan at t=2: an automatic scan reaps a
    assert value.closes == 1
    assert cache.items == 0
