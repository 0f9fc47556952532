"""Classification metrics from predicted probabilities, with torchmetrics, and bootstrap CIs."""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MulticlassSpecificity,
)
from torchmetrics.wrappers import BootStrapper

SCORES = {
    "precision": MulticlassPrecision,
    "recall": MulticlassRecall,
    "f1": MulticlassF1Score,
    "specificity": MulticlassSpecificity,
}
# The headline numbers (the paper's table plus F1); each gets a bootstrap confidence interval.
SUMMARY = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "specificity_macro")


def summary_metric(name: str, num_classes: int) -> Metric:
    """The torchmetrics object for a name of :data:`SUMMARY` (``accuracy`` or ``<score>_macro``)."""
    if name == "accuracy":
        return MulticlassAccuracy(num_classes, average="micro")
    return SCORES[name.removesuffix("_macro")](num_classes, average="macro")


def classification_report(probs: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict:
    """Metrics of predictions ``probs`` ``(N, K)`` against ``labels`` ``(N,)``.

    Returns ``accuracy`` (micro), ``top2_accuracy`` (true class among the two likeliest),
    ``<score>_macro`` and ``<score>_weighted`` (by support) for precision, recall, F1 and
    specificity, ``per_class`` (each score and the support per class name), ``confusion_matrix``
    (``K x K`` counts, rows = true class) and ``confusion_matrix_normalized`` (rows sum to 1).
    """
    k = len(classes)
    if probs.ndim != 2 or probs.shape[1] != k or probs.shape[0] != labels.shape[0]:
        raise ValueError(f"probs {tuple(probs.shape)} and labels {tuple(labels.shape)} disagree")
    report: dict = {
        "accuracy": MulticlassAccuracy(k, average="micro")(probs, labels).item(),
        "top2_accuracy": MulticlassAccuracy(k, top_k=min(2, k), average="micro")(
            probs, labels
        ).item(),
    }
    per_class: dict[str, dict[str, float]] = {c: {} for c in classes}
    for name, metric in SCORES.items():
        for average in ("macro", "weighted"):
            report[f"{name}_{average}"] = metric(k, average=average)(probs, labels).item()
        for c, value in zip(classes, metric(k, average=None)(probs, labels).tolist(), strict=True):
            per_class[c][name] = value
    support = torch.bincount(labels, minlength=k).tolist()
    for c, n in zip(classes, support, strict=True):
        per_class[c]["support"] = n
    report["per_class"] = per_class
    report["confusion_matrix"] = MulticlassConfusionMatrix(k)(probs, labels).tolist()
    report["confusion_matrix_normalized"] = MulticlassConfusionMatrix(k, normalize="true")(
        probs, labels
    ).tolist()
    report["num_samples"] = int(labels.shape[0])
    return report


def bootstrap_ci(
    probs: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    names: tuple[str, ...] = SUMMARY,
    progress=iter,
) -> dict[str, dict[str, float]]:
    """Percentile bootstrap intervals of the :data:`SUMMARY` metrics over the test predictions.

    ``resamples`` resamples of the N predictions, drawn with replacement (torchmetrics'
    ``BootStrapper``, multinomial). Every metric sees the same resamples: the generator is reset to
    ``seed`` before each, so the intervals are reproducible. Returns ``{name: {"low", "high",
    "std"}}``. ``progress`` wraps the loop over ``names`` (a progress bar, e.g. ``tqdm``).
    """
    alpha = (1.0 - level) / 2
    quantiles = torch.tensor([alpha, 1.0 - alpha])
    intervals = {}
    for name in progress(names):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            boot = BootStrapper(
                summary_metric(name, num_classes),
                num_bootstraps=resamples,
                quantile=quantiles,
                sampling_strategy="multinomial",
            )
            boot.update(probs, labels)
            result = boot.compute()
        low, high = result["quantile"].tolist()
        intervals[name] = {"low": low, "high": high, "std": result["std"].item()}
    return intervals
