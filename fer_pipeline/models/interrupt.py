"""Ctrl-C and SIGTERM stop training reliably: at once, or at the latest after the current batch.

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

import pytorch_lightning as pl

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_pipe: dict[str, int] = {}


def _interrupt(signum, frame) -> None:
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
    """Raise KeyboardInterrupt after a batch when a stop signal arrived and was lost on the way."""

    def _check(self, *args, **kwargs) -> None:
        if stop_requested():
            raise KeyboardInterrupt

    on_train_batch_end = _check
    on_validation_batch_end = _check
    on_train_epoch_end = _check
