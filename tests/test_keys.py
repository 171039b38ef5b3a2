"""SPEC "Keys": every str is a key, identified by its text; any other type is a TypeError."""

from __future__ import annotations

import enum
import sys

import pytest
from conftest import Expect, ShiftedStr, Val, filled
from flexcache import FlexCache

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, enum.Enum):
        pass


class Color(StrEnum):
    RED = "red"
    EMPTY = ""
    SURROGATE = "\ud800"


class PlainSub(str):
    pass


class ConstantHash(str):
    """Claims every instance hashes to 0 and equals nothing: must not matter to the cache."""

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True


class RaisingHash(str):
    """A subclass whose __hash__ and __eq__ raise: the text alone identifies the key."""

    def __hash__(self) -> int:
        raise RuntimeError("__hash__ must not be called")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__ must not be called")

    def __ne__(self, other: object) -> bool:
        raise RuntimeError("__ne__ must not be called")


ODD_KEYS = [
    "",
    "a" * 1_000_000,
    "\x00",
    "a\x00b",
    "\x00" * 1000,
    "ключ",
    "鍵",
    "🔑🗝️",
    "e\u0301",
    "\u00e9",
    "\ud800",
    "\udfff",
    "a\ud800b",
    "\udc80\udcff",
    "\U0010ffff",
    "\ufffd",
    " ",
    "\n\t\r",
]


@pytest.mark.parametrize("key", ODD_KEYS, ids=lambda k: ascii(k)[:30])
def test_any_str_is_a_key(key: str) -> None:
    cache = FlexCache()
    value = object()
    assert key not in cache
    assert cache.get(key) is None
    assert cache.set(key, value) is None
    assert key in cache
    assert cache.get(key) is value
    assert cache.items == 1
    with pytest.raises(KeyError):
        cache.set(key, object())
    assert cache.delete(key) is True
    assert key not in cache
    assert cache.delete(key) is False
    assert cache.items == 0


def test_odd_keys_are_all_distinct() -> None:
    """No truncation at NUL, no replacement of surrogates, no Unicode normalisation."""
    cache = FlexCache()
    keys = [*ODD_KEYS, "a", "a\x00", "b", "?", "\ud801", "\udbff\udfff", "a" * 999_999]
    assert len(set(keys)) == len(keys)
    values = {key: object() for key in keys}
    for key in keys:
        cache.set(key, values[key])
    assert cache.items == len(keys)
    for key in keys:
        assert cache.get(key) is values[key]
    for key in keys:
        assert cache.delete(key) is True
        assert key not in cache
    assert cache.items == 0


def test_surrogate_key_is_never_encoded() -> None:
    key = "\ud800"
    with pytest.raises(UnicodeEncodeError):
        key.encode("utf-8")
    cache = FlexCache()
    cache.set(key, 1, ttl=10)
    cache.set("x" + key, 2)
    assert cache.get(key) == 1
    assert key in cache
    assert repr(cache)
    cache.scan()
    cache.clear()
    assert cache.items == 0


def test_key_is_identified_by_text_not_identity() -> None:
    cache = FlexCache()
    stored = "".join(["sess", "ion:", "42"])
    lookup = "".join(["session", ":42"])
    assert stored == lookup
    assert stored is not lookup
    cache.set(stored, "v")
    assert lookup in cache
    assert cache.get(lookup) == "v"
    assert cache.delete(lookup) is True
    assert stored not in cache


SUBCLASSES = pytest.mark.parametrize(
    "make", [PlainSub, ConstantHash, ShiftedStr, RaisingHash], ids=lambda c: c.__name__
)


@SUBCLASSES
def test_subclass_finds_plain_entry(make: type[str]) -> None:
    cache = FlexCache()
    value = object()
    cache.set("user:1", value)
    key = make("user:1")
    assert key in cache
    assert cache.get(key) is value
    with pytest.raises(KeyError):
        cache.set(key, object())
    assert cache.items == 1
    assert cache.delete(key) is True
    assert "user:1" not in cache
    assert cache.items == 0


@SUBCLASSES
def test_plain_finds_subclass_entry(make: type[str]) -> None:
    cache = FlexCache()
    value = object()
    cache.set(make("user:1"), value)
    assert "user:1" in cache
    assert cache.get("user:1") is value
    with pytest.raises(KeyError):
        cache.set("user:1", object())
    assert cache.items == 1
    assert cache.delete("user:1") is True
    assert make("user:1") not in cache
    assert cache.items == 0


