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
        report_never_awaited(
            value,
            "a synchronous FlexCache let the value go with no running event loop "
            "(use flexcache.aio.AsyncFlexCache)",
        )
        return
    task = loop.create_task(aclose_reporting(value, _LET_GO))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


_LET_GO = "Exception ignored while FlexCache let go of a value with aclose()"


def report_never_awaited(value: Any, why: str) -> None:
    """Reports a value whose ``aclose()`` nothing could await (``why`` says where)."""
    warning = NeverAwaitedWarning(f"{type(value).__name__}.aclose() was never awaited: {why}")
    report(warning, "Exception ignored while FlexCache let go of a value", value)


async def aclose_reporting(value: Any, message: str) -> None:
    """``await value.aclose()``, an error reported (``message``) rather than raised."""
    try:
        await value.aclose()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # reported, never lost
        report(error, message, value)


def close_reporting(value: Any, message: str) -> None:
    """``value.close()`` if it has one, an error reported (``message``) rather than raised."""
    close = getattr(value, "close", None)
    if close is None:
        return
    try:
        close()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # reported, never lost
        report(error, message, value)
