"""A concurrent stress driven by hypothesis: a few threads run random operation mixes on one
thread_safe cache, each on keys of its own, so that every result a thread sees is what a
sequential model of that thread predicts; at the quiescent point after the threads join,
the cache's contents, statistics and close() counts are checked against the models."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field

from flexcache import FlexCache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

THREADS = 3
KEYS_PER_THREAD = 6


class Value:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


OPS = st.sampled_from(["set", "put", "get", "delete", "pop", "get_or_set", "peek", "contains"])
PROGRAM = st.lists(st.tuples(OPS, st.integers(0, KEYS_PER_THREAD - 1)), max_size=60)


@dataclass
class ThreadModel:
    """What one thread's keys hold, and what its calls counted."""

    held: dict[str, Value] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    sets: int = 0
    removed: int = 0
    created: list[Value] = field(default_factory=list)
    popped: list[Value] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def run_program(cache: FlexCache, me: int, program: list, model: ThreadModel) -> None:
    def expect(condition: bool, what: str) -> None:
        if not condition:
            model.failures.append(what)

    for step, (op, k) in enumerate(program):
        key = f"t{me}:{k}"
        value = Value(f"{key}#{step}")
        held = model.held.get(key)
        if op == "set":
            try:
                cache.set(key, value)
                expect(held is None, f"{step}: set over a live key")
                model.held[key], model.sets = value, model.sets + 1
                model.created.append(value)
            except KeyError:
                expect(held is not None, f"{step}: set refused on a free key")
        elif op == "put":
            cache.put(key, value)
            model.created.append(value)
            model.held[key], model.sets = value, model.sets + 1
            model.removed += held is not None
        elif op == "get":
            got = cache.get(key)
            expect(got is held, f"{step}: get saw {got!r}, the model {held!r}")
            model.hits += held is not None
            model.misses += held is None
        elif op == "delete":
            expect(cache.delete(key) is (held is not None), f"{step}: delete")
            if held is not None:
                del model.held[key]
                model.removed += 1
        elif op == "pop":
            got = cache.pop(key, None)
            expect(got is held, f"{step}: pop")
            if held is not None:
                del model.held[key]
                model.removed += 1
                model.popped.append(held)
        elif op == "get_or_set":
            got = cache.get_or_set(key, lambda v=value: v)
            if held is None:
                expect(got is value, f"{step}: get_or_set did not store the factory's value")
                model.held[key], model.sets = value, model.sets + 1
                model.created.append(value)
                model.misses += 1
            else:
                expect(got is held, f"{step}: get_or_set")
                model.hits += 1
        elif op == "peek":
            expect(cache.peek(key) is held, f"{step}: peek")
        else:
            expect((key in cache) is (held is not None), f"{step}: in")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(programs=st.lists(PROGRAM, min_size=THREADS, max_size=THREADS))
def test_threads_on_their_own_keys_match_their_models(programs: list) -> None:
    cache = FlexCache(thread_safe=True)
    models = [ThreadModel() for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)

    def worker(me: int) -> None:
        barrier.wait()
        run_program(cache, me, programs[me], models[me])

    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive()
    finally:
        sys.setswitchinterval(saved)

    for model in models:
        assert model.failures == []
    # The quiescent point: contents, statistics and closes as the models say.
    expected = {key: value for model in models for key, value in model.held.items()}
    assert {key: cache.peek(key) for key in cache} == expected
    stats = cache.stats()
    assert stats.hits == sum(m.hits for m in models)
    assert stats.misses == sum(m.misses for m in models)
    assert stats.sets == sum(m.sets for m in models)
    assert stats.deletions == sum(m.removed for m in models)
    cache.clear()
    popped = {id(v) for m in models for v in m.popped}
    for model in models:
        for value in model.created:
            assert value.closes == (0 if id(value) in popped else 1), value.tag
