"""A stop signal whose KeyboardInterrupt was lost on the way still stops training after the batch."""

from __future__ import annotations

import os
import signal

import pytest

from fer_pipeline.models import interrupt


@pytest.fixture
def handlers():
    saved = {s: signal.getsignal(s) for s in interrupt.STOP_SIGNALS}
    interrupt.install_interrupt_handlers()
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    signal.set_wakeup_fd(-1)


def test_a_lost_sigint_stops_training_at_the_next_batch(handlers):
    callback = interrupt.StopOnSignal()
    callback.on_train_batch_end(None, None, None, None, 0)  # nothing arrived: training goes on
    # What the C-level handler records when a SIGINT arrives, here without Python handling it,
    # as when C code consumed it or library code dropped the KeyboardInterrupt.
    os.write(interrupt._pipe["write"], bytes([signal.SIGINT]))
    with pytest.raises(KeyboardInterrupt):
        callback.on_train_batch_end(None, None, None, None, 1)
    callback.on_train_batch_end(None, None, None, None, 2)  # read once


def test_sigterm_raises_keyboard_interrupt(handlers):
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
    assert interrupt.stop_requested()  # also recorded in the pipe


def test_during_training_the_first_sigint_stops_at_the_next_batch_end(handlers, capsys):
    callback = interrupt.StopOnSignal()
    with pytest.raises(KeyboardInterrupt), interrupt.between_batches():
        os.kill(os.getpid(), signal.SIGINT)  # mid-batch: asked, not raised here
        assert "SIGINT: stopping after this batch" in capsys.readouterr().err
        callback.on_train_batch_end(None, None, None, None, 0)  # the batch ends: stop
        pytest.fail("training went on after the batch")


def test_a_second_sigint_stops_at_once(handlers):
    with pytest.raises(KeyboardInterrupt), interrupt.between_batches():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # no batch end in between
        pytest.fail("the second SIGINT did not stop")


def test_a_stop_asked_for_after_the_last_batch_stops_when_training_ends(handlers):
    with pytest.raises(KeyboardInterrupt), interrupt.between_batches():
        os.kill(os.getpid(), signal.SIGTERM)
    with interrupt.between_batches():  # a later block starts afresh
        pass
