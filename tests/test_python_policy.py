"""Eviction policies written in Python: ``flexcache.EvictionPolicy`` (SPEC, Policies)."""

from __future__ import annotations

import gc
import random
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable

import pytest
from conftest import Tracker
from flexcache import EvictionPolicy, FlexCache
from flexcache.testing import ManualClock


class RecordingLru(EvictionPolicy):
    """LRU kept in an OrderedDict, logging every call."""

    def __init__(self) -> None:
        self.order: OrderedDict[Hashable, None] = OrderedDict()
        self.log: list[tuple[str, Hashable]] = []

    def on_insert(self, key: Hashable) -> None:
        self.log.append(("insert", key))
        self.order[key] = None

    def on_access(self, key: Hashable) -> None:
        self.log.append(("access", key))
        self.order.move_to_end(key)

    def on_remove(self, key: Hashable) -> None:
        self.log.append(("remove", key))
        del self.order[key]

    def victim(self) -> Hashable:
        key = next(iter(self.order))
        self.log.append(("victim", key))
        return key


class Answers(RecordingLru):
    """Answers ``victim()`` from a script: a key, or an exception to raise."""

    def __init__(self, *answers: object) -> None:
        super().__init__()
        self.answers = list(answers)

    def victim(self) -> Hashable:
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[return-value]


def test_hooks_are_called_in_order_once_per_event(clock: ManualClock) -> None:
    policy = RecordingLru()
    cache = FlexCache(policy, max_items=2, clock=clock)
    assert cache.eviction_policy is policy
    cache.set("a", 1)
    cache.set("b", 2, ttl=10)
    assert cache.get("a") == 1
    assert cache["a"] == 1
    # Not accesses: a miss, `in`, peek, keys().
    assert cache.get("zz") is None
    assert "b" in cache
    assert cache.peek("b") == 2
    assert cache.keys() == ["a", "b"] or set(cache.keys()) == {"a", "b"}
    cache.set("c", 3)  # full: victim() is asked, and names b (a was used)
    assert policy.log == [
        ("insert", "a"),
        ("insert", "b"),
        ("access", "a"),
        ("access", "a"),
        ("victim", "b"),
        ("remove", "b"),
        ("insert", "c"),
    ]
    policy.log.clear()
    cache.put("c", 30)  # replaced: the old entry leaves, the new one comes
    assert cache.delete("a")
    assert cache.pop("c") == 30
    assert policy.log == [("remove", "c"), ("insert", "c"), ("remove", "a"), ("remove", "c")]
    assert cache.stats().evictions == 1


def test_expired_entries_go_before_victim_is_asked(clock: ManualClock) -> None:
    policy = RecordingLru()
    cache = FlexCache(policy, max_items=2, clock=clock)
    cache.set("a", 1, ttl=1)
    cache.set("b", 2)
    clock.advance(2)
    cache.set("c", 3)
    assert ("victim", "a") not in policy.log and ("victim", "b") not in policy.log
    assert policy.log[-2:] == [("remove", "a"), ("insert", "c")]
    assert sorted(cache.keys()) == ["b", "c"]
    assert cache.stats().expirations == 1
    assert cache.stats().evictions == 0


def test_victim_is_asked_again_while_more_room_is_needed(tracker: Tracker) -> None:
    policy = RecordingLru()
    cache = FlexCache(policy, max_bytes=10)
    values = {name: tracker(name, 3) for name in "abc"}
    for name, value in values.items():
        cache.set(name, value)
    cache.set("big", tracker("big", 9))
    victims = [key for kind, key in policy.log if kind == "victim"]
    assert victims == ["a", "b", "c"]
    assert tracker.closed == ["a", "b", "c"]
    assert cache.keys() == ["big"]
    assert cache.bytes == 9


def test_clear_tells_on_remove_of_every_entry() -> None:
    policy = RecordingLru()
    cache = FlexCache(policy, max_items=5)
    for key in range(3):
        cache.set(key, key)
    cache.clear()
    assert sorted(key for kind, key in policy.log if kind == "remove") == [0, 1, 2]
    assert not policy.order


def test_bulk_calls_tell_the_policy() -> None:
    policy = RecordingLru()
    cache = FlexCache(policy, max_items=3)
    cache.set_many({"a": 1, "b": 2})
    assert cache.get_many(["a", "zz", "b"]) == {"a": 1, "b": 2}
    cache.put_many([("c", 3), ("d", 4)])  # one victim: the least recent, a
    assert policy.log == [
        ("insert", "a"),
        ("insert", "b"),
        ("access", "a"),
        ("access", "b"),
        ("victim", "a"),
        ("remove", "a"),
        ("insert", "c"),
        ("insert", "d"),
    ]
    assert cache.get_or_set("b", lambda: 0) == 2
    assert cache.get_or_set("e", lambda: 5) == 5
    assert policy.log[-4:] == [("access", "b"), ("victim", "c"), ("remove", "c"), ("insert", "e")]
    assert sorted(cache.keys()) == ["b", "d", "e"]


