"""Test metrics on predictions whose answer is known by hand."""

from __future__ import annotations

import pytest
import torch

from fer_pipeline.evaluation.confusion import plot_confusion_matrix
from fer_pipeline.evaluation.metrics import classification_report

CLASSES = ["a", "b", "c"]


def one_hot(predictions: list[int]) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(predictions), 3).float()


def test_known_confusion_gives_known_scores():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    preds = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0]
    report = classification_report(one_hot(preds), labels, CLASSES)
    assert report["confusion_matrix"] == [[3, 1, 0], [0, 1, 1], [1, 0, 3]]
    assert report["accuracy"] == pytest.approx(7 / 10)
    # per class: precision a 3/4, b 1/2, c 3/4; recall a 3/4, b 1/2, c 3/4
    assert report["per_class"]["b"]["precision"] == pytest.approx(0.5)
    assert report["recall_macro"] == pytest.approx((0.75 + 0.5 + 0.75) / 3)
    # specificity = TN / (TN + FP): a 5/6, b 7/8, c 5/6
    assert report["per_class"]["b"]["specificity"] == pytest.approx(7 / 8)
    assert report["specificity_macro"] == pytest.approx((5 / 6 + 7 / 8 + 5 / 6) / 3)
    assert report["f1_macro"] == pytest.approx((0.75 + 0.5 + 0.75) / 3)
    assert [report["per_class"][c]["support"] for c in CLASSES] == [4, 2, 4]


def test_perfect_and_shape_mismatch():
    labels = torch.tensor([0, 1, 2])
    assert classification_report(one_hot([0, 1, 2]), labels, CLASSES)["accuracy"] == 1.0
    with pytest.raises(ValueError):
        classification_report(one_hot([0, 1]), labels, CLASSES)


def test_confusion_matrix_picture(tmp_path):
    path = tmp_path / "cm.png"
    plot_confusion_matrix([[3, 1, 0], [0, 1, 1], [1, 0, 3]], CLASSES, path, title="t")
    assert path.stat().st_size > 5000 and path.read_bytes()[:4] == b"\x89PNG"
