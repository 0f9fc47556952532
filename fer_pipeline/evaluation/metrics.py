"""Classification metrics from predicted probabilities, with torchmetrics."""

from __future__ import annotations

import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MulticlassSpecificity,
)

SCORES = {
    "precision": MulticlassPrecision,
    "recall": MulticlassRecall,
    "f1": MulticlassF1Score,
    "specificity": MulticlassSpecificity,
}


def classification_report(probs: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict:
    """Metrics of predictions ``probs`` ``(N, K)`` against ``labels`` ``(N,)``.

    Returns ``accuracy`` (micro), ``<score>_macro`` for precision, recall, F1 and specificity,
    ``per_class`` (each score and the support per class name) and ``confusion_matrix``
    (``K x K`` counts, rows = true class).
    """
    k = len(classes)
    if probs.ndim != 2 or probs.shape[1] != k or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"probs {tuple(probs.shape)} and labels {tuple(labels.shape)} disagree")
    report: dict = {
        "accuracy": MulticlassAccuracy(k, average="micro")(probs, labels).item(),
    }
    per_class: dict[str, dict[str, float]] = {c: {} for c in classes}
    for name, metric in SCORES.items():
        report[f"{name}_macro"] = metric(k, average="macro")(probs, labels).item()
        for c, value in zip(classes, metric(k, average=None)(probs, labels).tolist(), strict=True):
            per_class[c][name] = value
    support = torch.bincount(labels, minlength=k).tolist()
    for c, n in zip(classes, support, strict=True):
        per_class[c]["support"] = n
    report["per_class"] = per_class
    report["confusion_matrix"] = MulticlassConfusionMatrix(k)(probs, labels).tolist()
    report["num_samples"] = int(labels.shape[0])
    return report
