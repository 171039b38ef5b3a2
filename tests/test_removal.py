"""SPEC Part 2, "Sizes of values you do not own, and a removal listener".

``weigher(key, value) -> int`` sizes an entry in place of ``item_size()``, once per store, with
its rules. ``on_remove(key, value, cause)`` is called exactly once for every entry that leaves,
by the operation that let it go, in the order they left, just before that value's ``close()``;
``cause`` is a ``flexcache.RemovalCause``. Its exceptions go to ``sys.unraisablehook`` and count
in ``close_errors``; it may call back into the cache.

Values here log their ``close()`` into the same list as ``on_remove``, so the tests see the
exact interleaving.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable

import pytest
from conftest import MISSING
from flexcache import FlexCache, RemovalCause
from flexcache.testing import ManualClock

INF = math.inf
I64_MAX = 2**63 - 1
EXPLICIT = RemovalCause.EXPLICIT
REPLACED = RemovalCause.REPLACED
EXPIRED = RemovalCause.EXPIRED
SIZE = RemovalCause.SIZE
CLEARED = RemovalCause.CLEARED


class Boom(Exception):
    pass


class IntSub(int):
    pass


class Logged:
    """A value that logs its ``close()`` as ``("close", name)``."""

    def __init__(self, name: str, log: list[tuple[object, ...]], size: int | None = None) -> None:
        self.name = name
        self.log = log
        self.closes = 0
        if size is not None:
            self.item_size = lambda: size

    def close(self) -> None:
        self.closes += 1
        self.log.append(("close", self.name))

    def __repr__(self) -> str:
        return f"<Logged {self.name}>"


class Recorder:
    """An ``on_remove`` that logs ``("remove", key, value name, cause)``."""

    def __init__(self) -> None:
        self.log: list[tuple[object, ...]] = []
        self.hook: Callable[[object, object, object], object] | None = None

    def __call__(self, key: object, value: object, cause: object) -> None:
        if type(cause) is not RemovalCause:
            cause = ("not a RemovalCause", cause)
        self.log.append(("remove", key, getattr(value, "name", value), cause))
        if self.hook is not None:
            self.hook(key, value, cause)

    def value(self, name: str, size: int | None = None) -> Logged:
        return Logged(name, self.log, size)

    def removes(self) -> list[tuple[object, ...]]:
        return [entry for entry in self.log if entry[0] == "remove"]


def left(key: object, name: str, cause: RemovalCause, *, closed: bool = True) -> list[tuple]:
    """The log of one entry leaving: on_remove, then (unless popped) its close()."""
    events: list[tuple] = [("remove", key, name, cause)]
    if closed:
        events.append(("close", name))
    return events


def make(recorder: Recorder, policy: str = "lru", **kwargs: object) -> FlexCache:
    kwargs.setdefault("scan_interval", INF)
    return FlexCache(policy, on_remove=recorder, **kwargs)


# --- RemovalCause --------------------------------------------------------------------------------


def test_removal_cause_is_a_str_enum() -> None:
    assert issubclass(RemovalCause, str)
    assert issubclass(RemovalCause, enum.Enum)
    assert {member.name for member in RemovalCause} == {
        "EXPLICIT",
        "REPLACED",
        "EXPIRED",
        "SIZE",
        "CLEARED",
    }
    for member in RemovalCause:
        assert isinstance(member, str)
        assert RemovalCause(member.value) is member
    assert len({member.value for member in RemovalCause}) == 5


# --- on_remove: each cause -----------------------------------------------------------------------


def test_delete_is_explicit() -> None:
    recorder = Recorder()
    cache = make(recorder)
    cache.set("a", recorder.value("a"))
    cache.set("b", recorder.value("b"))
    assert cache.delete("a") is True
    assert recorder.log == left("a", "a", EXPLICIT)
    assert cache.delete("a") is False
    assert recorder.log == left("a", "a", EXPLICIT)


def test_del_is_explicit() -> None:
    recorder = Recorder()
    cache = make(recorder)
    cache.set(("t", 1), recorder.value("t"))
    del cache[("t", 1)]
    assert recorder.log == left(("t", 1), "t", EXPLICIT)


def test_pop_is_explicit_and_does_not_close() -> None:
    recorder = Recorder()
    cache = make(recorder)
    value = recorder.value("a")
    cache.set("a", value)
    assert cache.pop("a") is value
    assert recorder.log == left("a", "a", EXPLICIT, closed=False)
    assert value.closes == 0
    assert cache.pop("a", None) is None
    assert len(recorder.log) == 1


def test_delete_many_is_explicit_for_each_in_order() -> None:
    recorder = Recorder()
    cache = make(recorder)
    for name in "abcd":
        cache.set(name, recorder.value(name))
    assert cache.delete_many(["c", "zz", "a", "b"]) == 3
    assert recorder.log == [
        *left("c", "c", EXPLICIT),
        *left("a", "a", EXPLICIT),
        *left("b", "b", EXPLICIT),
    ]


@pytest.mark.parametrize("how", ["put", "setitem", "put_many"])
def test_put_over_a_live_entry_is_replaced(how: str) -> None:
    recorder = Recorder()
    cache = make(recorder)
    old, new = recorder.value("old"), recorder.value("new")
    cache.set("k", old)
    if how == "put":
        cache.put("k", new)
    elif how == "setitem":
        cache["k"] = new
    else:
        cache.put_many({"k": new})
    assert recorder.log == left("k", "old", REPLACED)
    assert cache.get("k") is new


def test_put_of_the_very_same_object_reports_nothing() -> None:
    recorder = Recorder()
    cache = make(recorder)
    value = recorder.value("v")
    cache.set("k", value)
    cache.put("k", value)
    cache["k"] = value
    cache.put_many([("k", value)])
    assert recorder.log == []
    assert value.closes == 0


def test_get_or_set_discarded_result_is_replaced() -> None:
    recorder = Recorder()
    cache = make(recorder)
    inner, outer = recorder.value("inner"), recorder.value("outer")

    def factory() -> object:
        cache.set("k", inner)
        return outer

    assert cache.get_or_set("k", factory) is inner
    assert recorder.log == left("k", "outer", REPLACED)
    assert cache.get("k") is inner


def test_get_or_set_result_too_large_reports_nothing() -> None:
    recorder = Recorder()
    cache = make(recorder, max_bytes=5)
    big = recorder.value("big", 6)
    assert cache.get_or_set("k", lambda: big) is big
    assert recorder.log == []


def test_refused_stores_report_nothing() -> None:
    recorder = Recorder()
    cache = make(recorder, max_items=2, max_bytes=5)
    cache.set("k", recorder.value("held"))
    with pytest.raises(KeyError):
        cache.set("k", recorder.value("dup"))
    with pytest.raises(ValueError):
        cache.set("big", recorder.value("big", 6))
    with pytest.raises(ValueError):
        cache.put("k", recorder.value("big", 6))
    with pytest.raises(KeyError):
        cache.set_many({"x": recorder.value("x"), "k": recorder.value("k2")})
    assert recorder.log == []


def test_expiry_by_scan(clock: ManualClock) -> None:
    recorder = Recorder()
    cache = make(recorder, clock=clock)
    cache.set("x", recorder.value("x"), ttl=1)
    cache.set("y", recorder.value("y"), ttl=2)
    cache.set("live", recorder.value("live"))
    clock.advance(1)
    cache.scan()
    assert recorder.log == left("x", "x", EXPIRED)
    clock.advance(1)
    cache.scan()
    assert recorder.log == [*left("x", "x", EXPIRED), *left("y", "y", EXPIRED)]


def test_expiry_of_several_by_one_scan(clock: ManualClock) -> None:
    recorder = Recorder()
    cache = make(recorder, clock=clock)
    for name in "abc":
        cache.set(name, recorder.value(name), ttl=1)
    clock.advance(1)
    cache.scan()
    removes = recorder.removes()
    assert sorted(entry[1] for entry in removes) == ["a", "b", "c"]
    assert all(entry[3] is EXPIRED for entry in removes)
    # Each close() right after its own on_remove.
    for n in range(0, 6, 2):
        assert recorder.log[n + 1] == ("close", recorder.log[n][2])


def test_expiry_by_the_automatic_scan(clock: ManualClock) -> None:
    recorder = Recorder()
    cache = make(recorder, clock=clock, scan_interval=0)
    cache.set("x", recorder.value("x"), ttl=1)
    cache.set("live", 1)
    clock.advance(1)
    assert cache.get("live") == 1
    assert recorder.log == left("x", "x", EXPIRED)


LOOKUPS = [
    pytest.param(lambda c: c.get("x"), id="get"),
    pytest.param(lambda c: c.get_many(["x"]), id="get_many"),
    pytest.param(lambda c: c.get_or_set("x", lambda: 1), id="get_or_set"),
    pytest.param(lambda c: c.pop("x", None), id="pop"),
    pytest.param(lambda c: c.delete("x"), id="delete"),
    pytest.param(lambda c: c.delete_many(["x"]), id="delete_many"),
    pytest.param(lambda c: c.touch("x", 5), id="touch"),
    pytest.param(lambda c: c.set("x", 1), id="set"),
    pytest.param(lambda c: c.put("x", 1), id="put"),
    pytest.param(lambda c: c.set_many({"x": 1}), id="set_many"),
]


@pytest.mark.parametrize("call", LOOKUPS)
def test_expiry_by_a_call_on_the_key(
    call: Callable[[FlexCache], object], clock: ManualClock
) -> None:
    recorder = Recorder()
    cache = make(recorder, clock=clock)
    cache.set("x", recorder.value("x"), ttl=1)
    cache.set("other", recorder.value("other"), ttl=1)
    clock.advance(1)
    call(cache)
    assert recorder.log == left("x", "x", EXPIRED)


@pytest.mark.parametrize(
    "call", [lambda c: c["x"], lambda c: c.__delitem__("x")], ids=["getitem", "delitem"]
)
def test_expiry_by_item_access(call: Callable[[FlexCache], object], clock: ManualClock) -> None:
    recorder = Recorder()
    cache = make(recorder, clock=clock)
    cache.set("x", recorder.value("x"), ttl=1)
    clock.advance(1)
    with pytest.raises(KeyError):
        call(cache)
    assert recorder.log == left("x", "x", EXPIRED)


def test_expired_entries_making_room_are_expired_not_size(clock: ManualClock) -> None:
    recorder = Recorder()
    cache = make(recorder, max_items=2, clock=clock)
    cache.set("a", recorder.value("a"), ttl=1)
    cache.set("b", recorder.value("b"))
    clock.advance(1)
    cache.set("c", recorder.value("c"))
    assert recorder.log == left("a", "a", EXPIRED)


@pytest.mark.parametrize("policy", ["lru", "fifo"])
def test_eviction_is_size_in_policy_order(policy: str) -> None:
    recorder = Recorder()
    cache = make(recorder, policy, max_items=3, max_bytes=10)
    for name in "abc":
        cache.set(name, recorder.value(name, 3))
    cache.get("a")  # lru: b, c, a; fifo: a, b, c
    cache.set("big", recorder.value("big", 7))  # two must go
    first, second = ("b", "c") if policy == "lru" else ("a", "b")
    assert recorder.log == [*left(first, first, SIZE), *left(second, second, SIZE)]


def test_eviction_under_random_is_size() -> None:
    recorder = Recorder()
    cache = make(recorder, "random", max_items=3)
    for name in "abc":
        cache.set(name, recorder.value(name))
    cache.set("d", recorder.value("d"))
    assert len(recorder.log) == 2
    (_, key, name, cause), close = recorder.log
    assert cause is SIZE
    assert key in ("a", "b", "c")
    assert name == key
    assert close == ("close", name)
    assert key not in cache
    assert "d" in cache


@pytest.mark.parametrize("bulk", ["set_many", "put_many", "get_or_set"])
def test_eviction_by_other_stores_is_size(bulk: str) -> None:
    recorder = Recorder()
    cache = make(recorder, "fifo", max_items=2)
    cache.set("a", recorder.value("a"))
    cache.set("b", recorder.value("b"))
    if bulk == "get_or_set":
        cache.get_or_set("c", lambda: 3)
    else:
        getattr(cache, bulk)([("c", 3)])
    assert recorder.log == left("a", "a", SIZE)


def test_clear_is_cleared_for_every_entry(clock: ManualClock) -> None:
    recorder = Recorder()
    cache = make(recorder, clock=clock)
    for name in "abc":
        cache.set(name, recorder.value(name))
    cache.set("expired", recorder.value("expired"), ttl=1)
    clock.advance(1)
    cache.clear()
    removes = recorder.removes()
    assert sorted(entry[1] for entry in removes) == ["a", "b", "c", "expired"]
    assert all(entry[3] is CLEARED for entry in removes)
    assert len(recorder.log) == 8
    for n in range(0, 8, 2):
        assert recorder.log[n][0] == "remove"
        assert recorder.log[n + 1] == ("close", recorder.log[n][2])
    assert cache.items == 0


def test_on_remove_gets_the_key_and_value_objects(tracker) -> None:
    seen: list[tuple[object, object, object]] = []
    cache = FlexCache(on_remove=lambda key, value, cause: seen.append((key, value, cause)))
    key = ("t", int("12345678901234567890"))
    value = tracker("v")
    cache.set(key, value)
    cache.delete(("t", int("12345678901234567890")))
    assert len(seen) == 1
    assert seen[0][0] == key
    assert seen[0][1] is value
    assert seen[0][2] is EXPLICIT


def test_on_remove_runs_when_the_cache_is_consistent_again(check) -> None:
    seen: list[tuple[object, bool, int, int]] = []
    holder: list[FlexCache] = []

    def on_remove(key: object, value: object, cause: object) -> None:
        cache = holder[0]
        check(cache)
        seen.append((key, key in cache, len(cache), cache.items))

    cache = FlexCache("lru", max_items=2, on_remove=on_remove)
    holder.append(cache)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("c", 3)  # evicts a
    cache.delete("b")
    cache.put("c", 4)
    assert seen == [("a", False, 2, 2), ("b", False, 1, 1), ("c", True, 1, 1)]


def test_on_remove_called_before_close(tracker) -> None:
    order: list[str] = []

    def on_remove(key: object, value: object, cause: object) -> None:
        order.append(f"remove {key} closes={value.closes}")  # type: ignore[attr-defined]

    cache = FlexCache(max_items=1, on_remove=on_remove)
    value = tracker("a", on_close=lambda v: order.append("close a"))
    cache.set("a", value)
    cache.set("b", 1)
    assert order == ["remove a closes=0", "close a"]


def test_on_remove_exactly_once_per_entry(clock: ManualClock) -> None:
    """A mixed sequence: every value that left was reported once and closed once (or popped)."""
    recorder = Recorder()
    cache = make(recorder, "lru", max_items=4, clock=clock)
    values: dict[str, Logged] = {}

    def new(name: str) -> Logged:
        values[name] = recorder.value(name)
        return values[name]

    for n in range(6):
        cache.set(f"k{n}", new(f"k{n}"), ttl=n + 1)  # k0, k1 evicted
    cache.put("k5", new("k5b"))
    cache.delete("k4")
    popped = cache.pop("k3")
    clock.advance(3)  # k2 expires
    cache.scan()
    cache.set_many({"x": new("x"), "y": new("y")})
    cache.put_many({"x": new("x2")})
    cache.delete_many(["y", "zz"])
    cache.clear()
    names = [entry[2] for entry in recorder.removes()]
    assert sorted(names) == sorted(values)
    assert len(names) == len(set(names))
    for name, value in values.items():
        assert value.closes == (0 if value is popped else 1), name


# --- on_remove raising and calling back -----------------------------------------------------------


def test_on_remove_raising_goes_to_the_unraisable_hook(unraisable, tracker) -> None:
    def on_remove(key: object, value: object, cause: object) -> None:
        raise Boom(f"on_remove of {key}")

    cache = FlexCache(max_items=2, on_remove=on_remove)
    a = tracker("a")
    cache.set("a", a)
    cache.set("b", tracker("b"))
    assert cache.delete("a") is True
    assert a.closes == 1
    assert "a" not in cache
    assert len(unraisable) == 1
    assert unraisable[0][0] is Boom
    assert "on_remove of a" in str(unraisable[0][1])
    assert cache.stats().close_errors == 1
    cache.set("c", tracker("c"))
    cache.set("d", tracker("d"))  # evicts b
    cache.clear()  # c, d
    assert tracker.closed[:2] == ["a", "b"]
    assert sorted(tracker.closed[2:]) == ["c", "d"]
    assert len(unraisable) == 4
    assert cache.stats().close_errors == 4
    assert cache.items == 0


def test_on_remove_and_close_both_raising(unraisable) -> None:
    class Failing:
        closes = 0

        def close(self) -> None:
            type(self).closes += 1
            raise Boom("close")

    def on_remove(key: object, value: object, cause: object) -> None:
        raise Boom("on_remove")

    cache = FlexCache(on_remove=on_remove)
    cache.set("k", Failing())
    cache.put("k", 1)
    assert Failing.closes == 1
    assert [str(exc) for _, exc, _ in unraisable] == ["on_remove", "close"]
    assert cache.stats().close_errors == 2
    assert cache.get("k") == 1


@pytest.mark.parametrize("action", ["get", "set", "delete", "put", "reset_same_key"])
@pytest.mark.parametrize("trigger", ["delete", "evict", "expire", "replace", "clear"])
def test_on_remove_calling_back_into_the_cache(
    action: str, trigger: str, clock: ManualClock, check
) -> None:
    recorder = Recorder()
    cache = make(recorder, "lru", max_items=4, clock=clock)
    calls: list[object] = []

    def hook(key: object, value: object, cause: object) -> None:
        calls.append(key)
        if len(calls) > 3:
            return
        if action == "get":
            cache.get("other")
        elif action == "set":
            cache.set(("from hook", len(calls)), len(calls))
        elif action == "delete":
            cache.delete("other")
        elif action == "put":
            cache.put("other", len(calls))
        else:
            cache.put(key, "re-stored")

    recorder.hook = hook
    cache.set("other", recorder.value("other"))
    cache.set("a", recorder.value("a"), ttl=1)
    cache.set("b", recorder.value("b"))
    if trigger == "delete":
        cache.delete("a")
    elif trigger == "evict":
        cache.set("c", recorder.value("c"))
        cache.set("d", recorder.value("d"))  # evicts "other", the least recent
    elif trigger == "expire":
        clock.advance(1)
        cache.scan()
    elif trigger == "replace":
        cache.put("a", recorder.value("a2"))
    else:
        cache.clear()
    assert calls
    check(cache)
    keys = cache.keys()
    assert len(keys) == cache.items
    for key in keys:
        assert cache.peek(key, MISSING) is not MISSING
    # Every value was reported at most once and closed at most once.
    names = [entry[2] for entry in recorder.removes()]
    assert len(names) == len(set(names))
    closes = [entry[1] for entry in recorder.log if entry[0] == "close"]
    assert len(closes) == len(set(closes))
    if action == "reset_same_key" and trigger in ("delete", "expire"):
        assert cache.get("a") == "re-stored"


# --- weigher -------------------------------------------------------------------------------------


def test_weigher_sizes_each_entry_once_per_store(clock: ManualClock) -> None:
    calls: list[tuple[object, object]] = []

    def weigher(key: object, value: object) -> int:
        calls.append((key, value))
        return len(value)  # type: ignore[arg-type]

    cache = FlexCache("lru", INF, 0, 100, clock=clock, weigher=weigher)
    key = ("t", 1)
    value = b"12345"
    cache.set(key, value)
    assert len(calls) == 1
    assert calls[0][0] is key
    assert calls[0][1] is value
    assert cache.bytes == 5
    for _ in range(3):
        cache.get(key)
        cache.peek(key)
        assert key in cache
        cache.keys()
    cache.scan()
    assert len(calls) == 1
    cache.put(key, b"123")
    assert len(calls) == 2
    assert cache.bytes == 3
    cache.set_many({"a": b"1", "b": b"12"})
    cache.put_many({"c": b"123", "a": b"1234"})
    assert len(calls) == 6
    assert cache.get_or_set("d", lambda: b"xy") == b"xy"
    assert cache.get_or_set("d", lambda: b"unused") == b"xy"
    assert len(calls) == 7
    assert cache.bytes == 3 + 4 + 2 + 3 + 2
    cache.delete("a")
    cache.clear()
    assert len(calls) == 7


def test_weigher_replaces_item_size(tracker) -> None:
    cache = FlexCache(max_bytes=100, weigher=lambda key, value: 7)
    value = tracker("v", 50)
    cache.set("k", value)
    assert value.size_calls == 0
    assert cache.bytes == 7


def test_weigher_sizes_bytes_and_dicts_under_max_bytes() -> None:
    cache = FlexCache("lru", max_bytes=10, weigher=lambda key, value: len(value))
    cache.set("a", b"1234")
    cache.set("b", {"x": 1, "y": 2, "z": 3})
    cache.set("c", b"12")
    assert cache.bytes == 9
    cache.set("d", b"123")  # 12 > 10: evicts "a"
    assert "a" not in cache
    assert cache.bytes == 8
    with pytest.raises(ValueError):
        cache.set("huge", b"x" * 11)
    assert cache.items == 3
    assert cache.bytes == 8


@pytest.mark.parametrize(
    ("result", "expected"), [(0, 0), (1, 1), (IntSub(5), 5), (I64_MAX, I64_MAX)], ids=repr
)
def test_weigher_accepted_results(result: int, expected: int) -> None:
    cache = FlexCache(weigher=lambda key, value: result)
    cache.set("k", "v")
    assert cache.bytes == expected
    assert type(cache.bytes) is int


BAD_WEIGHTS = [
    (True, TypeError),
    (False, TypeError),
    (3.0, TypeError),
    ("3", TypeError),
    (None, TypeError),
    (b"3", TypeError),
    ([3], TypeError),
    (-1, ValueError),
    (-(2**70), ValueError),
    (I64_MAX + 1, ValueError),
    (10**30, ValueError),
]


@pytest.mark.parametrize(("result", "exc"), BAD_WEIGHTS, ids=repr)
@pytest.mark.parametrize("store", ["set", "put", "set_many", "put_many", "get_or_set"])
def test_weigher_bad_result_stores_nothing(
    result: object, exc: type[Exception], store: str, tracker
) -> None:
    cache = FlexCache(max_items=3, weigher=lambda key, value: 1 if key != "new" else result)
    held = tracker("held")
    cache.set("held", held)
    cache.set("other", tracker("other"))
    value = tracker("new")
    with pytest.raises(exc):
        if store == "set":
            cache.set("new", value)
        elif store == "put":
            cache.put("new", value)
        elif store == "set_many":
            cache.set_many([("fine", 1), ("new", value)])
        elif store == "put_many":
            cache.put_many([("held", 1), ("new", value)])
        else:
            cache.get_or_set("new", lambda: value)
    assert "new" not in cache
    assert "fine" not in cache
    assert cache.items == 2
    assert cache.bytes == 2
    assert cache.get("held") is held
    assert value.closes == 0
    assert tracker.closed == []


@pytest.mark.parametrize("store", ["set", "put", "set_many"])
def test_weigher_raising_propagates_and_stores_nothing(store: str, tracker) -> None:
    error = Boom("weigher")

    def weigher(key: object, value: object) -> int:
        if key == "new":
            raise error
        return 1

    cache = FlexCache(max_items=2, weigher=weigher)
    cache.set("a", tracker("a"))
    cache.set("b", tracker("b"))
    value = tracker("new")
    with pytest.raises(Boom) as info:
        if store == "set":
            cache.set("new", value)
        elif store == "put":
            cache.put("new", value)
        else:
            cache.set_many({"new": value})
    assert info.value is error
    assert "new" not in cache
    assert cache.items == 2
    assert value.closes == 0
    assert tracker.closed == []


def test_weigher_refused_put_keeps_the_old_entry(tracker) -> None:
    cache = FlexCache(max_bytes=10, weigher=lambda key, value: value.size)  # type: ignore[attr-defined]
    old = tracker("old", 4)
    cache.set("k", old)
    with pytest.raises(ValueError):
        cache.put("k", tracker("big", 11))
    assert cache.get("k") is old
    assert old.closes == 0
    assert cache.bytes == 4


def test_weigher_may_call_back_into_the_cache(check) -> None:
    holder: list[FlexCache] = []

    def weigher(key: object, value: object) -> int:
        cache = holder[0]
        cache.get("a")
        if key == "c":
            cache.delete("a")
        return 1

    cache = FlexCache(max_items=5, weigher=weigher)
    holder.append(cache)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("c", 3)
    assert sorted(cache.keys()) == ["b", "c"]
    check(cache)


@pytest.mark.parametrize("argument", ["weigher", "on_remove"])
@pytest.mark.parametrize("bad", [5, 3.5, "len", b"x", [len], (len,)], ids=repr)
def test_not_callable_is_rejected_at_construction(argument: str, bad: object) -> None:
    with pytest.raises(TypeError):
        FlexCache(**{argument: bad})


def test_none_means_no_weigher_and_no_listener(tracker) -> None:
    cache = FlexCache(max_bytes=10, weigher=None, on_remove=None)
    value = tracker("v", 4)
    cache.set("k", value)
    assert value.size_calls == 1
    assert cache.bytes == 4
    cache.delete("k")
    assert value.closes == 1


def test_weigher_and_on_remove_together() -> None:
    recorder = Recorder()
    cache = FlexCache("lru", max_bytes=6, weigher=lambda key, value: 3, on_remove=recorder)
    cache.set("a", recorder.value("a"))
    cache.set("b", recorder.value("b"))
    cache.set("c", recorder.value("c"))
    assert recorder.log == left("a", "a", SIZE)
    assert cache.bytes == 6
