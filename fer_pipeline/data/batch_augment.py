"""Batched augmentation on the training device: the albumentations pipeline of
:func:`fer_pipeline.data.datamodule.build_transform`, one tensor op per step for a whole batch.

Same steps, order and parameter distributions as the per-image CPU path:

- resize to ``input_size`` (bilinear, like ``A.Resize``);
- horizontal flip with probability ``hflip``;
- affine about the centre: rotation ``U(-rotate, rotate)`` degrees, x and y scale each
  ``U(1 - scale, 1 + scale)``, x and y shift each ``int(U(-shift, shift) * side)`` pixels, reflected
  borders (``A.Affine`` with independent scales and ``BORDER_REFLECT_101``);
- brightness/contrast: ``x * (1 + U(-l, l)) + 255 * U(-l, l)``, clipped to 0..255
  (``A.RandomBrightnessContrast``, brightness by max);
- with probability ``erase``, one hole of ``int(side * U(0.1, 0.3))`` pixels a side, placed
  uniformly, filled with 0 (``A.CoarseDropout``);
- normalise: ``(x / 255 - mean) / std``.

Differences in detail: values stay float between steps (albumentations rounds to uint8 after each),
and the border is mirrored about the pixel edge (``grid_sample``'s reflection) rather than about the
edge pixel. ``tests/data/test_batch_augment.py`` checks the distributions agree.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

HOLE_RANGE = (0.1, 0.3)  # the hole's side as a share of the image side, as in build_transform


def _uniform(n: int, low: float, high: float, generator, device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


class BatchAugment:
    """``uint8 (B, H, W)`` or ``(B, H, W, 3)`` faces -> normalised float ``(B, C, S, S)``.

    ``augment``: the ``loader.augment`` config (``hflip``, ``rotate``, ``shift``, ``scale``,
    ``brightness_contrast``, ``erase``); ``None`` or ``train=False`` only resizes and normalises.
    ``seed`` seeds one generator per device, so a run's augmentations are reproducible.
    """

    def __init__(
        self,
        input_size: int,
        mean: float,
        std: float,
        augment: dict | None = None,
        seed: int = 0,
    ):
        self.input_size, self.mean, self.std = input_size, mean, std
        self.augment = dict(augment or {})
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}

    def generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    def __call__(self, images: torch.Tensor, train: bool = True) -> torch.Tensor:
        x = images.float()
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size,) * 2, mode="bilinear", align_corners=False)
        if train and self.augment:
            x = self.apply(x, self.generator(x.device))
        return ((x / 255.0 - self.mean) / self.std).contiguous()

    def apply(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """The random steps on float ``(B, C, S, S)`` in 0..255."""
        a, n, dev = self.augment, x.shape[0], x.device
        if a.get("hflip", 0.0):
            flip = torch.rand(n, generator=g, device=dev) < a["hflip"]
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        if any(a.get(k, 0.0) for k in ("rotate", "shift", "scale")):
            x = self.affine(x, g)
        if limit := a.get("brightness_contrast", 0.0):
            alpha = 1.0 + _uniform(n, -limit, limit, g, dev)
            beta = 255.0 * _uniform(n, -limit, limit, g, dev)
            x = (x * alpha.view(-1, 1, 1, 1) + beta.view(-1, 1, 1, 1)).clamp(0.0, 255.0)
        if a.get("erase", 0.0):
            x = self.erase(x, a["erase"], g)
        return x

    def affine(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        a, n, dev = self.augment, x.shape[0], x.device
        side = x.shape[-1]
        rotate, shift, scale = a.get("rotate", 0.0), a.get("shift", 0.0), a.get("scale", 0.0)
        angle = _uniform(n, -rotate, rotate, g, dev) * (math.pi / 180.0)
        sx = _uniform(n, 1 - scale, 1 + scale, g, dev)
        sy = _uniform(n, 1 - scale, 1 + scale, g, dev)
        # albumentations truncates the shift to whole pixels; in grid units a pixel is 2 / side.
        tx = torch.trunc(_uniform(n, -shift, shift, g, dev) * side) * (2.0 / side)
        ty = torch.trunc(_uniform(n, -shift, shift, g, dev) * side) * (2.0 / side)
        cos, sin = angle.cos(), angle.sin()
        # Output = R S input + t about the centre; grid_sample wants input = S^-1 R^-1 (output - t).
        inv = torch.stack(
            [
                torch.stack([cos / sx, sin / sx], dim=1),
                torch.stack([-sin / sy, cos / sy], dim=1),
            ],
            dim=1,
        )  # (B, 2, 2)
        t = torch.stack([tx, ty], dim=1).unsqueeze(-1)  # (B, 2, 1)
        theta = torch.cat([inv, -inv @ t], dim=2)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(
            x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )

    def erase(self, x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
        n, dev = x.shape[0], x.device
        height, width = x.shape[-2:]
        apply = torch.rand(n, generator=g, device=dev) < p
        h = (height * _uniform(n, *HOLE_RANGE, g, dev)).long()
        w = (width * _uniform(n, *HOLE_RANGE, g, dev)).long()
        top = (torch.rand(n, generator=g, device=dev) * (height - h + 1)).long()
        left = (torch.rand(n, generator=g, device=dev) * (width - w + 1)).long()
        rows = torch.arange(height, device=dev).view(1, -1, 1)
        cols = torch.arange(width, device=dev).view(1, 1, -1)
        hole = (
            (rows >= top.view(-1, 1, 1))
            & (rows < (top + h).view(-1, 1, 1))
            & (cols >= left.view(-1, 1, 1))
            & (cols < (left + w).view(-1, 1, 1))
            & apply.view(-1, 1, 1)
        )
        return x.masked_fill(hole.unsqueeze(1), 0.0)
