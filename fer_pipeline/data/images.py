"""Reading images of any common format, bit depth and mode into 8-bit grayscale or RGB."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fer_pipeline.errors import PipelineError


def read_image(path: str | Path, grayscale: bool = True, data: bytes | None = None) -> np.ndarray:
    """Read ``path`` as uint8, ``(H, W)`` when ``grayscale`` else ``(H, W, 3)`` RGB.

    16-bit images are scaled to 8 bits and alpha is dropped. ``data``: the file's bytes, when the
    caller has read them already. An unreadable file raises :class:`PipelineError` naming it.
    """
    if data is None:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    else:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
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


class BadImage(PipelineError):
    """An input image that cannot be used: unreadable, truncated, too small or of an odd type."""


SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def decode_image(
    path: str | Path, grayscale: bool = True, min_size: int = 1
) -> tuple[np.ndarray, str]:
    """Strictly decode any image a dataset may ship into uint8 ``(H, W)`` or ``(H, W, 3)`` RGB;
    return it with the file's original PIL mode (``L``, ``RGB``, ``I;16``, ``RGBA`` ...).

    Unlike :func:`read_image` (fast, for the pipeline's own PNGs), this refuses truncated files
    (OpenCV would decode them half grey), scales 16-bit to 8-bit, flattens palette, alpha, CMYK and
    1-bit modes, and rejects images smaller than ``min_size`` on a side. Raises :class:`BadImage`.
    """
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in SIXTEEN_BIT_MODES:
                wide = np.asarray(im, dtype=np.int64)
                if wide.min() < 0 or wide.max() > 65535:
                    raise BadImage(f"image {path} has {mode} values outside 0..65535")
                im = Image.fromarray((wide / 257.0).round().astype(np.uint8))
            elif mode == "F":
                raise BadImage(f"image {path} is floating point (mode F), not a photo format")
            image = np.asarray(im.convert("L" if grayscale else "RGB"))
    except BadImage:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise BadImage(f"cannot decode image {path} ({err})") from None
    height, width = image.shape[:2]
    if min(height, width) < min_size:
        raise BadImage(f"image {path} is {width}x{height}, smaller than {min_size} px on a side")
    return image, mode