def test_put_of_the_same_value_is_still_a_remove_and_an_insert(tracker: Tracker) -> None:
    policy = RecordingLru()
    cache = FlexCache(policy, max_items=3)
    value = tracker("v")
    cache.set("a", value)
    cache.put("a", value)
    cache.put_many({"a": value})
    assert policy.log == [("insert", "a")] + [("remove", "a"), ("insert", "a")] * 2
    assert value.closes == 0


def test_a_cache_without_limits_never_asks_for_a_victim() -> None:
    policy = RecordingLru()
    cache = FlexCache(policy)
    for key in range(100):
        cache.set(key, key)
    assert not any(kind == "victim" for kind, _ in policy.log)
    assert len(policy.order) == 100


# --- wrong answers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("missing", "not the key of a live entry"),
        ("new", "the key being stored"),
        ([1, 2], "not a hashable key"),
        (None, "not the key of a live entry"),
    ],
)
def test_a_wrong_first_answer_changes_nothing(tracker: Tracker, answer: object, why: str) -> None:
    policy = Answers(answer)
    cache = FlexCache(policy, max_items=2)
    a, b, new = tracker("a"), tracker("b"), tracker("new")
    cache.set("a", a)
    cache.set("b", b)
    before = cache.stats()
    with pytest.raises(ValueError, match=why) as info:
        cache.set("new", new)
    assert "Answers" in str(info.value)  # names the policy
    assert sorted(cache.keys()) == ["a", "b"]
    assert cache.stats() == before
    assert tracker.closed == []
    assert "new" not in cache


def test_an_expired_key_is_a_wrong_answer(clock: ManualClock) -> None:
    policy = Answers("a")
    cache = FlexCache(policy, max_items=2, clock=clock, scan_interval=float("inf"))
    cache.set("a", 1, ttl=1)
    cache.set("b", 2)
    clock.advance(2)
    # The store reaps a (it is due) before it asks: no victim is needed.
    cache.set("c", 3)
    assert policy.answers == ["a"]


def test_victims_taken_before_a_wrong_answer_stay_gone(tracker: Tracker) -> None:
    policy = Answers("a", "missing")
    cache = FlexCache(policy, max_bytes=6)
    cache.set("a", tracker("a", 3))
    cache.set("b", tracker("b", 3))
    with pytest.raises(ValueError):
        cache.set("big", tracker("big", 5))
    assert cache.keys() == ["b"]
    assert tracker.closed == ["a"]
    assert cache.stats().evictions == 1


class Boom(Exception):
    pass


def test_victim_that_raises_stops_the_set(tracker: Tracker) -> None:
    policy = Answers(Boom("no"))
    cache = FlexCache(policy, max_items=1)
    cache.set("a", tracker("a"))
    new = tracker("new")
    with pytest.raises(Boom):
        cache.set("new", new)
    assert cache.keys() == ["a"]
    assert tracker.closed == []
    with pytest.raises(Boom):
        policy.answers.append(Boom("again"))
        cache.set_many({"x": 1})
    assert cache.keys() == ["a"]


def test_victim_among_a_batch_being_stored_is_refused() -> None:
    policy = Answers("b")
    cache = FlexCache(policy, max_items=2)
    cache.set("a", 1)
    cache.set("b", 2)
    with pytest.raises(ValueError, match="the key being stored"):
        cache.put_many({"c": 3, "b": 4})
    assert sorted(cache.keys()) == ["a", "b"]
    assert cache["b"] == 2


@pytest.mark.parametrize("hook", ["on_insert", "on_access", "on_remove"])
def test_a_raising_notification_goes_to_unraisablehook(
    hook: str, unraisable: list[tuple[type, BaseException, object]], tracker: Tracker
) -> None:
    class Raising(RecordingLru):
        pass

    def boom(self: Raising, key: Hashable) -> None:
        getattr(RecordingLru, hook)(self, key)
        raise Boom(hook)

    setattr(Raising, hook, boom)
    policy = Raising()
    cache = FlexCache(policy, max_items=1)
    cache.set("a", tracker("a"))
    assert cache.get("a") is not None
    cache.set("b", tracker("b"))  # a is the victim
    cache.delete("b")
    assert [type(report[1]) for report in unraisable] == [Boom] * len(unraisable)
    assert unraisable and all(report[2] is policy for report in unraisable)
    assert tracker.closed == ["a", "b"]
    assert cache.items == 0


# --- re-entrancy, threads, memory -------------------------------------------------------------


