"""One error type for everything a user can get wrong, and the guard that turns it into one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
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


def one_line(err: BaseException, typed: bool = True) -> str:
    """An error as one line: its message (or its cause's, when it has none), after its type unless
    it is a :class:`PipelineError` or ``typed`` is false."""
    text = str(err) or (str(err.__cause__) if err.__cause__ else "")
    if typed and not isinstance(err, PipelineError) or not text:
        text = f"{type(err).__name__}: {text}" if text and typed else text or type(err).__name__
    return " ".join(text.replace("\t", " ").split())


@dataclass
class JobFailed:
    """What a sweep job returns instead of raising, so Hydra runs the remaining jobs and the
    sweep still ends with its table (of the jobs that finished)."""

    message: str
