"""Ctrl-C and SIGTERM stop training reliably, between two batches.

While :func:`between_batches` is active (``train`` wraps ``trainer.fit`` in it) the first stop
signal only asks to stop: :class:`StopOnSignal` raises KeyboardInterrupt at the next batch end, so
the stop never lands inside a write to the MLflow store or a checkpoint half-saved. (Measured
here: a KeyboardInterrupt raised inside an SQLite commit left the store locked, and the run could
not be marked KILLED.) A second signal stops at once. Outside the block, a signal raises
KeyboardInterrupt at once.

Python runs a signal's handler in the main thread at its next chance; C code can take that chance
away (``PyOS_InterruptOccurred`` consumes a pending SIGINT whatever the handler is, and code that
drops exceptions can swallow the KeyboardInterrupt). Measured here: SIGINTs sent to a training
subprocess mid-epoch were sometimes lost, and the run went on to its last epoch. So the signals
are also recorded at the C level, in a wakeup pipe (``signal.set_wakeup_fd``), and
:class:`StopOnSignal` checks that pipe after every batch.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager

import pytorch_lightning as pl

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_pipe: dict[str, int] = {}
_state = {"defer": False, "asked": False}


def _interrupt(signum, frame) -> None:
    if _state["defer"] and not _state["asked"]:
        _state["asked"] = True
        name = signal.Signals(signum).name
        print(f"{name}: stopping after this batch (again to stop at once)", file=sys.stderr)
        return
    raise KeyboardInterrupt


@contextmanager
def between_batches():
    """Within the block, the first stop signal stops at the next batch end (:class:`StopOnSignal`),
    or when the block ends, whichever comes first."""
    _state.update(defer=True, asked=False)
    try:
        yield
    finally:
        asked = _state["asked"]
        _state.update(defer=False, asked=False)
    if asked:
        raise KeyboardInterrupt


def install_interrupt_handlers() -> None:
    """SIGINT and SIGTERM (a pre-empted job) raise KeyboardInterrupt, also in a process started
    in the background, and are written to the wakeup pipe :class:`StopOnSignal` reads."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt)
    if "read" not in _pipe:
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        _pipe.update(read=read, write=write)
    signal.set_wakeup_fd(_pipe["write"], warn_on_full_buffer=False)


def stop_requested() -> bool:
    """Whether SIGINT or SIGTERM arrived since the last call (reads the wakeup pipe)."""
    if "read" not in _pipe:
        return False
    try:
        received = os.read(_pipe["read"], 1024)
    except BlockingIOError:
        return False
    return any(byte in (int(s) for s in STOP_SIGNALS) for byte in received)


class StopOnSignal(pl.Callback):
    """Raise KeyboardInterrupt after a batch when a stop signal arrived since the last batch: one
    :func:`between_batches` deferred, or one lost on the way. The wakeup pipe records both."""

    def _check(self, *args, **kwargs) -> None:
        if stop_requested():
            raise KeyboardInterrupt

    on_train_batch_end = _check
    on_validation_batch_end = _check
    on_train_epoch_end = _check
