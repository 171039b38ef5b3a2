"""SPEC "Keys": any hashable object is a key, with a dict's notion of sameness.

Identity first, then equal hashes and ``==``: ``1``, ``1.0`` and ``True`` are one key, a
``float('nan')`` finds itself only by identity, a str subclass (alone or inside a tuple) is
identified by its text without its own ``__hash__``/``__eq__`` ever running. Unhashable keys are
``TypeError`` from every call; a raising ``__hash__``/``__eq__`` propagates; an ``__eq__`` that
changes the cache makes the lookup start over, and one that changes it on every try is a
``RuntimeError``. Nothing of that changes the cache, leaks a reference or closes a value.
"""

from __future__ import annotations

import enum
import gc
import math
import random
import sys
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from conftest import MISSING, ShiftedStr
from flexcache import FlexCache
from flexcache.testing import ManualClock

INF = math.inf


class Boom(Exception):
    pass


# --- key classes -------------------------------------------------------------------------------


class PlainStr(str):
    """A str subclass that changes nothing."""


class RaisingStr(str):
    """A str subclass whose hooks raise: the cache must go by its text alone."""

    def __hash__(self) -> int:
        raise AssertionError("RaisingStr.__hash__ called")

    def __eq__(self, other: object) -> bool:
        raise AssertionError("RaisingStr.__eq__ called")

    def __ne__(self, other: object) -> bool:
        raise AssertionError("RaisingStr.__ne__ called")


class NeverEqualStr(str):
    """Hashes to 0 and equals nothing: must not matter to the cache."""

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True


class Point:
    """A value object: equal points are one key."""

    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y

    def __hash__(self) -> int:
        return hash((self.x, self.y))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Point):
            return NotImplemented
        return (self.x, self.y) == (other.x, other.y)

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"


