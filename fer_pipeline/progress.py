"""Progress a person can read wherever the output goes: a live bar on a terminal, and in a log file
(nohup, SLURM, CI) plain lines, the first at once and then at most one every :data:`EVERY_S`
seconds, each with what is done, the rate, the time spent and the time left.

    with progress("crop", total=len(paths), unit="images") as bar:
        bar.update(n)

    for name in track(names, "evaluate: bootstrap", unit="steps"):
        ...
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")

EVERY_S = 30.0  # at most one line this often in a log


def on_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (stdout) is a terminal, where a live bar can redraw itself."""
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def clock(seconds: float) -> str:
    """``h:mm:ss`` past an hour, else ``m:ss``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    text = f"{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
    return f"{hours}:{text}" if hours else text


class ProgressLines:
    """The log-file form of a progress bar: ``update(n)`` counts ``n`` more done and prints
    ``<what>: <done>/<total> <unit> (<pct>), <rate> <unit>/s, elapsed m:ss, ETA m:ss`` after the
    first update, then whenever ``every_s`` seconds have passed, and when the total is reached."""

    def __init__(
        self,
        what: str,
        total: int | None = None,
        unit: str = "it",
        every_s: float = EVERY_S,
        stream: TextIO | None = None,
        now: Callable[[], float] = time.monotonic,
    ):
        self.what, self.total, self.unit, self.every_s = what, total, unit, every_s
        self.stream, self.now = stream, now
        self.done, self.printed, self.start = 0, 0, now()
        self.last: float | None = None

    def line(self, suffix: str = "") -> str:
        elapsed = self.now() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.done}/{self.total}" if self.total else f"{self.done}"]
        parts[0] += f" {self.unit}"
        if self.total:
            parts[0] += f" ({100 * self.done / self.total:.0f} %)"
        parts.append(f"{rate:.1f} {self.unit}/s")
        parts.append(f"elapsed {clock(elapsed)}")
        if self.total and rate > 0:
            parts.append(f"ETA {clock((self.total - self.done) / rate)}")
        return f"{self.what}: {', '.join(parts)}{suffix}"

    def update(self, n: int = 1, suffix: str | Callable[[], str] = "") -> None:
        """Count ``n`` more done; print a line when one is due, ending with ``suffix`` (or what
        it returns: computed only then)."""
        self.done += n
        finished = self.total is not None and self.done >= self.total
        if self.last is None or finished or self.now() - self.last >= self.every_s:
            self.print(suffix() if callable(suffix) else suffix)

    def print(self, suffix: str = "") -> None:
        print(self.line(suffix), file=self.stream or sys.stdout, flush=True)
        self.last, self.printed = self.now(), self.done

    def close(self) -> None:
        """Print the count it ended at, if the last line did not (``(stopped)`` short of the
        total)."""
        if self.done and self.done != self.printed:
            stopped = self.total is not None and self.done < self.total
            self.print(" (stopped)" if stopped else "")

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(what: str, total: int | None = None, unit: str = "it", stream: TextIO | None = None):
    """A live ``tqdm`` bar when stderr is a terminal, else :class:`ProgressLines` on ``stream``
    (stdout); either is a context manager with ``update(n)``."""
    if on_terminal(sys.stderr):
        from tqdm import tqdm

        return tqdm(total=total, desc=what, unit=unit, dynamic_ncols=True, file=sys.stderr)
    return ProgressLines(what, total, unit, stream=stream)


def track(items: Iterable[T], what: str, unit: str = "it", total: int | None = None) -> Iterator[T]:
    """``items``, reporting progress as :func:`progress` does."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress(what, total, unit) as bar:
        for item in items:
            yield item
            bar.update(1)
