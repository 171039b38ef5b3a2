"""SPEC "Concurrency": background_scan=seconds, a daemon thread owned by the cache that runs
scan() on that period, and the cache as a context manager."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable

import pytest
from conftest import Tracker
from flexcache import FlexCache
from flexcache.testing import ManualClock

SCAN_THREAD = "flexcache-scan"


def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Polls ``condition`` until it holds or ``timeout`` passes (a wait, not a timing test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def scan_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == SCAN_THREAD)


def test_background_scan_implies_thread_safe() -> None:
    cache = FlexCache(background_scan=30)
    assert cache.thread_safe is True and cache.background_scan == 30.0
    assert FlexCache(background_scan=0.5, thread_safe=True).thread_safe is True
    assert (
        FlexCache().background_scan is None and FlexCache(background_scan=None).thread_safe is False
    )


def test_background_scan_with_thread_safe_false_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="thread_safe"):
        FlexCache(background_scan=1, thread_safe=False)


@pytest.mark.parametrize("bad", [0, -1, 0.0, float("nan"), float("inf"), -0.5])
def test_background_scan_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="background_scan"):
        FlexCache(background_scan=bad)


@pytest.mark.parametrize("bad", [True, "1", b"1", [1]])
def test_background_scan_must_be_a_number(bad: object) -> None:
    with pytest.raises(TypeError, match="background_scan"):
        FlexCache(background_scan=bad)  # type: ignore[arg-type]


def test_a_refused_construction_starts_no_thread() -> None:
    before = scan_threads()
    with pytest.raises(ValueError):
        FlexCache(background_scan=1, max_items=-1)
    assert scan_threads() == before


def test_the_thread_reaps_what_the_manual_clock_says_is_due(tracker: Tracker) -> None:
    clock = ManualClock()
    cache = FlexCache(clock=clock, background_scan=0.01)
    closed_in: list[str] = []
    due = tracker("due", on_close=lambda v: closed_in.append(threading.current_thread().name))
    kept = tracker("kept")
    cache.set("due", due, 5)
    cache.set("kept", kept, 100)
    clock.advance(10)
    # Nobody calls the cache: the scan thread alone reaps the due entry.
    assert eventually(lambda: due.closes == 1)
    assert closed_in == [SCAN_THREAD]  # close() ran in the scan thread
    assert kept.closes == 0
    assert cache.stats().expirations == 1
    assert "kept" in cache and "due" not in cache
    cache.__exit__(None, None, None)


def test_with_the_real_clock_values_are_closed_with_nobody_calling(tracker: Tracker) -> None:
    cache = FlexCache(background_scan=0.01)
    values = [tracker(f"v{i}") for i in range(20)]
    for i, value in enumerate(values):
        cache.set(i, value, 0.05)
    cache.set("kept", tracker("kept"))
    assert eventually(lambda: all(value.closes == 1 for value in values))
    assert len(cache) == 1
    cache.__exit__(None, None, None)


def test_a_raising_close_in_the_scan_thread_goes_to_the_unraisable_hook(
    tracker: Tracker, unraisable: list
) -> None:
    clock = ManualClock()
    cache = FlexCache(clock=clock, background_scan=0.01)

    def boom(value: object) -> None:
        raise RuntimeError("close failed")

    cache.set("a", tracker("a", on_close=boom), 1)
    clock.advance(2)
    assert eventually(lambda: len(unraisable) == 1)
    assert isinstance(unraisable[0][1], RuntimeError)
    assert cache.stats().close_errors == 1
    cache.__exit__(None, None, None)


def test_a_dropped_cache_is_collected_and_its_thread_ends(tracker: Tracker) -> None:
    before = scan_threads()
    cache = FlexCache(background_scan=3600)  # a period far longer than the test
    value = tracker("v")
    cache.set("v", value)
    assert eventually(lambda: scan_threads() == before + 1)
    del cache
    gc.collect()
    assert value.closes == 0  # collection is not a shutdown: nothing closed
    assert eventually(lambda: scan_threads() == before)


def test_the_cache_is_a_context_manager_that_stops_the_thread_and_clears(tracker: Tracker) -> None:
    before = scan_threads()
    values = [tracker(f"v{i}") for i in range(3)]
    with FlexCache(background_scan=3600) as cache:
        assert isinstance(cache, FlexCache)
        for i, value in enumerate(values):
            cache.set(i, value)
        assert scan_threads() == before + 1
    assert scan_threads() == before  # stopped and joined on leaving the block
    assert [value.closes for value in values] == [1, 1, 1]
    assert len(cache) == 0
    cache.set("after", 1)  # still usable, without a scan thread
    assert cache.get("after") == 1


def test_leaving_the_with_block_by_an_exception_clears_and_propagates(tracker: Tracker) -> None:
    value = tracker("v")
    with pytest.raises(KeyError, match="inside"):
        with FlexCache() as cache:
            cache.set("v", value)
            raise KeyError("inside")
    assert value.closes == 1 and len(cache) == 0


def test_a_plain_cache_is_a_context_manager_too(tracker: Tracker) -> None:
    value = tracker("v")
    with FlexCache("lru", max_items=4) as cache:
        cache.set("v", value)
    assert value.closes == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_after_fork_the_child_runs_its_own_scan_thread() -> None:
    """In a subprocess, so that pytest itself is never forked: the parent's cache has a scan
    thread; the forked child's cache works and reaps through a scan thread of its own."""
    code = textwrap.dedent(
        """
        import os, threading, time, warnings
        from flexcache import FlexCache
        from flexcache.testing import ManualClock

        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        clock = ManualClock()
        cache = FlexCache(clock=clock, background_scan=0.01)
        cache.set("due", "x", 5)

        def scan_threads():
            return sum(t.name == "flexcache-scan" for t in threading.enumerate())

        pid = os.fork()
        if pid == 0:
            clock.advance(10)
            deadline = time.monotonic() + 20
            while "due" in cache and time.monotonic() < deadline:
                time.sleep(0.005)
            cache.set("child", 1)
            ok = "due" not in cache and cache.get("child") == 1 and scan_threads() == 1
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child's cache failed"
        assert "due" in cache and scan_threads() == 1  # the parent's clock did not move
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("period", ["0.001", "3600"])
def test_interpreter_exit_with_a_scan_thread_running_is_clean(period: str) -> None:
    code = (
        "from flexcache import FlexCache\n"
        f"cache = FlexCache(background_scan={period})\n"
        "class V:\n"
        "    def close(self):\n"
        "        pass\n"
        "for i in range(1000):\n"
        "    cache.set(i, V(), 0.0001)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