class Symbol:
    """Equal to the str of its name, with the same hash (so it finds str entries, as in a dict)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Symbol):
            return self.name == other.name
        if type(other) is str:
            return self.name == other
        return NotImplemented


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Key42:
    """Hashes to 42 (as the int 42 does) and equals only itself, unless told otherwise.

    ``on_eq(self, other)`` answers comparisons with other objects (Python asks the other side
    first when it does not know, so the hook runs once per comparison either way);
    ``on_hash(self)`` runs on every ``hash()``.
    """

    def __init__(
        self,
        name: str,
        *,
        on_eq: Callable[[Key42, object], object] | None = None,
        on_hash: Callable[[Key42], object] | None = None,
        hash_value: int = 42,
    ) -> None:
        self.name = name
        self.on_eq = on_eq
        self.on_hash = on_hash
        self.hash_value = hash_value
        self.hash_calls = 0
        self.eq_calls = 0

    def __hash__(self) -> int:
        self.hash_calls += 1
        if self.on_hash is not None:
            self.on_hash(self)
        return self.hash_value

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        self.eq_calls += 1
        if self.on_eq is not None:
            return self.on_eq(self, other)  # type: ignore[return-value]
        return NotImplemented

    def __repr__(self) -> str:
        return f"<Key42 {self.name}>"


class HashRaiser:
    def __hash__(self) -> int:
        raise Boom("__hash__")


def forbidden_factory() -> object:
    raise AssertionError("the factory must not run")


def fresh_str(text: str) -> str:
    """An exact str with ``text`` that is not the interned constant."""
    return "".join(list(text))


def nested(depth: int, leaf: object) -> object:
    key = leaf
    for _ in range(depth):
        key = (key,)
    return key


def reachable(cache: FlexCache) -> None:
    """Every key the cache lists is found by ``peek``; the list agrees with ``len``."""
    keys = cache.keys()
    assert len(keys) == len(cache) == cache.items
    for key in keys:
        assert cache.peek(key, MISSING) is not MISSING, key


# --- every kind of key, with every operation ----------------------------------------------------

# Each maker returns a new key object on each call; two calls give equal keys (different
# objects where the type allows it).
KINDS: dict[str, Callable[[], object]] = {
    "small_int": lambda: 7,
    "big_int": lambda: int("12345678901234567890"),
    "huge_int": lambda: int("9" * 60),
    "negative_int": lambda: int("-5"),
    "float": lambda: float("2.5"),
    "bool": lambda: True,
    "none": lambda: None,
    "bytes": lambda: b"".join([b"by", b"tes"]),
    "empty_bytes": lambda: b"",
    "exact_str": lambda: fresh_str("text key"),
    "str_subclass": lambda: PlainStr("sub key"),
    "tuple": lambda: tuple(["a", 1]),
    "nested_tuple": lambda: tuple([tuple(["a", tuple([1, 2.5])]), tuple([None, b"x"])]),
    "empty_tuple": lambda: (),
    "tuple_with_str_subclass": lambda: tuple([PlainStr("b"), 1]),
    "deep_tuple": lambda: nested(40, fresh_str("deep")),
    "frozenset": lambda: frozenset([1, "a", (2, 3)]),
    "empty_frozenset": lambda: frozenset(),
    "point": lambda: Point(1, 2),
    "tuple_with_point": lambda: tuple([Point(3, 4), "p"]),
    "complex": lambda: complex(1, 2),
    "decimal": lambda: Decimal("1.25"),
    "fraction": lambda: Fraction(1, 3),
    "date": lambda: date(2024, 2, 29),
    "enum": lambda: Color.RED,
    "class": lambda: Point,
}
KIND = pytest.mark.parametrize("make", list(KINDS.values()), ids=list(KINDS))


@KIND
def test_every_operation_with_an_equal_key_object(
    make: Callable[[], object], clock: ManualClock, tracker, check
) -> None:
    cache = FlexCache("lru", INF, 10, 0, clock=clock)
    key, twin = make(), make()
    assert key == twin
    assert hash(key) == hash(twin)
    value = tracker("v")

    assert twin not in cache
    assert cache.get(twin) is None
    assert cache.peek(twin, MISSING) is MISSING
    assert cache.set(key, value, ttl=10) is None
    assert twin in cache
    assert cache.get(twin) is value
    assert cache[twin] is value
    assert cache.peek(twin) is value
    with pytest.raises(KeyError):
        cache.set(twin, tracker("dup"))
    assert cache.expires_in(twin) == pytest.approx(10)
    assert cache.touch(twin) is True
    assert cache.expires_in(twin) is None
    got = cache.get_many([twin])
    assert len(got) == 1
    assert next(iter(got)) is twin
    assert got[twin] is value
    assert cache.get_or_set(twin, forbidden_factory) is value
    assert cache.keys()[0] is key
    assert cache.values() == [value]
    assert next(iter(cache)) is key

    replacement = tracker("replacement")
    assert cache.put(twin, replacement) is None
    assert value.closes == 1
    assert cache.get(key) is replacement
    assert cache.keys()[0] is key
    third = tracker("third")
    cache[twin] = third
    assert replacement.closes == 1
    assert cache.pop(twin) is third
    assert third.closes == 0
    assert key not in cache
    assert cache.items == 0

    batch = tracker("batch")
    cache.set_many([(twin, batch)])
    assert cache.keys()[0] is twin
    assert cache.get(key) is batch
    assert cache.delete_many([key]) == 1
    assert batch.closes == 1
    putted = tracker("putted")
    cache.put_many([(key, putted)])
    del cache[twin]
    assert putted.closes == 1
    with pytest.raises(KeyError):
        del cache[twin]
    assert cache.delete(key) is False
    made = tracker("made")
    assert cache.get_or_set(twin, lambda: made) is made
    assert cache.get(key) is made
    assert cache.delete(key) is True
    assert made.closes == 1
    assert cache.items == 0
    assert tracker.closed == ["v", "replacement", "batch", "putted", "made"]
    check(cache)


def test_distinct_keys_of_many_kinds_stay_distinct(tracker, check) -> None:
    keys = [make() for make in KINDS.values()]
    keys += [0, 1.5, -1, -2, "", "7", b"7", (7,), ("a", 2), (1, "a"), frozenset([1]), Point(2, 1)]
    by_dict = dict.fromkeys(keys)
    assert len(by_dict) == len(keys)
    cache = FlexCache()
    values = {n: tracker(str(n)) for n in range(len(keys))}
    for n, key in enumerate(keys):
        cache.set(key, values[n])
    assert cache.items == len(keys)
    for n, key in enumerate(keys):
        assert cache.get(key) is values[n], key
    check(cache)
    assert {id(key) for key in cache.keys()} == {id(key) for key in keys}
    for n, key in enumerate(keys):
        assert cache.delete(key) is True, key
        assert values[n].closes == 1
    assert cache.items == 0


def _mixed_keys() -> list[object]:
    nan = float("nan")
    other_nan = float("nan")
    return [
        1,
        1.0,
        True,
        Decimal(1),
        Fraction(1, 1),
        complex(1, 0),
        0,
        0.0,
        -0.0,
        False,
        complex(0, 0),
        "",
        b"",
        (),
        ((),),
        frozenset(),
        None,
        "1",
        b"1",
        "a",
        PlainStr("a"),
        b"a",
        (1,),
        (1.0,),
        (True,),
        ("a",),
        (b"a",),
        ("a", 1),
        (PlainStr("a"), 1.0),
        ("a", True),
        (1, 2),
        (2, 1),
        ((1, 2), 3),
        (1, (2, 3)),
        10**20,
        1e20,
        2**53,
        float(2**53),
        2**53 + 1,
        2**64,
        2.0**64,
        2**100,
        2**100 + 1,
        -1,
        -2,
        1.5,
        Fraction(3, 2),
        Decimal("1.5"),
        int("12345678901234567890"),
        int("12345678901234567890"),
        frozenset([1, 2]),
        frozenset([2.0, 1.0]),
        Point(1, 2),
        Point(1, 2),
        Point(2, 1),
        Symbol("sym"),
        "sym",
        nan,
        nan,
        other_nan,
        (nan, 1),
        (nan, 1),
        (other_nan, 1),
        nested(30, "x"),
        nested(30, PlainStr("x")),
        nested(29, "x"),
        Color.RED,
        Color.BLUE,
    ]


@pytest.mark.parametrize("seed", range(4))
def test_sameness_matches_a_dict(seed: int, tracker, check) -> None:
    """``put`` of a shuffled list of keys agrees with ``dict.__setitem__`` at every lookup."""
    keys = _mixed_keys()
    random.Random(seed).shuffle(keys)
    cache = FlexCache()
    model: dict[object, object] = {}
    for n, key in enumerate(keys):
        value = tracker(str(n))
        cache.put(key, value)
        model[key] = value
        assert cache.items == len(model)
    check(cache)
    for key in keys:
        assert key in cache
        assert cache.get(key) is model[key], key
    # The cache kept the first key object of each entry, as the dict did.
    assert {id(key) for key in cache.keys()} == {id(key) for key in model}
    closed_by_put = len(keys) - len(model)
    assert len(tracker.closed) == closed_by_put
    for key in keys:
        assert cache.delete(key) is (key in model), key
        model.pop(key, None)
        assert key not in cache
    assert cache.items == 0
    assert len(tracker.closed) == len(keys)


# --- 1, 1.0 and True; 0, 0.0, False and -0.0 ---------------------------------------------------


@pytest.mark.parametrize("first", [1, 1.0, True], ids=repr)
def test_one_one_point_zero_and_true_are_one_key(first: object, tracker) -> None:
    cache = FlexCache(max_items=10)
    value = tracker("one")
    cache.set(first, value)
    for other in (1, 1.0, True, Decimal(1), Fraction(1), complex(1, 0)):
        assert other in cache, other
        assert cache.get(other) is value
        assert cache[other] is value
        assert cache.peek(other) is value
        with pytest.raises(KeyError):
            cache.set(other, tracker("dup"))
    assert cache.items == 1
    assert cache.get_many([1.0, True]) == {1.0: value}
    replacement = tracker("replacement")
    cache.put(True if first is not True else 1, replacement)
    assert cache.items == 1
    assert type(cache.keys()[0]) is type(first)
    assert value.closes == 1
    assert cache.get(1.0) is replacement
    assert cache.pop(1) is replacement
    assert cache.items == 0
    assert replacement.closes == 0


@pytest.mark.parametrize("first", [0, 0.0, False, -0.0], ids=repr)
def test_zero_zero_point_zero_false_and_minus_zero_are_one_key(first: object) -> None:
    cache = FlexCache()
    cache.set(first, "zero")
    for other in (0, 0.0, False, -0.0, complex(0, 0), Decimal(0), Fraction(0)):
        assert other in cache
        assert cache.get(other) == "zero"
    cache.put(-0.0, "again")
    assert cache.items == 1
    stored = cache.keys()[0]
    assert type(stored) is type(first)
    if type(first) is float:
        assert math.copysign(1.0, stored) == math.copysign(1.0, first)
    assert cache.delete(False) is True
    assert cache.items == 0


@pytest.mark.parametrize(
    "group",
    [[-1, -2], ["a", b"a"], ["", b"", 0], [("a",), (b"a",)], [("a", 1), (b"a", 1)]],
    ids=repr,
)
def test_equal_hashes_that_are_not_equal_are_different_keys(group: list[object]) -> None:
    """The keys of a group share one hash and compare unequal: each is its own key."""
    assert len({hash(key) for key in group}) == 1
    cache = FlexCache()
    for n, key in enumerate(group):
        cache.set(key, n)
    assert cache.items == len(group)
    for n, key in enumerate(group):
        assert cache.get(key) == n, key
        assert cache.peek(key) == n, key
    assert cache.delete(group[0]) is True
    for n, key in enumerate(group[1:], start=1):
        assert cache.get(key) == n, key


def test_numbers_across_types() -> None:
    cache = FlexCache()
    cache.set(10**20, "int")
    assert cache.get(1e20) == "int"
    cache.set(2**53, "even")
    cache.set(2**53 + 1, "odd")
    assert cache.get(float(2**53)) == "even"
    assert cache.get(float(2**53 + 1)) == "even"  # the float rounds to 2**53
    cache.set(2**64, "big")
    assert cache.get(2.0**64) == "big"
    cache.set(1.5, "one and a half")
    assert cache.get(Fraction(3, 2)) == "one and a half"
    assert cache.get(Decimal("1.5")) == "one and a half"
    cache.set(Fraction(7, 2), "fraction")
    assert cache.get(3.5) == "fraction"
    cache.set(Decimal(9), "decimal")
    assert cache.get(9) == "decimal"
    assert cache.get(9.0) == "decimal"
    assert cache.items == 7


def test_str_and_a_foreign_key_equal_to_it() -> None:
    """A foreign key that equals a str (and hashes like it) finds the str entry, and the reverse."""
    cache = FlexCache()
    cache.set("sym", "by str")
    assert cache.get(Symbol("sym")) == "by str"
    assert Symbol("sym") in cache
    cache.set(Symbol("other"), "by symbol")
    assert cache.get(fresh_str("other")) == "by symbol"
    assert "other" in cache
    with pytest.raises(KeyError):
        cache.set("other", "dup")
    assert cache.items == 2


# --- float('nan') ------------------------------------------------------------------------------


def test_nan_finds_itself_by_identity_only(tracker) -> None:
    nan = float("nan")
    other = float("nan")
    cache = FlexCache()
    first = tracker("first")
    cache.set(nan, first)
    assert nan in cache
    assert cache.get(nan) is first
    assert cache[nan] is first
    assert cache.peek(nan) is first
    assert cache.get_many([nan]) == {nan: first}
    with pytest.raises(KeyError):
        cache.set(nan, tracker("dup"))
    assert other not in cache
    assert cache.get(other) is None
    with pytest.raises(KeyError):
        _ = cache[other]
    second = tracker("second")
    cache.set(other, second)
    assert cache.items == 2
    assert cache.get(nan) is first
    assert cache.get(other) is second
    assert cache.delete(float("nan")) is False
    assert cache.pop(nan) is first
    assert cache.get(other) is second
    assert cache.items == 1


def test_nan_inside_tuples() -> None:
    nan = float("nan")
    cache = FlexCache()
    cache.set((nan, 1), "same nan")
    assert cache.get((nan, 1)) == "same nan"  # another tuple, the same nan object
    assert cache.get((float("nan"), 1)) is None
    cache.set((float("nan"), 1), "other nan")
    assert cache.items == 2


# --- tuple keys --------------------------------------------------------------------------------


def test_tuple_keys() -> None:
    cache = FlexCache()
    cache.set(("user", 1), "u1")
    cache.set(("user", 2), "u2")
    cache.set((("user", 1),), "wrapped")
    cache.set(("user",), "short")
    cache.set((), "empty")
    assert cache.items == 5
    assert cache.get(tuple(["user", 1])) == "u1"
    assert cache.get(("user", 1.0)) == "u1"
    assert cache.get(("user", True)) == "u1"
    assert cache.get(("user", 2)) == "u2"
    assert cache.get(((fresh_str("user"), 1),)) == "wrapped"
    assert cache.get(("user", 3)) is None
    assert cache.get((1, "user")) is None
    assert cache.get(tuple()) == "empty"
    assert cache.get("user") is None


def test_nested_tuples() -> None:
    cache = FlexCache()
    key = (("a", (1, 2.5)), (None, b"x", ()))
    cache.set(key, "nested")
    assert cache.get(((fresh_str("a"), (1.0, 2.5)), (None, b"".join([b"x"]), ()))) == "nested"
    assert cache.get((("a", (1, 2.5)), (None, b"x"))) is None
    assert cache.get((("a", (1, 2.5)), (None, "x", ()))) is None
    deep = nested(100, "leaf")
    cache.set(deep, "deep")
    assert cache.get(nested(100, fresh_str("leaf"))) == "deep"
    assert cache.get(nested(99, "leaf")) is None
    assert cache.items == 2


STR_SUBCLASSES = pytest.mark.parametrize(
    "sub", [PlainStr, RaisingStr, ShiftedStr, NeverEqualStr], ids=lambda c: c.__name__
)


@STR_SUBCLASSES
def test_str_subclass_inside_a_tuple_is_its_text(sub: type[str]) -> None:
    cache = FlexCache()
    first = ("a", 1)
    cache.set(first, "plain")
    assert (sub("a"), 1) in cache
    assert cache.get((sub("a"), 1)) == "plain"
    assert cache.get((sub("a"), 1.0)) == "plain"
    assert cache.get((sub("b"), 1)) is None
    with pytest.raises(KeyError):
        cache.set((sub("a"), 1), "dup")
    cache.set((sub("b"), (sub("c"), 2)), "sub")
    assert cache.get(("b", ("c", 2))) == "sub"
    assert ("b", ("c", 2)) in cache
    assert cache.get(("b", (sub("c"), 2))) == "sub"
    assert cache.items == 2
    cache.put((sub("a"), 1), "put")
    assert cache.items == 2
    assert cache.get(("a", 1)) == "put"
    kept = [key for key in cache.keys() if type(key[0]) is str]
    assert len(kept) == 1
    assert kept[0] is first
    assert cache.pop((sub("b"), ("c", 2))) == "sub"
    assert cache.delete((sub("a"), True)) is True
    assert cache.items == 0


@STR_SUBCLASSES
def test_str_subclass_key_with_every_operation(sub: type[str], clock: ManualClock) -> None:
    """At top level too: the text identifies the key; the subclass's own hooks never run."""
    cache = FlexCache("lru", INF, 10, clock=clock)
    cache.set("k", 1, ttl=5)
    assert sub("k") in cache
    assert cache[sub("k")] == 1
    assert cache.peek(sub("k")) == 1
    assert cache.expires_in(sub("k")) == pytest.approx(5)
    assert cache.touch(sub("k"), 8) is True
    if sub is not RaisingStr:  # the result is keyed by the caller's object, which dict hashes
        got = cache.get_many([sub("k"), sub("nope")])
        assert [type(key) for key in got] == [sub]
        assert list(got.values()) == [1]
    assert cache.get_or_set(sub("k"), forbidden_factory) == 1
    cache.put(sub("k"), 2)
    cache[sub("k")] = 3
    assert cache.items == 1
    assert type(cache.keys()[0]) is str
    assert cache.pop(sub("k")) == 3
    cache.set_many([(sub("m"), 4), (sub("n"), 5)])
    assert cache.get("m") == 4
    assert cache.get("n") == 5
    with pytest.raises(KeyError):
        cache.set_many([(sub("x"), 1), ("x", 2)])  # one key given twice
    cache.put_many([(sub("m"), 6)])
    assert cache.get("m") == 6
    del cache[sub("m")]
    assert cache.delete_many([sub("n"), sub("m")]) == 1
    assert cache.get_or_set(sub("z"), lambda: 9) == 9
    assert cache.get("z") == 9
    assert cache.items == 1


