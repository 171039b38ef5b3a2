"""A computation that several asyncio callers await together: the single flight of
``AsyncFlexCache.get_or_set`` and of ``cached`` on an ``async def`` function."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def _nothing() -> None:
    pass


class SharedTask:
    """A computation in a task of its own, so that the cancellation of one caller does
    not reach it while another still waits; when the last caller is cancelled, the task
    is cancelled too, since nobody will read its result."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[Any] | None = None) -> None:
        self.task = task
        self.waiters = 0

    async def wait(self, abandoned: Callable[[], None] = _nothing) -> Any:
        """The task's result (or its exception), for one caller. ``abandoned`` runs just
        before the task is cancelled for want of callers: forget the flight there, so that
        the next caller starts a computation of its own."""
        task = self.task
        assert task is not None, "a flight is awaited only once its task exists"
        self.waiters += 1
        try:
            return await asyncio.shield(task)
        finally:
            self.waiters -= 1
            if self.waiters == 0 and not task.done():
                abandoned()
                task.cancel()
