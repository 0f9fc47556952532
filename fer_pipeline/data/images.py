"""Reading images of any common format, bit depth and mode into 8-bit grayscale or RGB."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_pipeline.errors import PipelineError


def read_image(path: str | Path, grayscale: bool = True) -> np.ndarray:
    """Read ``path`` as uint8, ``(H, W)`` when ``grayscale`` else ``(H, W, 3)`` RGB.

    16-bit images are scaled to 8 bits and alpha is dropped. An unreadable file raises
    :class:`PipelineError` naming it.
    """
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise PipelineError(f"cannot read image {path} (missing, empty, truncated or not an image)")
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        raise PipelineError(f"image {path} has unsupported pixel type {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 2:
        return image if grayscale else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if grayscale:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