@SUBCLASSES
def test_subclass_keys_with_different_text_are_different(make: type[str]) -> None:
    cache = FlexCache()
    cache.set(make("a"), 1)
    cache.set(make("b"), 2)
    cache.set(make(""), 3)
    assert cache.items == 3
    assert cache.get(make("a")) == 1
    assert cache.get("b") == 2
    assert cache.get("") == 3
    assert cache.get(make("c")) is None
    assert make("c") not in cache
    assert cache.delete(make("c")) is False


def test_str_enum_members_are_keys_by_their_text() -> None:
    cache = FlexCache()
    cache.set(Color.RED, "r")
    cache.set("", "empty")
    cache.set(Color.SURROGATE, "s")
    assert cache.get("red") == "r"
    assert cache.get(Color.EMPTY) == "empty"
    assert cache.get("\ud800") == "s"
    assert "red" in cache
    assert Color.EMPTY in cache
    with pytest.raises(KeyError):
        cache.set("red", "again")
    assert cache.delete("red") is True
    assert Color.RED not in cache
    assert cache.delete(Color.SURROGATE) is True
    assert cache.delete(Color.EMPTY) is True
    assert cache.items == 0


def test_key_error_carries_the_key() -> None:
    cache = FlexCache()
    cache.set("dup", 1)
    with pytest.raises(KeyError) as info:
        cache.set("dup", 2)
    assert info.value.args == ("dup",)


def test_set_of_live_key_changes_nothing(tracker) -> None:
    cache = FlexCache(max_items=5, max_bytes=100)
    old = tracker("old", 7)
    new = tracker("new", 11)
    cache.set("k", old)
    cache.set("other", tracker("other", 3))
    with pytest.raises(KeyError):
        cache.set("k", new, ttl=1)
    assert cache.get("k") is old
    assert cache.items == 2
    assert cache.bytes == 10
    assert old.closes == 0
    assert new.closes == 0
    assert tracker.closed == []


def test_get_default() -> None:
    cache = FlexCache()
    sentinel = object()
    assert cache.get("missing") is None
    assert cache.get("missing", sentinel) is sentinel
    cache.set("present", None)
    assert cache.get("present", sentinel) is None
    cache.set("zero", 0)
    assert cache.get("zero", sentinel) == 0


def test_values_of_any_type() -> None:
    cache = FlexCache()
    values = [None, 0, "", (), [], {}, b"", 1.5, object(), FlexCache, cache]
    for n, value in enumerate(values):
        cache.set(str(n), value)
    for n, value in enumerate(values):
        assert cache.get(str(n)) is value
    assert cache.items == cache.bytes == len(values)
    cache.clear()


UNHASHABLE_KEYS = [
    bytearray(b"k"),
    ["k"],
    {"k": 1},
    {"k"},
    ("k", ["nested"]),
    (("k",), {"k": 1}),
]


@pytest.mark.parametrize("key", UNHASHABLE_KEYS, ids=repr)
def test_unhashable_key_is_type_error_everywhere(key: object, tracker) -> None:
    cache = FlexCache(max_items=2)
    kept = tracker("kept", 1)
    cache.set("k", kept)
    cache.set("1", "one")
    value = tracker("value", 1)

    with pytest.raises(TypeError):
        cache.set(key, value)
    with pytest.raises(TypeError):
        cache.set(key, value, ttl=10)
    with pytest.raises(TypeError):
        cache.get(key)
    with pytest.raises(TypeError):
        cache.get(key, "default")
    with pytest.raises(TypeError):
        cache.delete(key)
    with pytest.raises(TypeError):
        key in cache  # noqa: B015

    assert cache.items == 2
    assert cache.bytes == 2
    assert cache.get("k") is kept
    assert cache.get("1") == "one"
    assert value.closes == 0
    assert kept.closes == 0
    assert tracker.closed == []


def test_bad_key_does_not_evict_in_full_cache(tracker) -> None:
    cache = FlexCache(max_items=1)
    cache.set("a", tracker("a"))
    with pytest.raises(TypeError):
        cache.set([b"b"], tracker("b"))
    assert "a" in cache
    assert tracker.closed == []