# --- unhashable keys, raising __hash__ -----------------------------------------------------------

KeyOp = Callable[[FlexCache, object, object], object]

SINGLE_OPS: list[tuple[str, KeyOp]] = [
    ("get", lambda c, k, v: c.get(k)),
    ("get_default", lambda c, k, v: c.get(k, v)),
    ("set", lambda c, k, v: c.set(k, v)),
    ("set_ttl", lambda c, k, v: c.set(k, v, ttl=5)),
    ("put", lambda c, k, v: c.put(k, v)),
    ("put_ttl", lambda c, k, v: c.put(k, v, ttl=5)),
    ("delete", lambda c, k, v: c.delete(k)),
    ("pop", lambda c, k, v: c.pop(k)),
    ("pop_default", lambda c, k, v: c.pop(k, None)),
    ("peek", lambda c, k, v: c.peek(k)),
    ("contains", lambda c, k, v: k in c),
    ("getitem", lambda c, k, v: c[k]),
    ("setitem", lambda c, k, v: c.__setitem__(k, v)),
    ("delitem", lambda c, k, v: c.__delitem__(k)),
    ("get_or_set", lambda c, k, v: c.get_or_set(k, forbidden_factory)),
    ("touch", lambda c, k, v: c.touch(k)),
    ("touch_ttl", lambda c, k, v: c.touch(k, 5)),
    ("expires_in", lambda c, k, v: c.expires_in(k)),
]
# The bad key first in the batch: nothing can have happened before it is met.
BATCH_OPS_FIRST: list[tuple[str, KeyOp]] = [
    ("get_many", lambda c, k, v: c.get_many([k, "a"])),
    ("set_many", lambda c, k, v: c.set_many([(k, v), ("new", v)])),
    ("put_many", lambda c, k, v: c.put_many([(k, v), ("a", v)])),
    ("delete_many", lambda c, k, v: c.delete_many([k, "a"])),
]
# The bad key last: a bulk call hashes (and, when storing, validates) everything first.
BATCH_OPS_LAST: list[tuple[str, KeyOp]] = [
    ("get_many_last", lambda c, k, v: c.get_many(["a", k])),
    ("set_many_last", lambda c, k, v: c.set_many([("new", v), (k, v)])),
    ("put_many_last", lambda c, k, v: c.put_many([("a", v), (k, v)])),
    ("delete_many_last", lambda c, k, v: c.delete_many(["a", k])),
]


