"""Confusion-matrix picture: counts and row-normalised shares side by side, class names on both axes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global backend, safe in notebooks


def row_normalised(matrix) -> np.ndarray:
    """Each row divided by its sum (the share of a true class given to each prediction); 0 rows stay 0."""
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)


def plot_confusion_matrix(matrix, classes: list[str], path: str | Path, title: str = "") -> None:
    """Save ``matrix`` (``K x K`` counts, rows = true class) as a PNG at ``path``: counts on the
    left, row-normalised shares (recall on the diagonal) on the right."""
    counts = np.asarray(matrix, dtype=float)
    shares = row_normalised(counts)
    k = len(classes)
    side = 0.8 + 0.65 * k
    fig = Figure(figsize=(2 * side + 1.5, side), layout="tight")
    axes = fig.subplots(1, 2)
    panels = (
        (axes[0], counts, "counts", lambda v: f"{int(v)}", counts.max() or 1),
        (axes[1], shares, "share of true class", lambda v: f"{v:.2f}", 1.0),
    )
    for ax, values, label, fmt, vmax in panels:
        image = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax)
        ax.set_xticks(range(k), classes, rotation=45, ha="right")
        ax.set_yticks(range(k), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for i in range(k):
            for j in range(k):
                colour = "white" if values[i, j] > 0.5 * vmax else "black"
                ax.text(j, i, fmt(values[i, j]), ha="center", va="center", color=colour, fontsize=8)
        fig.colorbar(image, ax=ax, fraction=0.046, label=label)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110, format="png")
