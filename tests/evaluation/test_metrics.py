"""Test metrics on predictions whose answer is known by hand."""

from __future__ import annotations

import pytest
import torch

from fer_pipeline.evaluation.confusion import plot_confusion_matrix
from fer_pipeline.evaluation.metrics import SUMMARY, bootstrap_ci, classification_report

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


def test_top2_weighted_and_normalised_confusion():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    rows = [[0.6, 0.3, 0.1]] * 3 + [[0.3, 0.0, 0.7]]  # class 0: the 4th is its second guess
    rows += [[0.2, 0.7, 0.1], [0.6, 0.1, 0.3]]  # class 1: the 2nd is its third guess
    rows += [[0.1, 0.1, 0.8]] * 4
    report = classification_report(torch.tensor(rows), labels, CLASSES)
    assert report["accuracy"] == pytest.approx(8 / 10)
    assert report["top2_accuracy"] == pytest.approx(9 / 10)
    # recall per class 3/4, 1/2, 4/4; weighted by support 4, 2, 4 it equals the accuracy.
    assert report["recall_weighted"] == pytest.approx(0.8)
    assert report["confusion_matrix_normalized"][0] == pytest.approx([0.75, 0.0, 0.25])
    assert report["confusion_matrix_normalized"][1] == pytest.approx([0.5, 0.5, 0.0])


def test_bootstrap_intervals_are_seeded_and_cover_the_estimate():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (400,), generator=generator)
    right = torch.rand(400, generator=generator) < 0.7
    preds = torch.where(right, labels, (labels + 1) % 3)
    probs = one_hot(preds.tolist())
    report = classification_report(probs, labels, CLASSES)
    ci = bootstrap_ci(probs, labels, 3, resamples=200, seed=1)
    assert set(ci) == set(SUMMARY)
    for name in SUMMARY:
        assert ci[name]["low"] < report[name] < ci[name]["high"]
    # Binomial standard error of 70 % on 400 faces is 0.023: the 95 % interval is about +-0.045.
    width = ci["accuracy"]["high"] - ci["accuracy"]["low"]
    assert 0.06 < width < 0.12 and ci["accuracy"]["std"] == pytest.approx(0.023, abs=0.005)
    assert ci == bootstrap_ci(probs, labels, 3, resamples=200, seed=1)
    assert ci != bootstrap_ci(probs, labels, 3, resamples=200, seed=2)
    narrow = bootstrap_ci(probs.repeat(9, 1), labels.repeat(9), 3, resamples=200, seed=1)
    assert narrow["accuracy"]["high"] - narrow["accuracy"]["low"] < width / 2
