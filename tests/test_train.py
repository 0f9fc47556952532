"""Pieces of the train stage that a user sees through the config."""

from __future__ import annotations

import pytest

from fer_pipeline.train import class_weights


def test_class_weights_balance_the_loss():
    weights = class_weights([0, 0, 0, 1], num_classes=3)
    assert weights.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])
    # Each seen class then carries the same total weight in the loss.
    assert 3 * weights[0] == pytest.approx(1 * weights[1])
