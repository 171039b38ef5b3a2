"""Reporting an error nobody can catch (it happened in a thread of ours, or where a value
was let go) through ``sys.unraisablehook``, as CPython reports one in a ``__del__``."""

from __future__ import annotations

import sys


class _HookArgs:
    """The fields of ``sys.UnraisableHookArgs``, which Python code cannot construct."""

    def __init__(self, error: BaseException, message: str, obj: object) -> None:
        self.exc_type = type(error)
        self.exc_value = error
        self.exc_traceback = error.__traceback__
        self.err_msg = message
        self.object = obj


def report(error: BaseException, message: str, obj: object) -> None:
    sys.unraisablehook(_HookArgs(error, message, obj))  # type: ignore[arg-type]
