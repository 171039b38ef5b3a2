"""Values with only ``aclose()`` that the synchronous ``FlexCache`` lets go.

The synchronous cache cannot await. When it lets go of a value that has ``aclose()`` but
no ``close()``, it calls :func:`let_go`: on a thread with a running event loop (a
coroutine called the cache), ``value.aclose()`` is scheduled as a task on that loop and
kept referenced until it finishes, its errors going to ``sys.unraisablehook``; with no
running loop, the value is reported to ``sys.unraisablehook`` as never closed. An
``AsyncFlexCache`` (``flexcache.aio``) awaits ``aclose()`` itself instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flexcache._unraisable import report

# Tasks scheduled here and not yet done: a task nobody references may be collected early.
_pending: set[asyncio.Task[Any]] = set()


class NeverAwaitedWarning(RuntimeWarning):
    """A value with only ``aclose()`` was let go where nothing could await it."""


def let_go(value: Any) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        warning = NeverAwaitedWarning(
            f"{type(value).__name__}.aclose() was never awaited: a synchronous FlexCache let "
            "the value go with no running event loop (use flexcache.aio.AsyncFlexCache)"
        )
        _report(warning, value)
        return
    task = loop.create_task(_aclose(value))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _aclose(value: Any) -> None:
    try:
        await value.aclose()
    except BaseException as error:  # reported, never lost
        _report(error, value)
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise


def _report(error: BaseException, value: Any) -> None:
    report(error, "Exception ignored while FlexCache let go of a value with aclose()", value)