def test_hooks_may_call_back_into_the_cache(tracker: Tracker) -> None:
    class Meddling(RecordingLru):
        cache: FlexCache

        def on_insert(self, key: Hashable) -> None:
            super().on_insert(key)
            assert key in self.cache
            self.cache.get("zz")

        def on_access(self, key: Hashable) -> None:
            super().on_access(key)
            self.cache.peek(key)

        def on_remove(self, key: Hashable) -> None:
            super().on_remove(key)
            assert key not in self.cache
            len(self.cache)

        def victim(self) -> Hashable:
            key = super().victim()
            # Another entry leaves meanwhile: the answer still names a live one.
            other = [k for k in self.order if k != key]
            if other:
                self.cache.delete(other[0])
            return key

    policy = Meddling()
    cache = FlexCache(policy, max_items=3)
    policy.cache = cache
    for name in "abcdef":
        cache.set(name, tracker(name))
        cache.get(name)
    assert cache.items <= 3
    assert sorted(cache.keys()) == sorted(policy.order)
    assert sorted(tracker.closed + list(cache.keys())) == sorted("abcdef")


def test_victim_may_store_into_the_cache() -> None:
    class Storing(RecordingLru):
        cache: FlexCache
        stored = False

        def victim(self) -> Hashable:
            if not self.stored:
                self.stored = True
                # A store of its own, which asks victim() in turn, and takes
                # the room the first store asked for.
                self.cache.put("side", 0)
            return super().victim()

    policy = Storing()
    cache = FlexCache(policy, max_items=2)
    policy.cache = cache
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("c", 3)
    assert cache.items <= 2
    assert "c" in cache
    assert sorted(cache.keys()) == sorted(policy.order)


def test_thread_safe_cache_with_a_python_policy(tracker: Tracker) -> None:
    class LockedLru(RecordingLru):
        def __init__(self) -> None:
            super().__init__()
            self.lock = threading.Lock()

        def on_insert(self, key: Hashable) -> None:
            with self.lock:
                self.order[key] = None

        def on_access(self, key: Hashable) -> None:
            with self.lock:
                if key in self.order:
                    self.order.move_to_end(key)

        def on_remove(self, key: Hashable) -> None:
            with self.lock:
                self.order.pop(key, None)

        def victim(self) -> Hashable:
            with self.lock:
                return next(iter(self.order))

    policy = LockedLru()
    cache = FlexCache(policy, max_items=20, thread_safe=True)
    values = []
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for step in range(400):
            key = rng.randrange(60)
            try:
                if rng.random() < 0.5:
                    value = tracker(f"{seed}-{step}")
                    values.append(value)
                    cache.put(key, value)
                else:
                    cache.get(key)
            except ValueError as error:
                # Another thread may evict the victim between victim() and
                # its eviction: a wrong answer then, never a corruption.
                if "victim()" not in str(error):
                    errors.append(error)
            assert cache.items <= 20

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    cache.clear()
    assert all(value.closes == 1 for value in values)


def test_a_policy_that_refers_to_its_cache_is_collected() -> None:
    class Referring(RecordingLru):
        cache: FlexCache

    policy = Referring()
    cache = FlexCache(policy, max_items=2)
    policy.cache = cache
    cache.set("a", 1)
    ref = weakref.ref(policy)
    del cache, policy
    gc.collect()
    assert ref() is None


# --- construction -------------------------------------------------------------------------


@pytest.mark.parametrize("policy", [object(), EvictionPolicy, 3, None, b"lru"])
def test_an_object_that_is_not_an_eviction_policy_is_a_type_error(policy: object) -> None:
    with pytest.raises(TypeError, match="EvictionPolicy"):
        FlexCache(policy)  # type: ignore[arg-type]


def test_repr_shows_the_policy_object() -> None:
    policy = RecordingLru()
    cache = FlexCache(policy, max_items=4)
    assert f"eviction_policy={policy!r}" in repr(cache)


def test_the_base_class_does_nothing_and_answers_no_victim() -> None:
    cache = FlexCache(EvictionPolicy(), max_items=1)
    cache.set("a", 1)
    assert cache.get("a") == 1
    with pytest.raises(ValueError, match="victim"):
        cache.set("b", 2)
    assert cache.keys() == ["a"]


# --- persistence ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["pickle", "copy", "deepcopy"])
def test_a_cache_with_a_python_policy_is_not_copied(how: str) -> None:
    import copy
    import pickle

    cache = FlexCache(RecordingLru(), max_items=2)
    cache.set("a", 1)
    copier = {"pickle": pickle.dumps, "copy": copy.copy, "deepcopy": copy.deepcopy}[how]
    with pytest.raises(TypeError, match="EvictionPolicy object cannot be copied"):
        copier(cache)
    assert cache.keys() == ["a"]


def test_a_cache_with_a_python_policy_is_not_dumped_and_none_is_loaded_into_one(
    tmp_path: object,
) -> None:
    import pickle
    from pathlib import Path

    path = Path(str(tmp_path)) / "dump"
    cache = FlexCache(RecordingLru(), max_items=2)
    cache.set("a", 1)
    with pytest.raises(TypeError, match="cannot be dumped"):
        cache.dump(path, serializer=pickle.dumps)
    assert not path.exists()
    plain = FlexCache("lru", max_items=2)
    plain.set("a", 1)
    plain.dump(path, serializer=pickle.dumps)
    with pytest.raises(TypeError, match="cannot be loaded"):
        FlexCache.load(path, deserializer=pickle.loads, eviction_policy=RecordingLru())
