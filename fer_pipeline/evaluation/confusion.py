"""Confusion-matrix picture: counts with row-normalised colours, class names on both axes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_confusion_matrix(matrix, classes: list[str], path: str | Path, title: str = "") -> None:
    """Save ``matrix`` (``K x K`` counts, rows = true class) as a PNG at ``path``."""
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(classes), 0.8 + 0.7 * len(classes)))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(classes)):
        for j in range(len(classes)):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(
                j, i, f"{int(counts[i, j])}", ha="center", va="center", color=colour, fontsize=8
            )
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true class")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
