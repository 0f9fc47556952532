"""The per-face transform of training and inference: resize, (augment,) normalise, to tensor.

Without Lightning, so that predicting does not import it.
"""

from __future__ import annotations

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2


def build_transform(
    input_size: int, mean: float, std: float, augment: dict | None = None, seed: int | None = None
) -> A.Compose:
    """Resize to ``input_size``, optionally augment (``augment`` keys below), normalise, to tensor.

    albumentations keeps its own random state, which global seeding does not reach: ``seed`` makes
    the augmentation sequence reproducible.

    ``augment``: ``hflip`` (probability), ``rotate`` (degrees), ``shift`` and ``scale`` (fractions),
    ``brightness_contrast`` (limit), ``erase`` (probability of one random erased patch).
    """
    steps: list = [A.Resize(input_size, input_size)]
    if augment:
        steps += [
            A.HorizontalFlip(p=augment.get("hflip", 0.0)),
            A.Affine(
                rotate=(-augment.get("rotate", 0.0), augment.get("rotate", 0.0)),
                translate_percent=(-augment.get("shift", 0.0), augment.get("shift", 0.0)),
                scale=(1 - augment.get("scale", 0.0), 1 + augment.get("scale", 0.0)),
                border_mode=cv2.BORDER_REFLECT_101,  # no black corners for the model to learn
                p=1.0 if any(augment.get(k, 0) for k in ("rotate", "shift", "scale")) else 0.0,
            ),
            A.RandomBrightnessContrast(
                brightness_limit=augment.get("brightness_contrast", 0.0),
                contrast_limit=augment.get("brightness_contrast", 0.0),
                p=1.0 if augment.get("brightness_contrast", 0.0) else 0.0,
            ),
            A.CoarseDropout(
                num_holes_range=(1, 1),
                hole_height_range=(0.1, 0.3),
                hole_width_range=(0.1, 0.3),
                p=augment.get("erase", 0.0),
            ),
        ]
    steps += [A.Normalize(mean=mean, std=std, max_pixel_value=255.0), ToTensorV2()]
    return A.Compose(steps, seed=seed)
