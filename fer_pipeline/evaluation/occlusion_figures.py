"""Pictures of occlusion maps: per-face overlays and the mean map per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global backend, safe in notebooks

CMAP = "coolwarm"  # red: occluding the region lowers the true-class probability; blue: raises it


def _limit(maps: np.ndarray) -> float:
    return float(np.abs(maps).max()) or 1e-6


def plot_overlays(
    faces: np.ndarray,
    drops: np.ndarray,
    labels: list[int],
    preds: list[int],
    probs: list[float],
    classes: list[str],
    path: str | Path,
    title: str = "",
) -> None:
    """Faces ``(N, H, W)`` in [0, 1] with their drop maps ``(N, H, W)`` on top: one row per true
    class, one column per example, one colour scale for the whole figure. Titles give the
    prediction and the true-class probability; a wrong prediction is titled in red."""
    rows = [c for c in range(len(classes)) if c in labels]
    by_row = {c: [i for i, label in enumerate(labels) if label == c] for c in rows}
    cols = max(len(v) for v in by_row.values())
    limit = _limit(drops)
    fig = Figure(figsize=(1.7 * cols + 1.6, 1.9 * len(rows) + 0.4), layout="constrained")
    axes = fig.subplots(len(rows), cols, squeeze=False)
    image = None
    for r, c in enumerate(rows):
        for j in range(cols):
            ax = axes[r, j]
            ax.set_axis_off()
            if j >= len(by_row[c]):
                continue
            i = by_row[c][j]
            ax.imshow(faces[i], cmap="gray", vmin=0, vmax=1)
            image = ax.imshow(drops[i], cmap=CMAP, vmin=-limit, vmax=limit, alpha=0.55)
            colour = "black" if preds[i] == labels[i] else "red"
            ax.set_title(
                f"{classes[preds[i]]}\np({classes[c]})={probs[i]:.2f}", fontsize=7, color=colour
            )
        axes[r, 0].text(
            -0.08, 0.5, classes[c], transform=axes[r, 0].transAxes, rotation=90,
            ha="right", va="center", fontsize=9,
        )  # fmt: skip
    fig.colorbar(image, ax=axes, fraction=0.03, label="drop in true-class probability")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100, format="png")


def plot_class_means(
    mean_faces: np.ndarray,
    mean_drops: np.ndarray,
    mean_flips: np.ndarray,
    counts: list[int],
    classes: list[str],
    path: str | Path,
    title: str = "",
) -> None:
    """One column per class: its mean face, the mean drop map over it, and the mean flip map
    (share of occlusions that change the prediction). Arrays are ``(K, H, W)``; ``counts`` says how
    many faces each mean covers (classes with none are left out)."""
    shown = [k for k in range(len(classes)) if counts[k] > 0]
    fig = Figure(figsize=(1.8 * len(shown) + 1.4, 6.0), layout="constrained")
    axes = fig.subplots(3, len(shown), squeeze=False)
    limit = _limit(mean_drops[shown])
    drop_image = flip_image = None
    for j, k in enumerate(shown):
        axes[0, j].imshow(mean_faces[k], cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(f"{classes[k]} (n={counts[k]})", fontsize=8)
        axes[1, j].imshow(mean_faces[k], cmap="gray", vmin=0, vmax=1)
        drop_image = axes[1, j].imshow(mean_drops[k], cmap=CMAP, vmin=-limit, vmax=limit, alpha=0.6)
        axes[2, j].imshow(mean_faces[k], cmap="gray", vmin=0, vmax=1)
        flip_image = axes[2, j].imshow(mean_flips[k], cmap="magma", vmin=0, vmax=1, alpha=0.7)
        for ax in axes[:, j]:
            ax.set_axis_off()
    fig.colorbar(drop_image, ax=axes[1, :], fraction=0.03, label="mean drop")
    fig.colorbar(flip_image, ax=axes[2, :], fraction=0.03, label="flip rate")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100, format="png")