# === Moved from test_adversarial.py: odd keys =====================================================
# Their helpers (Expect, Val, filled, MISSING) are in conftest.py.

# --- keys ------------------------------------------------------------------------------------

MORE_UNHASHABLE_KEYS = [bytearray(b"a"), [1], {}, set(), ("a", []), (1, (2, [3]))]


@pytest.mark.parametrize("key", MORE_UNHASHABLE_KEYS, ids=repr)
def test_unhashable_keys_are_type_errors_and_change_nothing(key: object) -> None:
    expect, old = filled()
    value = Val("new", 1)
    with pytest.raises(TypeError):
        expect.cache.set(key, value)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        expect.cache.get(key)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        expect.cache.get(key, "default")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        expect.cache.delete(key)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _ = key in expect.cache
    assert value.closes == 0
    assert all(v.closes == 0 for v in old)
    expect.verify()


class HostileStr(str):
    """A str subclass whose every str hook raises: the cache must use the text only."""

    def __hash__(self) -> int:
        raise RuntimeError("__hash__ called")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__ called")

    def __ne__(self, other: object) -> bool:
        raise RuntimeError("__ne__ called")

    def __str__(self) -> str:
        raise RuntimeError("__str__ called")

    def __len__(self) -> int:
        raise RuntimeError("__len__ called")

    def encode(self, *args: object, **kwargs: object) -> bytes:
        raise RuntimeError("encode called")


def test_hostile_str_subclass_keys_work_by_text() -> None:
    cache = FlexCache("lru", max_items=10)
    expect = Expect(cache)
    plain = Val("plain")
    expect.set("abc", plain)
    assert cache.get(HostileStr("abc")) is plain
    assert HostileStr("abc") in cache
    with pytest.raises(KeyError) as info:
        cache.set(HostileStr("abc"), Val("dup"))
    assert type(info.value.args[0]) is HostileStr
    sub = Val("sub")
    cache.set(HostileStr("xyz"), sub)
    expect.add("xyz", sub)
    assert cache.get("xyz") is sub
    with pytest.raises(KeyError):
        cache.set("xyz", Val("dup"))
    expect.verify(absent=["ab", "abcd", ""])
    assert cache.delete(HostileStr("abc")) is True
    expect.remove("abc")
    assert plain.closes == 1
    assert cache.delete("xyz") is True
    expect.remove("xyz")
    expect.verify(absent=["abc", "xyz"])
    assert cache.delete(HostileStr("abc")) is False
    assert HostileStr("") not in cache


SURROGATES = ["\ud800", "\udfff", "a\udcff", "\ud83d\ude00", "\ude00\ud83d", "\ud800\x00"]


def test_lone_surrogate_keys() -> None:
    cache = FlexCache()
    expect = Expect(cache)
    for i, key in enumerate(SURROGATES):
        expect.set(key, Val(f"s{i}"))
    # "\ud83d\ude00" is two lone surrogates, not the emoji they would encode in UTF-16.
    expect.verify(absent=["\U0001f600", "a", "", "\ud801", "\x00"])
    for key in SURROGATES[::2]:
        assert cache.delete(key)
        expect.remove(key)
    expect.verify(absent=SURROGATES)


def test_ten_megabyte_keys() -> None:
    cache = FlexCache(max_items=2)
    expect = Expect(cache)
    big = "k" * 10_000_000
    other = big[:-1] + "j"  # same length, differs only at the end
    expect.set(big, Val("big"))
    expect.set(other, Val("other"))
    expect.verify(absent=[big[:-1], big + "k"])
    # A different object with the same 10 MB text finds the entry.
    copy = "".join(["k" * 5_000_000, "k" * 5_000_000])
    assert copy is not big
    assert cache.delete(copy)
    expect.remove(big)
    expect.verify(absent=[big])


def test_a_million_distinct_keys() -> None:
    n = 1_000_000
    keys = [f"key-{i}" for i in range(n)]
    cache = FlexCache()
    set_, get, delete = cache.set, cache.get, cache.delete
    for i, key in enumerate(keys):
        set_(key, i)
    assert cache.items == n
    assert cache.bytes == n
    assert all(get(key) == i for i, key in enumerate(keys))
    assert "key-1000000" not in cache
    assert all(delete(key) for key in keys)
    assert cache.items == 0
    assert cache.bytes == 0
    assert not any(key in cache for key in keys[::1000])
