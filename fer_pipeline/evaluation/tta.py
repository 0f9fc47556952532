"""Test-time augmentation: average the class probabilities of several views of each face.

- ``none``: the face as is;
- ``hflip``: the face and its mirror image (2 views);
- ``tencrop``: the four corner crops and the centre crop of side ``crop`` x the input side, each
  resized back to the input side, and their mirror images (10 views).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def five_crops(x: torch.Tensor, crop: float) -> list[torch.Tensor]:
    """Four corners and the centre of ``x`` ``(B, C, H, W)``, each resized back to ``(H, W)``."""
    height, width = x.shape[-2:]
    h, w = max(1, round(height * crop)), max(1, round(width * crop))
    top, left = (height - h) // 2, (width - w) // 2
    boxes = [(0, 0), (0, width - w), (height - h, 0), (height - h, width - w), (top, left)]
    return [
        F.interpolate(x[..., y : y + h, c : c + w], size=(height, width), mode="bilinear")
        for y, c in boxes
    ]


def views(x: torch.Tensor, mode: str, crop: float = 0.875) -> list[torch.Tensor]:
    """The views of a normalised batch that ``mode`` averages over."""
    if mode == "none":
        return [x]
    base = [x] if mode == "hflip" else five_crops(x, crop)
    return base + [v.flip(-1) for v in base]


def predict_proba(net, x: torch.Tensor, mode: str = "none", crop: float = 0.875) -> torch.Tensor:
    """Class probabilities ``(B, K)`` of ``net`` averaged over the ``mode`` views of ``x``."""
    return torch.stack([net(v).float().softmax(dim=1) for v in views(x, mode, crop)]).mean(0)
