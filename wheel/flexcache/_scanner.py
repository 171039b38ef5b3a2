"""The background expiry thread of ``FlexCache(background_scan=seconds)``.

A daemon thread runs the cache's ``scan()`` every ``seconds``. It holds the cache only
through a weak reference, so a cache nobody references is collected; the reference's
callback then wakes the thread, which ends. After ``os.fork()`` the child starts a fresh
thread for every cache that had one (threads do not survive a fork). At interpreter exit
every thread is stopped and joined before the interpreter tears down, so exit neither
hangs nor prints an error.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import Any

from flexcache._unraisable import report

# Every scanner whose cache is alive, to restart after a fork and stop at exit.
_scanners: weakref.WeakSet[Scanner] = weakref.WeakSet()
_scanners_lock = threading.Lock()


class Scanner:
    """Runs ``cache.scan()`` every ``period`` seconds in a daemon thread of its own."""

    def __init__(self, cache: Any, period: float) -> None:
        self._period = period
        self._stopped = threading.Event()
        self._cache = weakref.ref(cache, self._cache_collected)
        self._thread: threading.Thread | None = None
        with _scanners_lock:
            _scanners.add(self)
        self._start()

    def _start(self) -> None:
        # A local Event and reference: the thread's loop keeps no strong reference to the
        # scanner or the cache between two scans.
        stopped = self._stopped
        cache_ref = self._cache
        period = self._period
        thread = threading.Thread(
            target=_run, args=(cache_ref, stopped, period), name="flexcache-scan", daemon=True
        )
        self._thread = thread
        thread.start()

    def _cache_collected(self, _ref: object) -> None:
        self._stopped.set()

    def stop(self) -> None:
        """Ends the thread and waits for it (unless called from that very thread)."""
        self._stopped.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _restart_in_child(self) -> None:
        if self._stopped.is_set() or self._cache() is None:
            return
        self._stopped = threading.Event()
        self._start()


def _run(cache_ref: weakref.ref[Any], stopped: threading.Event, period: float) -> None:
    while not stopped.wait(period):
        cache = cache_ref()
        if cache is None:
            return
        # scan() reports a raising close() through sys.unraisablehook itself; anything
        # else it raises (it raises nothing else today) must not end the thread silently.
        try:
            cache.scan()
        except BaseException as error:  # reported, never lost
            report(error, "Exception ignored in a FlexCache background scan", cache)
        del cache


def _restart_all_in_child() -> None:
    global _scanners_lock
    _scanners_lock = threading.Lock()  # a lock held by a thread that did not survive the fork
    for scanner in list(_scanners):
        scanner._restart_in_child()


def _stop_all() -> None:
    with _scanners_lock:
        scanners = list(_scanners)
    for scanner in scanners:
        scanner.stop()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_all_in_child)
atexit.register(_stop_all)
