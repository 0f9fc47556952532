"""Occlusion sensitivity, as the paper describes it: slide an N x N occluding square over the face
and record how the prediction changes.

For each window position the face is copied with that square set to ``fill`` (in the model's
normalised input space, where 0 is the normalisation mean: a mean-grey patch that adds no edge of
its own). All occluded copies of all faces go through the model in batches on the model's device.
Per window we record the drop in the true-class probability and whether the predicted class flips;
a pixel's value is the mean over the windows that cover it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fer_pipeline.evaluation.settings import check_settings


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets along one side: every ``stride``, plus a last one flush with the edge so every
    pixel is covered."""
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def occlusion_masks(height: int, width: int, window: int, stride: int) -> torch.Tensor:
    """``(P, H, W)`` bool: one mask per window position, row-major."""
    rows, cols = window_starts(height, window, stride), window_starts(width, window, stride)
    masks = torch.zeros(len(rows) * len(cols), height, width, dtype=torch.bool)
    for i, (r, c) in enumerate((r, c) for r in rows for c in cols):
        masks[i, r : r + window, c : c + window] = True
    return masks


@dataclass
class OcclusionMaps:
    """Occlusion results for ``N`` faces of ``H x W`` with ``P`` window positions.

    ``drop`` ``(N, H, W)``: mean drop in the true-class probability when a window covering the
    pixel is occluded (positive: the region supports the true class). ``flip`` ``(N, H, W)``: share
    of those windows whose occlusion changes the predicted class. ``window_drop`` / ``window_flip``
    ``(N, P)``: the same per window. ``prob`` ``(N,)``: true-class probability of the intact face;
    ``pred`` ``(N,)``: its predicted class.
    """

    drop: torch.Tensor
    flip: torch.Tensor
    window_drop: torch.Tensor
    window_flip: torch.Tensor
    prob: torch.Tensor
    pred: torch.Tensor


@torch.inference_mode()
def occlusion_sensitivity(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    window: int = 8,
    stride: int = 4,
    fill: float = 0.0,
    batch_size: int = 512,
    progress=iter,
) -> OcclusionMaps:
    """Occlusion maps of ``images`` ``(N, C, H, W)`` (normalised, as the model takes them) for
    their ``labels`` ``(N,)``. ``model`` maps images to class scores whose softmax is the class
    probabilities (logits or log-probabilities). Runs on the model's device, ``batch_size``
    occluded copies per forward pass (``progress`` wraps that loop: a progress bar); results are on
    the CPU."""
    n, _, height, width = images.shape
    check_settings(window, stride, min(height, width))
    model.eval()
    device = next(model.parameters()).device
    images, labels = images.to(device), labels.to(device)
    masks = occlusion_masks(height, width, window, stride).to(device)
    positions = masks.shape[0]

    def probabilities(x: torch.Tensor) -> torch.Tensor:
        return model(x).float().softmax(dim=1)

    base = torch.cat([probabilities(images[i : i + batch_size]) for i in range(0, n, batch_size)])
    prob = base.gather(1, labels[:, None]).squeeze(1)
    pred = base.argmax(dim=1)
    occluded_prob = torch.empty(n * positions, device=device)
    occluded_pred = torch.empty(n * positions, dtype=torch.long, device=device)
    fill_value = torch.tensor(fill, dtype=images.dtype, device=device)
    for start in progress(range(0, n * positions, batch_size)):
        index = torch.arange(start, min(start + batch_size, n * positions), device=device)
        face, position = index // positions, index % positions
        x = torch.where(masks[position, None], fill_value, images[face])
        p = probabilities(x)
        occluded_prob[index] = p.gather(1, labels[face, None]).squeeze(1)
        occluded_pred[index] = p.argmax(dim=1)
    window_drop = prob[:, None] - occluded_prob.view(n, positions)
    window_flip = (occluded_pred.view(n, positions) != pred[:, None]).float()
    weights = masks.flatten(1).float()  # (P, H*W)
    coverage = weights.sum(dim=0)
    drop = (window_drop @ weights / coverage).view(n, height, width)
    flip = (window_flip @ weights / coverage).view(n, height, width)
    return OcclusionMaps(
        drop.cpu(), flip.cpu(), window_drop.cpu(), window_flip.cpu(), prob.cpu(), pred.cpu()
    )


def sample_per_class(labels: list[int], per_class: int | None, seed: int) -> list[int]:
    """Indices of up to ``per_class`` items of each class (all with ``None``), a seeded random
    choice, grouped by class in label order; within a class the order is the random order, so a
    smaller ``per_class`` picks a prefix of a larger one."""
    labels_arr = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for label in sorted(set(labels_arr.tolist())):
        members = rng.permutation(np.flatnonzero(labels_arr == label))
        chosen += members[:per_class].tolist() if per_class is not None else members.tolist()
    return chosen
