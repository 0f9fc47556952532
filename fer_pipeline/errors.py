"""One error type for everything a user can get wrong, and the guard that turns it into one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class PipelineError(Exception):
    """A problem with the user's input or setup: printed as one line, exit status 2, no traceback."""


def exit_on_error(main: Callable[..., T]) -> Callable[..., T]:
    """Wrap a stage entry point: a :class:`PipelineError` prints ``error: <message>`` and exits 2.

    Other exceptions are bugs and keep their traceback.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except PipelineError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