def _ops(ops: list[tuple[str, KeyOp]]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("op", [op for _, op in ops], ids=[name for name, _ in ops])


ALL_OPS = _ops(SINGLE_OPS + BATCH_OPS_FIRST + BATCH_OPS_LAST)
SINGLE_AND_FIRST_OPS = _ops(SINGLE_OPS + BATCH_OPS_FIRST)


def _baseline(tracker, clock: ManualClock, *extra: object) -> FlexCache:
    """An lru cache holding str, int and tuple keys (and ``extra`` keys), "a" used last."""
    cache = FlexCache("lru", INF, 10, 100, clock=clock)
    cache.set("a", tracker("a", 2))
    cache.set(7, tracker("seven", 3), ttl=10)
    cache.set(("t", 1), tracker("t", 4))
    for n, key in enumerate(extra):
        cache.set(key, tracker(f"extra{n}"))
    cache.get("a")
    return cache


def _state(cache: FlexCache, *, stats: bool = True) -> tuple[object, ...]:
    keys = cache.keys()
    values = cache.values()
    return (
        cache.items,
        cache.bytes,
        [id(key) for key in keys],
        [id(value) for value in values],
        cache.stats() if stats else None,
    )


UNHASHABLE = [
    [],
    ["a"],
    {},
    {"a": 1},
    set(),
    {1},
    bytearray(b"k"),
    ("a", []),
    (1, ("b", {})),
    (frozenset(), {2}),
    (bytearray(b"x"),),
]


@ALL_OPS
@pytest.mark.parametrize("key", UNHASHABLE, ids=repr)
def test_unhashable_key_is_type_error_and_changes_nothing(
    key: object, op: KeyOp, clock: ManualClock, tracker
) -> None:
    cache = _baseline(tracker, clock)
    before = _state(cache)
    value = tracker("new")
    with pytest.raises(TypeError):
        op(cache, key, value)
    assert _state(cache) == before
    assert value.closes == 0
    assert tracker.closed == []
    assert "new" not in cache
    assert cache.get("a").name == "a"


@ALL_OPS
@pytest.mark.parametrize(
    "make", [HashRaiser, lambda: (1, HashRaiser()), lambda: ("a", (HashRaiser(),))]
)
def test_raising_hash_propagates_and_changes_nothing(
    make: Callable[[], object], op: KeyOp, clock: ManualClock, tracker
) -> None:
    cache = _baseline(tracker, clock)
    before = _state(cache)
    value = tracker("new")
    with pytest.raises(Boom):
        op(cache, make(), value)
    assert _state(cache) == before
    assert value.closes == 0
    assert tracker.closed == []


# --- raising __eq__ ----------------------------------------------------------------------------


def _raise_boom(me: Key42, other: object) -> bool:
    raise Boom(f"{me.name} == {other!r}")


@SINGLE_AND_FIRST_OPS
def test_raising_eq_propagates_and_changes_nothing(op: KeyOp, clock: ManualClock, tracker) -> None:
    stored = Key42("stored")
    cache = _baseline(tracker, clock, stored)
    before = _state(cache)
    probe = Key42("probe", on_eq=_raise_boom)
    value = tracker("new")
    with pytest.raises(Boom):
        op(cache, probe, value)
    assert probe.eq_calls + stored.eq_calls >= 1
    assert _state(cache) == before
    assert value.closes == 0
    assert tracker.closed == []
    assert cache.peek(stored).name == "extra0"


@pytest.mark.parametrize(
    "op",
    [
        lambda c, k: c.get(k),
        lambda c, k: c.set(k, "v"),
        lambda c, k: c.put(k, "v"),
        lambda c, k: k in c,
        lambda c, k: c.delete(k),
        lambda c, k: c.pop(k, None),
    ],
    ids=["get", "set", "put", "in", "delete", "pop"],
)
def test_plain_key_compared_with_a_raising_foreign_key(op: Callable, tracker) -> None:
    """The int 42 hashes like a stored Key42, so only its ``==`` can tell them apart."""
    cache = FlexCache(max_items=5)
    stored = Key42("stored", on_eq=_raise_boom)
    cache.set(stored, tracker("stored"))
    with pytest.raises(Boom):
        op(cache, 42)
    assert cache.items == 1
    assert cache.get(stored).name == "stored"
    assert tracker.closed == []


def test_identity_never_calls_eq(tracker) -> None:
    cache = FlexCache(max_items=5)
    stored = Key42("stored", on_eq=_raise_boom)
    value = tracker("v")
    cache.set(stored, value)
    cache.set("other", 1)
    assert cache.get(stored) is value
    assert stored in cache
    assert cache[stored] is value
    assert cache.peek(stored) is value
    assert cache.get_many([stored]) == {stored: value}
    cache.put(stored, value)
    assert cache.pop(stored) is value
    cache.set(stored, value)
    assert cache.delete(stored) is True
    assert stored.eq_calls == 0
    assert value.closes == 1


def test_hash_runs_once_per_call_and_the_stored_hash_is_reused(clock: ManualClock) -> None:
    cache = FlexCache("lru", INF, 3, clock=clock)
    key = Key42("key")
    cache.set(key, "v", ttl=5)
    assert key.hash_calls == 1
    calls = [
        lambda: cache.get(key),
        lambda: key in cache,
        lambda: cache.peek(key),
        lambda: cache[key],
        lambda: cache.expires_in(key),
        lambda: cache.touch(key, 10),
        lambda: cache.get_or_set(key, forbidden_factory),
        lambda: cache.put(key, "w"),
        lambda: cache.__setitem__(key, "x"),
    ]
    for n, call in enumerate(calls, start=2):
        call()
        assert key.hash_calls == n
    # Nothing the cache does by itself hashes a stored key again.
    hashed = key.hash_calls
    cache.keys()
    cache.values()
    list(cache)
    cache.scan()
    cache.set("b", 1, ttl=1)
    cache.set("c", 2)
    clock.advance(1)
    cache.scan()
    cache.set("d", 3)
    cache.set("e", 4)  # evicts the Key42 entry
    assert key not in cache
    assert key.hash_calls == hashed + 1
    cache.set(key, "again")
    cache.clear()
    assert key.hash_calls == hashed + 2


# --- __eq__ and __hash__ that call back into the cache ------------------------------------------

MUTATIONS = ["delete_probed", "delete_other", "set_other", "put_other", "clear"]
EQ_OPS = ["get", "getitem", "set", "put", "delete", "pop", "contains", "get_or_set"]


@pytest.mark.parametrize("answer", [True, False])
@pytest.mark.parametrize("mutation", MUTATIONS)
@pytest.mark.parametrize("op", EQ_OPS)
def test_eq_that_changes_the_cache_once(
    op: str, mutation: str, answer: bool, tracker, check
) -> None:
    """The lookup starts over after the change and gives the answer of the cache as it is then."""
    cache = FlexCache("lru", max_items=10)
    stored = Key42("stored")
    stored_value = tracker("stored")
    other_value = tracker("other")
    cache.set(stored, stored_value)
    cache.set("other", other_value)
    done: list[str] = []

    def on_eq(me: Key42, other: object) -> bool:
        if not done:
            done.append(mutation)
            if mutation == "delete_probed":
                assert cache.delete(stored) is True
            elif mutation == "delete_other":
                assert cache.delete("other") is True
            elif mutation == "set_other":
                cache.set("added", tracker("added"))
            elif mutation == "put_other":
                cache.put("other", tracker("other2"))
            else:
                cache.clear()
        return answer

    probe = Key42("probe", on_eq=on_eq)
    new_value = tracker("new")
    survives = mutation not in ("delete_probed", "clear")
    found = survives and answer

    if op == "get":
        assert cache.get(probe, MISSING) is (stored_value if found else MISSING)
    elif op == "getitem":
        if found:
            assert cache[probe] is stored_value
        else:
            with pytest.raises(KeyError):
                _ = cache[probe]
    elif op == "set":
        if found:
            with pytest.raises(KeyError):
                cache.set(probe, new_value)
            assert cache.peek(stored) is stored_value
        else:
            cache.set(probe, new_value)
            assert cache.peek(probe) is new_value
    elif op == "put":
        cache.put(probe, new_value)
        assert cache.peek(probe) is new_value
        if found:
            assert any(key is stored for key in cache.keys())
            assert not any(key is probe for key in cache.keys())
    elif op == "delete":
        assert cache.delete(probe) is found
    elif op == "pop":
        assert cache.pop(probe, MISSING) is (stored_value if found else MISSING)
    elif op == "contains":
        assert (probe in cache) is found
    else:
        assert cache.get_or_set(probe, lambda: new_value) is (stored_value if found else new_value)

    assert done == [mutation]
    closed_by_op = found and op in ("put", "delete")
    assert stored_value.closes == (1 if not survives or closed_by_op else 0)
    assert new_value.closes == 0
    check(cache)
    reachable(cache)
    if mutation == "set_other":
        assert cache.peek("added").name == "added"
    if mutation == "delete_other":
        assert "other" not in cache
        assert other_value.closes == 1


EVERY_TIME_OPS = _ops(
    [
        *SINGLE_OPS,
        *BATCH_OPS_FIRST,
        ("set_many_last", lambda c, k, v: c.set_many([("new", v), (k, v)])),
        ("put_many_last", lambda c, k, v: c.put_many([("a", v), (k, v)])),
    ]
)


@EVERY_TIME_OPS
@pytest.mark.parametrize("answer", [True, False])
def test_eq_that_changes_the_cache_every_time_is_runtime_error(
    op: KeyOp, answer: bool, clock: ManualClock, tracker
) -> None:
    stored = Key42("stored")
    cache = _baseline(tracker, clock, stored)
    before = _state(cache, stats=False)

    def on_eq(me: Key42, other: object) -> bool:
        cache.set("noise", 0)
        cache.delete("noise")
        return answer

    probe = Key42("probe", on_eq=on_eq)
    value = tracker("new")
    with pytest.raises(RuntimeError):
        op(cache, probe, value)
    assert probe.eq_calls >= 2
    assert _state(cache, stats=False) == before
    assert cache.peek(stored).name == "extra0"
    assert "new" not in cache
    assert value.closes == 0
    assert tracker.closed == []
    # The cache works afterwards.
    probe.on_eq = None
    cache.set(probe, value)
    assert cache.get(probe) is value
    assert cache.get(stored).name == "extra0"


def test_hash_that_calls_back_into_the_cache(tracker, check) -> None:
    cache = FlexCache("lru", max_items=10)
    calls: list[int] = []

    def on_hash(me: Key42) -> None:
        calls.append(1)
        cache.put("side", len(calls))
        cache.get("a")
        cache.delete(("never", len(calls)))

    key = Key42("key", on_hash=on_hash, hash_value=12345)
    cache.set("a", 1)
    value = tracker("v")
    cache.set(key, value)
    assert cache.get(key) is value
    assert key in cache
    assert cache[key] is value
    assert cache.peek(key) is value
    cache.put(key, value)
    assert cache.get_many([key, "a"]) == {key: value, "a": 1}
    assert cache.pop(key) is value
    cache.set_many([(key, value)])
    assert cache.delete_many([key]) == 1
    assert cache.get_or_set(key, lambda: value) is value
    assert cache.expires_in(key) is None
    assert cache.delete(key) is True
    assert value.closes == 2
    assert cache.get("side") == len(calls)
    assert len(calls) >= 12
    assert cache.items == 2
    check(cache)
    reachable(cache)


class HookedPoint(Point):
    """A Point whose ``__hash__`` first runs ``hook()``."""

    def __init__(self, x: int, y: int, hook: Callable[[], object]) -> None:
        super().__init__(x, y)
        self.hook = hook

    def __hash__(self) -> int:
        self.hook()
        return super().__hash__()


@pytest.mark.parametrize("op", ["get", "contains", "set", "put", "delete", "pop", "get_or_set"])
def test_hash_that_removes_the_entry_being_looked_up(op: str, tracker, check) -> None:
    """``__hash__`` runs before anything is touched: the lookup sees the cache without it."""
    cache = FlexCache()
    stored = Point(1, 2)
    old = tracker("old")
    cache.set(stored, old)
    fired: list[bool] = []

    def hook() -> None:
        if not fired:  # only the first hash, by the call under test
            fired.append(cache.delete(stored))

    probe = HookedPoint(1, 2, hook)
    new = tracker("new")
    if op == "get":
        assert cache.get(probe, MISSING) is MISSING
    elif op == "contains":
        assert (probe in cache) is False
    elif op == "set":
        cache.set(probe, new)
        assert cache.peek(stored) is new
    elif op == "put":
        cache.put(probe, new)
        assert cache.peek(stored) is new
    elif op == "delete":
        assert cache.delete(probe) is False
    elif op == "pop":
        assert cache.pop(probe, MISSING) is MISSING
    else:
        assert cache.get_or_set(probe, lambda: new) is new
    assert fired == [True]
    assert old.closes == 1
    assert new.closes == 0
    check(cache)
    reachable(cache)


# --- which key object the cache keeps ----------------------------------------------------------

EQUAL_PAIRS = {
    "big_int": lambda: (int("12345678901234567890"), int("12345678901234567890")),
    "int_float": lambda: (1, 1.0),
    "float_bool": lambda: (float("1"), True),
    "str_subclass": lambda: (fresh_str("k"), PlainStr("k")),
    "subclass_str": lambda: (PlainStr("k"), fresh_str("k")),
    "tuple": lambda: (tuple(["a", 1]), tuple(["a", 1])),
    "tuple_subclass_inside": lambda: (("a", 1), (PlainStr("a"), 1.0)),
    "point": lambda: (Point(1, 2), Point(1, 2)),
    "frozenset": lambda: (frozenset([1, 2]), frozenset([2, 1])),
    "decimal_int": lambda: (Decimal(3), 3),
}


@pytest.mark.parametrize("make", list(EQUAL_PAIRS.values()), ids=list(EQUAL_PAIRS))
def test_the_cache_keeps_the_first_key_object(make: Callable, clock: ManualClock) -> None:
    first, second = make()
    assert first == second
    assert first is not second
    cache = FlexCache("lru", INF, 10, clock=clock)
    cache.set(first, 1, ttl=5)
    cache.put(second, 2)
    assert cache.keys()[0] is first
    assert next(iter(cache)) is first
    cache[second] = 3
    cache.put_many([(second, 4)])
    assert cache.get_or_set(second, forbidden_factory) == 4
    assert cache.touch(second, 9) is True
    assert cache.keys()[0] is first
    assert cache.items == 1
    # Once the entry is gone, the next store keeps its own key object.
    assert cache.pop(second) == 4
    cache.set(second, 5, ttl=1)
    assert cache.keys()[0] is second
    clock.advance(1)
    cache.set(first, 6)  # over the expired holder: a new entry
    assert cache.keys()[0] is first
    assert cache.get(second) == 6


def test_key_error_carries_the_callers_key(clock: ManualClock) -> None:
    cache = FlexCache("lru", INF, 10, clock=clock)
    stored = int("98765432109876543210")
    probe = int("98765432109876543210")
    cache.set(stored, "v")
    with pytest.raises(KeyError) as info:
        cache.set(probe, "w")
    assert info.value.args[0] is probe
    missing = tuple(["missing", 1])
    for call in (
        lambda: cache[missing],
        lambda: cache.__delitem__(missing),
        lambda: cache.pop(missing),
        lambda: cache.expires_in(missing),
    ):
        with pytest.raises(KeyError) as info:
            call()
        assert len(info.value.args) == 1
        assert info.value.args[0] is missing


# --- reference counts ----------------------------------------------------------------------------

FRESH_KINDS = {
    "big_int": lambda: int("12345678901234567890"),
    "float": lambda: float("2.5"),
    "bytes": lambda: b"".join([b"by", b"tes"]),
    "str": lambda: fresh_str("a fresh str key"),
    "str_subclass": lambda: PlainStr("sub"),
    "tuple": lambda: tuple(["a", int("12345678901234567890")]),
    "nested_tuple": lambda: tuple([tuple(["a", tuple([1, 2.5])]), None]),
    "tuple_with_str_subclass": lambda: tuple([PlainStr("a"), 1]),
    "deep_tuple": lambda: nested(30, fresh_str("deep")),
    "frozenset": lambda: frozenset([1, "a"]),
    "point": lambda: Point(1, 2),
    "complex": lambda: complex(1, 2),
    "decimal": lambda: Decimal("1.25"),
}


def _counts(objects: list[object]) -> list[int]:
    return [sys.getrefcount(obj) for obj in objects]


@pytest.mark.parametrize("make", list(FRESH_KINDS.values()), ids=list(FRESH_KINDS))
def test_reference_counts_balance(make: Callable[[], object], clock: ManualClock) -> None:
    first, twin = make(), make()
    assert first == twin
    values = [object(), object(), object(), object()]
    v1, v2, v3, v4 = values
    watched = [first, twin, *values]
    gc.collect()
    before = _counts(watched)
    cache = FlexCache("lru", INF, 100, clock=clock)

    cache.set(first, v1, ttl=10)
    found = cache.get(twin)
    found = cache.get(first)
    found = cache.peek(twin)
    found = cache[twin]
    found = cache.get_or_set(twin, lambda: v4)
    present = twin in cache
    assert present
    assert found is v1
    del found
    now = _counts(watched)
    assert (now[1], now[5]) == (before[1], before[5])  # lookups keep nothing

    cache.put(twin, v2)  # keeps the first key object, lets go of v1
    cache[twin] = v2
    now = _counts(watched)
    assert (now[1], now[2]) == (before[1], before[2])
    many = cache.get_many([twin, first, "absent"])
    assert len(many) == 1
    del many
    cache.touch(twin, 20)
    remaining = cache.expires_in(twin)
    assert remaining == pytest.approx(20)
    popped = cache.pop(twin)
    assert popped is v2
    del popped
    assert cache.items == 0
    assert _counts(watched) == before

    cache.set_many([(twin, v1)])
    cache.put_many({first: v2})
    cache.put_many([(twin, v3), (first, v4)])  # one key twice: the last wins
    removed = cache.delete_many([first, twin])
    assert removed == 1
    made = cache.get_or_set(twin, lambda: v3)  # a miss: stores twin
    del made
    cache.delete(first)
    cache.set(first, v1)
    for iterated in (list(cache), cache.keys(), cache.values()):
        assert len(iterated) == 1
    del iterated
    cache.clear()
    assert _counts(watched) == before


def _refused(call: Callable[[], object], exc: type[BaseException]) -> None:
    """Run a call that must raise ``exc``, keeping no reference to the exception."""
    try:
        call()
    except exc:
        pass
    else:
        raise AssertionError("no exception")


@pytest.mark.parametrize("make", list(FRESH_KINDS.values()), ids=list(FRESH_KINDS))
def test_reference_counts_balance_on_refusals(make: Callable[[], object]) -> None:
    first, twin = make(), make()
    missing = (make(), "missing")
    cache = FlexCache(max_items=3, max_bytes=5)
    cache.set(first, "held")
    cache.set("other", "x")
    value = object()

    class Big:
        def item_size(self) -> int:
            return 6

    big = Big()
    cache.delete(missing)
    unhashable = [twin]
    watched = [twin, missing, value, big, unhashable]
    gc.collect()
    before = _counts(watched)
    _refused(lambda: cache.set(twin, value), KeyError)
    _refused(lambda: cache.set_many([(missing, value), (twin, value)]), KeyError)
    _refused(lambda: cache.set_many([(missing, value), (missing, value)]), KeyError)
    _refused(lambda: cache.set_many([(missing, big)]), ValueError)
    _refused(lambda: cache.put(twin, big), ValueError)
    _refused(lambda: cache.put(twin, value, ttl=-1), ValueError)
    _refused(lambda: cache.set(unhashable, value), TypeError)
    _refused(lambda: cache.get_many([twin, unhashable]), TypeError)
    cache.delete("other")
    cache.delete(first)
    for call in (
        lambda: cache[missing],
        lambda: cache.__delitem__(missing),
        lambda: cache.pop(missing),
        lambda: cache.expires_in(missing),
    ):
        _refused(call, KeyError)
    gc.collect()
    assert cache.items == 0
    assert _counts(watched) == before
